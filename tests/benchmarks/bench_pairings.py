"""The canonical pairings' loss + gradients at m = 10⁶ against PyTorch autograd and one read of X.

    .venv-bench/bin/python -m tests.benchmarks.bench_pairings [--m 1000000] [--n 10] [--rounds 3]
        [--pairings logistic,linear,poisson,softmax] [--service-path DIR]

The suite's compute section does logistic regression; this does the same for linear, Poisson and
softmax regression (k = 10): each implementation in a process of its own, rounds interleaved in a
rotated order, in each process the best of 5 calls after a warm-up, then the median over rounds.
The service's figure is `models.gradients` (POST /gradient without explain) in a process tuned as
the service's are; torch uses 2 threads; "read" is X @ w (or X @ W), one BLAS read of X. Every
torch process first checks that it computes the service's J and gradients (rtol 1e-9).
`--service-path DIR` adds a second service contender imported from another checkout (e.g. main),
to compare two versions side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

PAIRINGS = {
    "logistic": ("LOGISTIC_REGRESSION", "sigmoid", "binary_cross_entropy"),
    "linear": ("LINEAR_REGRESSION", "identity", "squared_error"),
    "poisson": ("POISSON_REGRESSION", "exp", "poisson"),
    "softmax": ("SOFTMAX_REGRESSION", "softmax", "categorical_cross_entropy"),
}
K = 10


def problem(name: str, m: int, n: int) -> tuple[Any, ...]:
    rng = np.random.default_rng(23)
    X = rng.normal(size=(m, n))
    if name == "softmax":
        w = rng.normal(0.0, 0.3, (n, K))
        b = rng.normal(0.0, 0.3, K)
        y = rng.integers(0, K, m)
    else:
        w = rng.normal(0.0, 1.0 / np.sqrt(n), n)
        b = np.asarray(0.1)
        z = X @ w + b
        if name == "logistic":
            y = (rng.random(m) < 1.0 / (1.0 + np.exp(-z))).astype(np.float64)
        elif name == "poisson":
            w = w * 0.3
            y = rng.poisson(np.exp(X @ w + b)).astype(np.float64)
        else:
            y = z + rng.normal(size=m)
    return X, y, w, b


def service_run(name: str, X: Any, y: Any, w: Any, b: Any) -> Callable[[], tuple[float, Any, Any]]:
    from service.compute.model_names import ModelName
    from service.compute.models import build_objective, gradients
    from service.compute.pairings import make_pairing
    from service.runtime import tune_allocator

    tune_allocator()
    model, act, loss = PAIRINGS[name]
    objective = build_objective(ModelName[model], make_pairing(act, loss), X, y, w, b)

    def run() -> tuple[float, Any, Any]:
        g = gradients(objective)
        return g.loss, np.asarray(g.grad_w), np.asarray(g.grad_b)

    return run


def torch_run(name: str, X: Any, y: Any, w: Any, b: Any) -> Callable[[], tuple[float, Any, Any]]:
    import torch

    torch.set_num_threads(2)
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(np.asarray(y))

    def run() -> tuple[float, Any, Any]:
        wt = torch.tensor(w, dtype=torch.float64, requires_grad=True)
        bt = torch.tensor(b, dtype=torch.float64, requires_grad=True)
        z = Xt @ wt + bt
        if name == "logistic":
            loss = torch.nn.functional.binary_cross_entropy_with_logits(z, yt)
        elif name == "linear":
            loss = 0.5 * torch.mean((z - yt) ** 2)
        elif name == "poisson":
            loss = torch.nn.functional.poisson_nll_loss(z, yt, log_input=True, full=False)
        else:
            loss = torch.nn.functional.cross_entropy(z, yt)
        loss.backward()
        assert wt.grad is not None and bt.grad is not None
        return float(loss.item()), wt.grad.numpy(), bt.grad.numpy()

    return run


def worker(impl: str, name: str, m: int, n: int) -> dict[str, Any]:
    X, y, w, b = problem(name, m, n)
    if impl == "read":

        def run() -> Any:
            return X @ w
    elif impl == "torch":
        run = torch_run(name, X, y, w, b)  # type: ignore[assignment]
        Xs, ys, ws, bs = problem(name, 2000, n)
        got, want = torch_run(name, Xs, ys, ws, bs)(), service_run(name, Xs, ys, ws, bs)()
        for a, c in zip(got, want, strict=True):
            if not np.allclose(np.asarray(a, dtype=np.float64), c, rtol=1e-9, atol=1e-14):
                raise SystemExit(f"MISMATCH: torch computes {got}, the service {want}")
    else:
        run = service_run(name, X, y, w, b)  # type: ignore[assignment]
    run()
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return {"min": min(times)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.bench_pairings")
    parser.add_argument("--m", type=int, default=1_000_000)
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pairings", default=",".join(PAIRINGS))
    parser.add_argument("--service-path", type=Path, help="a second checkout whose service is timed too")
    parser.add_argument("--worker", nargs=2, metavar=("IMPL", "PAIRING"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker[0], args.worker[1], args.m, args.n)), flush=True)
        return 0
    root = Path(__file__).resolve().parents[2]
    impls = {"service": root, "torch": root, "read": root}
    if args.service_path:
        impls["service@" + args.service_path.name] = args.service_path.resolve()
    seconds: dict[tuple[str, str], list[float]] = {}
    for r in range(args.rounds):
        for name in args.pairings.split(","):
            order = list(impls)[r % len(impls) :] + list(impls)[: r % len(impls)]
            for impl in order:
                env = {**os.environ, "PYTHONPATH": str(impls[impl])}
                cmd = [sys.executable, "-m", "tests.benchmarks.bench_pairings", "--m", str(args.m), "--n", str(args.n)]
                out = subprocess.run(
                    [*cmd, "--worker", impl.split("@")[0], name],
                    env=env,
                    cwd=root,
                    capture_output=True,
                    text=True,
                    timeout=600,
                    check=True,
                )
                line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
                seconds.setdefault((name, impl), []).append(json.loads(line[7:])["min"])
    print(f"m = {args.m:,}, n = {args.n}, median of {args.rounds} rounds (each the best of 5 calls)")
    print("| pairing | " + " | ".join(impls) + " | service ÷ torch | service ÷ read |")
    print("|---|" + "---:|" * (len(impls) + 2))
    for name in args.pairings.split(","):
        med = {impl: statistics.median(seconds[(name, impl)]) for impl in impls}
        cells = " | ".join(f"{med[i] * 1e3:.1f} ms" for i in impls)
        print(f"| {name} | {cells} | {med['service'] / med['torch']:.2f}× | {med['service'] / med['read']:.2f}× |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

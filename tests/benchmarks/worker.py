"""One measurement in a process of its own, started by the suite (tests/benchmarks/suite.py).

    python -m tests.benchmarks.worker compute {service,numpy,torch,jax,read} --data DIR --sizes 1000000x10,...
    python -m tests.benchmarks.worker floor --body FILE
    python -m tests.benchmarks.worker explain --m 10000 --n 4
    python -m tests.benchmarks.worker grading --answers 1000
    python -m tests.benchmarks.worker growth --m-list 100,1000 --n-list 1,10 --m-fixed 10000 --n-fixed 20

Each prints one line `RESULT {json}` on stdout. The anchors run one per process because their
thread pools (OpenBLAS, torch's OpenMP, XLA's Eigen pool) disturb each other in one. Every anchor
first checks that it computes the service's numbers on a small problem and exits with status 3 if
not: a comparison with something that computes another thing would be meaningless.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tests.benchmarks.anchor_numpy import Array, logistic_numpy, logistic_problem

CHECK_RTOL = 1e-9


def vm_hwm_kib() -> int:
    """The peak resident memory of this process so far (VmHWM), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def emit(result: dict[str, Any]) -> None:
    print("RESULT " + json.dumps(result), flush=True)


def timed(fn: Callable[[], Any], reps: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def adaptive(fn: Callable[[], Any], budget: float = 0.2, min_reps: int = 5, max_reps: int = 2000) -> float:
    """The best time of one call, repeating until `budget` seconds have passed (at least min_reps).

    The best, not the median: on a shared machine other work only ever adds time."""
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_reps or (time.perf_counter() - start < budget and len(times) < max_reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


# --- the service's compute layer ---------------------------------------------------------------


def service_problem(X: Array, y: Array, w: Array, b: float) -> Any:
    from service.compute.model_names import ModelName
    from service.compute.models import build_objective
    from service.compute.pairings import make_pairing

    pairing = make_pairing("sigmoid", "binary_cross_entropy")
    return build_objective(ModelName.LOGISTIC_REGRESSION, pairing, X, y, w, b)


def service_result(X: Array, y: Array, w: Array, b: float) -> tuple[float, Array, float]:
    from service.compute.models import evaluate

    ev = evaluate(service_problem(X, y, w, b))
    return ev.loss, np.asarray(ev.grad_w), float(ev.grad_b)


def fused_entry() -> tuple[str, Callable[[Any], Any]] | None:
    """A public fused evaluation entry point of the compute layer, if it has one: BENCH_FUSED_ENTRY
    ("module:function", called with an Objective, returning an Evaluation), else the first public function
    of a service.compute module whose name contains "fused"."""
    import importlib
    import os
    import pkgutil

    import service.compute as compute

    named = os.environ.get("BENCH_FUSED_ENTRY")
    if named:
        module_name, _, attr = named.partition(":")
        return named, getattr(importlib.import_module(module_name), attr)

    for info in pkgutil.iter_modules(compute.__path__):
        module = importlib.import_module(f"service.compute.{info.name}")
        for name in dir(module):
            obj = getattr(module, name)
            if (
                "fused" in name.lower()
                and not name.startswith("_")
                and callable(obj)
                and getattr(obj, "__module__", None) == module.__name__
                and not isinstance(obj, type)
            ):
                return f"service.compute.{info.name}.{name}", obj
    return None


def agree(name: str, got: tuple[float, Array, float], want: tuple[float, Array, float]) -> None:
    loss, gw, gb = got
    loss0, gw0, gb0 = want
    ok = (
        np.isclose(loss, loss0, rtol=CHECK_RTOL, atol=0)
        and np.allclose(np.asarray(gw, dtype=np.float64).ravel(), gw0, rtol=CHECK_RTOL, atol=1e-15)
        and np.isclose(gb, gb0, rtol=CHECK_RTOL, atol=1e-15)
    )
    if not ok:
        print(f"MISMATCH: {name} computes {got}, the service {want}", file=sys.stderr)
        raise SystemExit(3)


# --- compute anchors: each a factory(X, y, w, b) -> run() returning (J, dJ/dw, dJ/db) ----------------


def make_service(X: Array, y: Array, w: Array, b: float) -> Callable[[], Any]:
    """What POST /gradient runs without explain: `gradients` (one pass, service/compute/fused.py), in a
    process tuned as the service's own processes are (service/runtime.py, done by create_app)."""
    from service.compute.models import gradients
    from service.runtime import tune_allocator

    tune_allocator()
    problem = service_problem(X, y, w, b)  # built once, outside the timing

    def run() -> tuple[float, Array, float]:
        ev = gradients(problem)
        return ev.loss, ev.grad_w, float(ev.grad_b)

    return run


def make_evaluate(X: Array, y: Array, w: Array, b: float) -> Callable[[], Any]:
    """`evaluate`: every per-example array kept (what explain, verify and grading use)."""
    from service.compute.models import evaluate
    from service.runtime import tune_allocator

    tune_allocator()
    problem = service_problem(X, y, w, b)

    def run() -> tuple[float, Array, float]:
        ev = evaluate(problem)
        return ev.loss, ev.grad_w, float(ev.grad_b)

    return run


def make_fused(X: Array, y: Array, w: Array, b: float) -> Callable[[], Any]:
    entry = fused_entry()
    assert entry is not None
    problem = service_problem(X, y, w, b)
    fn = entry[1]

    def run() -> tuple[float, Array, float]:
        ev = fn(problem)
        return ev.loss, ev.grad_w, float(ev.grad_b)

    return run


def make_numpy(X: Array, y: Array, w: Array, b: float) -> Callable[[], Any]:
    return lambda: logistic_numpy(X, y, w, b)


def make_read(X: Array, y: Array, w: Array, b: float) -> Callable[[], Any]:
    # The one-read-of-X floor: X @ w (BLAS gemv, both threads) reads each entry of X once.
    return lambda: X @ w


def make_torch(X: Array, y: Array, w: Array, b: float) -> Callable[[], Any]:
    import torch

    torch.set_num_threads(2)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

    def run() -> tuple[float, Array, float]:
        wt = torch.tensor(w, dtype=torch.float64, requires_grad=True)
        bt = torch.tensor(b, dtype=torch.float64, requires_grad=True)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(Xt @ wt + bt, yt)
        loss.backward()
        assert wt.grad is not None and bt.grad is not None
        return float(loss.item()), wt.grad.numpy(), float(bt.grad.item())

    return run


def make_jax(X: Array, y: Array, w: Array, b: float) -> Callable[[], Any]:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)

    def cost(w_: Any, b_: Any, X_: Any, y_: Any) -> Any:
        z = X_ @ w_ + b_
        return jnp.mean(jnp.logaddexp(0.0, z) - y_ * z)

    value_and_grad = jax.jit(jax.value_and_grad(cost, argnums=(0, 1)))
    Xj, yj, wj, bj = (jax.device_put(a) for a in (X, y, w, np.float64(b)))
    jax.block_until_ready(value_and_grad(wj, bj, Xj, yj))  # compile (warm-up)

    def run() -> Any:
        return jax.block_until_ready(value_and_grad(wj, bj, Xj, yj))

    def result() -> tuple[float, Array, float]:
        loss, (gw, gb) = run()
        return float(loss), np.asarray(gw), float(gb)

    run.result = result  # type: ignore[attr-defined]
    return run


IMPLS: dict[str, Callable[[Array, Array, Array, float], Callable[[], Any]]] = {
    "service": make_service,
    "evaluate": make_evaluate,
    "fused": make_fused,
    "numpy": make_numpy,
    "torch": make_torch,
    "jax": make_jax,
    "read": make_read,
}


def _result_of(run: Callable[[], Any]) -> tuple[float, Array, float]:
    result = getattr(run, "result", None)
    return result() if result is not None else run()  # type: ignore[no-any-return]


def compute(impl: str, data: Path, sizes: list[tuple[int, int]], reps: int) -> dict[str, Any]:
    factory = IMPLS[impl]
    out: dict[str, Any] = {"impl": impl, "sizes": {}}
    if impl == "fused":
        entry = fused_entry()
        out["entry"] = entry[0] if entry else None
        if entry is None:
            return out
    if impl != "read":  # the check before any timing: same numbers as the service on a small problem
        Xs, ys, ws, bs = logistic_problem(1000, 10, seed=3)
        agree(impl, _result_of(factory(Xs, ys, ws, bs)), service_result(Xs, ys, ws, bs))
    for m, n in sizes:
        X = np.load(data / f"X_{m}x{n}.npy")
        y = np.load(data / f"y_{m}.npy")
        w = np.load(data / f"w_{n}.npy")
        run = factory(X, y, w, 0.25)
        times = timed(run, reps)
        entry: dict[str, Any] = {"times": times, "median": statistics.median(times), "min": min(times)}
        if impl != "read":
            loss, gw, gb = _result_of(run)
            entry["loss"], entry["grad_w"], entry["grad_b"] = loss, np.asarray(gw).tolist(), gb
        out["sizes"][f"{m}x{n}"] = entry
        del X, run
    return out


def write_data(data: Path, sizes: list[tuple[int, int]]) -> None:
    """The compute section's arrays, made once by the suite and loaded by every anchor process."""
    data.mkdir(parents=True, exist_ok=True)
    for m, n in sizes:
        X, y, w, _ = logistic_problem(m, n, seed=11, digits=None)
        np.save(data / f"X_{m}x{n}.npy", X)
        np.save(data / f"y_{m}.npy", y)
        np.save(data / f"w_{n}.npy", w)


# --- the big request's floor -----------------------------------------------------------------------


def floor(body_path: Path) -> dict[str, Any]:
    """orjson.loads + np.asarray + numpy compute + orjson.dumps of the big body, timed in this process."""
    import orjson

    body = body_path.read_bytes()
    before = vm_hwm_kib()
    t0 = time.perf_counter()
    req = orjson.loads(body)
    X = np.asarray(req["data"]["X"], dtype=np.float64)
    y = np.asarray(req["data"]["y"], dtype=np.float64)
    w = np.asarray(req["parameters"]["w"], dtype=np.float64)
    loss, grad_w, grad_b = logistic_numpy(X, y, w, float(req["parameters"]["b"]))
    out = orjson.dumps({"loss": loss, "gradients": {"w": grad_w, "b": grad_b}}, option=orjson.OPT_SERIALIZE_NUMPY)
    elapsed = time.perf_counter() - t0
    return {
        "seconds": elapsed,
        "peak_extra_bytes": (vm_hwm_kib() - before) * 1024,
        "response_bytes": len(out),
        "loss": loss,
        "grad_w": grad_w.tolist(),
        "grad_b": grad_b,
    }


# --- explain, grading and cost growth (the service alone, in-process) ------------------------------


def explain(m: int, n: int, reps: int) -> dict[str, Any]:
    from service.compute.breakdown import build_breakdown
    from service.compute.models import evaluate, gradients
    from service.runtime import tune_allocator

    tune_allocator()
    problem = service_problem(*logistic_problem(m, n, seed=5))
    plain, factors = [], []
    gradients(problem)  # what POST /gradient runs without explain
    build_breakdown(problem, evaluate(problem), full=False)
    for _ in range(reps):  # interleaved
        t0 = time.perf_counter()
        gradients(problem)
        t1 = time.perf_counter()
        build_breakdown(problem, evaluate(problem), full=False)
        t2 = time.perf_counter()
        plain.append(t1 - t0)
        factors.append(t2 - t1)
    return {"none": statistics.median(plain), "factors": statistics.median(factors), "reps": reps}


def grading(answers: int, reps: int) -> dict[str, Any]:
    from pydantic import TypeAdapter

    from service.http.handlers.grading import grade_batch
    from service.http.schemas.grading import GradeBatchRequest
    from service.http.wire.encoding import dumps
    from service.http.wire.json import parse
    from service.settings import Settings
    from tests.benchmarks.bench_grade_batch import PROBLEM, make_class

    batch, _ = make_class(answers, 1)
    body = json.dumps({"problem": PROBLEM, "answers": batch}, allow_nan=True).encode()
    settings = Settings()
    adapter: TypeAdapter[Any] = TypeAdapter(GradeBatchRequest)
    times = timed(lambda: dumps(grade_batch(parse(adapter, body), settings)), reps)
    return {"seconds": statistics.median(times), "times": times, "answers": answers, "body_bytes": len(body)}


def growth(m_list: list[int], n_list: list[int], m_fixed: int, n_fixed: int, budget: float) -> dict[str, Any]:
    from service.compute.models import gradients
    from service.runtime import tune_allocator

    tune_allocator()

    def point(m: int, n: int) -> dict[str, float]:
        X, y, w, b = logistic_problem(m, n, seed=13, digits=None)
        problem = service_problem(X, y, w, b)
        return {
            "m": m,
            "n": n,
            "service": adaptive(lambda: gradients(problem), budget),
            "numpy": adaptive(lambda: logistic_numpy(X, y, w, b), budget),
        }

    return {
        "vs_m": [point(m, n_fixed) for m in m_list],
        "vs_n": [point(m_fixed, n) for n in n_list],
        "m_fixed": m_fixed,
        "n_fixed": n_fixed,
    }


def _sizes(text: str) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in (s.split("x") for s in text.split(","))]


def _ints(text: str) -> list[int]:
    return [int(s) for s in text.split(",")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.worker")
    sub = parser.add_subparsers(dest="task", required=True)
    p = sub.add_parser("compute")
    p.add_argument("impl", choices=sorted(IMPLS))
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--sizes", type=_sizes, required=True)
    p.add_argument("--reps", type=int, default=5)
    p = sub.add_parser("write-data")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--sizes", type=_sizes, required=True)
    p = sub.add_parser("floor")
    p.add_argument("--body", type=Path, required=True)
    p = sub.add_parser("explain")
    p.add_argument("--m", type=int, default=10_000)
    p.add_argument("--n", type=int, default=4)
    p.add_argument("--reps", type=int, default=30)
    p = sub.add_parser("grading")
    p.add_argument("--answers", type=int, default=1000)
    p.add_argument("--reps", type=int, default=5)
    p = sub.add_parser("growth")
    p.add_argument("--m-list", type=_ints, required=True)
    p.add_argument("--n-list", type=_ints, required=True)
    p.add_argument("--m-fixed", type=int, default=10_000)
    p.add_argument("--n-fixed", type=int, default=20)
    p.add_argument("--budget", type=float, default=0.2)
    args = parser.parse_args(argv)
    if args.task == "compute":
        emit(compute(args.impl, args.data, args.sizes, args.reps))
    elif args.task == "write-data":
        write_data(args.data, args.sizes)
        emit({"written": str(args.data)})
    elif args.task == "floor":
        emit(floor(args.body))
    elif args.task == "explain":
        emit(explain(args.m, args.n, args.reps))
    elif args.task == "grading":
        emit(grading(args.answers, args.reps))
    else:
        emit(growth(args.m_list, args.n_list, args.m_fixed, args.n_fixed, args.budget))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

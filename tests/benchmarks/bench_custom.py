"""What a custom formula costs: one forward and backward pass of a formula pairing, by formula size and m.

    python -m tests.benchmarks.bench_custom [--m 1000 100000 1000000] [--repeat 3] [--limit 20000000]

For each formula (a small one, the issue's example, and formulas near the limits of service/formulas/limits.py:
1,000 nodes, 64 levels), it reports the nodes of g, g', L and L' (the tree walks that evaluation makes), the
time of `forward_backward` on m examples (best of --repeat), the time per node and example, and the peak of
numpy's allocations (tracemalloc sees them); then the same at the largest m the settings admit for it in one
pass, m = max_formula_work // nodes (--limit). A script that measures and reports, not a test.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from service.compute.custom import FormulaActivation, FormulaLoss, resolve_pairing
from service.formulas.tree import count_nodes
from service.settings import Settings

# 95 terms c·tanh(z)/(1 + z^2) of 10 nodes each: 950 nodes in 1,995 characters, near both limits (1,000; 2,000).
WIDE = " + ".join(f"{k % 7 + 1}*tanh(z)/(1+z^2)" for k in range(95))
# tanh nested 30 deep: a derivative the chain rule makes 30 factors long (60 steps; 40 levels take 1.3 s to derive).
DEEP = "tanh(" * 30 + "z" + ")" * 30
CASES = [
    ("small", "tanh(z/2)", "log(cosh(f - y))"),
    ("wide activation (950 nodes)", WIDE, "(f - y)^2/2"),
    ("deep activation (30 levels)", DEEP, "(f - y)^2/2"),
    ("wide loss (800 nodes)", "z", " + ".join(f"{k % 5 + 1}*log(cosh(f-y))" for k in range(100))),
]


def nodes(act: FormulaActivation | None, loss: FormulaLoss | None) -> int:
    total = 0
    if act is not None:
        total += count_nodes(act.tree) + count_nodes(act.derivation.derivative)
    if loss is not None:
        total += count_nodes(loss.tree) + count_nodes(loss.derivation.derivative)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--m", type=int, nargs="+", default=[1_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--limit", type=int, default=Settings().max_formula_work, help="max_formula_work")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for label, act_text, loss_text in CASES:
        t0 = time.perf_counter()
        pairing = resolve_pairing({"formula": act_text}, {"formula": loss_text}, None, lambda tree: False)
        read = time.perf_counter() - t0
        act, loss = pairing.activation, pairing.loss
        assert isinstance(act, FormulaActivation) and isinstance(loss, FormulaLoss)
        total = nodes(act, loss)
        print(f"{label}: {total} nodes in g, g', L, L' (read and derived in {read * 1000:.1f} ms)")
        for m in [*args.m, args.limit // total]:
            z = rng.uniform(-2, 2, m)
            y = rng.uniform(-1, 1, m)
            best = float("inf")
            for _ in range(args.repeat):
                t = time.perf_counter()
                pairing.forward_backward(z, y)
                best = min(best, time.perf_counter() - t)
            tracemalloc.start()
            pairing.forward_backward(z, y)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            at_limit = " (the largest admitted)" if m == args.limit // total else ""
            print(
                f"  m={m:>9,}{at_limit}: {best * 1000:9.1f} ms, {best / (total * m) * 1e9:5.2f} ns per node·example, "
                f"peak {peak / 2**20:7.1f} MiB"
            )


if __name__ == "__main__":
    main()

"""Time POST /grade/formula's grading: one formula, and a five-step derivation.

    python -m tests.benchmarks.bench_grade_formula [--repeat 200] [--http]

In-process (service.http.handlers.grade_formula.grade_formula_request on a validated request, without
HTTP; with --http also through the ASGI app with a test client). Each case is timed `repeat` times
after one warm-up: "warm" is a question already prepared (its points, true values and mistake
variants cached, the usual case for a class answering one question), "cold" clears that cache
before each run (the first answer to a question). Prints p50 and p99 in milliseconds.

This is a script, not a test: the file is not named test_*.py and does not import pytest.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

from service.grading import formula_grade
from service.http.handlers.grade_formula import grade_formula_request
from service.http.schemas.grade_formula import GRADE_FORMULA_REQUEST

QUESTION = {"model": "logistic_regression", "target": "dL/dw_j"}
CASES: dict[str, dict[str, Any]] = {
    "one formula, correct": {"question": QUESTION, "answer": r"\left(\frac{1}{1+e^{-z}} - y\right) x_j"},
    "one formula, a mistake named": {"question": QUESTION, "answer": r"\frac{f - y}{f(1-f)} x_j"},
    "five-step derivation, wrong at step 4": {
        "question": QUESTION,
        "answer": {
            "steps": [
                r"\frac{\partial L}{\partial f}\frac{\partial f}{\partial z}\frac{\partial z}{\partial w_j}",
                r"\left(-\frac{y}{f} + \frac{1-y}{1-f}\right) \cdot f(1-f) \cdot x_j",
                r"\left(-y(1-f) + (1-y)f\right) x_j",
                r"\left(-\frac{y}{f} + (1-y) f\right) x_j",
                r"(f - y) x_j",
            ]
        },
    },
    "five-step derivation, correct": {
        "question": QUESTION,
        "answer": {
            "steps": [
                "dL/df * df/dz * dz/dw_j",
                "(-y/f + (1-y)/(1-f)) f(1-f) x_j",
                "(-y(1-f) + (1-y)f) x_j",
                "(-y + y f + f - y f) x_j",
                "(f - y) x_j",
            ]
        },
    },
}


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99


def timed(run: Callable[[], Any], repeat: int, cold: bool) -> list[float]:
    run()
    out = []
    for _ in range(repeat):
        if cold:
            formula_grade._CACHE.clear()
        t = time.perf_counter()
        run()
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--http", action="store_true", help="also through the ASGI app (test client)")
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {args.repeat} runs each (ms)")
    client = None
    if args.http:
        from fastapi.testclient import TestClient

        from service.app import create_app

        client = TestClient(create_app())
    for name, body in CASES.items():
        req = GRADE_FORMULA_REQUEST.validate_python(body)
        for cold in (False, True):
            repeat = args.repeat if not cold else max(10, args.repeat // 10)
            p50, p99 = percentiles(timed(lambda req=req: grade_formula_request(req, None), repeat, cold))
            print(f"{name:40s} {'cold' if cold else 'warm'}  in-process p50 {p50:8.2f}  p99 {p99:8.2f}")
        if client is not None:
            p50, p99 = percentiles(
                timed(lambda body=body: client.post("/grade/formula", json=body).raise_for_status(), args.repeat, False)
            )
            print(f"{name:40s} warm  HTTP       p50 {p50:8.2f}  p99 {p99:8.2f}")


if __name__ == "__main__":
    main()

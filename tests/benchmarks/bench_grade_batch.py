"""Time POST /grade/batch on a realistic class: one problem, 1,000 answers.

    python -m tests.benchmarks.bench_grade_batch [--answers 1000] [--repeat 7] [--seed 1]

Starts the real service (`python -m service serve`) on a free loopback port, waits for /readyz,
posts the batch N times with httpx (one warm-up first, not counted), then grades the same batch
in-process (service.http.handlers.grading.grade_batch, without HTTP) for the server-free figure, and stops
the server. Only 127.0.0.1 is used.

The class answers the docs/design/math.md worked example (logistic regression, w = [2, 3], b = 1, with l2
regularization λ = 0.7 so that the regularization mistakes apply): about 40% correct (printed to
8 to 12 significant figures), the rest each one catalogued mistake (its exact variant, from the
grader's own catalogue) or random numbers, a few of them malformed (NaN, a wrong shape, a string)
and a few with a misspelt part (graded as a problem object of their own). Half the answers also
give their per-example intermediates z, f and dL/dz.

This is a script, not a test: the file is not named test_*.py and does not import pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
from pydantic import TypeAdapter

from service.http.handlers.grading import grade_batch, reference_for
from service.http.schemas.gradient import GradientRequest
from service.http.schemas.grading import GradeBatchRequest
from service.http.wire.encoding import dumps
from service.http.wire.json import parse
from service.settings import Settings
from tests.system.server import running_service

WORKED_X = [[0.5, 1.5], [1, 1], [1.5, 0.5], [3, 0.5], [2, 2], [1, 2.5]]
PROBLEM: dict[str, Any] = {
    "model": "logistic_regression",
    "parameters": {"w": [2.0, 3.0], "b": 1.0},
    "data": {"X": WORKED_X, "y": [0, 0, 0, 1, 1, 1]},
    "regularization": {"kind": "l2", "lambda": 0.7},
}
GRADED_PARTS = ("loss", "gradients.w", "gradients.b")
PER_SAMPLE_PARTS = ("per_sample.z", "per_sample.f", "per_sample.dL_dz")


def _round(value: Any, digits: int) -> Any:
    """A learner's printout: every number to `digits` significant figures."""
    if isinstance(value, list):
        return [_round(v, digits) for v in value]
    return float(f"{value:.{digits - 1}e}")


def _answer(parts: dict[str, Any]) -> dict[str, Any]:
    """{"loss": .., "gradients.w": .., "per_sample.f": ..} as the nested answer object."""
    answer: dict[str, Any] = {}
    for name, value in parts.items():
        if "." in name:
            group, key = name.split(".", 1)
            answer.setdefault(group, {})[key] = value
        else:
            answer[name] = value
    return answer


def make_class(size: int, seed: int) -> tuple[list[dict[str, Any]], Counter[str]]:
    """`size` answers to PROBLEM and what each one is meant to be (for the sanity check)."""
    rng = random.Random(seed)
    settings = Settings()
    ref = reference_for(TypeAdapter(GradientRequest).validate_python(PROBLEM, strict=True), settings)
    expected = {name: np.asarray(value).tolist() for name, value in ref.expected.items()}
    variants = {code: {p: np.asarray(v).tolist() for p, v in parts.items()} for code, parts in ref.variants.items()}
    codes = sorted(variants)
    answers: list[dict[str, Any]] = []
    kinds: Counter[str] = Counter()
    for _ in range(size):
        names = list(GRADED_PARTS) + (list(PER_SAMPLE_PARTS) if rng.random() < 0.5 else [])
        parts = {name: expected[name] for name in names}
        roll = rng.random()
        if roll < 0.40:
            kind = "correct"
        elif roll < 0.85:
            kind = rng.choice(codes)
            parts.update({p: v for p, v in variants[kind].items() if p in parts})
        elif roll < 0.99:
            kind = "random"
            for name in rng.sample(names, rng.randint(1, len(names))):
                parts[name] = (
                    np.asarray([rng.gauss(0.0, 2.0) for _ in range(np.asarray(expected[name]).size)])
                    .reshape(np.shape(expected[name]))
                    .tolist()
                )
            odd = rng.random()
            if odd < 0.1:
                parts["gradients.w"] = [float("nan"), 0.5]
            elif odd < 0.2:
                parts["gradients.w"] = [0.1, 0.2, 0.3]
            elif odd < 0.25:
                parts["gradients.b"] = "0.49"
        else:
            kind = "misspelt"
        answer = _answer({name: _round(v, rng.randint(8, 12)) if kind != "random" else v for name, v in parts.items()})
        if kind == "misspelt":
            answer["gradients"]["W"] = answer["gradients"].pop("w")
        kinds[kind] += 1
        answers.append(answer)
    return answers, kinds


def _time(fn: Callable[[], Any], repeat: int) -> list[float]:
    fn()  # warm-up, not counted
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.bench_grade_batch", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--answers", type=int, default=1000, help="answers in the batch (default 1000)")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs of each kind (default 7)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the class's answers (default 1)")
    args = parser.parse_args(argv)

    answers, kinds = make_class(args.answers, args.seed)
    request = {"problem": PROBLEM, "answers": answers}
    body = json.dumps(request, allow_nan=True).encode()
    n = len(answers)
    print(f"class: {n} answers, " + ", ".join(f"{k} {v}" for k, v in kinds.most_common(6)) + ", ...")
    print(f"request: {len(body):,} bytes")

    rows: list[tuple[str, list[float], int]] = []
    response_size = 0
    summary: dict[str, Any] = {}
    with running_service() as service, httpx.Client(base_url=service.base, timeout=60.0) as client:
        headers = {"Content-Type": "application/json"}

        def post() -> None:
            nonlocal response_size, summary
            response = client.post("/grade/batch", content=body, headers=headers)
            response.raise_for_status()
            response_size = len(response.content)
            summary = response.json()

        rows.append(("HTTP POST /grade/batch (httpx, loopback)", _time(post, args.repeat), response_size))

    settings = Settings()
    adapter: TypeAdapter[Any] = TypeAdapter(GradeBatchRequest)
    parsed = parse(adapter, body)
    in_process_size = len(dumps(grade_batch(parsed, settings)))
    rows.append(
        (
            "in-process parse + grade_batch + encode",
            _time(lambda: dumps(grade_batch(parse(adapter, body), settings)), args.repeat),
            in_process_size,
        )
    )
    rows.append(("in-process grade_batch only", _time(lambda: grade_batch(parsed, settings), args.repeat), 0))

    results = summary["results"]
    correct = sum(1 for r in results if r.get("correct") is True)
    problems = sum(1 for r in results if "type" in r)
    named = Counter(c["mistake"]["code"] for r in results for c in r.get("checks", []) if c.get("mistake") is not None)
    print(
        f"graded: {correct} fully correct, {problems} problem objects (misspelt parts), "
        f"{sum(named.values())} wrong parts explained by a catalogued mistake ({len(named)} different codes)"
    )
    print()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"{n} answers, {args.repeat} timed runs each (after one warm-up); answers/s from the median; "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average {load}"
    )
    header = f"| {'what':<42} | {'median ms':>9} | {'min ms':>8} | {'answers/s':>9} | {'response':>12} |"
    print(header)
    print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
    for what, times, size in rows:
        med, low = statistics.median(times), min(times)
        size_text = f"{size:,} B" if size else "—"
        print(f"| {what:<42} | {med * 1e3:>9.1f} | {low * 1e3:>8.1f} | {n / med:>9,.0f} | {size_text:>12} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

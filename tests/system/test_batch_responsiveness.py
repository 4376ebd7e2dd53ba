"""A maximum /grade/batch does not stall the worker: /healthz keeps p99 ≤ 50 ms while it is graded.

The batch is graded in slices of about 10 ms in a worker thread, the event loop running alone
between them, its answers validated one by one (never in one long call) and its results encoded
as they come. This runs against a real one-worker server.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from typing import Any

import httpx
import pytest

from service.http.handlers.grading import ANSWER_WORK, BYTE_WORK, REFERENCE_PASSES, REFERENCE_WORK
from service.settings import Settings
from tests.system.server import running_service

pytestmark = pytest.mark.slow

PROBLEM: dict[str, Any] = {
    "model": "logistic_regression",
    "parameters": {"w": [1, 1], "b": -3},
    "data": {"X": [[0.5, 1.5], [1, 1], [1.5, 0.5], [3, 0.5], [2, 2], [1, 2.5]], "y": [0, 0, 0, 1, 1, 1]},
}


def _answers(n: int) -> list[dict[str, Any]]:
    """A class's answers, most of them wrong somewhere (wrong answers take the longest: each is diagnosed)."""
    out = []
    for i in range(n):
        out.append(
            {
                "loss": 0.36686678640551745 + (i % 3) * 0.1,
                "gradients": {
                    "w": [-0.20687020897043107, -0.14394676417074018 * (1 + i % 2)],
                    "b": -0.2171984948563006,
                },
                "per_sample": {
                    "z": [-1.0, -1.0, -1.0, 0.75 + i % 2, 1.0, 0.5],
                    "f": [0.27, 0.27, 0.27, 0.68, 0.73, 0.62],
                },
            }
        )
    return out


def _largest_batch() -> list[dict[str, Any]]:
    """As many answers as the default budget admits (and the item limit), as httpx sends them."""
    budget = Settings().max_batch_work - REFERENCE_WORK - REFERENCE_PASSES * 12
    per_answer = max(ANSWER_WORK + BYTE_WORK * (len(json.dumps(a)) + 2) for a in _answers(2))
    return _answers(min(Settings().max_batch_items, int(budget // per_answer * 0.97)))


def test_health_checks_stay_fast_while_the_largest_batch_is_graded() -> None:
    answers = _largest_batch()
    env = {
        "GRADIENT_SERVICE_API_KEYS": json.dumps({"g-key": ["grader"]}),
        "GRADIENT_SERVICE_RATE_LIMIT_PER_MINUTE": "0",
    }
    with running_service(env) as svc:
        headers = {"Authorization": "Bearer g-key"}
        outcome: dict[str, Any] = {}

        def post() -> None:
            t0 = time.perf_counter()
            r = httpx.post(
                svc.base + "/grade/batch", json={"problem": PROBLEM, "answers": answers}, headers=headers, timeout=120
            )
            outcome.update(status=r.status_code, seconds=time.perf_counter() - t0, body=r.json())

        with httpx.Client(base_url=svc.base, timeout=10) as probe:
            for _ in range(20):  # warm the connection and the route
                probe.get("/healthz")
            worker = threading.Thread(target=post)
            worker.start()
            latencies: list[float] = []
            while worker.is_alive():
                t0 = time.perf_counter()
                assert probe.get("/healthz").status_code == 200
                latencies.append(time.perf_counter() - t0)
                time.sleep(0.005)
            worker.join()
        assert outcome["status"] == 200, outcome.get("body")
        assert len(outcome["body"]["results"]) == len(answers)
        assert outcome["seconds"] > 0.5, "the batch is too small to test anything"
        latencies.sort()
        p99 = latencies[int(0.99 * (len(latencies) - 1))]
        print(
            f"\n{len(answers)} answers graded in {outcome['seconds']:.2f} s; /healthz during it: "
            f"{len(latencies)} probes, p50 {statistics.median(latencies) * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms, "
            f"max {latencies[-1] * 1e3:.1f} ms"
        )
        assert len(latencies) >= 20
        assert p99 <= 0.050, f"p99 {p99 * 1e3:.1f} ms"

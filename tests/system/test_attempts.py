"""Attempts counted across the worker processes of a real `python -m service serve`, and across a restart.

Two workers, `MAX_ATTEMPTS=5`: 12 gradings of one token at once by the student key are exactly 5
200s and 7 403s (with a count per worker, up to 10 would pass); the service restarted on the same
data directory and signing secret still refuses the token.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.system.server import Service, running_service

pytestmark = pytest.mark.slow

G = {"Authorization": "Bearer g"}
S = {"Authorization": "Bearer s"}
WORKED: dict[str, Any] = {
    "model": "logistic_regression",
    "parameters": {"w": [1, 1], "b": -3},
    "data": {"X": [[0.5, 1.5], [1, 1], [1.5, 0.5], [3, 0.5], [2, 2], [1, 2.5]], "y": [0, 0, 0, 1, 1, 1]},
}
ANSWER = {"loss": 0.36686678640551745}


def _env(data_dir: Path) -> dict[str, str]:
    return {
        "GRADIENT_SERVICE_API_KEYS": '{"g": ["grader"], "s": ["student"]}',
        "GRADIENT_SERVICE_SIGNING_SECRET": "system-attempts-secret-" + "x" * 16,
        "GRADIENT_SERVICE_MAX_ATTEMPTS": "5",
        "GRADIENT_SERVICE_RATE_LIMIT_PER_MINUTE": "100000",  # far above these requests: no 429
        "GRADIENT_SERVICE_RATE_LIMIT_BURST": "1000",
        "GRADIENT_SERVICE_DATA_DIR": str(data_dir),
        "WEB_CONCURRENCY": "2",
    }


def _workers(service: Service) -> list[int]:
    """The pids of the service's worker processes (the uvicorn supervisor's children it spawned)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) != service.proc.pid:
                continue
            cmdline = (entry / "cmdline").read_bytes()
            if b"spawn_main" in cmdline:  # not multiprocessing's resource tracker
                found.append(int(entry.name))
    return found


def _grade(service: Service, token: str) -> int:
    # a new connection each time, so the kernel may hand it to either worker
    r = httpx.post(service.base + "/grade", json={"problem_token": token, "answer": ANSWER}, headers=S, timeout=30)
    assert r.status_code in (200, 403), r.text
    if r.status_code == 403:
        body = r.json()
        assert body["type"].endswith(":forbidden") and body["max_attempts"] == 5, body
        assert "used its 5 attempts" in body["detail"]
    return r.status_code


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="counts the worker processes through /proc")
def test_attempts_hold_across_two_workers_and_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with running_service(env=_env(data_dir)) as service:
        assert len(_workers(service)) == 2, "two worker processes"
        r = httpx.post(service.base + "/problems/sign", json={"problem": WORKED, "expires_in": 3600}, headers=G)
        assert r.status_code == 200, r.text
        token = r.json()["problem_token"]
        statuses: list[int] = []
        barrier = threading.Barrier(12)

        def one() -> None:
            barrier.wait()
            statuses.append(_grade(service, token))

        threads = [threading.Thread(target=one) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(statuses) == [200] * 5 + [403] * 7, statuses
        assert "Traceback" not in service.log()
    assert (data_dir / "attempts.sqlite3").is_file()
    with running_service(env=_env(data_dir)) as restarted:
        assert _grade(restarted, token) == 403, "the restart did not forget the attempts"
        # a grader is not counted, and the token is still valid for it
        r = httpx.post(restarted.base + "/grade", json={"problem_token": token, "answer": ANSWER}, headers=G)
        assert r.status_code == 200, r.text

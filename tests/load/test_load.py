"""Load: the real service with two uvicorn workers, N clients posting the reference shape for a fixed time.

The client runs on the same two cores as the service (Python threads, one keep-alive connection
each), so the figures are a floor for the service, not its ceiling; they are printed and written
as JSON under pytest's tmp dir.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.load.loadgen import GRADE_EVERY, Load
from tests.system.server import running_service

pytestmark = pytest.mark.slow

CONCURRENCY = 8
DURATION_S = 10.0


def test_two_workers_under_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_service(env={"WEB_CONCURRENCY": "2"}) as svc, Load(svc.base, CONCURRENCY, DURATION_S) as load:
        load.wait()
        figures = load.figures()
        log = svc.log()
    figures["shape"] = f"logistic_regression 100x4 POST /gradient, 1 in {GRADE_EVERY} POST /grade"
    figures["workers"] = 2
    out = tmp_path / "load.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    with capsys.disabled():
        lat = figures["latency_ms"]
        print(
            f"\n[load] {figures['requests']} requests in {figures['duration_s']} s from {CONCURRENCY} clients: "
            f"{figures['req_per_s']} req/s, p50 {lat['p50']} ms, p99 {lat['p99']} ms, "
            f"5xx {figures['status_5xx']}, transport errors {figures['transport_errors']} -> {out}"
        )
    assert figures["requests"] > 100, figures
    assert load.server_errors() == [], load.server_errors()[:5]
    assert load.transport_errors() == [], load.transport_errors()[:5]
    assert figures["statuses"] == {"200": figures["requests"]}, figures
    assert figures["wrong_bodies"] == 0, "an answer under load differed from the same request's answer alone"
    errors = [line for line in log.splitlines() if '"level": "error"' in line or '"level": "critical"' in line]
    assert errors == [] and "Traceback" not in log, errors[:5] or log[-3000:]

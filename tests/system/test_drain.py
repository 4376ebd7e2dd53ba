"""Graceful shutdown of a real server: on SIGTERM, /readyz answers 503 for drain_seconds while everything
else is still served, in-flight requests complete, then the process exits with status 0."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from tests.system.server import running_service

pytestmark = pytest.mark.slow

DRAIN = 2.0
SMALL: dict[str, Any] = {
    "model": "logistic_regression",
    "parameters": {"w": [1, 1], "b": -3},
    "data": {"X": [[0.5, 1.5], [1, 1], [1.5, 0.5], [3, 0.5], [2, 2], [1, 2.5]], "y": [0, 0, 0, 1, 1, 1]},
}


def _big_body(m: int = 200_000) -> bytes:
    """A linear regression on m examples: a few MB of JSON, some tenths of a second to parse and compute."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(m, 2)).round(3)
    y = (X @ [0.5, -0.25] + 0.1).round(3)
    body = {
        "model": "linear_regression",
        "parameters": {"w": [0.1, 0.2], "b": 0.0},
        "data": {"X": X.tolist(), "y": y.tolist()},
    }
    return json.dumps(body).encode()


class SlowUpload:
    """POST /gradient with a big body sent in pieces over `seconds`, in a thread; `started` is set once the
    first piece is out (the request is then in flight for sure), `result` holds the status or the error."""

    def __init__(self, base: str, body: bytes, seconds: float, pieces: int = 10) -> None:
        self.started = threading.Event()
        self.result: int | BaseException | None = None
        self.finished_at = 0.0
        self._thread = threading.Thread(target=self._run, args=(base, body, seconds, pieces), daemon=True)
        self._thread.start()

    def _chunks(self, body: bytes, seconds: float, pieces: int) -> Iterator[bytes]:
        size = -(-len(body) // pieces)
        for i in range(pieces):
            yield body[i * size : (i + 1) * size]
            self.started.set()
            time.sleep(seconds / pieces)

    def _run(self, base: str, body: bytes, seconds: float, pieces: int) -> None:
        headers = {"content-type": "application/json", "content-length": str(len(body))}
        try:
            with httpx.Client(timeout=60) as client:
                r = client.post(base + "/gradient", content=self._chunks(body, seconds, pieces), headers=headers)
                r.read()
                self.result = r.status_code
                if r.status_code == 200:
                    assert r.json()["loss"] > 0
        except BaseException as exc:
            self.result = exc
        finally:
            self.finished_at = time.monotonic()

    def wait(self, timeout: float) -> int | BaseException | None:
        self._thread.join(timeout)
        return self.result


def test_sigterm_drains_then_exits_cleanly() -> None:
    body = _big_body()
    with running_service(env={"GRADIENT_SERVICE_DRAIN_SECONDS": str(DRAIN), "GRADIENT_SERVICE_API_KEYS": "{}"}) as svc:
        base = svc.base
        with httpx.Client(base_url=base, timeout=10) as client:
            assert client.get("/readyz").status_code == 200
            before = SlowUpload(base, body, seconds=0.5)
            assert before.started.wait(10), "the slow request did not start"
            svc.proc.send_signal(signal.SIGTERM)
            sent = time.monotonic()

            # within the drain period: not ready, but alive and serving
            deadline = sent + 1.0
            while (ready := client.get("/readyz")).status_code == 200 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert ready.status_code == 503, ready.text
            assert ready.json()["status"] == "not-ready"
            assert client.get("/healthz").status_code == 200
            r = client.post("/gradient", json=SMALL)
            assert r.status_code == 200, r.text
            assert r.json()["loss"] == pytest.approx(0.36686678640551745)
            assert time.monotonic() - sent < DRAIN, "the checks above ran too late to be within the drain period"
            assert svc.proc.poll() is None

            # a request still uploading when the drain ends is finished, not cut off
            time.sleep(max(0.0, sent + DRAIN - 0.5 - time.monotonic()))
            across = SlowUpload(base, body, seconds=1.0)
            assert across.started.wait(5), "the second slow request did not start"

        code = svc.proc.wait(timeout=DRAIN + 15)
        exited = time.monotonic()
        assert code == 0, svc.log()[-3000:]
        assert exited - sent >= DRAIN - 0.1, f"exited {exited - sent:.2f} s after SIGTERM, before the drain ended"

        assert before.wait(10) == 200, before.result
        assert before.finished_at > sent, "the first request was not in flight at SIGTERM"
        assert across.wait(10) == 200, (across.result, svc.log()[-3000:])
        assert across.finished_at > sent + DRAIN, "the second request was not in flight when the drain ended"
        assert "draining" in svc.log().lower()


def test_without_drain_seconds_sigterm_stops_at_once() -> None:
    """The contrast: with the default drain_seconds = 0, SIGTERM stops the server without a 503 period."""
    with running_service(env={"GRADIENT_SERVICE_DRAIN_SECONDS": "0", "GRADIENT_SERVICE_API_KEYS": "{}"}) as svc:
        svc.proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        code = svc.proc.wait(timeout=15)
        assert code == 0, svc.log()[-3000:]
        assert time.monotonic() - sent < DRAIN
        assert "draining" not in svc.log().lower()


def test_with_several_workers_no_connection_waits_after_sigterm() -> None:
    """With two workers, every connection attempt after SIGTERM is served or refused at once, none queued.

    The supervisor used to keep its copy of the listening socket open until the last worker exited:
    once the workers had stopped accepting (the drain over, an upload still finishing), the kernel
    still queued new connections that nobody accepted, and they hung for seconds, then failed."""
    drain = 1.0
    env = {"WEB_CONCURRENCY": "2", "GRADIENT_SERVICE_DRAIN_SECONDS": str(drain), "GRADIENT_SERVICE_API_KEYS": "{}"}
    with running_service(env=env) as svc:
        deadline = time.monotonic() + 30
        while svc.log().count("Application startup complete") < 2:
            assert time.monotonic() < deadline, svc.log()[-3000:]
            time.sleep(0.1)
        # an upload in flight past the drain keeps its worker, and the supervisor, alive ~4 s more
        slow = SlowUpload(svc.base, _big_body(), seconds=drain + 4.0)
        assert slow.started.wait(10), "the slow request did not start"
        svc.proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        attempts: list[tuple[float, float, int | str]] = []
        while svc.proc.poll() is None and time.monotonic() - sent < 20:
            started = time.monotonic()
            try:
                outcome: int | str = httpx.get(svc.base + "/healthz", timeout=5.0).status_code
            except httpx.ConnectError:
                outcome = "refused"
            except httpx.TransportError as exc:
                outcome = type(exc).__name__
            attempts.append((started - sent, time.monotonic() - started, outcome))
            time.sleep(0.05)
        code = svc.proc.wait(timeout=20)
    assert code == 0, svc.log()[-3000:]
    assert slow.wait(10) == 200, slow.result
    assert slow.finished_at > sent + drain, "the upload was not in flight when the drain ended"
    slowest = max(attempts, key=lambda a: a[1])
    assert slowest[1] < 1.0, f"a connection attempt {slowest[0]:.2f} s after SIGTERM took {slowest[1]:.2f} s"
    outcomes = {a[2] for a in attempts}
    assert outcomes <= {200, "refused"}, attempts
    # served while draining, refused once the workers stopped accepting (the upload still finishing)
    assert any(a[2] == 200 for a in attempts if a[0] < drain - 0.2), attempts
    assert any(a[2] == "refused" for a in attempts if a[0] > drain + 0.5), attempts

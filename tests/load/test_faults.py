"""Faults under load: a uvicorn worker killed, a replica killed behind nginx, slow clients at nginx.

nginx is docker/nginx/nginx.conf run for real by tests/deploy/test_nginx.py's helpers (only the
listen address and the upstream servers replaced); where nginx cannot be had these tests skip and
say why, and under CI (CI=true) they fail instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import tests.deploy.test_nginx as nginx_helpers
from tests.load.loadgen import Load, open_sockets, workers
from tests.system.server import Service, running_service

pytestmark = pytest.mark.slow

CONCURRENCY = 8


def _say(capsys: pytest.CaptureFixture[str], text: str) -> None:
    with capsys.disabled():
        print(f"\n[faults] {text}")


# ---- a. a uvicorn worker killed -------------------------------------------------------------


def test_a_killed_worker_costs_at_most_the_requests_in_flight_and_is_replaced(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with running_service(env={"WEB_CONCURRENCY": "2"}) as svc:
        supervisor = svc.proc.pid
        deadline = time.monotonic() + 15
        while len(workers(supervisor)) != 2:
            assert time.monotonic() < deadline, f"two workers were not found under {supervisor}"
            time.sleep(0.1)
        before = workers(supervisor)
        with Load(svc.base, CONCURRENCY, duration=12.0) as load:
            time.sleep(3)
            # the worker holding the most connections (the kernel may give one worker most of them)
            sockets = {pid: open_sockets(pid) for pid in before}
            victim = max(before, key=lambda pid: sockets[pid])
            in_flight = load.in_flight
            killed_at = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            replaced_after = None
            for _ in range(400):  # at most ~20 s (CI, loaded, has taken 5 s; here it takes 0.3 s)
                now = workers(supervisor)
                if len(now) == 2 and victim not in now:
                    replaced_after = time.monotonic() - killed_at
                    break
                time.sleep(0.05)
            after = workers(supervisor)
            load.wait()
        new = next((pid for pid in after if pid not in before), None)
        # the replacement is found as a process before it has imported the service and logged its
        # start; on a loaded 2-core machine that takes seconds (CI once saw it miss the 4 s of load left)
        deadline = time.monotonic() + 30
        while new is not None and f"Started server process [{new}]" not in svc.log():
            assert time.monotonic() < deadline, f"worker {new} never logged its start:\n{svc.log()[-3000:]}"
            time.sleep(0.2)
        log = svc.log()
    figures = load.figures()
    errors = load.transport_errors()
    _say(
        capsys,
        f"worker {victim} SIGKILLed ({sockets[victim]} sockets open, {in_flight} requests in flight): "
        f"{len(errors)} transport errors, {figures['status_5xx']} 5xx of {figures['requests']} requests; "
        f"workers {before} -> {after}, replaced after "
        f"{'never' if replaced_after is None else f'{replaced_after:.2f} s'}",
    )
    assert load.server_errors() == [], load.server_errors()[:5]
    # each client has one connection: the requests lost are the ones on the dead worker's connections
    assert len(errors) <= CONCURRENCY, [e.error for e in errors]
    # ... and only around the kill: nothing fails once the connections are remade
    assert all(killed_at - 11 <= e.start <= killed_at + 1 for e in errors), [(e.start - killed_at) for e in errors]
    assert sum(o.start > killed_at + 1 and o.status == 200 for o in load.outcomes) > 100, figures
    # uvicorn's supervisor replaces the dead worker
    assert replaced_after is not None and replaced_after < 20, f"workers {before} -> {after}"
    assert new is not None
    assert f"Child process [{victim}] died" in log
    assert f"Started server process [{new}]" in log


# ---- nginx in front of two single-worker replicas -------------------------------------------


def _nginx_or_skip() -> None:
    nginx_helpers._nginx()  # skips, or fails under CI, when nginx cannot be had


def _access_log(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


@contextlib.contextmanager
def _stack() -> Iterator[tuple[str, Path, list[Service]]]:
    _nginx_or_skip()
    with contextlib.ExitStack() as stack:
        services = [stack.enter_context(running_service()) for _ in range(2)]
        base, log = stack.enter_context(nginx_helpers.running_nginx([s.base.removeprefix("http://") for s in services]))
        yield base, log, services


# A response whose header nginx has already relayed to the client cannot be retried: uvicorn writes
# a response's header and its body in two writes, and a replica killed between the two leaves the
# client a truncated answer (nginx: "upstream prematurely closed connection while reading
# upstream"). That window is microseconds wide; it was hit about once in 15 kills under 8 clients.
TRUNCATED = "peer closed connection without sending complete message body"


def test_b_a_replica_killed_behind_nginx_loses_no_unanswered_request(capsys: pytest.CaptureFixture[str]) -> None:
    with _stack() as (base, log, services), Load(base, CONCURRENCY, duration=10.0) as load:
        time.sleep(3)
        killed_at = time.monotonic()
        services[0].proc.kill()
        services[0].proc.wait()
        load.wait()
        time.sleep(0.3)  # the access log is written after the response
        entries = _access_log(log)
        error_log = (log.parent / "error.log").read_text()
    figures = load.figures()
    dead = services[0].base.removeprefix("http://")
    retried = [e for e in entries if str(e["upstream"]).startswith(dead + ", ")]
    errors = load.transport_errors()
    truncated_by_nginx = error_log.count("upstream prematurely closed connection while reading upstream")
    _say(
        capsys,
        f"replica {dead} SIGKILLed behind nginx: {figures['requests']} requests, "
        f"{len(errors)} transport errors ({[e.error for e in errors]}), {figures['status_5xx']} 5xx, "
        f"{len(retried)} retried on the other replica, p99 {figures['latency_ms']['p99']} ms",
    )
    assert load.server_errors() == [], load.server_errors()[:5]
    assert figures["statuses"] == {"200": figures["requests"] - len(errors)}, figures
    assert figures["wrong_bodies"] == 0
    assert sum(o.start > killed_at + 1 for o in load.outcomes) > 100, figures
    # the requests that met the dead replica before it answered (in flight, or on a kept-alive
    # connection) were retried on the other one
    assert retried, "no request was retried on the other replica: the kill was not under load"
    assert all(e["status"] == 200 for e in retried), retried[:3]
    # none failed, but for answers already begun when the replica died (see TRUNCATED above)
    assert all(e.error is not None and TRUNCATED in e.error for e in errors), [e.error for e in errors]
    assert len(errors) <= min(CONCURRENCY, truncated_by_nginx), (len(errors), truncated_by_nginx)
    assert all(killed_at - 11 <= e.start <= killed_at + 1 for e in errors), [(e.start - killed_at) for e in errors]


# ---- c. slow clients ------------------------------------------------------------------------

# docker/nginx/nginx.conf has client_header_timeout 10s and client_body_timeout 30s; the test runs
# the same file with these two shortened (and nothing else changed) so that it takes seconds.
HEADER_TIMEOUT_S = 2
BODY_TIMEOUT_S = 2
SLOW_CLIENTS = 4  # of each kind


Render = Callable[[Path, int, list[str]], Path]


def _short_timeouts(render: Render) -> Render:
    """tests/deploy/test_nginx.py's render, then the two timeouts shortened (only for this test)."""

    def patched(prefix: Path, port: int, upstreams: list[str]) -> Path:
        conf = render(prefix, port, upstreams)
        text = conf.read_text()
        text, n = re.subn(r"client_header_timeout \d+s;", f"client_header_timeout {HEADER_TIMEOUT_S}s;", text)
        assert n == 1, "nginx.conf's client_header_timeout was not found"
        text, n = re.subn(r"client_body_timeout \d+s;", f"client_body_timeout {BODY_TIMEOUT_S}s;", text)
        assert n == 1, "nginx.conf's client_body_timeout was not found"
        conf.write_text(text)
        return conf

    return patched


@dataclass
class Slow:
    """What one slow client saw: when nginx closed the connection (None: never), and what it sent back."""

    kind: str
    request_id: str
    closed_after: float | None = None
    stopped_sending_after: float | None = None
    sent: int = 0
    answer: bytes = b""


def _slow_client(addr: tuple[str, int], slow: Slow, head: bytes, drip: bytes, drip_s: int, wait_s: float) -> None:
    """Send head, then one byte of drip per second for drip_s seconds, then nothing: until nginx closes
    the connection or wait_s more seconds pass."""
    start = time.monotonic()
    with socket.create_connection(addr, timeout=5) as s:
        s.settimeout(1.0)
        s.sendall(head)
        for i in range(drip_s + int(wait_s) + 1):
            if i < drip_s:
                try:
                    s.sendall(drip[i : i + 1])
                    slow.sent += 1
                except OSError:
                    slow.closed_after = time.monotonic() - start
                    return
            elif slow.stopped_sending_after is None:
                slow.stopped_sending_after = time.monotonic() - start
            try:
                data = s.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                slow.closed_after = time.monotonic() - start
                return
            if not data:
                slow.closed_after = time.monotonic() - start
                return
            slow.answer += data


def test_c_nginx_cuts_off_slow_clients_while_others_are_served(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(nginx_helpers, "render", _short_timeouts(nginx_helpers.render))
    drip_s = 3 * BODY_TIMEOUT_S  # well past client_body_timeout
    slows: list[tuple[Slow, bytes, bytes, int, float]] = []
    for i in range(SLOW_CLIENTS):
        rid = f"slow-header-{i}"
        # the request line, then the headers one byte a second (never finished within the test)
        head = f"POST /gradient HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-ID: {rid}\r\nX-Pad: ".encode()
        slows.append((Slow("header trickle", rid), head, b"a" * 20, 20, 0.0))
        rid = f"slow-stall-{i}"
        head = (
            "POST /gradient HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: 1000\r\nX-Request-ID: {rid}\r\n\r\n{{"
        ).encode()
        slows.append((Slow("body stalled", rid), head, b"", 0, BODY_TIMEOUT_S + 4.0))
        rid = f"slow-body-{i}"
        head = head.replace(b"slow-stall-", b"slow-body-")
        slows.append((Slow("body trickle", rid), head, b" " * drip_s, drip_s, BODY_TIMEOUT_S + 4.0))

    with _stack() as (base, log, services), Load(base, 4, duration=drip_s + BODY_TIMEOUT_S + 4.0) as load:
        host, port = base.removeprefix("http://").rsplit(":", 1)
        threads = [
            threading.Thread(target=_slow_client, args=((host, int(port)), slow, head, drip, n, wait), daemon=True)
            for slow, head, drip, n, wait in slows
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=40)
        assert not any(t.is_alive() for t in threads)
        load.wait()
        time.sleep(0.3)
        entries = {str(e["request_id"]): e for e in _access_log(log)}
        replica_logs = "".join(s.log() for s in services)

    figures = load.figures()
    by_kind: dict[str, list[Slow]] = {}
    for slow, *_ in slows:
        by_kind.setdefault(slow.kind, []).append(slow)
    _say(
        capsys,
        f"nginx (client_header_timeout {HEADER_TIMEOUT_S}s, client_body_timeout {BODY_TIMEOUT_S}s for the test) "
        + "; ".join(
            f"{kind}: closed after {[None if s.closed_after is None else round(s.closed_after, 1) for s in v]} s"
            for kind, v in by_kind.items()
        )
        + f"; meanwhile {figures['requests']} normal requests, statuses {figures['statuses']}, "
        f"{figures['transport_errors']} transport errors, p99 {figures['latency_ms']['p99']} ms",
    )
    # the others were served all along
    assert load.transport_errors() == [], load.transport_errors()[:5]
    assert figures["statuses"] == {"200": figures["requests"]} and figures["requests"] > 100, figures
    slack = 1.5
    for s in by_kind["header trickle"]:
        # client_header_timeout bounds the whole header: a trickle does not reset it
        assert s.closed_after is not None and s.closed_after <= HEADER_TIMEOUT_S + slack, s
    for s in by_kind["body stalled"]:
        assert s.closed_after is not None and s.closed_after <= BODY_TIMEOUT_S + slack, s
    for s in by_kind["body trickle"]:
        # client_body_timeout is between two reads of the body: one byte a second keeps it open ...
        assert s.sent == drip_s and s.stopped_sending_after is not None, s
        assert s.closed_after is not None, s
        # ... and it is cut off once the client stops sending
        assert s.stopped_sending_after <= s.closed_after <= s.stopped_sending_after + BODY_TIMEOUT_S + slack, s
    for slow, *_ in slows:
        # nginx closed without an answer (or with a 408), and no replica ever saw the request:
        # bodies are buffered whole by nginx before they go upstream
        assert slow.answer == b"" or slow.answer.startswith(b"HTTP/1.1 408"), slow
        assert slow.request_id not in replica_logs, slow
        entry = entries.get(slow.request_id)
        if entry is not None:  # nginx logs the body timeouts (408); a header never finished has no id yet
            assert entry["upstream"] == "" and entry["status"] == 408, entry

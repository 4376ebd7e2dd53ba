"""The HTTP protocol `python -m service serve` runs (service/server/protocol.py), against a real server over raw
sockets: a bound on the request line and headers (431, the connection closed, memory not held), and the
server's own refusals as problem+json."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.server import Service, running_service

pytestmark = pytest.mark.slow

MiB = 1 << 20
LIMIT = 65_536


@pytest.fixture(scope="module")
def svc() -> Iterator[Service]:
    with running_service(env={"GRADIENT_SERVICE_API_KEYS": "{}"}) as service:
        yield service


def _port(svc: Service) -> int:
    return int(svc.base.rsplit(":", 1)[1])


def _exchange(svc: Service, data: bytes, timeout: float = 10.0) -> bytes:
    """Send data (as much of it as the server takes), read until the server closes."""
    with socket.create_connection(("127.0.0.1", _port(svc)), timeout=timeout) as s:
        with contextlib.suppress(OSError):  # the server refused and closed before taking it all
            s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break  # a reset after the answer: the server closed with the rest unread
            if not chunk:
                break
            out += chunk
        return out


def _problem(answer: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body)


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_small_requests_are_served(svc: Service) -> None:
    answer = _exchange(svc, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    # headers up to the limit, in many lines, are fine
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(LIMIT // 200))
    answer = _exchange(svc, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + b"Connection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]


@pytest.mark.parametrize(
    "head",
    [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * MiB + b"\r\n\r\n",  # one big header
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"b" * 100) for i in range(10_000)),
        b"GET /healthz?" + b"q" * MiB + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # a big request line
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * MiB,  # never finished
    ],
    ids=["one-header", "many-headers", "request-line", "unfinished"],
)
def test_a_head_over_the_limit_is_a_431_problem_and_the_connection_closed(svc: Service, head: bytes) -> None:
    started = time.monotonic()
    answer = _exchange(svc, head)
    assert time.monotonic() - started < 5, "the server did not close the connection"
    status, headers, body = _problem(answer)
    assert status == 431, answer[:300]
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    assert body["type"] == "urn:gradient-service:problem:headers-too-large"
    assert str(LIMIT) in str(body["detail"])


def test_an_unparsable_request_is_a_400_problem(svc: Service) -> None:
    for garbage in (b"GARBAGE\x00 / HTTP/1.1\r\n\r\n", b"GET / HTTP/1.1\r\nBad Header\r\n\r\n"):
        status, headers, body = _problem(_exchange(svc, garbage))
        assert status == 400
        assert headers["content-type"] == "application/problem+json"
        assert body["type"] == "urn:gradient-service:problem:invalid-request"


def test_big_heads_on_many_connections_do_not_grow_the_server(svc: Service) -> None:
    """The review's attack: twenty connections each sending a 1 MB header (never finished) held 20 MB
    and more; now each is refused after the limit and its buffer dropped."""
    before = _rss_mib(svc.proc.pid)
    sockets = []
    try:
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", _port(svc)), timeout=10)
            with contextlib.suppress(OSError):
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * MiB)
            sockets.append(s)
        time.sleep(0.5)
        grown = _rss_mib(svc.proc.pid) - before
        assert grown < 5, f"the server grew by {grown:.1f} MiB for 20 connections of 1 MiB"
        for s in sockets:
            assert s.recv(100).startswith(b"HTTP/1.1 431 ")
    finally:
        for s in sockets:
            s.close()
    answer = _exchange(svc, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_the_limit_is_a_setting() -> None:
    with running_service(env={"GRADIENT_SERVICE_API_KEYS": "{}", "GRADIENT_SERVICE_MAX_HEADER_BYTES": "2048"}) as svc:
        status, _, _ = _problem(
            _exchange(svc, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 4000 + b"\r\n\r\n")
        )
        assert status == 431
        answer = _exchange(
            svc, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 1000 + b"\r\nConnection: close\r\n\r\n"
        )
        assert answer.startswith(b"HTTP/1.1 200 ")


def test_big_trailers_are_bounded_too(svc: Service) -> None:
    """A chunked body's trailers are headers httptools holds whole as well: the connection is closed
    (the request already in progress, no answer can be sent) and the memory not held."""
    before = _rss_mib(svc.proc.pid)
    start = (
        b"POST /gradient HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-Trailer: "
    )
    sockets = []
    try:
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", _port(svc)), timeout=5)
            with contextlib.suppress(OSError):
                s.sendall(start + b"a" * MiB)
            sockets.append(s)
        time.sleep(0.5)
        grown = _rss_mib(svc.proc.pid) - before
        assert grown < 5, f"the server grew by {grown:.1f} MiB for 20 trailers of 1 MiB"
        for s in sockets:
            with contextlib.suppress(ConnectionResetError):  # closed with the rest unread
                assert s.recv(100) == b""
    finally:
        for s in sockets:
            s.close()
    # a small chunked request with a small trailer is served
    answer = _exchange(
        svc, b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]

"""The body read timeout against the real server: a body that stalls is a 408 within
BODY_READ_TIMEOUT_SECONDS (plus a margin); a slow but steady one that ends in time is served."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from tests.system.server import Service, running_service

pytestmark = pytest.mark.slow

TIMEOUT = 2.0
BODY = json.dumps(
    {
        "model": "logistic_regression",
        "parameters": {"w": [0.0, 0.0], "b": 0.0},
        "data": {"X": [[0.5, 1.5], [1.0, 1.0], [1.5, 0.5], [3.0, 0.5]], "y": [0, 0, 1, 1]},
    }
).encode()


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    with running_service(env={"GRADIENT_SERVICE_BODY_READ_TIMEOUT_SECONDS": str(TIMEOUT)}) as svc:
        yield svc


def _connect(svc: Service) -> socket.socket:
    port = int(svc.base.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT + 10)
    head = (
        f"POST /gradient HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\n\r\n"
    )
    sock.sendall(head.encode())
    return sock


def _response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 4 + _length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def test_a_stalled_body_is_a_408_within_the_timeout(service: Service) -> None:
    with _connect(service) as sock:
        start = time.monotonic()
        sock.sendall(BODY[:20])  # and nothing more
        data = _response(sock)
        elapsed = time.monotonic() - start
    status_line, _, rest = data.partition(b"\r\n")
    assert status_line.split()[1] == b"408", data[:500]
    assert b"application/problem+json" in rest.split(b"\r\n\r\n")[0]
    problem = json.loads(rest.split(b"\r\n\r\n", 1)[1])
    assert problem["type"] == "urn:gradient-service:problem:body-timeout"
    assert problem["timeout_seconds"] == TIMEOUT
    assert TIMEOUT - 0.2 <= elapsed <= TIMEOUT + 2.0, elapsed
    print(f"\n408 after {elapsed:.2f} s (timeout {TIMEOUT} s)")


def test_a_slow_but_steady_body_within_the_timeout_is_served(service: Service) -> None:
    pieces = [BODY[i : i + 12] for i in range(0, len(BODY), 12)]
    pause = (TIMEOUT * 0.6) / len(pieces)  # the whole body in about 60% of the timeout
    with _connect(service) as sock:
        start = time.monotonic()
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(pause)
        data = _response(sock)
        elapsed = time.monotonic() - start
    assert data.split(b"\r\n", 1)[0].split()[1] == b"200", data[:500]
    assert elapsed > TIMEOUT * 0.5
    # the service still answers on new connections
    with _connect(service) as sock:
        sock.sendall(BODY)
        assert _response(sock).split(b"\r\n", 1)[0].split()[1] == b"200"

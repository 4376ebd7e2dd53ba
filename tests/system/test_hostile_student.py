"""A hostile student, end to end, against a real two-worker server started with keys.

What the student has: a student key and one signed problem token. What they try: to choose their
own tolerance and points, to buy credit by carry-forward from made-up values, to grade more often
than the attempt limit allows (over two workers, and again after a restart), to pass a token whose
payload is not a problem, and to exhaust a worker with a huge body or a huge header.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import socket
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson
import pytest

from tests.system.server import running_service

pytestmark = pytest.mark.slow

SECRET = "hostile-test-secret-" + "x" * 20
KEYS = {"grader-key": ["grader"], "student-key": ["student"]}
G = {"Authorization": "Bearer grader-key"}
S = {"Authorization": "Bearer student-key"}
MAX_ATTEMPTS = 5
WORKED: dict[str, Any] = {
    "model": "logistic_regression",
    "parameters": {"w": [1, 1], "b": -3},
    "data": {"X": [[0.5, 1.5], [1, 1], [1.5, 0.5], [3, 0.5], [2, 2], [1, 2.5]], "y": [0, 0, 0, 1, 1, 1]},
}
RIGHT = {
    "loss": 0.36686678640551745,
    "gradients": {"w": [-0.20687020897043107, -0.14394676417074018], "b": -0.2171984948563006 / 6},
}
WRONG = {"loss": 12345.0, "gradients": {"w": [0.0, 0.0], "b": 0.0}}


def _env(data_dir: str) -> dict[str, str]:
    return {
        "GRADIENT_SERVICE_API_KEYS": json.dumps(KEYS),
        "GRADIENT_SERVICE_SIGNING_SECRET": SECRET,
        "GRADIENT_SERVICE_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        "GRADIENT_SERVICE_RATE_LIMIT_PER_MINUTE": "100000",
        "GRADIENT_SERVICE_RATE_LIMIT_BURST": "10000",
        "GRADIENT_SERVICE_DATA_DIR": data_dir,
        "WEB_CONCURRENCY": "2",
    }


def _forge(payload: bytes) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return b64(payload) + "." + b64(hmac.new(SECRET.encode(), payload, hashlib.sha256).digest())


def _problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert "Traceback" not in r.text
    return body


def _raw_request(port: int, head: bytes, body: bytes = b"", timeout: float = 10.0) -> tuple[bytes, float]:
    """Send bytes on a fresh connection; the first bytes of the answer and how long they took."""
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head + body)  # the server may answer and close before the rest is sent
        try:
            answer = sock.recv(4096)
        except ConnectionResetError:
            answer = b""
    return answer, time.perf_counter() - t0


def test_a_hostile_student_gains_nothing() -> None:
    data_dir = tempfile.mkdtemp(prefix="gradient-attempts-")
    with running_service(_env(data_dir)) as svc:
        port = int(svc.base.rsplit(":", 1)[1])
        with httpx.Client(base_url=svc.base, timeout=30) as c:
            signed = c.post("/problems/sign", json={"problem": WORKED}, headers=G)
            assert signed.status_code == 200, signed.text
            token = signed.json()["problem_token"]

            # 1. a chosen tolerance, chosen points, a chosen share of carry-forward: each refused, by name
            for field, value in (
                ("tolerance", {"rtol": 1e300, "atol": 1e300}),
                ("points", {"loss": 1e6}),
                ("carry_forward_credit", 1.0),
                ("reveal", True),
            ):
                r = c.post("/grade", json={"problem_token": token, "answer": WRONG, field: value}, headers=S)
                assert _problem(r, 403)["fields"] == [field]

            # 2. carry-forward from made-up values (zeros for dL/dz and the gradients): no credit
            zeros = {"per_sample": {"dL_dz": [0.0] * 6}, "gradients": {"w": [0.0, 0.0], "b": 0.0}}
            r = c.post("/grade", json={"problem_token": token, "answer": zeros}, headers=S)
            assert r.status_code == 200 and r.json()["points"] == 0.0, r.text

            # 3. tokens whose HMAC is valid but whose payload is not a problem: 403, never a 500
            later = int(time.time()) + 3600
            for payload in (
                b"not json",
                b"[1, 2]",
                orjson.dumps({"problem": WORKED}),
                orjson.dumps({"exp": later, "problem": {**WORKED, "model": "unknown"}}),
                orjson.dumps({"exp": later, "problem": WORKED, "grading": {"bonus_points": 100}}),
            ):
                r = c.post("/grade", json={"problem_token": _forge(payload), "answer": RIGHT}, headers=S)
                _problem(r, 403)

        # 4. a huge body with a fake token: refused from its Content-Length, before it is read
        head = (
            b"POST /grade HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer student-key\r\n"
            b"Content-Type: application/json\r\nContent-Length: 60000000\r\n\r\n"
        )
        answer, seconds = _raw_request(port, head, b'{"problem_token": "fake", "answer": {"loss": [' + b"1," * 4096)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert seconds < 2.0

        # 5. a huge request header: refused by the server before it is held (no key needed to try)
        huge = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: " + b"a" * 1_000_000 + b"\r\n\r\n"
        answer, seconds = _raw_request(port, huge)
        assert answer == b"" or answer.split(b" ", 2)[1] in (b"400", b"431"), answer[:200]
        assert seconds < 5.0

        # 6. more gradings than the attempt limit, at once, over two workers: exactly the limit pass
        with httpx.Client(base_url=svc.base, timeout=30) as c:
            # another expiry: the same problem signed in the same second with the same options is the same token
            fresh = c.post("/problems/sign", json={"problem": WORKED, "expires_in": 7200}, headers=G).json()
            fresh = fresh["problem_token"]
            assert fresh != token

        def attempt(_: int) -> int:
            with httpx.Client(base_url=svc.base, timeout=30) as client:  # new connections: both workers take some
                return client.post("/grade", json={"problem_token": fresh, "answer": RIGHT}, headers=S).status_code

        with ThreadPoolExecutor(15) as pool:
            statuses = sorted(pool.map(attempt, range(30)))
        assert statuses == [200] * MAX_ATTEMPTS + [403] * (30 - MAX_ATTEMPTS), statuses
        assert "Started server process" in svc.log() and svc.log().count("Started server process") >= 2

    # 7. a restart on the same data directory: the attempts are still used up
    with running_service(_env(data_dir)) as svc, httpx.Client(base_url=svc.base, timeout=30) as c:
        r = c.post("/grade", json={"problem_token": fresh, "answer": RIGHT}, headers=S)
        body = _problem(r, 403)
        assert body["max_attempts"] == MAX_ATTEMPTS
        # and the other token, graded once (carry-forward), still has attempts left
        assert c.post("/grade", json={"problem_token": token, "answer": RIGHT}, headers=S).status_code == 200

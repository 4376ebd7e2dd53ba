"""Body limits per role (service/http/middleware/body_limit.py's BodyLimitMiddleware with limit_by_role): a student-only
key, and a missing or invalid one, may send at most STUDENT_MAX_BODY_BYTES; a grader's key (or the open
service) MAX_BODY_BYTES. Checked from Content-Length before any byte of the body is read, and while a
chunked body streams. The read timeout is tested against a real server in tests/system/test_body_timeout.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import orjson
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.api.helpers import assert_problem

KEYS: dict[str, list[str]] = {"g-key": ["grader"], "s-key": ["student"], "gs-key": ["grader", "student"]}
SETTINGS = Settings(api_keys=KEYS, signing_secret="s" * 32)  # type: ignore[arg-type]
STUDENT_LIMIT = SETTINGS.student_max_body_bytes
BODY = b"x" * (300 * 1024)  # 300 KiB: over the student limit (256 KiB), far under the grader's (64 MiB)


@pytest.fixture(scope="module")
def keyed() -> Iterator[TestClient]:
    with TestClient(create_app(SETTINGS), raise_server_exceptions=False) as c:
        yield c


def _auth(key: str | None) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    return headers


def test_the_default_student_limit() -> None:
    assert STUDENT_LIMIT == 256 * 1024 < len(BODY) < Settings().max_body_bytes


@pytest.mark.parametrize("key", [b"s-key", None, b"not-a-key", b"g-key-", b"g-key\xe9", b""])
@pytest.mark.parametrize("path", ["/grade", "/gradient", "/descent"])
def test_a_student_or_a_caller_without_a_valid_key_gets_the_student_limit(
    keyed: TestClient, key: bytes | None, path: str
) -> None:
    headers: dict[str, str | bytes] = {"content-type": "application/json"}
    if key is not None:
        headers["authorization"] = b"Bearer " + key
    body = assert_problem(keyed.post(path, content=BODY, headers=headers), 413, "body-too-large")
    assert body["limit"] == STUDENT_LIMIT
    assert str(STUDENT_LIMIT) in body["detail"]


@pytest.mark.parametrize("key", ["g-key", "gs-key"])
def test_a_grader_may_post_it(keyed: TestClient, key: str) -> None:
    # past the body limit: the body is read and found to be no JSON (400), not refused for its size
    resp = keyed.post("/gradient", content=BODY, headers=_auth(key))
    assert_problem(resp, 400, "invalid-json")


def test_the_student_limit_is_the_limit(keyed: TestClient) -> None:
    doc = orjson.dumps({"problem_token": "x", "answer": {}})
    padded = doc[:-1] + b" " * (STUDENT_LIMIT - len(doc)) + b"}"
    assert len(padded) == STUDENT_LIMIT
    # at the limit the body is read (and found wanting), one byte more is a 413
    assert keyed.post("/grade", content=padded, headers=_auth("s-key")).status_code != 413
    resp = keyed.post("/grade", content=padded + b" ", headers=_auth("s-key"))
    assert_problem(resp, 413, "body-too-large")


def test_open_service_keeps_the_big_limit() -> None:
    with TestClient(create_app(Settings())) as c:
        assert_problem(c.post("/gradient", content=BODY, headers=_auth(None)), 400, "invalid-json")
        assert_problem(c.post("/gradient", content=BODY, headers=_auth("anything")), 400, "invalid-json")


# (without a valid key the route's authentication answers 401 before it reads a chunked body at all)
@pytest.mark.parametrize("key", ["s-key"])
def test_a_chunked_body_over_the_student_limit_is_refused_while_it_streams(keyed: TestClient, key: str) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(64):
            sent += 16 * 1024
            yield b" " * (16 * 1024)  # 1 MiB in all, without a Content-Length

    resp = keyed.post("/grade", content=chunks(), headers=_auth(key))
    body = assert_problem(resp, 413, "body-too-large")
    assert body["limit"] == STUDENT_LIMIT
    assert sent > STUDENT_LIMIT


def test_a_grader_may_stream_it(keyed: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(64):
            yield b" " * (16 * 1024)

    assert_problem(keyed.post("/gradient", content=chunks(), headers=_auth("g-key")), 400, "invalid-json")


# --- at once: a declared Content-Length over the limit is refused before any byte of the body ----------


async def _call(app: Any, headers: list[tuple[bytes, bytes]], chunks: list[int] | None = None) -> list[dict[str, Any]]:
    """Call the ASGI app with a body that never arrives (or, with `chunks`, an endless stream of 16 KiB
    chunks, counted in it); return the messages it sends."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if chunks is None:
            await anyio.sleep_forever()
        assert chunks is not None
        chunks.append(16 * 1024)
        return {"type": "http.request", "body": b" " * (16 * 1024), "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/grade",
        "raw_path": b"/grade",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    with anyio.fail_after(2):  # the body never comes: only a refusal from the headers can answer
        await app(scope, receive, send)
    return sent


@pytest.fixture
def keyed_app() -> Iterator[Any]:
    with TestClient(create_app(SETTINGS)) as c:  # the lifespan run, as a server would
        yield c.app


@pytest.mark.parametrize("key", [b"s-key", None, b"wrong"])
def test_a_declared_student_body_over_the_limit_is_a_413_before_it_is_read(keyed_app: Any, key: bytes | None) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(300 * 1024).encode())]
    if key is not None:
        headers.append((b"authorization", b"Bearer " + key))
    sent = anyio.run(_call, keyed_app, headers)
    start = sent[0]
    assert start["type"] == "http.response.start" and start["status"] == 413
    assert (b"content-type", b"application/problem+json") in start["headers"]
    body = orjson.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    assert body["type"].endswith("body-too-large") and body["limit"] == STUDENT_LIMIT


def test_an_endless_chunked_student_body_is_refused_once_over_the_limit(keyed_app: Any) -> None:
    chunks: list[int] = []
    headers = [(b"content-type", b"application/json"), (b"authorization", b"Bearer s-key")]
    sent = anyio.run(_call, keyed_app, headers, chunks)
    assert sent[0]["status"] == 413
    assert sum(chunks) == STUDENT_LIMIT + 16 * 1024  # the first chunk over the limit, no more

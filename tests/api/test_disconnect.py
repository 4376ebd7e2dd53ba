"""A client that leaves before its body is read: no traceback, no 500, counted as 499 (nginx's code)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from service.app import create_app
from service.observability import REQUESTS

PATHS = ["/gradient", "/descent", "/graph", "/grade"]  # the fast path, routed ones, read_json's route


def _call(app: Any, path: str) -> list[dict[str, Any]]:
    """POST path with a declared body, then the client disconnects after one chunk."""
    messages = iter(
        [
            {"type": "http.request", "body": b'{"model": "logi', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(messages, {"type": "http.disconnect"})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"5000")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    asyncio.run(app(scope, receive, send))
    return sent


@pytest.mark.parametrize("path", PATHS)
def test_a_client_that_leaves_is_not_a_server_error(path: str, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app()
    counted = REQUESTS.labels(path, "POST", "499")._value.get()
    with caplog.at_level(logging.INFO):
        sent = _call(app, path)
    assert sent and sent[0]["type"] == "http.response.start" and sent[0]["status"] == 499
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert any("client disconnected" in r.getMessage() for r in caplog.records)
    assert REQUESTS.labels(path, "POST", "499")._value.get() == counted + 1

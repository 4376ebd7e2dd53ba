"""Fixtures for the HTTP tests: the application behind FastAPI's TestClient."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.http.wire import binary


@pytest.fixture
def client() -> Iterator[TestClient]:
    """The default application, lifespan run (so /readyz is ready)."""
    with TestClient(create_app()) as c:
        yield c


@pytest.fixture
def lenient_client() -> Iterator[TestClient]:
    """Like `client`, but a server error comes back as its 500 response instead of being raised in the test."""
    with TestClient(create_app(), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def body_kinds(monkeypatch: pytest.MonkeyPatch) -> list[type]:
    """The type of each body read_body reads from now on: bytes (chunks joined) or bytearray (one buffer)."""
    kinds: list[type] = []
    real = binary._read

    async def spy(request: Any) -> bytes | bytearray:
        body = await real(request)
        kinds.append(type(body))
        return body

    monkeypatch.setattr(binary, "_read", spy)
    return kinds

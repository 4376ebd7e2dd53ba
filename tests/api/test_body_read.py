"""Reading a body (service/http/wire/binary.py's read_body): big and chunked bodies into one growing buffer,
small ones as Starlette reads them; the answers do not depend on the way."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.http.wire import binary


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app()) as c:
        yield c


def _big_body() -> bytes:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(30_000, 4))
    doc = {
        "model": "logistic_regression",
        "parameters": {"w": [0.1, -0.2, 0.3, 0.0], "b": 0.5},
        "data": {"X": X.tolist(), "y": (rng.random(30_000) < 0.5).astype(int).tolist()},
    }
    body = json.dumps(doc).encode()
    assert len(body) > binary.BUFFER_MIN_BYTES
    return body


def test_big_and_chunked_bodies_are_read_into_one_buffer(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, body_kinds: list[type]
) -> None:
    body = _big_body()
    headers = {"content-type": "application/json"}
    buffered = client.post("/gradient", content=body, headers=headers)
    chunked = client.post("/gradient", content=iter([body[:1000], body[1000:700_000], body[700_000:]]), headers=headers)
    monkeypatch.setattr(binary, "BUFFER_MIN_BYTES", len(body) + 1)  # the way Starlette reads it
    joined = client.post("/gradient", content=body, headers=headers)
    assert body_kinds == [bytearray, bytearray, bytes]
    assert buffered.status_code == 200
    assert buffered.content == chunked.content == joined.content


@pytest.mark.parametrize("content", [b"", b"  \n\t "], ids=["empty", "blank"])
def test_an_empty_body_is_a_400_either_way(client: TestClient, content: bytes) -> None:
    for chunked in (False, True):
        response = client.post(
            "/gradient", content=iter([content]) if chunked else content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400 and response.json()["detail"] == "The body is empty: send a JSON object."


def test_a_big_invalid_body_answers_as_a_small_one(client: TestClient) -> None:
    body = _big_body()
    broken = body[: len(body) // 2]  # cut in the middle of X
    response = client.post("/gradient", content=broken, headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["type"].endswith("invalid-json")

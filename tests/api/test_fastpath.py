"""POST /gradient is served by the fast path (service/http/middleware/fastpath.py) and must answer exactly as the
FastAPI route does. Under a root_path the fast path does not match, so the same app answers the same
request through FastAPI's routing: the two answers are compared here, status, headers and body."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings

WORKED = {
    "model": "logistic_regression",
    "parameters": {"w": [0.1, -0.2], "b": 0.05},
    "data": {"X": [[0.5, 1.5], [1, 1], [1.5, 0.5], [3, 0.5]], "y": [0, 0, 1, 1]},
}

CASES: dict[str, tuple[dict[str, str], bytes | Any]] = {
    "ok": ({}, WORKED),
    "explain": ({}, {**WORKED, "explain": "full"}),
    "verify": ({}, {**WORKED, "verify": True}),
    "invalid json": ({}, b'{"model": '),
    "empty": ({}, b""),
    "schema": ({}, {**WORKED, "data": {"X": [[0.5, True]], "y": [0]}}),
    "shapes": ({}, {**WORKED, "data": {"X": [[0.5, 1.5]], "y": [0, 1]}}),
    "domain": ({}, {**WORKED, "data": {"X": [[0.5, 1.5]], "y": [2]}}),
    "non-finite": ({}, {**WORKED, "parameters": {"w": [1e308, 1e308], "b": 0.0}}),
    "incompatible": ({}, {**WORKED, "model": "single_layer", "activation": "relu", "loss": "binary_cross_entropy"}),
    "media type": ({"content-type": "text/plain"}, b"{}"),
    "no key": ({"authorization": ""}, WORKED),
    "student key": ({"authorization": "Bearer student-key"}, WORKED),
}


@pytest.fixture
def app_client() -> Iterator[tuple[TestClient, TestClient]]:
    settings = Settings(
        api_keys={"grader-key": ["grader"], "student-key": ["student"]}, signing_secret="s" * 32, max_body_bytes=10_000
    )
    app = create_app(settings)
    with TestClient(app) as fast, TestClient(app, root_path="/api") as routed:
        yield fast, routed


def _post(client: TestClient, path: str, headers: dict[str, str], body: bytes | Any) -> Any:
    h = {"authorization": "Bearer grader-key", "content-type": "application/json", "x-request-id": "r-1", **headers}
    h = {k: v for k, v in h.items() if v}
    if isinstance(body, bytes):
        return client.post(path, content=body, headers=h)
    return client.post(path, json=body, headers=h)


@pytest.mark.parametrize("case", list(CASES))
def test_fast_path_answers_as_the_fastapi_route(app_client: tuple[TestClient, TestClient], case: str) -> None:
    fast, routed = app_client
    headers, body = CASES[case]
    a = _post(fast, "/gradient", headers, body)
    b = _post(routed, "/api/gradient", headers, body)
    assert a.status_code == b.status_code, (a.text, b.text)
    assert a.content == b.content.replace(b"/api/gradient", b"/gradient")  # a 403 names the path it was asked
    keep = ("content-type", "www-authenticate", "retry-after", "x-request-id")
    assert {k: a.headers.get(k) for k in keep} == {k: b.headers.get(k) for k in keep}


def test_other_methods_still_reach_fastapi(app_client: tuple[TestClient, TestClient]) -> None:
    fast, _ = app_client
    r = fast.get("/gradient", headers={"authorization": "Bearer grader-key"})
    assert r.status_code == 405
    assert r.headers["content-type"] == "application/problem+json"


def test_body_limit_applies_to_the_fast_path(app_client: tuple[TestClient, TestClient]) -> None:
    fast, _ = app_client
    big = {**WORKED, "data": {"X": [[0.5, 1.5]] * 2000, "y": [0] * 2000}}
    r = _post(fast, "/gradient", {}, big)
    assert r.status_code == 413
    assert r.json()["type"].endswith("body-too-large")

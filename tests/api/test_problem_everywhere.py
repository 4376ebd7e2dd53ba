"""Holes a hostile review found: no redirect built from the Host header, and every answer the app
can shape is problem+json (a refused CORS preflight, unknown routes, HEAD, a bad Content-Length)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.api.helpers import assert_problem

ORIGIN = "https://course.example"
EVIL = "evil.example"


@pytest.fixture
def cors_client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(cors_origins=[ORIGIN])), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("path", ["/grade/", "/gradient/", "/grade/batch/", "/healthz/", "/version/", "/descent/"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_trailing_slash_is_a_404_never_a_redirect_to_the_host_header(
    client: TestClient, method: str, path: str
) -> None:
    r = client.request(method, path, headers={"Host": EVIL}, follow_redirects=False)
    assert "location" not in r.headers, r.headers
    assert r.status_code < 300 or r.status_code >= 400
    assert EVIL not in r.text
    assert_problem(r, r.status_code, {"not-found", "method-not-allowed"})


def test_routes_without_the_slash_still_answer(client: TestClient) -> None:
    assert client.get("/healthz", headers={"Host": EVIL}).status_code == 200
    assert client.get("/version", headers={"Host": EVIL}).status_code == 200


def _preflight(c: TestClient, origin: str, method: str = "POST", headers: str | None = None) -> httpx.Response:
    h = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers is not None:
        h["Access-Control-Request-Headers"] = headers
    return c.options("/grade", headers=h)


@pytest.mark.parametrize(
    ("origin", "method", "headers", "refused"),
    [
        ("https://evil.example", "POST", None, ["origin"]),
        (ORIGIN, "PUT", None, ["method"]),
        (ORIGIN, "POST", "authorization, x-secret-123", ["headers"]),
        ("https://evil.example", "DELETE", "x-secret-123", ["origin", "method", "headers"]),
    ],
)
def test_a_refused_preflight_is_a_400_problem_naming_what_was_refused(
    cors_client: TestClient, origin: str, method: str, headers: str | None, refused: list[str]
) -> None:
    r = _preflight(cors_client, origin, method, headers)
    body = assert_problem(r, 400, "cors-refused", secret="secret-123")
    assert body["refused"] == refused
    for word in refused:
        assert word in body["detail"]
    assert "evil.example" not in r.text
    # Starlette's preflight headers are kept; the origin is not allowed for a refused one
    assert r.headers["access-control-allow-methods"] == "GET, POST"
    assert "Origin" in r.headers["vary"]
    if "origin" in refused:
        assert "access-control-allow-origin" not in r.headers


def test_an_allowed_preflight_is_unchanged(cors_client: TestClient) -> None:
    r = _preflight(cors_client, ORIGIN, "POST", "authorization, content-type")
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ORIGIN


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "slug"),
    [
        ("GET", "/no/such/route", {}, 404, "not-found"),
        ("DELETE", "/gradient", {}, 405, "method-not-allowed"),
        ("BREW", "/gradient", {}, 405, "method-not-allowed"),
        ("OPTIONS", "/gradient", {}, 405, "method-not-allowed"),
        ("POST", "/gradient", {"content-length": "a lot"}, 400, "invalid-json"),
    ],
)
def test_starlettes_own_refusals_are_problems(
    cors_client: TestClient, method: str, path: str, headers: dict[str, str], status: int, slug: str
) -> None:
    assert_problem(cors_client.request(method, path, headers=headers), status, slug)


def test_head_of_an_unknown_route_is_a_problem_without_a_body(cors_client: TestClient) -> None:
    r = cors_client.head("/no/such/route")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.content == b""

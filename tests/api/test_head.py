"""HEAD for every GET resource: the GET's status and headers, no body (service/http/middleware/head.py)."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from service.app import create_app

GET_PATHS = ["/explain", "/healthz", "/readyz", "/metrics", "/openapi.json", "/static/page.js", "/models", "/nowhere"]


@pytest.mark.parametrize("path", GET_PATHS)
def test_head_mirrors_get_without_the_body(client: TestClient, path: str) -> None:
    got = client.get(path)
    head = client.head(path)
    assert head.status_code == got.status_code
    assert head.content == b""
    assert head.headers.get("content-type") == got.headers.get("content-type")
    if path != "/metrics":  # the metrics' own counters move between the two requests
        assert head.headers.get("content-length") == got.headers.get("content-length")
    if "etag" in got.headers:
        assert head.headers["etag"] == got.headers["etag"]
    assert "x-request-id" in head.headers


def test_head_of_a_post_only_route_is_405_with_allow(client: TestClient) -> None:
    response = client.head("/gradient")
    assert response.status_code == 405
    assert response.content == b""
    assert response.headers["allow"] == "POST"


def test_head_keeps_conditional_requests(client: TestClient) -> None:
    etag = client.get("/static/page.js").headers["etag"]
    assert client.head("/static/page.js", headers={"If-None-Match": etag}).status_code == 304


def test_the_access_log_records_head(caplog: pytest.LogCaptureFixture) -> None:
    with TestClient(create_app()) as client, caplog.at_level(logging.INFO, logger="service.access"):
        assert client.head("/healthz").status_code == 200
    records = [r for r in caplog.records if r.name == "service.access"]
    assert [(getattr(r, "method", None), getattr(r, "path", None)) for r in records] == [("HEAD", "/healthz")]

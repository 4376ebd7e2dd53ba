"""GET /docs and GET /redoc: served from the vendored Swagger UI and ReDoc, naming no outside host."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from service.api.routes.apidocs import REDOC_VERSION, SWAGGER_UI_VERSION
from service.app import create_app
from service.settings import Settings
from service.web import STATIC

URL = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\(\s*["']?([^"')]+)""")


@pytest.fixture(params=[False, True], ids=["open", "with-keys"])
def client(request: pytest.FixtureRequest) -> TestClient:
    settings = Settings(api_keys={"k" * 32: ["grader"]}) if request.param else Settings()
    return TestClient(create_app(settings))


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_pages_reference_no_outside_host(client: TestClient, path: str) -> None:
    r = client.get(path)  # open with keys too: a browser's navigation sends none
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", r.text, re.I), "an outside host in the page"
    refs = [a or b for a, b in URL.findall(r.text)]
    assert refs, "the page references its scripts"
    for ref in refs:
        assert ref.startswith("/static/"), ref
        asset = client.get(ref)
        assert asset.status_code == 200, ref
    assert "/openapi.json" in r.text
    assert client.get("/openapi.json").status_code == 200


def test_vendored_files_are_the_pinned_releases_with_their_licences() -> None:
    bundle = (STATIC / "swagger-ui" / "swagger-ui-bundle.js").read_text()
    assert SWAGGER_UI_VERSION in bundle
    assert f'"{REDOC_VERSION}"' in (STATIC / "redoc" / "redoc.standalone.js").read_text()
    assert "Apache License" in (STATIC / "swagger-ui" / "LICENSE").read_text()
    assert "MIT" in (STATIC / "redoc" / "LICENSE").read_text()


def test_docs_pages_are_not_in_the_openapi_document() -> None:
    paths = TestClient(create_app(Settings())).get("/openapi.json").json()["paths"]
    assert "/docs" not in paths and "/redoc" not in paths

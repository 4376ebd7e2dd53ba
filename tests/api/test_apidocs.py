"""GET /docs and GET /redoc: served from the vendored Swagger UI and ReDoc, naming no outside host."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.http.routes.apidocs import REDOC_VERSION, SWAGGER_UI_VERSION
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


def test_the_vendored_bundles_fetch_nothing_from_another_host() -> None:
    """No image, script or style source in the bundles names an outside host (ReDoc's sidebar logo
    came from a CDN: its src is an empty data: URL in the vendored copy, as its LICENSE notes)."""
    import re

    for name in ("redoc/redoc.standalone.js", "swagger-ui/swagger-ui-bundle.js"):
        text = (STATIC / name).read_text()
        assert re.findall(r'\bsrc:\s*"https?://', text) == [], name
    assert "cdn.redoc.ly" not in (STATIC / "redoc" / "redoc.standalone.js").read_text()
    assert "one change" in (STATIC / "redoc" / "LICENSE").read_text()

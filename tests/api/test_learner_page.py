"""GET /explain, its static files, POST /graph and POST /descent/plot over HTTP (TestClient)."""

from __future__ import annotations

import re
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.http.schemas.descent import EXAMPLE as DESCENT_EXAMPLE
from service.http.schemas.gradient import EXAMPLES
from service.settings import Settings
from service.web import STATIC, assets
from tests.api.helpers import assert_problem

ROOT = Path(__file__).resolve().parents[2]
KATEX_DIST = ROOT / "tests" / "katex" / "node_modules" / "katex"
WORKED = {k: v for k, v in EXAMPLES["logistic_regression"].items() if k != "explain"}  # type: ignore[index]


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app()) as c:
        yield c


@pytest.fixture(scope="module")
def keyed() -> Iterator[TestClient]:
    settings = Settings(api_keys={"g-key": ["grader"], "s-key": ["student"]}, rate_limit_per_minute=0)
    with TestClient(create_app(settings)) as c:
        yield c


def test_page_is_served_with_a_strict_csp_and_only_local_assets(client: TestClient) -> None:
    r = client.get("/explain")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    page = r.text
    assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", page), "every asset must come from the service"
    assert "<script>" not in page and " style=" not in page  # nothing inline for the CSP to block
    for url in re.findall(r'(?:src|href)="(/static/[^"]+)"', page):
        s = client.get(url)
        assert s.status_code == 200, url
        assert s.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_page_server_renders_the_worked_example(client: TestClient) -> None:
    page = client.get("/explain").text
    result = client.post("/gradient", json=WORKED).json()
    assert f"{result['loss']:.6g}" in page  # J = 3.75972
    assert 'id="step-dL-dz"' in page and "Canonical simplification" in page
    assert "<details><summary>How ∂L/∂f is derived" in page  # explain "full", folded
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in page and 'id="graph-svg"' in page and 'id="curve-svg"' in page
    for name in ("model", "pairing", "data", "parameters", "reg-kind", "reg-lambda", "api-key", "answer", "steps"):
        assert f'<label for="{name}"' in page, name
    examples = re.search(r'<script type="application/json" id="examples">(.*?)</script>', page, re.S)
    assert examples is not None and '"logistic_regression"' in examples.group(1)


def test_page_needs_no_key_but_its_api_calls_do(keyed: TestClient) -> None:
    assert keyed.get("/explain").status_code == 200
    assert keyed.get("/static/page.js").status_code == 200
    assert_problem(keyed.post("/graph", json=WORKED), 401, "unauthorized")
    assert_problem(keyed.post("/graph", json=WORKED, headers={"Authorization": "Bearer s-key"}), 403, "forbidden")
    assert keyed.post("/graph", json=WORKED, headers={"Authorization": "Bearer g-key"}).status_code == 200
    assert_problem(keyed.post("/descent/plot", json=DESCENT_EXAMPLE), 401, "unauthorized")


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("page.js", "text/javascript; charset=utf-8"),
        ("page.css", "text/css; charset=utf-8"),
        ("katex/katex.min.js", "text/javascript; charset=utf-8"),
        ("katex/katex.min.css", "text/css; charset=utf-8"),
        ("katex/fonts/KaTeX_Main-Regular.woff2", "font/woff2"),
        ("katex/LICENSE", "text/plain; charset=utf-8"),
    ],
)
def test_static_files_have_their_media_type_and_cache_headers(client: TestClient, name: str, media_type: str) -> None:
    asset = assets()[name]
    plain = client.get(f"/static/{name}")
    assert plain.status_code == 200 and plain.content == (STATIC / name).read_bytes()
    assert plain.headers["content-type"] == media_type
    assert plain.headers["cache-control"] == "public, max-age=300, must-revalidate"
    assert plain.headers["etag"] == asset.etag and plain.headers["x-content-type-options"] == "nosniff"
    versioned = client.get(f"/static/{name}?v={asset.version}")
    assert versioned.headers["cache-control"] == "public, max-age=31536000, immutable"
    again = client.get(f"/static/{name}", headers={"If-None-Match": asset.etag})
    assert again.status_code == 304 and again.content == b""


@pytest.mark.parametrize(
    "path",
    [
        "/static/../app.py",
        "/static/%2e%2e/app.py",
        "/static/..%2fsettings.py",
        "/static/katex/../../web/__init__.py",
        "/static/%2Fetc%2Fpasswd",
        "/static//etc/passwd",
        "/static/katex",
        "/static/",
        "/static/page.js%00.css",
        "/static/PAGE.JS",
    ],
)
def test_no_directory_traversal(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404, (path, r.status_code)
    assert r.headers["content-type"] == "application/problem+json"


def test_katex_is_the_pinned_release_with_its_licence_and_fonts() -> None:
    if not KATEX_DIST.is_dir():
        raise RuntimeError(f"KaTeX is not installed in {KATEX_DIST}: run `npm ci --prefix tests/katex`")
    assert '"version": "0.19.1"' in (KATEX_DIST / "package.json").read_text()
    for name in ("katex.min.js", "katex.min.css"):
        assert (STATIC / "katex" / name).read_bytes() == (KATEX_DIST / "dist" / name).read_bytes(), name
    assert (STATIC / "katex" / "LICENSE").read_bytes() == (KATEX_DIST / "LICENSE").read_bytes()
    assert "MIT License" in (STATIC / "katex" / "LICENSE").read_text()
    css = (STATIC / "katex" / "katex.min.css").read_text()
    woff2 = set(re.findall(r"url\((fonts/[^)]+\.woff2)\)", css))
    assert len(woff2) == 20
    for font in woff2:
        assert f"katex/{font}" in assets(), font


def test_every_web_file_is_package_data() -> None:
    """The wheel (and so the Docker image, which pip-installs the package) carries the page's files."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = config["service.web"]
    web = STATIC.parent
    files = [p.relative_to(web).as_posix() for p in web.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    for f in files:
        if f.endswith(".py"):
            continue
        assert any(fnmatch(f, pat) for pat in patterns), f"{f} is not in [tool.setuptools.package-data]"
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "!service/" in ignore


def test_graph_returns_svg(client: TestClient) -> None:
    r = client.post("/graph", json=WORKED)
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/svg+xml"
    assert r.headers["content-security-policy"] == "default-src 'none'"
    root = ET.fromstring(r.text)
    nodes = [g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.attrib.get("data-node") == "z"]
    assert len(nodes) == 4
    r = client.post("/graph?examples=6", json=EXAMPLES["neural_network"])
    assert r.status_code == 200
    assert sum(1 for g in ET.fromstring(r.text).iter() if g.attrib.get("data-node") == "z[2]") == 6


def test_graph_refuses_what_gradient_refuses(client: TestClient) -> None:
    bad = {**WORKED, "data": {"X": [[0.5, 1.5], [1, 1]], "y": [0, 2]}}
    assert_problem(client.post("/graph", json=bad), 422, "validation-error")
    assert_problem(
        client.post("/graph", content=b"{", headers={"content-type": "application/json"}), 400, "invalid-json"
    )
    assert_problem(
        client.post("/graph", content=b"x", headers={"content-type": "text/plain"}), 415, "unsupported-media-type"
    )
    assert_problem(client.post("/graph?examples=0", json=WORKED), 422, "validation-error")
    assert_problem(client.post("/graph?examples=21", json=WORKED), 422, "validation-error")


def test_graph_is_capped_by_the_explain_limit() -> None:
    with TestClient(create_app(Settings(max_explain_values=10))) as small:
        assert_problem(small.post("/graph", json=WORKED), 422, "explain-too-large")


def test_descent_plot(client: TestClient) -> None:
    r = client.post("/descent/plot", json=DESCENT_EXAMPLE)
    assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml"
    runs = [g for g in ET.fromstring(r.text).iter() if g.attrib.get("class") == "run"]
    assert [g.attrib["data-pairing"] for g in runs] == [
        "sigmoid + binary_cross_entropy (canonical)",
        "sigmoid + squared_error",
    ]
    assert_problem(client.post("/descent/plot", json={**DESCENT_EXAMPLE, "learning_rate": -1}), 422, "validation-error")


def test_the_pages_mistake_steps_are_the_catalogues(client: TestClient) -> None:
    """The page marks a mistake's steps from the catalogue it carries, not from a copy of its own."""
    import json

    from service.grading.mistakes import MISTAKES, derivation_steps

    html = client.get("/explain").text
    found = re.search(r'<script type="application/json" id="mistake-steps">(.*?)</script>', html, re.S)
    assert found is not None
    carried = json.loads(found.group(1))
    assert carried == derivation_steps()
    assert set(carried) == {m.code for m in MISTAKES}  # every single-layer mistake has its steps
    script = (STATIC / "page.js").read_text()
    assert [code for code in carried if f'"{code}"' in script or f"{code}:" in script] == []

"""The docs site's promises checked without building it: the README as a short front door naming nothing
outside the repository, every page in the nav, relative links that resolve, the HTTP reference covering
every operation of the OpenAPI document (the strict build, `make docs`, checks the rest)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
LINK = re.compile(r"\]\(([^)\s]+)\)")
# names of files that live outside the repository (the design notes the code once cited)
OUTSIDE = re.compile(r"\.\./shared|MATH\.md|API\.md|ARCHITECTURE\.md|FORMULAS\.md|FUZZING\.md|/work/")


def _hook(name: str = "http_reference") -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "hooks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _nav_pages(nav: object) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [p for item in nav for p in _nav_pages(item)]
    if isinstance(nav, dict):
        return [p for value in nav.values() for p in _nav_pages(value)]
    return []


def test_readme_is_a_short_front_door() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 250, "the README is the front door: move details into docs/"
    assert "<!-- example -->" in text, "the README keeps one replayed example"
    assert "## Quick start" in text


def test_readme_and_docs_name_nothing_outside_the_repository() -> None:
    for path in [README, *DOCS.rglob("*.md")]:
        text = path.read_text()
        found = OUTSIDE.findall(text)
        assert not found, f"{path.relative_to(ROOT)} names files outside the repository: {found}"


def test_links_resolve_inside_the_repository() -> None:
    for path in [README, *DOCS.rglob("*.md")]:
        for target in LINK.findall(path.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            resolved = (path.parent / target.split("#", 1)[0]).resolve()
            assert resolved.is_relative_to(ROOT), (path.relative_to(ROOT), target)
            generated = resolved == DOCS / "reference" / "http.md"  # made by the hook when the site is built
            assert resolved.exists() or generated, (path.relative_to(ROOT), target)


def test_every_page_is_in_the_nav() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    nav = set(_nav_pages(config["nav"]))
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert pages - nav == set(), "pages missing from mkdocs.yml's nav"
    generated = {_hook().PAGE, *_hook("notebooks").pages()}
    assert nav - pages == generated, "nav entries without a page"
    assert "client.md" in nav


def test_http_reference_renders_every_operation_and_schema() -> None:
    document = json.loads((ROOT / "openapi" / "openapi.json").read_text())
    page = _hook().render(document)
    for path, operations in document["paths"].items():
        for method in operations:
            assert f"### {method.upper()} {path}\n" in page, (method, path)
    for name in document["components"]["schemas"]:
        assert f"### {name} {{ #schema-{name.lower()} }}" in page, name
    for target in re.findall(r"\]\(#(schema-[^)]+)\)", page):
        assert f"{{ #{target} }}" in page, target


def test_errors_page_lists_every_slug_the_service_answers() -> None:
    page = (DOCS / "errors.md").read_text()
    slugs = set(re.findall(r"^\| \d{3} \| ([a-z-]+) \|", page, re.M))
    assert {"validation-error", "domain-error", "incompatible-pairing", "forbidden"} <= slugs


def test_the_example_notebook_is_a_page_with_its_outputs() -> None:
    """The site shows each notebook of examples/notebooks/ with its stored outputs: here the first
    attempt's grading names the forgotten 1/m, and the fix is graded correct."""
    pages = _hook("notebooks").pages()
    assert set(pages) == {f"examples/{p.stem}.md" for p in (ROOT / "examples" / "notebooks").glob("*.ipynb")}
    page = pages["examples/logistic_gradient.md"]
    assert page.count("```python") >= 5 and '<div class="notebook-output">' in page
    assert "missing_mean" in page and "def compute_gradient_logistic" in page


def test_code_and_tests_cite_nothing_outside_the_repository() -> None:
    """Comments and docstrings cite the project's own pages (docs/design/…), never design notes a
    clone does not have."""
    this = Path(__file__).resolve()
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in ("service", "tests", "hooks", "clients", "examples", "docker")
        for path in (ROOT / folder).rglob("*")
        if path.is_file()
        and path.suffix in {".py", ".js", ".html", ".sh", ".ipynb", ".yaml", ".yml", ".toml", ".md", ""}
        and path.resolve() != this
        and "node_modules" not in path.parts
        and "__pycache__" not in path.parts
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert found == []

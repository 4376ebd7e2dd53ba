"""The HTTP layer's folders are its roles (docs/design/architecture.md), and imports go one way between
them: routes use handlers, schemas, wire formats and security; nothing but the app imports a route.

A handler that imported a route (as the /grade and learner's page adapters once took the /gradient
request adapter from routes/gradient.py) would tie the request → compute → response code to FastAPI's
routing table; shared objects (request adapters, OpenAPI bodies) live in schemas/ instead.
"""

from __future__ import annotations

from pathlib import Path

from tests.test_import_cycles import SERVICE, import_graph

HTTP = "service.http"
# a folder of service/http and the folders its modules must never import
FORBIDDEN = {
    "handlers": {"routes"},
    "wire": {"routes", "handlers", "schemas", "middleware"},
    "schemas": {"routes", "handlers", "middleware"},
    "middleware": {"routes"},
    "security": {"routes", "handlers", "schemas", "wire", "middleware"},
}


def _folder(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 3 and module.startswith(HTTP + ".") else None


def violations(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(importer, imported) pairs that break FORBIDDEN, imports in functions and for type checking included."""
    found = []
    for module, imported in sorted(graph.items()):
        banned = FORBIDDEN.get(_folder(module) or "", set())
        found += [(module, other) for other in sorted(imported) if _folder(other) in banned]
    return found


def test_the_http_folders_exist() -> None:
    for folder in (*FORBIDDEN, "routes"):
        assert (SERVICE / "http" / folder / "__init__.py").is_file(), folder
    assert not (SERVICE / "api").exists()  # the old flat package is gone


def test_no_handler_wire_schema_middleware_or_security_module_imports_a_route() -> None:
    graph = import_graph()
    assert any(m.startswith("service.http.routes.") for m in graph["service.app"])  # the graph was read
    assert violations(graph) == []


def test_the_rule_finds_a_handler_importing_a_route(tmp_path: Path) -> None:
    root = tmp_path / "service"
    for folder in ("", "http", "http/routes", "http/handlers"):
        (root / folder).mkdir(exist_ok=True)
        (root / folder / "__init__.py").write_text("")
    (root / "http/routes/gradient.py").write_text("REQUEST = 1\n")
    (root / "http/handlers/grading.py").write_text("def f():\n    from service.http.routes.gradient import REQUEST\n")
    assert violations(import_graph(root)) == [("service.http.handlers.grading", "service.http.routes.gradient")]

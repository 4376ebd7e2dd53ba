"""service.formulas is pure: importing it and all its submodules, in a fresh interpreter, pulls in no
web framework; the reader, the printer and the tracer (the package's __init__) pull in nothing outside
the standard library; numpy is imported by `numeric` alone (values of trees), SymPy by `algebra` alone (which
runs in the worker pool), and SymPy's string readers (sympify, parse_expr, S) are never called."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.compute.test_layering import FORBIDDEN

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = ["derive", "errors", "limits", "parser", "printer", "tokens", "tree", "vocabulary"]
# submodules allowed a third-party import, and which
ALLOWED = {"numeric": {"numpy"}, "algebra": {"sympy"}}
PROBE = """
import importlib, json, pkgutil, sys
import service.formulas
core = sorted(sys.modules)
names = sorted(m.name for m in pkgutil.iter_modules(service.formulas.__path__))
for name in names:
    importlib.import_module("service.formulas." + name)
print(json.dumps({"submodules": names, "core": core, "modules": sorted(sys.modules)}))
"""


def test_formulas_import_no_web_framework_and_no_sympy() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(REQUIRED) <= set(result["submodules"])
    core_leaked = sorted(m for m in result["core"] if m.split(".")[0] in [*FORBIDDEN, "sympy", "numpy"])
    assert not core_leaked, f"import service.formulas pulls in {core_leaked}"
    loaded = set(result["modules"])
    leaked = sorted(m for m in loaded if m.split(".")[0] in FORBIDDEN)
    assert not leaked, f"service.formulas pulls in {leaked}"
    for name in ("sympy", "numpy"):
        if name in loaded:
            assert any(name in allowed for allowed in ALLOWED.values()), f"{name} is imported by service.formulas"


def test_third_party_imports_only_where_allowed() -> None:
    """Each submodule's own import statements: the standard library and service, or what ALLOWED lists."""
    stdlib = set(sys.stdlib_module_names)
    for path in (ROOT / "service" / "formulas").glob("*.py"):
        allowed = ALLOWED.get(path.stem, set())
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for module in modules:
                    top = module.split(".")[0]
                    assert top in stdlib or top in {"service", "__future__", ""} or top in allowed, (path.name, module)


STRING_READERS = {"sympify", "parse_expr", "S", "parse_latex", "lambdify"}


def test_no_eval_in_the_package() -> None:
    """No call of eval, exec, compile or __import__, no use of SymPy's string readers, and SymPy imported only
    where ALLOWED says (never `from sympy import ...`: every use is spelled sympy.<name>, so this sees it)."""
    for path in (ROOT / "service" / "formulas").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in {"eval", "exec", "compile", "__import__"}, (path, node.lineno)
                assert node.func.id not in STRING_READERS, (path, node.lineno)
            if isinstance(node, ast.Attribute):
                assert node.attr not in STRING_READERS, (path, node.lineno)
            if isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] != "sympy", (path, node.lineno)
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "sympy":
                        assert "sympy" in ALLOWED.get(path.stem, set()), (path, node.lineno)
                        assert alias.asname is None, (path, node.lineno)


def test_sympy_is_imported_where_allowed() -> None:
    """The test above sees something: algebra does import SymPy, and builds with its node constructors."""
    source = (ROOT / "service" / "formulas" / "algebra.py").read_text()
    tree = ast.parse(source)
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "sympy" in imported
    used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)}
    assert {"Add", "Mul", "Pow", "Rational", "Symbol"} <= used

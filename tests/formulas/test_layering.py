"""service.formulas is pure (the standard library only): importing it and all its submodules, in a fresh
interpreter, pulls in no web framework, and not SymPy either (this piece builds trees by hand)."""

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
PROBE = """
import importlib, json, pkgutil, sys
import service.formulas
names = sorted(m.name for m in pkgutil.iter_modules(service.formulas.__path__))
for name in names:
    importlib.import_module("service.formulas." + name)
print(json.dumps({"submodules": names, "modules": sorted(sys.modules)}))
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
    loaded = set(result["modules"])
    leaked = sorted(m for m in loaded if m.split(".")[0] in [*FORBIDDEN, "sympy", "numpy"])
    assert not leaked, f"service.formulas pulls in {leaked}"


def test_no_eval_in_the_package() -> None:
    """No call of eval, exec, compile or __import__, and no import of SymPy, anywhere in the package."""
    for path in (ROOT / "service" / "formulas").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in {"eval", "exec", "compile", "__import__"}, (path, node.lineno)
            if isinstance(node, ast.Attribute):
                assert node.attr not in {"sympify", "parse_expr"}, (path, node.lineno)
            if isinstance(node, ast.Import | ast.ImportFrom):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(m.split(".")[0] == "sympy" for m in modules), (path, node.lineno)

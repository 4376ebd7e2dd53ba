"""The compute layer is pure numpy and the standard library (docs/design/architecture.md): importing it and all
its submodules, in a fresh interpreter, must not pull in the web stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ["fastapi", "starlette", "pydantic", "pydantic_core", "uvicorn", "httpx"]
REQUIRED = ["activations", "losses", "pairings", "models", "domains", "errors", "stable"]
OPTIONAL = ["breakdown", "finite_differences", "model_names"]  # imported when present

PROBE = """
import importlib, json, pkgutil, sys
import service.compute
names = sorted(m.name for m in pkgutil.iter_modules(service.compute.__path__))
for name in names:
    importlib.import_module("service.compute." + name)
print(json.dumps({"submodules": names, "modules": sorted(sys.modules)}))
"""


def _probe() -> dict[str, list[str]]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_compute_imports_no_web_framework() -> None:
    result = _probe()
    submodules = set(result["submodules"])
    missing = [name for name in REQUIRED if name not in submodules]
    assert not missing, f"expected submodules not found: {missing}"
    for name in OPTIONAL:
        if (ROOT / "service" / "compute" / f"{name}.py").exists():
            assert name in submodules
    loaded = set(result["modules"])
    for name in REQUIRED + [n for n in OPTIONAL if n in submodules]:
        assert f"service.compute.{name}" in loaded
    leaked = sorted(m for m in loaded if m.split(".")[0] in FORBIDDEN)
    assert not leaked, f"service.compute pulls in {leaked}"


def test_probe_would_see_a_web_framework() -> None:
    """The probe's own check can fail: a forbidden package imported the same way is seen."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(ROOT)
    code = "import json, sys, pydantic; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert "pydantic" in json.loads(out.stdout)

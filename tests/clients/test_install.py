"""`pip install ./clients/python` into a clean virtualenv (httpx at its pinned version) gives an
importable client and nothing of the server's stack."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.system.server import ROOT

SERVER_STACK = {"fastapi", "numpy", "uvicorn", "pydantic", "redis", "prometheus-client", "starlette", "service"}


def _normal(name: str) -> str:
    return name.lower().replace("_", "-")


@pytest.mark.slow
def test_the_client_installs_alone(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_REQUIRE_VIRTUALENV")}
    # from a copy: the build leaves build/ and *.egg-info next to the sources, and the checkout stays as it is
    source = tmp_path / "client"
    shutil.copytree(ROOT / "clients" / "python", source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    install = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run(
        [*install, "-c", str(ROOT / "constraints.txt"), str(source)],
        check=True,
        env=env,
        cwd=tmp_path,
    )
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    installed = {_normal(p["name"]): p["version"] for p in json.loads(listed.stdout)}
    assert "gradient-service-client" in installed
    assert not SERVER_STACK & set(installed), sorted(SERVER_STACK & set(installed))
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().split())
    assert installed["httpx"] == pins["httpx"]

    code = (
        "import sys, gradient_service_client as g; "
        "print(g.__file__); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'fastapi', 'numpy', 'pydantic', 'service'})); "
        "print(g.check.__name__, g.GradientClient.__name__, g.AsyncGradientClient.__name__, g.ServiceError.__name__)"
    )
    out = subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True, env=env, cwd=tmp_path)
    where, heavy, names = out.stdout.splitlines()
    assert where.startswith(str(venv))  # the installed copy, not the checkout's
    assert heavy == "[]"
    assert names == "check GradientClient AsyncGradientClient ServiceError"
    typed = subprocess.run(
        [str(python), "-c", "import gradient_service_client, pathlib; "
         "print((pathlib.Path(gradient_service_client.__file__).parent / 'py.typed').exists())"],
        check=True, capture_output=True, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert typed.stdout.strip() == "True"

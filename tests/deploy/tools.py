"""Shared by the deployment tests: paths, the worked example, and finding the tools they need.

A tool that cannot be had makes its test skip with the reason, except under CI (CI=true), where
it fails instead: CI must run every deployment check, never pass without it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
COMPOSE = DOCKER / "compose.yaml"
NGINX_DIR = DOCKER / "nginx"
K8S = DOCKER / "k8s"


# The container engine's setup for machines without a Docker engine (its header tells how).
def _engine_setup() -> Path:
    """The workplace's podman setup: $GRADIENT_CONTAINER_ENGINE_SETUP, else the tools directory
    beside the checkout, else the workplace's own /work/shared/tools (a clone made elsewhere, as CI's may be)."""
    if os.environ.get("GRADIENT_CONTAINER_ENGINE_SETUP"):
        return Path(os.environ["GRADIENT_CONTAINER_ENGINE_SETUP"])
    candidates = [ROOT.parent / "shared/tools/container-engine.sh", Path("/work/shared/tools/container-engine.sh")]
    return next((c for c in candidates if c.exists()), candidates[0])


ENGINE_SETUP = _engine_setup()

# docs/design/math.md's worked example: logistic regression, w = [2, 3], b = 1.
WORKED_EXAMPLE = {
    "model": "logistic_regression",
    "parameters": {"w": [2, 3], "b": 1},
    "data": {"X": [[0.5, 1.5], [1, 1], [1.5, 0.5], [3, 0.5], [2, 2], [1, 2.5]], "y": [0, 0, 0, 1, 1, 1]},
}
WORKED_GRADIENT_W = [0.498333393278696, 0.49883942983996693]
WORKED_GRADIENT_B = 0.4986180654632857

# README's grading example: the learner summed dJ/db instead of averaging it (2 of 3 parts right).
GRADE_REQUEST = {
    "problem": {
        "model": "logistic_regression",
        "parameters": {"w": [1, 1], "b": -3},
        "data": WORKED_EXAMPLE["data"],
    },
    "answer": {
        "loss": 0.36686678640551745,
        "gradients": {"w": [-0.20687020897043107, -0.14394676417074018], "b": -0.2171984948563006},
    },
    "tolerance": {"rtol": 1e-5, "atol": 1e-8},
}
GRADE_SCORE = 2 / 3


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def unavailable(reason: str) -> NoReturn:
    """Skip loudly, or fail under CI, where every deployment check must run."""
    message = f"DEPLOYMENT CHECK NOT RUN: {reason}"
    if in_ci():
        pytest.fail(message + " (CI=true: this is a failure, not a skip)", pytrace=False)
    pytest.skip(message)


def is_root() -> bool:
    return os.geteuid() == 0


def tool(name: str, hint: str) -> str:
    """The path of a command-line tool of the test extra (installed in the virtualenv's bin)."""
    venv_bin = Path(sys.executable).parent / name
    found = str(venv_bin) if venv_bin.exists() else shutil.which(name)
    if found is None:
        unavailable(f"`{name}` is not installed ({hint})")
    return found


def interpolate(text: str, env: dict[str, str] | None = None) -> str:
    """Compose's variable interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, $$."""
    env = {} if env is None else env

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, default = m.group("name"), m.group("op"), m.group("default") or ""
        value = env.get(name)
        if op == ":-" and not value:
            return default
        if op == "-" and value is None:
            return default
        return value or ""

    return re.sub(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}", one, text)


def run(cmd: list[str], timeout: float, env: dict[str, str] | None = None, check: bool = True) -> str:
    """Run a command; on failure, its output is in the error."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout

"""check() in Otter-Grader's hidden test: `otter run` (the real tool, non-containerized) grades two
submissions of the course's exercise with an autograder whose hidden test calls check() with the
instructor's token, as a student, against a real service: 2/2 for the right one, 0/2 for the one
that forgets 1/m, with the mistake named in the test's output. Skips without otter, except under CI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.system.notebooks import ROOT, STUDENT, service_and_token

pytestmark = pytest.mark.slow

RIGHT = """import numpy as np

def compute_gradient_logistic(X, y, w, b):
    m = X.shape[0]
    err = 1 / (1 + np.exp(-(X @ w + b))) - y
    return np.sum(err) / m, X.T @ err / m
"""
WRONG = RIGHT.replace(" / m", "")  # the 1/m forgotten

# the hidden test, as `otter assign` writes it into the autograder's tests/q1.py (docs/client.md shows the cell)
HIDDEN = """>>> from gradient_service_client import check
>>> result = check(compute_gradient_logistic, {token!r})
>>> assert result.score == 1.0, str(result)"""


def _otter() -> str:
    found = shutil.which("otter", path=str(Path(sys.executable).parent)) or shutil.which("otter")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("otter-grader is not installed (it is in the test extra)")
        pytest.skip("otter-grader is not installed (make test-slow installs it)")
    return found


def _autograder(path: Path, token: str) -> None:
    case = {"code": HIDDEN.format(token=token), "hidden": True, "locked": False}
    test: dict[str, Any] = {
        "name": "q1",
        "points": 2,
        "suites": [{"cases": [case], "scored": True, "setup": "", "teardown": "", "type": "doctest"}],
    }
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("otter_config.json", "{}")
        z.writestr("tests/q1.py", f"OK_FORMAT = True\ntest = {test!r}\n")


def _submission(path: Path, source: str) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(new_notebook(cells=[new_code_cell(source)], metadata={"kernelspec": kernelspec}), path)


def test_otter_grades_with_check(tmp_path: Path) -> None:
    otter = _otter()
    with service_and_token() as (base, token):
        _autograder(tmp_path / "autograder.zip", token)
        env = {
            **os.environ,
            "GRADIENT_SERVICE_URL": base,
            "GRADIENT_SERVICE_API_KEY": STUDENT,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(ROOT / "clients" / "python"), os.environ.get("PYTHONPATH")])
            ),
        }
        results = {}
        for name, source in (("right", RIGHT), ("wrong", WRONG)):
            _submission(tmp_path / f"{name}.ipynb", source)
            (tmp_path / name).mkdir()
            subprocess.run(
                [otter, "run", "--no-logo", "-a", "autograder.zip", "-o", name, f"{name}.ipynb"],
                cwd=tmp_path, env=env, check=True, capture_output=True, timeout=300,
            )  # fmt: skip
            tests = json.loads((tmp_path / name / "results.json").read_text())["tests"]
            results[name] = {t["name"]: t for t in tests if t["name"] == "q1"}["q1"]
    assert (results["right"]["score"], results["right"]["max_score"]) == (2.0, 2.0), results["right"]["output"]
    assert (results["wrong"]["score"], results["wrong"]["max_score"]) == (0, 2.0)
    assert "Summed instead of averaged (missing_mean)" in results["wrong"]["output"]

"""Every notebook of examples/notebooks/ runs top to bottom with nbclient in a real ipykernel, as a student
(a student key, a token the grader signed) against a real service, and says what its tagged cells promise:
a cell tagged ``expect-mistake:<code>`` shows that mistake named, one tagged ``expect-correct`` a correct grading.
Without nbclient or ipykernel the test skips, except under CI (CI=true), where it fails."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.system.notebooks import ROOT, execute, notebooks, output_text, service_and_token

pytestmark = pytest.mark.slow


def _require(module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"{module} is not installed (make test-slow installs it)")


@pytest.fixture(scope="module")
def service() -> Iterator[tuple[str, str]]:
    for module in ("nbclient", "nbformat", "ipykernel"):
        _require(module)
    with service_and_token() as running:
        yield running


def test_there_are_notebooks() -> None:
    assert [p.name for p in notebooks()] >= ["logistic_gradient.ipynb"]


def _keeps_its_promises(nb: Any, path: Path) -> None:
    promised = 0
    for index, cell in enumerate(nb.cells):
        for tag in cell.get("metadata", {}).get("tags", []):
            if not tag.startswith("expect-"):
                continue
            promised += 1
            shown = output_text(cell)
            where = f"{path.relative_to(ROOT)} cell {index}: {shown.get('text/plain', '(no text)')}"
            assert {"text/plain", "text/html", "text/markdown"} <= set(shown), where
            if tag == "expect-correct":
                assert ": correct (" in shown["text/plain"] and "score 1.00" in shown["text/plain"], where
                assert "✗" not in shown["text/plain"], where
            else:
                code = tag.removeprefix("expect-mistake:")
                assert "not yet correct" in shown["text/plain"], where
                assert f"({code})" in shown["text/plain"] and f"<code>{code}</code>" in shown["text/html"], where
    assert promised, f"{path.name} has no cell tagged expect-correct or expect-mistake:<code>: nothing is checked"


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_notebook_runs_and_grades(path: Path, service: tuple[str, str], tmp_path: Path) -> None:
    base, token = service
    _keeps_its_promises(execute(path, base, token, tmp_path), path)


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_the_stored_outputs_are_those_of_a_run(path: Path) -> None:
    """The docs show the stored outputs (`python -m tests.system.notebooks` writes them): they say what a run says."""
    nbformat = pytest.importorskip("nbformat") if os.environ.get("CI") != "true" else __import__("nbformat")
    _keeps_its_promises(nbformat.read(path, as_version=4), path)

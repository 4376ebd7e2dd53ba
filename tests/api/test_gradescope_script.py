"""docs/gradescope/grade_submission.py (and run_autograder) as Gradescope runs them, against a real
server on a free loopback port, with a temporary directory standing in for /autograder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.system.server import ROOT, Service, free_port, running_service

pytestmark = pytest.mark.slow

GRADESCOPE = ROOT / "docs" / "gradescope"
SCRIPT = GRADESCOPE / "grade_submission.py"
# docs/design/math.md's worked example, the problem of docs/gradescope/problem.json
RIGHT = {
    "loss": 3.001384020645288,
    "gradients": {"w": [0.498333393278696, 0.49883942983996693], "b": 0.49861806546328574},
}
M = 6
POINTS = {"loss": 1.0, "gradients.w": 2.0, "gradients.b": 1.0}
TOTAL = sum(POINTS.values())


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    with running_service() as s:
        yield s


def _run(
    root: Path, base: str, answer: str | None, *, command: list[str] | None = None, **env: str
) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    """Run the autograder with `root` as /autograder; the results.json it wrote and the process."""
    submission = root / "submission"
    submission.mkdir(parents=True, exist_ok=True)
    if answer is not None:
        (submission / "answer.json").write_text(answer)
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AUTOGRADER_", "GRADIENT_SERVICE_"))},
        "AUTOGRADER_ROOT": str(root),
        "GRADIENT_SERVICE_URL": base,
        "GRADIENT_SERVICE_TIMEOUT": "10",
        "GRADIENT_SERVICE_RETRIES": "1",
        **env,
    }
    proc = subprocess.run(
        command or [sys.executable, str(SCRIPT)],
        env=environ,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(Path(environ.get("AUTOGRADER_RESULTS", root / "results" / "results.json")).read_text())
    _assert_gradescope_shape(results)
    return results, proc


def _assert_gradescope_shape(results: dict[str, Any]) -> None:
    assert isinstance(results["score"], float | int)
    assert isinstance(results["output"], str) and results["output"]
    names = [t["name"] for t in results["tests"]]
    assert names and len(names) == len(set(names))
    for test in results["tests"]:
        assert {"name", "score", "max_score", "output", "visibility"} <= set(test)
        assert 0 <= test["score"] <= test["max_score"]
    assert sum(t["max_score"] for t in results["tests"]) == TOTAL


def _tests(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in results["tests"]}


def test_the_example_problem_is_the_worked_example() -> None:
    config = json.loads((GRADESCOPE / "problem.json").read_text())
    assert config["problem"]["parameters"] == {"w": [2, 3], "b": 1}
    assert config["points"] == POINTS
    assert not (GRADESCOPE / "config.env").exists(), "config.env holds a course's key: ship only the example"


def test_a_right_submission_gets_full_marks(service: Service, tmp_path: Path) -> None:
    results, _ = _run(tmp_path, service.base, json.dumps(RIGHT))
    assert results["score"] == TOTAL
    tests = _tests(results)
    assert list(tests) == ["loss", "gradients.w", "gradients.b"]
    assert all(t["score"] == t["max_score"] == POINTS[name] for name, t in tests.items())
    assert results["extra_data"]["correct"] is True
    assert set(results["extra_data"]["version"]) == {"service", "grading_rules"}
    assert results["output"].startswith("Question 2")


def test_a_wrong_submission_is_told_its_mistake(service: Service, tmp_path: Path) -> None:
    summed = {  # summed over the m examples instead of averaged
        "loss": RIGHT["loss"],
        "gradients": {"w": [g * M for g in RIGHT["gradients"]["w"]], "b": RIGHT["gradients"]["b"] * M},  # type: ignore[index]
    }
    results, _ = _run(tmp_path, service.base, json.dumps(summed))
    assert results["score"] == 1.0
    tests = _tests(results)
    assert tests["loss"]["score"] == 1.0
    for part in ("gradients.w", "gradients.b"):
        assert tests[part]["score"] == 0.0
        assert tests[part]["tags"] == ["missing_mean"]
        assert tests[part]["output"] != "Correct."
    assert results["extra_data"]["correct"] is False


def test_a_missing_part_scores_zero_and_is_named(service: Service, tmp_path: Path) -> None:
    answer = {"loss": RIGHT["loss"], "gradients": {"w": RIGHT["gradients"]["w"]}, "student": "Ada"}  # type: ignore[index]
    results, _ = _run(tmp_path, service.base, json.dumps(answer))
    assert results["score"] == 3.0
    assert _tests(results)["gradients.b"] == {
        "name": "gradients.b",
        "score": 0.0,
        "max_score": 1.0,
        "output": "Missing: your answer.json does not give gradients.b.",
        "visibility": "visible",
    }
    assert "Missing parts (0 points): gradients.b." in results["output"]
    assert "Ignored (not a graded part): student." in results["output"]


def test_nan_in_an_answer_is_graded_wrong(service: Service, tmp_path: Path) -> None:
    answer = '{"loss": NaN, "gradients": {"w": [0.498333393278696, 0.49883942983996693], "b": 0.49861806546328574}}'
    results, _ = _run(tmp_path, service.base, answer)
    assert results["score"] == 3.0
    assert "NaN" in _tests(results)["loss"]["output"]


def test_a_misspelt_part_is_explained(service: Service, tmp_path: Path) -> None:
    answer = {"loss": RIGHT["loss"], "gradients": {"W": [0.5, 0.5], "b": 0.5}}
    results, _ = _run(tmp_path, service.base, json.dumps(answer))
    assert results["score"] == 0.0
    assert results["extra_data"] == {"error": "answer-rejected"}
    assert "gradients.W: Extra inputs are not permitted" in results["output"]


def test_invalid_json_scores_zero_with_its_location(service: Service, tmp_path: Path) -> None:
    results, _ = _run(tmp_path, service.base, '{"loss": 3.0, "gradients": {"w": [0.5 0.5]}}')
    assert results["score"] == 0.0
    assert results["extra_data"] == {"error": "bad-answer-json"}
    assert "answer.json is not valid JSON" in results["output"] and "line 1 column" in results["output"]
    assert all(t["score"] == 0.0 and t["output"].startswith("Not graded") for t in results["tests"])


@pytest.mark.parametrize(
    ("answer", "error"),
    [("[1, 2, 3]", "bad-answer-json"), ("{}", "empty-answer"), ('{"name": "Ada"}', "empty-answer")],
)
def test_answers_without_parts(service: Service, tmp_path: Path, answer: str, error: str) -> None:
    results, _ = _run(tmp_path, service.base, answer)
    assert (results["score"], results["extra_data"]) == (0.0, {"error": error})
    assert '"gradients"' in results["output"]  # the expected format is shown


def test_no_answer_file(service: Service, tmp_path: Path) -> None:
    (tmp_path / "submission").mkdir()
    (tmp_path / "submission" / "notes.txt").write_text("hello")
    results, _ = _run(tmp_path, service.base, None)
    assert (results["score"], results["extra_data"]) == (0.0, {"error": "no-answer-file"})
    assert "No answer.json was found in your submission (it holds: notes.txt)" in results["output"]


def test_a_single_other_json_file_is_used(service: Service, tmp_path: Path) -> None:
    (tmp_path / "submission" / "hw").mkdir(parents=True)
    (tmp_path / "submission" / "hw" / "my_answer.json").write_text(json.dumps(RIGHT))
    results, _ = _run(tmp_path, service.base, None)
    assert results["score"] == TOTAL


def test_a_service_that_is_down_still_gives_results(tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    results, proc = _run(tmp_path, down, json.dumps(RIGHT), GRADIENT_SERVICE_RETRIES="2")
    assert results["score"] == 0.0
    assert results["extra_data"] == {"error": "service-unreachable"}
    assert f"the grading service at {down} could not be reached" in results["output"]
    assert "after 2 attempt(s)" in results["output"] and "NOT graded" in results["output"]
    assert [t["name"] for t in results["tests"]] == ["loss", "gradients.w", "gradients.b"]
    assert "service-unreachable" in proc.stderr  # for the staff, in Gradescope's stdout log


def test_a_broken_problem_file_is_the_staffs_problem(service: Service, tmp_path: Path) -> None:
    problem = tmp_path / "problem.json"
    broken = {"model": "logistic_regression", "parameters": {"w": [1], "b": 0}}  # no data
    problem.write_text(json.dumps({"problem": broken, "points": POINTS}))
    results, _ = _run(tmp_path, service.base, json.dumps(RIGHT), AUTOGRADER_PROBLEM=str(problem))
    assert (results["score"], results["extra_data"]) == (0.0, {"error": "service-refused"})
    assert "problem.data" in results["output"] and "not your answer" in results["output"]


def test_run_autograder_and_the_paths_from_the_environment(service: Service, tmp_path: Path) -> None:
    results_path = tmp_path / "out" / "results.json"
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "q2.json").write_text(json.dumps(RIGHT))
    results, _ = _run(
        tmp_path,
        service.base,
        None,
        command=["bash", str(GRADESCOPE / "run_autograder")],
        AUTOGRADER_SOURCE=str(GRADESCOPE),
        AUTOGRADER_SUBMISSION_DIR=str(tmp_path / "elsewhere"),
        AUTOGRADER_ANSWER_FILE="q2.json",
        AUTOGRADER_RESULTS=str(results_path),
        PYTHON=sys.executable,
    )
    assert results["score"] == TOTAL and results_path.is_file()
    assert not (tmp_path / "results").exists()

#!/usr/bin/env python3
"""Gradescope autograder: grade a student's answer.json with gradient-service's POST /grade.

Only Python 3's standard library is used (urllib, json): Gradescope's images do not have
gradient-service's package or httpx, and nothing needs installing (see setup.sh). Runs on
Python 3.8 or later.

The student submits `answer.json`, their values for the problem in `problem.json` (next to this
script):

    {"loss": 3.0013840206, "gradients": {"w": [0.4983333933, 0.4988394298], "b": 0.4986180655}}

and this script writes Gradescope's `results.json`: one test per part, with the service's
feedback (the catalogued mistake, when one explains a wrong part). On any failure (no
answer.json, invalid JSON, a misspelt part, the service unreachable or failing) it still writes a
results.json, with score 0 and an output that says what happened and what to do.

Environment (all optional; the defaults are Gradescope's layout):

    AUTOGRADER_ROOT            /autograder
    AUTOGRADER_SUBMISSION_DIR  $AUTOGRADER_ROOT/submission
    AUTOGRADER_ANSWER_FILE     answer.json (its name in the submission)
    AUTOGRADER_RESULTS         $AUTOGRADER_ROOT/results/results.json
    AUTOGRADER_PROBLEM         problem.json next to this script
    GRADIENT_SERVICE_URL       http://127.0.0.1:8000 (the service's base URL)
    GRADIENT_SERVICE_API_KEY   sent as "Authorization: Bearer <key>" when set
    GRADIENT_SERVICE_TIMEOUT   30 (seconds, per attempt)
    GRADIENT_SERVICE_RETRIES   3 (attempts when the service is unreachable, busy or failing)
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ANSWER_KEYS = ("loss", "gradients", "per_sample")
DEFAULT_PARTS = ("loss", "gradients.w", "gradients.b")
EXAMPLE_ANSWER = '{"loss": 0.123, "gradients": {"w": [0.1, 0.2], "b": 0.3}}'
RETRY_STATUSES = (429, 502, 503, 504)


class GradingFailed(Exception):
    """The submission cannot be graded: `message` is for the student, `code` for the course staff."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "")
    return value if value else default


def _paths() -> dict[str, Path]:
    root = Path(_env("AUTOGRADER_ROOT", "/autograder"))
    submission = Path(_env("AUTOGRADER_SUBMISSION_DIR", str(root / "submission")))
    return {
        "submission": submission,
        "results": Path(_env("AUTOGRADER_RESULTS", str(root / "results" / "results.json"))),
        "problem": Path(_env("AUTOGRADER_PROBLEM", str(HERE / "problem.json"))),
    }


# --- the assignment (problem.json) --------------------------------------------------------------


def load_assignment(path: Path) -> dict[str, Any]:
    """problem.json: {"problem": <a /gradient request>, "parts", "points", "tolerance", "reveal", "title"},
    or a bare /gradient request."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise GradingFailed(
            "bad-problem-json",
            f"The autograder is misconfigured: its problem file {path.name} cannot be read ({exc}). "
            "Please tell the course staff.",
        ) from None
    if not isinstance(config, dict):
        raise GradingFailed("bad-problem-json", f"The autograder is misconfigured: {path.name} is not a JSON object.")
    if "problem" not in config:
        config = {"problem": config}
    config.setdefault("parts", list(DEFAULT_PARTS))
    config.setdefault("points", {})
    return config


def points_of(config: dict[str, Any], part: str) -> float:
    return float(config["points"].get(part, 1.0))


# --- the submission (answer.json) ---------------------------------------------------------------


def find_answer(submission: Path) -> Path:
    name = _env("AUTOGRADER_ANSWER_FILE", "answer.json")
    direct = submission / name
    if direct.is_file():
        return direct
    found = sorted(p for p in submission.rglob(name) if p.is_file()) if submission.is_dir() else []
    if found:
        return found[0]
    others = sorted(p for p in submission.rglob("*.json") if p.is_file()) if submission.is_dir() else []
    if len(others) == 1:
        return others[0]
    listing = ", ".join(sorted(str(p.relative_to(submission)) for p in submission.rglob("*") if p.is_file()))
    raise GradingFailed(
        "no-answer-file",
        f"No {name} was found in your submission"
        + (f" (it holds: {listing})" if listing else " (it is empty)")
        + f". Upload a file named {name} holding your values, e.g.\n{EXAMPLE_ANSWER}",
    )


def load_answer(path: Path) -> tuple[dict[str, Any], list[str]]:
    """The answer object (only its known keys) and the top-level keys that were ignored."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise GradingFailed(
            "bad-answer-json", f"{path.name} is not a UTF-8 text file: save it as plain JSON text."
        ) from None
    try:
        answer = json.loads(text)
    except ValueError as exc:
        raise GradingFailed(
            "bad-answer-json",
            f"{path.name} is not valid JSON: {exc}. Check the brackets, commas and quotes "
            f"(a JSON validator shows where), e.g.\n{EXAMPLE_ANSWER}",
        ) from None
    if not isinstance(answer, dict):
        raise GradingFailed(
            "bad-answer-json",
            f"{path.name} must hold a JSON object with your values, not a {type(answer).__name__}, e.g.\n"
            + EXAMPLE_ANSWER,
        )
    ignored = sorted(k for k in answer if k not in ANSWER_KEYS)
    return {k: v for k, v in answer.items() if k in ANSWER_KEYS}, ignored


def given_parts(answer: dict[str, Any]) -> list[str]:
    parts = ["loss"] if "loss" in answer else []
    for group in ("gradients", "per_sample"):
        if isinstance(answer.get(group), dict):
            parts += [f"{group}.{key}" for key in answer[group]]
    return parts


# --- the service ------------------------------------------------------------------------------------


def _problem_message(problem: dict[str, Any]) -> str:
    detail = str(problem.get("detail", ""))
    lines = [detail] if detail else []
    for error in problem.get("errors") or []:
        loc = ".".join(str(p) for p in error.get("loc", []))
        lines.append(f"  {loc}: {error.get('msg', '')}")
    return "\n".join(lines)


def post_grade(request: dict[str, Any]) -> dict[str, Any]:
    """POST /grade; the parsed result, or GradingFailed saying whose problem it is."""
    base = _env("GRADIENT_SERVICE_URL", "http://127.0.0.1:8000").rstrip("/")
    timeout = float(_env("GRADIENT_SERVICE_TIMEOUT", "30"))
    attempts = max(1, int(_env("GRADIENT_SERVICE_RETRIES", "3")))
    headers = {"Content-Type": "application/json", "Accept": "application/json, application/problem+json"}
    api_key = os.environ.get("GRADIENT_SERVICE_API_KEY")
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    # allow_nan: a NaN in the student's answer is graded (wrong, with a message), not refused.
    body = json.dumps(request, allow_nan=True).encode("utf-8")
    not_graded = "Your answer was NOT graded, through no fault of yours: resubmit later, or tell the course staff."
    last = ""
    for attempt in range(attempts):
        if attempt:
            time.sleep(min(2.0**attempt, 10.0))
        req = urllib.request.Request(base + "/grade", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                result = json.loads(response.read().decode("utf-8"))
            if isinstance(result, dict) and isinstance(result.get("tests"), list):
                return result
            last = "the grading service's answer is not a Gradescope result"
            continue
        except urllib.error.HTTPError as exc:
            raw = exc.read().decode("utf-8", errors="replace")
            try:
                problem = json.loads(raw)
            except ValueError:
                problem = {"detail": raw[:300]}
            if not isinstance(problem, dict):
                problem = {"detail": raw[:300]}
            slug = str(problem.get("type", "")).rsplit(":", 1)[-1] or str(exc.code)
            if exc.code in RETRY_STATUSES or exc.code >= 500:
                last = f"the grading service answered {exc.code} ({slug})"
                continue
            if exc.code in (401, 403):
                raise GradingFailed(
                    "service-auth",
                    f"The grading service refused the autograder's key ({exc.code} {slug}). {not_graded}",
                ) from None
            errors = problem.get("errors") or []
            if exc.code == 422 and errors and all((e.get("loc") or [None])[0] == "answer" for e in errors):
                raise GradingFailed(
                    "answer-rejected",
                    "Your answer.json could not be graded:\n"
                    + _problem_message({"errors": errors}).replace("  answer.", "  ")
                    + f"\nThe parts are loss, gradients.w, gradients.b (and per_sample.*), e.g.\n{EXAMPLE_ANSWER}",
                ) from None
            if exc.code == 413:
                raise GradingFailed("answer-too-large", "Your answer.json is too large to grade.") from None
            raise GradingFailed(
                "service-refused",
                f"The grading service refused the request ({exc.code} {slug}):\n{_problem_message(problem)}\n"
                f"This is the autograder's configuration (problem.json), not your answer. {not_graded}",
            ) from None
        except (urllib.error.URLError, OSError) as exc:  # refused, DNS, timeout, reset
            reason = getattr(exc, "reason", exc)
            last = f"the grading service at {base} could not be reached ({reason})"
        except ValueError:
            last = "the grading service's answer is not JSON"
    raise GradingFailed("service-unreachable", f"Grading failed: {last}, after {attempts} attempt(s). {not_graded}")


# --- results.json ---------------------------------------------------------------------------------


def failure_results(code: str, message: str, config: dict[str, Any] | None) -> dict[str, Any]:
    parts = list(config["parts"]) if config else list(DEFAULT_PARTS)
    tests = [
        {
            "name": part,
            "score": 0.0,
            "max_score": points_of(config, part) if config else 1.0,
            "output": "Not graded: see the message above.",
            "visibility": "visible",
        }
        for part in parts
    ]
    return {
        "score": 0.0,
        "output": message,
        "visibility": "visible",
        "tests": tests,
        "extra_data": {"error": code},
    }


def grade(paths: dict[str, Path]) -> dict[str, Any]:
    config = None
    try:
        config = load_assignment(paths["problem"])
        answer, ignored = load_answer(find_answer(paths["submission"]))
        given = given_parts(answer)
        missing = [p for p in config["parts"] if p not in given]
        notes = []
        if ignored:
            notes.append("Ignored (not a graded part): " + ", ".join(ignored) + ".")
        if not given:
            raise GradingFailed(
                "empty-answer",
                "Your answer.json gives none of the parts to grade ("
                + ", ".join(config["parts"])
                + f"), e.g.\n{EXAMPLE_ANSWER}",
            )
        request: dict[str, Any] = {"problem": config["problem"], "answer": answer, "format": "gradescope"}
        for option in ("tolerance", "points", "reveal"):
            if config.get(option):
                request[option] = config[option]
        results = post_grade(request)
        for part in missing:
            results["tests"].append(
                {
                    "name": part,
                    "score": 0.0,
                    "max_score": points_of(config, part),
                    "output": f"Missing: your answer.json does not give {part}.",
                    "visibility": "visible",
                }
            )
        if missing:
            notes.append("Missing parts (0 points): " + ", ".join(missing) + ".")
        title = config.get("title")
        results["output"] = "\n".join(([title] if title else []) + [results.get("output", "")] + notes)
        return results
    except GradingFailed as failure:
        print(f"grading failed: {failure.code}: {failure.message}", file=sys.stderr)
        return failure_results(failure.code, failure.message, config)
    except Exception:  # a bug here must still leave the student a results.json
        traceback.print_exc()
        return failure_results(
            "autograder-error",
            "The autograder failed unexpectedly; your answer was NOT graded. Please tell the course staff.",
            config,
        )


def main() -> int:
    paths = _paths()
    results = grade(paths)
    paths["results"].parent.mkdir(parents=True, exist_ok=True)
    paths["results"].write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {paths['results']}: score {results['score']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

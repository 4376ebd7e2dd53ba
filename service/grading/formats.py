"""Results in graders' own formats: Gradescope's results.json and PrairieLearn's external grader."""

from __future__ import annotations

from typing import Any


def gradescope(native: dict[str, Any]) -> dict[str, Any]:
    """A Gradescope results.json object: score (points), tests[] with name, score, max_score,
    output and visibility; the grader's versions go in extra_data."""
    return {
        "score": native["points"],
        "output": native["feedback"],
        "visibility": "visible",
        "tests": [
            {
                "name": c["name"],
                "score": c["points"],
                "max_score": c["max_points"],
                "output": c["message"],
                "visibility": "visible",
                **({"tags": [c["mistake"]["code"]]} if c.get("mistake") else {}),
            }
            for c in native["checks"]
        ],
        "extra_data": {"version": native["version"], "correct": native["correct"]},
    }


def prairielearn(native: dict[str, Any]) -> dict[str, Any]:
    """A PrairieLearn external-grader result: score in [0, 1], gradable, message, output (the versions),
    tests[] with name, description, points, max_points, message."""
    return {
        "gradable": True,
        "score": native["score"],
        "message": native["feedback"],
        "output": "gradient-service {service}, grading rules {grading_rules}".format(**native["version"]),
        "tests": [
            {
                "name": c["name"],
                "description": c["name"],
                "points": c["points"],
                "max_points": c["max_points"],
                "message": c["message"],
            }
            for c in native["checks"]
        ],
    }


FORMATS = {"native": lambda r: r, "gradescope": gradescope, "prairielearn": prairielearn}


def render(native: dict[str, Any], fmt: str) -> dict[str, Any]:
    out: dict[str, Any] = FORMATS[fmt](native)
    return out

"""Gradescope's results.json and PrairieLearn's external-grading result, checked against their documentation.

Field sets (checked with JSON Schemas written here, validated by hand: jsonschema is not installed):
- Gradescope, gradescope-autograders.readthedocs.io/en/latest/specs/ ("Output format"): top level
  `score` (float, total points; optional if every test has one), `output` (string), `visibility`,
  `stdout_visibility`, `extra_data`, `tests`; each test `score`, `max_score`, `name`, `number`,
  `output`, `tags`, `visibility` (all optional); visibility is one of hidden, after_due_date,
  after_published, visible.
- PrairieLearn, prairielearn.readthedocs.io/en/latest/externalGrading/ (grading results): `gradable`
  (bool), `score` (float in [0, 1]), `message`, `output`, `images`, `tests`; each test `name`,
  `description`, `points`, `max_points`, `message`, `output`, `images`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.grading.formats import render
from service.grading.grade import GradeOptions, grade
from service.grading.reference import build_reference
from tests.grading import oracle
from tests.grading.oracle import jsonable

VISIBILITY = {"enum": ["hidden", "after_due_date", "after_published", "visible"]}
GRADESCOPE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,  # extra_data is the documented place for anything else
    "properties": {
        "score": {"type": "number"},
        "output": {"type": "string"},
        "visibility": VISIBILITY,
        "stdout_visibility": VISIBILITY,
        "extra_data": {"type": "object"},
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "score": {"type": "number"},
                    "max_score": {"type": "number"},
                    "name": {"type": "string"},
                    "number": {"type": "string"},
                    "output": {"type": "string"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "visibility": VISIBILITY,
                },
            },
        },
    },
}
PL_TEST: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "points", "max_points"],
    "properties": {
        "name": {"type": "string"},
        "description": {"type": "string"},
        "points": {"type": "number", "minimum": 0},
        "max_points": {"type": "number", "minimum": 0},
        "message": {"type": "string"},
        "output": {"type": "string"},
        "images": {"type": "array"},
    },
}
PRAIRIELEARN: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["gradable", "score"],
    "properties": {
        "gradable": {"type": "boolean"},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "message": {"type": "string"},
        "output": {"type": "string"},
        "images": {"type": "array"},
        "tests": {"type": "array", "items": PL_TEST},
    },
}

_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "number": (int, float),
}


def errors(instance: Any, schema: dict[str, Any], path: str = "$", top_level_extras: bool = True) -> Iterator[str]:
    """The subset of JSON Schema used above, checked by hand (type, enum, min/max, properties,
    required, additionalProperties, items)."""
    t = schema.get("type")
    if t is not None:
        ok = isinstance(instance, _TYPES[t]) and not (t == "number" and isinstance(instance, bool))
        if not ok:
            yield f"{path}: {type(instance).__name__} is not {t}"
            return
    if "enum" in schema and instance not in schema["enum"]:
        yield f"{path}: {instance!r} not in {schema['enum']}"
    if "minimum" in schema and instance < schema["minimum"]:
        yield f"{path}: {instance} < {schema['minimum']}"
    if "maximum" in schema and instance > schema["maximum"]:
        yield f"{path}: {instance} > {schema['maximum']}"
    if t == "object":
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in instance:
                yield f"{path}: missing {key!r}"
        for key, value in instance.items():
            if key in props:
                yield from errors(value, props[key], f"{path}.{key}")
            elif schema.get("additionalProperties") is False and (top_level_extras or path != "$"):
                yield f"{path}: unknown key {key!r}"
    if t == "array" and "items" in schema:
        for i, item in enumerate(instance):
            yield from errors(item, schema["items"], f"{path}[{i}]")


def test_the_validator_catches_what_it_should() -> None:
    assert not list(errors({"score": 1.0, "tests": [{"name": "a", "score": 1, "max_score": 1}]}, GRADESCOPE))
    assert list(errors({"score": "1"}, GRADESCOPE))
    assert list(errors({"version": {}}, GRADESCOPE))
    assert list(errors({"tests": [{"points": 1}]}, GRADESCOPE))
    assert list(errors({"tests": [{"visibility": "public"}]}, GRADESCOPE))
    assert list(errors({"gradable": True, "score": 1.5}, PRAIRIELEARN))
    assert list(errors({"gradable": "yes", "score": 0.5}, PRAIRIELEARN))
    assert list(errors({"score": 0.5}, PRAIRIELEARN))
    assert list(
        errors(
            {"gradable": True, "score": 0.5, "tests": [{"name": "a", "points": True, "max_points": 1}]}, PRAIRIELEARN
        )
    )


def _natives() -> list[dict[str, Any]]:
    """Native results of several kinds: all right, a named mistake, a bad value, points, a not-graded part."""
    out = []
    case = oracle.make_case("logistic_regression", "l2", 0)
    sol = oracle.solve(case)
    ref = build_reference(case.objective())
    right = {p: jsonable(v) for p, v in sol.parts().items()}
    out.append(grade(ref, right, GradeOptions()))
    wrong = {**right, "gradients.b": jsonable(np.sum(sol.r)), "loss": "NaN", "per_sample.f": [1, 2]}
    out.append(grade(ref, wrong, GradeOptions(points={"gradients.b": 2.5, "loss": 0})))
    out.append(grade(ref, {"gradients.w": jsonable(-sol.gw)}, GradeOptions(reveal=True)))
    from service.compute.model_names import ModelName
    from service.compute.models import build_objective
    from service.compute.pairings import make_pairing

    p = build_objective(
        ModelName.LOGISTIC_REGRESSION, make_pairing("sigmoid", "binary_cross_entropy"), [[1.0], [1.0]], [0, 1], [800], 0
    )
    out.append(grade(build_reference(p), {"loss": 1.0, "per_sample.dL_df": [1.0, 2.0]}, GradeOptions()))
    return out


NATIVES = _natives()


@pytest.mark.parametrize("native", NATIVES, ids=["right", "mistakes", "reveal", "not-graded"])
def test_gradescope_results_json(native: dict[str, Any]) -> None:
    out = render(native, "gradescope")
    assert not list(errors(out, GRADESCOPE)), list(errors(out, GRADESCOPE))
    assert json.loads(json.dumps(out, allow_nan=False)) == out
    # Gradescope's top-level score is total points; the tests carry the per-part points
    assert out["score"] == native["points"]
    assert out["score"] == pytest.approx(sum(t["score"] for t in out["tests"]))
    assert [t["name"] for t in out["tests"]] == [c["name"] for c in native["checks"]]
    for t, c in zip(out["tests"], native["checks"], strict=True):
        assert t["score"] == c["points"] and t["max_score"] == c["max_points"]
        assert t["output"] == c["message"]
        if c["mistake"]:
            assert c["mistake"]["code"] in t["tags"]
    assert out["output"] == native["feedback"]


@pytest.mark.parametrize("native", NATIVES, ids=["right", "mistakes", "reveal", "not-graded"])
def test_prairielearn_result_fields(native: dict[str, Any]) -> None:
    out = render(native, "prairielearn")
    found = list(errors(out, PRAIRIELEARN, top_level_extras=False))
    assert not found, found
    assert json.loads(json.dumps(out, allow_nan=False)) == out
    assert out["gradable"] is True
    assert out["score"] == native["score"]
    assert 0.0 <= out["score"] <= 1.0
    total = sum(t["max_points"] for t in out["tests"])
    if total:
        assert out["score"] == pytest.approx(sum(t["points"] for t in out["tests"]) / total)
    for t, c in zip(out["tests"], native["checks"], strict=True):
        assert t["name"] == c["name"] and t["points"] == c["points"] and t["max_points"] == c["max_points"]


@pytest.mark.parametrize("native", NATIVES[:1], ids=["right"])
def test_prairielearn_has_only_documented_top_level_keys(native: dict[str, Any]) -> None:
    out = render(native, "prairielearn")
    assert set(out) <= set(PRAIRIELEARN["properties"]), set(out) - set(PRAIRIELEARN["properties"])


def test_native_is_returned_as_is() -> None:
    assert render(NATIVES[1], "native") == NATIVES[1]


# --- through POST /grade and /grade/batch --------------------------------------------------------

WORKED = {
    "model": "logistic_regression",
    "parameters": {"w": [1, 1], "b": -3},
    "data": {"X": [[0.5, 1.5], [1, 1], [1.5, 0.5], [3, 0.5], [2, 2], [1, 2.5]], "y": [0, 0, 0, 1, 1, 1]},
}
ANSWER = {
    "loss": 0.36686678640551745,
    "gradients": {"w": [-0.20687020897043107, -0.14394676417074018], "b": -0.2171984948563006},
}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app()) as c:
        yield c


def test_gradescope_over_http(client: TestClient) -> None:
    r = client.post("/grade", json={"problem": WORKED, "answer": ANSWER, "format": "gradescope"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert not list(errors(out, GRADESCOPE)), list(errors(out, GRADESCOPE))
    assert out["score"] == 2.0
    tests = {t["name"]: t for t in out["tests"]}
    assert tests["gradients.b"]["score"] == 0.0 and tests["gradients.b"]["tags"] == ["missing_mean"]
    assert out["extra_data"]["version"]["grading_rules"] == client.get("/version").json()["grading_rules"]


def test_prairielearn_over_http(client: TestClient) -> None:
    r = client.post("/grade", json={"problem": WORKED, "answer": ANSWER, "format": "prairielearn"})
    assert r.status_code == 200, r.text
    out = r.json()
    found = list(errors(out, PRAIRIELEARN, top_level_extras=False))
    assert not found, found
    assert out["score"] == pytest.approx(2 / 3) and out["gradable"] is True


@pytest.mark.parametrize("fmt,schema", [("gradescope", GRADESCOPE), ("prairielearn", PRAIRIELEARN)])
def test_formats_over_batch(client: TestClient, fmt: str, schema: dict[str, Any]) -> None:
    answers = [ANSWER, {"loss": 0.5}, {"gradients": {"w": ["x", 1]}}]
    r = client.post("/grade/batch", json={"problem": WORKED, "answers": answers, "format": fmt})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 3
    for out in results:
        found = list(errors(out, schema, top_level_extras=fmt == "gradescope"))
        assert not found, found

"""POST /grade and /grade/batch with a neural_network problem, end to end through FastAPI's TestClient.

The problem is API's own neural_network example (without explain); the right answer and the mistakes'
answers come from the plain-numpy backpropagation of tests/grading/test_network_grading.py, never from
the service.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.compute.model_names import ModelName
from service.http.schemas.gradient import EXAMPLES
from service.http.schemas.grading import GradeResult, GradescopeResult, PrairieLearnResult
from tests.api.helpers import assert_problem, strict_loads
from tests.grading.test_network_grading import Net, backprop, grad_parts, jsonable, solve

PROBLEM: dict[str, Any] = {k: v for k, v in copy.deepcopy(EXAMPLES[ModelName.NEURAL_NETWORK]).items() if k != "explain"}
L2 = {"kind": "l2", "lambda": 0.7}


def _net(problem: dict[str, Any]) -> Net:
    acts = [spec["activation"] for spec in problem["layers"]]
    reg = problem.get("regularization")
    return Net(
        "example",
        acts[:-1],
        acts[-1],
        problem["loss"],
        [np.asarray(lp["W"], dtype=float) for lp in problem["parameters"]["layers"]],
        [np.asarray(lp["b"], dtype=float) for lp in problem["parameters"]["layers"]],
        np.asarray(problem["data"]["X"], dtype=float),
        np.asarray(problem["data"]["y"], dtype=float),
        None if reg is None else reg["kind"],
        0.0 if reg is None else float(reg["lambda"]),
    )


def _answer(parts: dict[str, Any], depth: int, skip: tuple[int, ...] = ()) -> dict[str, Any]:
    """A flat parts dict as the request's answer: {"loss", "gradients": {"layers": [{"W", "b"} | null]}}."""
    layers: list[Any] = []
    for i in range(depth):
        layers.append(
            None
            if i in skip
            else {"W": jsonable(parts[f"gradients.layers.{i}.W"]), "b": jsonable(parts[f"gradients.layers.{i}.b"])}
        )
    return {"loss": jsonable(parts["loss"]), "gradients": {"layers": layers}}


def _post(client: TestClient, body: dict[str, Any], path: str = "/grade") -> dict[str, Any]:
    r = client.post(path, json=body)
    assert r.status_code == 200, r.text
    out = strict_loads(r.text)
    assert isinstance(out, dict)
    return out


def _checks(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in result["checks"]}


def _named(check: dict[str, Any]) -> list[str]:
    m = check["mistake"]
    return [m["code"], *m.get("also_matches", [])] if m else []


NET = _net(PROBLEM)
SOL = solve(NET)
RIGHT = _answer(SOL.parts(), NET.depth)
PARTS = ["loss", "gradients.layers.0.W", "gradients.layers.0.b", "gradients.layers.1.W", "gradients.layers.1.b"]


def test_example_is_a_two_layer_network() -> None:
    assert NET.depth == 2 and NET.hidden == ["relu"] and NET.out == "sigmoid" and NET.m == 6
    assert np.any(SOL.zs[0] < 0) and np.any(SOL.zs[0] > 0)  # relu's g′ is neither all 0 nor all 1


@pytest.mark.parametrize("regularization", [None, L2], ids=["noreg", "l2"])
def test_right_answer_scores_full(client: TestClient, regularization: dict[str, Any] | None) -> None:
    problem = copy.deepcopy(PROBLEM)
    if regularization is not None:
        problem["regularization"] = regularization
    net = _net(problem)
    out = _post(client, {"problem": problem, "answer": _answer(solve(net).parts(), net.depth)})
    assert out["score"] == 1.0 and out["correct"] is True
    assert out["points"] == out["max_points"] == 5.0
    assert [c["name"] for c in out["checks"]] == PARTS
    for c in out["checks"]:
        assert c["correct"] is True and c["mistake"] is None and c["graded_against"] == "reference"
    assert out["feedback"] == "All 5 parts are correct."


def test_a_wrong_layer_is_wrong(client: TestClient) -> None:
    answer = copy.deepcopy(RIGHT)
    answer["gradients"]["layers"][0]["b"][1] += 0.01
    out = _post(client, {"problem": PROBLEM, "answer": answer})
    checks = _checks(out)
    assert checks["gradients.layers.0.b"]["correct"] is False
    assert "1 of 3 components differ" in checks["gradients.layers.0.b"]["message"]
    assert out["score"] == pytest.approx(4 / 5) and out["correct"] is False
    assert "gradients.layers.0.b" in out["feedback"]


@pytest.mark.parametrize("skip", [(0,), (1,)])
def test_a_null_layer_is_not_graded_the_rest_is(client: TestClient, skip: tuple[int, ...]) -> None:
    answer = _answer(SOL.parts(), NET.depth, skip)
    assert answer["gradients"]["layers"][skip[0]] is None
    out = _post(client, {"problem": PROBLEM, "answer": answer})
    graded = [p for p in PARTS if not any(p.startswith(f"gradients.layers.{i}.") for i in skip)]
    assert [c["name"] for c in out["checks"]] == graded
    assert out["score"] == 1.0 and out["points"] == out["max_points"] == 3.0


def test_a_layer_with_only_b_grades_only_b(client: TestClient) -> None:
    answer = {"gradients": {"layers": [{"b": jsonable(SOL.gbs[0])}]}}
    out = _post(client, {"problem": PROBLEM, "answer": answer})
    assert [c["name"] for c in out["checks"]] == ["gradients.layers.0.b"] and out["score"] == 1.0


def test_single_layer_parts_for_a_network_are_a_422(client: TestClient) -> None:
    answer = {"loss": RIGHT["loss"], "gradients": {"w": [0.1, 0.2]}}
    body = assert_problem(client.post("/grade", json={"problem": PROBLEM, "answer": answer}), 422, "validation-error")
    assert [e["loc"] for e in body["errors"]] == [["answer", "gradients", "w"]]
    answer = {"gradients": {"layers": RIGHT["gradients"]["layers"], "b": 0.5}}
    body = assert_problem(client.post("/grade", json={"problem": PROBLEM, "answer": answer}), 422, "validation-error")
    assert [e["loc"] for e in body["errors"]] == [["answer", "gradients", "b"]]


@pytest.mark.parametrize("name", ["z", "f", "dL_df", "df_dz", "dL_dz"])
def test_per_sample_parts_for_a_network_are_a_422(client: TestClient, name: str) -> None:
    answer = {**RIGHT, "per_sample": {name: [0.0] * NET.m}}
    body = assert_problem(client.post("/grade", json={"problem": PROBLEM, "answer": answer}), 422, "validation-error")
    assert [e["loc"] for e in body["errors"]] == [["answer", "per_sample", name]]


def test_a_layer_beyond_the_network_is_a_422(client: TestClient) -> None:
    answer = {"gradients": {"layers": [None, None, {"W": [[0.0]]}]}}
    body = assert_problem(client.post("/grade", json={"problem": PROBLEM, "answer": answer}), 422, "validation-error")
    assert [e["loc"] for e in body["errors"]] == [["answer", "gradients", "layers", 2, "W"]]


def test_only_null_layers_is_a_422(client: TestClient) -> None:
    answer = {"gradients": {"layers": [None, None]}}
    body = assert_problem(client.post("/grade", json={"problem": PROBLEM, "answer": answer}), 422, "validation-error")
    assert body["errors"][0]["loc"] == ["answer"]


def _summed_layer(layer: int) -> dict[str, Any]:
    """Layer `layer` (1-based) summed over the examples, the other parts right."""
    parts = {**SOL.parts(), **grad_parts(*backprop(NET, SOL, SOL.delta, scale={layer: 1.0}))}
    return _answer(parts, NET.depth)


@pytest.mark.parametrize("layer", [1, 2])
def test_layer_missing_mean_is_diagnosed(client: TestClient, layer: int) -> None:
    out = _post(client, {"problem": PROBLEM, "answer": _summed_layer(layer)})
    checks = _checks(out)
    for name in PARTS:
        c = checks[name]
        if name.startswith(f"gradients.layers.{layer - 1}."):
            assert c["correct"] is False and c["points"] == 0.0
            # the same value is what summing every layer gives: a real ambiguity
            assert set(_named(c)) == {"layer_missing_mean", "missing_mean"}, c
            assert c["mistake"]["message"] in c["message"]
        else:
            assert c["correct"] is True and c["mistake"] is None
    assert out["score"] == pytest.approx(3 / 5)


def test_network_mistakes_over_http(client: TestClient) -> None:
    """Dropping relu′ in δ[1], the sign flip, and the cost summed: named over HTTP too."""
    dropped = {**SOL.parts(), **grad_parts(*backprop(NET, SOL, SOL.delta, drop_gprime=1))}
    flipped = {**SOL.parts(), **grad_parts(*backprop(NET, SOL, SOL.delta, sign=-1.0))}
    summed_cost = {**SOL.parts(), "loss": np.asarray(float(np.sum(SOL.L)))}
    for parts, code, wrong in [
        (dropped, "missing_hidden_derivative", ["gradients.layers.0.W", "gradients.layers.0.b"]),
        (flipped, "sign_flipped", PARTS[1:]),
        (summed_cost, "loss_missing_mean", ["loss"]),
    ]:
        out = _post(client, {"problem": PROBLEM, "answer": _answer(parts, NET.depth)})
        for c in out["checks"]:
            if c["name"] in wrong:
                assert c["correct"] is False and c["mistake"]["code"] == code, (code, c)
            else:
                assert c["correct"] is True, (code, c)


def test_gradescope_format(client: TestClient) -> None:
    out = _post(client, {"problem": PROBLEM, "answer": RIGHT, "format": "gradescope"})
    assert out["score"] == 5.0 and out["visibility"] == "visible"
    assert [t["name"] for t in out["tests"]] == PARTS
    assert all(t["score"] == t["max_score"] == 1.0 and "tags" not in t for t in out["tests"])
    assert out["extra_data"]["correct"] is True
    wrong = _post(client, {"problem": PROBLEM, "answer": _summed_layer(1), "format": "gradescope"})
    tests = {t["name"]: t for t in wrong["tests"]}
    assert wrong["score"] == 3.0
    assert tests["gradients.layers.0.W"]["score"] == 0.0
    assert tests["gradients.layers.0.W"]["tags"][0] in {"layer_missing_mean", "missing_mean"}
    assert "gradients.layers.0.W" in wrong["output"]


def test_prairielearn_format(client: TestClient) -> None:
    out = _post(client, {"problem": PROBLEM, "answer": RIGHT, "format": "prairielearn"})
    assert out["gradable"] is True and out["score"] == 1.0
    assert [t["name"] for t in out["tests"]] == PARTS
    assert all(t["points"] == t["max_points"] == 1.0 for t in out["tests"])
    wrong = _post(client, {"problem": PROBLEM, "answer": _summed_layer(2), "format": "prairielearn"})
    assert wrong["score"] == pytest.approx(3 / 5)
    tests = {t["name"]: t for t in wrong["tests"]}
    assert (
        tests["gradients.layers.1.b"]["points"] == 0.0
        and "Not within tolerance" in tests["gradients.layers.1.b"]["message"]
    )


def test_batch_answers(client: TestClient) -> None:
    answers = [RIGHT, _summed_layer(1), {"gradients": {"w": [0.0, 0.0]}}, {"per_sample": {"f": [0.5] * 6}}]
    out = _post(client, {"problem": PROBLEM, "answers": answers}, "/grade/batch")
    res = out["results"]
    assert len(res) == 4
    assert res[0]["score"] == 1.0 and res[0]["correct"] is True
    assert res[1]["score"] == pytest.approx(3 / 5)
    assert "layer_missing_mean" in _named(_checks(res[1])["gradients.layers.0.W"])
    assert res[2]["status"] == 422 and [e["loc"] for e in res[2]["errors"]] == [["answers", 2, "gradients", "w"]]
    assert res[3]["status"] == 422 and [e["loc"] for e in res[3]["errors"]] == [["answers", 3, "per_sample", "f"]]


def test_batch_items(client: TestClient) -> None:
    reg = {**copy.deepcopy(PROBLEM), "regularization": L2}
    net = _net(reg)
    items = [
        {"problem": PROBLEM, "answer": RIGHT},
        {"problem": reg, "answer": _answer(solve(net).parts(), net.depth)},
        {"problem": PROBLEM, "answer": _answer(SOL.parts(), NET.depth, (1,))},
        {"problem": PROBLEM, "answer": {"gradients": {"w": [0.0, 0.0]}}},
    ]
    res = _post(client, {"items": items, "format": "prairielearn"}, "/grade/batch")["results"]
    assert [r.get("score") for r in res[:3]] == [1.0, 1.0, 1.0]
    assert [t["name"] for t in res[2]["tests"]] == PARTS[:3]
    assert res[3]["status"] == 422 and [e["loc"] for e in res[3]["errors"]] == [
        ["items", 3, "answer", "gradients", "w"]
    ]
    # the l2 problem graded against its own reference: the unregularized answer is wrong there
    wrong = _post(client, {"items": [{"problem": reg, "answer": RIGHT}]}, "/grade/batch")["results"][0]
    checks = _checks(wrong)
    assert checks["loss"]["mistake"]["code"] == "loss_missing_regularization"
    assert checks["gradients.layers.0.W"]["mistake"]["code"] == "missing_regularization"
    assert checks["gradients.layers.0.b"]["correct"] is True


# --- bugs: the documented response schemas and options do not cover a network's parts ------------


def test_native_network_result_matches_the_documented_schema(client: TestClient) -> None:
    GradeResult.model_validate(_post(client, {"problem": PROBLEM, "answer": RIGHT}))


def test_gradescope_network_result_matches_the_documented_schema(client: TestClient) -> None:
    GradescopeResult.model_validate(_post(client, {"problem": PROBLEM, "answer": RIGHT, "format": "gradescope"}))


def test_prairielearn_network_result_matches_the_documented_schema(client: TestClient) -> None:
    PrairieLearnResult.model_validate(_post(client, {"problem": PROBLEM, "answer": RIGHT, "format": "prairielearn"}))


def test_points_for_a_network_layer(client: TestClient) -> None:
    out = _post(client, {"problem": PROBLEM, "answer": RIGHT, "points": {"gradients.layers.0.W": 2}})
    assert out["max_points"] == 6.0 and _checks(out)["gradients.layers.0.W"]["max_points"] == 2.0


def test_empty_network_answer_names_the_network_parts(client: TestClient) -> None:
    answer = {"gradients": {"layers": [None, None]}}
    body = assert_problem(client.post("/grade", json={"problem": PROBLEM, "answer": answer}), 422, "validation-error")
    msg = body["errors"][0]["msg"]
    assert "gradients.layers" in msg and "gradients.w" not in msg and "per_sample" not in msg

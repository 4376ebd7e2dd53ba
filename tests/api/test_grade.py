"""POST /grade, POST /grade/batch and GET /mistakes end to end (docs/design/http.md), through FastAPI's TestClient."""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.grading.oracle import MATH_MD_CODES, MATH_MD_NETWORK_CODES

URN = "urn:gradient-service:problem:"
WORKED: dict[str, Any] = {
    "model": "logistic_regression",
    "parameters": {"w": [1, 1], "b": -3},
    "data": {"X": [[0.5, 1.5], [1, 1], [1.5, 0.5], [3, 0.5], [2, 2], [1, 2.5]], "y": [0, 0, 0, 1, 1, 1]},
}
# docs/grading.md's example answer: J and ∂J/∂w right, ∂J/∂b summed instead of averaged
EXAMPLE_ANSWER: dict[str, Any] = {
    "loss": 0.36686678640551745,
    "gradients": {"w": [-0.20687020897043107, -0.14394676417074018], "b": -0.2171984948563006},
}


def _oracle(problem: dict[str, Any]) -> dict[str, Any]:
    """Plain-numpy logistic regression (docs/design/math.md): J, ∂J/∂w, ∂J/∂b and the per-example z, f."""
    X = np.array(problem["data"]["X"], dtype=float)
    y = np.array(problem["data"]["y"], dtype=float)
    w = np.array(problem["parameters"]["w"], dtype=float)
    z = X @ w + problem["parameters"]["b"]
    f = 1 / (1 + np.exp(-z))
    J = float(np.mean(-y * np.log(f) - (1 - y) * np.log(1 - f)))
    r = f - y
    return {"loss": J, "w": (X.T @ r / len(y)).tolist(), "b": float(np.mean(r)), "z": z.tolist(), "f": f.tolist()}


RIGHT = _oracle(WORKED)
RIGHT_ANSWER = {"loss": RIGHT["loss"], "gradients": {"w": RIGHT["w"], "b": RIGHT["b"]}}


def _post(client: TestClient, body: dict[str, Any], path: str = "/grade") -> Any:
    return client.post(path, json=body)


def _checks(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in result["checks"]}


def test_oracle_matches_math_md_worked_example() -> None:
    assert RIGHT["loss"] == pytest.approx(0.3668667864055175, rel=1e-12)
    assert RIGHT["b"] * 6 == pytest.approx(EXAMPLE_ANSWER["gradients"]["b"], rel=1e-12)  # the example's b is Σr


def test_api_md_example(client: TestClient) -> None:
    r = _post(client, {"problem": WORKED, "answer": EXAMPLE_ANSWER, "tolerance": {"rtol": 1e-5, "atol": 1e-8}})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    out = r.json()
    assert out["score"] == pytest.approx(2 / 3)
    assert out["points"] == 2.0 and out["max_points"] == 3.0 and out["correct"] is False
    checks = _checks(out)
    assert set(checks) == {"loss", "gradients.w", "gradients.b"}
    assert checks["loss"]["correct"] is True and checks["gradients.w"]["correct"] is True
    b = checks["gradients.b"]
    assert b["correct"] is False and b["points"] == 0.0 and b["max_points"] == 1.0
    assert b["mistake"]["code"] == "missing_mean" and b["mistake"]["message"]
    assert "gradients.b" in out["feedback"]
    assert "expected" not in b


def test_right_answer_scores_full(client: TestClient) -> None:
    out = _post(client, {"problem": WORKED, "answer": RIGHT_ANSWER}).json()
    assert out["score"] == 1.0 and out["correct"] is True and out["points"] == out["max_points"] == 3.0


def test_version_matches_get_version(client: TestClient) -> None:
    version = client.get("/version").json()
    for fmt in ("native", "gradescope", "prairielearn"):
        out = _post(client, {"problem": WORKED, "answer": EXAMPLE_ANSWER, "format": fmt}).json()
        if fmt == "prairielearn":  # PrairieLearn's result has no field for it: the versions are in output
            assert out["output"] == f"gradient-service {version['service']}, grading rules {version['grading_rules']}"
            continue
        v = out["extra_data"]["version"] if fmt == "gradescope" else out["version"]
        assert v["service"] == version["service"] and v["grading_rules"] == version["grading_rules"]
    batch = _post(client, {"problem": WORKED, "answers": [EXAMPLE_ANSWER]}, "/grade/batch").json()
    assert batch["results"][0]["version"]["grading_rules"] == version["grading_rules"]


def _secret_strings(values: list[float]) -> list[str]:
    """The numbers as a JSON encoder writes them, and their first 6 significant digits."""
    out = []
    for v in values:
        out.append(repr(float(v)))
        out.append(f"{abs(v):.6g}"[:8].rstrip("0"))
    return [s for s in out if len(s.replace("-", "").replace(".", "").lstrip("0")) >= 5]


@pytest.mark.parametrize("fmt", ["native", "gradescope", "prairielearn"])
def test_reveal_false_never_shows_the_expected_numbers(client: TestClient, fmt: str) -> None:
    service_values = client.post("/gradient", json={**WORKED, "explain": True}).json()
    secrets = [
        RIGHT["loss"],
        *RIGHT["w"],
        RIGHT["b"],
        *RIGHT["f"],
        service_values["loss"],
        *service_values["gradients"]["w"],
        service_values["gradients"]["b"],
        *service_values["breakdown"]["per_sample"]["f"],
        *service_values["breakdown"]["per_sample"]["dL_dz"],
    ]
    wrong = {
        "loss": 1.0,
        "gradients": {"w": [0.5, -0.5], "b": 3.0},
        "per_sample": {"f": [0.1] * 6, "dL_dz": [0.2] * 6, "z": [1, 2, 3, 4, 5, 6]},
    }
    for answer in (wrong, EXAMPLE_ANSWER):
        text = _post(client, {"problem": WORKED, "answer": answer, "format": fmt, "reveal": False}).text
        for s in _secret_strings(secrets):
            if s not in json.dumps(answer):
                assert s not in text, (s, text)
        assert '"expected"' not in text
    # the search is able to find them: with reveal they are there
    text = _post(client, {"problem": WORKED, "answer": wrong, "format": "native", "reveal": True}).text
    assert any(s in text for s in _secret_strings([RIGHT["loss"], RIGHT["b"]]))


def test_reveal_true_includes_expected(client: TestClient) -> None:
    answer = {"loss": 1.0, "gradients": {"w": [0.5, -0.5], "b": 3.0}, "per_sample": {"f": [0.1] * 6}}
    out = _post(client, {"problem": WORKED, "answer": answer, "reveal": True}).json()
    checks = _checks(out)
    assert checks["loss"]["expected"] == pytest.approx(RIGHT["loss"], rel=1e-12)
    assert checks["gradients.w"]["expected"] == pytest.approx(RIGHT["w"], rel=1e-12)
    assert checks["gradients.b"]["expected"] == pytest.approx(RIGHT["b"], rel=1e-12)
    assert checks["per_sample.f"]["expected"] == pytest.approx(RIGHT["f"], rel=1e-12)


# --- a bad problem is a 422 like /gradient's ------------------------------------------------------


def _bad_problems() -> dict[str, dict[str, Any]]:
    shape_w = copy.deepcopy(WORKED)
    shape_w["parameters"]["w"] = [1, 1, 1]
    shape_y = copy.deepcopy(WORKED)
    shape_y["data"]["y"] = [0, 1]
    ragged = copy.deepcopy(WORKED)
    ragged["data"]["X"][2] = [1.0]
    incompatible = {
        "model": "single_layer",
        "activation": "identity",
        "loss": "binary_cross_entropy",
        "parameters": WORKED["parameters"],
        "data": WORKED["data"],
    }
    label = copy.deepcopy(WORKED)
    label["data"]["y"][5] = 2
    unknown = {**copy.deepcopy(WORKED), "activation": "tanh"}
    return {
        "w too long": shape_w,
        "y too short": shape_y,
        "ragged X": ragged,
        "incompatible pairing": incompatible,
        "label out of domain": label,
        "preset given an activation": unknown,
    }


BAD = _bad_problems()


@pytest.mark.parametrize("what", list(BAD))
def test_bad_problem_is_a_422_like_gradient(client: TestClient, what: str) -> None:
    problem = BAD[what]
    g = client.post("/gradient", json=problem)
    r = _post(client, {"problem": problem, "answer": RIGHT_ANSWER})
    assert g.status_code == 422 and r.status_code == 422, (g.text, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")
    gp, rp = g.json(), r.json()
    assert rp["type"] == gp["type"] and rp["type"].startswith(URN)
    assert rp["title"] == gp["title"]
    if "errors" in gp:
        assert [e["msg"] for e in rp["errors"]] == [e["msg"] for e in gp["errors"]]
        for ge, re_ in zip(gp["errors"], rp["errors"], strict=True):
            assert re_["loc"][-len(ge["loc"]) :] == ge["loc"] if ge["loc"] else True
    if what == "incompatible pairing":
        assert rp["type"] == URN + "incompatible-pairing"
        assert "log" in rp["detail"]


def test_schema_problem_error_located_in_the_grade_body(client: TestClient) -> None:
    """Schema errors in /grade's problem are located from the body's root (["problem", ...])."""
    r = _post(client, {"problem": BAD["label out of domain"], "answer": RIGHT_ANSWER}).json()
    assert r["errors"][0]["loc"] == ["problem", "data", "y", 5]


@pytest.mark.parametrize("path", ["/grade", "/grade/batch"])
def test_cross_field_problem_errors_are_located_under_problem(client: TestClient, path: str) -> None:
    if path == "/grade":
        r = _post(client, {"problem": BAD["w too long"], "answer": RIGHT_ANSWER}).json()
        assert r["errors"][0]["loc"] == ["problem", "parameters", "w"]
    else:
        items = [{"problem": WORKED, "answer": RIGHT_ANSWER}, {"problem": BAD["w too long"], "answer": RIGHT_ANSWER}]
        r = _post(client, {"items": items}, "/grade/batch").json()["results"][1]
        assert r["errors"][0]["loc"] == ["items", 1, "problem", "parameters", "w"]


# --- the answer's keys are strict, its values lenient ---------------------------------------------


@pytest.mark.parametrize(
    "answer,loc",
    [
        ({"gradient": {"w": [0, 0]}}, ["answer", "gradient"]),
        ({"loss": 0.3, "gradients": {"dw": [0, 0]}}, ["answer", "gradients", "dw"]),
        ({"per_sample": {"dL_dw": [0] * 6}}, ["answer", "per_sample", "dL_dw"]),
        ({"Loss": 0.3}, ["answer", "Loss"]),
    ],
)
def test_misspelt_part_is_a_422_with_loc(client: TestClient, answer: dict[str, Any], loc: list[Any]) -> None:
    r = _post(client, {"problem": WORKED, "answer": answer})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["type"] == URN + "validation-error"
    assert loc in [e["loc"] for e in body["errors"]], body


@pytest.mark.parametrize("answer", [{}, {"gradients": {}}, {"per_sample": {}}, {"gradients": None}])
def test_empty_answer_is_a_422(client: TestClient, answer: dict[str, Any]) -> None:
    r = _post(client, {"problem": WORKED, "answer": answer})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["type"] == URN + "validation-error" and body["errors"][0]["loc"][0] == "answer"


def test_missing_answer_is_a_422(client: TestClient) -> None:
    r = _post(client, {"problem": WORKED})
    assert r.status_code == 422
    assert ["answer"] in [e["loc"] for e in r.json()["errors"]]


def test_nan_and_infinity_are_graded_wrong(client: TestClient) -> None:
    problem = json.dumps(WORKED)
    answer = (
        '{"loss": NaN, "gradients": {"w": [Infinity, -Infinity], "b": "NaN"},'
        ' "per_sample": {"f": [0.1, 0.1, "Infinity", 0.1, 0.1, null]}}'
    )
    literal = '{"problem": ' + problem + ', "answer": ' + answer + "}"
    r = client.post("/grade", content=literal.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["score"] == 0.0 and out["points"] == 0.0 and out["max_points"] == 4.0
    checks = _checks(out)
    for name in ("loss", "gradients.w", "gradients.b", "per_sample.f"):
        assert checks[name]["correct"] is False and checks[name]["mistake"] is None
    assert "NaN" in checks["loss"]["message"]
    assert "infinite" in checks["gradients.w"]["message"]
    assert "NaN" in checks["gradients.b"]["message"]
    assert "per_sample.f" in out["feedback"]
    assert "NaN" not in r.text.replace('"NaN"', "").replace("(NaN", "")  # the body stays valid JSON


def test_1e999_is_graded_wrong(client: TestClient) -> None:
    body = '{"problem": ' + json.dumps(WORKED) + ', "answer": {"loss": 1e999}}'
    r = client.post("/grade", content=body.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["checks"][0]["correct"] is False and "infinite" in r.json()["checks"][0]["message"]


def test_huge_integer_literal_is_graded_wrong(lenient_client: TestClient) -> None:
    """An integer literal beyond float64 (1 and 400 zeros) is a learner's value: graded wrong, not a 500."""
    body = '{"problem": ' + json.dumps(WORKED) + ', "answer": {"loss": 1' + "0" * 400 + "}}"
    r = lenient_client.post("/grade", content=body.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    check = r.json()["checks"][0]
    assert check["correct"] is False and "finite" in check["message"]


def test_wrong_shape_and_strings_are_graded_wrong(client: TestClient) -> None:
    answer = {"loss": "0.3668", "gradients": {"w": [0.1, 0.2, 0.3], "b": [RIGHT["b"], 0.0]}}
    out = _post(client, {"problem": WORKED, "answer": answer}).json()
    checks = _checks(out)
    assert all(c["correct"] is False for c in checks.values())
    assert "not a number" in checks["loss"]["message"]
    assert "expected a list of 2 numbers" in checks["gradients.w"]["message"]
    assert "expected a number" in checks["gradients.b"]["message"]


def test_unambiguous_numpy_shapes_are_read(client: TestClient) -> None:
    """[x] for a number and a column for a list (numpy's (1,) and (n, 1)) are read as meant."""
    answer = {"loss": [RIGHT["loss"]], "gradients": {"w": [[v] for v in RIGHT["w"]], "b": [RIGHT["b"]]}}
    checks = _checks(_post(client, {"problem": WORKED, "answer": answer}).json())
    assert checks["loss"]["correct"] and checks["gradients.w"]["correct"]


def test_points_and_sig_figs_over_http(client: TestClient) -> None:
    answer = {"loss": round(RIGHT["loss"], 4), "gradients": {"w": [float(f"{v:.4g}") for v in RIGHT["w"]], "b": 0.0}}
    body = {"problem": WORKED, "answer": answer, "tolerance": {"sig_figs": 4}, "points": {"gradients.w": 2}}
    out = _post(client, body).json()
    assert out["points"] == 3.0 and out["max_points"] == 4.0 and out["score"] == 0.75
    bad = _post(client, {**body, "tolerance": {"sig_figs": 0}})
    assert bad.status_code == 422
    bad = _post(client, {**body, "points": {"gradient.w": 2}})
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"][0] == "points"


# --- batches --------------------------------------------------------------------------------------


def test_batch_of_a_thousand_answers_in_order(client: TestClient) -> None:
    answers: list[dict[str, Any]] = []
    for i in range(1000):
        if i % 3 == 0:
            answers.append(RIGHT_ANSWER)
        elif i % 3 == 1:
            answers.append({"loss": RIGHT["loss"] + i * 1e-3})  # wrong by an amount that encodes i
        else:
            answers.append({"gradients": {"b": RIGHT["b"] * 6}})  # missing_mean
    r = _post(client, {"problem": WORKED, "answers": answers}, "/grade/batch")
    assert r.status_code == 200, r.text[:500]
    results = r.json()["results"]
    assert len(results) == 1000
    for i, res in enumerate(results):
        if i % 3 == 0:
            assert res["score"] == 1.0 and res["max_points"] == 3.0, i
        elif i % 3 == 1:
            assert res["score"] == 0.0 and [c["name"] for c in res["checks"]] == ["loss"], i
        else:
            assert res["checks"][0]["mistake"]["code"] == "missing_mean", i


def test_batch_items_with_a_bad_item_in_the_middle(client: TestClient) -> None:
    linear = {
        "model": "linear_regression",
        "parameters": {"w": [1.0], "b": 0.0},
        "data": {"X": [[1.0], [2.0]], "y": [1.0, 3.0]},
    }
    # J = ((0)^2 + (−1)^2)/(2·2) = 0.25; ∂J/∂w = (0·1 + (−1)·2)/2 = −1; ∂J/∂b = −0.5
    items = [
        {"problem": WORKED, "answer": RIGHT_ANSWER},
        {"problem": linear, "answer": {"loss": 0.25, "gradients": {"w": [-1.0], "b": -0.5}}},
        {"problem": BAD["w too long"], "answer": RIGHT_ANSWER},
        {"problem": WORKED, "answer": {"gradient": 1}},
        {"problem": WORKED},
        {"problem": linear, "answer": {"loss": 0.5}},
        {"problem": WORKED, "answer": EXAMPLE_ANSWER},
    ]
    r = _post(client, {"items": items}, "/grade/batch")
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert len(res) == len(items)
    assert res[0]["score"] == 1.0
    assert res[1]["score"] == 1.0 and res[1]["correct"] is True
    assert res[2]["type"] == URN + "validation-error" and res[2]["status"] == 422
    assert res[2]["errors"][0]["loc"][:2] == ["items", 2] and res[2]["errors"][0]["loc"][-2:] == ["parameters", "w"]
    assert res[3]["type"] == URN + "validation-error" and res[3]["errors"][0]["loc"] == [
        "items",
        3,
        "answer",
        "gradient",
    ]
    assert res[4]["type"] == URN + "validation-error" and res[4]["errors"][0]["loc"] == ["items", 4, "answer"]
    assert res[5]["score"] == 0.0
    assert _checks(res[5])["loss"]["mistake"] is not None  # Σ L = 0.5: loss_missing_mean (or the ½)
    assert res[6]["score"] == pytest.approx(2 / 3)
    for bad in res[2:5]:
        assert "score" not in bad and "checks" not in bad


SIGMOID_SE: dict[str, Any] = {
    "model": "single_layer",
    "activation": "sigmoid",
    "loss": "squared_error",
    "parameters": {"w": [0.0], "b": 0.0},
    "data": {"X": [[1.0], [2.0]], "y": [1.0, 0.0]},
}
# f = ½ for both; J = (¼ + ¼)/(2·2) = 0.125; ∂L/∂z = (f − y)·f(1 − f) = (∓½)·¼ = [−⅛, ⅛]
SIGMOID_SE_ANSWER = {"loss": 0.125, "gradients": {"w": [(-0.125 * 1 + 0.125 * 2) / 2], "b": 0.0}}


def test_single_layer_problem_graded_by_grade_and_batch_answers(client: TestClient) -> None:
    out = _post(client, {"problem": SIGMOID_SE, "answer": SIGMOID_SE_ANSWER}).json()
    assert out["score"] == 1.0, out
    res = _post(client, {"problem": SIGMOID_SE, "answers": [SIGMOID_SE_ANSWER]}, "/grade/batch").json()
    assert res["results"][0]["score"] == 1.0


def test_batch_items_grade_single_layer_problems(client: TestClient) -> None:
    items = [
        {"problem": SIGMOID_SE, "answer": SIGMOID_SE_ANSWER},
        {"problem": BAD["incompatible pairing"], "answer": RIGHT_ANSWER},
    ]
    res = _post(client, {"items": items}, "/grade/batch").json()["results"]
    assert res[0].get("score") == 1.0, res[0]
    assert res[1]["type"] == URN + "incompatible-pairing", res[1]


def test_batch_bad_answer_in_the_middle(client: TestClient) -> None:
    answers = [RIGHT_ANSWER, {"gradient": 1}, 7, {}, EXAMPLE_ANSWER]
    res = _post(client, {"problem": WORKED, "answers": answers}, "/grade/batch").json()["results"]
    assert len(res) == 5
    assert res[0]["score"] == 1.0 and res[4]["score"] == pytest.approx(2 / 3)
    assert res[1]["errors"][0]["loc"] == ["answers", 1, "gradient"]
    assert res[2]["errors"][0]["loc"] == ["answers", 2]
    assert res[3]["errors"][0]["loc"] == ["answers", 3]
    for bad in res[1:4]:
        assert bad["status"] == 422 and bad["type"] == URN + "validation-error"


def test_batch_with_a_bad_shared_problem_is_a_422(client: TestClient) -> None:
    r = _post(client, {"problem": BAD["incompatible pairing"], "answers": [RIGHT_ANSWER]}, "/grade/batch")
    assert r.status_code == 422 and r.json()["type"] == URN + "incompatible-pairing"


def test_empty_batch_is_a_422(client: TestClient) -> None:
    assert _post(client, {"problem": WORKED, "answers": []}, "/grade/batch").status_code == 422
    assert _post(client, {"items": []}, "/grade/batch").status_code == 422


# --- the catalogue ----------------------------------------------------------------------------------


def test_get_mistakes_lists_math_md_s_table(client: TestClient) -> None:
    r = client.get("/mistakes")
    assert r.status_code == 200
    everything = r.json()
    formula_codes = ["missing_inner_derivative", "product_rule_error", "quotient_rule_error", "power_rule_error"]
    assert [m["code"] for m in everything] == [*MATH_MD_CODES, *MATH_MD_NETWORK_CODES, *formula_codes]
    assert [m["models"] for m in everything] == ["all"] * len(MATH_MD_CODES) + ["neural_network"] * len(
        MATH_MD_NETWORK_CODES
    ) + ["formulas"] * len(formula_codes)
    assert all(m.get("formula_example") for m in everything[-len(formula_codes) :])
    mistakes = everything[: len(MATH_MD_CODES)]
    parts = {"loss", "gradients.w", "gradients.b", "per_sample.dL_dz"}
    for m in mistakes:
        assert isinstance(m["explanation"], str) and len(m["explanation"]) > 20, m
        assert m["title"] and m["applies_when"]
        assert set(m["parts"]) <= parts and m["parts"]
        assert (m["code"].startswith("loss_")) == (m["parts"] == ["loss"]), m


def test_mistake_codes_named_by_grade_are_listed(client: TestClient) -> None:
    codes = {m["code"] for m in client.get("/mistakes").json()}
    out = _post(client, {"problem": WORKED, "answer": EXAMPLE_ANSWER}).json()
    for c in out["checks"]:
        if c["mistake"]:
            assert c["mistake"]["code"] in codes
            assert set(c["mistake"].get("also_matches") or []) <= codes

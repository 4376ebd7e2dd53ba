"""POST /gradient: the response's structure (docs/design/http.md) and its numbers against an independent oracle."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import (
    PRESET_PAIRINGS,
    SOFTMAX_ROWS,
    WORKED_X,
    all_finite,
    assert_problem,
    oracle,
    preset,
    single_layer,
    strict_loads,
)

API_EXAMPLE = {
    "model": "logistic_regression",
    "parameters": {"w": [2.0, 3.0], "b": 1.0},
    "data": {"X": WORKED_X, "y": [0, 0, 0, 1, 1, 1]},
    "regularization": {"kind": "l2", "lambda": 0.7},
}

REQUESTS: dict[str, dict[str, Any]] = {
    "linear_regression": preset("linear_regression"),
    "logistic_regression": preset("logistic_regression"),
    "softmax_regression_classes": preset("softmax_regression"),
    "softmax_regression_rows": preset("softmax_regression", data={"X": WORKED_X, "y": SOFTMAX_ROWS}),
    "poisson_regression": preset("poisson_regression"),
    "single_layer_sigmoid_squared_error": single_layer("sigmoid", "squared_error"),
    "single_layer_sigmoid_huber": single_layer("sigmoid", "huber", loss_params={"delta": 0.5}),
    "single_layer_identity_huber": single_layer("identity", "huber", loss_params={"delta": 0.5}),
    "single_layer_tanh_absolute_error": single_layer("tanh", "absolute_error"),
    "single_layer_softplus_poisson": single_layer("softplus", "poisson"),
    "single_layer_sigmoid_poisson": single_layer("sigmoid", "poisson"),
    "single_layer_exp_squared_error": single_layer("exp", "squared_error"),
    "single_layer_relu_squared_error": single_layer("relu", "squared_error"),
    "single_layer_softmax_squared_error": single_layer("softmax", "squared_error"),
    "single_layer_softmax_squared_error_rows": single_layer(
        "softmax", "squared_error", data={"X": WORKED_X, "y": SOFTMAX_ROWS}
    ),
}


def post(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    resp = client.post("/gradient", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].split(";")[0] == "application/json"
    return strict_loads(resp.text)


def test_api_md_example(client: TestClient) -> None:
    out = post(client, API_EXAMPLE)
    assert out["model"] == "logistic_regression"
    assert out["pairing"] == {"activation": "sigmoid", "loss": "binary_cross_entropy", "canonical": True}
    np.testing.assert_allclose(out["loss"], 3.7597173539786217, rtol=1e-14, atol=0)
    np.testing.assert_allclose(out["gradients"]["w"], [0.7316667266120294, 0.8488394298399669], rtol=1e-14, atol=0)
    np.testing.assert_allclose(out["gradients"]["b"], 0.49861806546328574, rtol=1e-14, atol=0)


def test_math_md_worked_example_without_regularization(client: TestClient) -> None:
    out = post(client, {k: v for k, v in API_EXAMPLE.items() if k != "regularization"})
    np.testing.assert_allclose(out["gradients"]["w"], [0.498333393278696, 0.49883942983996693], rtol=1e-14)
    np.testing.assert_allclose(out["gradients"]["b"], 0.49861806546328574, rtol=1e-14)
    second = dict(API_EXAMPLE, parameters={"w": [1, 1], "b": -3})
    del second["regularization"]
    np.testing.assert_allclose(post(client, second)["loss"], 0.3668667864055175, rtol=1e-14)


@pytest.mark.parametrize("name", list(REQUESTS))
def test_response_structure(client: TestClient, name: str) -> None:
    req = REQUESTS[name]
    out = post(client, req)
    assert set(out) == {"model", "pairing", "loss", "gradients"}  # no breakdown or verification unless asked
    assert out["model"] == req["model"]
    act, loss = (req["activation"], req["loss"]) if req["model"] == "single_layer" else PRESET_PAIRINGS[req["model"]]
    expected_pairing: dict[str, Any] = {
        "activation": act,
        "loss": loss,
        "canonical": (act, loss) in PRESET_PAIRINGS.values(),
    }
    if loss == "huber":
        expected_pairing["loss_params"] = req["loss_params"]
    assert out["pairing"] == expected_pairing
    assert isinstance(out["loss"], float)
    grads = out["gradients"]
    assert set(grads) == {"w", "b"}
    w, b = req["parameters"]["w"], req["parameters"]["b"]
    if isinstance(b, list):  # k outputs: w is n×k and b has k entries, exactly as given
        assert isinstance(grads["b"], list) and len(grads["b"]) == len(b)
        assert isinstance(grads["w"], list) and len(grads["w"]) == len(w)
        for row, given in zip(grads["w"], w, strict=True):
            assert isinstance(row, list) and len(row) == len(given)
            assert all(isinstance(v, float) for v in row)
    else:
        assert isinstance(grads["b"], float)
        assert isinstance(grads["w"], list) and len(grads["w"]) == len(w)
        assert all(isinstance(v, float) for v in grads["w"])
    assert all_finite(out)


@pytest.mark.parametrize("name", list(REQUESTS))
@pytest.mark.parametrize("reg", [None, {"kind": "l2", "lambda": 0.7}, {"kind": "l1", "lambda": 0.3}])
def test_numbers_match_plain_numpy(client: TestClient, name: str, reg: dict[str, Any] | None) -> None:
    req = dict(REQUESTS[name])
    if reg is not None:
        req["regularization"] = reg
    out = post(client, req)
    ref = oracle(req)
    np.testing.assert_allclose(out["loss"], ref["loss"], rtol=1e-12, atol=0)
    np.testing.assert_allclose(out["gradients"]["w"], ref["w"], rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(out["gradients"]["b"], ref["b"], rtol=1e-11, atol=1e-15)


def test_linear_regression_by_hand(client: TestClient) -> None:
    """J = 1/(2m) Σ (w·x + b − y)², ∂J/∂w = (1/m) Xᵀ(f − y), written out without the oracle."""
    X = np.array([[1.0, 2.0], [3.0, -1.0], [0.0, 4.0]])
    y = np.array([1.0, -2.0, 0.5])
    w, b = np.array([0.5, -1.5]), 2.0
    out = post(
        client,
        {
            "model": "linear_regression",
            "parameters": {"w": w.tolist(), "b": b},
            "data": {"X": X.tolist(), "y": y.tolist()},
        },
    )
    r = X @ w + b - y
    assert out["loss"] == pytest.approx(np.sum(r**2) / (2 * 3), rel=1e-14)
    np.testing.assert_allclose(out["gradients"]["w"], X.T @ r / 3, rtol=1e-14)
    assert out["gradients"]["b"] == pytest.approx(np.mean(r), rel=1e-14)


def test_logistic_regression_by_hand(client: TestClient) -> None:
    X = np.array(WORKED_X)
    y = np.array([0, 0, 0, 1, 1, 1.0])
    w, b = np.array([1.0, 1.0]), -3.0
    out = post(
        client,
        {
            "model": "logistic_regression",
            "parameters": {"w": [1, 1], "b": -3},
            "data": {"X": WORKED_X, "y": [0, 0, 0, 1, 1, 1]},
        },
    )
    f = 1 / (1 + np.exp(-(X @ w + b)))
    J = np.mean(-y * np.log(f) - (1 - y) * np.log(1 - f))
    assert out["loss"] == pytest.approx(J, rel=1e-13)
    np.testing.assert_allclose(out["gradients"]["w"], X.T @ (f - y) / 6, rtol=1e-13)
    assert out["gradients"]["b"] == pytest.approx(np.mean(f - y), rel=1e-13)


def test_softmax_class_indices_equal_one_hot_rows(client: TestClient) -> None:
    """Class indices are one-hot rows: both spellings give bit-identical results."""
    classes = post(client, preset("softmax_regression"))
    one_hot = np.eye(3)[[0, 0, 1, 2, 2, 1]].tolist()
    rows = post(client, preset("softmax_regression", data={"X": WORKED_X, "y": one_hot}))
    assert classes["loss"] == rows["loss"]
    assert classes["gradients"] == rows["gradients"]


def test_single_layer_canonical_pairing_equals_its_preset(client: TestClient) -> None:
    lin = preset("linear_regression")
    out_preset = post(client, lin)
    out_single = post(client, {**lin, "model": "single_layer", "activation": "identity", "loss": "squared_error"})
    assert out_single["model"] == "single_layer"
    assert out_single["pairing"] == {"activation": "identity", "loss": "squared_error", "canonical": True}
    assert out_single["loss"] == out_preset["loss"]
    assert out_single["gradients"] == out_preset["gradients"]


def test_huber_default_delta_is_one(client: TestClient) -> None:
    default = post(client, single_layer("identity", "huber"))
    explicit = post(client, single_layer("identity", "huber", loss_params={"delta": 1.0}))
    assert default["pairing"]["loss_params"] == {"delta": 1.0}
    assert default["loss"] == explicit["loss"] and default["gradients"] == explicit["gradients"]
    half = post(client, single_layer("identity", "huber", loss_params={"delta": 0.5}))
    assert half["loss"] != default["loss"]  # delta is used, not just echoed


@pytest.mark.parametrize("name", ["linear_regression", "logistic_regression", "softmax_regression_classes"])
@pytest.mark.parametrize("kind", ["l1", "l2"])
def test_regularization_leaves_b_alone(client: TestClient, name: str, kind: str) -> None:
    req = REQUESTS[name]
    lam = 0.9
    plain = post(client, req)
    reg = post(client, {**req, "regularization": {"kind": kind, "lambda": lam}})
    m = len(req["data"]["X"])
    w = np.asarray(req["parameters"]["w"], dtype=float)
    assert reg["gradients"]["b"] == plain["gradients"]["b"]  # b is never regularized: bit for bit
    dR = lam / m * (w if kind == "l2" else np.sign(w))
    R = lam / (2 * m) * np.sum(w * w) if kind == "l2" else lam / m * np.sum(np.abs(w))
    np.testing.assert_allclose(np.subtract(reg["gradients"]["w"], plain["gradients"]["w"]), dR, rtol=1e-12, atol=1e-15)
    assert reg["loss"] - plain["loss"] == pytest.approx(R, rel=1e-12)


def test_zero_lambda_is_no_regularization(client: TestClient) -> None:
    req = preset("logistic_regression")
    plain = post(client, req)
    zero = post(client, {**req, "regularization": {"kind": "l2", "lambda": 0}})
    assert zero["loss"] == plain["loss"] and zero["gradients"] == plain["gradients"]


def test_l1_sign_of_zero_weight_is_zero(client: TestClient) -> None:
    req = preset("linear_regression", parameters={"w": [0.0, -0.5], "b": 0.25})
    plain = post(client, req)
    reg = post(client, {**req, "regularization": {"kind": "l1", "lambda": 6.0}})
    assert reg["gradients"]["w"][0] == plain["gradients"]["w"][0]
    assert reg["gradients"]["w"][1] == pytest.approx(plain["gradients"]["w"][1] - 1.0, rel=1e-14)


def test_extreme_but_representable_inputs_stay_finite(client: TestClient) -> None:
    """z = ±800 for logistic regression: the loss and gradients are representable, so they are returned."""
    out = post(
        client,
        {
            "model": "logistic_regression",
            "parameters": {"w": [400.0], "b": 0.0},
            "data": {"X": [[2], [2], [-2], [-2]], "y": [1, 0, 0, 1]},
        },
    )
    assert out["loss"] == 400.0  # (0 + 800 + 0 + 800) / 4
    assert out["gradients"] == {"w": [1.0], "b": 0.0}  # dL/dz = f − y = [0, 1, 0, −1]


@pytest.mark.parametrize(
    ("kind", "w", "X", "lam"),
    [("l2", [1e160], [[1e-160], [2e-160]], 1e-100), ("l1", [1e308, 1e308], [[1e-300, 1e-300], [2e-300, 0.0]], 1e-10)],
)
def test_regularization_term_does_not_overflow_spuriously(
    client: TestClient, kind: str, w: list[float], X: list[list[float]], lam: float
) -> None:
    req = {
        "model": "linear_regression",
        "parameters": {"w": w, "b": 0.0},
        "data": {"X": X, "y": [1, 2]},
        "regularization": {"kind": kind, "lambda": lam},
    }
    resp = client.post("/gradient", json=req)
    # true J: l2 = λ/(2m) Σ w² ≈ 2.5e219, l1 = λ/m Σ |w| = 1e298: both finite in float64
    assert resp.status_code == 200, resp.text
    out = strict_loads(resp.text)
    expected = lam / 4 * w[0] * w[0] if kind == "l2" else lam / 2 * w[0] + lam / 2 * w[1]
    assert out["loss"] == pytest.approx(expected, rel=1e-9)


def test_exp_overflow_is_a_problem_not_inf(client: TestClient) -> None:
    resp = client.post(
        "/gradient",
        json={
            "model": "poisson_regression",
            "parameters": {"w": [400.0], "b": 0.0},
            "data": {"X": [[1], [2]], "y": [1, 1]},
        },
    )
    assert_problem(resp, 422, "non-finite-result")


def test_l1_overflow_reason_names_the_l1_term(client: TestClient) -> None:
    req = preset("linear_regression", parameters={"w": [1e300, 1e300], "b": 0.0})
    req["data"] = {"X": [[1e-300, 1e-300]], "y": [1.0]}
    req["regularization"] = {"kind": "l1", "lambda": 1e300}  # (λ/m) Σ |w| = 2e600: a true overflow
    problem = assert_problem(client.post("/gradient", json=req), 422, "non-finite-result")
    assert "w²" not in problem["detail"] and "w^2" not in problem["detail"]

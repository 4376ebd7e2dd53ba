"""POST /descent: gradient descent over HTTP against independent oracles (closed forms, autograd).

Every 200 answer is parsed strictly (no NaN / Infinity) and walked: each number must be finite.
The `client` fixture raises a server error in the test, so none of these requests may be a 500.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.app import create_app
from service.compute.activations import ActivationName
from service.compute.losses import LossName
from service.settings import Settings
from tests.api.helpers import WORKED_X, all_finite, assert_problem, locs, strict_loads
from tests.compute.test_descent import (
    first_run_of_rises,
    hessian_lambda_max,
    least_squares,
    linear_data,
    logistic_data,
    own_cost,
    own_grad,
    own_net_cost,
    own_net_grad,
    ridge,
)

LOGISTIC: dict[str, Any] = {
    "model": "logistic_regression",
    "parameters": {"w": [0.0, 0.0], "b": 0.0},
    "data": {"X": WORKED_X, "y": [0, 0, 0, 1, 1, 1]},
}
LINEAR: dict[str, Any] = {
    "model": "linear_regression",
    "parameters": {"w": [0.0, 0.0], "b": 0.0},
    "data": {"X": WORKED_X, "y": [1.2, 0.8, 2.0, 3.1, 2.2, -0.9]},
}
SOFTMAX: dict[str, Any] = {
    "model": "softmax_regression",
    "parameters": {"w": [[0.5, -0.2, 0.1], [-0.3, 0.4, 0.2]], "b": [0.0, 0.1, -0.1]},
    "data": {"X": WORKED_X, "y": [0, 0, 1, 2, 2, 1]},
}
NETWORK: dict[str, Any] = {
    "model": "neural_network",
    "layers": [{"activation": "tanh"}, {"activation": "sigmoid"}],
    "loss": "binary_cross_entropy",
    "parameters": {
        "layers": [
            {"W": [[0.5, -0.4, 0.3], [0.2, 0.6, -0.5]], "b": [0.1, 0.0, -0.1]},
            {"W": [[0.7], [-0.3], [0.5]], "b": [0.05]},
        ]
    },
    "data": {"X": WORKED_X, "y": [0, 0, 0, 1, 1, 1]},
}


def body(problem: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return copy.deepcopy({"problem": problem, "learning_rate": 0.1, "steps": 10, **fields})


def ok(client: TestClient, request: dict[str, Any]) -> dict[str, Any]:
    """POST /descent, expect 200 with only finite numbers, and check each run's invariants."""
    return checked(client.post("/descent", json=request), request)


def checked(resp: Any, request: dict[str, Any]) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text[:800]
    assert resp.headers["content-type"].split(";")[0] == "application/json"
    out = strict_loads(resp.text)
    assert all_finite(out), "a non-finite number in a 200 answer"
    for run in out["runs"]:
        taken = run["steps_taken"]
        assert run["learning_rate"] == request["learning_rate"]
        assert run["steps_requested"] == request["steps"]
        assert run["status"] in ("completed", "converged", "diverged", "non-finite")
        assert len(run["history"]["loss"]) == len(run["history"]["gradient_norm"]) == taken + 1
        assert run["snapshots"][0]["step"] == 0 and run["snapshots"][-1]["step"] == taken == run["final"]["step"]
        assert run["final"]["parameters"] == run["snapshots"][-1]["parameters"]
        for s in run["snapshots"]:
            assert s["loss"] == run["history"]["loss"][s["step"]]
    return out


def wb(params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(params["w"], dtype=np.float64), np.asarray(params["b"], dtype=np.float64)


def app_client(**limits: Any) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(**limits))) as c:
        yield c


@pytest.fixture
def few_steps_client() -> Iterator[TestClient]:
    """At most 50 steps."""
    yield from app_client(max_descent_steps=50)


@pytest.fixture
def little_work_client() -> Iterator[TestClient]:
    """At most 10,332 units of work: 20 steps of LINEAR (21 evaluations of 492), or 9 steps of two runs."""
    yield from app_client(max_descent_work=10_332)


# --- 1. least squares and ridge through the API ---------------------------------------------------


def _linear_request(X: np.ndarray, y: np.ndarray, alpha: float, **extra: Any) -> dict[str, Any]:
    problem = {
        "model": "linear_regression",
        "parameters": {"w": [0.0] * X.shape[1], "b": 0.0},
        "data": {"X": X.tolist(), "y": y.tolist()},
        **extra,
    }
    return body(problem, learning_rate=alpha, steps=5000, record_every=1000, gradient_tolerance=1e-12)


def test_linear_regression_converges_to_least_squares(client: TestClient) -> None:
    X, y = linear_data(seed=11)
    alpha = 1.0 / hessian_lambda_max(X)
    (run,) = ok(client, _linear_request(X, y, alpha))["runs"]
    assert run["status"] == "converged", run["explanation"]
    w, b = wb(run["final"]["parameters"])
    w_ls, b_ls = least_squares(X, y)
    np.testing.assert_allclose(w, w_ls, rtol=0, atol=1e-8)
    assert abs(float(b) - b_ls) <= 1e-8


def test_l2_regularized_linear_regression_converges_to_ridge(client: TestClient) -> None:
    X, y = linear_data(seed=12, m=25, n=3)
    lam = 8.0
    alpha = 1.0 / hessian_lambda_max(X, lam)
    request = _linear_request(X, y, alpha, regularization={"kind": "l2", "lambda": lam})
    (run,) = ok(client, request)["runs"]
    assert run["status"] == "converged", run["explanation"]
    w, b = wb(run["final"]["parameters"])
    w_r, b_r = ridge(X, y, lam)
    np.testing.assert_allclose(w, w_r, rtol=0, atol=1e-8)
    assert abs(float(b) - b_r) <= 1e-8
    assert np.max(np.abs(w_r - least_squares(X, y)[0])) > 1e-3


# --- 2. logistic regression: monotone cost, gradient norms ----------------------------------------


def test_logistic_cost_decreases_monotonically(client: TestClient) -> None:
    X, y = logistic_data(seed=13, m=50)
    m = X.shape[0]
    A = np.hstack([X, np.ones((m, 1))])
    alpha = 0.1 / (float(np.linalg.eigvalsh(A.T @ A / m)[-1]) / 4.0)
    problem = {"model": "logistic_regression", "parameters": {"w": [0.0, 0.0], "b": 0.0}}
    problem["data"] = {"X": X.tolist(), "y": y.tolist()}
    (run,) = ok(client, body(problem, learning_rate=alpha, steps=150, record_every=10))["runs"]
    assert run["status"] == "completed"
    losses = run["history"]["loss"]
    assert all(losses[t + 1] <= losses[t] for t in range(len(losses) - 1))
    assert losses[-1] < losses[0]
    for snap in run["snapshots"]:
        w, b = wb(snap["parameters"])
        gw, gb = own_grad("sigmoid", "binary_cross_entropy", X, y, w, b)
        norm = math.sqrt(float(np.sum(gw**2) + gb**2))
        assert math.isclose(run["history"]["gradient_norm"][snap["step"]], norm, rel_tol=1e-10)


# --- 3. each step is θ − α∇J ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("problem", "act", "loss", "reg"),
    [
        (dict(LINEAR, regularization={"kind": "l2", "lambda": 0.5}), "identity", "squared_error", ("l2", 0.5)),
        (dict(LOGISTIC, regularization={"kind": "l1", "lambda": 0.2}), "sigmoid", "binary_cross_entropy", ("l1", 0.2)),
        (SOFTMAX, "softmax", "categorical_cross_entropy", None),
    ],
    ids=["linear_l2", "logistic_l1", "softmax"],
)
def test_each_step_is_theta_minus_alpha_grad(
    client: TestClient, problem: dict[str, Any], act: str, loss: str, reg: Any
) -> None:
    alpha = 0.07
    (run,) = ok(client, body(problem, learning_rate=alpha, steps=8, record_every=1))["runs"]
    assert [s["step"] for s in run["snapshots"]] == list(range(9))
    assert run["snapshots"][0]["parameters"] == problem["parameters"]
    y = problem["data"]["y"]
    for before, after in zip(run["snapshots"], run["snapshots"][1:], strict=False):
        w, b = wb(before["parameters"])
        gw, gb = own_grad(act, loss, WORKED_X, y, w, b, reg=reg)
        w1, b1 = wb(after["parameters"])
        np.testing.assert_allclose(w1, w - alpha * gw, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(b1, b - alpha * gb, rtol=1e-12, atol=1e-15)


def test_each_network_step_is_theta_minus_alpha_grad(client: TestClient) -> None:
    alpha = 0.5
    (run,) = ok(client, body(NETWORK, learning_rate=alpha, steps=5, record_every=1))["runs"]
    y = NETWORK["data"]["y"]
    for before, after in zip(run["snapshots"], run["snapshots"][1:], strict=False):
        layers = before["parameters"]["layers"]
        Ws, bs = [np.asarray(lp["W"]) for lp in layers], [np.asarray(lp["b"]) for lp in layers]
        g = own_net_grad(["tanh", "sigmoid"], "binary_cross_entropy", WORKED_X, y, Ws, bs)
        for i, lp in enumerate(after["parameters"]["layers"]):
            np.testing.assert_allclose(np.asarray(lp["W"]), Ws[i] - alpha * g[i], rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(np.asarray(lp["b"]), bs[i] - alpha * g[2 + i], rtol=1e-12, atol=1e-15)


# --- 4. diverged, non-finite ----------------------------------------------------------------------


def test_divergence_names_the_learning_rate(client: TestClient) -> None:
    X, y = linear_data(seed=14, m=20, n=2)
    alpha = float(f"{20.0 / hessian_lambda_max(X):.3g}")
    problem = {"model": "linear_regression", "parameters": {"w": [0.0, 0.0], "b": 0.0}}
    problem["data"] = {"X": X.tolist(), "y": y.tolist()}
    (run,) = ok(client, body(problem, learning_rate=alpha, steps=500, patience=4))["runs"]
    assert run["status"] == "diverged"
    losses = run["history"]["loss"]
    assert run["steps_taken"] < 500
    assert all(losses[t + 1] > losses[t] for t in range(len(losses) - 5, len(losses) - 1))
    assert run["steps_taken"] == first_run_of_rises(losses, 4)  # it stops at the first 4 rises in a row
    assert "α" in run["explanation"] and f"{alpha:g}" in run["explanation"]


def test_poisson_blow_up_is_non_finite_with_the_last_finite_parameters(client: TestClient) -> None:
    problem = {"model": "poisson_regression", "parameters": {"w": [-840.0], "b": -840.0}}
    problem["data"] = {"X": [[1.0]], "y": [1.0]}
    (run,) = ok(client, body(problem, learning_rate=400.0, steps=10, record_every=1))["runs"]
    assert run["status"] == "non-finite"
    assert run["steps_taken"] == 2
    w, b = np.array([-840.0]), np.array(-840.0)
    for _ in range(2):
        gw, gb = own_grad("exp", "poisson", [[1.0]], [1.0], w, b)
        w, b = w - 400.0 * gw, b - 400.0 * gb
    fw, fb = wb(run["final"]["parameters"])
    np.testing.assert_allclose(fw, w, rtol=1e-12)
    np.testing.assert_allclose(fb, b, rtol=1e-12)
    assert "400" in run["explanation"] and "α" in run["explanation"]


def test_non_finite_at_step_zero_is_a_422(client: TestClient) -> None:
    problem = {"model": "poisson_regression", "parameters": {"w": [800.0], "b": 0.0}}
    problem["data"] = {"X": [[1.0]], "y": [1.0]}
    assert_problem(client.post("/descent", json=body(problem)), 422, "non-finite-result")


HUGE_GRADIENT = {
    "model": "linear_regression",
    "parameters": {"w": [1.0], "b": 0.0},
    "data": {"X": [[1e100]], "y": [0.0]},
}


def test_gradient_answers_the_huge_gradient_problem(client: TestClient) -> None:
    # z = 1e100: J = ½·1e200, ∂J/∂w = x·z = 1e200, ∂J/∂b = 1e100, all representable
    resp = client.post("/gradient", json=HUGE_GRADIENT)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert math.isclose(out["loss"], 0.5e200) and math.isclose(out["gradients"]["w"][0], 1e200)


def test_representable_gradient_norm_is_not_refused(client: TestClient) -> None:
    (run,) = ok(client, body(HUGE_GRADIENT, learning_rate=1e-300, steps=0))["runs"]
    assert math.isclose(run["history"]["gradient_norm"][0], math.hypot(1e200, 1e100), rel_tol=1e-12)


# --- 5. networks ----------------------------------------------------------------------------------


def test_network_cost_decreases_and_snapshots_mirror_the_request(client: TestClient) -> None:
    (run,) = ok(client, body(NETWORK, learning_rate=0.05, steps=100, record_every=25))["runs"]
    losses = run["history"]["loss"]
    assert all(losses[t + 1] <= losses[t] for t in range(len(losses) - 1))
    assert losses[-1] < losses[0]
    assert [s["step"] for s in run["snapshots"]] == [0, 25, 50, 75, 100]
    assert run["snapshots"][0]["parameters"] == NETWORK["parameters"]
    for snap in run["snapshots"]:
        params = snap["parameters"]
        assert list(params) == ["layers"] and len(params["layers"]) == 2
        for lp, given_lp in zip(params["layers"], NETWORK["parameters"]["layers"], strict=True):
            assert sorted(lp) == ["W", "b"]
            assert np.shape(lp["W"]) == np.shape(given_lp["W"]) and np.shape(lp["b"]) == np.shape(given_lp["b"])
    layers = run["final"]["parameters"]["layers"]
    J = own_net_cost(
        ["tanh", "sigmoid"],
        "binary_cross_entropy",
        WORKED_X,
        NETWORK["data"]["y"],
        [np.asarray(lp["W"]) for lp in layers],
        [np.asarray(lp["b"]) for lp in layers],
    )
    assert math.isclose(run["final"]["loss"], float(J), rel_tol=1e-12)


def test_single_layer_snapshots_mirror_the_request(client: TestClient) -> None:
    (lin,) = ok(client, body(LINEAR, steps=3))["runs"]
    assert isinstance(lin["final"]["parameters"]["b"], float)
    assert np.shape(lin["final"]["parameters"]["w"]) == (2,)
    (soft,) = ok(client, body(SOFTMAX, steps=3))["runs"]
    assert np.shape(soft["final"]["parameters"]["w"]) == (2, 3)
    assert np.shape(soft["final"]["parameters"]["b"]) == (3,)


# --- 6. compare_with ------------------------------------------------------------------------------


def test_compare_logistic_with_sigmoid_squared_error(client: TestClient) -> None:
    alpha = 1.0
    request = body(
        LOGISTIC,
        learning_rate=alpha,
        steps=6,
        record_every=1,
        compare_with={"activation": "sigmoid", "loss": "squared_error"},
    )
    out = ok(client, request)
    first, second = out["runs"]
    assert first["pairing"] == {"activation": "sigmoid", "loss": "binary_cross_entropy", "canonical": True}
    assert second["pairing"] == {"activation": "sigmoid", "loss": "squared_error", "canonical": False}
    assert first["snapshots"][0]["parameters"] == second["snapshots"][0]["parameters"] == LOGISTIC["parameters"]
    assert isinstance(out["comparison"], str) and out["comparison"]
    assert "squared_error" in out["comparison"] and "binary_cross_entropy" in out["comparison"]
    y = LOGISTIC["data"]["y"]
    assert math.isclose(first["history"]["loss"][0], math.log(2.0), rel_tol=1e-14)
    assert math.isclose(second["history"]["loss"][0], 0.125, rel_tol=1e-14)  # ½(½ − y)² for every example
    for before, after in zip(second["snapshots"], second["snapshots"][1:], strict=False):
        w, b = wb(before["parameters"])
        gw, gb = own_grad("sigmoid", "squared_error", WORKED_X, y, w, b)
        w1, b1 = wb(after["parameters"])
        np.testing.assert_allclose(w1, w - alpha * gw, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(b1, b - alpha * gb, rtol=1e-12, atol=1e-15)


def test_the_documented_example_runs(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]["DescentRequest"]
    (example,) = schema["examples"]
    out = ok(client, example)
    assert len(out["runs"]) == 2 and out["comparison"]
    assert [r["pairing"]["canonical"] for r in out["runs"]] == [True, False]


def test_network_compare_with_replaces_the_output_layer(client: TestClient) -> None:
    request = body(NETWORK, steps=3, compare_with={"activation": "identity", "loss": "squared_error"})
    first, second = ok(client, request)["runs"]
    assert second["pairing"] == {"activation": "identity", "loss": "squared_error", "canonical": True}
    layers = NETWORK["parameters"]["layers"]
    Ws, bs = [np.asarray(lp["W"]) for lp in layers], [np.asarray(lp["b"]) for lp in layers]
    y = NETWORK["data"]["y"]
    expected = own_net_cost(["tanh", "identity"], "squared_error", WORKED_X, y, Ws, bs)
    assert math.isclose(second["history"]["loss"][0], float(expected), rel_tol=1e-12)
    expected_first = own_net_cost(["tanh", "sigmoid"], "binary_cross_entropy", WORKED_X, y, Ws, bs)
    assert math.isclose(first["history"]["loss"][0], float(expected_first), rel_tol=1e-12)


def test_huber_loss_params_pass_through(client: TestClient) -> None:
    cmp = {"activation": "identity", "loss": "huber", "loss_params": {"delta": 0.5}}
    _, second = ok(client, body(LINEAR, compare_with=cmp))["runs"]
    assert second["pairing"] == {
        "activation": "identity",
        "loss": "huber",
        "canonical": False,
        "loss_params": {"delta": 0.5},
    }
    y, w0, b0 = LINEAR["data"]["y"], np.zeros(2), 0.0
    expected = float(own_cost("identity", "huber", WORKED_X, y, w0, b0, delta=0.5))
    assert math.isclose(second["history"]["loss"][0], expected, rel_tol=1e-12)
    assert not math.isclose(expected, float(own_cost("identity", "huber", WORKED_X, y, w0, b0, delta=1.0)))
    # on a network too
    (_, net_second) = ok(client, body(NETWORK, steps=2, compare_with=cmp))["runs"]
    assert net_second["pairing"]["loss_params"] == {"delta": 0.5}
    layers = NETWORK["parameters"]["layers"]
    expected_net = own_net_cost(
        ["tanh", "identity"],
        "huber",
        WORKED_X,
        NETWORK["data"]["y"],
        [np.asarray(lp["W"]) for lp in layers],
        [np.asarray(lp["b"]) for lp in layers],
        delta=0.5,
    )
    assert math.isclose(net_second["history"]["loss"][0], float(expected_net), rel_tol=1e-12)


def test_the_problems_loss_params_do_not_leak_into_compare_with(client: TestClient) -> None:
    problem = {
        "model": "single_layer",
        "activation": "identity",
        "loss": "huber",
        "loss_params": {"delta": 0.5},
        "parameters": {"w": [0.0, 0.0], "b": 0.0},
        "data": LINEAR["data"],
    }
    first, second = ok(client, body(problem, compare_with={"activation": "identity", "loss": "squared_error"}))["runs"]
    assert first["pairing"]["loss_params"] == {"delta": 0.5}
    assert "loss_params" not in second["pairing"]


@pytest.mark.parametrize(
    "compare_with",
    [
        {"activation": "identity", "loss": "binary_cross_entropy"},
        {"activation": "sigmoid", "loss": "categorical_cross_entropy"},
        {"activation": "relu", "loss": "poisson"},
    ],
)
def test_incompatible_compare_with_is_a_422(client: TestClient, compare_with: dict[str, Any]) -> None:
    assert_problem(client.post("/descent", json=body(LOGISTIC, compare_with=compare_with)), 422, "incompatible-pairing")


@pytest.mark.parametrize(
    ("problem", "compare_with", "slug", "loc_prefix"),
    [
        # a scalar problem (w: n numbers) cannot take softmax + categorical_cross_entropy
        (LOGISTIC, {"activation": "softmax", "loss": "categorical_cross_entropy"}, "validation-error", ["parameters"]),
        # a network with one output unit cannot either
        (
            NETWORK,
            {"activation": "softmax", "loss": "categorical_cross_entropy"},
            "validation-error",
            ["parameters", "layers", 1, "W"],
        ),
        # targets outside the second loss's domain
        (LINEAR, {"activation": "sigmoid", "loss": "binary_cross_entropy"}, "domain-error", ["data", "y"]),
        # a loss parameter that the second loss does not take
        (
            LINEAR,
            {"activation": "identity", "loss": "squared_error", "loss_params": {"delta": 0.5}},
            "validation-error",
            ["loss_params", "delta"],
        ),
    ],
    ids=["softmax_on_scalar", "softmax_on_one_unit", "targets", "loss_params"],
)
def test_compare_with_that_does_not_fit_has_a_loc_under_compare_with(
    client: TestClient, problem: dict[str, Any], compare_with: dict[str, Any], slug: str, loc_prefix: list[Any]
) -> None:
    out = assert_problem(client.post("/descent", json=body(problem, compare_with=compare_with)), 422, slug)
    assert locs(out), out
    for loc in locs(out):
        assert loc[: len(loc_prefix) + 1] == ["compare_with", *loc_prefix], loc


def test_errors_of_the_problem_have_a_loc_under_problem(client: TestClient) -> None:
    problem = dict(LINEAR, parameters={"w": [0.0], "b": 0.0})
    out = assert_problem(client.post("/descent", json=body(problem)), 422, "validation-error")
    assert ["problem", "parameters", "w"] in locs(out)


# --- 7. limits and validation ---------------------------------------------------------------------


def test_steps_limit(few_steps_client: TestClient) -> None:
    small_client = few_steps_client
    ok(small_client, body(LINEAR, steps=50, learning_rate=0.01, record_every=25))
    out = assert_problem(small_client.post("/descent", json=body(LINEAR, steps=51)), 422, "validation-error")
    assert locs(out) == [["steps"]]
    out = assert_problem(small_client.post("/descent", json=body(LINEAR, steps=10**30)), 422, "validation-error")
    assert locs(out) == [["steps"]]


def test_work_limit_counts_steps_and_runs(little_work_client: TestClient) -> None:
    small_client = little_work_client
    # LINEAR (m = 6, n = 2, k = 1): 6·(2 + 64)·1 + 32·3 parameters = 492 per evaluation, steps + 1 of them;
    # the limit is 10,332 = 21·492
    ok(small_client, body(LINEAR, steps=20))
    ok(small_client, body(LINEAR, steps=9, compare_with={"activation": "identity", "loss": "absolute_error"}))
    for request in (
        body(LINEAR, steps=21),
        body(LINEAR, steps=10, compare_with={"activation": "identity", "loss": "absolute_error"}),
        body(NETWORK, steps=5),  # 6·((2 + 64)·3 + (3 + 64)·1) + 32·13 = 2,006 per step
    ):
        out = assert_problem(small_client.post("/descent", json=request), 422, "validation-error")
        assert locs(out) == [["steps"]]
        assert "10332" in out["detail"]
    out = assert_problem(small_client.post("/descent", json=body(LINEAR, steps=21)), 422, "validation-error")
    assert "at most 20 steps" in out["errors"][0]["msg"]


def test_the_default_work_limit_refuses_what_took_minutes(client: TestClient) -> None:
    """10,000 steps of logistic regression on 100,000 × 1 was 10⁹ 'multiply-adds' (m·n·k × steps), a tenth of
    the old limit, yet took about 25 s: each step's elementwise work, not its m·n·k, is what costs."""
    m = 100_000
    X = "[" + ",".join(["[1]", "[0]"] * (m // 2)) + "]"
    y = "[" + ",".join(["1", "0"] * (m // 2)) + "]"
    raw = (
        '{"problem": {"model": "logistic_regression", "parameters": {"w": [0.0], "b": 0.0}, '
        f'"data": {{"X": {X}, "y": {y}}}}}, "learning_rate": 0.1, "steps": 10000}}'
    )
    resp = client.post("/descent", content=raw, headers={"content-type": "application/json"})
    out = assert_problem(resp, 422, "validation-error")
    assert locs(out) == [["steps"]]
    assert str(Settings().max_descent_work) in out["detail"]


@pytest.mark.parametrize(
    ("changes", "expected_locs"),
    [
        ({"learning_rate": 0}, [["learning_rate"]]),
        ({"learning_rate": -0.5}, [["learning_rate"]]),
        ({"learning_rate": 2e6}, [["learning_rate"]]),
        ({"learning_rate": "0.1"}, [["learning_rate"]]),
        ({"steps": -1}, [["steps"]]),
        ({"steps": 2.5}, [["steps"]]),
        ({"record_every": 0}, [["record_every"]]),
        ({"patience": 0}, [["patience"]]),
        ({"gradient_tolerance": -1e-9}, [["gradient_tolerance"]]),
        ({"surprise": 1}, [["surprise"]]),
        ({"compare_with": {"activation": "sigmoid", "loss": "squared_error", "extra": 1}}, [["compare_with", "extra"]]),
        ({"compare_with": {"activation": "sigmoid", "loss": "no_such_loss"}}, [["compare_with", "loss"]]),
        ({"problem": dict(LINEAR, extra=True)}, [["problem", "extra"]]),
        ({"problem": dict(LINEAR, explain="full", verify=True), "learning_rate": None}, [["learning_rate"]]),
    ],
    ids=lambda v: str(v)[:40],
)
def test_invalid_requests_are_422_with_locs(
    client: TestClient, changes: dict[str, Any], expected_locs: list[list[Any]]
) -> None:
    request = body(LINEAR)
    request.update(copy.deepcopy(changes))
    if request.get("learning_rate", 0.1) is None:
        del request["learning_rate"]
    out = assert_problem(client.post("/descent", json=request), 422, "validation-error")
    assert locs(out) == expected_locs, out


def test_missing_fields_and_bad_json(client: TestClient) -> None:
    out = assert_problem(client.post("/descent", json={"problem": LINEAR}), 422, "validation-error")
    assert sorted(map(tuple, locs(out))) == [("learning_rate",), ("steps",)]
    out = assert_problem(client.post("/descent", json={"learning_rate": 0.1, "steps": 1}), 422, "validation-error")
    assert locs(out) == [["problem"]]
    assert_problem(
        client.post("/descent", content=b"{", headers={"content-type": "application/json"}), 400, "invalid-json"
    )


def test_explain_and_verify_are_ignored(client: TestClient) -> None:
    plain = ok(client, body(LINEAR, steps=3))
    loud = ok(client, body(dict(LINEAR, explain="full", verify=True), steps=3))
    assert plain == loud


# --- 8. steps = 0, record_every > steps -----------------------------------------------------------


def test_zero_steps_returns_the_start(client: TestClient) -> None:
    (run,) = ok(client, body(LINEAR, steps=0))["runs"]
    assert run["steps_taken"] == 0
    assert len(run["history"]["loss"]) == 1 and len(run["snapshots"]) == 1
    assert run["snapshots"][0] == {
        "step": 0,
        "loss": run["history"]["loss"][0],
        "parameters": LINEAR["parameters"],
    }
    y = np.asarray(LINEAR["data"]["y"])
    assert math.isclose(run["history"]["loss"][0], float(np.mean(0.5 * y**2)), rel_tol=1e-14)


def test_record_every_above_steps_gives_start_and_end(client: TestClient) -> None:
    (run,) = ok(client, body(LINEAR, steps=7, record_every=1000))["runs"]
    assert [s["step"] for s in run["snapshots"]] == [0, 7]


def test_default_record_every_gives_about_ten_snapshots(client: TestClient) -> None:
    (run,) = ok(client, body(LINEAR, steps=100, learning_rate=0.01))["runs"]
    assert [s["step"] for s in run["snapshots"]] == list(range(0, 101, 10))


# --- random requests: never a 500, every number finite --------------------------------------------

PROBLEMS = [LINEAR, LOGISTIC, SOFTMAX, NETWORK]
PROBLEMS += [
    {
        "model": "poisson_regression",
        "parameters": {"w": [0.3, 0.2], "b": 0.1},
        "data": {"X": WORKED_X, "y": [1, 2, 0, 4, 3, 2]},
    },
    dict(LINEAR, regularization={"kind": "l1", "lambda": 0.3}),
    dict(NETWORK, layers=[{"activation": "relu"}, {"activation": "exp"}], loss="poisson"),
]
ACTIVATIONS = [a.value for a in ActivationName]
LOSSES = [lo.value for lo in LossName]


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    problem=st.sampled_from(PROBLEMS),
    learning_rate=st.sampled_from([1e-3, 0.1, 1.0, 10.0, 1e3, 1e6]),
    steps=st.integers(0, 40),
    record_every=st.none() | st.integers(1, 50),
    patience=st.integers(1, 6),
    compare_with=st.none() | st.tuples(st.sampled_from(ACTIVATIONS), st.sampled_from(LOSSES)),
)
def test_random_descents_never_fail_and_stay_finite(
    client: TestClient,
    problem: dict[str, Any],
    learning_rate: float,
    steps: int,
    record_every: int | None,
    patience: int,
    compare_with: tuple[str, str] | None,
) -> None:
    request = body(problem, learning_rate=learning_rate, steps=steps, patience=patience)
    if record_every is not None:
        request["record_every"] = record_every
    if compare_with is not None:
        request["compare_with"] = {"activation": compare_with[0], "loss": compare_with[1]}
    resp = client.post("/descent", json=request)
    if resp.status_code == 200:
        out = checked(resp, request)
        assert len(out["runs"]) == (1 if compare_with is None else 2)
        assert ("comparison" in out) == (compare_with is not None)
    else:
        assert_problem(
            resp,
            422,
            {"validation-error", "incompatible-pairing", "domain-error", "non-finite-result"},
        )


def test_the_recorded_snapshots_are_bounded() -> None:
    """record_every = 1 over many steps of a model with many parameters kept every snapshot (about
    runs × steps × parameters floats) with no bound: now a 422 at record_every naming the fewest
    record_every that fits, and the same descent recorded less often is served."""
    n = 2_000
    X = np.random.default_rng(0).normal(size=(3, n)).round(3).tolist()
    problem = {"model": "linear_regression", "parameters": {"w": [0.0] * n, "b": 0.0}, "data": {"X": X, "y": [1, 2, 3]}}
    limits = Settings(max_descent_recorded=500_000)
    with TestClient(create_app(limits)) as c:
        r = c.post("/descent", json=body(problem, learning_rate=0.01, steps=1_000, record_every=1))
        problem_body = assert_problem(r, 422, "validation-error")
        assert locs(problem_body) == [["record_every"]]
        assert "record_every ≥ 5" in problem_body["errors"][0]["msg"]
        (run,) = ok(c, body(problem, learning_rate=1e-6, steps=1_000, record_every=5))["runs"]
        assert run["status"] == "completed" and len(run["snapshots"]) == 1_000 // 5 + 1

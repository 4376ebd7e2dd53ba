"""Batch gradient descent (service.compute.descent) against independent oracles.

The oracles are closed-form solutions (least squares, ridge), the step-size theory of convex
quadratics (α < 2/λ_max of the Hessian converges, α far above diverges) and the plain textbook
formulas of every cost, differentiated by autograd. None of them reads a number computed by the
code under test; the helpers at the top are also used by tests/api/test_descent_api.py.
"""

from __future__ import annotations

import math
from typing import Any

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad

from service.compute import descent
from service.compute.activations import ACTIVATIONS
from service.compute.errors import NonFiniteResult
from service.compute.model_names import ModelName
from service.compute.models import Regularization, build_network, build_objective
from service.compute.pairings import make_pairing
from tests.compute.oracles import plain_activation, plain_loss

# --- plain formulas (autograd.numpy, tests/compute/oracles.py), independent of the service's stable kernels


def loss_values(loss: str, f: Any, y: Any, delta: float = 1.0) -> Any:
    """L(f, y) per example: f and y are (m,) or (m, k) rows."""
    return plain_loss(loss, f, y, {"delta": delta} if loss == "huber" else None)


def reg_value(reg: tuple[str, float] | None, W: Any, m: int) -> Any:
    if reg is None:
        return 0.0
    kind, lam = reg
    return lam / (2.0 * m) * anp.sum(W**2) if kind == "l2" else lam / m * anp.sum(anp.abs(W))


def one_hot(y: Any, k: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 2:
        return y
    out = np.zeros((y.shape[0], k))
    out[np.arange(y.shape[0]), y.astype(int)] = 1.0
    return out


def own_cost(
    act: str, loss: str, X: Any, y: Any, w: Any, b: Any, reg: tuple[str, float] | None = None, delta: float = 1.0
) -> Any:
    """J(w, b) of a single-layer model: mean of the plain per-example losses plus R(w)."""
    X = np.asarray(X, dtype=np.float64)
    y = one_hot(y, np.shape(w)[1]) if act == "softmax" else np.asarray(y, dtype=np.float64)
    z = anp.dot(X, w) + b
    # exp + poisson: log f = z exactly, also where e^z underflows to 0
    L = (
        anp.exp(z) - y * z
        if (act, loss) == ("exp", "poisson")
        else loss_values(loss, plain_activation(act, z), y, delta)
    )
    return anp.mean(L) + reg_value(reg, w, X.shape[0])


def own_grad(act: str, loss: str, X: Any, y: Any, w: Any, b: Any, **kw: Any) -> tuple[np.ndarray, np.ndarray]:
    """(∂J/∂w, ∂J/∂b) by autograd of the plain cost."""
    g = grad(lambda p: own_cost(act, loss, X, y, p[0], p[1], **kw))(
        (np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64))
    )
    return np.asarray(g[0]), np.asarray(g[1])


def own_net_cost(
    acts: list[str],
    loss: str,
    X: Any,
    y: Any,
    Ws: list[Any],
    bs: list[Any],
    reg: tuple[str, float] | None = None,
    delta: float = 1.0,
) -> Any:
    """J of a network: acts[l] is g[l+1]; the last one is the output activation."""
    a = np.asarray(X, dtype=np.float64)
    for act, W, b in zip(acts, Ws, bs, strict=True):
        a = plain_activation(act, anp.dot(a, W) + b)
    if acts[-1] == "softmax":
        f, yy = a, one_hot(y, np.shape(Ws[-1])[1])
    else:
        f, yy = a[:, 0], np.asarray(y, dtype=np.float64)
    m = np.shape(X)[0]
    return anp.mean(loss_values(loss, f, yy, delta)) + sum(reg_value(reg, W, m) for W in Ws)


def own_net_grad(acts: list[str], loss: str, X: Any, y: Any, Ws: list[Any], bs: list[Any], **kw: Any) -> list[Any]:
    """[∂J/∂W[1..L], ∂J/∂b[1..L]] by autograd."""
    params = [np.asarray(p, dtype=np.float64) for p in (*Ws, *bs)]
    depth = len(Ws)
    g = grad(lambda p: own_net_cost(acts, loss, X, y, p[:depth], p[depth:], **kw))(params)
    return [np.asarray(x) for x in g]


def hessian_lambda_max(X: Any, lam: float = 0.0) -> float:
    """λ_max of the Hessian of linear regression's J: ([X, 1]ᵀ[X, 1] + λ·diag(1..1, 0)) / m."""
    X = np.asarray(X, dtype=np.float64)
    m, n = X.shape
    A = np.hstack([X, np.ones((m, 1))])
    D = np.diag([1.0] * n + [0.0])
    return float(np.linalg.eigvalsh((A.T @ A + lam * D) / m)[-1])


def least_squares(X: Any, y: Any) -> tuple[np.ndarray, float]:
    X = np.asarray(X, dtype=np.float64)
    A = np.hstack([X, np.ones((X.shape[0], 1))])
    theta = np.linalg.lstsq(A, np.asarray(y, dtype=np.float64), rcond=None)[0]
    return theta[:-1], float(theta[-1])


def ridge(X: Any, y: Any, lam: float) -> tuple[np.ndarray, float]:
    """argmin 1/(2m)‖Xw + b − y‖² + λ/(2m)‖w‖²: (AᵀA/m + λ/m·diag(1..1, 0)) θ = Aᵀy/m, b unregularized."""
    X = np.asarray(X, dtype=np.float64)
    m, n = X.shape
    A = np.hstack([X, np.ones((m, 1))])
    D = np.diag([1.0] * n + [0.0])
    theta = np.linalg.solve(A.T @ A / m + lam / m * D, A.T @ np.asarray(y, dtype=np.float64) / m)
    return theta[:-1], float(theta[-1])


def linear_data(seed: int = 0, m: int = 40, n: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n))
    y = X @ np.linspace(1.5, -2.0, n) + 0.7 + 0.3 * rng.normal(size=m)
    return X, y


def logistic_data(seed: int = 1, m: int = 60, n: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from a logistic model: not separable, so the cost has a finite minimum."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n))
    p = 1.0 / (1.0 + np.exp(-(X @ np.array([1.0, -0.8][:n] + [0.3] * max(0, n - 2)) + 0.2)))
    return X, (rng.random(m) < p).astype(np.float64)


# --- helpers over the code under test ------------------------------------------------------------


def _problem(model: ModelName, act: str, loss: str, X: Any, y: Any, w: Any, b: Any, **kw: Any) -> Any:
    reg = kw.pop("regularization", None)
    params = kw.pop("loss_params", None)
    return build_objective(model, make_pairing(act, loss, params), X, y, w, b, reg)


def _params(snapshot_params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(snapshot_params["w"], dtype=np.float64), np.asarray(snapshot_params["b"], dtype=np.float64)


def _check_shape(run: dict[str, Any]) -> None:
    """Invariants of every run: one history entry per step taken, snapshots ending at the final step."""
    taken = run["steps_taken"]
    assert len(run["history"]["loss"]) == len(run["history"]["gradient_norm"]) == taken + 1
    assert run["snapshots"][0]["step"] == 0
    assert run["snapshots"][-1]["step"] == taken == run["final"]["step"]
    steps = [s["step"] for s in run["snapshots"]]
    assert steps == sorted(set(steps))
    for s in run["snapshots"]:
        assert s["loss"] == run["history"]["loss"][s["step"]]
    assert run["final"]["loss"] == run["history"]["loss"][-1]
    assert run["final"]["gradient_norm"] == run["history"]["gradient_norm"][-1]


# --- 1. linear regression converges to the least-squares and ridge solutions --------------------


def test_linear_regression_converges_to_least_squares() -> None:
    X, y = linear_data()
    lam_max = hessian_lambda_max(X)
    alpha = 1.0 / lam_max  # below 2/λ_max: converges
    p = _problem(ModelName.LINEAR_REGRESSION, "identity", "squared_error", X, y, np.zeros(3), 0.0)
    run = descent.gradient_descent(descent.trainable(p), alpha, 5000, record_every=500, gradient_tolerance=1e-12)
    _check_shape(run)
    assert run["status"] == "converged", run["explanation"]
    assert run["steps_taken"] < 5000
    w, b = _params(run["final"]["parameters"])
    w_ls, b_ls = least_squares(X, y)
    np.testing.assert_allclose(w, w_ls, rtol=0, atol=1e-8)
    assert abs(float(b) - b_ls) <= 1e-8
    assert run["final"]["gradient_norm"] <= 1e-12


def test_linear_regression_converges_to_ridge_solution() -> None:
    X, y = linear_data(seed=3, m=30, n=4)
    lam = 12.0
    lam_max = hessian_lambda_max(X, lam)
    alpha = 1.5 / lam_max
    p = _problem(
        ModelName.LINEAR_REGRESSION,
        "identity",
        "squared_error",
        X,
        y,
        np.zeros(4),
        0.0,
        regularization=Regularization("l2", lam),
    )
    run = descent.gradient_descent(descent.trainable(p), alpha, 5000, record_every=1000, gradient_tolerance=1e-12)
    assert run["status"] == "converged", run["explanation"]
    w, b = _params(run["final"]["parameters"])
    w_r, b_r = ridge(X, y, lam)
    np.testing.assert_allclose(w, w_r, rtol=0, atol=1e-8)
    assert abs(float(b) - b_r) <= 1e-8
    # the ridge solution differs from least squares by far more than the tolerance: λ really applied, b unpenalized
    w_ls, _ = least_squares(X, y)
    assert np.max(np.abs(w_r - w_ls)) > 1e-3


# --- 2. logistic regression: monotone cost for a small α, gradient norms at the snapshots -------


def test_logistic_cost_decreases_monotonically_and_norms_match() -> None:
    X, y = logistic_data()
    m = X.shape[0]
    A = np.hstack([X, np.ones((m, 1))])
    smoothness = float(np.linalg.eigvalsh(A.T @ A / m)[-1]) / 4.0  # J's Hessian ≤ AᵀA/(4m)
    # α ≤ 1/smoothness: by the descent lemma J never rises; 0.1/smoothness keeps each decrease far above
    # rounding for all the steps (near the minimum J would only move by an ulp either way)
    alpha = 0.1 / smoothness
    p = _problem(ModelName.LOGISTIC_REGRESSION, "sigmoid", "binary_cross_entropy", X, y, np.zeros(2), 0.0)
    run = descent.gradient_descent(descent.trainable(p), alpha, 150, record_every=7)
    _check_shape(run)
    assert run["status"] == "completed" and run["steps_taken"] == 150
    losses = run["history"]["loss"]
    for t in range(len(losses) - 1):
        assert losses[t + 1] <= losses[t], (t, losses[t], losses[t + 1])
    assert losses[-1] < losses[0] - 0.05
    assert math.isclose(losses[0], math.log(2.0), rel_tol=1e-14)  # σ(0) = 1/2 for every example
    assert len(run["snapshots"]) == 150 // 7 + 2
    for snap in run["snapshots"]:
        w, b = _params(snap["parameters"])
        gw, gb = own_grad("sigmoid", "binary_cross_entropy", X, y, w, b)
        expected = math.sqrt(float(np.sum(gw**2) + gb**2))
        assert math.isclose(run["history"]["gradient_norm"][snap["step"]], expected, rel_tol=1e-10, abs_tol=1e-15)
        J = float(own_cost("sigmoid", "binary_cross_entropy", X, y, w, b))
        assert math.isclose(snap["loss"], J, rel_tol=1e-12)


# --- 3. every step is θ − α ∇J ------------------------------------------------------------------

WORKED_X = [[0.5, 1.5], [1, 1], [1.5, 0.5], [3, 0.5], [2, 2], [1, 2.5]]
STEP_CASES: dict[str, dict[str, Any]] = {
    "linear_l2": {
        "model": ModelName.LINEAR_REGRESSION,
        "pairing": ("identity", "squared_error"),
        "y": [1.2, 0.8, 2.0, 3.1, 2.2, 0.9],
        "w": [1.0, -0.5],
        "b": 0.25,
        "reg": ("l2", 0.7),
        "alpha": 0.05,
    },
    "logistic_l1": {
        "model": ModelName.LOGISTIC_REGRESSION,
        "pairing": ("sigmoid", "binary_cross_entropy"),
        "y": [0, 0, 0, 1, 1, 1],
        "w": [0.5, -0.25],
        "b": 0.1,
        "reg": ("l1", 0.3),
        "alpha": 0.5,
    },
    "softmax": {
        "model": ModelName.SOFTMAX_REGRESSION,
        "pairing": ("softmax", "categorical_cross_entropy"),
        "y": [0, 0, 1, 2, 2, 1],
        "w": [[0.5, -0.2, 0.1], [-0.3, 0.4, 0.2]],
        "b": [0.0, 0.1, -0.1],
        "reg": None,
        "alpha": 0.5,
    },
    "poisson": {
        "model": ModelName.POISSON_REGRESSION,
        "pairing": ("exp", "poisson"),
        "y": [1, 2, 0, 4, 3, 2],
        "w": [0.3, 0.2],
        "b": 0.1,
        "reg": None,
        "alpha": 0.02,
    },
    "sigmoid_squared_error": {
        "model": ModelName.SINGLE_LAYER,
        "pairing": ("sigmoid", "squared_error"),
        "y": [0, 0, 0, 1, 1, 1],
        "w": [0.4, -0.3],
        "b": 0.2,
        "reg": None,
        "alpha": 1.0,
    },
    "tanh_huber": {
        "model": ModelName.SINGLE_LAYER,
        "pairing": ("tanh", "huber"),
        "y": [0.9, -0.5, 0.2, 3.0, 0.1, -0.4],
        "w": [0.4, -0.3],
        "b": 0.2,
        "reg": None,
        "alpha": 0.3,
        "delta": 0.5,
    },
}


@pytest.mark.parametrize("name", list(STEP_CASES))
def test_each_step_is_theta_minus_alpha_grad(name: str) -> None:
    c = STEP_CASES[name]
    act, loss = c["pairing"]
    delta = c.get("delta", 1.0)
    reg = None if c["reg"] is None else Regularization(*c["reg"])
    p = _problem(
        c["model"],
        act,
        loss,
        WORKED_X,
        c["y"],
        c["w"],
        c["b"],
        regularization=reg,
        loss_params={"delta": delta} if loss == "huber" else None,
    )
    alpha = c["alpha"]
    run = descent.gradient_descent(descent.trainable(p), alpha, 12, record_every=1)
    _check_shape(run)
    assert [s["step"] for s in run["snapshots"]] == list(range(13))
    w0, b0 = _params(run["snapshots"][0]["parameters"])
    np.testing.assert_array_equal(w0, np.asarray(c["w"], dtype=np.float64))
    np.testing.assert_array_equal(b0, np.asarray(c["b"], dtype=np.float64))
    for before, after in zip(run["snapshots"], run["snapshots"][1:], strict=False):
        w, b = _params(before["parameters"])
        gw, gb = own_grad(act, loss, WORKED_X, c["y"], w, b, reg=c["reg"], delta=delta)
        w1, b1 = _params(after["parameters"])
        np.testing.assert_allclose(w1, w - alpha * gw, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(b1, b - alpha * gb, rtol=1e-12, atol=1e-15)
        J = float(own_cost(act, loss, WORKED_X, c["y"], w, b, reg=c["reg"], delta=delta))
        assert math.isclose(before["loss"], J, rel_tol=1e-12)


def test_each_network_step_is_theta_minus_alpha_grad() -> None:
    X = np.asarray(WORKED_X)
    y = [0, 0, 0, 1, 1, 1]
    Ws = [[[0.5, -0.4, 0.3], [0.2, 0.6, -0.5]], [[0.7], [-0.3], [0.5]]]
    bs = [[0.1, 0.0, -0.1], [0.05]]
    net = build_network(
        [ACTIVATIONS["tanh"]],
        make_pairing("sigmoid", "binary_cross_entropy"),
        Ws,
        bs,
        X,
        y,
        Regularization("l2", 0.4),
    )
    alpha = 0.8
    run = descent.gradient_descent(descent.trainable(net), alpha, 6, record_every=1)
    _check_shape(run)
    for before, after in zip(run["snapshots"], run["snapshots"][1:], strict=False):
        layers = before["parameters"]["layers"]
        W, B = [np.asarray(layer["W"]) for layer in layers], [np.asarray(layer["b"]) for layer in layers]
        g = own_net_grad(["tanh", "sigmoid"], "binary_cross_entropy", X, y, W, B, reg=("l2", 0.4))
        nxt = after["parameters"]["layers"]
        for i in range(2):
            np.testing.assert_allclose(np.asarray(nxt[i]["W"]), W[i] - alpha * g[i], rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(np.asarray(nxt[i]["b"]), B[i] - alpha * g[2 + i], rtol=1e-12, atol=1e-15)
        norm = math.sqrt(sum(float(np.sum(x**2)) for x in g))
        assert math.isclose(run["history"]["gradient_norm"][before["step"]], norm, rel_tol=1e-10)


# --- 4. divergence and non-finite results -------------------------------------------------------


def first_run_of_rises(losses: list[float], patience: int) -> int | None:
    """The first step t at which J rose at t−patience+1 … t (the independent reading of 'diverged')."""
    rising = 0
    for t in range(1, len(losses)):
        rising = rising + 1 if losses[t] > losses[t - 1] else 0
        if rising == patience:
            return t
    return None


@pytest.mark.parametrize("patience", [1, 3, 5])
def test_linear_regression_diverges_far_above_two_over_lambda_max(patience: int) -> None:
    X, y = linear_data(seed=5)
    alpha = float(f"{20.0 / hessian_lambda_max(X):.3g}")  # 10× the stability limit 2/λ_max
    p = _problem(ModelName.LINEAR_REGRESSION, "identity", "squared_error", X, y, np.zeros(3), 0.0)
    run = descent.gradient_descent(descent.trainable(p), alpha, 200, record_every=10, patience=patience)
    _check_shape(run)
    assert run["status"] == "diverged"
    losses = run["history"]["loss"]
    assert run["steps_taken"] == first_run_of_rises(losses, patience) < 200
    assert all(losses[t + 1] > losses[t] for t in range(len(losses) - 1 - patience, len(losses) - 1))
    assert "α" in run["explanation"] and f"{alpha:g}" in run["explanation"]
    assert all(math.isfinite(v) for v in losses)


def test_linear_regression_below_limit_does_not_diverge() -> None:
    X, y = linear_data(seed=5)
    alpha = 1.9 / hessian_lambda_max(X)
    p = _problem(ModelName.LINEAR_REGRESSION, "identity", "squared_error", X, y, np.zeros(3), 0.0)
    # 80 steps: J − J* stays far above rounding, where an ulp of noise could count as a rise
    run = descent.gradient_descent(descent.trainable(p), alpha, 80, record_every=100, patience=1)
    assert run["status"] == "completed"
    assert run["history"]["loss"][-1] < run["history"]["loss"][0]


def test_linear_blow_up_with_endless_patience_is_non_finite() -> None:
    X, y = linear_data(seed=6)
    alpha = 1e3 / hessian_lambda_max(X)
    p = _problem(ModelName.LINEAR_REGRESSION, "identity", "squared_error", X, y, np.zeros(3), 0.0)
    run = descent.gradient_descent(descent.trainable(p), alpha, 1000, record_every=1, patience=1000)
    _check_shape(run)
    assert run["status"] == "non-finite"
    assert 10 < run["steps_taken"] < 1000
    assert f"{alpha:g}" in run["explanation"]
    w, b = _params(run["final"]["parameters"])
    assert np.all(np.isfinite(w)) and np.isfinite(b)
    w_prev, b_prev = _params(run["snapshots"][-2]["parameters"])
    gw, gb = own_grad("identity", "squared_error", X, y, w_prev, b_prev)
    np.testing.assert_allclose(w, w_prev - alpha * gw, rtol=1e-9)
    # the next step is not representable: the cost there overflows (independently recomputed)
    gw, gb = own_grad("identity", "squared_error", X, y, w, b)
    with np.errstate(over="ignore", invalid="ignore"):
        w_next, b_next = w - alpha * gw, b - alpha * gb
        J_next = float(own_cost("identity", "squared_error", X, y, w_next, b_next))
    assert not math.isfinite(J_next)


def test_poisson_blow_up_stops_at_the_last_finite_parameters() -> None:
    # z = w + b climbs by 2α(y − e^z) ≈ 800 per step: −1680, −880, −80, then 720 > 709.78, where e^z overflows
    alpha = 400.0
    p = _problem(ModelName.POISSON_REGRESSION, "exp", "poisson", [[1.0]], [1.0], [-840.0], -840.0)
    run = descent.gradient_descent(descent.trainable(p), alpha, 10, record_every=1)
    _check_shape(run)
    assert run["status"] == "non-finite"
    assert run["steps_taken"] == 2
    w, b = np.array([-840.0]), np.array(-840.0)
    for _ in range(2):
        gw, gb = own_grad("exp", "poisson", [[1.0]], [1.0], w, b)
        w, b = w - alpha * gw, b - alpha * gb
    fw, fb = _params(run["final"]["parameters"])
    np.testing.assert_allclose(fw, w, rtol=1e-12)
    np.testing.assert_allclose(fb, b, rtol=1e-12)
    assert np.all(np.isfinite(fw)) and np.isfinite(fb)
    assert float(w[0] + b) == pytest.approx(-80.0, abs=1e-6)
    assert "α = 400" in run["explanation"]


def test_non_finite_at_step_zero_raises() -> None:
    p = _problem(ModelName.POISSON_REGRESSION, "exp", "poisson", [[1.0]], [1.0], [800.0], 0.0)
    with pytest.raises(NonFiniteResult):
        descent.gradient_descent(descent.trainable(p), 0.1, 5, record_every=1)


def test_gradient_norm_that_is_representable_is_not_non_finite() -> None:
    # z = 1e100, J = ½ 1e200 (finite), ∂J/∂w = x·z = 1e200, ∂J/∂b = 1e100: ‖∇J‖ ≈ 1e200 < 1.8e308
    p = _problem(ModelName.LINEAR_REGRESSION, "identity", "squared_error", [[1e100]], [0.0], [1.0], 0.0)
    run = descent.gradient_descent(descent.trainable(p), 1e-300, 0, record_every=1)
    assert math.isclose(run["history"]["gradient_norm"][0], math.hypot(1e200, 1e100), rel_tol=1e-12)


# --- 5. networks ----------------------------------------------------------------------------------


def test_network_cost_decreases_and_snapshots_mirror_the_layers() -> None:
    rng = np.random.default_rng(7)
    X, y = logistic_data(seed=8, m=40)
    Ws = [0.5 * rng.normal(size=(2, 4)), 0.5 * rng.normal(size=(4, 1))]
    bs = [np.zeros(4), np.zeros(1)]
    net = build_network([ACTIVATIONS["tanh"]], make_pairing("sigmoid", "binary_cross_entropy"), Ws, bs, X, y)
    run = descent.gradient_descent(descent.trainable(net), 0.05, 200, record_every=50)
    _check_shape(run)
    losses = run["history"]["loss"]
    assert all(losses[t + 1] <= losses[t] for t in range(len(losses) - 1))
    assert losses[-1] < losses[0]
    assert math.isclose(losses[0], float(own_net_cost(["tanh", "sigmoid"], "binary_cross_entropy", X, y, Ws, bs)))
    for snap in run["snapshots"]:
        layers = snap["parameters"]["layers"]
        assert list(snap["parameters"]) == ["layers"]
        assert [sorted(layer) for layer in layers] == [["W", "b"], ["W", "b"]]
        assert [np.shape(layer["W"]) for layer in layers] == [(2, 4), (4, 1)]
        assert [np.shape(layer["b"]) for layer in layers] == [(4,), (1,)]
    # the model's own parameters are not modified by the run
    np.testing.assert_array_equal(net.Ws[0], Ws[0])


# --- 8. steps = 0 and record_every > steps --------------------------------------------------------


def test_zero_steps_gives_the_start_only() -> None:
    p = _problem(ModelName.LINEAR_REGRESSION, "identity", "squared_error", WORKED_X, [1, 2, 3, 4, 5, 6], [1, 2], 3)
    run = descent.gradient_descent(descent.trainable(p), 0.1, 0, record_every=1)
    assert run["steps_taken"] == 0 and run["status"] == "completed"
    assert len(run["history"]["loss"]) == len(run["history"]["gradient_norm"]) == 1
    assert len(run["snapshots"]) == 1 and run["snapshots"][0]["step"] == 0
    w, b = _params(run["snapshots"][0]["parameters"])
    np.testing.assert_array_equal(w, [1.0, 2.0])
    assert float(b) == 3.0
    assert math.isclose(
        run["history"]["loss"][0],
        float(own_cost("identity", "squared_error", WORKED_X, [1, 2, 3, 4, 5, 6], np.array([1.0, 2]), 3.0)),
    )


def test_record_every_above_steps_gives_start_and_end() -> None:
    p = _problem(ModelName.LINEAR_REGRESSION, "identity", "squared_error", WORKED_X, [1, 2, 3, 4, 5, 6], [0, 0], 0)
    run = descent.gradient_descent(descent.trainable(p), 0.01, 7, record_every=100)
    assert [s["step"] for s in run["snapshots"]] == [0, 7]
    assert run["steps_taken"] == 7 and len(run["history"]["loss"]) == 8


def test_large_tolerance_converges_at_step_zero() -> None:
    p = _problem(ModelName.LINEAR_REGRESSION, "identity", "squared_error", WORKED_X, [1, 2, 3, 4, 5, 6], [0, 0], 0)
    run = descent.gradient_descent(descent.trainable(p), 0.01, 50, record_every=5, gradient_tolerance=1e9)
    assert run["status"] == "converged" and run["steps_taken"] == 0
    assert len(run["snapshots"]) == 1

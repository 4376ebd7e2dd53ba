"""Full single-layer problems: J and its gradients against autograd of the plain cost written here,
against central differences of cost(), and against the worked examples of docs/design/math.md and docs/grading.md.

Parametrised over every compatible pairing (huber at several δ), with and without l1/l2
regularization; softmax with class indices and with target rows; canonical pairings both under their
preset model name and as single_layer.
"""

from __future__ import annotations

from typing import Any

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import elementwise_grad, grad

from service.compute.activations import ActivationName
from service.compute.errors import DomainError, ShapeError
from service.compute.losses import LOSSES, LossName
from service.compute.model_names import ModelName
from service.compute.models import Regularization, build_objective, cost, evaluate, gradients
from service.compute.pairings import CANONICAL, PRESETS, make_pairing
from service.compute.stable import Array
from tests.compute import oracles

pytestmark = pytest.mark.filterwarnings("error")

RTOL, ATOL = 1e-9, 1e-12
LAMBDA = 0.7
KINK_MARGIN = 1e-3


def _cases() -> list[Any]:
    out = []
    for i, (a, lo, p) in enumerate(oracles.compatible_pairings()):
        forms = ["indices", "rows"] if oracles.is_vector(a) else ["values"]
        models = [ModelName.SINGLE_LAYER]
        if (a, lo) in CANONICAL:
            models.insert(0, CANONICAL[(a, lo)].model)
        for form in forms:
            for model in models:
                for reg in (None, "l1", "l2"):
                    case_id = f"{model}-{oracles.pairing_id((a, lo, p))}-{form}-{reg or 'noreg'}"
                    out.append(pytest.param(model, a, lo, p, form, reg, 1000 * i + len(out), id=case_id))
    return out


CASES = _cases()


class Case:
    """A random problem and the oracle's view of it (targets as rows of f's shape)."""

    def __init__(
        self,
        model: ModelName,
        activation: ActivationName,
        loss: LossName,
        params: dict[str, float],
        form: str,
        reg: str | None,
        seed: int,
    ) -> None:
        rng = np.random.default_rng(seed)
        self.activation, self.loss, self.params = activation, loss, params
        self.vector = oracles.is_vector(activation)
        self.reg = None if reg is None else Regularization(reg, LAMBDA)  # type: ignore[arg-type]
        for _ in range(200):  # draw until clear of kinks (relu at 0, |f − y| at 0, |w| at 0 for l1)
            m, n = int(rng.integers(1, 9)), int(rng.integers(1, 5))
            k = int(rng.integers(2, 5)) if self.vector else None
            self.X = rng.normal(0.0, 1.0, (m, n))
            self.w = rng.normal(0.0, 0.7, (n, k) if k else (n,))
            self.b = rng.normal(0.0, 0.5, (k,)) if k else float(rng.normal(0.0, 0.5))
            if form == "indices":
                assert k is not None
                self.y = rng.integers(0, k, m)
                self.Y = np.eye(k)[self.y]
            else:
                self.y = oracles.sample_targets(LOSSES[loss].targets, rng, m, k)
                self.Y = self.y
            z = self.X @ self.w + self.b
            f = np.asarray(oracles.plain_activation(activation, z))
            clear = (
                np.all(oracles.activation_kink_distance(activation, z) > KINK_MARGIN)
                and np.all(oracles.loss_kink_distance(loss, f, self.Y) > KINK_MARGIN)
                and (reg != "l1" or np.all(np.abs(self.w) > KINK_MARGIN))
            )
            if clear:
                break
        else:
            raise AssertionError("could not draw a problem away from kinks")
        self.m = m
        self.objective = build_objective(
            model, make_pairing(activation, loss, params), self.X, self.y, self.w, self.b, self.reg
        )

    def plain_cost(self) -> Any:
        """J(w, b) = mean_i L(g(x_i·w + b), y_i) + R(w), from the plain formulas."""
        X, Y, m, reg = self.X, self.Y, self.m, self.reg

        def J(w: Any, b: Any) -> Any:
            f = oracles.plain_activation(self.activation, anp.dot(X, w) + b)
            out = anp.mean(oracles.plain_loss(self.loss, f, Y, self.params))
            if reg is not None and reg.kind == "l2":
                out = out + reg.lam / (2 * m) * anp.sum(w**2)
            elif reg is not None:
                out = out + reg.lam / m * anp.sum(anp.abs(w))
            return out

        return J


@pytest.mark.parametrize(("model", "activation", "loss", "params", "form", "reg", "seed"), CASES)
def test_matches_autograd_of_plain_cost(
    model: ModelName,
    activation: ActivationName,
    loss: LossName,
    params: dict[str, float],
    form: str,
    reg: str | None,
    seed: int,
) -> None:
    c = Case(model, activation, loss, params, form, reg, seed)
    J = c.plain_cost()
    # evaluate, and the one-pass path (no per-example arrays), against the same oracle
    for ev in (evaluate(c.objective), gradients(c.objective)):
        assert isinstance(ev.loss, float)
        np.testing.assert_allclose(ev.loss, J(c.w, c.b), rtol=RTOL, atol=ATOL)
        assert ev.grad_w.shape == c.w.shape and ev.grad_b.shape == np.shape(c.b)
        np.testing.assert_allclose(ev.grad_w, grad(J, 0)(c.w, c.b), rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(ev.grad_b, grad(J, 1)(c.w, c.b), rtol=RTOL, atol=ATOL)
    # cost() at the problem's parameters and elsewhere
    np.testing.assert_allclose(cost(c.objective), J(c.w, c.b), rtol=RTOL, atol=ATOL)
    w2, b2 = 0.5 * c.w + 0.1, np.asarray(c.b) * 0.5 - 0.1
    np.testing.assert_allclose(cost(c.objective, [w2], [b2]), J(w2, b2), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(("model", "activation", "loss", "params", "form", "reg", "seed"), CASES)
def test_per_example_arrays(
    model: ModelName,
    activation: ActivationName,
    loss: LossName,
    params: dict[str, float],
    form: str,
    reg: str | None,
    seed: int,
) -> None:
    """z, f, per-sample L, ∂L/∂z and the split of J and ∂J/∂w into data and regularization terms."""
    c = Case(model, activation, loss, params, form, reg, seed)
    ev = evaluate(c.objective)
    z = c.X @ c.w + c.b
    np.testing.assert_allclose(ev.z, z, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(ev.f, oracles.plain_activation(activation, z), rtol=RTOL, atol=ATOL)
    per_example = lambda zz: oracles.plain_loss(loss, oracles.plain_activation(activation, zz), c.Y, params)  # noqa: E731
    np.testing.assert_allclose(ev.per_sample_loss, per_example(z), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(ev.dL_dz, elementwise_grad(per_example)(z), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(ev.data_loss, np.mean(per_example(z)), rtol=RTOL, atol=ATOL)
    if c.reg is None:
        assert ev.regularization_loss == 0.0 and ev.grad_w_regularization is None
        np.testing.assert_array_equal(ev.grad_w, ev.grad_w_data)
        return
    if c.reg.kind == "l2":
        R, dR = LAMBDA / (2 * c.m) * np.sum(c.w**2), LAMBDA / c.m * c.w
    else:
        R, dR = LAMBDA / c.m * np.sum(np.abs(c.w)), LAMBDA / c.m * np.sign(c.w)
    np.testing.assert_allclose(ev.regularization_loss, R, rtol=1e-13)
    assert ev.grad_w_regularization is not None
    np.testing.assert_allclose(ev.grad_w_regularization, dR, rtol=1e-13)
    np.testing.assert_allclose(ev.loss, ev.data_loss + ev.regularization_loss, rtol=1e-15)
    np.testing.assert_allclose(ev.grad_w, ev.grad_w_data + ev.grad_w_regularization, rtol=1e-15)


@pytest.mark.parametrize(("model", "activation", "loss", "params", "form", "reg", "seed"), CASES)
def test_matches_finite_differences_of_cost(
    model: ModelName,
    activation: ActivationName,
    loss: LossName,
    params: dict[str, float],
    form: str,
    reg: str | None,
    seed: int,
) -> None:
    c = Case(model, activation, loss, params, form, reg, seed)
    ev = evaluate(c.objective)
    for name, theta, analytic in (("w", c.w, ev.grad_w), ("b", np.asarray(c.b, dtype=float), ev.grad_b)):
        for idx in np.ndindex(theta.shape):
            h = 1e-6 * max(1.0, abs(float(theta[idx])))
            tp, tm = theta.copy(), theta.copy()
            tp[idx] += h
            tm[idx] -= h
            step = float(tp[idx] - tm[idx])
            if name == "w":
                Jp, Jm = cost(c.objective, Ws=[tp]), cost(c.objective, Ws=[tm])
            else:
                Jp, Jm = cost(c.objective, bs=[tp]), cost(c.objective, bs=[tm])
            numeric = (Jp - Jm) / step
            noise = 8 * oracles.EPS * max(abs(Jp), abs(Jm)) / step
            a = float(analytic[idx])
            assert oracles.fd_agrees(a, numeric, noise), f"dJ/d{name}{list(idx)}: analytic {a}, numeric {numeric}"


# --- the worked examples ---------------------------------------------------------------------

COURSE_X = [[0.5, 1.5], [1, 1], [1.5, 0.5], [3, 0.5], [2, 2], [1, 2.5]]
COURSE_Y = [0, 0, 0, 1, 1, 1]


def _logistic(w: list[float], b: float, reg: Regularization | None = None):
    pairing = make_pairing(*PRESETS[ModelName.LOGISTIC_REGRESSION])
    return build_objective(ModelName.LOGISTIC_REGRESSION, pairing, COURSE_X, COURSE_Y, w, b, reg)


def test_math_worked_example_gradients() -> None:
    ev = evaluate(_logistic([2.0, 3.0], 1.0))
    np.testing.assert_allclose(ev.grad_w, [0.498333393278696, 0.49883942983996693], rtol=1e-14, atol=0)
    np.testing.assert_allclose(ev.grad_b, 0.49861806546328574, rtol=1e-14, atol=0)


def test_math_worked_example_cost() -> None:
    p = _logistic([1.0, 1.0], -3.0)
    np.testing.assert_allclose(evaluate(p).loss, 0.3668667864055175, rtol=1e-14, atol=0)
    np.testing.assert_allclose(cost(p), 0.3668667864055175, rtol=1e-14, atol=0)


def test_api_grade_example_values() -> None:
    """docs/grading.md's /grade example at w = [1, 1], b = −3: the learner's loss and dJ/dw are right, and
    their dJ/db is the sum over the 6 examples instead of the mean (the example's missing_mean)."""
    ev = evaluate(_logistic([1.0, 1.0], -3.0))
    np.testing.assert_allclose(ev.loss, 0.36686678640551745, rtol=1e-14, atol=0)
    np.testing.assert_allclose(ev.grad_w, [-0.20687020897043107, -0.14394676417074018], rtol=1e-14, atol=0)
    np.testing.assert_allclose(6 * ev.grad_b, -0.2171984948563006, rtol=1e-14, atol=0)


def test_api_gradient_example_with_l2() -> None:
    """docs/design/math.md's /gradient example: l2 with λ = 0.7 at w = [2, 3], b = 1; b is not regularized."""
    ev = evaluate(_logistic([2.0, 3.0], 1.0, Regularization("l2", 0.7)))
    np.testing.assert_allclose(ev.loss, 3.7597173539786217, rtol=1e-14, atol=0)
    np.testing.assert_allclose(ev.grad_w, [0.7316667266120294, 0.8488394298399669], rtol=1e-14, atol=0)
    np.testing.assert_allclose(ev.grad_b, 0.49861806546328574, rtol=1e-14, atol=0)


@pytest.mark.parametrize("kind", ["l1", "l2"])
def test_bias_is_never_regularized(kind: str) -> None:
    rng = np.random.default_rng(7)
    X, w = rng.normal(size=(5, 3)), rng.normal(size=3)
    for b in (-2.0, 0.0, 3.0):
        plain = evaluate(_problem_lin(X, w, b, None))
        reg = evaluate(_problem_lin(X, w, b, Regularization(kind, 2.5)))  # type: ignore[arg-type]
        np.testing.assert_allclose(reg.grad_b, plain.grad_b, rtol=1e-15, atol=0)
        R = 2.5 / (2 * 5) * np.sum(w**2) if kind == "l2" else 2.5 / 5 * np.sum(np.abs(w))
        np.testing.assert_allclose(reg.loss - plain.loss, R, rtol=1e-12)
        # and R does not change with b
        np.testing.assert_allclose(reg.regularization_loss, R, rtol=1e-14)


def test_l1_subgradient_at_zero_weight_is_zero() -> None:
    X = np.array([[1.0, 2.0], [0.5, -1.0]])
    ev = evaluate(_problem_lin(X, np.array([0.0, 1.5]), 0.0, Regularization("l1", 1.0)))
    assert ev.grad_w_regularization is not None
    np.testing.assert_array_equal(ev.grad_w_regularization, [0.0, 0.5])


def test_lambda_zero_equals_no_regularization() -> None:
    rng = np.random.default_rng(8)
    X, w = rng.normal(size=(4, 2)), rng.normal(size=2)
    a = evaluate(_problem_lin(X, w, 0.3, None))
    for kind in ("l1", "l2"):
        b = evaluate(_problem_lin(X, w, 0.3, Regularization(kind, 0.0)))  # type: ignore[arg-type]
        assert b.loss == a.loss
        np.testing.assert_array_equal(b.grad_w, a.grad_w)


def test_evaluate_does_not_modify_the_problem() -> None:
    rng = np.random.default_rng(9)
    X, w = rng.normal(size=(4, 2)), rng.normal(size=2)
    p = _problem_lin(X, w, 0.3, Regularization("l2", 1.0))
    saved = [a.copy() for a in (p.X, p.y, p.w, p.b)]
    evaluate(p)
    cost(p, Ws=[w + 1.0], bs=[np.asarray(2.0)])
    for a, s in zip((p.X, p.y, p.w, p.b), saved, strict=True):
        np.testing.assert_array_equal(a, s)


def _problem_lin(X: Array, w: Array, b: float, reg: Regularization | None):
    y = np.linspace(-1.0, 1.0, X.shape[0])
    return build_objective(ModelName.LINEAR_REGRESSION, make_pairing("identity", "squared_error"), X, y, w, b, reg)


# --- validation: shapes and target domains ---------------------------------------------------


def _build(activation: str, loss: str, X: Any, y: Any, w: Any, b: Any, reg: Regularization | None = None):
    return build_objective(ModelName.SINGLE_LAYER, make_pairing(activation, loss), X, y, w, b, reg)


X2 = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]

SHAPE_ERRORS = {
    "X is 1-D": ("identity", "squared_error", [1.0, 2.0], [0.0, 1.0], [1.0], 0.0),
    "X is empty": ("identity", "squared_error", np.zeros((0, 2)), np.zeros(0), [1.0, 1.0], 0.0),
    "X has no columns": ("identity", "squared_error", np.zeros((2, 0)), [0.0, 1.0], np.zeros(0), 0.0),
    "w too short": ("identity", "squared_error", X2, [0.0, 1.0, 2.0], [1.0], 0.0),
    "w too long": ("identity", "squared_error", X2, [0.0, 1.0, 2.0], [1.0, 2.0, 3.0], 0.0),
    "w is a matrix for one output": ("identity", "squared_error", X2, [0.0, 1.0, 2.0], [[1.0], [2.0]], 0.0),
    "b is a list for one output": ("identity", "squared_error", X2, [0.0, 1.0, 2.0], [1.0, 2.0], [0.0]),
    "y too short": ("identity", "squared_error", X2, [0.0, 1.0], [1.0, 2.0], 0.0),
    "y too long": ("sigmoid", "binary_cross_entropy", X2, [0.0, 1.0, 1.0, 0.0], [1.0, 2.0], 0.0),
    "softmax w is a vector": ("softmax", "categorical_cross_entropy", X2, [0, 1, 1], [1.0, 2.0], [0.0, 0.0]),
    "softmax w has one column": ("softmax", "categorical_cross_entropy", X2, [0, 0, 0], [[1.0], [2.0]], [0.0]),
    "softmax w wrong rows": ("softmax", "categorical_cross_entropy", X2, [0, 1, 2], np.ones((3, 3)), np.zeros(3)),
    "softmax b wrong length": ("softmax", "categorical_cross_entropy", X2, [0, 1, 1], np.ones((2, 3)), np.zeros(2)),
    "softmax b is a number": ("softmax", "squared_error", X2, [0, 1, 1], np.ones((2, 3)), 0.0),
    "softmax y too short": ("softmax", "categorical_cross_entropy", X2, [0, 1], np.ones((2, 3)), np.zeros(3)),
}


@pytest.mark.parametrize("args", list(SHAPE_ERRORS.values()), ids=list(SHAPE_ERRORS))
def test_shape_errors(args: tuple) -> None:
    with pytest.raises(ShapeError) as info:
        _build(*args)
    assert info.value.detail and info.value.loc


W3 = np.ones((2, 3))
B3 = np.zeros(3)
DOMAIN_ERRORS = {
    "bce y = 2": ("sigmoid", "binary_cross_entropy", X2, [0.0, 2.0, 1.0], [1.0, 1.0], 0.0, [1]),
    "bce y = -0.1": ("sigmoid", "binary_cross_entropy", X2, [0.0, -0.1, 1.0], [1.0, 1.0], 0.0, [1]),
    "poisson y = -1": ("exp", "poisson", X2, [0.0, 3.0, -1.0], [1.0, 1.0], 0.0, [2]),
    "sigmoid+poisson y = -1": ("sigmoid", "poisson", X2, [-1.0, 3.0, -1.0], [1.0, 1.0], 0.0, [0, 2]),
    "class index = k": ("softmax", "categorical_cross_entropy", X2, [0, 3, 1], W3, B3, [1]),
    "class index > k": ("softmax", "squared_error", X2, [0, 1, 7], W3, B3, [2]),
    "class index < 0": ("softmax", "categorical_cross_entropy", X2, [0, -1, 1], W3, B3, [1]),
    "class index not an integer": ("softmax", "categorical_cross_entropy", X2, [0, 0.5, 1], W3, B3, [1]),
    "row does not sum to 1": (
        "softmax",
        "categorical_cross_entropy",
        X2,
        [[1, 0, 0], [0.5, 0.4, 0.0], [0, 0, 1]],
        W3,
        B3,
        [1],
    ),
    "row sums to 1 + 1e-6": (
        "softmax",
        "categorical_cross_entropy",
        X2,
        [[1, 0, 0], [0.5, 0.5 + 1e-6, 0.0], [0, 0, 1]],
        W3,
        B3,
        [1],
    ),
    "row with a negative entry": (
        "softmax",
        "categorical_cross_entropy",
        X2,
        [[1, 0, 0], [-0.5, 1.5, 0.0], [0, 0, 1]],
        W3,
        B3,
        [1],
    ),
    "NaN in X": ("identity", "squared_error", [[1.0, np.nan], [1.0, 2.0], [0.0, 0.0]], [0, 0, 0], [1, 1], 0.0, None),
    "inf in y": ("identity", "squared_error", X2, [0.0, np.inf, 0.0], [1.0, 1.0], 0.0, None),
    "inf in w": ("identity", "squared_error", X2, [0.0, 1.0, 0.0], [1.0, np.inf], 0.0, None),
    "NaN in b": ("identity", "squared_error", X2, [0.0, 1.0, 0.0], [1.0, 1.0], np.nan, None),
}


@pytest.mark.parametrize("args", list(DOMAIN_ERRORS.values()), ids=list(DOMAIN_ERRORS))
def test_domain_errors(args: tuple) -> None:
    *build_args, examples = args
    with pytest.raises(DomainError) as info:
        _build(*build_args)
    assert info.value.detail and info.value.loc
    if examples is not None:
        assert sorted(set(info.value.examples)) == examples  # (one entry per bad value: may repeat)
        assert info.value.loc[:3] == ("data", "y", examples[0])


def test_row_summing_to_one_within_tolerance_is_accepted() -> None:
    y = [[1, 0, 0], [0.3, 0.3, 0.4 + 5e-10], [0, 0, 1]]
    _build("softmax", "categorical_cross_entropy", X2, y, W3, B3)


def test_squared_error_rows_need_not_be_probabilities() -> None:
    y = [[3.0, -1.0, 0.0], [0.5, 0.5, 0.5], [0, 0, 1]]
    p = _build("softmax", "squared_error", X2, y, W3, B3)
    np.testing.assert_array_equal(p.y, y)


def test_class_indices_become_one_hot_rows() -> None:
    p = _build("softmax", "categorical_cross_entropy", X2, [2, 0, 1], W3, B3)
    np.testing.assert_array_equal(p.y, [[0, 0, 1], [1, 0, 0], [0, 1, 0]])


@pytest.mark.parametrize("lam", [-0.1, np.inf, np.nan])
def test_bad_lambda_is_a_domain_error(lam: float) -> None:
    with pytest.raises(DomainError):
        _build("identity", "squared_error", X2, [0.0, 1.0, 0.0], [1.0, 1.0], 0.0, Regularization("l2", lam))


def test_target_column_for_one_output_is_refused() -> None:
    """y given as an m×1 column where m numbers are expected (either error class is acceptable)."""
    with pytest.raises((ShapeError, DomainError)):
        _build("identity", "squared_error", X2, [[0.0], [1.0], [0.0]], [1.0, 1.0], 0.0)


def test_scalar_y_is_a_shape_error() -> None:
    with pytest.raises(ShapeError):
        _build("identity", "squared_error", [[1.0, 2.0]], 1.0, [1.0, 1.0], 0.0)


@pytest.mark.parametrize("loss", ["categorical_cross_entropy", "squared_error"])
def test_three_dimensional_y_is_a_shape_error(loss: str) -> None:
    y = np.eye(2)[:, :, None]  # 2 examples, k = 2, one extra axis
    with pytest.raises(ShapeError):
        _build("softmax", loss, [[1.0], [2.0]], y, [[1.0, 2.0]], [0.0, 0.0])

"""Extreme inputs against mpmath references of the PLAIN formulas, evaluated at a precision high
enough that nothing cancels (1 − σ(z) at z = 800 needs ~350 digits; mpmath's exponent range is
unbounded, so e^(1e5) is an ordinary number there). Past |z| = 2000 the references use exact
identities instead of ever more digits (see precision_for).

Logistic regression must be exact (rtol 1e-12) at |z| up to 1e5 for hard and soft labels; the other
canonical pairings and a few non-canonical ones likewise; a true overflow is a NonFiniteResult
naming the quantity and the examples, never an inf, a NaN or a warning.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import mpmath
import numpy as np
import pytest

from service.compute.activations import ACTIVATIONS, ActivationName
from service.compute.domains import Interval, Simplex
from service.compute.errors import NonFiniteResult
from service.compute.losses import LOSSES, LossName, make_loss
from service.compute.model_names import ModelName
from service.compute.models import Regularization, build_objective, cost, evaluate
from service.compute.pairings import make_pairing

pytestmark = pytest.mark.filterwarnings("error")

mpf = mpmath.mpf
RTOL = 1e-12
TINY = 2.0**-1074  # one subnormal step: references that underflow compare equal to 0


PLAIN_LIMIT = 2000.0  # |z| up to which the plain formulas are evaluated at full precision


@contextmanager
def precision_for(*zs: float) -> Iterator[None]:
    """Enough digits that e^(−2|z|) still shows next to 1, so the plain formulas do not cancel.

    Past |z| = 2000 that would take tens of thousands of digits (seconds per value): there the
    references switch to exact identities (1 − σ(z) = σ(−z), log(1 + e^z) = log1p(e^z)) at 60 digits;
    test_reference_identities checks the two forms agree where both are cheap.
    """
    big = max(abs(float(z)) for z in zs)
    with mpmath.workdps(60 + (int(0.87 * big) if big <= PLAIN_LIMIT else 0)):
        yield


def close(actual: float | np.ndarray, reference: object, rtol: float = RTOL, scale: object = None) -> bool:
    """|a − r| ≤ rtol·max(|r|, scale) + one subnormal step, with r rounded from mpmath; an infinite
    reference (a true overflow) must be matched exactly."""
    a = float(actual)
    r = float(reference)  # type: ignore[arg-type]
    if not np.isfinite(r):
        return a == r
    s = abs(r) if scale is None else max(abs(r), float(scale))  # type: ignore[arg-type]
    return abs(a - r) <= rtol * s + TINY


def assert_close(actual: object, reference: object, what: str, rtol: float = RTOL, scale: object = None) -> None:
    assert close(actual, reference, rtol, scale), f"{what}: got {float(actual)!r}, expected {float(reference)!r}"  # type: ignore[arg-type]


# --- plain formulas in mpmath ----------------------------------------------------------------


def _plain(z: mpf) -> bool:
    return abs(z) <= PLAIN_LIMIT


def mp_sigmoid(z: mpf) -> mpf:
    return 1 / (1 + mpmath.exp(-z))


def mp_one_minus_sigmoid(z: mpf) -> mpf:
    return 1 - mp_sigmoid(z) if _plain(z) else 1 / (1 + mpmath.exp(z))


def mp_tanh(z: mpf) -> mpf:
    return (mpmath.exp(z) - mpmath.exp(-z)) / (mpmath.exp(z) + mpmath.exp(-z))


def mp_softplus(z: mpf) -> mpf:
    if _plain(z):
        return mpmath.log(1 + mpmath.exp(z))
    return mpmath.log1p(mpmath.exp(z)) if z < 0 else z + mpmath.log1p(mpmath.exp(-z))


# value and derivative of each scalar activation, from docs/design/math.md's table
MP_ACTIVATIONS: dict[str, tuple[Callable[[mpf], mpf], Callable[[mpf], mpf]]] = {
    "identity": (lambda z: z, lambda z: mpf(1)),
    "sigmoid": (mp_sigmoid, lambda z: mp_sigmoid(z) * mp_one_minus_sigmoid(z)),
    "tanh": (mp_tanh, lambda z: 1 - mp_tanh(z) ** 2),
    "relu": (lambda z: z if z > 0 else mpf(0), lambda z: mpf(1) if z > 0 else mpf(0)),
    "exp": (mpmath.exp, mpmath.exp),
    "softplus": (mp_softplus, lambda z: 1 / (1 + mpmath.exp(-z))),
}


@pytest.mark.parametrize("z", [30.0, -30.0, 700.0, -700.0, 800.0, -800.0, 1999.0, -1999.0])
def test_reference_identities(z: float) -> None:
    """The identities used past |z| = 2000 agree with the plain formulas where those are cheap."""
    with precision_for(z):
        zz = mpf(z)
        plain = (1 - mp_sigmoid(zz), mpmath.log(1 + mpmath.exp(zz)))
    with mpmath.workdps(60):
        zz = mpf(z)
        identity = (
            1 / (1 + mpmath.exp(zz)),
            mpmath.log1p(mpmath.exp(zz)) if zz < 0 else zz + mpmath.log1p(mpmath.exp(-zz)),
        )
        for p, i in zip(plain, identity, strict=True):
            assert abs(p - i) <= mpf(10) ** -45 * abs(i)


def mp_softmax(z: Sequence[mpf]) -> list[mpf]:
    e = [mpmath.exp(v) for v in z]
    s = sum(e)
    return [v / s for v in e]


def mp_bce(z: mpf, y: mpf) -> mpf:
    """−y log f − (1 − y) log(1 − f) with f = σ(z); a term with a zero coefficient is 0."""
    out = mpf(0)
    if y != 0:
        out -= y * mpmath.log(mp_sigmoid(z))
    if y != 1:
        out -= (1 - y) * mpmath.log(mp_one_minus_sigmoid(z))
    return out


def mp_poisson(f: mpf, y: mpf) -> mpf:
    return f - y * mpmath.log(f) if y != 0 else f


def _problem_1(model: ModelName, activation: str, loss: str, z: float, y: float):
    """One example with z exactly as given: x = [1], w = [z], b = 0."""
    return build_objective(model, make_pairing(activation, loss), [[1.0]], [y], [z], 0.0)


# --- logistic regression ---------------------------------------------------------------------

BIG_Z = [30.0, -30.0, 100.0, -100.0, 700.0, -700.0, 800.0, -800.0, 1e5, -1e5]
LABELS = [0.0, 1.0, 0.3, 0.5, 0.9]


@pytest.mark.parametrize("y", LABELS)
@pytest.mark.parametrize("z", BIG_Z)
def test_logistic_regression_is_exact_at_extreme_z(z: float, y: float) -> None:
    ev = evaluate(_problem_1(ModelName.LOGISTIC_REGRESSION, "sigmoid", "binary_cross_entropy", z, y))
    with precision_for(z):
        zz, yy = mpf(z), mpf(y)
        f = mp_sigmoid(zz)
        L = mp_bce(zz, yy)
        r = f - yy
        assert_close(ev.f[0], f, "f")
        assert_close(ev.loss, L, "J")
        assert_close(ev.per_sample_loss[0], L, "L")
        assert_close(ev.dL_dz[0], r, "dL/dz")
        assert_close(ev.grad_w[0], r, "dJ/dw")
        assert_close(ev.grad_b, r, "dJ/db")


@pytest.mark.parametrize("reg", [None, "l2"])
def test_logistic_regression_aggregates_extreme_examples(reg: str | None) -> None:
    """All the extreme examples in one problem: x_i = z_i, w = [1], b = 0, so J and ∂J/∂w mix
    losses from 1e-300 to 1e5 and gradients with mixed signs."""
    zs = [z for z in BIG_Z for _ in LABELS]
    ys = [y for _ in BIG_Z for y in LABELS]
    m = len(zs)
    regularization = None if reg is None else Regularization("l2", 0.5)
    objective = build_objective(
        ModelName.LOGISTIC_REGRESSION,
        make_pairing("sigmoid", "binary_cross_entropy"),
        np.array(zs)[:, None],
        ys,
        [1.0],
        0.0,
        regularization,
    )
    ev = evaluate(objective)
    Ls, rs = [], []
    for z, y in zip(zs, ys, strict=True):
        with precision_for(z):  # each example at the precision it needs; the sums at 60 digits
            f = mp_sigmoid(mpf(z))
            Ls.append(mp_bce(mpf(z), mpf(y)))
            rs.append(f - mpf(y))
    with mpmath.workdps(60):
        R = mpf(0.5) / (2 * m) if reg else mpf(0)
        dR = mpf(0.5) / m if reg else mpf(0)
        J = sum(Ls) / m + R
        gw = sum(r * mpf(z) for r, z in zip(rs, zs, strict=True)) / m + dR
        gb = sum(rs) / m
        # the mean of mixed-sign terms is conditioned by Σ|terms|: compare at that scale
        assert_close(ev.loss, J, "J")
        assert_close(cost(objective), J, "cost()")
        assert_close(ev.grad_w[0], gw, "dJ/dw", scale=sum(abs(r * z) for r, z in zip(rs, zs, strict=True)) / m)
        assert_close(ev.grad_b, gb, "dJ/db", scale=sum(abs(r) for r in rs) / m)


# --- the other canonical pairings ------------------------------------------------------------


@pytest.mark.parametrize(
    ("z", "y"),
    [(1e150, -1e150), (-1e150, 3.0), (1e5, 1e5 + 1.0), (-30.0, 30.0), (1e-300, -1e-300), (1e153, 0.0)],
)
def test_linear_regression_at_extremes(z: float, y: float) -> None:
    ev = evaluate(_problem_1(ModelName.LINEAR_REGRESSION, "identity", "squared_error", z, y))
    with mpmath.workdps(60):
        r = mpf(z) - mpf(y)
        assert_close(ev.loss, r * r / 2, "J")
        assert_close(ev.dL_dz[0], r, "dL/dz")
        assert_close(ev.grad_w[0], r, "dJ/dw")


@pytest.mark.parametrize("y", [0.0, 1.0, 2.5, 1e3])
@pytest.mark.parametrize("z", [-1e5, -800.0, -700.0, -100.0, -30.0, 0.5, 30.0, 100.0, 700.0, 709.0])
def test_poisson_regression_at_extremes(z: float, y: float) -> None:
    ev = evaluate(_problem_1(ModelName.POISSON_REGRESSION, "exp", "poisson", z, y))
    with precision_for(z):
        f = mpmath.exp(mpf(z))
        L = mp_poisson(f, mpf(y))
        r = f - mpf(y)
        assert_close(ev.f[0], f, "f")
        assert_close(ev.loss, L, "J")
        assert_close(ev.dL_dz[0], r, "dL/dz")
        assert_close(ev.grad_b, r, "dJ/db")


SOFTMAX_ROWS = [
    [0.0, 1e4, -1e4],
    [1e4, 1e4 + 1.0, 0.0],
    [-1e4, 0.0, 1e4],
    [5e3, -5e3, 5e3],
    [1e4, 0.0, 0.0],
    [-1e4, -1e4, -1e4],
]


@pytest.mark.parametrize("target", ["class0", "class1", "class2", "soft"])
@pytest.mark.parametrize("row", SOFTMAX_ROWS, ids=str)
def test_softmax_regression_with_logits_differing_by_1e4(row: list[float], target: str) -> None:
    y = [0.2, 0.5, 0.3] if target == "soft" else [float(target == f"class{j}") for j in range(3)]
    objective = build_objective(
        ModelName.SOFTMAX_REGRESSION,
        make_pairing("softmax", "categorical_cross_entropy"),
        [[1.0]],
        [y],
        [row],
        [0.0, 0.0, 0.0],
    )
    ev = evaluate(objective)
    with precision_for(max(row) - min(row)):
        f = mp_softmax([mpf(v) for v in row])
        yy = [mpf(v) for v in y]
        L = -sum(yk * mpmath.log(fk) for yk, fk in zip(yy, f, strict=True) if yk != 0)
        # J = logsumexp(z) − Σ y_k z_k is computed at the scale of z: rounding z_k by one ulp moves
        # J by (f_k − y_k)·ulp(z_k), so compare J at that scale (the residuals need no such allowance).
        cond = sum(abs(fk - yk) * abs(mpf(zk)) for fk, yk, zk in zip(f, yy, row, strict=True))
        assert_close(ev.loss, L, "J", scale=cond)
        for j in range(3):
            assert_close(ev.f[0, j], f[j], f"f[{j}]")
            assert_close(ev.dL_dz[0, j], f[j] - yy[j], f"dL/dz[{j}]")
            assert_close(ev.grad_b[j], f[j] - yy[j], f"dJ/db[{j}]")


@pytest.mark.parametrize("gap", [30.0, 100.0])
def test_softmax_regression_small_residuals_are_exact(gap: float) -> None:
    objective = build_objective(
        ModelName.SOFTMAX_REGRESSION,
        make_pairing("softmax", "categorical_cross_entropy"),
        [[1.0]],
        [1],
        [[0.0, gap]],
        [0.0, 0.0],
    )
    ev = evaluate(objective)
    with precision_for(gap):
        f = mp_softmax([mpf(0), mpf(gap)])
        assert_close(ev.loss, -mpmath.log(f[1]), "J")  # log(1 + e^−gap)
        assert_close(ev.dL_dz[0, 0], f[0], "dL/dz[0]")
        assert_close(ev.dL_dz[0, 1], f[1] - 1, "dL/dz[1]")  # −σ(−gap)


@pytest.mark.parametrize(("row", "y"), [([30.0, -1.0, 0.0], [0.3, -1.2, 2.0]), ([100.0, 1.0, 0.0], [0.5, 0.2, -0.7])])
def test_softmax_squared_error_dominant_entry_is_exact(row: list[float], y: list[float]) -> None:
    _, _, r = make_pairing("softmax", "squared_error").forward_backward(np.array([row]), np.array([y]))
    with precision_for(max(row) - min(row)):
        f = mp_softmax([mpf(v) for v in row])
        d = [fk - mpf(yk) for fk, yk in zip(f, y, strict=True)]
        fd = sum(fk * dk for fk, dk in zip(f, d, strict=True))
        for j in range(3):
            assert_close(r[0, j], f[j] * (d[j] - fd), f"dL/dz[{j}]")


# --- non-canonical pairings ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("z", "y"),
    [(z, y) for z in [-1e5, -800.0, -100.0, -30.0, 30.0, 100.0, 800.0, 1e5] for y in [0.0, 1.0, 3.5]],
)
def test_sigmoid_poisson_at_extremes(z: float, y: float) -> None:
    ev = evaluate(_problem_1(ModelName.SINGLE_LAYER, "sigmoid", "poisson", z, y))
    with precision_for(z):
        zz, yy = mpf(z), mpf(y)
        s, s_neg = mp_sigmoid(zz), mp_one_minus_sigmoid(zz)
        assert_close(ev.loss, mp_poisson(s, yy), "J")
        assert_close(ev.dL_dz[0], (1 - yy / s) * s * s_neg, "dL/dz")


@pytest.mark.parametrize("y", [0.0, 1.0, 3.5])
@pytest.mark.parametrize("z", [-1e5, -800.0, -745.0, -100.0, -38.0, -36.0, -30.0, 30.0, 100.0, 800.0])
def test_softplus_poisson_at_extremes(z: float, y: float) -> None:
    ev = evaluate(_problem_1(ModelName.SINGLE_LAYER, "softplus", "poisson", z, y))
    with precision_for(z):
        sp = mp_softplus(mpf(z))
        yy = mpf(y)
        assert_close(ev.loss, mp_poisson(sp, yy), "J")
        assert_close(ev.dL_dz[0], (1 - yy / sp) / (1 + mpmath.exp(-mpf(z))), "dL/dz")


@pytest.mark.parametrize("y", [0.0, 0.5, -2.0])
@pytest.mark.parametrize("z", [-1000.0, -30.0, 30.0, 1000.0])
def test_tanh_squared_error_at_extremes(z: float, y: float) -> None:
    ev = evaluate(_problem_1(ModelName.SINGLE_LAYER, "tanh", "squared_error", z, y))
    with precision_for(z):
        t = mp_tanh(mpf(z))
        d = t - mpf(y)
        assert_close(ev.loss, d * d / 2, "J")
        assert_close(ev.dL_dz[0], d * (1 - t * t), "dL/dz")


@pytest.mark.parametrize("z", [-1e5, -800.0, -30.0, 30.0, 100.0, 700.0])
@pytest.mark.parametrize("loss", ["squared_error", "huber", "absolute_error"])
def test_sigmoid_distance_losses_at_extremes(z: float, loss: str) -> None:
    """df/dz = σ(z)σ(−z) at large |z|, where f(1 − f) would cancel to 0."""
    y = 0.25
    ev = evaluate(_problem_1(ModelName.SINGLE_LAYER, "sigmoid", loss, z, y))
    with precision_for(z):
        s, s_neg = mp_sigmoid(mpf(z)), mp_one_minus_sigmoid(mpf(z))
        dL_df = {"squared_error": s - mpf(y), "huber": s - mpf(y), "absolute_error": mpmath.sign(s - mpf(y))}[loss]
        assert_close(ev.dL_dz[0], dL_df * s * s_neg, "dL/dz")


# --- activations at extreme z ----------------------------------------------------------------

EXTREME_Z = [0.0, 30.0, 100.0, 700.0, 709.0, 710.0, 800.0, 1e5, 1e300]
EXTREME_Z = sorted(EXTREME_Z + [-z for z in EXTREME_Z if z])


@pytest.mark.parametrize("name", [a for a in ACTIVATIONS if not ACTIVATIONS[a].vector], ids=str)
def test_scalar_activations_at_extreme_z(name: ActivationName) -> None:
    """No warning, no NaN; value and derivative as the plain formula gives them (inf only for a true
    overflow, e^z past 709.78)."""
    assert str(name) in MP_ACTIVATIONS, f"add the mpmath formula of {name} to MP_ACTIVATIONS"
    act = ACTIVATIONS[name]
    z = np.array(EXTREME_Z)
    f = act.value(z)
    d = act.derivative(z, f)
    value, derivative = MP_ACTIVATIONS[str(name)]
    for i, zi in enumerate(EXTREME_Z):
        with precision_for(zi):
            assert_close(f[i], value(mpf(zi)), f"{name}({zi})")
            assert_close(d[i], derivative(mpf(zi)), f"{name}'({zi})")


def test_tanh_derivative_at_largest_z_emits_no_warning() -> None:
    tanh = ACTIVATIONS[ActivationName.TANH]
    z = np.array([1e308, -1e308])
    np.testing.assert_array_equal(tanh.derivative(z, tanh.value(z)), [0.0, 0.0])


@pytest.mark.parametrize(
    "row",
    [
        [0.0, 1e4, -1e4],
        [1e300, 0.0, -1e300],
        [7e307, -7e307, 0.0],
        [-1e5, -1e5, -1e5 + 1.0],
        [710.0, 800.0, 0.0],
    ],
    ids=str,
)
def test_softmax_at_extreme_logits(row: list[float]) -> None:
    act = ACTIVATIONS[ActivationName.SOFTMAX]
    z = np.array([row])
    f = act.value(z)
    jac = act.derivative(z, f)
    with mpmath.workdps(60):
        fm = mp_softmax([mpf(v) for v in row])
        for a in range(3):
            assert_close(f[0, a], fm[a], f"f[{a}]")
            for b in range(3):
                assert_close(jac[0, a, b], fm[a] * ((a == b) - fm[b]), f"df[{a}]/dz[{b}]", scale=1e-300)


def test_softmax_regression_with_a_row_spanning_the_float_range() -> None:
    objective = build_objective(
        ModelName.SOFTMAX_REGRESSION,
        make_pairing("softmax", "categorical_cross_entropy"),
        [[1.0]],
        [0],
        [[1e308, -1e308]],
        [0.0, 0.0],
    )
    ev = evaluate(objective)  # true values: f = [1, 0], L = 0, dL/dz = [0, 0]
    assert ev.loss == 0.0
    np.testing.assert_array_equal(ev.dL_dz, [[0.0, 0.0]])


# --- losses at extreme f and y: no warnings, no NaN -------------------------------------------

_CANDIDATES = [
    -1.7e308, -1e150, -1.0, -1e-300, 0.0, 5e-324, 1e-300, 1e-16, 0.5,
    1.0 - 2.0**-53, 1.0, 1.0 + 2.0**-52, 1e150, 1e300, 1.7e308,
]  # fmt: skip


def _members(space: Interval) -> list[float]:
    return [v for v in _CANDIDATES if bool(space.contains(np.array([v]))[0])]


def _loss_cases() -> list[object]:
    out = []
    for name, cls in LOSSES.items():
        if isinstance(cls.f_domain, Simplex):
            continue
        out.append(pytest.param(name, id=str(name)))
    return out


@pytest.mark.parametrize("name", _loss_cases())
def test_scalar_losses_at_extreme_f_and_y_emit_no_warning_and_no_nan(name: LossName) -> None:
    cls = LOSSES[name]
    assert isinstance(cls.f_domain, Interval) and isinstance(cls.targets, Interval)
    pairs = [(f, y) for f in _members(cls.f_domain) for y in _members(cls.targets)]
    f = np.array([p[0] for p in pairs])
    y = np.array([p[1] for p in pairs])
    loss = make_loss(name)
    L, d = loss.value(f, y), loss.dL_df(f, y)
    assert not np.any(np.isnan(L)) and not np.any(np.isnan(d))


def test_categorical_cross_entropy_at_the_edges_of_the_simplex() -> None:
    loss = make_loss(LossName.CATEGORICAL_CROSS_ENTROPY)
    f = np.array([[1.0, 0.0, 0.0], [1.0 - 2.0**-53, 2.0**-53, 0.0], [5e-324, 0.5, 0.5]])
    y = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.0]])
    L, d = loss.value(f, y), loss.dL_df(f, y)
    assert not np.any(np.isnan(L)) and not np.any(np.isnan(d))
    np.testing.assert_allclose(L[:2], [0.0, 53 * np.log(2)], rtol=1e-15)
    np.testing.assert_array_equal(d[0], [-1.0, 0.0, 0.0])  # 0·log 0 = 0 and ∂/∂f_k = 0 where y_k = 0


# --- true overflows: NonFiniteResult naming the quantity and the examples ---------------------


def test_exp_overflow_names_f_and_the_examples() -> None:
    z = [700.0, 710.0, 1.0, 720.0, -800.0]
    objective = build_objective(
        ModelName.POISSON_REGRESSION, make_pairing("exp", "poisson"), np.array(z)[:, None], [1.0] * 5, [1.0], 0.0
    )
    for call in (evaluate, cost):
        with pytest.raises(NonFiniteResult) as info:
            call(objective)
        assert info.value.quantity == "f"
        assert info.value.examples == [1, 3]
        assert "f" in info.value.detail and "[1, 3]" in info.value.detail


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_z_overflow_names_z(sign: float) -> None:
    X = [[1.0, 0.0], [sign * 1e200, 1.0], [0.0, 1.0]]
    objective = build_objective(
        ModelName.LINEAR_REGRESSION, make_pairing("identity", "squared_error"), X, [0.0, 0.0, 0.0], [1e200, 1.0], 0.0
    )
    with pytest.raises(NonFiniteResult) as info:
        evaluate(objective)
    assert info.value.quantity == "z"
    assert info.value.examples == [1]


def test_z_overflow_with_k_outputs_names_the_examples() -> None:
    objective = build_objective(
        ModelName.SOFTMAX_REGRESSION,
        make_pairing("softmax", "categorical_cross_entropy"),
        [[1.0], [1e200], [2.0]],
        [0, 1, 2],
        [[1.0, 1e200, 0.0]],
        [0.0, 0.0, 0.0],
    )
    with pytest.raises(NonFiniteResult) as info:
        evaluate(objective)
    assert info.value.quantity == "z" and info.value.examples == [1]


def test_squared_error_overflow_names_the_loss() -> None:
    """½(z − y)² past 1.8e308 is not representable: the per-sample loss is refused, not returned as inf."""
    objective = _problem_1(ModelName.LINEAR_REGRESSION, "identity", "squared_error", 1e154, -1e154)
    with pytest.raises(NonFiniteResult) as info:
        evaluate(objective)
    assert info.value.quantity == "per-sample loss" and info.value.examples == [0]


def test_gradient_sum_overflow_is_rescued_when_the_mean_is_representable() -> None:
    """Σ_i r_i x_i overflows although (1/m) Σ_i r_i x_i does not: the mean must still be returned."""
    X = np.array([[1e308], [1e308]])
    objective = build_objective(
        ModelName.LINEAR_REGRESSION, make_pairing("identity", "squared_error"), X, [-1.0, -1.0], [0.0], 0.0
    )
    ev = evaluate(objective)  # r = z − y = 1 for both examples
    np.testing.assert_allclose(ev.grad_w, [1e308], rtol=1e-15)


def test_loss_sum_overflow_is_rescued_when_the_mean_is_representable() -> None:
    z = 1.5e154  # L = ½z² ≈ 1.1e308 each; the sum of two overflows, the mean does not
    objective = build_objective(
        ModelName.LINEAR_REGRESSION,
        make_pairing("identity", "squared_error"),
        [[1.0], [1.0]],
        [0.0, 0.0],
        [z],
        0.0,
    )
    with mpmath.workdps(40):
        expected = mpf(z) ** 2 / 2
    assert_close(evaluate(objective).loss, expected, "J")
    assert_close(cost(objective), expected, "cost()")


def test_huber_with_small_delta_is_finite_when_its_value_is() -> None:
    """δ(|f − y| − δ/2) = 2e307 is representable although f − y = 2e308 is not."""
    objective = build_objective(
        ModelName.SINGLE_LAYER, make_pairing("identity", "huber", {"delta": 0.1}), [[1.0]], [-1e308], [1e308], 0.0
    )
    ev = evaluate(objective)
    np.testing.assert_allclose(ev.loss, 2e307, rtol=1e-12)  # 0.1·(2e308 − 0.05)
    np.testing.assert_array_equal(ev.dL_dz, [0.1])


def test_softmax_squared_error_overflow_emits_no_warning() -> None:
    """½Σ(f − y)² past 1.8e308 is a NonFiniteResult, without a RuntimeWarning on the way."""
    objective = build_objective(
        ModelName.SINGLE_LAYER,
        make_pairing("softmax", "squared_error"),
        [[1.0]],
        [[1e200, 0.0]],
        [[0.0, 0.0]],
        [0.0, 0.0],
    )
    with pytest.raises(NonFiniteResult):
        evaluate(objective)


def test_cost_with_zero_lambda_and_huge_w() -> None:
    """λ = 0 with Σw² overflowing (w = 1e200, x = 1e-200, so z = 1): R = 0, not 0·inf = NaN."""
    objective = build_objective(
        ModelName.LINEAR_REGRESSION,
        make_pairing("identity", "squared_error"),
        [[1e-200]],
        [0.0],
        [1e200],
        0.0,
        Regularization("l2", 0.0),
    )
    assert cost(objective) == 0.5  # z = 1, y = 0
    assert evaluate(objective).loss == 0.5


def test_cost_with_overflowing_regularization_raises() -> None:
    """λ/(2m)Σw² with w = 1e200, λ = 1 is not representable: cost() and evaluate() both refuse it."""
    objective = build_objective(
        ModelName.LINEAR_REGRESSION,
        make_pairing("identity", "squared_error"),
        [[1e-200]],
        [0.0],
        [1e200],
        0.0,
        Regularization("l2", 1.0),
    )
    with pytest.raises(NonFiniteResult):
        evaluate(objective)
    with pytest.raises(NonFiniteResult):
        cost(objective)


def test_poisson_regression_overflow_emits_no_warning() -> None:
    """e^z − y·z at z = 1e300, y = 1e10 is inf − inf inside the kernel: f is reported, with no warning."""
    objective = _problem_1(ModelName.POISSON_REGRESSION, "exp", "poisson", 1e300, 1e10)
    with pytest.raises(NonFiniteResult) as info:
        evaluate(objective)
    assert info.value.quantity == "f"


def test_gradient_overflow_names_examples() -> None:
    """A gradient is indexed by parameter: its NonFiniteResult must not pass a w index off as an
    example. exp+huber with x = [1, 1e5], w = [700, 0]: one example, L = e^700 − ½ and ∂L/∂z = e^700
    are finite, ∂J/∂w_1 = 1e5·e^700 ≈ 1e309 is not."""
    objective = build_objective(
        ModelName.SINGLE_LAYER,
        make_pairing("exp", "huber"),
        [[1.0, 1e5]],
        [0.0],
        [700.0, 0.0],
        0.0,
    )
    with pytest.raises(NonFiniteResult) as info:
        evaluate(objective)
    assert info.value.quantity == "gradients.w"
    assert set(info.value.examples) <= {0}
    assert "[1]" in info.value.detail  # the component that overflows


@pytest.mark.parametrize("call", ["evaluate", "cost"])
def test_regularization_with_underflowing_lambda_over_m(call: str) -> None:
    objective = build_objective(
        ModelName.LINEAR_REGRESSION,
        make_pairing("identity", "squared_error"),
        [[0.0]],
        [0.0],
        [1e200],
        0.0,
        Regularization("l2", 5e-324),
    )
    with mpmath.workdps(40):
        R = mpf(5e-324) / 2 * mpf(1e200) ** 2
    J = evaluate(objective).loss if call == "evaluate" else cost(objective)
    assert_close(J, R, "J = R(w)")

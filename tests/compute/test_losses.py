"""Each loss's value and ∂L/∂f against the plain formula (autograd) and finite differences.

Parametrised over the LOSSES registry and each loss's parameters (huber's δ at its default, ¼ and
4×); f is drawn from the loss's declared f-domain and y from its declared targets. Losses that take
several outputs (those a vector activation can feed) are tested on (m, k) rows as well.
"""

from __future__ import annotations

import numpy as np
import pytest
from autograd import elementwise_grad

from service.compute.activations import ACTIVATIONS
from service.compute.domains import Interval, Simplex
from service.compute.losses import LOSSES, LossName, make_loss
from service.compute.pairings import compatibility
from tests.compute import oracles

pytestmark = pytest.mark.filterwarnings("error")

M = 400
K = 3
KINK_MARGIN = 1e-3
RTOL, ATOL = 1e-9, 1e-12

_VECTOR_ACTS = [a for a, act in ACTIVATIONS.items() if act.vector]


def _takes_rows(name: LossName) -> bool:
    return any(compatibility(a, name)[0] for a in _VECTOR_ACTS)


def _takes_scalars(name: LossName) -> bool:
    return not isinstance(LOSSES[name].f_domain, Simplex)


CASES = [
    pytest.param(name, params, rows, id=f"{name}{'[' + oracles.params_id(params) + ']' if params else ''}-{shape}")
    for name in LOSSES
    for params in oracles.loss_param_sets(name)
    for rows, shape in ((False, "scalar"), (True, "rows"))
    if (rows and _takes_rows(name)) or (not rows and _takes_scalars(name))
]


def _as_tuple(space: Interval | Simplex) -> object:
    if isinstance(space, Simplex):
        return "simplex"
    return (space.lo, space.hi, space.lo_closed, space.hi_closed)


def _inputs(name: LossName, rows: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    cls = LOSSES[name]
    if rows:
        if isinstance(cls.f_domain, Simplex):
            f = oracles.sample_f(cls.f_domain, rng, M, K)
        else:
            f = oracles.sample_f(cls.f_domain, rng, M * K).reshape(M, K)
        y = oracles.sample_targets(cls.targets, rng, M, K)
    else:
        f = oracles.sample_f(cls.f_domain, rng, M)
        y = oracles.sample_targets(cls.targets, rng, M)
    keep = oracles.loss_kink_distance(name, f, y) > KINK_MARGIN
    assert keep.sum() > 0.9 * M
    return f[keep], y[keep]


def test_every_loss_has_an_oracle() -> None:
    missing = [str(n) for n in LOSSES if str(n) not in oracles.LOSS_TERMS]
    assert not missing, f"add the plain formula of {missing} to tests/compute/oracles.py"


@pytest.mark.parametrize("name", list(LOSSES), ids=str)
def test_declared_domains_match_math(name: LossName) -> None:
    assert str(name) in oracles.MATH_DOMAINS, f"add {name} to oracles.MATH_DOMAINS (docs/design/math.md's loss table)"
    targets, f_domain = oracles.MATH_DOMAINS[str(name)]
    assert _as_tuple(LOSSES[name].targets) == targets
    assert _as_tuple(LOSSES[name].f_domain) == f_domain


@pytest.mark.parametrize(("name", "params", "rows"), CASES)
def test_value_matches_plain_formula(name: LossName, params: dict[str, float], rows: bool) -> None:
    f, y = _inputs(name, rows, 1)
    L = make_loss(name, params).value(f, y)
    assert L.shape == (f.shape[0],) and L.dtype == np.float64
    np.testing.assert_allclose(L, oracles.plain_loss(name, f, y, params), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(("name", "params", "rows"), CASES)
def test_dL_df_matches_autograd(name: LossName, params: dict[str, float], rows: bool) -> None:
    f, y = _inputs(name, rows, 2)
    d = make_loss(name, params).dL_df(f, y)
    assert d.shape == f.shape and d.dtype == np.float64
    # Examples are independent, so the gradient of Σ_i L_i with respect to f is ∂L_i/∂f_i.
    expected = elementwise_grad(lambda ff: oracles.plain_loss(name, ff, y, params))(f)
    np.testing.assert_allclose(d, expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(("name", "params", "rows"), CASES)
def test_dL_df_matches_finite_differences(name: LossName, params: dict[str, float], rows: bool) -> None:
    f, y = _inputs(name, rows, 3)
    loss = make_loss(name, params)
    d = loss.dL_df(f, y)
    if not rows:
        est, noise = oracles.central_difference(lambda ff: loss.value(ff, y), f)
        ok = oracles.fd_agrees(d, est, noise)
        assert ok.all(), f"f={f[~ok][:5]}, y={y[~ok][:5]}, analytic={d[~ok][:5]}, numeric={est[~ok][:5]}"
        return
    for col in range(f.shape[1]):
        h = 1e-6 * np.maximum(1.0, np.abs(f[:, col]))
        fp, fm = f.copy(), f.copy()
        fp[:, col] += h
        fm[:, col] -= h
        step = fp[:, col] - fm[:, col]
        Lp, Lm = loss.value(fp, y), loss.value(fm, y)
        est = (Lp - Lm) / step
        noise = 8.0 * oracles.EPS * np.maximum(np.abs(Lp), np.abs(Lm)) / step
        ok = oracles.fd_agrees(d[:, col], est, noise)
        assert ok.all(), f"column {col}: analytic={d[:, col][~ok][:5]}, numeric={est[~ok][:5]}"


@pytest.mark.parametrize("name", [LossName.SQUARED_ERROR, LossName.ABSOLUTE_ERROR, LossName.HUBER], ids=str)
def test_distance_losses_vanish_at_f_equal_y(name: LossName) -> None:
    """Distance losses vanish at f = y and are positive elsewhere (their minimum is at f = y)."""
    loss = make_loss(name)
    y = np.array([-2.0, 0.0, 3.5])
    np.testing.assert_array_equal(loss.value(y.copy(), y), 0.0)
    np.testing.assert_array_equal(loss.dL_df(y.copy(), y), 0.0)  # sign(0) = 0, clip(0) = 0
    assert np.all(loss.value(y + 0.1, y) > 0)


def test_absolute_error_kink_convention() -> None:
    """∂L/∂f = sign(f − y), 0 at f = y (docs/design/math.md)."""
    loss = make_loss(LossName.ABSOLUTE_ERROR)
    f = np.array([1.0, 1.0, 1.0 + 2**-52, 1.0 - 2**-53])
    y = np.array([1.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(loss.dL_df(f, y), [0.0, 1.0, 1.0, -1.0])


def test_huber_branches_and_delta() -> None:
    """½d² inside |d| ≤ δ, δ(|d| − ½δ) outside; ∂L/∂f = clip(d, −δ, δ); default δ = 1."""
    d = np.array([-5.0, -2.0, -0.5, 0.0, 0.5, 2.0, 5.0])
    y = np.full_like(d, 1.5)
    for delta, params in ((1.0, None), (2.0, {"delta": 2.0}), (0.25, {"delta": 0.25})):
        loss = make_loss(LossName.HUBER, params)
        a = np.abs(d)
        expected = np.where(a <= delta, 0.5 * d * d, delta * (a - 0.5 * delta))
        np.testing.assert_allclose(loss.value(y + d, y), expected, rtol=1e-15, atol=0)
        np.testing.assert_allclose(loss.dL_df(y + d, y), np.clip(d, -delta, delta), rtol=1e-15, atol=0)


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_huber_refuses_non_positive_delta(bad: float) -> None:
    with pytest.raises(ValueError):
        make_loss(LossName.HUBER, {"delta": bad})


def test_unknown_loss_parameter_is_refused() -> None:
    with pytest.raises(TypeError):
        make_loss(LossName.SQUARED_ERROR, {"delta": 1.0})


def test_squared_error_has_the_half() -> None:
    """L = ½(f − y)² (the course's convention), not (f − y)²."""
    loss = make_loss(LossName.SQUARED_ERROR)
    assert loss.value(np.array([3.0]), np.array([1.0]))[0] == 2.0


def test_poisson_drops_log_y_factorial() -> None:
    """L = f − y log f: at f = 1, L = 1 whatever y is."""
    loss = make_loss(LossName.POISSON)
    np.testing.assert_array_equal(loss.value(np.ones(4), np.array([0.0, 1.0, 2.0, 7.0])), 1.0)

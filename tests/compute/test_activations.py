"""Each activation's value and derivative against the plain formula (autograd) and finite differences.

Parametrised over the ACTIVATIONS registry: a new activation is tested as soon as its plain formula
is added to tests/compute/oracles.py (the tests fail until it is).
"""

from __future__ import annotations

import numpy as np
import pytest
from autograd import elementwise_grad, jacobian

from service.compute.activations import ACTIVATIONS, ActivationName
from service.compute.domains import Interval, Simplex
from tests.compute import oracles

pytestmark = pytest.mark.filterwarnings("error")

NAMES = list(ACTIVATIONS)
SCALAR = [a for a in NAMES if not ACTIVATIONS[a].vector]
VECTOR = [a for a in NAMES if ACTIVATIONS[a].vector]
M = 400
KINK_MARGIN = 1e-3
RTOL, ATOL = 1e-9, 1e-12


def _z(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 3.0, shape)


def _away_from_kinks(name: ActivationName, z: np.ndarray) -> np.ndarray:
    keep = oracles.activation_kink_distance(name, z) > KINK_MARGIN
    assert keep.sum() > 0.9 * z.shape[0]
    return z[keep]


def test_every_activation_has_an_oracle() -> None:
    missing = [str(a) for a in NAMES if str(a) not in oracles.ACTIVATION_FORMULAS]
    assert not missing, f"add the plain formula of {missing} to tests/compute/oracles.py"


@pytest.mark.parametrize("name", NAMES, ids=str)
def test_declared_range_matches_math(name: ActivationName) -> None:
    assert str(name) in oracles.MATH_RANGES, f"add {name} to oracles.MATH_RANGES (docs/design/math.md's table)"
    expected = oracles.MATH_RANGES[str(name)]
    declared = ACTIVATIONS[name].output_range
    if expected == "simplex":
        assert isinstance(declared, Simplex)
        assert ACTIVATIONS[name].vector
    else:
        assert isinstance(declared, Interval)
        assert (declared.lo, declared.hi, declared.lo_closed, declared.hi_closed) == expected
        assert not ACTIVATIONS[name].vector


@pytest.mark.parametrize("name", SCALAR, ids=str)
def test_scalar_value_matches_plain_formula(name: ActivationName) -> None:
    z = _z(1, (M,))
    f = ACTIVATIONS[name].value(z)
    assert f.shape == z.shape and f.dtype == np.float64
    np.testing.assert_allclose(f, oracles.plain_activation(name, z), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", SCALAR, ids=str)
def test_scalar_derivative_matches_autograd(name: ActivationName) -> None:
    z = _away_from_kinks(name, _z(2, (M,)))
    act = ACTIVATIONS[name]
    d = act.derivative(z, act.value(z))
    assert d.shape == z.shape and d.dtype == np.float64
    expected = elementwise_grad(oracles.activation_formula(name))(z)
    np.testing.assert_allclose(d, expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", SCALAR, ids=str)
def test_scalar_derivative_matches_finite_differences(name: ActivationName) -> None:
    z = _away_from_kinks(name, _z(3, (M,)))
    act = ACTIVATIONS[name]
    d = act.derivative(z, act.value(z))
    est, noise = oracles.central_difference(act.value, z)
    ok = oracles.fd_agrees(d, est, noise)
    assert ok.all(), f"z={z[~ok][:5]}, analytic={d[~ok][:5]}, numeric={est[~ok][:5]}"


@pytest.mark.parametrize("name", SCALAR, ids=str)
def test_values_lie_in_declared_range(name: ActivationName) -> None:
    act = ACTIVATIONS[name]
    rng = act.output_range
    assert isinstance(rng, Interval)
    z = np.concatenate([_z(4, (M,)), [0.0, -1.0, 1.0]])
    assert rng.contains(act.value(z)).all()


@pytest.mark.parametrize("name", VECTOR, ids=str)
@pytest.mark.parametrize("k", [2, 3, 5])
def test_vector_value_matches_plain_formula(name: ActivationName, k: int) -> None:
    z = _z(10 + k, (60, k))
    f = ACTIVATIONS[name].value(z)
    assert f.shape == z.shape
    np.testing.assert_allclose(f, oracles.plain_activation(name, z), rtol=RTOL, atol=ATOL)
    assert np.all(f >= 0) and np.all(f <= 1)
    np.testing.assert_allclose(f.sum(axis=1), 1.0, rtol=0, atol=4 * k * oracles.EPS)


@pytest.mark.parametrize("name", VECTOR, ids=str)
@pytest.mark.parametrize("k", [2, 3, 5])
def test_vector_jacobian_matches_autograd(name: ActivationName, k: int) -> None:
    z = _z(20 + k, (60, k))
    act = ACTIVATIONS[name]
    jac = act.derivative(z, act.value(z))
    assert jac.shape == (z.shape[0], k, k)
    plain_jac = jacobian(oracles.activation_formula(name))
    for i in range(z.shape[0]):
        # jac[i, a, b] = ∂f_a/∂z_b, as autograd.jacobian lays it out.
        np.testing.assert_allclose(jac[i], plain_jac(z[i]), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", VECTOR, ids=str)
def test_vector_jacobian_matches_finite_differences(name: ActivationName) -> None:
    k = 4
    z = _z(30, (80, k))
    act = ACTIVATIONS[name]
    jac = act.derivative(z, act.value(z))
    for col in range(k):
        h = 1e-6 * np.maximum(1.0, np.abs(z[:, col]))
        zp, zm = z.copy(), z.copy()
        zp[:, col] += h
        zm[:, col] -= h
        step = (zp[:, col] - zm[:, col])[:, None]
        fp, fm = act.value(zp), act.value(zm)
        est = (fp - fm) / step
        noise = 8.0 * oracles.EPS * np.maximum(np.abs(fp), np.abs(fm)) / step
        ok = oracles.fd_agrees(jac[:, :, col], est, noise)
        assert ok.all(), f"column {col}: analytic={jac[:, :, col][~ok][:5]}, numeric={est[~ok][:5]}"


def test_relu_kink_convention() -> None:
    """relu'(0) = 0 (docs/design/math.md, as PyTorch); just beside the kink the derivative is 0 or 1."""
    relu = ACTIVATIONS[ActivationName.RELU]
    z = np.array([0.0, -0.0, 1e-300, -1e-300, 5e-324])
    np.testing.assert_array_equal(relu.derivative(z, relu.value(z)), [0.0, 0.0, 1.0, 0.0, 1.0])
    np.testing.assert_array_equal(relu.value(z), [0.0, 0.0, 1e-300, 0.0, 5e-324])


def test_sigmoid_derivative_is_f_one_minus_f_in_the_middle() -> None:
    """docs/design/math.md's step-by-step result df/dz = f(1 − f), where 1 − f does not cancel."""
    sig = ACTIVATIONS[ActivationName.SIGMOID]
    z = np.linspace(-3, 3, 61)
    f = 1.0 / (1.0 + np.exp(-z))
    np.testing.assert_allclose(sig.derivative(z, sig.value(z)), f * (1 - f), rtol=1e-13)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_the_derivative_as_written_is_the_derivative_at_its_own_f(name: ActivationName) -> None:
    """Grading's df/dz from a learner's f: at f = g(z) it is the derivative; for sigmoid, tanh and
    softmax it is the course's formula in f (f(1 − f), 1 − f², diag(f) − f fᵀ) for any f."""
    act = ACTIVATIONS[name]
    rng = np.random.default_rng(5)
    z = rng.normal(size=(7, 3)) if act.vector else rng.normal(size=7) + 0.05
    f = act.value(z)
    np.testing.assert_allclose(act.derivative_as_written(z, f), act.derivative(z, f), rtol=1e-12, atol=1e-15)
    other = np.full_like(f, 0.3)
    if name is ActivationName.SIGMOID:
        expected = other * (1 - other)
    elif name is ActivationName.TANH:
        expected = 1 - other**2
    elif name is ActivationName.SOFTMAX:
        expected = np.einsum("ik,kl->ikl", other, np.eye(3)) - other[:, :, None] * other[:, None, :]
    else:
        return
    np.testing.assert_allclose(act.derivative_as_written(z, other), expected, rtol=1e-15)

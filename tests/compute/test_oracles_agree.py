"""The two writings of the plain formulas agree: tests/oracles.py (numpy, derivatives by hand, used
by the HTTP and grading tests) and tests/compute/oracles.py (autograd.numpy, differentiated by
autograd, used by the compute tests). Every activation and loss of the registries is in both."""

from __future__ import annotations

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import elementwise_grad, jacobian

from service.compute.activations import ACTIVATIONS
from service.compute.losses import LOSSES
from tests import oracles as plain
from tests.compute import oracles as auto

RNG = np.random.default_rng(11)


@pytest.mark.parametrize("name", sorted(str(n) for n in ACTIVATIONS))
def test_activations_agree(name: str) -> None:
    formula = auto.ACTIVATION_FORMULAS[name]
    if name == "softmax":
        z = RNG.normal(size=(5, 3)) * 2
        f, jac = plain.activation(name, z)
        np.testing.assert_allclose(formula(z), f, rtol=1e-12)
        for i in range(5):
            np.testing.assert_allclose(jacobian(formula)(z[i]), jac[i], rtol=1e-10, atol=1e-15)
        return
    z = RNG.normal(size=40) * 3 + 0.01  # away from relu's kink at 0
    f, df = plain.activation(name, z)
    np.testing.assert_allclose(formula(z), f, rtol=1e-12)
    np.testing.assert_allclose(elementwise_grad(formula)(z), df, rtol=1e-10, atol=1e-15)


def _targets(name: str, shape: tuple[int, ...]) -> np.ndarray:
    if name == "binary_cross_entropy":
        return RNG.choice([0.0, 0.3, 1.0], size=shape)
    if name == "categorical_cross_entropy":
        rows = RNG.dirichlet(np.ones(shape[1]), size=shape[0])
        rows[0] = np.eye(shape[1])[0]  # a one-hot row: zeros in y
        return rows
    if name == "poisson":
        return RNG.integers(0, 5, size=shape).astype(float)
    return RNG.normal(size=shape)


@pytest.mark.parametrize("name", sorted(str(n) for n in LOSSES))
def test_losses_agree(name: str) -> None:
    term = auto.LOSS_TERMS[name]
    shape = (6, 3) if name == "categorical_cross_entropy" else (30,)
    if name in ("binary_cross_entropy",):
        f = RNG.uniform(0.05, 0.95, size=shape)
    elif name in ("categorical_cross_entropy",):
        f = RNG.dirichlet(np.ones(3), size=6)
    elif name == "poisson":
        f = RNG.uniform(0.2, 4.0, size=shape)
    else:
        f = RNG.normal(size=shape)
    y = _targets(name, shape)
    L, dL_df = plain.loss(name, f, y)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = term(f, y)
    per_example = np.sum(np.where(np.isnan(terms), 0.0, terms), axis=1) if f.ndim == 2 else terms
    np.testing.assert_allclose(per_example, L, rtol=1e-12, atol=1e-15)
    grad = elementwise_grad(lambda ff: anp.sum(term(ff, y)))(f)
    np.testing.assert_allclose(grad, dL_df, rtol=1e-10, atol=1e-12)

"""Pairings: compatibility against docs/design/math.md, and each compatible pairing's (f, L, ∂L/∂z) against
autograd of the plain composed formula L(g(z), y).

Parametrised over all_pairings() (huber at several δ): a new activation or loss is tested as soon
as its plain formula and its docs/design/math.md row are in tests/compute/oracles.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from autograd import elementwise_grad

from service.compute.activations import ACTIVATIONS, ActivationName
from service.compute.errors import IncompatiblePairing
from service.compute.losses import LOSSES, LossName
from service.compute.pairings import (
    CANONICAL,
    PRESETS,
    ModelName,
    all_pairings,
    compatibility,
    make_pairing,
)
from tests.compute import oracles

pytestmark = pytest.mark.filterwarnings("error")

M = 300
Z_MAX = 15.0
KINK_MARGIN = 1e-3
RTOL, ATOL = 1e-9, 1e-12

COMPATIBLE = oracles.compatible_pairings()
COMPATIBLE_IDS = [oracles.pairing_id(c) for c in COMPATIBLE]
INCOMPATIBLE = [(a, lo, why) for a, lo, ok, why in all_pairings() if not ok]


def _case(activation: ActivationName, loss: LossName, seed: int, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Moderate z (|z| ≤ 15) and targets from the loss's declared target space, away from kinks."""
    rng = np.random.default_rng(seed)
    vector = oracles.is_vector(activation)
    shape = (M, k) if vector else (M,)
    z = np.clip(rng.normal(0.0, 4.0, shape), -Z_MAX, Z_MAX)
    y = oracles.sample_targets(LOSSES[loss].targets, rng, M, k if vector else None)
    f_plain = np.asarray(oracles.plain_activation(activation, z))
    keep = (oracles.activation_kink_distance(activation, z) > KINK_MARGIN) & (
        oracles.loss_kink_distance(loss, f_plain, y) > KINK_MARGIN
    )
    assert keep.sum() > 0.8 * M
    return z[keep], y[keep]


def _composed(activation: ActivationName, loss: LossName, params: dict[str, float], y: np.ndarray):
    return lambda zz: oracles.plain_loss(loss, oracles.plain_activation(activation, zz), y, params)


# --- compatibility ---------------------------------------------------------------------------


def test_all_pairings_lists_every_combination_once() -> None:
    rows = all_pairings()
    keys = [(a, lo) for a, lo, _, _ in rows]
    assert len(keys) == len(set(keys)) == len(ACTIVATIONS) * len(LOSSES)
    assert set(keys) == {(a, lo) for a in ACTIVATIONS for lo in LOSSES}
    for a, lo, ok, why in rows:
        assert (ok, why) == compatibility(a, lo)
        assert (why is None) if ok else (isinstance(why, str) and why.strip())


@pytest.mark.parametrize(("activation", "loss"), [(a, lo) for a, lo, _, _ in all_pairings()], ids=str)
def test_compatibility_follows_math(activation: ActivationName, loss: LossName) -> None:
    assert str(activation) in oracles.MATH_RANGES and str(loss) in oracles.MATH_DOMAINS, "add docs/design/math.md rows"
    assert compatibility(activation, loss)[0] == oracles.math_compatible(activation, loss)


@pytest.mark.parametrize(("activation", "loss", "why"), INCOMPATIBLE, ids=[f"{a}+{lo}" for a, lo, _ in INCOMPATIBLE])
def test_incompatible_pairing_raises_with_reason(activation: ActivationName, loss: LossName, why: str) -> None:
    with pytest.raises(IncompatiblePairing) as info:
        make_pairing(activation, loss)
    assert info.value.detail.strip()
    assert info.value.detail == why
    with pytest.raises(IncompatiblePairing):
        make_pairing(str(activation), str(loss))  # plain strings are accepted as names too


@pytest.mark.parametrize(
    ("activation", "loss", "words"),
    [
        ("identity", "binary_cross_entropy", "log"),  # log of a negative number
        ("relu", "poisson", "log"),  # log 0
        ("tanh", "binary_cross_entropy", "log"),
        ("identity", "poisson", "log"),
        ("sigmoid", "categorical_cross_entropy", "softmax"),
        ("softmax", "binary_cross_entropy", "softmax"),
        ("softmax", "absolute_error", "softmax"),
        ("softmax", "huber", "softmax"),
        ("softmax", "poisson", "softmax"),
    ],
)
def test_math_examples_of_incompatible_pairings(activation: str, loss: str, words: str) -> None:
    ok, why = compatibility(ActivationName(activation), LossName(loss))
    assert not ok
    assert why and words in why


def test_softmax_pairs_only_with_cce_and_squared_error() -> None:
    ok = {lo for lo in LOSSES if compatibility(ActivationName.SOFTMAX, lo)[0]}
    assert ok == {LossName.CATEGORICAL_CROSS_ENTROPY, LossName.SQUARED_ERROR}
    ok = {a for a in ACTIVATIONS if compatibility(a, LossName.CATEGORICAL_CROSS_ENTROPY)[0]}
    assert ok == {ActivationName.SOFTMAX}


@pytest.mark.parametrize(
    ("activation", "loss"),
    [("sigmoid", "poisson"), ("softplus", "poisson"), ("exp", "squared_error"), ("relu", "huber")],
)
def test_some_non_canonical_pairings_are_compatible(activation: str, loss: str) -> None:
    p = make_pairing(activation, loss)
    assert not p.canonical and p.canonical_info is None
    assert p.key == (ActivationName(activation), LossName(loss))


def test_canonical_table_and_presets_follow_math() -> None:
    assert {(str(a), str(lo)): str(c.model) for (a, lo), c in CANONICAL.items()} == oracles.MATH_CANONICAL
    assert {str(m): (str(a), str(lo)) for m, (a, lo) in PRESETS.items()} == {
        m: key for key, m in oracles.MATH_CANONICAL.items()
    }
    assert ModelName.SINGLE_LAYER not in PRESETS
    for a, lo, _ in COMPATIBLE:
        p = make_pairing(a, lo)
        assert p.canonical == ((str(a), str(lo)) in oracles.MATH_CANONICAL)
        text = p.dL_dz_formula.text
        if p.canonical:
            assert text.endswith("= f - y")
        elif not p.vector:
            assert "dL/df * df/dz" in text


def test_huber_delta_reaches_the_pairing() -> None:
    z = np.array([-3.0, 0.2, 3.0])
    y = np.zeros(3)
    _, L, r = make_pairing("identity", "huber", {"delta": 0.5}).forward_backward(z, y)
    np.testing.assert_allclose(r, [-0.5, 0.2, 0.5], rtol=1e-15)
    np.testing.assert_allclose(L, [0.5 * 2.75, 0.02, 0.5 * 2.75], rtol=1e-15)


# --- forward_backward against autograd --------------------------------------------------------


@pytest.mark.parametrize(("activation", "loss", "params"), COMPATIBLE, ids=COMPATIBLE_IDS)
def test_forward_backward_matches_autograd(activation: ActivationName, loss: LossName, params: dict) -> None:
    z, y = _case(activation, loss, seed=1)
    f, L, r = make_pairing(activation, loss, params).forward_backward(z, y)
    assert f.shape == z.shape and r.shape == z.shape and L.shape == (z.shape[0],)
    np.testing.assert_allclose(f, oracles.plain_activation(activation, z), rtol=RTOL, atol=ATOL)
    composed = _composed(activation, loss, params, y)
    np.testing.assert_allclose(L, composed(z), rtol=RTOL, atol=ATOL)
    # Examples are independent, so the gradient of Σ_i L_i with respect to z is ∂L_i/∂z_i.
    np.testing.assert_allclose(r, elementwise_grad(composed)(z), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(("activation", "loss", "params"), COMPATIBLE, ids=COMPATIBLE_IDS)
def test_factors_match_autograd_and_multiply_to_dL_dz(activation: ActivationName, loss: LossName, params: dict) -> None:
    z, y = _case(activation, loss, seed=2)
    pairing = make_pairing(activation, loss, params)
    f, _, r = pairing.forward_backward(z, y)
    dL_df, df_dz = pairing.factors(z, f, y)
    assert np.all(np.isfinite(dL_df)) and np.all(np.isfinite(df_dz))  # moderate z: all representable
    f_plain = np.asarray(oracles.plain_activation(activation, z))
    expected_dL_df = elementwise_grad(lambda ff: oracles.plain_loss(loss, ff, y, params))(f_plain)
    np.testing.assert_allclose(dL_df, expected_dL_df, rtol=RTOL, atol=ATOL)
    if pairing.vector:
        assert df_dz.shape == (z.shape[0], z.shape[1], z.shape[1])
        product = np.einsum("ik,ikl->il", dL_df, df_dz)  # Σ_k ∂L/∂f_k ∂f_k/∂z_l
    else:
        assert df_dz.shape == z.shape
        np.testing.assert_allclose(
            df_dz, elementwise_grad(oracles.activation_formula(activation))(z), rtol=RTOL, atol=ATOL
        )
        product = dL_df * df_dz
    np.testing.assert_allclose(product, r, rtol=RTOL, atol=ATOL)


EXTREME_Z = [-800.0, -700.0, -100.0, -30.0, 30.0, 100.0, 700.0, 800.0]


@pytest.mark.parametrize(("activation", "loss", "params"), COMPATIBLE, ids=COMPATIBLE_IDS)
def test_factors_multiply_to_dL_dz_where_finite_at_extreme_z(
    activation: ActivationName, loss: LossName, params: dict
) -> None:
    """Shown factors may be inf/NaN where not representable; where their product is finite it is ∂L/∂z."""
    rng = np.random.default_rng(3)
    pairing = make_pairing(activation, loss, params)
    if pairing.vector:
        z = np.array([[a, b, 0.0] for a in EXTREME_Z for b in (-1.0, 1.0)])
        y = oracles.sample_targets(LOSSES[loss].targets, rng, z.shape[0], 3)
    else:
        z = np.repeat(np.array(EXTREME_Z), 4)
        y = oracles.sample_targets(LOSSES[loss].targets, rng, z.shape[0])
    f, _, r = pairing.forward_backward(z, y)
    dL_df, df_dz = pairing.factors(z, f, y)
    with np.errstate(all="ignore"):  # the test's own product of non-representable factors
        product = np.einsum("ik,ikl->il", dL_df, df_dz) if pairing.vector else dL_df * df_dz
    finite = np.isfinite(product) & np.isfinite(r)
    assert finite.mean() > 0.5
    atol = 1e-300
    if pairing.vector:
        # Σ_k ∂L/∂f_k ∂f_k/∂z_l cancels where one f_k ≈ 1 (so do f − y-style kernels): allow
        # rounding at the row's scale, max|∂L/∂f|·max|f|. test_extremes checks ∂L/∂z itself.
        with np.errstate(all="ignore"):
            scale = np.max(np.abs(dL_df), axis=1, keepdims=True) * np.max(np.abs(f), axis=1, keepdims=True)
        atol = np.broadcast_to(64 * oracles.EPS * scale, r.shape)[finite]
    assert np.all(np.abs(product[finite] - r[finite]) <= RTOL * np.abs(r[finite]) + atol)


@pytest.mark.parametrize("key", list(CANONICAL), ids=lambda k: f"{k[0]}+{k[1]}")
def test_canonical_pairings_give_f_minus_y(key: tuple[ActivationName, LossName]) -> None:
    activation, loss = key
    z, y = _case(activation, loss, seed=4)
    f, _, r = make_pairing(activation, loss).forward_backward(z, y)
    np.testing.assert_allclose(r, f - y, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(r, np.asarray(oracles.plain_activation(activation, z)) - y, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(("activation", "loss", "params"), COMPATIBLE, ids=COMPATIBLE_IDS)
def test_forward_backward_does_not_modify_inputs(activation: ActivationName, loss: LossName, params: dict) -> None:
    z, y = _case(activation, loss, seed=5)
    z0, y0 = z.copy(), y.copy()
    make_pairing(activation, loss, params).forward_backward(z, y)
    np.testing.assert_array_equal(z, z0)
    np.testing.assert_array_equal(y, y0)

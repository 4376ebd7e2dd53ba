"""Formula activations and losses (service/compute/custom.py) against the catalogue and autograd.

Every scalar catalogue entry the tracer can derive, written as a formula in both spellings (here, by hand:
not the module's own table), gives the catalogue's numbers to rtol 1e-12 on ordinary inputs; custom
pairings' dL/dz equal autograd's derivative of the composition, written independently with autograd.numpy.
"""

from __future__ import annotations

import math

import autograd
import autograd.numpy as anp
import numpy as np
import pytest

from service.compute.activations import ACTIVATIONS, ActivationName
from service.compute.cancellation import simplifies_to_zero
from service.compute.custom import (
    CustomPairing,
    FormulaActivation,
    FormulaLoss,
    cancellation_residual,
    detect_canonical,
    numerically_cancels,
    resolve_pairing,
    target_domain,
)
from service.compute.domains import REALS
from service.compute.errors import DomainError, NonFiniteResult
from service.compute.losses import LossName, make_loss
from service.compute.model_names import ModelName
from service.compute.models import build_objective, evaluate, target_violations
from service.formulas import FormulaError, FormulaTooComplex, parse
from tests.compute import oracles

ACTIVATION_FORMULAS = {
    ActivationName.IDENTITY: ("z", "z"),
    ActivationName.SIGMOID: ("1/(1 + e^(-z))", r"\frac{1}{1 + e^{-z}}"),
    ActivationName.TANH: ("tanh(z)", r"\tanh z"),
    ActivationName.EXP: ("exp(z)", "e^{z}"),
    ActivationName.SOFTPLUS: ("ln(1 + exp(z))", r"\log\left(1 + e^{z}\right)"),
}
LOSS_FORMULAS = {
    LossName.SQUARED_ERROR: ("1/2 (f - y)^2", r"\tfrac{1}{2}(f - y)^{2}"),
    LossName.BINARY_CROSS_ENTROPY: ("-y log(f) - (1 - y) log(1 - f)", r"-y \log f - (1 - y) \log(1 - f)"),
    LossName.POISSON: ("f - y*log(f)", r"f - y \log f"),
    LossName.ABSOLUTE_ERROR: ("abs(f - y)", r"\operatorname{abs}(f - y)"),
}
NOT_FORMULAS = {ActivationName.RELU, ActivationName.SOFTMAX}  # max() is not derived; softmax is a vector
rng = np.random.default_rng(14)


def always(answer: bool | None):  # a prover for tests that do not exercise SymPy
    return lambda tree: answer


def test_every_scalar_catalogue_activation_is_covered() -> None:
    assert set(ACTIVATION_FORMULAS) | NOT_FORMULAS == set(ActivationName)


@pytest.mark.parametrize("name", list(ACTIVATION_FORMULAS))
@pytest.mark.parametrize("spelling", [0, 1], ids=["text", "latex"])
def test_activation_formula_gives_the_catalogue_numbers(name: ActivationName, spelling: int) -> None:
    act = FormulaActivation(ACTIVATION_FORMULAS[name][spelling])
    z = rng.uniform(-6.0, 6.0, 200)
    ref = ACTIVATIONS[name]
    f = act.value(z)
    np.testing.assert_allclose(f, ref.value(z), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(act.derivative(z, f), ref.derivative(z, ref.value(z)), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", list(LOSS_FORMULAS))
@pytest.mark.parametrize("spelling", [0, 1], ids=["text", "latex"])
def test_loss_formula_gives_the_catalogue_numbers(name: LossName, spelling: int) -> None:
    loss = FormulaLoss(LOSS_FORMULAS[name][spelling])
    ref = make_loss(name)
    f = oracles.sample_f(ref.f_domain, rng, 200)
    y = oracles.sample_targets(ref.targets, rng, 200)
    np.testing.assert_allclose(loss.value(f, y), ref.value(f, y), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(loss.dL_df(f, y), ref.dL_df(f, y), rtol=1e-12, atol=1e-15)


def _autograd_dL_dz(g, L, z: np.ndarray, y: np.ndarray) -> np.ndarray:
    return autograd.elementwise_grad(lambda zz: L(g(zz), y))(z)


CUSTOM_CASES = [
    ("tanh(z/2)", "log(cosh(f - y))", lambda z: anp.tanh(z / 2), lambda f, y: anp.log(anp.cosh(f - y))),
    ("z^3/3 + z", "(f - y)^4", lambda z: z**3 / 3 + z, lambda f, y: (f - y) ** 4),
    (
        r"\frac{z}{1 + e^{-z}}",
        "sqrt(1 + (f - y)^2) - 1",
        lambda z: z / (1 + anp.exp(-z)),
        lambda f, y: anp.sqrt(1 + (f - y) ** 2) - 1,
    ),
    (
        "sinh(z) * 0.5",
        "y*(f - y)^2 + softplus(f)",
        lambda z: 0.5 * anp.sinh(z),
        lambda f, y: y * (f - y) ** 2 + anp.logaddexp(0.0, f),
    ),
]


@pytest.mark.parametrize(("act_text", "loss_text", "g", "L"), CUSTOM_CASES)
def test_custom_pairing_gradient_equals_autograd(act_text: str, loss_text: str, g, L) -> None:
    pairing = resolve_pairing({"formula": act_text}, {"formula": loss_text}, None, always(False))
    z = rng.uniform(-2.0, 2.0, 64)
    y = rng.uniform(-1.0, 1.0, 64)
    f, per_example, dL_dz = pairing.forward_backward(z, y)
    np.testing.assert_allclose(f, g(z), rtol=1e-12)
    np.testing.assert_allclose(per_example, L(g(z), y), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dL_dz, _autograd_dL_dz(g, L, z, y), rtol=1e-10, atol=1e-14)


def test_objective_gradients_equal_autograd_for_a_custom_pairing() -> None:
    pairing = resolve_pairing({"formula": "tanh(z/2)"}, {"formula": "log(cosh(f - y))"}, None, always(False))
    X = rng.normal(size=(20, 3))
    y = rng.normal(size=20)
    w, b = rng.normal(size=3), 0.3
    ev = evaluate(build_objective(ModelName.SINGLE_LAYER, pairing, X, y, w, b))

    def J(params):
        z = X @ params[:3] + params[3]
        return anp.mean(anp.log(anp.cosh(anp.tanh(z / 2) - y)))

    grad = autograd.grad(J)(np.append(w, b))
    assert ev.loss == pytest.approx(J(np.append(w, b)), rel=1e-12)
    np.testing.assert_allclose(ev.grad_w, grad[:3], rtol=1e-10, atol=1e-14)
    assert float(ev.grad_b) == pytest.approx(grad[3], rel=1e-10, abs=1e-14)


CANONICAL = [
    ("exp(z)", "f - y*log(f)", True),
    ("1/(1+e^{-z})", "-y*log(f) - (1-y)*log(1-f)", True),
    ("z", "(f - y)^2/2", True),
    ("sigma(z)", "-y*log(f) - (1-y)*log(1-f)", True),
    ("tanh(z)", "(f - y)^2/2", False),
    ("tanh(z/2)", "log(cosh(f - y))", False),
    ("exp(z)", "f - y*log(f) + 1e-6*f^2", False),  # close to canonical, not canonical
]


@pytest.mark.parametrize(("act_text", "loss_text", "expected"), CANONICAL)
def test_canonical_detection_is_symbolic(act_text: str, loss_text: str, expected: bool) -> None:
    act, loss = FormulaActivation(act_text), FormulaLoss(loss_text, target_domain(0, 1, False))
    assert (detect_canonical(act, loss, simplifies_to_zero) is not None) is expected


def test_a_scaled_pair_is_canonical_too() -> None:
    """f = 2z with L = (f − y)²/4: dL/df · df/dz = (f − y)/2 · 2 = f − y."""
    act, loss = FormulaActivation("2*z"), FormulaLoss("(f - y)^2/4")
    assert detect_canonical(act, loss, simplifies_to_zero) is not None


def test_the_numeric_filter_decides_no_without_the_prover() -> None:
    def refuse(tree):
        raise AssertionError("the prover must not be asked when the numbers already say no")

    assert detect_canonical(FormulaActivation("tanh(z)"), FormulaLoss("(f - y)^2/2"), refuse) is None


def test_the_verdict_yes_is_the_provers() -> None:
    act, loss = FormulaActivation("exp(z)"), FormulaLoss("f - y*log(f)")
    assert detect_canonical(act, loss, always(None)) is None  # undecided: not reported canonical
    assert detect_canonical(act, loss, always(True)) is not None


def test_symbolic_job_on_trees() -> None:
    assert simplifies_to_zero(parse("tanh(z)^2 + 1/cosh(z)^2 - 1")) is True
    assert simplifies_to_zero(parse("exp(z)*exp(-z) - 1")) is True
    assert simplifies_to_zero(parse("sigma(z) - 1/(1 + exp(-z))")) is True
    assert simplifies_to_zero(parse("tanh(z) - z")) is False


def test_residual_vanishes_numerically_only_when_canonical() -> None:
    act, loss = FormulaActivation("exp(z)"), FormulaLoss("f - y*log(f)")
    residual = cancellation_residual(act.tree, act.derivation.derivative, loss.derivation.derivative)
    assert numerically_cancels(residual, REALS)
    off = FormulaLoss("f - y*log(f) + 1e-6*f^2")
    residual = cancellation_residual(act.tree, act.derivation.derivative, off.derivation.derivative)
    assert not numerically_cancels(residual, REALS)


def test_canonical_pairing_reports_f_minus_y_and_its_cancellation() -> None:
    pairing = resolve_pairing({"formula": "exp(z)"}, {"formula": "f - y*log(f)"}, None, always(True))
    assert isinstance(pairing, CustomPairing)
    assert pairing.canonical
    assert pairing.dL_dz_formula.text == "dL/dz = f - y"
    info = pairing.canonical_info
    assert info is not None and info.cancellation.text.endswith("= f - y")


def test_formula_with_a_catalogue_side_is_a_custom_pairing() -> None:
    pairing = resolve_pairing("sigmoid", {"formula": "-y*log(f) - (1-y)*log(1-f)"}, None, always(True))
    assert isinstance(pairing, CustomPairing) and pairing.canonical
    z = np.linspace(-4, 4, 9)
    y = np.linspace(0, 1, 9)
    _, _, dL_dz = pairing.forward_backward(z, y)
    np.testing.assert_allclose(dL_dz, 1 / (1 + np.exp(-z)) - y, rtol=1e-12, atol=1e-15)


def test_a_formula_activation_outside_the_catalogue_loss_domain_is_a_domain_error() -> None:
    pairing = resolve_pairing({"formula": "2*z"}, "poisson", None, always(False))
    with pytest.raises(DomainError):
        pairing.forward_backward(np.array([1.0, -1.0]), np.array([1.0, 1.0]))


def test_overflow_of_a_formula_is_a_non_finite_result() -> None:
    pairing = resolve_pairing({"formula": "exp(z)"}, {"formula": "(f - y)^2"}, None, always(False))
    X, y = np.array([[800.0]]), np.array([0.0])
    with pytest.raises(NonFiniteResult):
        evaluate(build_objective(ModelName.SINGLE_LAYER, pairing, X, y, np.ones(1), 0.0))


def test_targets_domain_with_integers() -> None:
    pairing = resolve_pairing(
        {"formula": "exp(z)"}, {"formula": "f - y*log(f)", "targets": {"min": 0, "integer": True}}, None, always(False)
    )
    bad = target_violations(pairing, np.array([0.0, 1.5, -1.0, 3.0]), 1)
    assert [idx for idx, _ in bad] == [(1,), (2,)]
    assert "integers in [0, ∞)" in bad[0][1]
    with pytest.raises(ValueError, match="empty"):
        target_domain(0.2, 0.8, True)
    assert math.isinf(target_domain(None, None, False).lo)


@pytest.mark.parametrize(
    ("text", "names"),
    [("x_j * z", "a"), ("z^{(i)}", "a"), ("f + z", "a"), ("sum_{i=0}^{m} z", "a"), ("max(0, z)", "a"), ("z + f", "l")],
)
def test_formulas_outside_their_variables_do_not_read(text: str, names: str) -> None:
    with pytest.raises(FormulaError):
        FormulaActivation(text) if names == "a" else FormulaLoss(text.replace("z + f", "z*f"))


def test_limits_apply() -> None:
    with pytest.raises(FormulaTooComplex):
        FormulaActivation("z" + "+z" * 1200)
    with pytest.raises(FormulaTooComplex):
        FormulaActivation("10^10^10*z")


def test_derivation_steps_name_the_tracers_rules() -> None:
    act = FormulaActivation("1/(1+e^{-z})")
    steps = act.steps()
    assert steps[0].rule == "definition" and steps[0].text.startswith("f = ")
    rules = {str(s.rule) for s in steps}
    assert {"quotient", "exp", "chain"} <= rules


def test_a_formula_undefined_at_some_examples_says_so() -> None:
    pairing = resolve_pairing("identity", {"formula": "f - y*log(f)"}, None, always(False))
    with pytest.raises(NonFiniteResult) as caught:
        pairing.forward_backward(np.array([1.0, -1.0, 2.0]), np.array([1.0, 1.0, 1.0]))
    assert caught.value.examples == [1] and "evaluated as written" in caught.value.reason
    act_pairing = resolve_pairing({"formula": "log(z)"}, "squared_error", None, always(False))
    with pytest.raises(NonFiniteResult) as caught:
        act_pairing.forward_backward(np.array([-1.0, 1.0]), np.array([0.0, 0.0]))
    assert caught.value.quantity == "f" and caught.value.examples == [0]

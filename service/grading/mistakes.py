"""The catalogue of common mistakes (docs/design/math.md): each is a small, exact change of the computation.

For the objective at hand, every mistake whose "applies when" holds is recomputed as a variant of
the parts it changes. A variant part that equals the correct value (e.g. ∂f/∂z = 1 for identity)
is dropped, so it is never diagnosed. Codes are never reused for another meaning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from service.compute.activations import ActivationName
from service.compute.losses import LossName
from service.compute.pairings import rhs
from service.compute.stable import Array
from service.grading import backprop_variants as backprop
from service.grading.answer_key import Reference, Variant, kept_parts, stack_variants
from service.grading.backprop_variants import NetworkStrategy


@dataclass(frozen=True)
class Mistake:
    """One mistake, defined once: what it is, when it applies, and how it changes each model kind's
    answer (a single-layer model's parts, a network's through backpropagation), where it can happen."""

    code: str
    title: str
    explanation: str  # what the learner did, for GET /mistakes
    applies_when: str
    parts: tuple[str, ...]  # the parts it can change
    compute: Callable[[Reference], Variant | None] | None  # single-layer models (None: networks only)
    feedback: Callable[[Reference], str] | None  # for a learner, in the chain rule's terms
    network: NetworkStrategy | None = None  # neural networks: (feedback, variant) per place it can happen
    # the steps of a single-layer derivation (their factors, as /gradient's breakdown names them)
    # where the mistake is made: the learner's page marks them
    steps: tuple[str, ...] = ()
    # POST /grade/formula names it too: a wrong formula it explains (question, answer)
    formula_example: str = ""


def _gradients(ref: Reference, r: Array, scale: float | None = None, reg: Array | None = None) -> Variant:
    """The gradient parts that follow from a per-example ∂L/∂z = r."""
    m = ref.m
    gw, gb = backprop.layer_gradients(ref.objective.X, r, 1.0 / m if scale is None else scale)
    with np.errstate(over="ignore", invalid="ignore"):
        return {"gradients.w": gw + (ref.grad_reg() if reg is None else reg), "gradients.b": gb}


def _with_dL_dz(ref: Reference, r: Array) -> Variant:
    return {**_gradients(ref, r), "per_sample.dL_dz": r}


def _residual(ref: Reference) -> Array:
    return ref.evaluation.f - ref.objective.y


def _apply_jacobian(ref: Reference, v: Array) -> Array:
    """(∂f/∂z)ᵀ v per example: elementwise for one output, the Jacobian for softmax."""
    df_dz = ref.expected["per_sample.df_dz"]
    with np.errstate(over="ignore", invalid="ignore"):
        if ref.objective.pairing.vector:
            return np.einsum("ik,ikl->il", v, df_dz)
        return v * df_dz


def _act(ref: Reference) -> ActivationName:
    return ref.objective.pairing.activation.name


def _loss(ref: Reference) -> LossName:
    return ref.objective.pairing.loss.name


def _df_dz_text(ref: Reference) -> str:
    return rhs(ref.objective.pairing.activation.derivative_formula).text


def _reg_kind(ref: Reference) -> str | None:
    reg = ref.objective.regularization
    return None if reg is None or reg.lam == 0 else reg.kind


# --- the variants ------------------------------------------------------------------------------


def _missing_mean(ref: Reference) -> Variant | None:
    if ref.m <= 1:
        return None
    return _gradients(ref, ref.evaluation.dL_dz, scale=1.0)


def _sign_flipped(ref: Reference) -> Variant | None:
    return _with_dL_dz(ref, -ref.evaluation.dL_dz)


def _missing_input_factor(ref: Reference) -> Variant | None:
    r = ref.evaluation.dL_dz
    mean_r = np.mean(r, axis=0)
    w = ref.objective.w
    return {"gradients.w": np.broadcast_to(mean_r, w.shape) + ref.grad_reg()}


def _missing_activation_derivative(ref: Reference) -> Variant | None:
    if _act(ref) is ActivationName.IDENTITY:
        return None
    return _with_dL_dz(ref, ref.expected["per_sample.dL_df"])


def _extra_activation_derivative(ref: Reference) -> Variant | None:
    if not ref.objective.pairing.canonical or _act(ref) is ActivationName.IDENTITY:
        return None
    return _with_dL_dz(ref, _apply_jacobian(ref, _residual(ref)))


def _used_z_for_f(ref: Reference) -> Variant | None:
    if not ref.objective.pairing.canonical or _act(ref) is ActivationName.IDENTITY:
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        return _with_dL_dz(ref, ref.evaluation.z - ref.objective.y)


def _double_factor(ref: Reference) -> Variant | None:
    if _loss(ref) is not LossName.SQUARED_ERROR:
        return None
    return _gradients(ref, ref.evaluation.dL_dz, scale=2.0 / ref.m)


def _regularized_bias(ref: Reference) -> Variant | None:
    kind = _reg_kind(ref)
    if kind is None:
        return None
    reg = ref.objective.regularization
    assert reg is not None
    b = ref.objective.b
    extra = reg.lam / ref.m * (b if kind == "l2" else np.sign(b))
    return {"gradients.b": ref.evaluation.grad_b + extra}


def _missing_regularization(ref: Reference) -> Variant | None:
    if _reg_kind(ref) is None:
        return None
    return {"gradients.w": ref.evaluation.grad_w_data}


def _regularization_scale(ref: Reference) -> Variant | None:
    if _reg_kind(ref) != "l2":
        return None
    reg = ref.objective.regularization
    assert reg is not None
    return {"gradients.w": ref.evaluation.grad_w_data + reg.lam / (2 * ref.m) * ref.objective.w}


def _loss_missing_half(ref: Reference) -> Variant | None:
    if _loss(ref) is not LossName.SQUARED_ERROR:
        return None
    ev = ref.evaluation
    return {"loss": np.asarray(2.0 * ev.data_loss + ev.regularization_loss)}


def _loss_missing_mean(ref: Reference) -> Variant | None:
    if ref.m <= 1:
        return None
    ev = ref.evaluation
    with np.errstate(over="ignore"):
        return {"loss": np.asarray(float(np.sum(ev.per_sample_loss)) + ev.regularization_loss)}


def _loss_sign_flipped(ref: Reference) -> Variant | None:
    if not ref.objective.pairing.loss.cross_entropy:
        return None
    ev = ref.evaluation
    return {"loss": np.asarray(-ev.data_loss + ev.regularization_loss)}


def _loss_missing_regularization(ref: Reference) -> Variant | None:
    if _reg_kind(ref) is None:
        return None
    return {"loss": np.asarray(ref.evaluation.data_loss)}


# --- feedback, in the chain rule's terms ---------------------------------------------------------


def _reg_gradient_text(ref: Reference) -> str:
    return "(λ/m)·w_j" if _reg_kind(ref) == "l2" else "(λ/m)·sign(w_j)"


def _reg_text(ref: Reference) -> str:
    return "λ/(2m) Σ w_j²" if _reg_kind(ref) == "l2" else "(λ/m) Σ |w_j|"


MISTAKES: tuple[Mistake, ...] = (
    Mistake(
        "missing_mean",
        "Summed instead of averaged",
        "Summed the data term of the gradient over the examples instead of averaging it.",
        "m > 1",
        ("gradients.w", "gradients.b"),
        _missing_mean,
        lambda ref: (
            f"This is the sum over the m = {ref.m} examples, not the mean: J averages the per-example "
            "losses, so ∂J/∂w and ∂J/∂b carry the factor 1/m."
        ),
        network=backprop.missing_mean,
        steps=("dJ/dw", "dJ/db"),
        formula_example="dJ/db of linear_regression answered sum_{i=1}^{m} (f - y)",
    ),
    Mistake(
        "sign_flipped",
        "Sign flipped",
        "Used y − f where f − y belongs (or the negative of ∂L/∂z), so the gradient points the wrong way.",
        "always",
        ("gradients.w", "gradients.b", "per_sample.dL_dz"),
        _sign_flipped,
        lambda ref: (
            "The sign is flipped: the error term is f − y (prediction minus target), not y − f. "
            "Gradient descent subtracts the gradient, so this sign matters."
        ),
        network=backprop.sign_flipped,
        steps=("dL/dz",),
        formula_example="dL/dz of logistic_regression answered y - f",
    ),
    Mistake(
        "missing_input_factor",
        "Dropped x_j",
        "Dropped the factor ∂z/∂w_j = x_j: every ∂J/∂w_j came out as the mean of ∂L/∂z.",
        "always",
        ("gradients.w",),
        _missing_input_factor,
        lambda ref: (
            "∂J/∂w is missing the factor ∂z/∂w_j = x_j: each example's ∂L/∂z must be multiplied by "
            "its own feature x_j before averaging (only ∂J/∂b has ∂z/∂b = 1)."
        ),
        steps=("dz/dw",),
        formula_example="dL/dw_j of logistic_regression answered f - y",
    ),
    Mistake(
        "missing_activation_derivative",
        "Dropped ∂f/∂z",
        "Dropped the factor ∂f/∂z: used ∂L/∂f as ∂L/∂z.",
        "the activation is not identity",
        ("gradients.w", "gradients.b", "per_sample.dL_dz"),
        _missing_activation_derivative,
        lambda ref: (
            f"This is missing the factor ∂f/∂z = {_df_dz_text(ref)}: it uses ∂L/∂f where the chain "
            "rule needs ∂L/∂z = ∂L/∂f · ∂f/∂z."
        ),
        network=backprop.missing_activation_derivative,
        steps=("df/dz",),
        formula_example="dL/dz of logistic_regression answered (f - y)/(f(1 - f))",
    ),
    Mistake(
        "extra_activation_derivative",
        "∂f/∂z applied twice",
        "Multiplied a canonical pairing's f − y by ∂f/∂z again.",
        "a canonical pairing whose activation is not identity",
        ("gradients.w", "gradients.b", "per_sample.dL_dz"),
        _extra_activation_derivative,
        lambda ref: (
            f"This multiplies f − y by ∂f/∂z = {_df_dz_text(ref)} once more. For "
            f"{ref.objective.pairing.activation.name} with {ref.objective.pairing.loss.name} (a canonical pairing), "
            "∂L/∂f · ∂f/∂z already simplifies to f − y: that factor has cancelled."
        ),
        network=backprop.extra_activation_derivative,
        steps=("dL/dz",),
        formula_example="dL/dz of logistic_regression answered (f - y) f (1 - f)",
    ),
    Mistake(
        "used_z_for_f",
        "Used z for f",
        "Used z = w·x + b where the activation's output f belongs: (z − y) instead of (f − y).",
        "a canonical pairing whose activation is not identity",
        ("gradients.w", "gradients.b", "per_sample.dL_dz"),
        _used_z_for_f,
        lambda ref: (
            "This uses z = w·x + b where the prediction belongs: the error term is f − y with "
            f"{ref.objective.pairing.activation.formula.text}, not z − y."
        ),
        network=backprop.used_z_for_f,
        steps=("f", "dL/dz"),
        formula_example="dL/dz of logistic_regression answered z - y",
    ),
    Mistake(
        "double_factor",
        "Doubled",
        "Differentiated (f − y)² without the ½: the data term of the gradient came out doubled.",
        "squared_error loss",
        ("gradients.w", "gradients.b"),
        _double_factor,
        lambda ref: "This is twice the right value: the loss is ½(f − y)², whose derivative is f − y, not 2(f − y).",
        network=backprop.double_factor,
        steps=("dL/df",),
        formula_example="dL/df of linear_regression answered 2(f - y)",
    ),
    Mistake(
        "regularized_bias",
        "Regularized b",
        "Also regularized b, although R(w) involves only w.",
        "regularization given",
        ("gradients.b",),
        _regularized_bias,
        lambda ref: (
            "∂J/∂b has a regularization term, but b is not regularized: R(w) involves only w, so ∂J/∂b = (1/m) Σ ∂L/∂z."
        ),
        network=backprop.regularized_bias,
        steps=("dJ/db",),
        formula_example="dJ/db of linear_regression with l2 answered 1/m sum_{i=1}^{m} (f - y) + lambda/m b",
    ),
    Mistake(
        "missing_regularization",
        "Left out ∂R/∂w",
        "Left the regularization term ∂R/∂w out of the gradient.",
        "regularization given",
        ("gradients.w",),
        _missing_regularization,
        lambda ref: f"∂J/∂w leaves out the regularization term ∂R/∂w_j = {_reg_gradient_text(ref)}.",
        network=backprop.missing_regularization,
        steps=("dR/dw",),
        formula_example="dJ/dw_j of linear_regression with l2 answered 1/m sum_{i=1}^{m} (f - y) x_j",
    ),
    Mistake(
        "regularization_scale",
        "λ/(2m) in the gradient",
        "Used (λ/2m)·w in the l2 gradient instead of (λ/m)·w.",
        "l2 regularization",
        ("gradients.w",),
        _regularization_scale,
        lambda ref: (
            "The regularization gradient uses λ/(2m)·w_j; the derivative of λ/(2m) Σ w_j² is "
            "(λ/m)·w_j (the 2 of the square cancels the ½)."
        ),
        network=backprop.regularization_scale,
        steps=("dR/dw",),
        formula_example="dJ/dw_j of linear_regression with l2 answered 1/m sum_{i=1}^{m} (f - y) x_j + lambda/(2m) w_j",
    ),
    Mistake(
        "loss_missing_half",
        "Cost without ½",
        "Wrote the squared-error cost as (1/m) Σ (f − y)², without the ½.",
        "squared_error loss",
        ("loss",),
        _loss_missing_half,
        lambda ref: (
            "The cost's data term is twice the right one: the course's squared-error cost is "
            "J = 1/(2m) Σ (f − y)², with the ½."
        ),
        network=backprop.loss_missing_half,
        steps=("L",),
        formula_example="L of linear_regression answered (f - y)^2",
    ),
    Mistake(
        "loss_missing_mean",
        "Cost summed",
        "Summed the per-example losses instead of averaging them.",
        "m > 1",
        ("loss",),
        _loss_missing_mean,
        lambda ref: f"The cost is the sum of the per-example losses; J is their mean: divide by m = {ref.m}.",
        network=backprop.loss_missing_mean,
        steps=("J",),
        formula_example="J of logistic_regression answered sum_{i=1}^{m} (-y log f - (1 - y) log(1 - f))",
    ),
    Mistake(
        "loss_sign_flipped",
        "Cross-entropy without its minus",
        "Wrote the cross-entropy without its minus sign.",
        "a cross-entropy loss",
        ("loss",),
        _loss_sign_flipped,
        lambda ref: (
            "The cost has the wrong sign: cross-entropy is −Σ y log f; without the minus sign it is "
            "negative, since log f < 0."
        ),
        network=backprop.loss_sign_flipped,
        steps=("L",),
        formula_example="L of logistic_regression answered y log f + (1 - y) log(1 - f)",
    ),
    Mistake(
        "loss_missing_regularization",
        "Left out R(w)",
        "Left the regularization term out of the cost.",
        "regularization given",
        ("loss",),
        _loss_missing_regularization,
        lambda ref: f"The cost leaves out the regularization term R(w) = {_reg_text(ref)}.",
        network=backprop.loss_missing_regularization,
        steps=("J",),
        formula_example="J of linear_regression with l2 answered 1/m sum_{i=1}^{m} (f - y)^2/2",
    ),
)

# Mistakes that belong to backpropagation through several layers (neural_network only), one variant
# per layer where they can happen.
NETWORK_MISTAKES: tuple[Mistake, ...] = (
    Mistake(
        "missing_hidden_derivative",
        "Dropped g′(z) of a hidden layer",
        "Backpropagated δ[l] = δ[l+1] W[l+1]ᵀ without the factor g′(z[l]) of hidden layer l.",
        "neural_network with a hidden activation that is not identity",
        ("gradients.layers",),
        None,
        None,
        network=backprop.missing_hidden_derivative,
    ),
    Mistake(
        "weights_not_transposed",
        "Used W instead of Wᵀ",
        "Backpropagated with δ[l+1] W[l+1] where W[l+1]ᵀ belongs (possible only when W[l+1] is square).",
        "neural_network with a square weight matrix above a hidden layer",
        ("gradients.layers",),
        None,
        None,
        network=backprop.weights_not_transposed,
    ),
    Mistake(
        "layer_missing_mean",
        "Forgot 1/m in one layer",
        "Left the factor 1/m out of ∂J/∂W[l] and ∂J/∂b[l] of one layer only.",
        "neural_network with m > 1 and more than one layer",
        ("gradients.layers",),
        None,
        None,
        network=backprop.layer_missing_mean,
    ),
)

# The rules of differentiation broken in a formula (POST /grade/formula only: service.grading.malrules
# applies them to the correct derivation; the message names the node where the rule was broken).
FORMULA_MISTAKES: tuple[Mistake, ...] = (
    Mistake(
        "missing_inner_derivative",
        "Chain rule without the inner derivative",
        "Wrote d/dx g(u) as g'(u), without the factor u' (e.g. d/dz e^(−z) = e^(−z)).",
        "a formula question whose derivation differentiates a function of an inner expression",
        ("formula",),
        None,
        None,
        formula_example="df/dz of logistic_regression answered -e^{-z}/(1 + e^{-z})^2 — d/dz e^(−z) taken as e^(−z)",
    ),
    Mistake(
        "product_rule_error",
        "Product rule as u'v'",
        "Wrote (uv)' as u'v'.",
        "a formula question whose derivation differentiates a product of two varying factors",
        ("formula",),
        None,
        None,
        formula_example="derivative_of z e^z by z answered e^z",
    ),
    Mistake(
        "quotient_rule_error",
        "Quotient rule's numerator wrong",
        "Wrote (u/v)' with the numerator's terms added or swapped: (u'v + uv')/v², (uv' − u'v)/v².",
        "a formula question whose derivation differentiates a quotient with a varying denominator",
        ("formula",),
        None,
        None,
        formula_example="derivative_of z/(1 + z) by z answered (1 + 2z)/(1 + z)^2",
    ),
    Mistake(
        "power_rule_error",
        "Power rule wrong",
        "Wrote d/dx u^n without the factor n, or with the exponent kept: u^(n−1)·u', n·u^n·u'.",
        "a formula question whose derivation differentiates a constant power",
        ("formula",),
        None,
        None,
        formula_example="dL/df of linear_regression answered (f - y)^2 — the exponent kept",
    ),
)

ALL_MISTAKES = MISTAKES + NETWORK_MISTAKES
BY_CODE = {m.code: m for m in MISTAKES}


def variants_for(ref: Reference) -> dict[str, Variant]:
    """Every applicable mistake's variant parts of a single-layer model (see answer_key.kept_parts)."""
    out: dict[str, Variant] = {}
    for mistake in ALL_MISTAKES:
        variant = mistake.compute(ref) if mistake.compute is not None else None
        kept = kept_parts(variant, ref.expected) if variant else {}
        if kept:
            out[mistake.code] = kept
    return out


def add_single_layer_variants(ref: Reference) -> None:
    """Fill a single-layer reference's variants and their stacks, with each mistake's feedback."""
    ref.variants = variants_for(ref)
    entries = []
    for code, variant in ref.variants.items():
        feedback = BY_CODE[code].feedback
        assert feedback is not None
        entries.append((code, feedback(ref), variant))
    stack_variants(ref, entries)


def add_network_variants(ref: Reference) -> None:
    """Fill a network reference's variants (the first of each code, for its layer) and their stacks,
    one entry per place each mistake can happen."""
    network = backprop.Network(ref)
    entries: list[tuple[str, str, Variant]] = []
    for mistake in ALL_MISTAKES:
        if mistake.network is None:
            continue
        for message, variant in mistake.network(network):
            kept = kept_parts(variant, ref.expected)
            if kept:
                entries.append((mistake.code, message, kept))
                ref.variants.setdefault(mistake.code, kept)
    stack_variants(ref, entries)


def derivation_steps() -> dict[str, list[str]]:
    """Each single-layer mistake's code and the derivation steps it is made in (the learner's page)."""
    return {m.code: list(m.steps) for m in ALL_MISTAKES if m.steps}


def catalogue() -> list[dict[str, object]]:
    """JSON-ready list of the mistakes, for GET /mistakes."""
    return [
        {
            "code": m.code,
            "title": m.title,
            "explanation": m.explanation,
            "applies_when": m.applies_when,
            "parts": list(m.parts),
            "models": "formulas" if m in FORMULA_MISTAKES else "neural_network" if m.compute is None else "all",
            **({"formula_example": m.formula_example} if m.formula_example else {}),
        }
        for m in (*ALL_MISTAKES, *FORMULA_MISTAKES)
    ]

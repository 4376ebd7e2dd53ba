"""Grading a neural network's loss and gradients: the reference, and backprop's own mistakes.

Parts: "loss" and "gradients.layers.<i>.W", "gradients.layers.<i>.b" (layers counted from 0, as in
the request). Each mistake is recomputed as a variant of backpropagation: the output mistakes of
the single-layer catalogue (where δ[L] comes from), the scale and sign mistakes, regularization
mistakes, and the ones that belong to several layers: a hidden layer's g′(z) dropped, W used for
Wᵀ, 1/m forgotten in one layer. A variant equal to the correct value is never diagnosed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from service.compute.activations import ActivationName
from service.compute.losses import LossName
from service.compute.network import NetworkEvaluation, NetworkProblem
from service.compute.network import evaluate as evaluate_network
from service.compute.pairings import rhs
from service.compute.stable import Array
from service.grading.compare import Tolerance
from service.grading.reference import stack_variants

Variant = dict[str, Array]
_SAME = Tolerance(rtol=1e-12, atol=1e-300)


@dataclass
class NetworkReference:
    problem: NetworkProblem
    evaluation: NetworkEvaluation
    expected: dict[str, Array]
    variants: dict[str, Variant] = field(default_factory=dict)
    stacked: dict[str, tuple[list[str], list[str], Array]] = field(default_factory=dict)

    @property
    def m(self) -> int:
        return self.problem.m


def part_names(depth: int) -> list[str]:
    names = ["loss"]
    for i in range(depth):
        names += [f"gradients.layers.{i}.W", f"gradients.layers.{i}.b"]
    return names


def _backprop(
    net: NetworkProblem,
    ev: NetworkEvaluation,
    delta_out: Array,
    *,
    scale: dict[int, float] | None = None,
    sign: float = 1.0,
    skip_g_prime: int | None = None,
    untransposed: int | None = None,
    reg_factor: float = 1.0,
    reg_bias: bool = False,
) -> Variant:
    """Backpropagation with one deliberate change; layers are 1-based as docs/design/math.md writes them."""
    m = net.m
    reg = net.regularization
    out: Variant = {}
    d = delta_out
    with np.errstate(all="ignore"):
        for layer in range(net.depth, 0, -1):
            s = (scale or {}).get(layer, 1.0 / m)
            gW = sign * (ev.activations[layer - 1].T @ d) * s
            gb = sign * np.sum(d, axis=0) * s
            if reg is not None and reg.lam > 0:
                gW = gW + reg_factor * reg.gradient(net.Ws[layer - 1], m)
                if reg_bias:
                    b = net.bs[layer - 1]
                    gb = gb + reg.lam / m * (b if reg.kind == "l2" else np.sign(b))
            out[f"gradients.layers.{layer - 1}.W"] = gW
            out[f"gradients.layers.{layer - 1}.b"] = gb
            if layer > 1:
                W = net.Ws[layer - 1]
                d = d @ W if untransposed == layer else d @ W.T
                if skip_g_prime != layer - 1:
                    d = d * net.activation(layer - 1).derivative(ev.zs[layer - 2], ev.activations[layer - 1])
    return out


def _variants(ref: NetworkReference) -> list[tuple[str, str, Variant]]:
    net, ev = ref.problem, ref.evaluation
    pairing = net.pairing
    act, loss = pairing.activation, pairing.loss
    L = net.depth
    m = net.m
    delta = ev.deltas[-1]
    vector = pairing.vector
    z_out = ev.zs[-1] if vector else ev.zs[-1][:, 0]
    f = ev.activations[-1] if vector else ev.activations[-1][:, 0]
    dL_df, df_dz = pairing.factors(z_out, f, net.y)

    def col(a: Array) -> Array:
        return a if vector else a[:, None]

    reg = net.regularization
    has_reg = reg is not None and reg.lam > 0
    out: list[tuple[str, str, Variant]] = []
    if m > 1:
        out.append(
            (
                "missing_mean",
                f"This is the sum over the m = {m} examples, not the mean: J averages the "
                "per-example losses, so every ∂J/∂W[l] and ∂J/∂b[l] carries the factor 1/m.",
                _backprop(net, ev, delta, scale=dict.fromkeys(range(1, L + 1), 1.0)),
            )
        )
    out.append(
        (
            "sign_flipped",
            "The sign is flipped: backpropagation starts from δ[L] = f − y (prediction minus target), not y − f.",
            _backprop(net, ev, delta, sign=-1.0),
        )
    )
    df_text = rhs(act.derivative_formula).text
    if act.name is not ActivationName.IDENTITY:
        out.append(
            (
                "missing_activation_derivative",
                f"δ[{L}] is missing the output factor ∂f/∂z = {df_text}: it "
                "uses ∂L/∂f where δ[L] = ∂L/∂f · ∂f/∂z belongs.",
                _backprop(net, ev, col(dL_df)),
            )
        )
        if pairing.canonical:
            extra = np.einsum("ik,ikl->il", f - net.y, df_dz) if vector else (f - net.y) * df_dz
            out.append(
                (
                    "extra_activation_derivative",
                    f"δ[{L}] multiplies f − y by ∂f/∂z = {df_text} once more; "
                    f"for {act.name} with {loss.name} (canonical) the factor has already cancelled.",
                    _backprop(net, ev, col(extra)),
                )
            )
            out.append(
                (
                    "used_z_for_f",
                    f"δ[{L}] uses z[{L}] − y where f − y belongs, with {act.formula.text}.",
                    _backprop(net, ev, col(z_out - net.y)),
                )
            )
    if loss.name is LossName.SQUARED_ERROR:
        out.append(
            (
                "double_factor",
                "This is twice the right value: the loss is ½(f − y)², whose derivative is f − y, not 2(f − y).",
                _backprop(net, ev, delta, scale=dict.fromkeys(range(1, L + 1), 2.0 / m)),
            )
        )
    if has_reg:
        assert reg is not None
        out.append(
            (
                "regularized_bias",
                "The biases are regularized too, but R involves only the weights: ∂J/∂b[l] = (1/m) Σ δ[l].",
                _backprop(net, ev, delta, reg_bias=True),
            )
        )
        out.append(
            (
                "missing_regularization",
                "The gradients leave out the regularization term ∂R/∂W[l].",
                _backprop(net, ev, delta, reg_factor=0.0),
            )
        )
        if reg.kind == "l2":
            out.append(
                (
                    "regularization_scale",
                    "The regularization gradient uses λ/(2m)·W[l]; the derivative of λ/(2m) Σ W² is (λ/m)·W[l].",
                    _backprop(net, ev, delta, reg_factor=0.5),
                )
            )
    for layer in range(1, L):
        g = net.activation(layer)
        if g.name is not ActivationName.IDENTITY:
            out.append(
                (
                    "missing_hidden_derivative",
                    f"δ[{layer}] is missing the factor g′(z[{layer}]) = "
                    f"{rhs(g.derivative_formula).text} of layer {layer}'s {g.name}: "
                    f"δ[{layer}] = (δ[{layer + 1}] W[{layer + 1}]ᵀ) ⊙ g′(z[{layer}]).",
                    _backprop(net, ev, delta, skip_g_prime=layer),
                )
            )
    for layer in range(2, L + 1):
        W = net.Ws[layer - 1]
        if W.shape[0] == W.shape[1]:
            out.append(
                (
                    "weights_not_transposed",
                    f"δ[{layer - 1}] uses δ[{layer}] W[{layer}] where the transpose "
                    f"W[{layer}]ᵀ belongs: δ[{layer - 1}] = (δ[{layer}] W[{layer}]ᵀ) ⊙ g′(z[{layer - 1}]).",
                    _backprop(net, ev, delta, untransposed=layer),
                )
            )
    if m > 1 and L > 1:
        for layer in range(1, L + 1):
            out.append(
                (
                    "layer_missing_mean",
                    f"∂J/∂W[{layer}] and ∂J/∂b[{layer}] are sums over the m = {m} "
                    f"examples, not means: layer {layer} is missing the factor 1/m.",
                    _backprop(net, ev, delta, scale={layer: 1.0}),
                )
            )
    data, reg_loss = ev.data_loss, ev.regularization_loss
    if loss.name is LossName.SQUARED_ERROR:
        out.append(
            (
                "loss_missing_half",
                "The cost's data term is twice the right one: J = 1/(2m) Σ (f − y)².",
                {"loss": np.asarray(2 * data + reg_loss)},
            )
        )
    if m > 1:
        with np.errstate(over="ignore"):
            total = float(np.sum(ev.per_sample_loss))
        out.append(
            (
                "loss_missing_mean",
                f"The cost is the sum of the per-example losses; J is their mean: divide by m = {m}.",
                {"loss": np.asarray(total + reg_loss)},
            )
        )
    if loss.cross_entropy:
        out.append(
            (
                "loss_sign_flipped",
                "The cost has the wrong sign: cross-entropy is −Σ y log f.",
                {"loss": np.asarray(-data + reg_loss)},
            )
        )
    if has_reg:
        out.append(
            (
                "loss_missing_regularization",
                "The cost leaves out the regularization term R.",
                {"loss": np.asarray(data)},
            )
        )
    return out


def build_network_reference(net: NetworkProblem) -> NetworkReference:
    ev = evaluate_network(net)
    expected: dict[str, Array] = {"loss": np.asarray(ev.loss)}
    for i, (gW, gb) in enumerate(zip(ev.grad_Ws, ev.grad_bs, strict=True)):
        expected[f"gradients.layers.{i}.W"] = gW
        expected[f"gradients.layers.{i}.b"] = gb
    ref = NetworkReference(net, ev, expected)
    kept_entries: list[tuple[str, str, Variant]] = []
    for code, message, variant in _variants(ref):
        kept: Variant = {}
        for part, value in variant.items():
            value = np.asarray(value, dtype=np.float64)
            exp = expected[part]
            if value.shape != exp.shape or not np.all(np.isfinite(value)):
                continue
            if _SAME.allclose(value, exp):
                continue
            kept[part] = value
        if kept:
            kept_entries.append((code, message, kept))
            ref.variants.setdefault(code, kept)
    stack_variants(ref, kept_entries)
    return ref

"""How the catalogue's mistakes change a neural network's answer: each as backpropagation with one
deliberate change (service/grading/mistakes.py names them and says when they apply).

Parts: "loss" and "gradients.layers.<i>.W", "gradients.layers.<i>.b" (layers counted from 0, as in
the request; the messages count from 1, as backpropagation is written: W[1] … W[L]). The output
mistakes change where δ[L] comes from; the mistakes of several layers (a hidden g′(z) dropped, W
for Wᵀ, 1/m forgotten in one layer) give one variant per layer where they can happen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from service.compute.activations import ActivationName
from service.compute.losses import LossName
from service.compute.models import Evaluation, Objective
from service.compute.pairings import rhs
from service.compute.stable import Array
from service.grading.answer_key import Reference, Variant

# one mistake's variants of a network: (the learner's feedback, the parts it changes), per layer
NetworkVariants = list[tuple[str, Variant]]


def layer_gradients(a: Array, delta: Array, scale: float, sign: float = 1.0) -> tuple[Array, Array]:
    """A layer's (∂J/∂W, ∂J/∂b) data terms from its input a and its δ, with the mean's factor `scale`
    (1/m when it is right) and a `sign`: what every mistake's variant, of any model kind, is made of."""
    with np.errstate(all="ignore"):
        return sign * (a.T @ delta) * scale, sign * np.sum(delta, axis=0) * scale


def backprop(
    net: Objective,
    ev: Evaluation,
    delta_out: Array,
    *,
    scale: dict[int, float] | None = None,
    sign: float = 1.0,
    skip_g_prime: int | None = None,
    untransposed: int | None = None,
    reg_factor: float = 1.0,
    reg_bias: bool = False,
) -> Variant:
    """Backpropagation from δ[L] = delta_out with one deliberate change; layers are 1-based."""
    m = net.m
    reg = net.regularization
    out: Variant = {}
    d = delta_out
    with np.errstate(all="ignore"):
        for layer in range(net.depth, 0, -1):
            gW, gb = layer_gradients(ev.activations[layer - 1], d, (scale or {}).get(layer, 1.0 / m), sign)
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


@dataclass(frozen=True)
class Network:
    """What the network's variants are computed from: the objective, its evaluation and the output
    layer's factors, computed once for all the mistakes."""

    ref: Reference

    @property
    def net(self) -> Objective:
        return self.ref.objective

    @property
    def ev(self) -> Evaluation:
        return self.ref.evaluation

    @property
    def depth(self) -> int:
        return self.net.depth

    @property
    def m(self) -> int:
        return self.net.m

    @property
    def delta(self) -> Array:
        return self.ev.deltas[-1]

    @property
    def vector(self) -> bool:
        return self.net.pairing.vector

    @cached_property
    def z_out(self) -> Array:
        return self.ev.zs[-1] if self.vector else self.ev.zs[-1][:, 0]

    @cached_property
    def f(self) -> Array:
        return self.ev.activations[-1] if self.vector else self.ev.activations[-1][:, 0]

    @cached_property
    def factors(self) -> tuple[Array, Array]:
        return self.net.pairing.factors(self.z_out, self.f, self.net.y)

    def col(self, a: Array) -> Array:
        return a if self.vector else a[:, None]

    @property
    def has_reg(self) -> bool:
        reg = self.net.regularization
        return reg is not None and reg.lam > 0

    def backprop(self, delta_out: Array | None = None, **change: object) -> Variant:
        return backprop(self.net, self.ev, self.delta if delta_out is None else delta_out, **change)  # type: ignore[arg-type]

    @property
    def df_text(self) -> str:
        return rhs(self.net.pairing.activation.derivative_formula).text


def _all_layers(n: Network, scale: float) -> dict[int, float]:
    return dict.fromkeys(range(1, n.depth + 1), scale)


def missing_mean(n: Network) -> NetworkVariants:
    if n.m <= 1:
        return []
    return [
        (
            f"This is the sum over the m = {n.m} examples, not the mean: J averages the "
            "per-example losses, so every ∂J/∂W[l] and ∂J/∂b[l] carries the factor 1/m.",
            n.backprop(scale=_all_layers(n, 1.0)),
        )
    ]


def sign_flipped(n: Network) -> NetworkVariants:
    return [
        (
            "The sign is flipped: backpropagation starts from δ[L] = f − y (prediction minus target), not y − f.",
            n.backprop(sign=-1.0),
        )
    ]


def missing_activation_derivative(n: Network) -> NetworkVariants:
    if n.net.pairing.activation.name is ActivationName.IDENTITY:
        return []
    L = n.depth
    return [
        (
            f"δ[{L}] is missing the output factor ∂f/∂z = {n.df_text}: it "
            "uses ∂L/∂f where δ[L] = ∂L/∂f · ∂f/∂z belongs.",
            n.backprop(n.col(n.factors[0])),
        )
    ]


def _canonical_not_identity(n: Network) -> bool:
    pairing = n.net.pairing
    return pairing.activation.name is not ActivationName.IDENTITY and pairing.canonical


def extra_activation_derivative(n: Network) -> NetworkVariants:
    if not _canonical_not_identity(n):
        return []
    pairing, df_dz = n.net.pairing, n.factors[1]
    r = n.f - n.net.y
    extra = np.einsum("ik,ikl->il", r, df_dz) if n.vector else r * df_dz
    return [
        (
            f"δ[{n.depth}] multiplies f − y by ∂f/∂z = {n.df_text} once more; "
            f"for {pairing.activation.name} with {pairing.loss.name} (canonical) the factor has already cancelled.",
            n.backprop(n.col(extra)),
        )
    ]


def used_z_for_f(n: Network) -> NetworkVariants:
    if not _canonical_not_identity(n):
        return []
    L = n.depth
    return [
        (
            f"δ[{L}] uses z[{L}] − y where f − y belongs, with {n.net.pairing.activation.formula.text}.",
            n.backprop(n.col(n.z_out - n.net.y)),
        )
    ]


def double_factor(n: Network) -> NetworkVariants:
    if n.net.pairing.loss.name is not LossName.SQUARED_ERROR:
        return []
    return [
        (
            "This is twice the right value: the loss is ½(f − y)², whose derivative is f − y, not 2(f − y).",
            n.backprop(scale=_all_layers(n, 2.0 / n.m)),
        )
    ]


def regularized_bias(n: Network) -> NetworkVariants:
    if not n.has_reg:
        return []
    return [
        (
            "The biases are regularized too, but R involves only the weights: ∂J/∂b[l] = (1/m) Σ δ[l].",
            n.backprop(reg_bias=True),
        )
    ]


def missing_regularization(n: Network) -> NetworkVariants:
    if not n.has_reg:
        return []
    return [("The gradients leave out the regularization term ∂R/∂W[l].", n.backprop(reg_factor=0.0))]


def regularization_scale(n: Network) -> NetworkVariants:
    reg = n.net.regularization
    if not n.has_reg or reg is None or reg.kind != "l2":
        return []
    return [
        (
            "The regularization gradient uses λ/(2m)·W[l]; the derivative of λ/(2m) Σ W² is (λ/m)·W[l].",
            n.backprop(reg_factor=0.5),
        )
    ]


def missing_hidden_derivative(n: Network) -> NetworkVariants:
    out: NetworkVariants = []
    for layer in range(1, n.depth):
        g = n.net.activation(layer)
        if g.name is not ActivationName.IDENTITY:
            out.append(
                (
                    f"δ[{layer}] is missing the factor g′(z[{layer}]) = "
                    f"{rhs(g.derivative_formula).text} of layer {layer}'s {g.name}: "
                    f"δ[{layer}] = (δ[{layer + 1}] W[{layer + 1}]ᵀ) ⊙ g′(z[{layer}]).",
                    n.backprop(skip_g_prime=layer),
                )
            )
    return out


def weights_not_transposed(n: Network) -> NetworkVariants:
    out: NetworkVariants = []
    for layer in range(2, n.depth + 1):
        W = n.net.Ws[layer - 1]
        if W.shape[0] == W.shape[1]:
            out.append(
                (
                    f"δ[{layer - 1}] uses δ[{layer}] W[{layer}] where the transpose "
                    f"W[{layer}]ᵀ belongs: δ[{layer - 1}] = (δ[{layer}] W[{layer}]ᵀ) ⊙ g′(z[{layer - 1}]).",
                    n.backprop(untransposed=layer),
                )
            )
    return out


def layer_missing_mean(n: Network) -> NetworkVariants:
    if n.m <= 1 or n.depth <= 1:
        return []
    return [
        (
            f"∂J/∂W[{layer}] and ∂J/∂b[{layer}] are sums over the m = {n.m} "
            f"examples, not means: layer {layer} is missing the factor 1/m.",
            n.backprop(scale={layer: 1.0}),
        )
        for layer in range(1, n.depth + 1)
    ]


def loss_missing_half(n: Network) -> NetworkVariants:
    if n.net.pairing.loss.name is not LossName.SQUARED_ERROR:
        return []
    ev = n.ev
    return [
        (
            "The cost's data term is twice the right one: J = 1/(2m) Σ (f − y)².",
            {"loss": np.asarray(2 * ev.data_loss + ev.regularization_loss)},
        )
    ]


def loss_missing_mean(n: Network) -> NetworkVariants:
    if n.m <= 1:
        return []
    with np.errstate(over="ignore"):
        total = float(np.sum(n.ev.per_sample_loss))
    return [
        (
            f"The cost is the sum of the per-example losses; J is their mean: divide by m = {n.m}.",
            {"loss": np.asarray(total + n.ev.regularization_loss)},
        )
    ]


def loss_sign_flipped(n: Network) -> NetworkVariants:
    if not n.net.pairing.loss.cross_entropy:
        return []
    ev = n.ev
    return [
        (
            "The cost has the wrong sign: cross-entropy is −Σ y log f.",
            {"loss": np.asarray(-ev.data_loss + ev.regularization_loss)},
        )
    ]


def loss_missing_regularization(n: Network) -> NetworkVariants:
    if not n.has_reg:
        return []
    return [("The cost leaves out the regularization term R.", {"loss": np.asarray(n.ev.data_loss)})]


NetworkStrategy = Callable[[Network], NetworkVariants]

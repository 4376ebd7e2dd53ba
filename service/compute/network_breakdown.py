"""The per-layer backprop breakdown of a network, read from the arrays `network.evaluate` made."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from service.compute.activations import Activation
from service.compute.breakdown import (
    RULE_CANONICAL,
    RULE_CHAIN,
    _derivation,
    _displayable,
    _formula,
    canonical_simplification,
)
from service.compute.custom import activation_steps, loss_steps
from service.compute.domains import Formula
from service.compute.pairings import rhs

if TYPE_CHECKING:
    from service.compute.network import NetworkEvaluation, NetworkObjective

SATURATION = 1e-4  # g'(z) below this fraction of its largest value: the unit passes almost no gradient


# The formulas of the network's steps. A layer is a number, or a placeholder such as "{@l}" when the
# learner's page gets them as templates to fill in (service/http/handlers/learner.py, `symbolic_chain`): the
# same functions write /gradient's steps and those templates, so the two cannot drift apart.
Layer = int | str


def _sup(name: str, layer: Layer) -> str:
    return f"{name}^{{[{layer}]}}"


def z_formula(layer: Layer, prev: Layer, first: str) -> Formula:
    """z[l] = a[l-1] W[l] + b[l]; `first` is what the text adds for the first layer."""
    return Formula(
        _sup("z", layer) + " = " + _sup("a", prev) + _sup("W", layer) + " + " + _sup("b", layer),
        f"z[{layer}] = a[{prev}] W[{layer}] + b[{layer}]" + first,
    )


FIRST_LAYER_NOTE = " (a[0] = X)"


def a_formula(layer: Layer, name: str, g: Formula) -> Formula:
    """a[l] = g(z[l]), with g the right-hand side of the activation's formula."""
    return Formula(
        _sup("a", layer) + " = g(" + _sup("z", layer) + "), \\quad g(z) = " + g.latex,
        f"a[{layer}] = {name}(z[{layer}]), g(z) = {g.text}",
    )


def cost_formula(reg_kind: str | None) -> Formula:
    """J, the mean loss plus the regularization of every layer's W."""
    reg_latex = reg_text = ""
    if reg_kind == "l2":
        reg_latex, reg_text = (
            r" + \frac{\lambda}{2m} \sum_{l} \lVert W^{[l]} \rVert^{2}",
            " + lambda/(2m) sum_l |W[l]|^2",
        )
    elif reg_kind is not None:
        reg_latex, reg_text = (
            r" + \frac{\lambda}{m} \sum_{l} \lvert W^{[l]} \rvert_1",
            " + (lambda/m) sum_l |W[l]|_1",
        )
    return Formula(r"J = \frac{1}{m} \sum_{i=1}^{m} L_i" + reg_latex, "J = (1/m) sum_i L_i" + reg_text)


def output_delta_formula(layer: Layer, dL_dz: Formula) -> Formula:
    """δ[L] = ∂L/∂z of the output's pairing."""
    return Formula(_sup(r"\delta", layer) + r" = " + dL_dz.latex, f"delta[{layer}] = " + dL_dz.text)


def dW_formula(layer: Layer, prev: Layer, reg_kind: str | None) -> Formula:
    """∂J/∂W[l] = (1/m) a[l-1]ᵀ δ[l] (+ ∂R/∂W[l])."""
    reg_l = ("", "")
    if reg_kind is not None:
        dR = (
            (r"\frac{\lambda}{m} W^{[l]}", "(lambda/m) W[l]")
            if reg_kind == "l2"
            else (r"\frac{\lambda}{m} \operatorname{sign}(W^{[l]})", "(lambda/m) sign(W[l])")
        )
        reg_l = (" + " + dR[0].replace("[l]", f"[{layer}]"), " + " + dR[1].replace("[l]", f"[{layer}]"))
    return Formula(
        r"\frac{\partial J}{\partial "
        + _sup("W", layer)
        + r"} = \frac{1}{m} {"
        + _sup("a", prev)
        + r"}^{\top} "
        + _sup(r"\delta", layer)
        + reg_l[0],
        f"dJ/dW[{layer}] = (1/m) a[{prev}]^T delta[{layer}]" + reg_l[1],
    )


def db_formula(layer: Layer) -> Formula:
    """∂J/∂b[l] = (1/m) Σ δ[l] (b is not regularized)."""
    return Formula(
        r"\frac{\partial J}{\partial "
        + _sup("b", layer)
        + r"} = \frac{1}{m} \sum_{i=1}^{m} "
        + _sup(r"\delta", layer)
        + "_i",
        f"dJ/db[{layer}] = (1/m) sum_i delta[{layer}]_i (b is not regularized)",
    )


def g_prime_formula(derivative: Formula, prev: Layer) -> Formula:
    """g′(z) of the layer below, the right-hand side of the activation's derivative; when it is written in
    terms of f, the text says that f is that layer's a."""
    gp = rhs(derivative)
    uses_f = re.search(r"\bf\b", gp.text) is not None
    return Formula(
        gp.latex + (r" \text{ with } f = " + _sup("a", prev) if uses_f else ""),
        gp.text + (f" with f = a[{prev}]" if uses_f else ""),
    )


def hidden_delta_formula(layer: Layer, prev: Layer, g_prime: Formula, name: str) -> Formula:
    """δ[l-1] = (δ[l] W[l]ᵀ) ⊙ g′(z[l-1]), with `g_prime` from `g_prime_formula` and the activation's name."""
    return Formula(
        _sup(r"\delta", prev)
        + r" = \left("
        + _sup(r"\delta", layer)
        + " {"
        + _sup("W", layer)
        + r"}^{\top}\right) \odot g'("
        + _sup("z", prev)
        + r"), \quad g'(z) = "
        + g_prime.latex,
        f"delta[{prev}] = (delta[{layer}] W[{layer}]^T) * g'(z[{prev}]), g'(z) = {g_prime.text} ({name})",
    )


def build_network_breakdown(net: NetworkObjective, ev: NetworkEvaluation, *, full: bool) -> dict[str, Any]:
    """layers (z, a, δ, g'(z), gradients per layer), output factors, ordered steps, notes."""
    L = net.depth
    notes: list[dict[str, Any]] = []
    pairing = net.pairing
    out_act, loss = pairing.activation, pairing.loss
    z_out = ev.zs[-1] if pairing.vector else ev.zs[-1][:, 0]
    f = ev.activations[-1] if pairing.vector else ev.activations[-1][:, 0]
    dL_df_raw, df_dz_raw = pairing.factors(z_out, f, net.y)
    unrepresentable = "is not representable in float64 for these examples; the gradient does not need it"
    per_sample = {
        "z": z_out,
        "f": f,
        "loss": ev.per_sample_loss,
        "dL_df": _displayable(dL_df_raw, "dL/df", "dL/df " + unrepresentable, notes),
        "df_dz": _displayable(df_dz_raw, "df/dz", "df/dz " + unrepresentable, notes),
        "dL_dz": ev.deltas[-1] if pairing.vector else ev.deltas[-1][:, 0],
    }
    layers: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    for layer in range(1, L + 1):
        act = net.activation(layer)
        z = ev.zs[layer - 1]
        entry: dict[str, Any] = {
            "layer": layer,
            "activation": str(act.name),
            "units": int(z.shape[1]),
            "z": z,
            "a": ev.activations[layer],
            "delta": ev.deltas[layer - 1],
            "dJ_dW": ev.grad_Ws[layer - 1],
            "dJ_db": ev.grad_bs[layer - 1],
        }
        if layer < L:
            gp = act.derivative(z, ev.activations[layer])
            entry["g_prime"] = gp
            _note_vanishing(layer, act, z, gp, notes)
        layers.append(entry)
        steps.append(
            {
                "factor": f"z[{layer}]",
                "layer": layer,
                "kind": "forward",
                **_formula(z_formula(layer, layer - 1, FIRST_LAYER_NOTE if layer == 1 else "")),
                "value": z,
            }
        )
        steps.append(
            {
                "factor": f"a[{layer}]",
                "layer": layer,
                "kind": "forward",
                **_formula(a_formula(layer, str(act.name), rhs(act.formula))),
                "value": ev.activations[layer],
            }
        )
    reg = net.regularization
    reg_kind = reg.kind if reg is not None else None
    steps.append({"factor": "L", "layer": L, "kind": "forward", **_formula(loss.formula), "value": ev.per_sample_loss})
    steps.append(
        {
            "factor": "J",
            "kind": "forward",
            **_formula(cost_formula(reg_kind)),
            "value": ev.loss,
        }
    )
    full_L = {"derivation": _derivation(loss_steps(loss))} if full else {}
    full_f = {"derivation": _derivation(activation_steps(out_act))} if full else {}
    steps.append(
        {
            "factor": "dL/df",
            "layer": L,
            "kind": "local",
            **_formula(loss.derivative_formula),
            "value": per_sample["dL_df"],
            **full_L,
        }
    )
    steps.append(
        {
            "factor": "df/dz",
            "layer": L,
            "kind": "local",
            **_formula(out_act.derivative_formula),
            "value": per_sample["df_dz"],
            **full_f,
        }
    )
    steps.append(
        {
            "factor": f"delta[{L}]",
            "layer": L,
            "kind": "chain",
            **_formula(output_delta_formula(L, pairing.dL_dz_formula)),
            "value": ev.deltas[-1],
            "rule": RULE_CANONICAL if pairing.canonical else RULE_CHAIN,
        }
    )
    for layer in range(L, 0, -1):
        steps.append(
            {
                "factor": f"dJ/dW[{layer}]",
                "layer": layer,
                "kind": "aggregate",
                **_formula(dW_formula(layer, layer - 1, reg_kind)),
                "value": ev.grad_Ws[layer - 1],
            }
        )
        steps.append(
            {
                "factor": f"dJ/db[{layer}]",
                "layer": layer,
                "kind": "aggregate",
                **_formula(db_formula(layer)),
                "value": ev.grad_bs[layer - 1],
            }
        )
        if layer > 1:
            g = net.activation(layer - 1)
            extra = {"derivation": _derivation(activation_steps(g))} if full else {}
            steps.append(
                {
                    "factor": f"delta[{layer - 1}]",
                    "layer": layer - 1,
                    "kind": "chain",
                    **_formula(
                        hidden_delta_formula(
                            layer, layer - 1, g_prime_formula(g.derivative_formula, layer - 1), str(g.name)
                        )
                    ),
                    "value": ev.deltas[layer - 2],
                    **extra,
                }
            )
    simplification = canonical_simplification(pairing, at_output_of=L)
    _note_gradient_scale(ev, notes)
    return {
        "layers": layers,
        "per_sample": per_sample,
        "steps": steps,
        "simplification": simplification,
        "notes": notes,
    }


def _note_vanishing(layer: int, act: Activation, z: Any, gp: Any, notes: list[dict[str, Any]]) -> None:
    """Say where a hidden layer's g'(z) lets almost no gradient through: what learners need to see."""
    name, peak = act.name, act.saturation_peak
    if peak is not None:
        saturated = gp < SATURATION * peak
        if np.any(saturated):
            units = sorted({int(j) for j in np.flatnonzero(np.any(saturated, axis=0))})
            examples = np.flatnonzero(np.any(saturated, axis=1))
            notes.append(
                {
                    "quantity": f"g'(z[{layer}])",
                    "examples": [int(i) for i in examples[:50]],
                    "count": int(examples.size),
                    "units": units[:50],
                    "reason": f"{name} is saturated in layer {layer} (units {units[:10]}): g'(z) < {SATURATION:g}·"
                    f"{peak:g} for |z| this large, so δ[{layer}] = (δ W^T) ⊙ g'(z) is nearly 0 there and the "
                    "weights feeding those units barely learn (vanishing gradient)",
                }
            )
    elif act.dead_below_zero:
        dead = np.all(z <= 0, axis=0)
        if np.any(dead):
            units = [int(j) for j in np.flatnonzero(dead)]
            notes.append(
                {
                    "quantity": f"g'(z[{layer}])",
                    "examples": [],
                    "count": 0,
                    "units": units[:50],
                    "reason": f"{name} units {units[:10]} of layer {layer} are dead on this data: z ≤ 0 for every "
                    "example, so g'(z) = 0, their δ is 0 and no gradient reaches the weights feeding them",
                }
            )


def _note_gradient_scale(ev: NetworkEvaluation, notes: list[dict[str, Any]]) -> None:
    if len(ev.deltas) < 2:
        return
    with np.errstate(over="ignore", invalid="ignore"):
        top = float(np.mean(np.abs(ev.deltas[-1])))
        bottom = float(np.mean(np.abs(ev.deltas[0])))
    if not (np.isfinite(top) and np.isfinite(bottom)):
        return
    if top > 0 and bottom < 1e-3 * top:
        notes.append(
            {
                "quantity": "delta[1]",
                "examples": [],
                "count": 0,
                "reason": f"|δ| shrinks from {top:.3g} at the output to {bottom:.3g} at layer 1 (mean absolute "
                "values): each layer multiplies it by W^T and by g'(z), and the product vanishes",
            }
        )

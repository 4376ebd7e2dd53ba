"""The per-layer backprop breakdown of a network, read from the arrays `network.evaluate` made."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from service.compute.activations import ActivationName
from service.compute.breakdown import _derivation, _displayable, _formula, canonical_simplification
from service.compute.derivations import activation_derivation, loss_derivation
from service.compute.pairings import rhs

if TYPE_CHECKING:
    from service.compute.network import NetworkEvaluation, NetworkProblem

SATURATION = 1e-4  # g'(z) below this fraction of its largest value: the unit passes almost no gradient


def _sup(name: str, layer: int | str) -> str:
    return f"{name}^{{[{layer}]}}"


def build_network_breakdown(net: NetworkProblem, ev: NetworkEvaluation, *, full: bool) -> dict[str, Any]:
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
            _note_vanishing(layer, act.name, z, gp, notes)
        layers.append(entry)
        steps.append(
            {
                "factor": f"z[{layer}]",
                "layer": layer,
                "kind": "forward",
                "latex": _sup("z", layer) + " = " + _sup("a", layer - 1) + _sup("W", layer) + " + " + _sup("b", layer),
                "text": f"z[{layer}] = a[{layer - 1}] W[{layer}] + b[{layer}]" + (" (a[0] = X)" if layer == 1 else ""),
                "value": z,
            }
        )
        a_formula = rhs(act.formula)
        steps.append(
            {
                "factor": f"a[{layer}]",
                "layer": layer,
                "kind": "forward",
                "latex": _sup("a", layer) + " = g(" + _sup("z", layer) + "), \\quad g(z) = " + a_formula.latex,
                "text": f"a[{layer}] = {act.name}(z[{layer}]), g(z) = {a_formula.text}",
                "value": ev.activations[layer],
            }
        )
    reg = net.regularization
    reg_latex = reg_text = ""
    if reg is not None:
        if reg.kind == "l2":
            reg_latex, reg_text = (
                r" + \frac{\lambda}{2m} \sum_{l} \lVert W^{[l]} \rVert^{2}",
                " + lambda/(2m) sum_l |W[l]|^2",
            )
        else:
            reg_latex, reg_text = (
                r" + \frac{\lambda}{m} \sum_{l} \lvert W^{[l]} \rvert_1",
                " + (lambda/m) sum_l |W[l]|_1",
            )
    steps.append({"factor": "L", "layer": L, "kind": "forward", **_formula(loss.formula), "value": ev.per_sample_loss})
    steps.append(
        {
            "factor": "J",
            "kind": "forward",
            "latex": r"J = \frac{1}{m} \sum_{i=1}^{m} L_i" + reg_latex,
            "text": "J = (1/m) sum_i L_i" + reg_text,
            "value": ev.loss,
        }
    )
    full_L = {"derivation": _derivation(loss_derivation(loss.name))} if full else {}
    full_f = {"derivation": _derivation(activation_derivation(out_act.name))} if full else {}
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
    dL_dz = pairing.dL_dz_formula
    steps.append(
        {
            "factor": f"delta[{L}]",
            "layer": L,
            "kind": "chain",
            "latex": _sup(r"\delta", L) + r" = " + dL_dz.latex,
            "text": f"delta[{L}] = " + dL_dz.text,
            "value": ev.deltas[-1],
            "rule": "canonical simplification" if pairing.canonical else "chain rule: dL/dz = dL/df * df/dz",
        }
    )
    dR = None
    if reg is not None:
        dR = (
            (r"\frac{\lambda}{m} W^{[l]}", "(lambda/m) W[l]")
            if reg.kind == "l2"
            else (r"\frac{\lambda}{m} \operatorname{sign}(W^{[l]})", "(lambda/m) sign(W[l])")
        )
    for layer in range(L, 0, -1):
        reg_l = (
            (" + " + dR[0].replace("[l]", f"[{layer}]"), " + " + dR[1].replace("[l]", f"[{layer}]")) if dR else ("", "")
        )
        steps.append(
            {
                "factor": f"dJ/dW[{layer}]",
                "layer": layer,
                "kind": "aggregate",
                "latex": r"\frac{\partial J}{\partial "
                + _sup("W", layer)
                + r"} = \frac{1}{m} {"
                + _sup("a", layer - 1)
                + r"}^{\top} "
                + _sup(r"\delta", layer)
                + reg_l[0],
                "text": f"dJ/dW[{layer}] = (1/m) a[{layer - 1}]^T delta[{layer}]" + reg_l[1],
                "value": ev.grad_Ws[layer - 1],
            }
        )
        steps.append(
            {
                "factor": f"dJ/db[{layer}]",
                "layer": layer,
                "kind": "aggregate",
                "latex": r"\frac{\partial J}{\partial "
                + _sup("b", layer)
                + r"} = \frac{1}{m} \sum_{i=1}^{m} "
                + _sup(r"\delta", layer)
                + "_i",
                "text": f"dJ/db[{layer}] = (1/m) sum_i delta[{layer}]_i (b is not regularized)",
                "value": ev.grad_bs[layer - 1],
            }
        )
        if layer > 1:
            g = net.activation(layer - 1)
            gp_formula = rhs(g.derivative_formula)
            uses_f = re.search(r"\bf\b", gp_formula.text) is not None  # written in terms of f = a[l]
            extra = {"derivation": _derivation(activation_derivation(g.name))} if full else {}
            steps.append(
                {
                    "factor": f"delta[{layer - 1}]",
                    "layer": layer - 1,
                    "kind": "chain",
                    "latex": _sup(r"\delta", layer - 1)
                    + r" = \left("
                    + _sup(r"\delta", layer)
                    + " {"
                    + _sup("W", layer)
                    + r"}^{\top}\right) \odot g'("
                    + _sup("z", layer - 1)
                    + r"), \quad g'(z) = "
                    + gp_formula.latex
                    + (r" \text{ with } f = " + _sup("a", layer - 1) if uses_f else ""),
                    "text": f"delta[{layer - 1}] = (delta[{layer}] W[{layer}]^T) * g'(z[{layer - 1}]), "
                    f"g'(z) = {gp_formula.text}{f' with f = a[{layer - 1}]' if uses_f else ''} ({g.name})",
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


def _note_vanishing(layer: int, name: ActivationName, z: Any, gp: Any, notes: list[dict[str, Any]]) -> None:
    """Say where a hidden layer's g'(z) lets almost no gradient through: what learners need to see."""
    if name in (ActivationName.SIGMOID, ActivationName.TANH):
        peak = 0.25 if name is ActivationName.SIGMOID else 1.0
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
    elif name is ActivationName.RELU:
        dead = np.all(z <= 0, axis=0)
        if np.any(dead):
            units = [int(j) for j in np.flatnonzero(dead)]
            notes.append(
                {
                    "quantity": f"g'(z[{layer}])",
                    "examples": [],
                    "count": 0,
                    "units": units[:50],
                    "reason": f"relu units {units[:10]} of layer {layer} are dead on this data: z ≤ 0 for every "
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

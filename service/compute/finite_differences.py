"""Central finite differences of the cost, as a sanity check offered to users (docs/design/math.md).

∂J/∂θ ≈ (J(θ+h) − J(θ−h)) / (2h) with h = 1e−6·max(1, |θ|), compared with the analytic value by
|a − n| / max(|a|, |n|, 1e−8). Kinks (relu at z = 0, absolute_error at f = y) are reported, not
averaged away.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from service.compute.errors import NonFiniteResult
from service.compute.models import Evaluation, Objective, cost

STEP = 1e-6
EXPECTED_AGREEMENT = 1e-6
# Rounding in J(θ ± h) limits a difference to about eps·|J| / (h·|∂J/∂θ|): allow a margin over 1e-6.
AGREEMENT_LIMIT = 1e-4


def step_size(theta: float) -> float:
    return STEP * max(1.0, abs(theta))


def relative_error(a: float, n: float) -> float:
    return abs(a - n) / max(abs(a), abs(n), 1e-8)


def evaluations_needed(parameters: int) -> int:
    """How many cost evaluations a check takes: two per parameter."""
    return 2 * parameters


def _parameter_name(model: Objective, layer: int, which: str, idx: tuple[int, ...]) -> str:
    """As the answer names the component: w[j], b (or w[j][c], b[c]), or layers[l].W[j][c] in a network."""
    index = "".join(f"[{i}]" for i in idx)
    return f"layers[{layer}].{which}{index}" if model.is_network else which.lower() + index


def verify(model: Objective, ev: Evaluation) -> dict[str, Any]:
    """Compare every analytic gradient component of `ev` with its central difference, layer by layer
    (W then b of each)."""
    components: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for layer in range(model.depth):
        for which, params, grads in (("W", model.Ws, ev.grad_Ws), ("b", model.bs, ev.grad_bs)):
            arr = params[layer]
            for idx in np.ndindex(arr.shape):
                name = _parameter_name(model, layer, which, idx)
                theta = float(arr[idx])
                h = step_size(theta)
                plus, minus = [p.copy() for p in params], [p.copy() for p in params]
                plus[layer][idx] = theta + h
                minus[layer][idx] = theta - h
                try:
                    if which == "W":
                        jp, jm = cost(model, plus, None), cost(model, minus, None)
                    else:
                        jp, jm = cost(model, None, plus), cost(model, None, minus)
                except NonFiniteResult as exc:
                    skipped.append({"parameter": name, "reason": f"J(θ ± h) is not finite: {exc.detail}"})
                    continue
                # divide by the step actually taken: θ ± h rounds in float64
                numeric = (jp - jm) / (float(plus[layer][idx]) - float(minus[layer][idx]))
                analytic = float(grads[layer][idx])
                components.append(
                    {
                        "parameter": name,
                        "analytic": analytic,
                        "numeric": numeric,
                        "relative_error": relative_error(analytic, numeric),
                    }
                )
    return _report(components, _network_kinks(model, ev) if model.is_network else _kinks(model, ev), skipped)


def _kinks(model: Objective, ev: Evaluation) -> list[dict[str, Any]]:
    """A single-layer model's kinks within one perturbation's reach: the largest change of z that one
    step of w or b makes, per example."""
    act, loss = model.pairing.activation, model.pairing.loss
    hw = STEP * max(1.0, float(np.max(np.abs(model.w)))) if model.w.size else STEP
    hb = STEP * max(1.0, float(np.max(np.abs(model.b))))
    width = np.maximum(hw * np.max(np.abs(model.X), axis=1), hb)
    out = []
    if act.kinks and not act.vector:
        ex = np.flatnonzero(act.kink_mask(ev.z, width))
        if ex.size:
            out.append({"at": act.kinks, "examples": [int(i) for i in ex[:50]], "count": int(ex.size)})
    if loss.kinks and not act.vector:
        df = np.abs(act.derivative(ev.z, ev.f))
        ex = np.flatnonzero(loss.kink_mask(ev.f, model.y, width * np.maximum(df, 1.0)))
        if ex.size:
            out.append({"at": loss.kinks, "examples": [int(i) for i in ex[:50]], "count": int(ex.size)})
    return out


def _network_kinks(model: Objective, ev: Evaluation) -> list[dict[str, Any]]:
    """A network's kinks, per layer, within a step relative to the layer's largest |z| (a coarser reach
    than the single-layer rule's: a perturbation deep in the network moves z by an amount not bounded
    from one layer's parameters alone)."""
    kinks: list[dict[str, Any]] = []
    for layer in range(1, model.depth + 1):
        act = model.activation(layer)
        if act.kinks and not act.vector:
            z = ev.zs[layer - 1]
            near = np.any(np.abs(z) <= STEP * max(1.0, float(np.max(np.abs(z)))), axis=1)
            if np.any(near):
                ex = np.flatnonzero(near)
                kinks.append(
                    {"at": f"layer {layer}: {act.kinks}", "examples": [int(i) for i in ex[:50]], "count": int(ex.size)}
                )
    out_act, loss = model.pairing.activation, model.pairing.loss
    if loss.kinks and not out_act.vector:
        z_out, f_out = ev.z, ev.f
        slope = np.maximum(np.abs(out_act.derivative(z_out, f_out)), 1.0)
        width = STEP * max(1.0, float(np.max(np.abs(z_out)))) * slope
        ex = np.flatnonzero(loss.kink_mask(f_out, model.y, width))
        if ex.size:
            kinks.append({"at": loss.kinks, "examples": [int(i) for i in ex[:50]], "count": int(ex.size)})
    return kinks


def _report(
    components: list[dict[str, Any]], kinks: list[dict[str, Any]], skipped: list[dict[str, Any]]
) -> dict[str, Any]:
    worst = max((c["relative_error"] for c in components), default=0.0)
    return {
        "method": "central differences (J(θ+h) − J(θ−h)) / 2h, h = 1e-6·max(1, |θ|)",
        "components": components,
        "max_relative_error": worst,
        "expected_agreement": EXPECTED_AGREEMENT,
        "agrees": bool(worst <= AGREEMENT_LIMIT),
        "kinks": kinks,
        "skipped": skipped,
    }

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
from service.compute.stable import Array

STEP = 1e-6
EXPECTED_AGREEMENT = 1e-6
# Rounding in J(θ ± h) limits a difference to about eps·|J| / (h·|∂J/∂θ|): allow a margin over 1e-6.
AGREEMENT_LIMIT = 1e-4


def step_size(theta: float) -> float:
    return STEP * max(1.0, abs(theta))


def relative_error(a: float, n: float) -> float:
    return abs(a - n) / max(abs(a), abs(n), 1e-8)


def evaluations_needed(objective: Objective) -> int:
    """How many cost evaluations a check takes: two per parameter."""
    return 2 * (objective.w.size + objective.b.size)


def _central(objective: Objective, w: Array, b: Array, which: str, idx: tuple[int, ...]) -> float:
    target = w if which == "w" else b
    theta = float(target[idx])
    h = step_size(theta)
    plus, minus = target.copy(), target.copy()
    plus[idx] = theta + h
    minus[idx] = theta - h
    if which == "w":
        jp, jm = cost(objective, plus, b), cost(objective, minus, b)
    else:
        jp, jm = cost(objective, w, plus), cost(objective, w, minus)
    # divide by the step actually taken: θ ± h rounds in float64
    return (jp - jm) / (float(plus[idx]) - float(minus[idx]))


def _kinks(objective: Objective, ev: Evaluation) -> list[dict[str, Any]]:
    act, loss = objective.pairing.activation, objective.pairing.loss
    # the largest change of z one perturbation can make, per example
    hw = STEP * max(1.0, float(np.max(np.abs(objective.w)))) if objective.w.size else STEP
    hb = STEP * max(1.0, float(np.max(np.abs(objective.b))))
    width = np.maximum(hw * np.max(np.abs(objective.X), axis=1), hb)
    out = []
    if act.kinks and not act.vector:
        ex = np.flatnonzero(act.kink_mask(ev.z, width))
        if ex.size:
            out.append({"at": act.kinks, "examples": [int(i) for i in ex[:50]], "count": int(ex.size)})
    if loss.kinks and not act.vector:
        df = np.abs(act.derivative(ev.z, ev.f))
        ex = np.flatnonzero(loss.kink_mask(ev.f, objective.y, width * np.maximum(df, 1.0)))
        if ex.size:
            out.append({"at": loss.kinks, "examples": [int(i) for i in ex[:50]], "count": int(ex.size)})
    return out


def verify(objective: Objective, ev: Evaluation) -> dict[str, Any]:
    """Compare every analytic gradient component of `ev` with its central difference."""
    w, b = objective.w, objective.b
    components: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for which, grad in (("w", ev.grad_w), ("b", ev.grad_b)):
        arr = w if which == "w" else b
        for idx in np.ndindex(arr.shape):
            analytic = float(grad[idx])
            name = which + "".join(f"[{i}]" for i in idx)
            try:
                numeric = _central(objective, w, b, which, idx)
            except NonFiniteResult as exc:
                skipped.append({"parameter": name, "reason": f"J(θ ± h) is not finite: {exc.detail}"})
                continue
            components.append(
                {
                    "parameter": name,
                    "analytic": analytic,
                    "numeric": numeric,
                    "relative_error": relative_error(analytic, numeric),
                }
            )
    kinks = _kinks(objective, ev)
    return _report(components, kinks, skipped)


def verify_network(net: Any, ev: Any) -> dict[str, Any]:
    """Central differences of a network's cost for every weight and bias (service.compute.network)."""
    from service.compute.network import cost as network_cost

    components: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for layer in range(net.depth):
        for which, params, grads in (("W", net.Ws, ev.grad_Ws), ("b", net.bs, ev.grad_bs)):
            arr = params[layer]
            for idx in np.ndindex(arr.shape):
                name = f"layers[{layer}].{which}" + "".join(f"[{i}]" for i in idx)
                theta = float(arr[idx])
                h = step_size(theta)
                plus, minus = [p.copy() for p in params], [p.copy() for p in params]
                plus[layer][idx] = theta + h
                minus[layer][idx] = theta - h
                try:
                    if which == "W":
                        jp, jm = network_cost(net, plus, None), network_cost(net, minus, None)
                    else:
                        jp, jm = network_cost(net, None, plus), network_cost(net, None, minus)
                except NonFiniteResult as exc:
                    skipped.append({"parameter": name, "reason": f"J(θ ± h) is not finite: {exc.detail}"})
                    continue
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
    kinks: list[dict[str, Any]] = []
    for layer in range(1, net.depth + 1):
        act = net.activation(layer)
        if act.kinks and not act.vector:
            z = ev.zs[layer - 1]
            near = np.any(np.abs(z) <= STEP * max(1.0, float(np.max(np.abs(z)))), axis=1)
            if np.any(near):
                ex = np.flatnonzero(near)
                kinks.append(
                    {"at": f"layer {layer}: {act.kinks}", "examples": [int(i) for i in ex[:50]], "count": int(ex.size)}
                )
    out_act, loss = net.pairing.activation, net.pairing.loss
    if loss.kinks and not out_act.vector:
        z_out, f_out = ev.zs[-1][:, 0], ev.activations[-1][:, 0]
        slope = np.maximum(np.abs(out_act.derivative(z_out, f_out)), 1.0)
        width = STEP * max(1.0, float(np.max(np.abs(z_out)))) * slope
        ex = np.flatnonzero(loss.kink_mask(f_out, net.y, width))
        if ex.size:
            kinks.append({"at": loss.kinks, "examples": [int(i) for i in ex[:50]], "count": int(ex.size)})
    return _report(components, kinks, skipped)


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

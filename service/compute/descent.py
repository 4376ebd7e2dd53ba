"""Batch gradient descent: θ ← θ − α ∂J/∂θ for k steps, with its cost history.

Generic over the model: its CostAndGradients maps the parameters (a list of arrays) to J and its
gradients (the same list's shapes), so single-layer models and networks share one loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.compute.errors import NonFiniteResult
from service.compute.models import Objective, gradients
from service.compute.stable import Array

CostAndGradients = Callable[[list[Array]], tuple[float, list[Array]]]


@dataclass(frozen=True)
class Trainable:
    """How to run descent on a model: its parameters, J and ∇J as a function of them, and its JSON shape."""

    params: list[Array]
    cost_and_gradients: CostAndGradients
    to_json: Callable[[list[Array]], dict[str, Any]]


def trainable(model: Objective) -> Trainable:
    """W[l] and b[l] of every layer (W[1..L] then b[1..L]), for a model of any kind: a single-layer
    model's are its w and b (b a number, or k numbers with softmax), and its answers name them so."""
    depth = model.depth

    def cost_and_gradients(params: list[Array]) -> tuple[float, list[Array]]:
        ev = gradients(model.with_parameters(params[:depth], params[depth:]))
        return ev.loss, [*ev.grad_Ws, *ev.grad_bs]

    def to_json(params: list[Array]) -> dict[str, Any]:
        Ws, bs = params[:depth], params[depth:]
        if model.is_network:
            return {"layers": [{"W": W, "b": b} for W, b in zip(Ws, bs, strict=True)]}
        b = bs[0]
        return {"w": Ws[0], "b": float(b) if b.ndim == 0 else b}

    return Trainable([W.copy() for W in model.Ws] + [b.copy() for b in model.bs], cost_and_gradients, to_json)


def _norm(grads: list[Array]) -> float:
    """‖∇J‖ over every parameter, scaled by the largest entry first so Σ g² cannot overflow alone."""
    scale = max((float(np.max(np.abs(g))) for g in grads if g.size), default=0.0)
    if scale == 0.0 or not np.isfinite(scale):
        return scale
    with np.errstate(over="ignore"):
        return scale * float(np.sqrt(sum(float(np.sum((g / scale) ** 2)) for g in grads)))


def gradient_descent(
    model: Trainable,
    learning_rate: float,
    steps: int,
    *,
    record_every: int,
    patience: int = 5,
    gradient_tolerance: float = 0.0,
) -> dict[str, Any]:
    """Run k steps from the model's parameters.

    Returns the cost J(θ_t) and the gradient norm ‖∇J(θ_t)‖ for t = 0 … (steps taken), the
    parameters every `record_every` steps and at the end, and a status: completed, converged
    (‖∇J‖ ≤ gradient_tolerance), diverged (J rose `patience` steps in a row) or non-finite.
    """
    params = [p.copy() for p in model.params]
    last_good = params
    losses: list[float] = []
    norms: list[float] = []
    snapshots: list[dict[str, Any]] = []
    status, explanation = "completed", f"ran all {steps} steps"
    rising = 0
    t = 0
    while True:
        try:
            J, grads = model.cost_and_gradients(params)
            norm = _norm(grads)
            if not np.isfinite(norm):
                raise NonFiniteResult("gradient norm", [], "‖∇J‖ overflows float64")
        except NonFiniteResult as exc:
            if t == 0:
                raise  # the objective as given: the caller's error, not the descent's
            status = "non-finite"
            explanation = (
                f"at step {t} the {exc.quantity} is not representable in float64 ({exc.reason}): the parameters "
                f"grew too large, which happens when the learning rate α = {learning_rate:g} is too large; try a "
                f"smaller one. The results stop at step {t - 1}, the last one that evaluated."
            )
            break
        losses.append(J)
        norms.append(norm)
        last_good = params
        if t % record_every == 0:
            snapshots.append({"step": t, "loss": J, "parameters": model.to_json(params)})
        rising = rising + 1 if len(losses) >= 2 and losses[-1] > losses[-2] else 0
        if rising >= patience:
            status = "diverged"
            explanation = (
                f"the cost rose for {patience} steps in a row (from {losses[-patience - 1]:.6g} to {J:.6g} at step "
                f"{t}): the learning rate α = {learning_rate:g} overshoots the minimum; try α/10"
            )
            break
        if norm <= gradient_tolerance:
            status, explanation = "converged", f"‖∇J‖ = {norm:.3g} ≤ {gradient_tolerance:g} at step {t}"
            break
        if t == steps:
            break
        with np.errstate(over="ignore", invalid="ignore"):
            params = [p - learning_rate * g for p, g in zip(params, grads, strict=True)]
        t += 1
    steps_taken = len(losses) - 1
    if snapshots[-1]["step"] != steps_taken:
        snapshots.append({"step": steps_taken, "loss": losses[-1], "parameters": model.to_json(last_good)})
    return {
        "learning_rate": learning_rate,
        "steps_requested": steps,
        "steps_taken": steps_taken,
        "status": status,
        "explanation": explanation,
        "history": {"loss": losses, "gradient_norm": norms},
        "snapshots": snapshots,
        "final": {
            "step": steps_taken,
            "loss": losses[-1],
            "gradient_norm": norms[-1],
            "parameters": model.to_json(last_good),
        },
    }

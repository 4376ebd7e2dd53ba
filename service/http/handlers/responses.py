"""Building response bodies from compute results, and the error responses every route documents."""

from __future__ import annotations

from typing import Any

from service.compute.breakdown import build_breakdown
from service.compute.custom import spec_json
from service.compute.finite_differences import verify
from service.compute.models import Evaluation, Gradients, evaluate, gradients
from service.compute.pairings import Pairing
from service.http.handlers.objectives import ExplainLevel, Prepared


def pairing_json(pairing: Pairing) -> dict[str, Any]:
    """The pairing as responses describe it: activation, loss, canonical, and the loss's parameters."""
    out: dict[str, Any] = {
        "activation": spec_json(pairing.activation),
        "loss": spec_json(pairing.loss),
        "canonical": pairing.canonical,
    }
    if pairing.loss.params:
        out["loss_params"] = dict(pairing.loss.params)
    return out


def gradient_response(prepared: Prepared) -> dict[str, Any]:
    """Evaluate a model of any kind (and verify it on request) and shape the /gradient body: gradients
    mirror the parameters (w and b, or W and b per layer for a network)."""
    model = prepared.model
    arrays = prepared.explain is not ExplainLevel.NONE or prepared.verify
    # Without a breakdown or a check no per-example array is needed: `gradients` takes the one-pass
    # fast path where it applies (the dispatch is there, in one place).
    ev: Gradients = evaluate(model) if arrays else gradients(model)
    body: dict[str, Any] = {"model": str(model.model), "pairing": pairing_json(model.pairing), "loss": ev.loss}
    if model.is_network:
        body["gradients"] = {"layers": [{"W": gW, "b": gb} for gW, gb in zip(ev.grad_Ws, ev.grad_bs, strict=True)]}
    else:
        body["gradients"] = {"w": ev.grad_w, "b": ev.grad_b if model.pairing.vector else float(ev.grad_b)}
    if isinstance(ev, Evaluation):
        if prepared.explain is not ExplainLevel.NONE:
            body["breakdown"] = build_breakdown(model, ev, full=prepared.explain is ExplainLevel.FULL)
        if prepared.verify:
            body["verification"] = verify(model, ev)
    return body

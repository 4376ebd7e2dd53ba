"""Building response bodies from compute results, and the error responses every route documents."""

from __future__ import annotations

from typing import Any

from service.compute.breakdown import build_breakdown
from service.compute.custom import spec_json
from service.compute.finite_differences import verify, verify_network
from service.compute.models import Evaluation, Gradients, evaluate, gradients
from service.compute.network import evaluate as network_evaluate
from service.compute.network_breakdown import build_network_breakdown
from service.compute.pairings import Pairing
from service.http.handlers.objectives import ExplainLevel, Prepared, PreparedNetwork


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
    """Evaluate the objective (and verify it on request) and shape the /gradient body."""
    objective = prepared.objective
    # Only J and the gradients wanted: one pass over X, without per-example arrays.
    ev: Gradients = (
        gradients(objective) if prepared.explain is ExplainLevel.NONE and not prepared.verify else evaluate(objective)
    )
    pairing = objective.pairing
    pairing_out = pairing_json(pairing)
    body: dict[str, Any] = {
        "model": str(objective.model),
        "pairing": pairing_out,
        "loss": ev.loss,
        "gradients": {"w": ev.grad_w, "b": ev.grad_b if pairing.vector else float(ev.grad_b)},
    }
    if isinstance(ev, Evaluation):
        if prepared.explain is not ExplainLevel.NONE:
            body["breakdown"] = build_breakdown(objective, ev, full=prepared.explain is ExplainLevel.FULL)
        if prepared.verify:
            body["verification"] = verify(objective, ev)
    return body


def network_response(prepared: PreparedNetwork) -> dict[str, Any]:
    """Evaluate a network by backpropagation (and verify it on request); gradients mirror parameters."""
    net = prepared.network
    ev = network_evaluate(net)
    pairing = net.pairing
    pairing_out = pairing_json(pairing)
    body: dict[str, Any] = {
        "model": "neural_network",
        "pairing": pairing_out,
        "loss": ev.loss,
        "gradients": {"layers": [{"W": gW, "b": gb} for gW, gb in zip(ev.grad_Ws, ev.grad_bs, strict=True)]},
    }
    if prepared.explain is not ExplainLevel.NONE:
        body["breakdown"] = build_network_breakdown(net, ev, full=prepared.explain is ExplainLevel.FULL)
    if prepared.verify:
        body["verification"] = verify_network(net, ev)
    return body

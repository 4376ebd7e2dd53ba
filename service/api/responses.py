"""Building response bodies from compute results, and the error responses every route documents."""

from __future__ import annotations

from typing import Any

from service.api.errors import PROBLEM_JSON
from service.api.problems import ExplainLevel, Prepared, PreparedNetwork
from service.api.schemas import ProblemDetails
from service.compute.breakdown import build_breakdown
from service.compute.check import verify, verify_network
from service.compute.models import Evaluation, Gradients, evaluate, gradients
from service.compute.network import evaluate as network_evaluate
from service.compute.network_breakdown import build_network_breakdown
from service.compute.pairings import Pairing


def pairing_json(pairing: Pairing) -> dict[str, Any]:
    """The pairing as responses describe it: activation, loss, canonical, and the loss's parameters."""
    out: dict[str, Any] = {
        "activation": str(pairing.activation.name),
        "loss": str(pairing.loss.name),
        "canonical": pairing.canonical,
    }
    if pairing.loss.params:
        out["loss_params"] = dict(pairing.loss.params)
    return out


def gradient_response(prepared: Prepared) -> dict[str, Any]:
    """Evaluate the problem (and verify it on request) and shape the /gradient body."""
    problem = prepared.problem
    # Only J and the gradients wanted: one pass over X, without per-example arrays.
    ev: Gradients = (
        gradients(problem) if prepared.explain is ExplainLevel.NONE and not prepared.verify else evaluate(problem)
    )
    pairing = problem.pairing
    pairing_out = pairing_json(pairing)
    body: dict[str, Any] = {
        "model": str(problem.model),
        "pairing": pairing_out,
        "loss": ev.loss,
        "gradients": {"w": ev.grad_w, "b": ev.grad_b if pairing.vector else float(ev.grad_b)},
    }
    if isinstance(ev, Evaluation):
        if prepared.explain is not ExplainLevel.NONE:
            body["breakdown"] = build_breakdown(problem, ev, full=prepared.explain is ExplainLevel.FULL)
        if prepared.verify:
            body["verification"] = verify(problem, ev)
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


def _problem(description: str) -> dict[str, Any]:
    return {"model": ProblemDetails, "description": description, "content": {PROBLEM_JSON: {}}}


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem("The body is not valid JSON (invalid-json), or a multipart body cannot be read (invalid-multipart)."),
    401: _problem("Keys are configured and the request has no valid one (unauthorized)."),
    403: _problem("The key's role may not do this, or a problem token is altered or expired (forbidden)."),
    429: _problem("The key's rate limit is reached; see Retry-After (rate-limited)."),
    503: _problem("The shared rate limiter cannot be reached (unavailable)."),
    413: _problem("The body is over the size limit (body-too-large)."),
    415: _problem("The body is not JSON, nor multipart where the operation takes it (unsupported-media-type)."),
    422: _problem(
        "Schema, shape, domain, incompatible pairing, non-finite result or too large a breakdown "
        "(validation-error, domain-error, incompatible-pairing, non-finite-result, explain-too-large)."
    ),
}

# what any route behind an API key may also answer
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {code: PROBLEM_RESPONSES[code] for code in (401, 403, 429, 503)}

"""From a /descent request to the compute layer's gradient descent, one or two runs side by side."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from service.compute import descent
from service.http.errors import ProblemError
from service.http.handlers.custom_formulas import FORMULA_NODE_COST, as_json, network_nodes
from service.http.handlers.objectives import prepare, within_limits
from service.http.handlers.responses import pairing_json
from service.http.schemas.descent import DESCENT_REQUEST, DescentRequest
from service.http.schemas.gradient import GRADIENT_REQUEST
from service.http.wire.arrays import parse_with_matrix, request_json
from service.http.wire.binary import RawBody, parse_multipart
from service.http.wire.json import parse
from service.render.svg import named
from service.settings import Settings


def parse_descent(raw: RawBody | bytes | bytearray, settings: Settings) -> DescentRequest:
    """A /descent body validated: multipart with X as .npy (service/http/wire/binary.py), or JSON with X
    straight into an array (service/http/wire/arrays.py), else the whole JSON body."""
    if isinstance(raw, RawBody):
        if raw.multipart:
            request: DescentRequest = parse_multipart(DESCENT_REQUEST, raw, ("problem", "data"))
            return request
        body = raw.data
    else:
        body = raw
    req = parse_with_matrix(
        DESCENT_REQUEST, body, lambda m, n, _: within_limits(m, n, settings), lambda r: getattr(r.problem, "data", None)
    )
    return req if req is not None else parse(DESCENT_REQUEST, body)


# The work of one descent step, in multiply-add equivalents: the forward pass's m·Σ fan_in·units, plus
# ELEMENTWISE_COST per value a layer computes (its activation, derivative, δ and the loss: the time of
# that many multiply-adds of a matrix-vector product, docs/performance.md), plus PARAMETER_COST per
# parameter (its gradient, the gradient norm and the update). Calibrated so that the slowest shapes
# cost about the same time per unit.
ELEMENTWISE_COST = 64
PARAMETER_COST = 32


def step_work(m: int, shapes: list[tuple[int, int]]) -> int:
    """The work of one evaluation (forward and backward) and update for layers of (fan_in, units)."""
    per_example = sum((fan_in + ELEMENTWISE_COST) * units for fan_in, units in shapes)
    parameters = sum((fan_in + 1) * units for fan_in, units in shapes)
    return m * per_example + PARAMETER_COST * parameters


def _model(problem_req: Any, settings: Settings) -> tuple[descent.Trainable, dict[str, Any], int]:
    """The descent model of a problem, its pairing's description, and the work of one step (step_work)."""
    problem_req = problem_req.model_copy(update={"explain": False, "verify": False})
    model = prepare(problem_req, settings).model
    shapes = [(int(W.shape[0]), int(W.shape[1]) if W.ndim == 2 else 1) for W in model.Ws]
    # a formula's tree is walked per example: its nodes (each hidden layer's times its units) join the work
    widths = [int(np.size(b)) for b in model.bs]
    work = step_work(model.m, shapes) + FORMULA_NODE_COST * model.m * network_nodes(model.hidden, widths, model.pairing)
    return descent.trainable(model), pairing_json(model.pairing), work


def _with_pairing(problem_req: Any, other: Any) -> Any:
    """The same problem with another output pairing (a preset becomes a single_layer model)."""
    X = problem_req.data.X
    as_array = isinstance(X, np.ndarray)  # from the array path or a .npy part: not re-encoded
    # any valid matrix stands in for an array X: X's own validity does not depend on the pairing
    dump = request_json(problem_req, placeholder=True)
    if dump["model"] == "neural_network":
        dump["layers"][-1] = {"activation": as_json(other.activation)}
    else:
        dump["model"] = "single_layer"
        dump["activation"] = as_json(other.activation)
    dump["loss"] = as_json(other.loss)
    dump.pop("loss_params", None)
    if other.loss_params is not None:
        dump["loss_params"] = other.loss_params.model_dump(exclude_none=True)

    other_req = GRADIENT_REQUEST.validate_json(json.dumps(dump))
    if as_array:
        other_req.data.__dict__["X"] = X
    return other_req


def run_descent(req: DescentRequest, settings: Settings) -> dict[str, Any]:
    problems = [req.problem]
    if req.compare_with is not None:
        try:
            problems.append(_with_pairing(req.problem, req.compare_with))
        except Exception as exc:  # pydantic's ValidationError: the second pairing does not fit the data
            raise ProblemError(
                422,
                "validation-error",
                f"compare_with does not fit this problem: {str(exc).splitlines()[0]}",
                [{"loc": ["compare_with"], "msg": "the second pairing cannot take this problem"}],
            ) from None
    if req.steps > settings.max_descent_steps:
        raise ProblemError(
            422,
            "validation-error",
            f"At most {settings.max_descent_steps} steps.",
            [{"loc": ["steps"], "msg": f"at most {settings.max_descent_steps}"}],
        )
    record_every = req.record_every or max(1, req.steps // 10)
    models = []
    for i, problem_req in enumerate(problems):
        loc = "problem" if i == 0 else "compare_with"
        try:
            models.append(_model(problem_req, settings))
        except ProblemError as exc:
            errors = None if exc.errors is None else [{"loc": [loc, *e["loc"]], "msg": e["msg"]} for e in exc.errors]
            raise ProblemError(exc.status, exc.slug, exc.detail, errors, **exc.extra) from None
    # every run evaluates J and its gradients steps + 1 times (the last one for the final point)
    per_step = sum(work for _, _, work in models)
    total = (req.steps + 1) * per_step
    if total > settings.max_descent_work:
        most = max(0, settings.max_descent_work // per_step - 1)
        raise ProblemError(
            422,
            "validation-error",
            f"This descent takes about {total} units of work ((steps + 1) × {per_step} per step over "
            f"{len(models)} run{'s' if len(models) > 1 else ''}), above the limit of {settings.max_descent_work}: "
            f"take at most {most} steps, or descend on fewer examples or a smaller model.",
            [{"loc": ["steps"], "msg": f"too much work: at most {most} steps for this problem"}],
        )
    # the parameters recorded every record_every steps (and at the end) are kept and sent whole
    parameters = sum(sum(int(np.size(p)) for p in model.params) for model, _, _ in models)
    recorded = (req.steps // record_every + 2) * parameters
    if recorded > settings.max_descent_recorded:
        fewest = -(-req.steps * parameters // max(1, settings.max_descent_recorded - 2 * parameters))
        raise ProblemError(
            422,
            "validation-error",
            f"This descent would record {recorded} parameter values ({parameters} parameters every {record_every} "
            f"steps), above the limit of {settings.max_descent_recorded}: record less often (record_every) or "
            "take fewer steps.",
            [
                {
                    "loc": ["record_every"],
                    "msg": f"records {recorded} values; at most {settings.max_descent_recorded}"
                    + (f" (record_every ≥ {fewest})" if settings.max_descent_recorded > 2 * parameters else ""),
                }
            ],
        )
    runs = []
    for model, pairing, _ in models:
        run = descent.gradient_descent(
            model,
            req.learning_rate,
            req.steps,
            record_every=record_every,
            patience=req.patience,
            gradient_tolerance=req.gradient_tolerance,
        )
        runs.append({"pairing": pairing, **run})
    out: dict[str, Any] = {"runs": runs}
    if len(runs) == 2:
        out["comparison"] = _compare(runs)
    return out


def _compare(runs: list[dict[str, Any]]) -> str:
    a, b = runs

    def name(r: dict[str, Any]) -> str:
        p = r["pairing"]
        return f"{named(p['activation'])} + {named(p['loss'])}" + (" (canonical)" if p["canonical"] else "")

    lines = [
        f"{name(r)}: {r['status']} after {r['steps_taken']} steps, J from {r['history']['loss'][0]:.6g} to "
        f"{r['final']['loss']:.6g}, ‖∇J‖ from {r['history']['gradient_norm'][0]:.3g} to "
        f"{r['final']['gradient_norm']:.3g}"
        for r in runs
    ]
    canonical = [r for r in runs if r["pairing"]["canonical"]]
    if len(canonical) == 1:
        other = b if canonical[0] is a else a
        lines.append(
            f"The two costs are different functions, so compare how fast each falls, not their values. With the "
            f"canonical pairing ∂L/∂z = f − y; with {name(other)} the gradient keeps the factor ∂f/∂z, which "
            "vanishes where the activation saturates, so examples that are confidently wrong barely move the "
            "parameters and training slows."
        )
    return "\n".join(lines)

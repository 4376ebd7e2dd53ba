"""From a validated request to a compute Problem: the cross-field rules a schema cannot express.

Checked here, before any array is built, each with the location of the offending value:
rectangular X; len(w) = columns of X and len(y) = rows; softmax shapes (w n×k, b k); that a
single_layer's activation and parameter shapes agree; the pairing's compatibility; loss
parameters that belong to the chosen loss; targets within the loss's domain (read from the
compute layer's declarations); the size of the requested breakdown and verification.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from service.api.errors import ProblemError
from service.compute.activations import ACTIVATIONS, ActivationName
from service.compute.check import evaluations_needed
from service.compute.errors import IncompatiblePairing
from service.compute.losses import LOSSES, LossName
from service.compute.models import (
    ExplainLevel,
    Problem,
    Regularization,
    explain_size,
    prepare_targets,
    target_violations,
)
from service.compute.pairings import PRESETS, ModelName, make_pairing
from service.settings import Settings

Loc = list[str | int]


@dataclass
class Prepared:
    problem: Problem
    explain: ExplainLevel
    verify: bool
    work: int  # m·n·k, the size of one evaluation


def _explain_level(value: bool | str) -> ExplainLevel:
    if value is True or value == "factors":
        return ExplainLevel.FACTORS
    if value == "full":
        return ExplainLevel.FULL
    return ExplainLevel.NONE


def _invalid(errors: list[dict[str, Any]]) -> ProblemError:
    return ProblemError(422, "validation-error", "The request's arrays do not fit together.", errors)


def prepare(req: Any, settings: Settings) -> Prepared:
    """Check the cross-field rules of a validated request and build the compute Problem."""
    model = ModelName(req.model)
    if model is ModelName.SINGLE_LAYER:
        act_name, loss_name = ActivationName(req.activation), LossName(req.loss)
    else:
        act_name, loss_name = PRESETS[model]
    vector = ACTIVATIONS[act_name].vector

    errors: list[dict[str, Any]] = []
    X = req.data.X
    m, n = len(X), len(X[0])
    if n == 0:
        errors.append({"loc": ["data", "X", 0], "msg": "each row of X needs at least one feature"})
    for i, row in enumerate(X):
        if len(row) != n:
            errors.append({"loc": ["data", "X", i], "msg": f"row has {len(row)} entries; row 0 has {n}"})
            if len(errors) >= 20:
                break
    if errors:
        raise _invalid(errors)

    w, b = req.parameters.w, req.parameters.b
    w_is_matrix = bool(w) and isinstance(w[0], list)
    if vector:
        if not w_is_matrix or not isinstance(b, list):
            raise _invalid(
                [{"loc": ["parameters"], "msg": "softmax needs w as n rows of k numbers and b as k numbers"}]
            )
        k = len(w[0])
        if len(w) != n:
            errors.append({"loc": ["parameters", "w"], "msg": f"w has {len(w)} rows; X has n = {n} columns"})
        for j, row in enumerate(w):
            if len(row) != k:
                errors.append({"loc": ["parameters", "w", j], "msg": f"row has {len(row)} entries; row 0 has {k}"})
                if len(errors) >= 20:
                    break
        if k < 2:
            errors.append({"loc": ["parameters", "w", 0], "msg": "softmax needs k ≥ 2 classes (columns of w)"})
        elif len(b) != k and not any(e["loc"][:2] == ["parameters", "w"] and len(e["loc"]) == 3 for e in errors):
            errors.append({"loc": ["parameters", "b"], "msg": f"b has {len(b)} entries; w has k = {k} columns"})
    else:
        k = 1
        if w_is_matrix or isinstance(b, list):
            raise _invalid(
                [{"loc": ["parameters"], "msg": f"{act_name} gives one output: w must be n numbers and b a number"}]
            )
        if len(w) != n:
            errors.append({"loc": ["parameters", "w"], "msg": f"w has {len(w)} entries; X has n = {n} columns"})
    y = req.data.y
    if len(y) != m:
        errors.append({"loc": ["data", "y"], "msg": f"y has {len(y)} entries; X has m = {m} rows"})
    y_rows = bool(y) and isinstance(y[0], list)
    if not vector and y_rows:
        errors.append({"loc": ["data", "y"], "msg": f"{act_name} gives one output: y must be m numbers"})
    if y_rows:
        for i, row in enumerate(y):
            if len(row) != k:
                errors.append({"loc": ["data", "y", i], "msg": f"row has {len(row)} entries; expected k = {k}"})
                if len(errors) >= 20:
                    break
    if errors:
        raise _invalid(errors)

    params: dict[str, float] = {}
    raw_params = getattr(req, "loss_params", None)
    if raw_params is not None:
        declared = {p.name for p in LOSSES[loss_name].param_specs}
        for key, value in raw_params.model_dump(exclude_none=True).items():
            if key not in declared:
                errors.append({"loc": ["loss_params", key], "msg": f"{loss_name} takes no parameter {key}"})
            else:
                params[key] = value
        if errors:
            raise _invalid(errors)
    try:
        pairing = make_pairing(act_name, loss_name, params)
    except IncompatiblePairing as exc:
        raise ProblemError(422, "incompatible-pairing", exc.detail, activation=act_name, loss=loss_name) from None

    y_arr = np.asarray(y, dtype=np.float64)
    bad = target_violations(pairing, y_arr, k)
    if bad:
        raise ProblemError(
            422,
            "domain-error",
            f"Some targets are outside the domain of {loss_name}.",
            [{"loc": ["data", "y", *idx], "msg": msg} for idx, msg in bad],
        )

    level = _explain_level(req.explain)
    if level is not ExplainLevel.NONE:
        size = explain_size(m, k)
        if size > settings.max_explain_values:
            raise ProblemError(
                422,
                "explain-too-large",
                f"The breakdown would hold {size} numbers, above the limit of {settings.max_explain_values}. "
                "Ask for it on fewer examples (a few rows of X and y), or set explain to false to get the "
                "loss and gradients alone.",
                size=size,
                limit=settings.max_explain_values,
            )
    reg = None
    if req.regularization is not None:
        reg = Regularization(req.regularization.kind, req.regularization.lambda_)
    X_arr = np.asarray(X, dtype=np.float64)
    problem = Problem(
        model=model,
        pairing=pairing,
        X=X_arr,
        y=prepare_targets(pairing, y_arr, k),
        w=np.asarray(w, dtype=np.float64),
        b=np.asarray(b, dtype=np.float64),
        regularization=reg,
    )
    work = m * n * k
    if req.verify:
        needed = evaluations_needed(problem) * work
        if needed > settings.max_verify_work:
            raise ProblemError(
                422,
                "explain-too-large",
                f"A finite-difference check of this problem takes about {needed} multiply-adds, above the limit "
                f"of {settings.max_verify_work}. Verify a smaller problem (fewer examples or features), or set "
                "verify to false.",
                size=needed,
                limit=settings.max_verify_work,
            )
    return Prepared(problem, level, bool(req.verify), work)

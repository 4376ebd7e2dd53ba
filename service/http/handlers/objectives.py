"""From a validated request to a compute Objective: the cross-field rules a schema cannot express.

Checked here, before any array is built, each with the location of the offending value:
rectangular X; len(w) = columns of X and len(y) = rows; softmax shapes (w n×k, b k); that a
single_layer's activation and parameter shapes agree; the pairing's compatibility; loss
parameters that belong to the chosen loss; targets within the loss's domain (read from the
compute layer's declarations); the size of the requested breakdown and verification.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from service.compute.activations import Activation, ActivationName
from service.compute.errors import IncompatiblePairing
from service.compute.finite_differences import evaluations_needed
from service.compute.losses import LOSSES, LossName
from service.compute.model_names import ModelName
from service.compute.models import Objective, Regularization, explain_size, prepare_targets, target_violations
from service.compute.pairings import PRESETS, Pairing, make_pairing
from service.http.errors import ProblemError
from service.http.handlers.custom_formulas import (
    activation,
    check_work,
    formula_pairing,
    is_formula,
    network_nodes,
)
from service.settings import Settings

Loc = list[str | int]


class ExplainLevel(StrEnum):
    """How much of the chain-rule breakdown a request asks for (the compute layer knows no such
    thing: its caller builds the breakdown from the evaluation)."""

    NONE = "none"
    FACTORS = "factors"
    FULL = "full"


@dataclass
class Prepared:
    """A model of any kind, checked and built, with what the request asks of it."""

    model: Objective
    explain: ExplainLevel
    verify: bool
    work: int  # m·Σ n_{l−1}·n_l (m·n·k for one layer): the multiply-adds of one evaluation


@dataclass
class _Shaped:
    """What a kind's own shape rules give the common rest of `prepare`."""

    pairing: Pairing
    y: Any
    k: int  # outputs
    Ws: list[Any]
    bs: list[Any]
    hidden: list[Activation]
    breakdown_widths: list[int]  # the units of each layer the breakdown lists (none for one layer)
    advice: tuple[str, str, str]  # what to make smaller: the breakdown's, the check's noun, the check's


def _explain_level(value: bool | str) -> ExplainLevel:
    if value is True or value == "factors":
        return ExplainLevel.FACTORS
    if value == "full":
        return ExplainLevel.FULL
    return ExplainLevel.NONE


def _invalid(errors: list[dict[str, Any]]) -> ProblemError:
    return ProblemError(422, "validation-error", "The request's arrays do not fit together.", errors)


def _loss_params(loss_name: Any, raw_params: Any) -> dict[str, float]:
    """The loss's own parameters (422 for another loss's; a formula loss declares none)."""
    params: dict[str, float] = {}
    if raw_params is not None and not is_formula(loss_name):
        declared = {p.name for p in LOSSES[loss_name].param_specs}
        errors = []
        for key, value in raw_params.model_dump(exclude_none=True).items():
            if key not in declared:
                errors.append({"loc": ["loss_params", key], "msg": f"{loss_name} takes no parameter {key}"})
            else:
                params[key] = value
        if errors:
            raise _invalid(errors)
    elif raw_params is not None:
        params = raw_params.model_dump(exclude_none=True)
    return params


def _pairing(act: Any, loss: Any, raw_params: Any, act_loc: list[str | int]) -> Pairing:
    """The pairing, with the loss's own parameters only (422 for another loss's), or why not; either side may
    be a formula (service/http/handlers/custom_formulas.py)."""
    params = _loss_params(loss, raw_params)
    if is_formula(act) or is_formula(loss):
        return formula_pairing(act, loss, params, act_loc)
    act_name, loss_name = ActivationName(act), LossName(loss)
    try:
        return make_pairing(act_name, loss_name, params)
    except IncompatiblePairing as exc:
        raise ProblemError(422, "incompatible-pairing", exc.detail, activation=act_name, loss=loss_name) from None


def _targets(pairing: Pairing, y: Any, k: int) -> np.ndarray:
    """y as an array, every target checked against the loss's declared domain (422 with locations)."""
    y_arr = np.asarray(y, dtype=np.float64)
    bad = target_violations(pairing, y_arr, k)
    if bad:
        raise ProblemError(
            422,
            "domain-error",
            f"Some targets are outside the domain of {pairing.loss.name}.",
            [{"loc": ["data", "y", *idx], "msg": msg} for idx, msg in bad],
        )
    return y_arr


def _ragged_rows(rows: Any, n: int) -> Any:
    """The rows to look at one by one for their lengths: none when all have n entries (checked in C),
    or when they are an array (from the array path, rectangular by construction)."""
    if isinstance(rows, np.ndarray) or set(map(len, rows)) == {n}:
        return ()
    return rows


def _ragged_row_errors(rows: Any, n: int, errors: list[dict[str, Any]], *, every: bool = False) -> None:
    """Rows of X whose length is not n (row 0's), or `every` row, at most 20 reported."""
    for i, row in enumerate(rows):
        if len(row) != n or every:
            errors.append({"loc": ["data", "X", i], "msg": f"row has {len(row)} entries; row 0 has {n}"})
            if len(errors) >= 20:
                break


def _matrix(rows: Any, m: int, n: int) -> np.ndarray:
    """m rows of n numbers (checked rectangular) as an (m, n) array: fromiter over the flattened rows
    is faster than np.asarray on nested lists (docs/performance.md, "Measured choices in the code")."""
    if isinstance(rows, np.ndarray):
        return rows
    return np.fromiter(itertools.chain.from_iterable(rows), dtype=np.float64, count=m * n).reshape(m, n)


def within_limits(m: int, n: int, settings: Settings) -> bool:
    """m examples of n features are within the size limits (what _check_size refuses, as a test)."""
    return m <= settings.max_rows and n <= settings.max_features and m * n <= settings.max_elements


def _check_size(m: int, n: int, k: int, settings: Settings, k_loc: tuple[str | int, ...] = ("parameters", "b")) -> None:
    """Bounded work: refuse a problem above the configured sizes before any array is built."""
    errors: list[dict[str, Any]] = []
    if m > settings.max_rows:
        errors.append({"loc": ["data", "X"], "msg": f"{m} examples; at most {settings.max_rows}"})
    if n > settings.max_features:
        errors.append({"loc": ["data", "X", 0], "msg": f"{n} features; at most {settings.max_features}"})
    if m * n > settings.max_elements:
        errors.append({"loc": ["data", "X"], "msg": f"m·n = {m * n} numbers; at most {settings.max_elements}"})
    if k > settings.max_classes:
        errors.append({"loc": list(k_loc), "msg": f"{k} classes; at most {settings.max_classes}"})
    if errors:
        raise ProblemError(422, "validation-error", "The problem is larger than this service accepts.", errors)


def prepare(req: Any, settings: Settings) -> Prepared:
    """Check the cross-field rules of a validated request, of any model kind, and build its Objective: the
    kind's own shape rules (`_single_layer_shapes`, `_network_shapes`), then for every kind the targets,
    the refusals of a too large breakdown or check, and the arrays."""
    model_name = ModelName(req.model)
    X = req.data.X
    m, n = len(X), len(X[0])
    shaped = (_network_shapes if model_name is ModelName.NEURAL_NETWORK else _single_layer_shapes)(req, settings, m, n)
    pairing, k = shaped.pairing, shaped.k
    y_arr = _targets(pairing, shaped.y, k)
    level = _explain_level(req.explain)
    if level is not ExplainLevel.NONE:
        size = explain_size(m, k, shaped.breakdown_widths)
        if size > settings.max_explain_values:
            raise ProblemError(
                422,
                "explain-too-large",
                f"The breakdown would hold {size} numbers, above the limit of {settings.max_explain_values}. "
                f"Ask for it on {shaped.advice[0]}, or set explain to false{shaped.advice[1]}.",
                size=size,
                limit=settings.max_explain_values,
            )
    widths = [len(b) if isinstance(b, list) else 1 for b in shaped.bs]
    work = m * sum(a * b for a, b in zip([n, *widths[:-1]], widths, strict=True))
    parameters = sum(len(W) * w + w for W, w in zip(shaped.Ws, widths, strict=True))
    formula_nodes = network_nodes(shaped.hidden, widths, pairing)
    if formula_nodes:  # a formula's tree is walked per example and pass: bounded before any array is built
        passes = 1 + (level is not ExplainLevel.NONE) + (evaluations_needed(parameters) if req.verify else 0)
        check_work(formula_nodes, m, passes, settings)
    if req.verify:
        needed = evaluations_needed(parameters) * work
        if needed > settings.max_verify_work:
            noun, smaller = shaped.advice[2].split("|")
            raise ProblemError(
                422,
                "explain-too-large",
                f"A finite-difference check of this {noun} takes about {needed} multiply-adds, above the limit "
                f"of {settings.max_verify_work}. Verify {smaller}, or set verify to false.",
                size=needed,
                limit=settings.max_verify_work,
            )
    reg = None
    if req.regularization is not None:
        reg = Regularization(req.regularization.kind, req.regularization.lambda_)
    model = Objective(
        model=model_name,
        pairing=pairing,
        X=_matrix(X, m, n),
        y=prepare_targets(pairing, y_arr, k),
        Ws=[np.asarray(W, dtype=np.float64) for W in shaped.Ws],
        bs=[np.asarray(b, dtype=np.float64) for b in shaped.bs],
        hidden=shaped.hidden,
        regularization=reg,
    )
    return Prepared(model, level, bool(req.verify), work)


def _single_layer_shapes(req: Any, settings: Settings, m: int, n: int) -> _Shaped:
    """A single-layer model's shapes: w (n,) and b a number, or w n×k and b k numbers with softmax."""
    model = ModelName(req.model)
    act_spec: Any
    if model is ModelName.SINGLE_LAYER:
        act_spec, loss_spec = req.activation, req.loss
    else:
        act_spec, loss_spec = PRESETS[model]
    act = activation(act_spec, ["activation"])
    act_name, vector = act.name, act.vector

    errors: list[dict[str, Any]] = []
    X = req.data.X
    b = req.parameters.b
    _check_size(m, n, len(b) if isinstance(b, list) else 1, settings)
    if n == 0:
        errors.append({"loc": ["data", "X", 0], "msg": "each row of X needs at least one feature"})
    _ragged_row_errors(_ragged_rows(X, n), n, errors)
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

    # only single_layer has loss_params (a preset's loss has none); getattr on a pydantic model that
    # lacks the field goes through its __getattr__ and an exception, ~4 µs of a small request
    raw_params = req.loss_params if model is ModelName.SINGLE_LAYER else None
    pairing = _pairing(act_spec, loss_spec, raw_params, ["activation"])
    return _Shaped(
        pairing,
        y,
        k,
        [w],
        [b],
        [],
        [],
        (
            "fewer examples (a few rows of X and y)",
            " to get the loss and gradients alone",
            "problem|a smaller problem (fewer examples or features)",
        ),
    )


def network_cost_errors(m: int, weights: int, units: int, settings: Settings) -> list[dict[str, Any]]:
    """The forward and backward passes' time and memory, bounded: m·Σ weights multiply-adds forward (twice
    that backward) and m·Σ units values (z, a, δ and temporaries, about 75 bytes each, kept for backprop)."""
    errors: list[dict[str, Any]] = []
    work, values = m * weights, m * units
    if work > settings.max_network_work:
        errors.append(
            {
                "loc": ["data", "X"],
                "msg": f"m·Σ weights = {m}·{weights} = {work} multiply-adds per pass; at most "
                f"{settings.max_network_work}: send fewer examples or smaller layers",
            }
        )
    if values > settings.max_network_values:
        errors.append(
            {
                "loc": ["data", "X"],
                "msg": f"m·Σ units = {m}·{units} = {values} values kept for backpropagation; at most "
                f"{settings.max_network_values}: send fewer examples or fewer units",
            }
        )
    return errors


def _network_shapes(req: Any, settings: Settings, m: int, n: int) -> _Shaped:
    """A network's shapes: W[l] n_{l−1}×n_l and b[l] n_l numbers per layer, within the network's limits."""
    errors: list[dict[str, Any]] = []
    specs, layers = req.layers, req.parameters.layers
    X = req.data.X
    _check_size(m, n, len(layers[-1].b) if layers else 1, settings, ("parameters", "layers", len(layers) - 1, "b"))
    if len(specs) > settings.max_layers:
        raise _invalid([{"loc": ["layers"], "msg": f"at most {settings.max_layers} layers"}])
    if len(layers) != len(specs):
        raise _invalid(
            [{"loc": ["parameters", "layers"], "msg": f"{len(layers)} layers of parameters for {len(specs)} layers"}]
        )
    # no features: every row is reported (a single-layer model's answer names row 0 alone)
    _ragged_row_errors(_ragged_rows(X, n) if n else X, n, errors, every=n == 0)
    width, params, weights, total_units = n, 0, 0, 0
    for i, (spec, lp) in enumerate(zip(specs, layers, strict=True)):
        loc = ["parameters", "layers", i]
        units = len(lp.W[0])
        if len(lp.W) != width:
            errors.append({"loc": [*loc, "W"], "msg": f"W has {len(lp.W)} rows; the layer's input has {width} units"})
        for j, row in enumerate(lp.W):
            if len(row) != units:
                errors.append({"loc": [*loc, "W", j], "msg": f"row has {len(row)} entries; row 0 has {units}"})
                break
        if len(lp.b) != units:
            errors.append({"loc": [*loc, "b"], "msg": f"b has {len(lp.b)} entries; W has {units} columns"})
        if units > settings.max_units:
            errors.append({"loc": [*loc, "W"], "msg": f"at most {settings.max_units} units per layer"})
        if i < len(specs) - 1 and activation(spec.activation, ["layers", i, "activation"]).vector:
            errors.append(
                {"loc": ["layers", i, "activation"], "msg": "softmax may only be the last layer's activation"}
            )
        params += len(lp.W) * units + len(lp.b)
        weights += width * units
        total_units += units
        width = units
    if params > settings.max_parameters:
        errors.append(
            {"loc": ["parameters", "layers"], "msg": f"{params} parameters; at most {settings.max_parameters}"}
        )
    if errors:
        raise _invalid(errors)
    cost_errors = network_cost_errors(m, weights, total_units, settings)
    if cost_errors:
        raise ProblemError(422, "validation-error", "The network is larger than this service accepts.", cost_errors)
    out_activation = activation(specs[-1].activation, ["layers", len(specs) - 1, "activation"])
    out_act, vector = out_activation.name, out_activation.vector
    last = ["parameters", "layers", len(layers) - 1, "W"]
    if vector and width < 2:
        raise _invalid([{"loc": last, "msg": "a softmax output layer needs k ≥ 2 units"}])
    if not vector and width != 1:
        raise _invalid([{"loc": last, "msg": f"{out_act} gives one output: the last layer needs 1 unit"}])
    y = req.data.y
    if len(y) != m:
        raise _invalid([{"loc": ["data", "y"], "msg": f"y has {len(y)} entries; X has m = {m} rows"}])
    y_rows = bool(y) and isinstance(y[0], list)
    if y_rows and not vector:
        raise _invalid([{"loc": ["data", "y"], "msg": f"{out_act} gives one output: y must be m numbers"}])
    if y_rows:
        bad_rows = [
            {"loc": ["data", "y", i], "msg": f"row has {len(row)} entries; the output layer has k = {width} units"}
            for i, row in enumerate(y)
            if len(row) != width
        ]
        if bad_rows:
            raise _invalid(bad_rows[:20])
    pairing = _pairing(specs[-1].activation, req.loss, req.loss_params, ["layers", len(specs) - 1, "activation"])
    return _Shaped(
        pairing,
        y,
        width,
        [lp.W for lp in layers],
        [lp.b for lp in layers],
        [activation(s.activation, ["layers", i, "activation"]) for i, s in enumerate(specs[:-1])],
        [len(lp.b) for lp in layers],
        ("fewer examples or a smaller network", "", "network|a smaller network or fewer examples"),
    )

"""The chain-rule breakdown of any model, recorded as data from the arrays the computation already made.

One builder, `build_breakdown`, for every model kind: it only reads what `models.evaluate` computed
(z, f, L, ∂L/∂z per layer, the gradients) and adds the output layer's display factors ∂L/∂f and ∂f/∂z,
the same for a single-layer model and a network's output layer, so turning it on never changes a number
of the result. Then the steps: a single-layer model's chain (z, f, L, J, the factors, dJ/dw, dJ/db), or
a network's layers and its steps forward and back.
Values are numpy arrays (examples first); entries that are not representable in float64 are
replaced by None and explained in `notes`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from service.compute.activations import Activation
from service.compute.custom import activation_steps, loss_steps
from service.compute.derivations import DerivationStep
from service.compute.domains import Formula
from service.compute.pairings import Pairing, rhs
from service.compute.stable import Array
from service.compute.step_formulas import (
    FIRST_LAYER_NOTE,
    a_formula,
    chain_formulas,
    cost_formula,
    db_formula,
    dW_formula,
    g_prime_formula,
    hidden_delta_formula,
    output_delta_formula,
    z_formula,
)

if TYPE_CHECKING:
    from service.compute.models import Evaluation, Objective

MAX_EXAMPLES_LISTED = 50


def _formula(f: Formula) -> dict[str, str]:
    return {"latex": f.latex, "text": f.text}


def _derivation(steps: tuple[DerivationStep, ...]) -> list[dict[str, str]]:
    return [{"rule": str(s.rule), "latex": s.latex, "text": s.text, "why": s.why} for s in steps]


def _examples(mask: Array) -> list[int]:
    if mask.ndim > 1:
        mask = np.any(mask.reshape(mask.shape[0], -1), axis=1)
    return [int(i) for i in np.flatnonzero(mask)]


def _displayable(a: Array, quantity: str, reason: str, notes: list[dict[str, Any]]) -> Any:
    """The array itself when finite; else nested lists with None where not representable, and a note."""
    finite = np.isfinite(a)
    if np.all(finite):
        return a
    examples = _examples(~finite)
    notes.append(
        {
            "quantity": quantity,
            "examples": examples[:MAX_EXAMPLES_LISTED],
            "count": len(examples),
            "reason": reason,
        }
    )
    obj = a.astype(object)
    obj[~finite] = None
    return obj.tolist()


def _step(
    factor: str, kind: str, formula: Formula, value: Any = None, *, value_ref: str | None = None, **extra: Any
) -> dict[str, Any]:
    step: dict[str, Any] = {"factor": factor, "kind": kind, **_formula(formula)}
    if value_ref is not None:
        step["value_ref"] = value_ref
    else:
        step["value"] = value
    step.update(extra)
    return step


REGULARIZATION_NOTE = "b is not regularized"
# the rule named on the dL/dz step
RULE_CANONICAL = "canonical simplification"
RULE_CHAIN = "chain rule: dL/dz = dL/df * df/dz"


def build_breakdown(model: Objective, ev: Evaluation, *, full: bool) -> dict[str, Any]:
    """The breakdown of any model: the output layer's factors per example (the same for every kind),
    then a single-layer model's chain of steps or a network's layers and steps."""
    notes: list[dict[str, Any]] = []
    per_sample = _output_factors(model, ev, notes)
    if model.is_network:
        return _network_breakdown(model, ev, per_sample, notes, full=full)
    return _single_layer_breakdown(model, ev, per_sample, notes, full=full)


# why a display factor may be missing: a single-layer model's answers always said more
_UNREPRESENTABLE = (
    " is not representable in float64 for these examples (f rounds to a boundary of the loss's domain, "
    "so the factor overflows); the gradient does not need it: dL/dz was computed from z in stable form"
)
_UNREPRESENTABLE_NETWORK = " is not representable in float64 for these examples; the gradient does not need it"


def _output_factors(model: Objective, ev: Evaluation, notes: list[dict[str, Any]]) -> dict[str, Any]:
    """per_sample: the output layer's z, f, L, ∂L/∂f, ∂f/∂z and ∂L/∂z, in the pairing's shapes."""
    pairing = model.pairing
    dL_df_raw, df_dz_raw = pairing.factors(ev.z, ev.f, model.y)
    why = _UNREPRESENTABLE_NETWORK if model.is_network else _UNREPRESENTABLE
    dL_df = _displayable(dL_df_raw, "dL/df", "dL/df" + why, notes)
    df_dz = _displayable(df_dz_raw, "df/dz", "df/dz" + why, notes)
    if not model.is_network:
        _note_rounding(model, ev, notes)
    return {"z": ev.z, "f": ev.f, "loss": ev.per_sample_loss, "dL_df": dL_df, "df_dz": df_dz, "dL_dz": ev.dL_dz}


def _single_layer_breakdown(
    model: Objective, ev: Evaluation, per_sample: dict[str, Any], notes: list[dict[str, Any]], *, full: bool
) -> dict[str, Any]:
    """Ordered steps ending in dJ/dw and dJ/db, simplification and notes."""
    pairing = model.pairing
    act, loss = pairing.activation, pairing.loss
    vector = pairing.vector
    dL_df, df_dz = per_sample["dL_df"], per_sample["df_dz"]
    reg = model.regularization
    chain = chain_formulas(vector, reg.kind if reg else None)

    derivation_f: dict[str, Any] = {"derivation": _derivation(activation_steps(act))} if full else {}
    derivation_L: dict[str, Any] = {"derivation": _derivation(loss_steps(loss))} if full else {}
    canonical = pairing.canonical_info

    steps = [
        _step("z", "forward", chain.z, ev.z),
        _step("f", "forward", act.formula, ev.f),
        _step("L", "forward", loss.formula, ev.per_sample_loss),
        _step("J", "forward", chain.J, ev.loss),
        _step("dL/df", "local", loss.derivative_formula, dL_df, **derivation_L),
        _step("df/dz", "local", act.derivative_formula, df_dz, **derivation_f),
        _step(
            "dL/dz",
            "chain",
            pairing.dL_dz_formula,
            ev.dL_dz,
            rule=RULE_CANONICAL if canonical else RULE_CHAIN,
        ),
        _step("dz/dw", "local", chain.dz_dw, value_ref="data.X"),
        _step("dz/db", "local", chain.dz_db, 1.0),
    ]
    if reg is not None and chain.dR_dw is not None:
        steps.append(_step("dR/dw", "regularization", chain.dR_dw, ev.grad_w_regularization, note=REGULARIZATION_NOTE))
    steps.append(_step("dJ/dw", "aggregate", chain.dJ_dw, ev.grad_w))
    steps.append(_step("dJ/db", "aggregate", chain.dJ_db, ev.grad_b if vector else float(ev.grad_b)))

    simplification = canonical_simplification(pairing)
    return {"per_sample": per_sample, "steps": steps, "simplification": simplification, "notes": notes}


def _note_rounding(model: Objective, ev: Evaluation, notes: list[dict[str, Any]]) -> None:
    """Say where f rounds to a boundary of its range, which a learner would otherwise take as exact."""
    for bound, reason in model.pairing.activation.rounding_notes:
        ex = _examples(ev.f == bound)
        if ex:
            notes.append({"quantity": "f", "examples": ex[:MAX_EXAMPLES_LISTED], "count": len(ex), "reason": reason})


def canonical_simplification(pairing: Pairing, at_output_of: int | None = None) -> dict[str, Any] | None:
    """Why a canonical pairing's ∂L/∂z is f − y (None for any other pairing); `at_output_of` is the
    depth of a network whose output layer it is."""
    info = pairing.canonical_info
    if info is None:
        return None
    act, loss = pairing.activation, pairing.loss
    explanation = (
        f"{loss.name} is the negative log-likelihood of a {info.distribution} distribution written "
        f"in its natural parameter z: L = A(z) − y·z (+ terms without z), with {info.log_partition.text}. "
        f"A'(z) is the distribution's mean, and that mean is exactly the activation {act.name}: the canonical "
        f"link of the {info.distribution} distribution is the {info.link}. So ∂L/∂z = A'(z) − y "
        "= f − y: the factor ∂f/∂z cancels against ∂L/∂f. That is why the gradient has the same form "
        "(f − y)·x as linear regression's."
    )
    if at_output_of is not None:
        L = at_output_of
        explanation += (
            f" In a network this is the output layer: δ[{L}] = ∂L/∂z[{L}] = f − y, and backpropagation starts there."
        )
    return {
        "dL_dz": _formula(pairing.dL_dz_formula),
        "cancellation": _formula(info.cancellation),
        "distribution": info.distribution,
        "link": info.link,
        "log_partition": _formula(info.log_partition),
        "reason": _formula(
            Formula(
                r"L = A(z) - y\,z + c \;\Rightarrow\; \frac{\partial L}{\partial z} = A'(z) - y = f - y",
                "L = A(z) - y z + c, so dL/dz = A'(z) - y = f - y",
            )
        ),
        "explanation": explanation,
    }


SATURATION = 1e-4  # g'(z) below this fraction of its largest value: the unit passes almost no gradient


def _network_breakdown(
    net: Objective, ev: Evaluation, per_sample: dict[str, Any], notes: list[dict[str, Any]], *, full: bool
) -> dict[str, Any]:
    """layers (z, a, δ, g'(z), gradients per layer), ordered steps forward and back, notes."""
    L = net.depth
    pairing = net.pairing
    out_act, loss = pairing.activation, pairing.loss
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
            _note_vanishing(layer, act, z, gp, notes)
        layers.append(entry)
        steps.append(
            {
                "factor": f"z[{layer}]",
                "layer": layer,
                "kind": "forward",
                **_formula(z_formula(layer, layer - 1, FIRST_LAYER_NOTE if layer == 1 else "")),
                "value": z,
            }
        )
        steps.append(
            {
                "factor": f"a[{layer}]",
                "layer": layer,
                "kind": "forward",
                **_formula(a_formula(layer, str(act.name), rhs(act.formula))),
                "value": ev.activations[layer],
            }
        )
    reg = net.regularization
    reg_kind = reg.kind if reg is not None else None
    steps.append({"factor": "L", "layer": L, "kind": "forward", **_formula(loss.formula), "value": ev.per_sample_loss})
    steps.append(
        {
            "factor": "J",
            "kind": "forward",
            **_formula(cost_formula(reg_kind)),
            "value": ev.loss,
        }
    )
    full_L = {"derivation": _derivation(loss_steps(loss))} if full else {}
    full_f = {"derivation": _derivation(activation_steps(out_act))} if full else {}
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
    steps.append(
        {
            "factor": f"delta[{L}]",
            "layer": L,
            "kind": "chain",
            **_formula(output_delta_formula(L, pairing.dL_dz_formula)),
            "value": ev.deltas[-1],
            "rule": RULE_CANONICAL if pairing.canonical else RULE_CHAIN,
        }
    )
    for layer in range(L, 0, -1):
        steps.append(
            {
                "factor": f"dJ/dW[{layer}]",
                "layer": layer,
                "kind": "aggregate",
                **_formula(dW_formula(layer, layer - 1, reg_kind)),
                "value": ev.grad_Ws[layer - 1],
            }
        )
        steps.append(
            {
                "factor": f"dJ/db[{layer}]",
                "layer": layer,
                "kind": "aggregate",
                **_formula(db_formula(layer)),
                "value": ev.grad_bs[layer - 1],
            }
        )
        if layer > 1:
            g = net.activation(layer - 1)
            extra = {"derivation": _derivation(activation_steps(g))} if full else {}
            steps.append(
                {
                    "factor": f"delta[{layer - 1}]",
                    "layer": layer - 1,
                    "kind": "chain",
                    **_formula(
                        hidden_delta_formula(
                            layer, layer - 1, g_prime_formula(g.derivative_formula, layer - 1), str(g.name)
                        )
                    ),
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


def _note_vanishing(layer: int, act: Activation, z: Any, gp: Any, notes: list[dict[str, Any]]) -> None:
    """Say where a hidden layer's g'(z) lets almost no gradient through: what learners need to see."""
    name, peak = act.name, act.saturation_peak
    if peak is not None:
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
    elif act.dead_below_zero:
        dead = np.all(z <= 0, axis=0)
        if np.any(dead):
            units = [int(j) for j in np.flatnonzero(dead)]
            notes.append(
                {
                    "quantity": f"g'(z[{layer}])",
                    "examples": [],
                    "count": 0,
                    "units": units[:50],
                    "reason": f"{name} units {units[:10]} of layer {layer} are dead on this data: z ≤ 0 for every "
                    "example, so g'(z) = 0, their δ is 0 and no gradient reaches the weights feeding them",
                }
            )


def _note_gradient_scale(ev: Evaluation, notes: list[dict[str, Any]]) -> None:
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

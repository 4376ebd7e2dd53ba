"""The chain-rule breakdown, recorded as data from the arrays the computation already made.

It only reads what `models.evaluate` computed (z, f, L, ∂L/∂z, the gradients) and adds the
display factors ∂L/∂f and ∂f/∂z, so turning it on never changes a number of the result.
Values are numpy arrays (examples first); entries that are not representable in float64 are
replaced by None and explained in `notes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from service.compute.custom import activation_steps, loss_steps
from service.compute.derivations import DerivationStep
from service.compute.domains import Formula
from service.compute.pairings import Pairing
from service.compute.stable import Array

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


@dataclass(frozen=True)
class ChainFormulas:
    """The formulas of the derivation that depend only on the output's shape and the regularization,
    not on the activation and loss (whose formulas the catalogue gives): the same for every problem
    of that kind, so the learner's page can show them without any of the problem's numbers."""

    z: Formula
    J: Formula
    dz_dw: Formula
    dz_db: Formula
    dR_dw: Formula | None
    dJ_dw: Formula
    dJ_db: Formula


@cache
def chain_formulas(vector: bool, reg_kind: str | None) -> ChainFormulas:
    """z, J, ∂z/∂w, ∂z/∂b, ∂R/∂w, ∂J/∂w and ∂J/∂b for k outputs (`vector`) or one, and regularization
    `reg_kind` ("l2", "l1" or None)."""
    if vector:
        z_formula = Formula(r"z_k = \sum_{j} x_j W_{jk} + b_k", "z_k = sum_j x_j W_jk + b_k")
        dzdw = Formula(r"\frac{\partial z_k}{\partial W_{jk}} = x_j", "dz_k/dW_jk = x_j")
        dzdb = Formula(r"\frac{\partial z_k}{\partial b_k} = 1", "dz_k/db_k = 1")
        djdw_data = Formula(
            r"\frac{1}{m} \sum_{i=1}^{m} \left(\frac{\partial L}{\partial z_k}\right)_i x_{ij}",
            "(1/m) sum_i (dL/dz_k)_i x_ij",
        )
        djdb = Formula(
            r"\frac{\partial J}{\partial b_k} = "
            r"\frac{1}{m} \sum_{i=1}^{m} \left(\frac{\partial L}{\partial z_k}\right)_i",
            "dJ/db_k = (1/m) sum_i (dL/dz_k)_i",
        )
        lhs_w = (r"\frac{\partial J}{\partial W_{jk}}", "dJ/dW_jk")
    else:
        z_formula = Formula(r"z = w \cdot x + b = \sum_{j} w_j x_j + b", "z = w . x + b = sum_j w_j x_j + b")
        dzdw = Formula(r"\frac{\partial z}{\partial w_j} = x_j", "dz/dw_j = x_j")
        dzdb = Formula(r"\frac{\partial z}{\partial b} = 1", "dz/db = 1")
        djdw_data = Formula(
            r"\frac{1}{m} \sum_{i=1}^{m} \left(\frac{\partial L}{\partial z}\right)_i x_{ij}",
            "(1/m) sum_i (dL/dz)_i x_ij",
        )
        djdb = Formula(
            r"\frac{\partial J}{\partial b} = \frac{1}{m} \sum_{i=1}^{m} \left(\frac{\partial L}{\partial z}\right)_i",
            "dJ/db = (1/m) sum_i (dL/dz)_i",
        )
        lhs_w = (r"\frac{\partial J}{\partial w_j}", "dJ/dw_j")

    reg_latex = reg_text = ""
    dR: tuple[str, str] | None = None
    if reg_kind == "l2":
        reg_latex, reg_text = r" + \frac{\lambda}{2m} \sum_{j} w_j^{2}", " + lambda/(2m) sum_j w_j^2"
        dR = (r"\frac{\lambda}{m} w_j", "(lambda/m) w_j")
    elif reg_kind is not None:
        reg_latex, reg_text = r" + \frac{\lambda}{m} \sum_{j} \lvert w_j \rvert", " + (lambda/m) sum_j |w_j|"
        dR = (r"\frac{\lambda}{m} \operatorname{sign}(w_j)", "(lambda/m) sign(w_j)")

    return ChainFormulas(
        z=z_formula,
        J=Formula(r"J = \frac{1}{m} \sum_{i=1}^{m} L_i" + reg_latex, "J = (1/m) sum_i L_i" + reg_text),
        dz_dw=dzdw,
        dz_db=dzdb,
        dR_dw=Formula(r"\frac{\partial R}{\partial w_j} = " + dR[0], "dR/dw_j = " + dR[1]) if dR else None,
        dJ_dw=Formula(
            lhs_w[0] + " = " + djdw_data.latex + (" + " + dR[0] if dR else ""),
            lhs_w[1] + " = " + djdw_data.text + (" + " + dR[1] if dR else ""),
        ),
        dJ_db=djdb,
    )


def build_breakdown(objective: Objective, ev: Evaluation, *, full: bool) -> dict[str, Any]:
    """per_sample factors, ordered steps ending in dJ/dw and dJ/db, simplification and notes."""
    pairing = objective.pairing
    act, loss = pairing.activation, pairing.loss
    vector = pairing.vector
    notes: list[dict[str, Any]] = []
    dL_df_raw, df_dz_raw = pairing.factors(ev.z, ev.f, objective.y)
    unrepresentable = (
        "not representable in float64 for these examples (f rounds to a boundary of the loss's domain, "
        "so the factor overflows); the gradient does not need it: dL/dz was computed from z in stable form"
    )
    dL_df = _displayable(dL_df_raw, "dL/df", "dL/df is " + unrepresentable, notes)
    df_dz = _displayable(df_dz_raw, "df/dz", "df/dz is " + unrepresentable, notes)
    _note_rounding(objective, ev, notes)

    per_sample = {"z": ev.z, "f": ev.f, "loss": ev.per_sample_loss, "dL_df": dL_df, "df_dz": df_dz, "dL_dz": ev.dL_dz}

    chain = chain_formulas(vector, objective.regularization.kind if objective.regularization else None)
    reg = objective.regularization

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


def _note_rounding(objective: Objective, ev: Evaluation, notes: list[dict[str, Any]]) -> None:
    """Say where f rounds to a boundary of its range, which a learner would otherwise take as exact."""
    for bound, reason in objective.pairing.activation.rounding_notes:
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

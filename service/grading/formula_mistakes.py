"""The mistakes a wrong formula can be named by: each a variant formula of the question's target.

Two kinds (docs/design/formulas.md, "Mistakes in formulas"):

- the catalogue's codes (service.grading.mistakes) where the wrong formula equals that variant's
  formula: the per-example ∂L/∂z = r replaced (sign_flipped: −r; missing_activation_derivative:
  ∂L/∂f; extra_activation_derivative: (f − y)·∂f/∂z; used_z_for_f: z − y; double_factor: 2r), the
  factor x_j or 1/m dropped, the regularization term left out, rescaled or given to b, and the
  cost's own codes for L and J;
- the rules of differentiation (service.grading.malrules) broken at one node of the correct
  derivation: of L(g(z), y) by z for the ∂L/∂z family (∂L/∂w_j = ∂L/∂z·x_j, ∂J/∂w_j = (1/m)Σ ∂L/∂z·x_j
  + ∂R/∂w_j, ...), of L(f, y) by f and g(z) by z (and their products, for a learner who multiplies
  ∂L/∂f by ∂f/∂z), of the expression for a `derivative_of` question.

A variant is kept only when it is not equivalent to the truth at the question's points; the list is
in the order codes are named: rules of differentiation first, then the catalogue's order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from service.formulas import Expr, FormulaError, to_text
from service.formulas.tree import Symbol
from service.grading.formula_equivalence import Points, agree, values_or_none
from service.grading.formula_targets import Pairing, Question, Regularization, read, replace
from service.grading.malrules import RULE_CODES, Display, mal_derivatives
from service.grading.mistakes import MISTAKES

CATALOGUE_ORDER = tuple(m.code for m in MISTAKES)
ORDER = {code: k for k, code in enumerate((*RULE_CODES, *CATALOGUE_ORDER))}
MAX_VARIANTS = 400


@dataclass(frozen=True)
class FormulaVariant:
    code: str
    formula: Expr
    message: str
    values: list[Any] = field(repr=False, compare=False)  # at the question's points


def _compose(target: str, r: str, *, mean: bool = True, x: bool = True, dR: str | None = None, bias: str = "") -> str:
    """A ∂L/∂z-family target's formula from a per-example ∂L/∂z = r (a formula's text)."""
    factor = " x_j" if x else ""
    scale = "1/m " if mean else ""
    reg = f" + {dR}" if dR else ""
    return {
        "dL/dz": f"{r}",
        "dL/dw_j": f"({r}){factor}",
        "dL/db": f"{r}",
        "dJ/dw_j": f"{scale}sum_{{i=1}}^{{m}} ({r}){factor}{reg}",
        "dJ/db": f"{scale}sum_{{i=1}}^{{m}} ({r}){bias}",
    }[target]


R_FAMILY = ("dL/dz", "dL/dw_j", "dL/db", "dJ/dw_j", "dJ/db")


def _catalogue(q: Question) -> list[tuple[str, str, str]]:
    """(code, formula text, message) of each catalogue mistake that applies to the question."""
    p, reg, t = q.pairing, q.regularization, q.target
    if p is None:
        return []
    dR = reg.gradient() if reg else None
    out: list[tuple[str, str, str]] = []

    def r_variant(
        code: str, r: str, message: str, targets: tuple[str, ...] = R_FAMILY, mean: bool = True, x: bool = True
    ) -> None:
        """The target with ∂L/∂z = r (without 1/m, or x_j, when told), where the target is one of `targets`."""
        if t in targets:
            out.append((code, _compose(t, r, mean=mean, x=x, dR=dR), message))

    r = p.dL_dz
    not_identity = p.activation != "identity"
    r_variant(
        "sign_flipped", f"-({r})", "The sign is flipped: the error term is f − y (prediction minus target), not y − f."
    )
    if t == "dL/df":
        out.append(("sign_flipped", f"-({p.dL_df})", f"The sign is flipped: ∂L/∂f = {p.dL_df}."))
    r_variant(
        "missing_mean",
        r,
        "This is the sum over the examples, not the mean: J averages the per-example losses, so the sum needs "
        "the factor 1/m.",
        ("dJ/dw_j", "dJ/db"),
        mean=False,
    )
    r_variant(
        "missing_input_factor",
        r,
        "The factor ∂z/∂w_j = x_j is missing: z = Σ_j w_j x_j + b, so each example's ∂L/∂z is multiplied by its "
        "x_j (only ∂z/∂b = 1).",
        ("dL/dw_j", "dJ/dw_j"),
        x=False,
    )
    if t == "dz/dw_j":
        out.append(("missing_input_factor", "1", "∂z/∂w_j is x_j: z = Σ_j w_j x_j + b, and w_j is multiplied by x_j."))
    if not_identity:
        r_variant(
            "missing_activation_derivative",
            p.dL_df,
            f"You have left out ∂f/∂z: for {p.activation} it is {p.df_dz}, not 1 (∂L/∂z = ∂L/∂f · ∂f/∂z).",
        )
    if p.canonical and not_identity:
        r_variant(
            "extra_activation_derivative",
            f"(f - y)({p.df_dz})",
            f"∂f/∂z = {p.df_dz} is multiplied in once more: for {p.activation} with {p.loss}, ∂L/∂f · ∂f/∂z "
            "already simplifies to f − y (that factor has cancelled).",
        )
        r_variant(
            "used_z_for_f",
            "z - y",
            f"This uses z = w·x + b where the prediction belongs: the error term is f − y with f = {p.g}, not z − y.",
        )
    if p.loss == "squared_error":
        twice = "This is twice the right value: the loss is ½(f − y)², whose derivative is f − y, not 2(f − y)."
        r_variant("double_factor", f"2({r})", twice)
        if t == "dL/df":
            out.append(("double_factor", "2(f - y)", twice))
    if reg is not None:
        out.extend(_regularization(q, p, reg))
    out.extend(_loss(q, p, reg))
    return out


def _regularization(q: Question, p: Pairing, reg: Regularization) -> list[tuple[str, str, str]]:
    t, r, dR = q.target, p.dL_dz, reg.gradient()
    out: list[tuple[str, str, str]] = []
    if t == "dJ/db":
        extra = " + lambda/m b" if reg.kind == "l2" else " + lambda/m (b/abs(b))"
        out.append(
            (
                "regularized_bias",
                _compose(t, r, bias=extra),
                "∂J/∂b has a regularization term, but b is not regularized: R(w) involves only w, so "
                "∂J/∂b = (1/m) Σ ∂L/∂z.",
            )
        )
    if t == "dJ/dw_j":
        out.append(
            ("missing_regularization", _compose(t, r), f"∂J/∂w_j leaves out the regularization term ∂R/∂w_j = {dR}.")
        )
        if reg.kind == "l2":
            out.append(
                (
                    "regularization_scale",
                    _compose(t, r, dR="lambda/(2m) w_j"),
                    "The regularization gradient is λ/(2m)·w_j here; the derivative of λ/(2m) Σ w_j² is (λ/m)·w_j "
                    "(the 2 of the square cancels the ½).",
                )
            )
    return out


def _loss(q: Question, p: Pairing, reg: Regularization | None) -> list[tuple[str, str, str]]:
    R = f" + {reg.term()}" if reg else ""
    L = p.L
    out: list[tuple[str, str, str]] = []
    if q.target == "L":
        if p.loss == "squared_error":
            out.append(("loss_missing_half", "(f - y)^2", "The loss is ½(f − y)², with the ½."))
        if p.loss == "binary_cross_entropy":
            out.append(
                ("loss_sign_flipped", f"-({L})", "Cross-entropy has a minus sign: −y log f − (1 − y) log(1 − f).")
            )
    if q.target == "J":
        if p.loss == "squared_error":
            out.append(
                (
                    "loss_missing_half",
                    f"1/m sum_{{i=1}}^{{m}} (f - y)^2{R}",
                    "The cost's data term is twice the right one: J = 1/(2m) Σ (f − y)², with the ½.",
                )
            )
        out.append(
            (
                "loss_missing_mean",
                f"sum_{{i=1}}^{{m}} ({L}){R}",
                "The cost sums the losses; J is their mean: divide by m.",
            )
        )
        if p.loss == "binary_cross_entropy":
            out.append(
                (
                    "loss_sign_flipped",
                    f"-1/m sum_{{i=1}}^{{m}} ({L}){R}",
                    "The cost has the wrong sign: cross-entropy is −Σ y log f; without the minus sign it is negative.",
                )
            )
        if reg is not None:
            out.append(
                (
                    "loss_missing_regularization",
                    f"1/m sum_{{i=1}}^{{m}} ({L})",
                    f"The cost leaves out the regularization term R(w) = {reg.term()}.",
                )
            )
    return out


def _shown(p: Pairing | None) -> Display:
    """Nodes printed in the learner's terms: the activation's formula g(z) shown as f."""
    g = read(p.g) if p is not None and p.activation != "identity" else None

    def show(node: Expr) -> str:
        if g is None:
            return to_text(node)
        return to_text(replace(node, lambda n: Symbol("f") if n == g else None))

    return show


def _rules(q: Question) -> list[tuple[str, Expr, str]]:
    """(code, formula, message) of every mal-rule applied to the question's correct derivation."""
    p = q.pairing
    show = _shown(p)
    known = {"f": f"∂f/∂z = {p.df_dz}"} if p is not None and p.activation != "identity" else {}
    out: list[tuple[str, Expr, str]] = []
    try:
        if p is None:
            if q.expression is not None and q.variable is not None:
                out += [
                    (d.code, d.derivative, d.message) for d in mal_derivatives(q.expression, q.variable, show, known)
                ]
            return out
        if q.target == "df/dz":
            out += [(d.code, d.derivative, d.message) for d in mal_derivatives(read(p.g), "z", show, known)]
        if q.target == "dL/df":
            out += [(d.code, d.derivative, d.message) for d in mal_derivatives(read(p.L), "f", show, known)]
        if q.target in R_FAMILY:
            # L(g(z), y) by z, each f its own copy of g(z) (a mal-rule breaks one place at a time)
            composed = replace(read(p.L), lambda n: read(p.g) if isinstance(n, Symbol) and n.name == "f" else None)
            rs = [(d.code, to_text(d.derivative), d.message) for d in mal_derivatives(composed, "z", show, known)]
            rs += [
                (d.code, f"({to_text(d.derivative)})({p.df_dz})", d.message)
                for d in mal_derivatives(read(p.L), "f", show, known)
            ]
            rs += [
                (d.code, f"({p.dL_df})({to_text(d.derivative)})", d.message)
                for d in mal_derivatives(read(p.g), "z", show, known)
            ]
            dR = q.regularization.gradient() if q.regularization else None
            out += [(code, read(_compose(q.target, r, dR=dR)), message) for code, r, message in rs]
    except FormulaError:
        pass
    return out


def variants(q: Question, points: Points) -> list[FormulaVariant]:
    """The question's mistake variants not equivalent to the truth, in the order they are named."""
    found: list[FormulaVariant] = []
    candidates = [(code, read(text), message) for code, text, message in _catalogue(q)] + _rules(q)
    for code, formula, message in candidates[:MAX_VARIANTS]:
        values = values_or_none(points, formula)
        if values is None or agree(points, values, points.truth):
            continue  # a "mistake" that gives the right answer is never named
        if any(v.code == code and agree(points, values, v.values) for v in found):
            continue  # the same mistake reached another way
        found.append(FormulaVariant(code, formula, message, values))
    found.sort(key=lambda v: ORDER.get(v.code, len(ORDER)))
    return found

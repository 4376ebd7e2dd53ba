"""Mal-rules: the rules of differentiation broken the way learners break them, applied to the correct
derivation (the tracer's) at every node where they apply, one node at a time.

Each wrong derivative is the tracer run again with one node's rule replaced:

- missing_inner_derivative: g(u)' written g'(u), without u' (at a function of, or a power of, an
  inner expression that is not the variable itself);
- product_rule_error: (uv)' written u'v' (at a product of two or more factors that vary);
- quotient_rule_error: (u/v)' written (u'v + uv')/v² or (uv' − u'v)/v² (at a quotient whose
  denominator varies);
- power_rule_error: (u^n)' written u^(n−1)·u' (the factor n dropped) or n·u^n·u' (the exponent kept).

The result carries the node, the rule and a message in the learner's terms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from service.formulas import Expr, to_text
from service.formulas.derive import ONE, TWO, Step, _outer, _Tracer, simplify
from service.formulas.errors import FormulaError
from service.formulas.tree import Call, Div, Mul, Neg, Pow, Symbol, add, mul, walk
from service.grading.mistakes import FORMULA_MISTAKES

RULE_CODES = tuple(m.code for m in FORMULA_MISTAKES)
MAX_SITES = 200  # nodes a formula's mal-rules are tried at (each is one more trace)
MAX_OUTPUT = 200_000  # characters of one trace's steps


@dataclass(frozen=True)
class MalDerivative:
    code: str
    derivative: Expr
    node: Expr  # where the rule was broken
    message: str


Display = Callable[[Expr], str]


class _Mal(_Tracer):
    """The tracer, with the rule at one node (by identity) replaced by a mal-rule's variant."""

    def __init__(
        self, variable: str, target: Expr, code: str, variant: int, show: Display, known: dict[str, str]
    ) -> None:
        super().__init__(variable, MAX_OUTPUT)
        self.target = target
        self.code = code
        self.variant = variant
        self.show = show
        self.known = known
        self.message: str | None = None

    # only the derivative is wanted, not the steps' text (printing them is most of a trace's time)
    def record(self, rule: str, node: Expr, result: Expr, why: str) -> None:
        return None

    def record_pending(self, rule: str, node: Expr, outer: Expr, inner: Expr, why: str) -> None:
        return None

    def add_step(self, step: Step) -> None:
        return None

    def tidy(self, raw: Expr) -> Expr:
        return simplify(raw)

    def why(self, key: str, node: Expr | None = None, inner: Expr | None = None) -> str:
        return ""

    def correct(self, node: Expr) -> Expr:
        return _Mal(self.variable, node, "", 0, self.show, {}).derive(node)  # no code: the rules as they are

    def derive(self, node: Expr) -> Expr:
        if node is self.target:
            wrong = self.mal(node)
            if wrong is not None:
                return simplify(wrong)
        return super().derive(node)

    def d(self, node: Expr) -> str:
        return f"d/d{self.variable} ({self.show(node)})"

    def mal(self, node: Expr) -> Expr | None:
        match self.code, node:
            case "missing_inner_derivative", Call(function=fn, args=(u,)) if self.inner(u):
                self.message = (
                    f"In {self.d(node)} the chain rule's inner derivative is missing: {fn}(u)' = {fn}'(u) · u', "
                    f"and here u = {self.show(u)}: you have left out u' = {self.inner_text(u)}; it is not 1."
                )
                return Call("exp", (u,)) if fn == "exp" else Div(ONE, u) if fn == "log" else _outer(fn, u)
            case "missing_inner_derivative", Pow(base=u, exponent=n) if self.inner(u) and not self.depends(n):
                self.message = (
                    f"In {self.d(node)} the chain rule's inner derivative is missing: (u^n)' = n·u^(n−1) · u', "
                    f"and here u = {self.show(u)}: you have left out u' = {self.inner_text(u)}; it is not 1."
                )
                return mul(n, Pow(u, simplify(add(n, Neg(ONE)))))
            case "product_rule_error", Mul(factors=factors):
                varying = [k for k, f in enumerate(factors) if self.depends(f)]
                if len(varying) < 2:
                    return None
                self.message = (
                    f"In {self.d(node)} the product rule is (uv)' = u'v + uv', not u'v': each term differentiates "
                    "one factor and keeps the others."
                )
                return mul(*(self.derive(f) if k in varying else f for k, f in enumerate(factors)))
            case "quotient_rule_error", Div(numerator=a, denominator=b) if self.depends(b):
                da, db = self.derive(a), self.derive(b)
                self.message = (
                    f"In {self.d(node)} the quotient rule is (u/v)' = (u'v − uv')/v²: the numerator's terms are "
                    "subtracted, the one with u' first."
                )
                if self.variant == 0:
                    return Div(add(mul(da, b), mul(a, db)), Pow(b, TWO))
                return Div(add(mul(a, db), Neg(mul(da, b))), Pow(b, TWO))
            case "power_rule_error", Pow(base=u, exponent=n) if self.depends(u) and not self.depends(n):
                du = self.correct(u)
                if self.variant == 0:
                    self.message = (
                        f"In {self.d(node)} the power rule is (u^n)' = n·u^(n−1)·u': the factor n = {self.show(n)} "
                        "is missing."
                    )
                    return mul(Pow(u, simplify(add(n, Neg(ONE)))), du)
                self.message = (
                    f"In {self.d(node)} the power rule is (u^n)' = n·u^(n−1)·u': the exponent drops by one, "
                    f"to {self.show(simplify(add(n, Neg(ONE))))}."
                )
                return mul(n, Pow(u, n), du)
        return None

    def inner_text(self, u: Expr) -> str:
        shown = self.show(u)
        return self.known.get(shown) or f"d/d{self.variable} ({shown}) = {self.show(self.correct(u))}"

    def inner(self, u: Expr) -> bool:
        return self.depends(u) and not self.is_variable(u)


# the nodes each rule is about (a trace is run only where it can apply)
SITES: dict[str, type | tuple[type, ...]] = {
    "missing_inner_derivative": (Call, Pow),
    "product_rule_error": Mul,
    "quotient_rule_error": Div,
    "power_rule_error": Pow,
}
VARIANTS = {"missing_inner_derivative": 1, "product_rule_error": 1, "quotient_rule_error": 2, "power_rule_error": 2}


def mal_derivatives(
    expr: Expr, variable: str, show: Display = to_text, known: dict[str, str] | None = None
) -> list[MalDerivative]:
    """Every mal-rule's wrong derivative of `expr`, at every node where it applies (in the tree's order).

    `show` prints a node in the learner's terms (e.g. the activation's formula shown as f); `known`
    names the derivatives of some inner expressions as the learner knows them ({"f": "∂f/∂z = f(1 - f)"})."""
    out: list[MalDerivative] = []
    sites = 0
    for node in walk(expr):
        if isinstance(node, Symbol):
            continue
        for code in RULE_CODES:
            if not isinstance(node, SITES[code]):
                continue
            for variant in range(VARIANTS[code]):
                tracer = _Mal(variable, node, code, variant, show, known or {})
                if not tracer.depends(node):
                    break
                sites += 1
                if sites > MAX_SITES:
                    return out
                try:
                    result = tracer.derive(expr)
                except FormulaError:
                    break
                if tracer.message is None:
                    break  # the rule does not apply at this node
                out.append(MalDerivative(code, result, node, tracer.message))
    return out

"""A derivative tracer: `derive(tree, variable)` gives the derivative and every rule applied, in order.

Pure Python on the project's own tree (no SymPy). Each node's derivative is one step naming its rule,
bottom-up (the inner derivatives come before the rule that uses them); a function of an inner
expression gives its rule's step with the inner derivative still to take, then a `chain` step with
it put in. After each rule a light clean-up (`simplify`: 0·u → 0, 1·u → u, u + 0 → u, numbers folded,
signs pulled out) is a step of its own when it changes something; nothing more is simplified
(x·x^-1 stays as it is). Sums (Σ), Leibniz names and max/min are not derived here: NotDerivable.
The steps are bounded: more than `max_output` characters of them is FormulaTooComplex("derivative").
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, get_args

from service.formulas.errors import FormulaError, FormulaTooComplex
from service.formulas.parser import parse
from service.formulas.printer import decimal, to_latex, to_text
from service.formulas.tree import (
    Add,
    Call,
    Derivative,
    Div,
    Expr,
    Mul,
    Neg,
    Number,
    Pow,
    Sum,
    Symbol,
    add,
    mul,
    walk,
)

Rule = Literal[
    "constant",
    "identity",
    "sum",
    "constant_multiple",
    "product",
    "quotient",
    "power",
    "exp",
    "log",
    "chain",
    "function",
    "simplify",
]
RULES: tuple[Rule, ...] = get_args(Rule)
DERIVED = frozenset({"exp", "log", "sqrt", "tanh", "cosh", "sinh", "sigma", "softplus", "abs"})
ZERO = Number(Fraction(0))
ONE = Number(Fraction(1))
TWO = Number(Fraction(2))


class NotDerivable(FormulaError):
    """The tracer cannot derive this formula: `what` names the node ("sum", "derivative", "max", "min")."""

    def __init__(self, what: str, message: str) -> None:
        super().__init__(message)
        self.what = what


@dataclass(frozen=True)
class Step:
    rule: str  # one of RULES
    latex: str  # the equation of this step
    text: str
    why: str  # one line, in a learner's words


@dataclass(frozen=True)
class Derivation:
    expr: Expr
    variable: str
    derivative: Expr
    steps: tuple[Step, ...]


def _number(value: Fraction) -> Expr:
    return Number(value) if value >= 0 else Neg(Number(-value))


def _as_number(node: Expr) -> Fraction | None:
    sign = 1
    while isinstance(node, Neg):
        node, sign = node.operand, -sign
    return sign * node.value if isinstance(node, Number) else None


def _terminates(value: Fraction) -> bool:
    try:
        decimal(abs(value))
    except ValueError:
        return False
    return True


def simplify(node: Expr) -> Expr:
    """The light clean-up: 0·u → 0, 1·u → u, u + 0 → u, u/1 → u, u^1 → u, u^0 → 1, numbers folded, --u → u."""
    match node:
        case Neg(operand=operand):
            inner = simplify(operand)
            if isinstance(inner, Neg):
                return inner.operand
            if _as_number(inner) == 0:
                return ZERO
            return Neg(inner)
        case Add(terms=terms):
            flat = add(*(simplify(t) for t in terms))
            parts = flat.terms if isinstance(flat, Add) else (flat,)
            total, kept, slot = Fraction(0), [], -1
            for part in parts:
                value = _as_number(part)
                if value is None:
                    kept.append(part)
                else:
                    total += value
                    slot = len(kept) if slot < 0 else slot
            if total != 0:
                kept.insert(slot, _number(total))
            if not kept:
                return ZERO
            return kept[0] if len(kept) == 1 else Add(tuple(kept))
        case Mul(factors=factors):
            flat = mul(*(simplify(f) for f in factors))
            parts = flat.factors if isinstance(flat, Mul) else (flat,)
            coefficient, negative, kept = Fraction(1), False, []
            for part in parts:
                while isinstance(part, Neg):
                    part, negative = part.operand, not negative
                if isinstance(part, Number):
                    coefficient *= part.value
                else:
                    kept.extend(part.factors if isinstance(part, Mul) else (part,))
            if coefficient == 0:
                return ZERO
            if coefficient != 1 or not kept:
                kept.insert(0, Number(coefficient))
            result: Expr = kept[0] if len(kept) == 1 else Mul(tuple(kept))
            reciprocals = [k for k, part in enumerate(kept) if isinstance(part, Div) and part.numerator == ONE]
            if reciprocals and len(kept) > 1:  # u · (1/v) → u/v
                k = reciprocals[0]
                over = kept[k]
                assert isinstance(over, Div)
                result = Div(mul(*kept[:k], *kept[k + 1 :]), over.denominator)
            return Neg(result) if negative else result
        case Div(numerator=a, denominator=b):
            top, bottom = simplify(a), simplify(b)
            negative = False
            while isinstance(top, Neg):
                top, negative = top.operand, not negative
            while isinstance(bottom, Neg):
                bottom, negative = bottom.operand, not negative
            n, d = _as_number(top), _as_number(bottom)
            if n == 0 and d != 0:
                return ZERO
            if d == 1:
                result = top
            elif n is not None and d is not None and d != 0 and _terminates(n / d):
                result = Number(n / d)
            elif (
                d
                and isinstance(top, Mul)
                and isinstance(top.factors[0], Number)
                and _terminates(top.factors[0].value / d)
            ):
                result = simplify(mul(Number(top.factors[0].value / d), *top.factors[1:]))  # (2u)/2 → u
            else:
                result = Div(top, bottom)
            return Neg(result) if negative else result
        case Pow(base=a, exponent=b):
            base, exponent = simplify(a), simplify(b)
            value = _as_number(exponent)
            if value == 0:
                return ONE
            if value == 1:
                return base
            return Pow(base, exponent)
        case Call(function=function, args=args):
            return Call(function, tuple(simplify(arg) for arg in args))
    return node


WHY = {
    "constant": "{u} does not change when {x} changes, so its derivative is 0.",
    "identity": "the derivative of {x} with respect to itself is 1.",
    "sum": "the derivative of a sum is the sum of the derivatives, term by term.",
    "neg": "a minus sign is the constant factor -1: it stays in front of the derivative.",
    "constant_multiple": "a constant factor stays in front; only the part with {x} in it is differentiated.",
    "constant_divisor": "dividing by a constant is multiplying by one: it stays, only the top is differentiated.",
    "product": "product rule: differentiate one factor at a time, keep the others as they are, and add.",
    "quotient": "quotient rule: (u/v)' = (u'v - uv')/v^2, u the top and v the bottom.",
    "power": "power rule: (u^n)' = n u^(n-1) u', the exponent comes down and drops by one.",
    "constant_base": "a constant base a: a^v = e^(v log a), so (a^v)' = a^v log(a) v'.",
    "general_power": "the exponent depends on {x} too: write u^v as e^(v log u) and differentiate that.",
    "exp": "e^u is its own derivative: (e^u)' = e^u u'.",
    "log": "(log u)' = u'/u: one over what is inside, times its derivative.",
    "chain": "chain rule: multiply the outer derivative by the derivative of the inside, {inner}.",
    "simplify": "tidy up: drop zeros and ones, fold the numbers, collect the signs, u·(1/v) as u/v (nothing more).",
    "sqrt": "sqrt(u) = u^(1/2), so (sqrt u)' = u'/(2 sqrt u).",
    "tanh": "(tanh u)' = 1 - tanh(u)^2.",
    "cosh": "(cosh u)' = sinh u.",
    "sinh": "(sinh u)' = cosh u.",
    "sigma": "the sigmoid's derivative is itself times one minus itself: σ' = σ(1 - σ).",
    "softplus": "softplus(u) = log(1 + e^u), whose derivative is the sigmoid σ(u).",
    "abs": "|u|' is sign(u) = u/|u| away from 0; at 0 there is no derivative, and any value in [-1, 1] is a "
    "subgradient (0 is the usual choice).",
}


def _outer(function: str, u: Expr) -> Expr:
    """The derivative of function(u) with respect to u."""
    match function:
        case "exp":
            return Call("exp", (u,))
        case "log":
            return Div(ONE, u)
        case "sqrt":
            return Div(ONE, Mul((TWO, Call("sqrt", (u,)))))
        case "tanh":
            return Add((ONE, Neg(Pow(Call("tanh", (u,)), TWO))))
        case "cosh":
            return Call("sinh", (u,))
        case "sinh":
            return Call("cosh", (u,))
        case "sigma":
            s = Call("sigma", (u,))
            return Mul((s, Add((ONE, Neg(s)))))
        case "softplus":
            return Call("sigma", (u,))
        case "abs":
            return Div(u, Call("abs", (u,)))
    raise NotDerivable(function, f"the tracer has no rule for {function}()")


def _times(outer: Expr, inner: Expr) -> Expr:
    """outer · inner, as a product the printers show (a sum is put in parentheses by them)."""
    return mul(outer, inner)


class _Tracer:
    def __init__(self, variable: str, max_output: int) -> None:
        symbol = parse(variable)
        if not isinstance(symbol, Symbol):
            raise FormulaError(f"the variable to derive by must be a name (z, f, w_j, ...), not {variable!r}")
        self.symbol = symbol
        self.variable = to_text(symbol)
        self.steps: list[Step] = []
        self.max_output = max_output
        self.output = 0

    def is_variable(self, node: Expr) -> bool:
        return node == self.symbol

    def add_step(self, step: Step) -> None:
        self.output += len(step.latex) + len(step.text)
        if self.output > self.max_output:
            raise FormulaTooComplex(
                "derivative",
                self.max_output,
                None,
                f"the steps of this derivative would print more than {self.max_output} characters",
            )
        self.steps.append(step)

    def depends(self, node: Expr) -> bool:
        return any(self.is_variable(n) for n in walk(node))

    def d_text(self, node: Expr) -> str:
        return f"d/d{self.variable} ({to_text(node)})"

    def d_latex(self, node: Expr) -> str:
        return f"\\frac{{d}}{{d{to_latex(self.symbol)}}}\\left({to_latex(node)}\\right)"

    def record(self, rule: str, node: Expr, result: Expr, why: str) -> None:
        self.add_step(
            Step(rule, f"{self.d_latex(node)} = {to_latex(result)}", f"{self.d_text(node)} = {to_text(result)}", why)
        )

    def record_pending(self, rule: str, node: Expr, outer: Expr, inner: Expr, why: str) -> None:
        """A rule whose inner derivative is still to be taken: outer · d/dx (inner)."""
        paren_text = f"({to_text(outer)})" if isinstance(outer, Add) else to_text(outer)
        paren_latex = f"\\left({to_latex(outer)}\\right)" if isinstance(outer, Add) else to_latex(outer)
        text = f"{self.d_text(node)} = {paren_text} * {self.d_text(inner)}"
        latex = f"{self.d_latex(node)} = {paren_latex} \\cdot {self.d_latex(inner)}"
        self.add_step(Step(rule, latex, text, why))

    def tidy(self, raw: Expr) -> Expr:
        tidy = simplify(raw)
        if tidy != raw:
            self.add_step(
                Step(
                    "simplify",
                    f"{to_latex(raw)} = {to_latex(tidy)}",
                    f"{to_text(raw)} = {to_text(tidy)}",
                    WHY["simplify"],
                )
            )
        return tidy

    def why(self, key: str, node: Expr | None = None, inner: Expr | None = None) -> str:
        return WHY[key].format(
            x=self.variable,
            u=to_text(node) if node is not None else "",
            inner=to_text(inner) if inner is not None else "",
        )

    def chain(self, rule: str, why: str, node: Expr, outer: Expr, inner: Expr) -> Expr:
        """outer(inner) · inner': one step when inner is the variable, else the rule's step then a chain step."""
        if self.is_variable(inner):
            self.record(rule, node, outer, why)
            return self.tidy(outer)
        self.record_pending(rule, node, outer, inner, why)
        inner_d = self.derive(inner)
        raw = _times(outer, inner_d)
        self.record("chain", node, raw, self.why("chain", inner=inner))
        return self.tidy(raw)

    def derive(self, node: Expr) -> Expr:
        if self.is_variable(node):
            self.record("identity", node, ONE, self.why("identity"))
            return ONE
        if not self.depends(node):
            self.record("constant", node, ZERO, self.why("constant", node))
            return ZERO
        match node:
            case Neg(operand=operand):
                raw: Expr = Neg(self.derive(operand))
                self.record("constant_multiple", node, raw, self.why("neg"))
            case Add(terms=terms):
                raw = add(*(self.derive(t) for t in terms))
                self.record("sum", node, raw, self.why("sum"))
            case Mul(factors=factors):
                varying = [k for k, f in enumerate(factors) if self.depends(f)]
                if len(varying) == 1:
                    (k,) = varying
                    raw = mul(*factors[:k], self.derive(factors[k]), *factors[k + 1 :])
                    self.record("constant_multiple", node, raw, self.why("constant_multiple"))
                else:
                    derived = {k: self.derive(factors[k]) for k in varying}
                    raw = add(*(mul(*(derived[k] if j == k else f for j, f in enumerate(factors))) for k in varying))
                    self.record("product", node, raw, self.why("product"))
            case Div(numerator=a, denominator=b):
                if not self.depends(b):
                    raw = Div(self.derive(a), b)
                    self.record("constant_multiple", node, raw, self.why("constant_divisor"))
                else:
                    da, db = self.derive(a), self.derive(b)
                    raw = Div(add(mul(da, b), Neg(mul(a, db))), Pow(b, TWO))
                    self.record("quotient", node, raw, self.why("quotient"))
            case Pow(base=u, exponent=n) if not self.depends(n):
                outer = mul(n, Pow(u, simplify(add(n, Neg(ONE)))))
                return self.chain("power", self.why("power"), node, outer, u)
            case Pow(base=a, exponent=v) if not self.depends(a):
                outer = mul(node, Call("log", (a,)))
                return self.chain("power", self.why("constant_base"), node, outer, v)
            case Pow(base=u, exponent=v):
                rewritten = Call("exp", (mul(v, Call("log", (u,))),))
                self.add_step(
                    Step(
                        "power",
                        f"{self.d_latex(node)} = {self.d_latex(rewritten)}",
                        f"{self.d_text(node)} = {self.d_text(rewritten)}",
                        self.why("general_power"),
                    )
                )
                return self.derive(rewritten)
            case Call(function="exp", args=(u,)):
                return self.chain("exp", self.why("exp"), node, node, u)
            case Call(function="log", args=(u,)):
                return self.chain("log", self.why("log"), node, Div(ONE, u), u)
            case Call(function=function, args=(u,)):
                return self.chain("function", self.why(function), node, _outer(function, u), u)
            case _:
                raise NotDerivable(type(node).__name__.lower(), f"the tracer cannot derive {to_text(node)}")
        return self.tidy(raw)


def unsupported(expr: Expr) -> None:
    """Raise NotDerivable for the first node the tracer has no rule for (Σ, a Leibniz name, max, min)."""
    for node in walk(expr):
        if isinstance(node, Sum):
            raise NotDerivable("sum", f"the tracer cannot derive a sum over {node.index} yet: {to_text(node)}")
        if isinstance(node, Derivative):
            raise NotDerivable(
                "derivative", f"the tracer cannot derive a Leibniz name (the derivative {to_text(node)}) yet"
            )
        if isinstance(node, Call) and node.function not in DERIVED:
            raise NotDerivable(node.function, f"the tracer cannot derive {node.function}() yet: {to_text(node)}")


MAX_OUTPUT = 1_000_000  # characters of the steps (LaTeX and text together)


def derive(expr: Expr, variable: str, max_output: int = MAX_OUTPUT) -> Derivation:
    """The derivative of `expr` with respect to `variable` ("z", "f", "w_j", ...) and the steps to it.

    Raises NotDerivable (a FormulaError) for a node it has no rule for, FormulaTooComplex ("derivative")
    when the steps would print more than `max_output` characters (the product rule doubles a formula)."""
    unsupported(expr)
    tracer = _Tracer(variable, max_output)
    result = tracer.derive(expr)
    return Derivation(expr, variable, result, tuple(tracer.steps))

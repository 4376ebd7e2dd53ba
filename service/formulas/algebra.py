"""SymPy on the project's trees: tree → SymPy built node by node, SymPy → tree back, equivalence and simplification.

The one module of service.formulas that imports SymPy (tests/formulas/test_layering.py allows it here alone),
and it is meant to run INSIDE the worker pool (service/formulas/pool.py): `import service.formulas` does not load
it, and the HTTP layer sends the job names below (`"service.formulas.algebra:<name>"`) to a worker with its time
and memory limits. SymPy only ever sees expressions built from the tree's nodes (sympy.Add, Mul, Pow, Rational,
Symbol, exp, log, ...): user text is never given to its string parser (sympify, parse_expr and S() call eval).
The trees come from the parser, whose limits (nodes, depth, constant powers up to 10^100) were checked before:
SymPy's eager Integer**Integer never sees 10^10^10.

Symbols are SymPy symbols named by the plain spelling (`z`, `x_j`, `x_j^(i)`, `dL/dz` for a Leibniz name), real;
the way back re-reads that name with the project's own parser (to_text and parse are inverse). σ and softplus are
SymPy functions of their own (their derivatives σ(1 − σ) and σ), rewritten as exp and log to be compared.

Jobs (picklable arguments and results: trees in, trees or plain values out):
- `equivalent(a, b, substitutions)`: a ≡ b, after putting `substitutions` (e.g. f = σ(z)) in.
- `simplify(tree)`: SymPy's simplify, back as a tree, in the forms a learner reads (f(1 − f), not −f(f − 1)).
- `in_terms_of(derivative, variable, name, definition)`: the derivative written in `name` (f) where
  name = definition(variable) (f = σ(z)), or None when it cannot be.
- `diff(tree, variable)`: SymPy's own derivative, as a tree (the tests' reference for the tracer).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import sympy

from service.formulas.errors import FormulaError
from service.formulas.parser import parse
from service.formulas.printer import decimal, to_text
from service.formulas.tree import Add, Call, Derivative, Div, Expr, Mul, Neg, Number, Pow, Sum, Symbol, add, mul


class NotRepresentable(FormulaError):
    """A SymPy result the notation has no node for (a complex number, infinity, a piecewise function...)."""


class sigma(sympy.Function):  # type: ignore[misc]  # noqa: N801 (SymPy functions are lower-case classes)
    """The sigmoid σ(u) = 1/(1 + e^(−u)), whose derivative is σ(u)(1 − σ(u))."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> Any:
        s = sigma(self.args[0])
        return s * (1 - s)

    def _eval_rewrite_as_exp(self, u: Any, **kwargs: Any) -> Any:
        return 1 / (1 + sympy.exp(-u))

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real  # type: ignore[no-any-return]

    def _eval_is_positive(self) -> bool | None:
        return True if self.args[0].is_real else None


class softplus(sympy.Function):  # type: ignore[misc]  # noqa: N801
    """softplus(u) = log(1 + e^u), whose derivative is σ(u)."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> Any:
        return sigma(self.args[0])

    def _eval_rewrite_as_exp(self, u: Any, **kwargs: Any) -> Any:
        return sympy.log(1 + sympy.exp(u))

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real  # type: ignore[no-any-return]


FUNCTIONS: dict[str, Any] = {
    "exp": sympy.exp,
    "log": sympy.log,
    "sqrt": sympy.sqrt,
    "abs": sympy.Abs,
    "tanh": sympy.tanh,
    "cosh": sympy.cosh,
    "sinh": sympy.sinh,
    "sigma": sigma,
    "softplus": softplus,
}
BACK: dict[Any, str] = {
    sympy.exp: "exp",
    sympy.log: "log",
    sympy.Abs: "abs",
    sympy.tanh: "tanh",
    sympy.cosh: "cosh",
    sympy.sinh: "sinh",
    sigma: "sigma",
    softplus: "softplus",
}


def symbol(node: Symbol | Derivative) -> Any:
    """The SymPy symbol of a name: named by its plain spelling, real (the course's quantities are)."""
    return sympy.Symbol(to_text(node), real=True)


def to_sympy(tree: Expr) -> Any:
    """The SymPy expression of a tree, built from its nodes (never from a string)."""
    match tree:
        case Number(value=value):
            return sympy.Rational(value.numerator, value.denominator)
        case Symbol() | Derivative():
            return symbol(tree)
        case Neg(operand=a):
            return -to_sympy(a)
        case Add(terms=terms):
            return sympy.Add(*(to_sympy(t) for t in terms))
        case Mul(factors=factors):
            return sympy.Mul(*(to_sympy(f) for f in factors))
        case Div(numerator=a, denominator=b):
            return sympy.Mul(to_sympy(a), sympy.Pow(to_sympy(b), -1))
        case Pow(base=a, exponent=b):
            return sympy.Pow(to_sympy(a), to_sympy(b))
        case Call(function="max", args=args):
            return sympy.Max(*(to_sympy(a) for a in args))
        case Call(function="min", args=args):
            return sympy.Min(*(to_sympy(a) for a in args))
        case Call(function=function, args=(a,)) if function in FUNCTIONS:
            return FUNCTIONS[function](to_sympy(a))
        case Sum(body=body, index=index, lower=lower, upper=upper):
            k = sympy.Symbol(index, integer=True)
            return sympy.Sum(to_sympy(body), (k, to_sympy(lower), to_sympy(upper)))
    raise TypeError(f"not a formula node: {tree!r}")


def _rational(value: Any) -> Expr:
    """A non-negative SymPy rational as a tree: a Number when it has an exact decimal, else p/q."""
    fraction = Fraction(int(value.p), int(value.q))
    try:
        decimal(fraction)
    except ValueError:
        return Div(Number(Fraction(fraction.numerator)), Number(Fraction(fraction.denominator)))
    return Number(fraction)


def _name(s: Any) -> Expr:
    tree = parse(str(s.name), syntax="text")
    if not isinstance(tree, Symbol | Derivative):
        raise NotRepresentable(f"SymPy gave a symbol the notation does not have: {s.name}")
    return tree


def _positive_mul(e: Any) -> Expr:
    """A product with a positive coefficient, as top/bottom: factors with a negative exponent go below."""
    top: list[Expr] = []
    bottom: list[Expr] = []
    for factor in sympy.Mul.make_args(e):
        if factor.is_Rational:
            if factor.p != 1:
                top.append(_rational(sympy.Integer(factor.p)))
            if factor.q != 1:
                bottom.append(_rational(sympy.Integer(factor.q)))
        elif factor.is_Pow and factor.exp.is_Rational and factor.exp.is_negative:
            bottom.append(from_sympy(sympy.Pow(factor.base, -factor.exp)))
        else:
            top.append(from_sympy(factor))
    numerator = mul(*top) if top else Number(Fraction(1))
    if not bottom:
        return numerator
    return Div(numerator, mul(*bottom))


def from_sympy(e: Any) -> Expr:
    """A tree for a SymPy expression of the notation's functions; NotRepresentable for anything else."""
    if e.is_Rational:
        return _rational(e) if e >= 0 else Neg(_rational(-e))
    if e is sympy.E:
        return Call("exp", (Number(Fraction(1)),))
    if e.is_Symbol:
        return _name(e)
    if e.is_Add:
        denominators = {term.as_coeff_Mul()[0].q for term in sympy.Add.make_args(e)}
        if len(denominators) == 1 and (q := denominators.pop()) > 1:  # 1/2 - f^2/2 as (1 - f^2)/2
            return Div(from_sympy(sympy.expand(e * q)), Number(Fraction(int(q))))
        return add(*(from_sympy(term) for term in _ordered_terms(e)))
    if e.is_Mul:
        coefficient, _ = e.as_coeff_Mul()
        if coefficient.is_Rational and coefficient < 0:
            flipped = _flip_sign(-e)
            if flipped is not None:
                return flipped
            return Neg(_positive_mul(-e))
        return _positive_mul(e)
    if e.is_Pow:
        base, exponent = e.base, e.exp
        if base is sympy.E:
            return Call("exp", (from_sympy(exponent),))
        if exponent.is_Rational and exponent.is_negative:
            return Div(Number(Fraction(1)), from_sympy(sympy.Pow(base, -exponent)))
        if exponent == sympy.Rational(1, 2):
            return Call("sqrt", (from_sympy(base),))
        return Pow(from_sympy(base), from_sympy(exponent))
    if isinstance(e, sympy.sign):
        u = from_sympy(e.args[0])
        return Div(u, Call("abs", (u,)))
    if isinstance(e, sympy.Max | sympy.Min):
        name = "max" if isinstance(e, sympy.Max) else "min"
        return Call(name, tuple(from_sympy(a) for a in e.args))
    if isinstance(e, sympy.Sum) and len(e.limits) == 1:
        k, lower, upper = e.limits[0]
        return Sum(from_sympy(e.function), str(k.name), from_sympy(lower), from_sympy(upper))
    head = BACK.get(e.func)
    if head is not None and len(e.args) == 1:
        return Call(head, (from_sympy(e.args[0]),))
    raise NotRepresentable(f"the result {type(e).__name__} has no form in the notation")


def _ordered_terms(e: Any) -> list[Any]:
    """A sum's terms as a learner writes them: positive terms before negative ones (1 − f, not −f + 1)."""
    terms = list(sympy.Add.make_args(e))
    return sorted(terms, key=lambda t: 1 if t.could_extract_minus_sign() else 0)


def _flip_sign(positive: Any) -> Expr | None:
    """−(u · (a − b)) written u · (b − a), when the product has one sum to take the sign: f(1 − f), not −f(f − 1)."""
    factors = sympy.Mul.make_args(positive)
    sums = [k for k, factor in enumerate(factors) if factor.is_Add]
    if len(sums) != 1:
        return None
    k = sums[0]
    flipped = [*factors[:k], sympy.expand(-factors[k]), *factors[k + 1 :]]
    return _positive_mul(sympy.Mul(*flipped, evaluate=False))


def _plain(e: Any) -> Any:
    """σ and softplus rewritten with exp and log (SymPy's simplify knows those)."""
    return e.rewrite(sympy.exp) if e.has(sigma, softplus) else e


def _substituted(tree: Expr, substitutions: dict[str, Expr] | None) -> Any:
    e = to_sympy(tree)
    if substitutions:
        e = e.subs({sympy.Symbol(name, real=True): to_sympy(value) for name, value in substitutions.items()})
    return e


def is_zero(e: Any) -> bool:
    """Whether a SymPy expression is identically 0: simplified, then with powers and hyperbolic functions written
    with exp, then (if neither can tell) SymPy's `equals` (which also tries numbers)."""
    plain = _plain(e)
    if sympy.simplify(plain) == 0:
        return True
    if sympy.simplify(plain.rewrite(sympy.exp)) == 0:  # u^v as e^(v log u), tanh with exp: what the tracer writes
        return True
    verdict = plain.equals(0)
    return bool(verdict)


def equivalent(a: Expr, b: Expr, substitutions: dict[str, Expr] | None = None) -> bool:
    """A job: whether two trees are the same function, after `substitutions` ({"f": σ(z)}) are put in both."""
    return is_zero(_substituted(a, substitutions) - _substituted(b, substitutions))


def learner_form(e: Any) -> Any:
    """The shortest of SymPy's simplify and factor of an expression (σ and softplus kept when they shorten it)."""
    candidates = [e, sympy.simplify(e), sympy.factor(e)]
    return min(candidates, key=lambda c: (sympy.count_ops(c), len(str(c))))


def simplify(tree: Expr) -> Expr:
    """A job: the tree simplified by SymPy, back as a tree in a learner's form."""
    return from_sympy(learner_form(to_sympy(tree)))


def diff(tree: Expr, variable: Expr) -> Expr:
    """A job: SymPy's derivative of the tree with respect to a name (a tree: Symbol), back as a tree."""
    assert isinstance(variable, Symbol)
    return from_sympy(sympy.diff(to_sympy(tree), symbol(variable)))


def in_terms_of(derivative: Expr, variable: Symbol, name: Symbol, definition: Expr) -> Expr | None:
    """A job: the derivative (a function of `variable`) written in `name` alone, where name = definition.

    First `definition` itself is replaced by `name` where it appears (σ(z)(1 − σ(z)) → f(1 − f)); else
    name = definition is solved for the variable (one solution) and put in. None when the variable stays.
    """
    x, f = symbol(variable), symbol(name)
    d = to_sympy(derivative)
    g = to_sympy(definition)
    candidates = []
    direct = learner_form(d.subs(g, f))
    if not direct.has(x):
        candidates.append(direct)
    else:
        plain_d, plain_g = _plain(d), _plain(g)
        direct = learner_form(sympy.simplify(plain_d).subs(plain_g, f))
        if not direct.has(x):
            candidates.append(direct)
        else:
            solutions = sympy.solve(sympy.Eq(f, plain_g), x, dict=True)
            if len(solutions) == 1 and x in solutions[0]:
                written = learner_form(sympy.simplify(plain_d.subs(x, solutions[0][x])))
                if not written.has(x) and not written.has(sympy.I):
                    candidates.append(written)
    if not candidates:
        return None
    return from_sympy(candidates[0])

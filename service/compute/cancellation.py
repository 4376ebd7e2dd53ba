"""The symbolic half of canonical detection: does a formula tree simplify to 0? A job for the worker pool.

SymPy is imported inside the job (a worker imports it once), never by the service's own process; the tree
is the project's own (service.formulas), built by its parser, so SymPy never reads user text. The
conversion is node by node. It runs under the pool's time and memory limits: the caller maps an
overrun to 422 formula-too-complex.
"""

from __future__ import annotations

from typing import Any

from service.formulas.tree import Add, Call, Div, Expr, Mul, Neg, Number, Pow, Symbol


def _to_sympy(node: Expr, sp: Any, symbols: dict[str, Any]) -> Any:
    match node:
        case Number(value=v):
            return sp.Rational(v.numerator, v.denominator)
        case Symbol(name=name):
            if name not in symbols:
                symbols[name] = sp.Symbol(name, real=True)
            return symbols[name]
        case Neg(operand=a):
            return -_to_sympy(a, sp, symbols)
        case Add(terms=terms):
            return sp.Add(*(_to_sympy(t, sp, symbols) for t in terms))
        case Mul(factors=factors):
            return sp.Mul(*(_to_sympy(t, sp, symbols) for t in factors))
        case Div(numerator=a, denominator=b):
            return _to_sympy(a, sp, symbols) / _to_sympy(b, sp, symbols)
        case Pow(base=a, exponent=b):
            return sp.Pow(_to_sympy(a, sp, symbols), _to_sympy(b, sp, symbols))
        case Call(function=fn, args=(a,)):
            u = _to_sympy(a, sp, symbols)
            functions = {
                "exp": sp.exp,
                "log": sp.log,
                "sqrt": sp.sqrt,
                "abs": sp.Abs,
                "tanh": sp.tanh,
                "cosh": sp.cosh,
                "sinh": sp.sinh,
                "sigma": lambda v: 1 / (1 + sp.exp(-v)),
                "softplus": lambda v: sp.log(1 + sp.exp(v)),
            }
            if fn in functions:
                return functions[fn](u)
    raise ValueError(f"no SymPy form for {type(node).__name__}")


def simplifies_to_zero(tree: Expr) -> bool:
    """Whether `tree` simplifies to 0 (its symbols real). First the quick way, which decides the catalogue's
    canonical pairings in milliseconds: hyperbolics rewritten in exp, e^z named t (e^-z is then 1/t), and
    the rational function in t cancelled; only if that leaves something, SymPy's general simplify."""
    import sympy as sp  # type: ignore[import-untyped]  # in the worker only

    expr = _to_sympy(tree, sp, {})
    t = sp.Dummy("t", positive=True)
    quick = sp.cancel(sp.together(expr.rewrite(sp.exp).subs(sp.exp(sp.Symbol("z", real=True)), t)))
    if quick == 0:
        return True
    return bool(sp.simplify(expr) == 0)

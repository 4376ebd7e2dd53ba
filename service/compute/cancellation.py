"""The symbolic half of canonical detection: does a formula tree simplify to 0? A job for the worker pool.

SymPy is imported inside the job (a worker imports it once), never by the service's own process; the tree
is the project's own (service.formulas), built by its parser, and service.formulas.algebra converts it node
by node, so SymPy never reads user text. It runs under the pool's time and memory limits: the caller maps an
overrun to 422 formula-too-complex.
"""

from __future__ import annotations

from service.formulas.tree import Expr, Symbol


def simplifies_to_zero(tree: Expr) -> bool:
    """Whether `tree` simplifies to 0 (its symbols real). First the quick way, which decides the catalogue's
    canonical pairings in milliseconds: σ, softplus and the hyperbolics written with exp, e^z named t (e^-z is
    then 1/t), and the rational function in t cancelled; only if that leaves something, the algebra module's
    is_zero (SymPy's simplify, the exp rewrite, then `equals`)."""
    import sympy  # type: ignore[import-untyped]  # in the worker only (the fork server preloads it)

    from service.formulas import algebra  # the one module of service.formulas that imports SymPy

    expr = algebra.to_sympy(tree)
    t = sympy.Dummy("t", positive=True)
    quick = sympy.cancel(sympy.together(expr.rewrite(sympy.exp).subs(sympy.exp(algebra.symbol(Symbol("z"))), t)))
    return bool(quick == 0) or algebra.is_zero(expr)

"""Jobs the worker pool runs for the HTTP layer (`"service.formulas.jobs:<name>"`), with plain results.

A job's own errors would reach the caller as the pool's JobFailed (a type name and a message): the formula's
column, limit and allowed names would be lost. So a job returns ("ok", result) or ("error", fields), the fields
of the FormulaError it met, and the caller raises its own answer from them.

`derive_job` runs the tracer (pure Python, but up to about a second on a hostile tree within the limits: see
docs/design/formulas.md) and, for `in_terms_of="f"`, SymPy (service/formulas/algebra.py, imported here only then).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from service.formulas.derive import NotDerivable, Step, derive
from service.formulas.errors import FormulaError, FormulaTooComplex
from service.formulas.parser import parse
from service.formulas.printer import to_latex, to_text
from service.formulas.tree import Expr, Symbol, walk

Result = tuple[str, dict[str, Any]]
F = Symbol("f")


def error_fields(exc: FormulaError) -> dict[str, Any]:
    """A FormulaError as plain fields (picklable, and what the HTTP layer answers with)."""
    fields: dict[str, Any] = {"message": exc.message, "column": exc.column, "allowed_names": list(exc.allowed_names)}
    if isinstance(exc, FormulaTooComplex):
        fields |= {"kind": "too_complex", "limit": exc.limit, "maximum": exc.maximum, "found": exc.found}
    elif isinstance(exc, NotDerivable):
        fields |= {"kind": "not_derivable", "what": exc.what}
    else:
        fields["kind"] = "formula_error"
    return fields


def both(tree: Expr) -> dict[str, str]:
    return {"latex": to_latex(tree), "text": to_text(tree)}


def step_fields(step: Step) -> dict[str, str]:
    return {"rule": step.rule, "latex": step.latex, "text": step.text, "why": step.why}


class OutOfTime(Exception):
    """The SymPy part of a job passed its own budget (the traced form is answered instead)."""


@contextmanager
def budget(seconds: float | None) -> Iterator[None]:
    """Raise OutOfTime in this block after `seconds` (SIGALRM: the worker runs its jobs in its main thread).

    A signal only lands between bytecodes, so a long C call can still overrun: the pool's own time limit, which
    kills the worker, stays the bound. This one lets a slow SymPy search give up early and keep the tracer's answer.
    """
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def ring(signum: int, frame: Any) -> None:
        raise OutOfTime()

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def written_in_f(tree: Expr, variable: str, derivative: Expr, seconds: float | None = None) -> Expr | None:
    """The derivative of f = tree written in f (f(1 − f) for σ), checked equal to it by SymPy; None if it cannot be,
    or not within `seconds`."""
    from service.formulas import algebra  # SymPy: only in a worker, only when asked

    symbol = parse(variable, syntax="text")
    assert isinstance(symbol, Symbol)
    try:
        with budget(seconds):
            form = algebra.in_terms_of(derivative, symbol, F, tree)
            if form is None or not algebra.equivalent(form, derivative, {"f": tree}):
                return None
    except (OutOfTime, FormulaError, ValueError, TypeError, RecursionError, ArithmeticError, AttributeError):
        return None  # SymPy gave something the notation cannot write, or gave up: the traced form stays
    return form


def derive_job(
    tree: Expr,
    variable: str,
    in_terms_of: str | None = None,
    max_output: int = 1_000_000,
    sympy_seconds: float | None = None,
) -> Result:
    """The /derive answer for a parsed tree: expression, variable, derivative, steps, the variable it is written in.

    `in_terms_of="f"`: f stands for the expression itself (f = g(z)), and the derivative is written in f when it
    can be (σ′ = f(1 − f), tanh′ = 1 − f², exp′ = f) as a last `simplify` step; `in_terms_of` in the answer says
    which it is written in. `sympy_seconds`: how long SymPy may search for that form (then the tracer's stays)."""
    try:
        if in_terms_of == "f" and any(node == F for node in walk(tree)):
            raise FormulaError("in_terms_of f: f is the expression itself, so the expression cannot contain f")
        derivation = derive(tree, variable, max_output)
        result = derivation.derivative
        steps = [step_fields(s) for s in derivation.steps]
        written = variable
        if in_terms_of == "f":
            form = written_in_f(tree, variable, result, sympy_seconds)
            if form is not None:
                if form != result:
                    shown = to_text(tree)
                    steps.append(
                        {
                            "rule": "simplify",
                            "latex": f"{to_latex(result)} = {to_latex(form)}",
                            "text": f"{to_text(result)} = {to_text(form)}",
                            "why": f"written in f = {shown}, the function itself, as the course writes it.",
                        }
                    )
                result, written = form, "f"
        answer = {
            "expression": both(tree),
            "variable": variable,
            "derivative": both(result),
            "in_terms_of": written,
            "steps": steps,
        }
        return "ok", answer
    except FormulaError as exc:
        return "error", error_fields(exc)

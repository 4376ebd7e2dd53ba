"""Evaluate a formula tree with numpy (or autograd.numpy): a walk of the tree, never eval or string code.

The one module of service.formulas that imports numpy (tests/formulas/test_layering.py allows it here
alone): the values of custom activations and losses, and the numeric side of equivalence checks.
Symbols are looked up by their plain spelling (`z`, `f`, `x_j`, `x_j^(i)`); any array shapes that
broadcast may be passed. Overflow gives inf and invalid operations nan (numpy's rules), which the
caller checks: nothing here raises on a value.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy

from service.formulas.printer import to_text
from service.formulas.tree import Add, Call, Div, Expr, Mul, Neg, Number, Pow, Symbol


def evaluate(expr: Expr, values: dict[str, Any], np: ModuleType = numpy) -> Any:
    """The value of `expr`, symbols looked up in `values` by their plain spelling (z, f, x_j)."""

    def sigma(u: Any) -> Any:
        return 0.5 * (np.tanh(0.5 * u) + 1.0)

    functions = {
        "exp": np.exp,
        "log": np.log,
        "sqrt": np.sqrt,
        "abs": np.abs,
        "tanh": np.tanh,
        "cosh": np.cosh,
        "sinh": np.sinh,
        "sigma": sigma,
        "softplus": lambda u: np.logaddexp(0.0, u),
    }

    def value(node: Expr) -> Any:
        match node:
            case Number(value=v):
                return numpy.float64(v)  # numpy floats: 1/0 is inf, not ZeroDivisionError
            case Symbol():
                return values[to_text(node)]
            case Neg(operand=a):
                return -value(a)
            case Add(terms=terms):
                total = value(terms[0])
                for term in terms[1:]:
                    total = total + value(term)
                return total
            case Mul(factors=factors):
                product = value(factors[0])
                for factor in factors[1:]:
                    product = product * value(factor)
                return product
            case Div(numerator=a, denominator=b):
                return value(a) / value(b)
            case Pow(base=a, exponent=b):
                return np.power(value(a), value(b))  # a negative base to a fractional power is nan, not complex
            case Call(function=function, args=(a,)) if function in functions:
                return functions[function](value(a))
        raise ValueError(f"cannot evaluate {node!r}")

    return value(expr)

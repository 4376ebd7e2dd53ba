"""Formulas: a safe reader for the notation of docs/design/formulas.md (plain text and LaTeX), its tree and printers.

Pure: the standard library only (no web framework, no SymPy); the grammar builds the tree directly,
never eval. `parse(text)` returns a tree or raises FormulaError / FormulaTooComplex (limits: Limits);
`derive(tree, variable)` gives its derivative and the rules applied, step by step (NotDerivable: no rule).
"""

from service.formulas.derive import Derivation, NotDerivable, Step, derive
from service.formulas.errors import FormulaError, FormulaTooComplex
from service.formulas.limits import DEFAULT_LIMITS, Limits
from service.formulas.parser import check_limits, parse
from service.formulas.printer import to_latex, to_text
from service.formulas.tree import Add, Call, Derivative, Div, Expr, Mul, Neg, Number, Pow, Sum, Symbol

__all__ = [
    "DEFAULT_LIMITS",
    "Add",
    "Call",
    "Derivation",
    "Derivative",
    "Div",
    "Expr",
    "FormulaError",
    "FormulaTooComplex",
    "Limits",
    "Mul",
    "Neg",
    "NotDerivable",
    "Number",
    "Pow",
    "Step",
    "Sum",
    "Symbol",
    "check_limits",
    "derive",
    "parse",
    "to_latex",
    "to_text",
]

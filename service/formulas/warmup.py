"""Imported by the formula workers' fork server (and each worker) to warm SymPy: the first simplify, factor and
solve of a process fill SymPy's caches and import its lazily loaded parts, about 0.3 s that would otherwise be
spent inside the first job's time limit. Importing this module runs one small in_terms_of, on a tree built here."""

from __future__ import annotations

from fractions import Fraction

from service.formulas import algebra
from service.formulas.derive import derive
from service.formulas.tree import Add, Call, Div, Neg, Number, Symbol

Z, F = Symbol("z"), Symbol("f")
ONE = Number(Fraction(1))
SIGMOID = Div(ONE, Add((ONE, Call("exp", (Neg(Z),)))))  # 1/(1 + e^(-z))

algebra.in_terms_of(derive(SIGMOID, "z").derivative, Z, F, SIGMOID)
algebra.equivalent(Call("sigma", (Z,)), SIGMOID)

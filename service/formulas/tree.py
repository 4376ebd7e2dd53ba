"""The expression tree: immutable dataclasses, built by the parser (never by eval).

Sums and products are n-ary and flat (`add` and `mul` flatten), a difference is a sum with a negated
term (a - b is Add((a, Neg(b)))), a quotient is binary (a/b/c is Div(Div(a, b), c)). Numbers are exact:
a Fraction (every literal is a terminating decimal).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Number:
    value: Fraction  # never negative: a minus sign is a Neg


@dataclass(frozen=True)
class Symbol:
    name: str  # one of vocabulary.NAMES
    index: str | None = None  # the feature index: x_j
    example: str | None = None  # the example index: x_j^{(i)}


@dataclass(frozen=True)
class Derivative:
    """A Leibniz name: dL/dz, \\frac{\\partial J}{\\partial w_j}. A name, not a division."""

    of: str  # L, J, f or z
    wrt: Symbol  # z, f, w_j or b


@dataclass(frozen=True)
class Call:
    function: str  # one of vocabulary.FUNCTIONS
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Add:
    terms: tuple[Expr, ...]  # two or more, none an Add


@dataclass(frozen=True)
class Mul:
    factors: tuple[Expr, ...]  # two or more, none a Mul


@dataclass(frozen=True)
class Div:
    numerator: Expr
    denominator: Expr


@dataclass(frozen=True)
class Pow:
    base: Expr
    exponent: Expr


@dataclass(frozen=True)
class Neg:
    operand: Expr


@dataclass(frozen=True)
class Sum:
    body: Expr
    index: str  # i or j
    lower: Expr
    upper: Expr


Expr = Number | Symbol | Derivative | Call | Add | Mul | Div | Pow | Neg | Sum


def add(*terms: Expr) -> Expr:
    flat: list[Expr] = []
    for term in terms:
        flat.extend(term.terms if isinstance(term, Add) else (term,))
    return flat[0] if len(flat) == 1 else Add(tuple(flat))


def mul(*factors: Expr) -> Expr:
    flat: list[Expr] = []
    for factor in factors:
        flat.extend(factor.factors if isinstance(factor, Mul) else (factor,))
    return flat[0] if len(flat) == 1 else Mul(tuple(flat))


def number(value: int | str | Fraction) -> Number:
    return Number(Fraction(value))


def children(node: Expr) -> tuple[Expr, ...]:
    match node:
        case Number() | Symbol() | Derivative():
            return ()
        case Call(args=args):
            return args
        case Add(terms=terms):
            return terms
        case Mul(factors=factors):
            return factors
        case Div(numerator=a, denominator=b) | Pow(base=a, exponent=b):
            return (a, b)
        case Neg(operand=a):
            return (a,)
        case Sum(body=body, lower=lower, upper=upper):
            return (body, lower, upper)
    raise TypeError(f"not a formula node: {node!r}")


def walk(node: Expr) -> Iterator[Expr]:
    """Every node, parents before children, without recursion (a tree of any depth)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children(current)))


def count_nodes(node: Expr) -> int:
    return sum(1 for _ in walk(node))


def depth(node: Expr) -> int:
    """Levels of the tree (a leaf is 1), without recursion."""
    deepest = 0
    stack = [(node, 1)]
    while stack:
        current, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children(current))
    return deepest

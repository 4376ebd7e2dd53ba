"""Hypothesis: a random tree printed in either spelling reads back as the same tree; random and mutated
strings only ever raise FormulaError (FormulaTooComplex is one), never another exception."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from service.formulas import (
    Call,
    Derivative,
    Div,
    Expr,
    FormulaError,
    Neg,
    Number,
    Pow,
    Sum,
    Symbol,
    check_limits,
    parse,
    to_latex,
    to_text,
)
from service.formulas.tree import add, mul

NUMBERS = st.builds(lambda k, p: Number(Fraction(k, 10**p)), st.integers(0, 10_000), st.integers(0, 3))
SYMBOLS = st.sampled_from(
    [
        Symbol("z"),
        Symbol("f"),
        Symbol("y"),
        Symbol("x"),
        Symbol("w"),
        Symbol("b"),
        Symbol("m"),
        Symbol("n"),
        Symbol("lambda"),
        Symbol("delta"),
        Symbol("x", "j"),
        Symbol("w", "j"),
        Symbol("x", "j", "i"),
        Symbol("x", None, "i"),
        Symbol("y", example="i"),
        Symbol("f", example="i"),
        Symbol("z", example="i"),
    ]
)
DERIVATIVES = st.builds(
    Derivative,
    st.sampled_from(["L", "J", "f", "z"]),
    st.sampled_from([Symbol("z"), Symbol("f"), Symbol("w", "j"), Symbol("b")]),
)
ONE_ARGUMENT = ["exp", "log", "sqrt", "abs", "tanh", "cosh", "sinh", "sigma", "softplus"]


def _compound(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    return st.one_of(
        st.builds(lambda g, a: Call(g, (a,)), st.sampled_from(ONE_ARGUMENT), children),
        st.builds(
            lambda g, a: Call(g, tuple(a)), st.sampled_from(["max", "min"]), st.lists(children, min_size=2, max_size=3)
        ),
        st.builds(lambda a: add(*a), st.lists(children, min_size=2, max_size=4)),
        st.builds(lambda a: mul(*a), st.lists(children, min_size=2, max_size=4)),
        st.builds(Div, children, children),
        st.builds(Pow, children, children),
        st.builds(Neg, children),
        st.builds(Sum, children, st.sampled_from(["i", "j"]), children, children),
    )


TREES = st.recursive(st.one_of(NUMBERS, SYMBOLS, DERIVATIVES), _compound, max_leaves=25)


def _within_limits(tree: Expr) -> bool:
    try:
        check_limits(tree)
    except FormulaError:
        return False
    return True


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TREES)
def test_plain_text_round_trip(tree: Expr) -> None:
    assume(_within_limits(tree))
    assert parse(to_text(tree), syntax="text") == tree


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TREES)
def test_latex_round_trip(tree: Expr) -> None:
    assume(_within_limits(tree))
    assert parse(to_latex(tree), syntax="latex") == tree
    assert parse(to_latex(tree)) == tree  # detected


PIECES = [
    *"zfyxwbmne+-*/^(){}_,=.0123456789 ",
    "x_j",
    "^(i)",
    "^{(i)}",
    "dL/dz",
    "exp(",
    "log",
    "sigmoid",
    "max(",
    "sum_{i=1}^{m}",
    "\\frac{",
    "}{",
    "\\sum\\limits_{i=0}^{m-1}",
    "\\partial ",
    "\\mathbf{",
    "\\hat{y}",
    "\\left(",
    "\\right)",
    "\\cdot",
    "\\sigma",
    "\\sqrt{",
    "\\,",
    "\\lambda",
    "f_{\\mathbf{w},b}(\\mathbf{x}^{(i)})",
    "e^",
    "**",
    "1e5",
    "\\",
    "\x00",
    "−",
    "é",
]
CORPUS = [
    "1/(1+e^{-z})",
    "\\frac{1}{1+e^{-z}}",
    "f(1-f)",
    "-y\\log f - (1-y)\\log(1-f)",
    "\\frac{1}{m}\\sum\\limits_{i=0}^{m-1}(f_{\\mathbf{w},b}(\\mathbf{x}^{(i)}) - y^{(i)})x_j^{(i)}",
    "dL/df * df/dz * dz/dw_j",
    "\\frac{\\partial J(\\mathbf{w},b)}{\\partial w_j}",
    "\\sigma(z)(1-\\sigma(z))",
]


def _check(text: str) -> None:
    try:
        tree = parse(text)
    except FormulaError as error:
        assert error.message
        assert error.column is None or 1 <= error.column <= len(text) + 1
        return
    assert parse(to_text(tree)) == tree  # whatever reads, prints and reads back the same


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=40).map("".join))
def test_fuzz_random_pieces(text: str) -> None:
    _check(text)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60))
def test_fuzz_any_text(text: str) -> None:
    _check(text)


@settings(max_examples=1500, deadline=None)
@given(
    st.sampled_from(CORPUS),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 3), st.sampled_from(PIECES)), min_size=1, max_size=4),
)
def test_fuzz_mutated_formulas(text: str, edits: list[tuple[int, int, str]]) -> None:
    for position, cut, piece in edits:
        at = position % (len(text) + 1)
        text = text[:at] + piece + text[at + cut :]
    _check(text)

"""The derivative tracer: the course's functions give the derivatives a learner knows, with the rules named;
every step's LaTeX parses with KaTeX; random trees agree with autograd; what it cannot derive is refused."""

from __future__ import annotations

import random
from fractions import Fraction
from typing import Any

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.formulas import FormulaError, FormulaTooComplex, parse, to_text
from service.formulas.derive import RULES, Derivation, NotDerivable, derive, simplify
from service.formulas.numeric import evaluate
from service.formulas.tree import Add, Call, Div, Expr, Mul, Neg, Number, Pow, Symbol
from tests.latex import katex_errors

Z = np.linspace(-6.0, 6.0, 49)
F = np.linspace(0.02, 0.98, 25)


def sigma(z: Any) -> Any:
    return 1.0 / (1.0 + np.exp(-z))


def d(text: str, variable: str) -> Derivation:
    return derive(parse(text), variable)


def at(derivation: Derivation, **values: Any) -> Any:
    return evaluate(derivation.derivative, values)


def rules(derivation: Derivation) -> list[str]:
    return [step.rule for step in derivation.steps]


COURSE = [
    ("1/(1+e^{-z})", "z", {}, lambda z: sigma(z) * (1 - sigma(z))),
    ("e^z", "z", {}, np.exp),
    ("\\log(1 + e^{z})", "z", {}, sigma),
    ("tanh(z)", "z", {}, lambda z: 1 - np.tanh(z) ** 2),
    ("z^3 - 2z", "z", {}, lambda z: 3 * z**2 - 2),
    ("sigmoid(z)", "z", {}, lambda z: sigma(z) * (1 - sigma(z))),
    ("softplus(z)", "z", {}, sigma),
    ("sqrt(1 + z^2)", "z", {}, lambda z: z / np.sqrt(1 + z**2)),
    ("cosh(z) + sinh(2z)", "z", {}, lambda z: np.sinh(z) + 2 * np.cosh(2 * z)),
]


@pytest.mark.parametrize(("text", "variable", "others", "expected"), COURSE, ids=[c[0] for c in COURSE])
def test_course_activations(text: str, variable: str, others: dict[str, float], expected: Any) -> None:
    derivation = d(text, variable)
    np.testing.assert_allclose(at(derivation, z=Z), expected(Z), rtol=1e-12, atol=1e-15)
    assert set(rules(derivation)) <= set(RULES)


def test_sigmoid_as_written_names_quotient_exp_and_chain() -> None:
    derivation = d("1/(1+e^{-z})", "z")
    assert {"quotient", "exp", "chain", "sum", "constant", "identity", "simplify"} <= set(rules(derivation))
    assert "d/dz (1 + exp(-z)) = 0 - exp(-z)" in [step.text for step in derivation.steps]
    assert to_text(derivation.derivative) == "exp(-z)/(1 + exp(-z))^2"
    for step in derivation.steps:
        assert step.why and "\n" not in step.why


@pytest.mark.parametrize("y", [0.0, 0.3, 1.0])
def test_squared_error_in_f_is_f_minus_y(y: float) -> None:
    derivation = d("(f - y)^2/2", "f")
    assert to_text(derivation.derivative) == "f - y"
    np.testing.assert_allclose(at(derivation, f=F, y=y), F - y, rtol=1e-12)
    assert "power" in rules(derivation) and "constant_multiple" in rules(derivation)


@pytest.mark.parametrize("y", [0.0, 0.25, 1.0])
def test_cross_entropy_in_f(y: float) -> None:
    derivation = d("-y log f - (1-y) log(1-f)", "f")
    np.testing.assert_allclose(at(derivation, f=F, y=y), (F - y) / (F * (1 - F)), rtol=1e-12)
    assert {"log", "chain", "sum", "constant_multiple"} <= set(rules(derivation))


def test_powers() -> None:
    assert to_text(d("z^3 - 2z", "z").derivative) == "3*z^2 - 2"
    assert to_text(d("2^z", "z").derivative) == "2^z*log(2)"
    general = d("z^z", "z")
    assert rules(general)[0] == "power" and "exp" in rules(general)
    zs = np.linspace(0.1, 3.0, 30)
    np.testing.assert_allclose(at(general, z=zs), zs**zs * (np.log(zs) + 1), rtol=1e-12)
    np.testing.assert_allclose(at(d("z^(-2)", "z"), z=zs), -2 * zs**-3, rtol=1e-12)


def test_abs_is_a_subgradient_and_says_so() -> None:
    derivation = d("abs(z)", "z")
    assert to_text(derivation.derivative) == "z/abs(z)"
    assert any("subgradient" in step.why for step in derivation.steps if step.rule == "function")


def test_constants_and_the_variable() -> None:
    assert d("y", "z").derivative == Number(Fraction(0)) and rules(d("y", "z")) == ["constant"]
    assert d("z", "z").derivative == Number(Fraction(1)) and rules(d("z", "z")) == ["identity"]
    assert rules(d("3 * z", "z")) == ["identity", "constant_multiple", "simplify"]
    assert rules(d("z * e^z", "z")).count("product") == 1
    w = derive(parse("w_j * x_j + b"), "w_j")
    assert to_text(w.derivative) == "x_j"


def test_simplify_is_light() -> None:
    z = Symbol("z")
    assert simplify(Add((z, Number(Fraction(0))))) == z
    assert simplify(Mul((Number(Fraction(0)), z))) == Number(Fraction(0))
    assert simplify(Mul((Number(Fraction(1)), z))) == z
    assert simplify(Add((Number(Fraction(2)), Number(Fraction(3))))) == Number(Fraction(5))
    kept = Mul((z, Pow(z, Neg(Number(Fraction(1))))))
    assert simplify(kept) == kept  # x·x^-1 stays as it is


def test_every_step_reads_back_and_parses_with_katex() -> None:
    derivations = [derive(parse(text), variable) for text, variable, _, _ in COURSE]
    derivations += [d("(f - y)^2/2", "f"), d("-y log f - (1-y) log(1-f)", "f"), d("z^z", "z"), d("abs(z)", "z")]
    strings = [step.latex for derivation in derivations for step in derivation.steps]
    assert katex_errors(strings) == []
    for derivation in derivations:
        assert parse(to_text(derivation.derivative)) == derivation.derivative


@pytest.mark.parametrize(
    ("text", "what"),
    [("sum_{i=0}^{m-1} z", "sum"), ("dL/dz * z", "derivative"), ("max(0, z)", "max"), ("min(z, 1)", "min")],
)
def test_unsupported_nodes_are_refused_by_name(text: str, what: str) -> None:
    with pytest.raises(NotDerivable) as caught:
        d(text, "z")
    assert caught.value.what == what and what in str(caught.value)
    assert isinstance(caught.value, FormulaError)


# random trees in z (y a constant), checked against autograd on the same tree evaluated with autograd.numpy

FUNCTIONS = ["exp", "log", "sqrt", "tanh", "cosh", "sinh", "sigma", "softplus", "abs"]
leaves = st.one_of(
    st.just(Symbol("z")),
    st.just(Symbol("y")),  # another name: a constant (y = 0.7)
    st.sampled_from(["0.5", "1", "2", "3"]).map(lambda v: Number(Fraction(v))),
)


def _grow(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    small_power = st.sampled_from([0, 1, 2, 3]).map(lambda n: Number(Fraction(n)))
    return st.one_of(
        st.lists(children, min_size=2, max_size=3).map(lambda ts: Add(tuple(ts))),
        st.lists(children, min_size=2, max_size=3).map(lambda fs: Mul(tuple(fs))),
        st.tuples(children, children).map(lambda ab: Div(*ab)),
        st.tuples(children, st.one_of(small_power, small_power.map(Neg), children)).map(lambda ab: Pow(*ab)),
        children.map(Neg),
        st.tuples(st.sampled_from(FUNCTIONS), children).map(lambda fa: Call(fa[0], (fa[1],))),
    )


trees = st.recursive(leaves, _grow, max_leaves=10)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees, point=st.sampled_from([-2.3, -0.7, 0.4, 1.3, 2.9]))
def test_random_trees_agree_with_autograd(tree: Expr, point: float) -> None:
    z = np.float64(point)
    derivative = derive(tree, "z").derivative
    with np.errstate(all="ignore"):
        theirs = float(autograd.grad(lambda v: evaluate(tree, {"z": v, "y": np.float64(0.7)}, anp) + 0.0 * v)(z))
        mine = float(evaluate(derivative, {"z": z, "y": np.float64(0.7)}))
    if not (np.isfinite(mine) and np.isfinite(theirs)):
        return
    np.testing.assert_allclose(mine, theirs, rtol=1e-6, atol=1e-9)


def _random_tree(rng: random.Random, levels: int) -> Expr:
    """A random tree in z from the supported nodes (seeded: one KaTeX batch for all their steps)."""
    if levels == 0 or rng.random() < 0.2:
        return rng.choice([Symbol("z"), Symbol("y"), Number(Fraction(rng.choice(["0.5", "1", "2", "3"])))])
    grow = lambda: _random_tree(rng, levels - 1)  # noqa: E731
    kind = rng.randrange(6)
    if kind == 0:
        return Add((grow(), grow()))
    if kind == 1:
        return Mul((grow(), grow()))
    if kind == 2:
        return Div(grow(), grow())
    if kind == 3:
        return Pow(grow(), rng.choice([Number(Fraction(2)), Neg(Number(Fraction(1))), grow()]))
    if kind == 4:
        return Neg(grow())
    return Call(rng.choice(FUNCTIONS), (grow(),))


def test_steps_of_random_trees_parse_with_katex() -> None:
    rng = random.Random(14)
    strings: list[str] = []
    for _ in range(150):
        derivation = derive(_random_tree(rng, 4), "z")
        assert set(rules(derivation)) <= set(RULES)
        strings += [step.latex for step in derivation.steps]
        assert parse(to_text(derivation.derivative)) == derivation.derivative
    assert len(strings) > 1000
    assert katex_errors(strings) == []


def test_the_variable_is_a_name_of_the_notation() -> None:
    derivation = derive(parse("w_j^2 + w"), "w_j")
    assert to_text(derivation.derivative) == "2*w_j"
    assert "\\frac{d}{dw_{j}}" in derivation.steps[-1].latex or "\\frac{d}{dw_{j}}" in derivation.steps[0].latex
    with pytest.raises(FormulaError):
        derive(parse("z"), "z + 1")


def test_the_steps_are_bounded() -> None:
    text = "z"
    for _ in range(6):
        text = f"({text})*({text}+1)"
    with pytest.raises(FormulaTooComplex) as caught:
        derive(parse(text), "z", max_output=10_000)
    assert caught.value.limit == "derivative"
    assert derive(parse(text), "z").derivative is not None

"""Known inputs in both spellings, precedence, and the errors (column, what was expected, names allowed)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from service.formulas import (
    Add,
    Call,
    Derivative,
    Div,
    Expr,
    FormulaError,
    FormulaTooComplex,
    Limits,
    Mul,
    Neg,
    Number,
    Pow,
    Sum,
    Symbol,
    parse,
    to_latex,
    to_text,
)

z, f, y, b, m, lam = Symbol("z"), Symbol("f"), Symbol("y"), Symbol("b"), Symbol("m"), Symbol("lambda")
x, w, xj, wj = Symbol("x"), Symbol("w"), Symbol("x", "j"), Symbol("w", "j")
fi, yi, xji = Symbol("f", example="i"), Symbol("y", example="i"), Symbol("x", "j", "i")


def n(value: int | str) -> Number:
    return Number(Fraction(value))


def sub(a: Expr, c: Expr) -> Add:
    return Add((a, Neg(c)))


SIGMOID = Div(n(1), Add((n(1), Call("exp", (Neg(z),)))))
CROSS_ENTROPY = Add((Neg(Mul((y, Call("log", (f,))))), Neg(Mul((sub(n(1), y), Call("log", (sub(n(1), f),)))))))
GRADIENT = Mul((Div(n(1), m), Sum(Mul((sub(fi, yi), xji)), "i", n(0), sub(m, n(1)))))
CHAIN = Mul((Derivative("L", f), Derivative("f", z), Derivative("z", wj)))

KNOWN: list[tuple[str, Expr]] = [
    ("1/(1+e^{-z})", SIGMOID),
    ("1/(1+e^(-z))", SIGMOID),
    ("1 / (1 + exp(-z))", SIGMOID),
    (r"\frac{1}{1+e^{-z}}", SIGMOID),
    (r"\dfrac{1}{1 + \exp(-z)}", SIGMOID),
    (r"\tfrac{1}{1+e^{-z}}", SIGMOID),
    (r"\frac{1}{\left(1+e^{-z}\right)}", SIGMOID),
    ("f(1-f)", Mul((f, sub(n(1), f)))),
    ("a(1 - a)", Mul((f, sub(n(1), f)))),
    (r"\hat{y}(1-\hat{y})", Mul((f, sub(n(1), f)))),
    (r"-y\log f - (1-y)\log(1-f)", CROSS_ENTROPY),
    ("-y*log(f) - (1-y)*log(1-f)", CROSS_ENTROPY),
    ("-y ln(f) - (1 - y) ln(1 - f)", CROSS_ENTROPY),
    (r"\frac{1}{m}\sum\limits_{i=0}^{m-1}(f_{\mathbf{w},b}(\mathbf{x}^{(i)}) - y^{(i)})x_j^{(i)}", GRADIENT),
    (r"\frac{1}{m}\sum_{i=0}^{m-1}\left(f^{(i)} - y^{(i)}\right) x_{j}^{(i)}", GRADIENT),
    ("1/m sum_{i=0}^{m-1} (f_{w,b}(x^(i)) - y^(i)) x_j^(i)", GRADIENT),
    ("dL/df * df/dz * dz/dw_j", CHAIN),
    (r"\frac{\partial L}{\partial f} \cdot \frac{\partial f}{\partial z} \cdot \frac{\partial z}{\partial w_j}", CHAIN),
    (r"\frac{dL}{df}\frac{df}{dz}\frac{dz}{dw_{j}}", CHAIN),
    (r"\frac{\partial J(\mathbf{w},b)}{\partial w_j}", Derivative("J", wj)),
    ("dJ(w,b)/dw_j", Derivative("J", wj)),
    (r"\partial L/\partial b", Derivative("L", b)),
    ("(f - y)x_j", Mul((sub(f, y), xj))),
    (r"(f - y) \cdot x_j", Mul((sub(f, y), xj))),
    ("2x_j", Mul((n(2), xj))),
    ("2x", Mul((n(2), x))),
    ("e^z", Call("exp", (z,))),
    (r"e^{z}", Call("exp", (z,))),
    (r"\sigma(z)(1-\sigma(z))", Mul((Call("sigma", (z,)), sub(n(1), Call("sigma", (z,)))))),
    ("sigmoid(z)*(1 - sigma(z))", Mul((Call("sigma", (z,)), sub(n(1), Call("sigma", (z,)))))),
    ("x_j^(i)", xji),
    (r"\mathbf{x}^{(i)}", Symbol("x", example="i")),
    ("z^(i)", Symbol("z", example="i")),
    (r"f_{w,b}(x)", f),
    (r"\lambda w_j", Mul((lam, wj))),
    ("lambda/(2m) * w_j^2", Mul((Div(lam, Mul((n(2), m))), Pow(wj, n(2))))),
    (
        r"\frac{\lambda}{2m}\sum_{j=1}^{n} w_j^2",
        Mul((Div(lam, Mul((n(2), m))), Sum(Pow(wj, n(2)), "j", n(1), Symbol("n")))),
    ),
    (r"\sqrt{z^2 + 1}", Call("sqrt", (Add((Pow(z, n(2)), n(1))),))),
    ("sqrt(z**2 + 1)", Call("sqrt", (Add((Pow(z, n(2)), n(1))),))),
    (r"\tanh(z)", Call("tanh", (z,))),
    (
        "softplus(z) + abs(z) + cosh(z) + sinh(z)",
        Add(tuple(Call(g, (z,)) for g in ("softplus", "abs", "cosh", "sinh"))),
    ),
    (r"\operatorname{softplus}(z)", Call("softplus", (z,))),
    ("max(0, z)", Call("max", (n(0), z))),
    (r"\max(0, z, f)", Call("max", (n(0), z, f))),
    ("min(z,1)", Call("min", (z, n(1)))),
    ("0.5", n("0.5")),
    ("1.5e-3", Number(Fraction(3, 2000))),
    ("2E3", n(2000)),
    (".25z", Mul((n("0.25"), z))),
    (r"\delta^2", Pow(Symbol("delta"), n(2))),
    (r"3 \times z", Mul((n(3), z))),
    (r"z\,\cdot\;f\!\quad", Mul((z, f))),
    (r"\big(z\big)\Big(f\Big)", Mul((z, f))),
    ("z − f", sub(z, f)),  # U+2212 MINUS SIGN
    ("z·f", Mul((z, f))),
    ("((((z))))", z),
    ("{z}", z),
    ("e", Call("exp", (n(1),))),
]


@pytest.mark.parametrize(("text", "tree"), KNOWN, ids=[t for t, _ in KNOWN])
def test_known_inputs_read_as_expected(text: str, tree: Expr) -> None:
    assert parse(text) == tree
    assert parse(to_text(tree), syntax="text") == tree
    assert parse(to_latex(tree), syntax="latex") == tree


PRECEDENCE: list[tuple[str, Expr]] = [
    ("-z^2", Neg(Pow(z, n(2)))),
    ("z^2^3", Pow(z, Pow(n(2), n(3)))),
    ("(z^2)^3", Pow(Pow(z, n(2)), n(3))),
    ("e^-z", Call("exp", (Neg(z),))),
    ("z^-2", Pow(z, Neg(n(2)))),
    ("z - f - y", Add((z, Neg(f), Neg(y)))),
    ("z - (f - y)", Add((z, Neg(sub(f, y))))),
    ("z/f/y", Div(Div(z, f), y)),
    ("z/(f/y)", Div(z, Div(f, y))),
    ("z*f/y", Div(Mul((z, f)), y)),
    ("z/f*y", Mul((Div(z, f), y))),
    ("1 + 2*z", Add((n(1), Mul((n(2), z))))),
    ("(1 + 2)*z", Mul((Add((n(1), n(2))), z))),
    ("-z*f", Neg(Mul((z, f)))),
    ("z*-f", Mul((z, Neg(f)))),
    ("2^3z", Mul((Pow(n(2), n(3)), z))),
    ("2z^3", Mul((n(2), Pow(z, n(3))))),
    ("--z", Neg(Neg(z))),
    ("+z", z),
    ("z + -f", Add((z, Neg(f)))),
    (r"x^23", Pow(x, n(23))),
    (r"\lambda x^23", Mul((lam, Pow(x, n(2)), n(3)))),  # TeX: x^23 is x squared times 3
    (r"\log z^2", Call("log", (Pow(z, n(2)),))),
    (r"\log(z)^2", Pow(Call("log", (z,)), n(2))),
    (r"\frac{1}{2}z", Mul((Div(n(1), n(2)), z))),
    ("z**2", Pow(z, n(2))),
    ("y^(i)^2", Pow(yi, n(2))),  # ^(i) is the example index, then a power
]


@pytest.mark.parametrize(("text", "tree"), PRECEDENCE, ids=[t for t, _ in PRECEDENCE])
def test_precedence_and_associativity(text: str, tree: Expr) -> None:
    assert parse(text) == tree


def test_the_spelling_is_detected_or_chosen() -> None:
    assert parse("sigmoid(z)") == Call("sigma", (z,))
    with pytest.raises(FormulaError):  # LaTeX letters are single names unless a known word: s*i*... fails on s
        parse("zf", syntax="latex") and parse("zq", syntax="latex")
    assert parse("zf", syntax="latex") == Mul((z, f))
    with pytest.raises(FormulaError, match="unknown name 'zf'"):
        parse("zf", syntax="text")
    with pytest.raises(FormulaError, match="LaTeX command in plain text"):
        parse(r"\frac{1}{2}", syntax="text")
    with pytest.raises(FormulaError, match="unknown syntax"):
        parse("z", syntax="rtf")  # type: ignore[arg-type]


def test_printers() -> None:
    assert to_text(SIGMOID) == "1/(1 + exp(-z))"
    assert to_latex(SIGMOID) == r"\frac{1}{1 + e^{-z}}"
    assert to_text(CHAIN) == "dL/df*df/dz*dz/dw_j"
    assert to_latex(Derivative("J", wj)) == r"\frac{\partial J}{\partial w_{j}}"
    assert to_text(GRADIENT) == "1/m*sum_{i=0}^{m - 1} (f^(i) - y^(i))*x_j^(i)"
    assert to_text(Mul((Sum(z, "i", n(1), m), f))) == "(sum_{i=1}^{m} z)*f"
    assert to_text(Number(Fraction(3, 2000))) == "0.0015"


ERRORS: list[tuple[str, str, int, str | None]] = [
    # text, message fragment, column, an allowed name listed
    ("z + q", "unknown name 'q'", 5, "z"),
    ("2*foo(z)", "unknown name 'foo'", 3, "sigmoid"),
    ("z + x_k", "expected the index j", 7, None),
    ("y_j", "'y' takes no subscript", 2, None),
    (r"\input{/etc/passwd}", r"unknown command \input", 1, r"\frac"),
    (r"z + \def\x{1}", r"unknown command \def", 5, r"\sigma"),
    (r"\operatorname{foo}(z)", "unknown function 'foo'", 15, "softplus"),
    ("sigmoid(z", "never closed", 8, None),
    ("z)", "nothing to close", 2, None),
    ("(z}", "expected ')'", 3, None),
    ("2 +", "expected a number, a name, a function or '(', found the end", 4, None),
    ("z * * f", "expected a number, a name, a function or '('", 5, None),
    ("max(z)", "max takes two or more arguments", 1, None),
    ("exp(z, f)", "exp takes 1 argument", 1, None),
    ("dL", "'/' after dL", 3, None),
    ("dL/dq", "taken with respect to, found 'dq'", 4, None),
    (r"\frac{\partial L}{\partial y}", "expected a Leibniz name", 28, "w_j"),
    ("dq/dz", "unknown name 'dq'", 1, "z"),
    (r"\frac{1}", "the denominator of \\frac", 9, None),
    (r"\sum z", "the bounds of the sum", 6, None),
    ("z^", "expected an exponent", 3, None),
    ("z = f", "an operator or the end", 3, None),
    ("z $ f", "unexpected character '$'", 3, None),
    ("", "found nothing", 1, None),
    ("   ", "found nothing", 1, None),
    ("x.__class__", "unexpected character '.'", 2, None),
    ("__import__('os')", "unexpected character", 12, None),
    ("__import__", "expected a number, a name, a function or '(', found '_'", 1, None),
    ("b^(i)", "has no example index", 2, None),
]


@pytest.mark.parametrize(("text", "message", "column", "allowed"), ERRORS, ids=[e[0] or "empty" for e in ERRORS])
def test_errors_say_where_and_what(text: str, message: str, column: int, allowed: str | None) -> None:
    with pytest.raises(FormulaError) as caught:
        parse(text)
    error = caught.value
    assert not isinstance(error, FormulaTooComplex)
    assert message in error.message, error.message
    assert error.column == column, (error.message, error.column)
    if allowed is not None:
        assert allowed in error.allowed_names
        assert allowed in error.message or text.startswith("\\") or "\\" in text


def test_names_can_be_restricted_to_the_question() -> None:
    assert parse("1/(1+e^{-z})", names={"z"}) == SIGMOID
    with pytest.raises(FormulaError) as caught:
        parse("f(1-z)", names={"z"})
    assert caught.value.column == 1 and caught.value.allowed_names == ("z",)


def test_limits_are_a_small_dataclass_with_the_defaults() -> None:
    limits = Limits()
    assert (limits.max_chars, limits.max_nodes, limits.max_depth, limits.max_power_log10) == (2000, 1000, 64, 100)
    with pytest.raises(FormulaTooComplex) as caught:
        parse("z+z+z", limits=Limits(max_nodes=3))
    assert caught.value.limit == "nodes" and caught.value.found == 4

"""A recursive-descent parser for both spellings; it builds the tree directly (no eval, no sympify).

    expr     := signed (('+' | '-') signed)*
    signed   := ('-' | '+') signed | product            -x*y is -(x*y)
    product  := unary (('*' | '/') unary | power)*      a bare `power` is an implicit product: 2x, (f - y)x_j
    unary    := ('-' | '+') unary | power               after * or /: 2*-x
    power    := 'e' '^' exponent                        e^u is exp(u)
              | primary ('^' exponent)?                 right-associative: a^b^c is a^(b^c)
    exponent := ('-' | '+') exponent | power            -x^2 is -(x^2), e^-z is exp(-z)
    primary  := number | '(' expr ')' | '{' expr '}' | symbol | call | leibniz | frac | sqrt | sum
    symbol   := name ('_' index | '^' '(i)')*            x_j^{(i)}, f_{w,b}(x^{(i)}), \\hat{y}, \\mathbf{x}
    call     := function ('(' expr (',' expr)* ')' | power)    \\log f, \\log(1 - f)
    leibniz  := ('d' | '\\partial') of ('/' | '}{') ('d' | '\\partial') wrt
                                                        dL/dz, \\frac{\\partial J(w,b)}{\\partial w_j}
    sum      := ('\\sum' | 'sum') ('_' '{' index '=' expr '}' | '^' primary)* product

Every recursive step counts against the depth limit, so no input reaches Python's recursion limit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction

import service.formulas.vocabulary as v
from service.formulas.errors import FormulaError, FormulaTooComplex
from service.formulas.limits import DEFAULT_LIMITS, Limits
from service.formulas.tokens import Syntax, Token, describe, detect, simplify_groups, tokenize
from service.formulas.tree import (
    Add,
    Call,
    Derivative,
    Div,
    Expr,
    Mul,
    Neg,
    Number,
    Pow,
    Sum,
    Symbol,
    add,
    children,
    count_nodes,
    depth,
    mul,
)

ONE = Number(Fraction(1))


class _Parser:
    def __init__(self, tokens: list[Token], limits: Limits, names: frozenset[str] | None) -> None:
        self.tokens = tokens
        self.pos = 0
        self.limits = limits
        self.names = names
        self.nesting = 0

    # -- tokens
    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.tokens[self.pos]
        if token.kind != "end":
            self.pos += 1
        return token

    def at(self, text: str, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token.kind == "op" and token.text == text

    def at_name(self, text: str, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token.kind == "name" and token.text == text

    def at_cmd(self, text: str, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token.kind == "cmd" and token.text == text

    def expect(self, text: str, what: str | None = None) -> Token:
        if not self.at(text):
            self.fail(what or f"'{text}'")
        return self.advance()

    def fail(self, what: str) -> None:
        token = self.peek()
        raise FormulaError(f"expected {what}, found {describe(token)}", token.column)

    def enter(self) -> None:
        self.nesting += 1
        if self.nesting > self.limits.max_depth + 1:
            limit = self.limits.max_depth
            raise FormulaTooComplex(
                "depth", limit, None, f"the formula nests deeper than {limit} levels", self.peek().column
            )

    def leave(self) -> None:
        self.nesting -= 1

    # -- grammar
    def parse(self) -> Expr:
        tree = self.expr()
        if self.peek().kind != "end":
            self.fail("an operator or the end of the formula")
        return tree

    def expr(self) -> Expr:
        self.enter()
        terms = [self.signed()]
        while self.at("+") or self.at("-"):
            if self.advance().text == "+":
                terms.append(self.signed())
            else:
                terms.append(Neg(self.signed()))
        self.leave()
        return add(*terms)

    def signed(self) -> Expr:
        if self.at("+"):
            self.advance()
            return self.signed()
        if self.at("-"):
            self.advance()
            self.enter()
            result = Neg(self.signed())
            self.leave()
            return result
        return self.product()

    def product(self) -> Expr:
        left = self.unary()
        while True:
            if self.at("*"):
                self.advance()
                left = mul(left, self.unary())
            elif self.at("/"):
                self.advance()
                left = Div(left, self.unary())
            elif self.starts_primary():
                left = mul(left, self.power())
            else:
                return left

    def starts_primary(self) -> bool:
        token = self.peek()
        return token.kind in {"num", "name", "cmd"} or (token.kind == "op" and token.text in {"(", "{"})

    def unary(self) -> Expr:
        if self.at("+"):
            self.advance()
            return self.unary()
        if self.at("-"):
            self.advance()
            self.enter()
            result = Neg(self.unary())
            self.leave()
            return result
        return self.power()

    def power(self) -> Expr:
        if self.at_name("e"):
            self.advance()
            if not self.at("^"):
                return Call("exp", (ONE,))
            self.advance()
            return Call("exp", (self.exponent(),))
        base = self.primary()
        if self.at("^"):
            self.advance()
            return Pow(base, self.exponent())
        return base

    def exponent(self) -> Expr:
        self.enter()
        if self.at("+"):
            self.advance()
            result = self.exponent()
        elif self.at("-"):
            self.advance()
            result = Neg(self.exponent())
        else:
            if not self.starts_primary():
                self.fail("an exponent")
            result = self.power()
        self.leave()
        return result

    def group(self, opening: str) -> Expr:
        closing = ")" if opening == "(" else "}"
        self.expect(opening)
        inner = self.expr()
        self.expect(closing)
        return inner

    def primary(self) -> Expr:
        token = self.peek()
        if token.kind == "num":
            self.advance()
            assert token.value is not None
            return Number(token.value)
        if self.at("(") or self.at("{"):
            return self.group(token.text)
        if token.kind == "name":
            return self.word(token)
        if token.kind == "cmd":
            return self.command(token)
        self.fail("a number, a name, a function or '('")
        raise AssertionError  # unreachable

    def word(self, token: Token) -> Expr:
        text = token.text
        if text == "d":
            return self.leibniz()
        if text == "sum":
            self.advance()
            return self.sum(token)
        if text in v.FUNCTION_WORDS:
            self.advance()
            return self.call(v.FUNCTION_WORDS[text], token)
        if text in v.NAME_WORDS:
            self.advance()
            return self.symbol(v.NAME_WORDS[text], token)
        allowed = ", ".join(v.ALLOWED_WORDS)
        raise FormulaError(f"unknown name '{text}'; the names allowed are {allowed}", token.column, v.ALLOWED_WORDS)

    def command(self, token: Token) -> Expr:
        name = token.text
        if name == "partial":
            return self.leibniz()
        self.advance()
        if name in {"frac", "dfrac", "tfrac"}:
            return self.frac()
        if name == "sqrt":
            if not self.at("{"):
                self.fail("'{' after \\sqrt")
            return Call("sqrt", (self.group("{"),))
        if name == "sum":
            return self.sum(token)
        if name in v.COMMAND_FUNCTIONS:
            return self.call(v.COMMAND_FUNCTIONS[name], token)
        if name in v.COMMAND_NAMES:
            return self.symbol(v.COMMAND_NAMES[name], token)
        if name in {"mathbf", "hat", "operatorname", "mathrm"}:
            self.expect("{", f"'{{' after \\{name}")
            inner = self.peek()
            if inner.kind != "name":
                self.fail(f"a name inside \\{name}{{}}")
            self.advance()
            if name in {"operatorname", "mathrm"}:  # LaTeX splits an unknown word into letters: join them back
                while self.peek().kind == "name":
                    inner = Token("name", inner.text + self.advance().text, inner.column)
            self.expect("}")
            if name == "hat":
                if inner.text != "y":
                    raise FormulaError("expected \\hat{y}", inner.column, ("\\hat{y}",))
                return self.symbol("f", inner)
            if name == "mathbf":
                if inner.text not in {"x", "w"}:
                    raise FormulaError("expected \\mathbf{x} or \\mathbf{w}", inner.column, ("x", "w"))
                return self.symbol(inner.text, inner)
            if inner.text in v.FUNCTION_WORDS:
                return self.call(v.FUNCTION_WORDS[inner.text], inner)
            functions = tuple(sorted(v.FUNCTION_WORDS))
            raise FormulaError(
                f"unknown function '{inner.text}'; the functions allowed are {', '.join(functions)}",
                inner.column,
                functions,
            )
        raise FormulaError(f"\\{name} cannot start a term here", token.column)  # pragma: no cover

    def call(self, function: str, token: Token) -> Expr:
        arity = v.FUNCTIONS[function]
        if self.at("("):
            self.advance()
            args = [self.expr()]
            while self.at(","):
                self.advance()
                args.append(self.expr())
            self.expect(")", "')' or ','")
        elif arity is None:
            self.fail(f"'(' after {function}")
            raise AssertionError  # unreachable
        else:
            if not self.starts_primary():
                self.fail(f"the argument of {function}")
            args = [self.power()]
        if arity is not None and len(args) != arity:
            raise FormulaError(f"{function} takes {arity} argument, found {len(args)}", token.column)
        if arity is None and len(args) < 2:
            raise FormulaError(f"{function} takes two or more arguments, found {len(args)}", token.column)
        return Call(function, tuple(args))

    # -- names
    def symbol(self, name: str, token: Token) -> Expr:
        if self.names is not None and name not in self.names:
            allowed = tuple(sorted(self.names))
            raise FormulaError(
                f"the name '{token.text}' is not allowed here; the names allowed are {', '.join(allowed)}",
                token.column,
                allowed,
            )
        index: str | None = None
        example: str | None = None
        while True:
            if self.at("_") and index is None:
                underscore = self.advance()
                if name == "f":
                    example = self.model_subscript() or example
                    continue
                if name not in v.INDEXED:
                    raise FormulaError(f"'{token.text}' takes no subscript", underscore.column)
                index = self.index_letter(v.FEATURE_INDEX)
            elif self.at("^") and example is None and self.example_ahead():
                if name not in v.PER_EXAMPLE:
                    raise FormulaError(f"'{token.text}' has no example index (x_j, y, f and z do)", self.peek().column)
                self.pos += 4 if self.at("(", 1) else 6
                example = v.EXAMPLE_INDEX
            else:
                return Symbol(name, index, example)

    def index_letter(self, letter: str) -> str:
        braced = self.at("{")
        if braced:
            self.advance()
        if not self.at_name(letter):
            self.fail(f"the index {letter}")
        self.advance()
        if braced:
            self.expect("}")
        return letter

    def example_ahead(self) -> bool:
        """^(i) or ^{(i)} after a name: the example index, not a power."""
        if self.at("(", 1):
            return self.at_name(v.EXAMPLE_INDEX, 2) and self.at(")", 3)
        return self.at("{", 1) and self.at("(", 2) and self.at_name(v.EXAMPLE_INDEX, 3) and self.at(")", 4)

    def vector_name(self, letter: str) -> None:
        if self.at_cmd("mathbf"):
            self.advance()
            self.expect("{")
            if not self.at_name(letter):
                self.fail(f"'{letter}'")
            self.advance()
            self.expect("}")
        elif self.at_name(letter):
            self.advance()
        else:
            self.fail(f"'{letter}' or \\mathbf{{{letter}}}")

    def model_subscript(self) -> str | None:
        """f_{w,b}(x) and f_{\\mathbf{w},b}(\\mathbf{x}^{(i)}): the model's output, f. Returns its example index."""
        self.expect("{", "'{w,b}' after f_")
        self.vector_name("w")
        self.expect(",")
        self.vector_name("b")
        self.expect("}")
        if not self.at("("):
            return None
        self.advance()
        self.vector_name("x")
        example = None
        if self.at("^") and self.example_ahead():
            self.pos += 4 if self.at("(", 1) else 6
            example = v.EXAMPLE_INDEX
        self.expect(")")
        return example

    def leibniz_part(self, allowed: tuple[str, ...]) -> str:
        """d<name> or \\partial <name>, the name one of `allowed` (w_j spelled with its index)."""
        self.advance()  # d or \partial
        token = self.peek()
        if token.kind == "cmd" and token.text == "mathbf":
            self.fail("w_j (a derivative with respect to one weight)")
        name = token.text if token.kind == "name" else ""
        if name + "_j" in allowed and name:
            self.advance()
            if not self.at("_"):
                self.fail(f"'_j' after d{name}")
            self.advance()
            self.index_letter(v.FEATURE_INDEX)
            return name + "_j"
        if name not in allowed:
            raise FormulaError(
                f"expected a Leibniz name such as dL/dz: d<of>/d<wrt>, of one of {', '.join(v.DERIVATIVE_OF)} "
                f"with respect to one of {', '.join(v.DERIVATIVE_WRT)}; found {describe(token)}",
                token.column,
                tuple(allowed),
            )
        self.advance()
        if name == "J" and self.at("("):  # J(w, b)
            self.advance()
            self.vector_name("w")
            self.expect(",")
            self.vector_name("b")
            self.expect(")")
        return name

    def derivative_tail(self, of: str) -> Derivative:
        if not (self.at_name("d") or self.at_cmd("partial")):
            self.fail(f"'d' or \\partial: the variable d{of} is taken with respect to")
        wrt = self.leibniz_part(v.DERIVATIVE_WRT)
        return Derivative(of, Symbol("w", "j") if wrt == "w_j" else Symbol(wrt))

    def leibniz(self) -> Expr:
        of = self.leibniz_part(v.DERIVATIVE_OF)
        self.expect("/", f"'/' after d{of} (a Leibniz name such as d{of}/dz)")
        return self.derivative_tail(of)

    def frac(self) -> Expr:
        self.expect("{", "'{' after \\frac")
        if self.at_name("d") or self.at_cmd("partial"):
            of = self.leibniz_part(v.DERIVATIVE_OF)
            self.expect("}")
            self.expect("{")
            result = self.derivative_tail(of)
            self.expect("}")
            return result
        numerator = self.expr()
        self.expect("}")
        if not self.at("{"):
            self.fail("'{': the denominator of \\frac")
        return Div(numerator, self.group("{"))

    def sum(self, token: Token) -> Expr:
        index: str | None = None
        lower: Expr | None = None
        upper: Expr | None = None
        while (self.at("_") and lower is None) or (self.at("^") and upper is None):
            if self.advance().text == "_":
                opening = self.peek().text if self.at("{") or self.at("(") else ""
                if not opening:
                    self.fail("'{' after the sum's '_' (as in \\sum_{i=1}^{m})")
                self.advance()
                name = self.peek()
                if name.kind != "name" or name.text not in v.SUM_INDICES:
                    raise FormulaError(
                        f"expected the sum's index (i or j), found {describe(name)}", name.column, v.SUM_INDICES
                    )
                index = name.text
                self.advance()
                self.expect("=", "'=' (as in i=1)")
                lower = self.expr()
                self.expect("}" if opening == "{" else ")")
            else:
                if not self.starts_primary():
                    self.fail("the sum's upper bound")
                upper = self.primary()
        if index is None or lower is None or upper is None:
            self.fail("the bounds of the sum, as in \\sum_{i=1}^{m}")
            raise AssertionError  # unreachable
        if not self.starts_primary() and not self.at("-"):
            self.fail("the sum's body")
        self.enter()
        body = self.product()
        self.leave()
        return Sum(body, index, lower, upper)


def _log10(value: float | int) -> float:
    return math.log10(abs(value)) if value else -math.inf


def _constant(node: Expr, limit: int) -> tuple[float, float | None] | None:
    """(log10 of the magnitude, the value as a float when it is one) of a constant subtree; None when it
    has a name. Each constant power is bounded with logarithms before its value is ever formed."""
    match node:
        case Number(value=exact):
            if exact == 0:
                return -math.inf, 0.0
            magnitude = math.log10(exact.numerator) - math.log10(exact.denominator)
            if abs(magnitude) > limit:
                raise FormulaTooComplex("number", limit, magnitude, f"a number past 10^{limit} (or under 10^-{limit})")
            return magnitude, float(exact)
        case Neg(operand=operand):
            inner = _constant(operand, limit)
            if inner is None:
                return None
            return inner[0], (None if inner[1] is None else -inner[1])
        case Add(terms=items) | Mul(factors=items):
            parts = [_constant(item, limit) for item in items]
            known = [p for p in parts if p is not None]
            if len(known) < len(parts):
                return None
            values = [p[1] for p in known]
            if isinstance(node, Add):
                magnitude = max(p[0] for p in known) + math.log10(len(known))
                total = math.fsum(values) if all(x is not None for x in values) else None  # type: ignore[arg-type]
            else:
                magnitude = -math.inf if any(p[0] == -math.inf for p in known) else math.fsum(p[0] for p in known)
                total = math.prod(values) if all(x is not None for x in values) else None  # type: ignore[arg-type]
            return magnitude, (total if magnitude < 300 else None)
        case Div(numerator=a, denominator=b):
            top, bottom = _constant(a, limit), _constant(b, limit)
            if top is None or bottom is None:
                return None
            if bottom[1] == 0:
                return 0.0, None
            magnitude = top[0] - bottom[0]
            quotient = top[1] / bottom[1] if top[1] is not None and bottom[1] is not None else None
            return magnitude, (quotient if abs(magnitude) < 300 else None)
        case Pow(base=a, exponent=b):
            base, exponent = _constant(a, limit), _constant(b, limit)
            if base is None or exponent is None:
                return None
            if base[0] == -math.inf:  # 0^e
                return -math.inf, 0.0
            if base[0] == 0 and base[1] is not None and abs(base[1]) == 1:  # (±1)^e
                return 0.0, None
            magnitude = math.inf if exponent[1] is None else base[0] * exponent[1]
            if abs(magnitude) > limit:
                raise FormulaTooComplex(
                    "power", limit, magnitude, f"a power whose value would pass 10^{limit} (or fall under 10^-{limit})"
                )
            power: float | complex | None = None
            if base[1] is not None and exponent[1] is not None:
                try:
                    power = base[1] ** exponent[1]
                except (OverflowError, ZeroDivisionError):
                    power = None
            return magnitude, (power if isinstance(power, float) else None)
    return None


def check_limits(tree: Expr, limits: Limits = DEFAULT_LIMITS) -> None:
    """The tree's limits: nodes, depth (iterative), then constant powers (bounded, never computed)."""
    nodes = count_nodes(tree)
    if nodes > limits.max_nodes:
        raise FormulaTooComplex(
            "nodes", limits.max_nodes, nodes, f"the formula has {nodes} nodes, more than {limits.max_nodes}"
        )
    levels = depth(tree)
    if levels > limits.max_depth:
        raise FormulaTooComplex(
            "depth", limits.max_depth, levels, f"the formula nests {levels} levels, more than {limits.max_depth}"
        )
    stack: list[Expr] = [tree]
    while stack:  # every constant subtree whose parent is not constant (or the root)
        node = stack.pop()
        if _constant(node, limits.max_power_log10) is None:
            stack.extend(children(node))


def parse(
    text: str,
    syntax: Syntax = "auto",
    limits: Limits = DEFAULT_LIMITS,
    names: Iterable[str] | None = None,
) -> Expr:
    """Read a formula into a tree, or raise FormulaError (FormulaTooComplex when a limit is passed).

    `names` restricts the symbols to some of vocabulary.NAMES (a question about an activation allows z).
    """
    if not isinstance(text, str):
        raise FormulaError("a formula is a string")
    if len(text) > limits.max_chars:
        raise FormulaTooComplex(
            "characters",
            limits.max_chars,
            len(text),
            f"the formula has {len(text)} characters, more than {limits.max_chars}",
        )
    if syntax not in {"auto", "text", "latex"}:
        raise FormulaError(f"unknown syntax {syntax!r}: expected 'auto', 'text' or 'latex'")
    spelling = detect(text) if syntax == "auto" else syntax
    tokens = simplify_groups(tokenize(text, spelling))
    if len(tokens) == 1:
        raise FormulaError("expected a formula, found nothing", 1)
    parser = _Parser(tokens, limits, frozenset(names) if names is not None else None)
    try:
        tree = parser.parse()
    except RecursionError:  # a guard behind the depth count (limits raised far past the defaults)
        raise FormulaTooComplex("depth", limits.max_depth, None, "the formula nests too deeply") from None
    check_limits(tree, limits)
    return tree


__all__ = ["Add", "Call", "Derivative", "Div", "Mul", "Neg", "Number", "Pow", "Sum", "Symbol", "check_limits", "parse"]

"""Tokenizers for the two spellings: plain text (words are runs of letters: `sigmoid`, `x`) and LaTeX
(letters are single names unless the run is a known word; commands start with a backslash)."""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Literal, NamedTuple

import service.formulas.vocabulary as v
from service.formulas.errors import FormulaError, FormulaTooComplex

Syntax = Literal["auto", "text", "latex"]
OPS = frozenset("+-*/^(){}_,=")
UNICODE_OPS = {"\u2212": "-", "\u00b7": "*", "\u00d7": "*"}
OPENING = {"(": ")", "{": "}"}
MAX_EXPONENT_DIGITS = 5  # 1e99999 at most is read (then refused by the power limit), never 1e99999999999


class Token(NamedTuple):
    kind: Literal["num", "name", "cmd", "op", "end"]
    text: str
    column: int  # 1-based
    value: Fraction | None = None  # for numbers


def detect(text: str) -> Literal["text", "latex"]:
    return "latex" if "\\" in text else "text"


def describe(token: Token) -> str:
    if token.kind == "end":
        return "the end of the formula"
    if token.kind == "cmd":
        return f"'\\{token.text}'"
    return f"'{token.text}'"


TOKEN = re.compile(
    r"(?P<space>[ \t\n\r]+)"
    r"|(?P<num>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
    r"|(?P<word>[A-Za-z]+)"
    r"|(?P<pow>\*\*)"
    r"|(?P<op>[-+*/^(){}_,=])"
    r"|(?P<cmd>\\(?:[A-Za-z]+|.?))",
    re.DOTALL,
)
NUMBER = re.compile(r"([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?)([0-9]+))?")


def _number(literal: str, column: int) -> Fraction:
    found = NUMBER.fullmatch(literal)
    assert found is not None
    integer, fraction, sign, digits = found.group(1), found.group(2) or "", found.group(3), found.group(4)
    exponent = 0
    if digits:
        if len(digits.lstrip("0")) > MAX_EXPONENT_DIGITS:
            limit = 10**MAX_EXPONENT_DIGITS
            raise FormulaTooComplex("number", limit, None, f"the number {literal!r} is too large", column)
        exponent = int(digits) * (-1 if sign == "-" else 1)
    mantissa = int((integer + fraction) or "0")
    return Fraction(mantissa) * Fraction(10) ** (exponent - len(fraction))


def tokenize(text: str, syntax: Literal["text", "latex"]) -> list[Token]:
    latex = syntax == "latex"
    tokens: list[Token] = []
    append = tokens.append
    i = 0
    n = len(text)
    match = TOKEN.match
    while i < n:
        found = match(text, i)
        column = i + 1
        if found is None:
            ch = text[i]
            if ch in UNICODE_OPS:
                append(Token("op", UNICODE_OPS[ch], column))
                i += 1
                continue
            shown = repr(ch) if ch.isprintable() else "a control character"
            raise FormulaError(f"unexpected character {shown} (U+{ord(ch):04X})", column)
        kind = found.lastgroup
        lexeme = found.group()
        i = found.end()
        if kind == "space":
            continue
        if kind == "num":
            if latex and tokens and tokens[-1].kind == "op" and tokens[-1].text in {"^", "_"}:
                lexeme, i = lexeme[0], column  # x^23 is x^2 times 3 in TeX
                if lexeme == ".":
                    raise FormulaError("expected a digit or '{' after the script", column)
            append(Token("num", lexeme, column, _number(lexeme, column)))
        elif kind == "word":
            tokens.extend(_words(lexeme, column, latex))
        elif kind == "pow":
            append(Token("op", "^", column))
        elif kind == "op":
            append(Token("op", lexeme, column))
        else:  # a command
            if not latex:
                raise FormulaError("a LaTeX command in plain text (use the LaTeX spelling)", column)
            name = lexeme[1:]
            if name in v.SPACING or name in v.SIZING:
                continue
            if name in v.COMMAND_TOKENS:
                append(Token("op", v.COMMAND_TOKENS[name], column))
            elif name in v.COMMANDS:
                append(Token("cmd", name, column))
            else:
                shown = "\\" + name if name.isprintable() and name else "a lone '\\'"
                raise FormulaError(f"unknown command {shown}", column, v.ALLOWED_COMMANDS)
    tokens.append(Token("end", "", n + 1))
    return tokens


def _words(word: str, column: int, latex: bool) -> list[Token]:
    known = word in v.NAME_WORDS or word in v.FUNCTION_WORDS or word in {"e", "sum"}
    if len(word) == 2 and word[0] == "d" and word[1] in "LJfzwb":  # a Leibniz name: dL/dz
        return [Token("name", "d", column), Token("name", word[1], column + 1)]
    if known or not latex:
        return [Token("name", word, column)]
    return [Token("name", ch, column + k) for k, ch in enumerate(word)]


def simplify_groups(tokens: list[Token]) -> list[Token]:
    """Check the brackets balance and drop redundant pairs: ((x)) is read as (x), {{x}} as {x}.
    Without recursion, so ten thousand nested parentheses cost a pass, not a stack."""
    match: dict[int, int] = {}
    stack: list[int] = []
    for k, token in enumerate(tokens):
        if token.kind != "op":
            continue
        if token.text in OPENING:
            stack.append(k)
        elif token.text in {")", "}"}:
            if not stack:
                raise FormulaError(f"unexpected '{token.text}': nothing to close", token.column)
            opened = stack.pop()
            if OPENING[tokens[opened].text] != token.text:
                raise FormulaError(
                    f"expected '{OPENING[tokens[opened].text]}' to close the '{tokens[opened].text}' of column "
                    f"{tokens[opened].column}, found '{token.text}'",
                    token.column,
                )
            match[opened] = k
    if stack:
        opened = stack[-1]
        raise FormulaError(f"the '{tokens[opened].text}' is never closed", tokens[opened].column)
    dropped: set[int] = set()
    for opened, closed in match.items():
        inner = opened + 1
        if tokens[inner].text == tokens[opened].text and tokens[inner].kind == "op" and match.get(inner) == closed - 1:
            dropped.update((inner, closed - 1))
    return [token for k, token in enumerate(tokens) if k not in dropped] if dropped else tokens

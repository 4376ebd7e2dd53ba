"""Tokenizers for the two spellings: plain text (words are runs of letters: `sigmoid`, `x`) and LaTeX
(letters are single names unless the run is a known word; commands start with a backslash)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from service.formulas import vocabulary as v
from service.formulas.errors import FormulaError, FormulaTooComplex

Syntax = Literal["auto", "text", "latex"]
OPS = frozenset("+-*/^(){}_,=")
UNICODE_OPS = {"\u2212": "-", "\u00b7": "*", "\u00d7": "*"}
WHITESPACE = frozenset(" \t\n\r")
OPENING = {"(": ")", "{": "}"}
MAX_EXPONENT_DIGITS = 5  # 1e99999 at most is read (then refused by the power limit), never 1e99999999999


@dataclass(frozen=True)
class Token:
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


def _is_letter(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z")


def _is_digit(ch: str) -> bool:
    return "0" <= ch <= "9"


def _number(text: str, start: int) -> tuple[Token, int]:
    i = start
    n = len(text)
    while i < n and _is_digit(text[i]):
        i += 1
    integer = text[start:i]
    fraction = ""
    if i < n and text[i] == ".":
        j = i + 1
        while j < n and _is_digit(text[j]):
            j += 1
        fraction = text[i + 1 : j]
        if not integer and not fraction:
            raise FormulaError("expected a digit after '.'", start + 1)
        i = j
    exponent = 0
    if i < n and text[i] in "eE":
        j = i + 1
        if j < n and text[j] in "+-":
            j += 1
        if j < n and _is_digit(text[j]):
            k = j
            while k < n and _is_digit(text[k]):
                k += 1
            digits = text[j:k].lstrip("0")
            if len(digits) > MAX_EXPONENT_DIGITS:
                raise FormulaTooComplex(
                    "number", 10**MAX_EXPONENT_DIGITS, None, f"the number {text[start:k]!r} is too large", start + 1
                )
            exponent = int(text[j:k]) * (-1 if text[i + 1] == "-" else 1)
            i = k
    mantissa = int((integer + fraction) or "0")
    value = Fraction(mantissa) * Fraction(10) ** (exponent - len(fraction))
    return Token("num", text[start:i], start + 1, value), i


def tokenize(text: str, syntax: Literal["text", "latex"]) -> list[Token]:
    latex = syntax == "latex"
    tokens: list[Token] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        column = i + 1
        if ch in WHITESPACE:
            i += 1
        elif _is_digit(ch) or (ch == "." and i + 1 < n and _is_digit(text[i + 1])):
            previous = tokens[-1].text if tokens and tokens[-1].kind == "op" else ""
            if latex and previous in {"^", "_"}:  # x^23 is x^2 times 3 in TeX
                tokens.append(Token("num", ch, column, Fraction(int(ch))))
                i += 1
            else:
                token, i = _number(text, i)
                tokens.append(token)
        elif _is_letter(ch):
            j = i
            while j < n and _is_letter(text[j]):
                j += 1
            word = text[i:j]
            tokens.extend(_words(word, column, latex))
            i = j
        elif ch == "*" and i + 1 < n and text[i + 1] == "*":
            tokens.append(Token("op", "^", column))
            i += 2
        elif ch in OPS:
            tokens.append(Token("op", ch, column))
            i += 1
        elif ch in UNICODE_OPS:
            tokens.append(Token("op", UNICODE_OPS[ch], column))
            i += 1
        elif ch == "\\":
            if not latex:
                raise FormulaError("a LaTeX command in plain text (use the LaTeX spelling)", column)
            j = i + 1
            while j < n and _is_letter(text[j]):
                j += 1
            if j == i + 1:
                j = min(i + 2, n)
            name = text[i + 1 : j]
            i = j
            if name in v.SPACING or name in v.SIZING:
                continue
            if name in v.COMMAND_TOKENS:
                tokens.append(Token("op", v.COMMAND_TOKENS[name], column))
            elif name in v.COMMANDS:
                tokens.append(Token("cmd", name, column))
            else:
                shown = "\\" + name if name else "a lone '\\'"
                raise FormulaError(f"unknown command {shown}", column, v.ALLOWED_COMMANDS)
        else:
            shown = repr(ch) if ch.isprintable() else "a control character"
            raise FormulaError(f"unexpected character {shown} (U+{ord(ch):04X})", column)
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

"""Print a tree back in either spelling; parse(to_text(t)) == t and parse(to_latex(t)) == t.

Parentheses are added only where the grammar needs them (or where a reader would stumble: a Leibniz
name under a power or a quotient). A sum takes the rest of its product as its body, so a sum that is
not the last factor of a product, or is a numerator, is put in parentheses.
"""

from __future__ import annotations

from fractions import Fraction

from service.formulas.tree import Add, Call, Derivative, Div, Expr, Mul, Neg, Number, Pow, Sum, Symbol

ADD, NEG, MUL, POW, ATOM = 1, 2, 3, 4, 5
LATEX_FUNCTIONS = {
    "log": "\\log",
    "tanh": "\\tanh",
    "cosh": "\\cosh",
    "sinh": "\\sinh",
    "sigma": "\\sigma",
    "max": "\\max",
    "min": "\\min",
    "softplus": "\\operatorname{softplus}",
    "abs": "\\operatorname{abs}",
}
LATEX_NAMES = {"lambda": "\\lambda", "delta": "\\delta"}


def decimal(value: Fraction) -> str:
    """The exact decimal of a terminating fraction (every parsed number is one)."""
    rest, twos, fives = value.denominator, 0, 0
    while rest % 2 == 0:
        rest, twos = rest // 2, twos + 1
    while rest % 5 == 0:
        rest, fives = rest // 5, fives + 1
    if rest != 1:
        raise ValueError(f"{value} has no exact decimal")
    places = max(twos, fives)
    digits = str(value.numerator * 10**places // value.denominator)
    if places == 0:
        return digits
    digits = digits.rjust(places + 1, "0")
    return f"{digits[:-places]}.{digits[-places:]}"


def _ends_with_sum(node: Expr) -> bool:
    while True:
        if isinstance(node, Sum):
            return True
        if isinstance(node, Mul):
            node = node.factors[-1]
        elif isinstance(node, Neg):
            node = node.operand
        else:
            return False


class _Printer:
    def __init__(self, latex: bool) -> None:
        self.latex = latex

    def paren(self, text: str) -> str:
        return f"\\left({text}\\right)" if self.latex else f"({text})"

    def at_least(self, node: Expr, level: int) -> str:
        text, prec = self.show(node)
        return text if prec >= level else self.paren(text)

    def show(self, node: Expr) -> tuple[str, int]:
        latex = self.latex
        match node:
            case Number(value=value):
                return decimal(value), ATOM
            case Symbol(name=name, index=index, example=example):
                text = LATEX_NAMES.get(name, name) if latex else name
                if index:
                    text += f"_{{{index}}}" if latex else f"_{index}"
                if example:
                    text += f"^{{({example})}}" if latex else f"^({example})"
                return text, ATOM
            case Derivative(of=of, wrt=wrt):
                name = wrt.name + (f"_{{{wrt.index}}}" if latex else f"_{wrt.index}") if wrt.index else wrt.name
                if latex:
                    return f"\\frac{{\\partial {of}}}{{\\partial {name}}}", ATOM
                return f"d{of}/d{name}", ATOM
            case Call(function=function, args=args):
                if latex and function == "exp":
                    return f"e^{{{self.show(args[0])[0]}}}", POW
                if latex and function == "sqrt":
                    return f"\\sqrt{{{self.show(args[0])[0]}}}", ATOM
                inside = ", ".join(self.show(arg)[0] for arg in args)
                head = LATEX_FUNCTIONS[function] if latex else function
                return head + self.paren(inside), ATOM
            case Add(terms=terms):
                parts: list[str] = []
                for k, term in enumerate(terms):
                    if isinstance(term, Neg):
                        operand = self.neg_operand(term.operand)
                        parts.append(f"-{operand}" if k == 0 else f" - {operand}")
                    else:
                        parts.append(self.show(term)[0] if k == 0 else f" + {self.show(term)[0]}")
                return "".join(parts), ADD
            case Neg(operand=operand):
                return f"-{self.neg_operand(operand)}", NEG
            case Mul(factors=factors):
                shown = []
                for k, factor in enumerate(factors):
                    text, prec = self.show(factor)
                    last = k == len(factors) - 1
                    needs = prec < MUL or (not last and _ends_with_sum(factor))
                    needs = needs or (not latex and k > 0 and isinstance(factor, Div))
                    shown.append(self.paren(text) if needs else text)
                return (" \\cdot " if latex else "*").join(shown), MUL
            case Div(numerator=a, denominator=b):
                if latex:
                    return f"\\frac{{{self.show(a)[0]}}}{{{self.show(b)[0]}}}", ATOM
                top, prec = self.show(a)
                if prec < MUL or _ends_with_sum(a):
                    top = self.paren(top)
                bottom = self.at_least(b, POW) if not isinstance(b, Derivative) else self.paren(self.show(b)[0])
                return f"{top}/{bottom}", MUL
            case Pow(base=a, exponent=b):
                base, prec = self.show(a)
                plain = prec == ATOM and not isinstance(a, Derivative | Div)
                if isinstance(a, Symbol) and a.example:
                    plain = False
                if not plain:
                    base = self.paren(base)
                if latex:
                    return f"{base}^{{{self.show(b)[0]}}}", POW
                exponent, prec = self.show(b)
                if prec < POW or isinstance(b, Derivative):
                    exponent = self.paren(exponent)
                return f"{base}^{exponent}", POW
            case Sum(body=body, index=index, lower=lower, upper=upper):
                head = "\\sum" if latex else "sum"
                text = f"{head}_{{{index}={self.show(lower)[0]}}}^{{{self.show(upper)[0]}}} {self.at_least(body, MUL)}"
                return text, MUL
        raise TypeError(f"not a formula node: {node!r}")

    def neg_operand(self, operand: Expr) -> str:
        text, prec = self.show(operand)
        return text if prec >= MUL else self.paren(text)


def to_text(tree: Expr) -> str:
    return _Printer(latex=False).show(tree)[0]


def to_latex(tree: Expr) -> str:
    return _Printer(latex=True).show(tree)[0]

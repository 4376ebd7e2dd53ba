"""The correct formula of each quantity a formula question can ask for (docs/design/formulas.md,
"POST /grade/formula"), for the preset models and single_layer pairings of the catalogue.

Every formula here is one of the project's own strings, read by the formula reader (never a user's
string given to anything but the reader). A quantity is per example (L, dL/df, df/dz, dL/dz,
dz/dw_j, dz/db, dL/dw_j, dL/db: written in z, f, y, x_j, w_j, b) or over the m examples (J, dJ/dw_j,
dJ/db: sums over i = 1..m, whose per-example names stand for example i). Leibniz names in a learner's
formula (dL/dz, \\frac{\\partial f}{\\partial w_j}) stand for the true value in the question's model:
`leibniz` gives each one's formula.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from service.formulas import Expr, derive, parse
from service.formulas.tree import Add, Call, Derivative, Div, Mul, Neg, Number, Pow, Sum, Symbol

# activation: f = g(z) and df/dz as the course writes it (in f where its formula is in f)
ACTIVATIONS: dict[str, tuple[str, str]] = {
    "identity": ("z", "1"),
    "sigmoid": ("1/(1 + e^(-z))", "f(1 - f)"),
    "tanh": ("tanh(z)", "1 - f^2"),
    "exp": ("e^z", "f"),
    "softplus": ("log(1 + e^z)", "sigma(z)"),
}
# loss: L(f, y), dL/df, and the domain of y ("real", "unit" for [0, 1], "nonnegative")
LOSSES: dict[str, tuple[str, str, str]] = {
    "squared_error": ("(f - y)^2/2", "f - y", "real"),
    "binary_cross_entropy": ("-y log(f) - (1 - y) log(1 - f)", "(f - y)/(f(1 - f))", "unit"),
    "poisson": ("f - y log(f)", "1 - y/f", "nonnegative"),
}
# the range of f each loss needs, and the activations that reach it
COMPATIBLE: dict[str, frozenset[str]] = {
    "squared_error": frozenset(ACTIVATIONS),
    "binary_cross_entropy": frozenset({"sigmoid"}),
    "poisson": frozenset({"sigmoid", "exp", "softplus"}),
}
CANONICAL = frozenset({("identity", "squared_error"), ("sigmoid", "binary_cross_entropy"), ("exp", "poisson")})
PRESETS: dict[str, tuple[str, str]] = {
    "linear_regression": ("identity", "squared_error"),
    "logistic_regression": ("sigmoid", "binary_cross_entropy"),
    "poisson_regression": ("exp", "poisson"),
}
PER_EXAMPLE_TARGETS = ("L", "dL/df", "df/dz", "dL/dz", "dz/dw_j", "dz/db", "dL/dw_j", "dL/db")
COST_TARGETS = ("J", "dJ/dw_j", "dJ/db")
TARGETS = (*PER_EXAMPLE_TARGETS, *COST_TARGETS)
# the variable each derivative target is taken with respect to
WRT = {t: t.split("/d")[1] for t in TARGETS if "/d" in t}


class QuestionError(ValueError):
    """A question this grader cannot set: `loc` is where in the question, `message` says why."""

    def __init__(self, loc: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


def read(text: str) -> Expr:
    """One of this module's own formulas (or the tracer's), read by the formula reader."""
    return parse(text, "text")


# --- trees: rebuilt with children replaced --------------------------------------------------------


def replace(node: Expr, swap: Callable[[Expr], Expr | None]) -> Expr:
    """The tree with every node for which `swap` gives a tree replaced by it (parents first)."""
    new = swap(node)
    if new is not None:
        return new
    match node:
        case Number() | Symbol() | Derivative():
            return node
        case Call(function=function, args=args):
            return Call(function, tuple(replace(a, swap) for a in args))
        case Add(terms=terms):
            return Add(tuple(replace(t, swap) for t in terms))
        case Mul(factors=factors):
            return Mul(tuple(replace(f, swap) for f in factors))
        case Div(numerator=a, denominator=b):
            return Div(replace(a, swap), replace(b, swap))
        case Pow(base=a, exponent=b):
            return Pow(replace(a, swap), replace(b, swap))
        case Neg(operand=a):
            return Neg(replace(a, swap))
        case Sum(body=body, index=index, lower=lower, upper=upper):
            return Sum(replace(body, swap), index, replace(lower, swap), replace(upper, swap))
    raise TypeError(f"not a formula node: {node!r}")


def substitute(node: Expr, name: str, by: Expr) -> Expr:
    """Every symbol `name` (any example index) replaced by `by`."""
    return replace(node, lambda n: by if isinstance(n, Symbol) and n.name == name else None)


# --- questions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Regularization:
    kind: str  # "l2" or "l1"

    def term(self) -> str:
        """R(w), in the course's convention (b is not regularized)."""
        return "lambda/(2m) sum_{j=1}^{n} w_j^2" if self.kind == "l2" else "lambda/m sum_{j=1}^{n} abs(w_j)"

    def gradient(self) -> str:
        """dR/dw_j (l1: λ/m · sign(w_j), written w_j/|w_j|)."""
        return "lambda/m w_j" if self.kind == "l2" else "lambda/m (w_j/abs(w_j))"


@dataclass(frozen=True)
class Pairing:
    activation: str
    loss: str

    @property
    def canonical(self) -> bool:
        return (self.activation, self.loss) in CANONICAL

    @property
    def g(self) -> str:
        return ACTIVATIONS[self.activation][0]

    @property
    def df_dz(self) -> str:
        return ACTIVATIONS[self.activation][1]

    @property
    def L(self) -> str:
        return LOSSES[self.loss][0]

    @property
    def dL_df(self) -> str:
        return LOSSES[self.loss][1]

    @property
    def dL_dz(self) -> str:
        return "f - y" if self.canonical else f"({self.dL_df})({self.df_dz})"

    @property
    def y_domain(self) -> str:
        return LOSSES[self.loss][2]


@dataclass(frozen=True)
class Question:
    """A formula question: a pairing (None for a bare `derivative_of`), its regularization and target.

    `truth` is the correct formula; `variable` the target's variable (None for L and J); `expression`
    the formula differentiated for a `derivative_of` question."""

    pairing: Pairing | None
    regularization: Regularization | None
    target: str  # one of TARGETS, or "derivative_of"
    truth: Expr
    variable: str | None = None
    expression: Expr | None = None
    leibniz: Mapping[str, Expr] = field(default_factory=dict)

    @property
    def over_examples(self) -> bool:
        return self.target in COST_TARGETS


def _formulas(pairing: Pairing, reg: Regularization | None) -> dict[str, str]:
    """Every target's correct formula as text (per-example names inside sums stand for example i)."""
    r = pairing.dL_dz
    R = f" + {reg.term()}" if reg else ""
    dR = f" + {reg.gradient()}" if reg else ""
    return {
        "L": pairing.L,
        "J": f"1/m sum_{{i=1}}^{{m}} ({pairing.L}){R}",
        "dL/df": pairing.dL_df,
        "df/dz": pairing.df_dz,
        "dL/dz": r,
        "dz/dw_j": "x_j",
        "dz/db": "1",
        "dL/dw_j": f"({r}) x_j",
        "dL/db": r,
        "dJ/dw_j": f"1/m sum_{{i=1}}^{{m}} ({r}) x_j{dR}",
        "dJ/db": f"1/m sum_{{i=1}}^{{m}} ({r})",
        # more Leibniz names a derivation may use
        "df/dw_j": f"({pairing.df_dz}) x_j",
        "df/db": pairing.df_dz,
    }


def leibniz_table(pairing: Pairing | None, reg: Regularization | None) -> dict[str, Expr]:
    """The formula each Leibniz name stands for in this model (none without a model)."""
    if pairing is None:
        return {}
    return {name: read(text) for name, text in _formulas(pairing, reg).items() if name.startswith("d")}


def pairing_for(model: str, activation: str | None, loss: str | None) -> Pairing:
    if model in PRESETS:
        if activation is not None or loss is not None:
            raise QuestionError(("question", "model"), f"{model} fixes its activation and loss: give neither")
        return Pairing(*PRESETS[model])
    if model != "single_layer":
        raise QuestionError(
            ("question", "model"),
            f"formula questions take {', '.join(PRESETS)} or single_layer (softmax_regression's k outputs "
            "and neural_network are not graded as formulas yet)",
        )
    if activation not in ACTIVATIONS:
        raise QuestionError(
            ("question", "activation"),
            f"single_layer formula questions take an activation among {', '.join(ACTIVATIONS)}",
        )
    if loss not in LOSSES:
        raise QuestionError(
            ("question", "loss"), f"single_layer formula questions take a loss among {', '.join(LOSSES)}"
        )
    if activation not in COMPATIBLE[loss]:
        raise QuestionError(
            ("question", "activation"),
            f"{activation} cannot reach the values {loss} needs of f: it takes {', '.join(sorted(COMPATIBLE[loss]))}",
        )
    return Pairing(activation, loss)


def model_question(
    model: str,
    target: str,
    activation: str | None = None,
    loss: str | None = None,
    regularization: str | None = None,
) -> Question:
    """A question on a model's quantity (`target` one of TARGETS)."""
    pairing = pairing_for(model, activation, loss)
    reg = Regularization(regularization) if regularization else None
    if target not in TARGETS:
        raise QuestionError(("question", "target"), f"the target is one of {', '.join(TARGETS)}, or derivative_of")
    if reg is not None and target not in {"J", "dJ/dw_j", "dJ/db"}:
        raise QuestionError(
            ("question", "regularization"), "regularization changes only J, dJ/dw_j and dJ/db: ask for one of them"
        )
    return Question(
        pairing,
        reg,
        target,
        read(_formulas(pairing, reg)[target]),
        WRT.get(target),
        leibniz=leibniz_table(pairing, reg),
    )


def derivative_question(expression: Expr, variable: str) -> Question:
    """A `derivative_of` question: the truth is the tracer's derivative (no model: f is a name like y)."""
    derivation = derive(expression, variable)
    return Question(None, None, "derivative_of", derivation.derivative, variable, expression)

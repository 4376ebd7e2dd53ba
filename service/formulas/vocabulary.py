"""The names, functions and LaTeX commands of the notation (docs/design/formulas.md, "One notation, two spellings")."""

from __future__ import annotations

# canonical symbol names (the tree's Symbol.name)
NAMES: tuple[str, ...] = ("z", "f", "y", "x", "w", "b", "m", "n", "lambda", "delta")
# words read as a name, and the name they stand for
NAME_WORDS: dict[str, str] = {name: name for name in NAMES} | {"a": "f"}
INDEXED = frozenset({"x", "w"})  # take the feature index: x_j, w_j
PER_EXAMPLE = frozenset({"x", "y", "f", "z"})  # take the example index: x_j^{(i)}, y^{(i)}, f^{(i)}, z^{(i)}
FEATURE_INDEX = "j"
EXAMPLE_INDEX = "i"
SUM_INDICES = ("i", "j")

# canonical functions (the tree's Call.function) and their argument counts (None: two or more)
FUNCTIONS: dict[str, int | None] = {
    "exp": 1,
    "log": 1,
    "sqrt": 1,
    "abs": 1,
    "tanh": 1,
    "cosh": 1,
    "sinh": 1,
    "sigma": 1,
    "softplus": 1,
    "max": None,
    "min": None,
}
FUNCTION_WORDS: dict[str, str] = {name: name for name in FUNCTIONS} | {"ln": "log", "sigmoid": "sigma"}

# Leibniz names: d<of>/d<wrt>
DERIVATIVE_OF = ("L", "J", "f", "z")
DERIVATIVE_WRT = ("z", "f", "w_j", "b")

# the spellings shown in errors
ALLOWED_NAMES: tuple[str, ...] = (
    "z",
    "f",
    "a",
    "y",
    "x",
    "x_j",
    "w",
    "w_j",
    "b",
    "m",
    "n",
    "lambda",
    "delta",
    "e",
    "x_j^{(i)}",
    "y^{(i)}",
    "f^{(i)}",
    "z^{(i)}",
)
ALLOWED_WORDS: tuple[str, ...] = (*ALLOWED_NAMES, *sorted(FUNCTION_WORDS), "sum", "dL/dz", "dJ/dw_j")

# LaTeX commands: those that stand for a token of the grammar
COMMAND_TOKENS: dict[str, str] = {"cdot": "*", "times": "*"}
SPACING = frozenset({",", ";", "!", ":", " ", "quad", "qquad", "limits", "nolimits", "displaystyle"})
SIZING = frozenset(
    {"left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr", "biggl", "biggr", "Biggl", "Biggr"}
)
COMMAND_FUNCTIONS: dict[str, str] = {
    "exp": "exp",
    "log": "log",
    "ln": "log",
    "sigma": "sigma",
    "tanh": "tanh",
    "cosh": "cosh",
    "sinh": "sinh",
    "max": "max",
    "min": "min",
}
COMMAND_NAMES: dict[str, str] = {"lambda": "lambda", "delta": "delta"}
STRUCTURE = frozenset({"frac", "dfrac", "tfrac", "sqrt", "sum", "mathbf", "hat", "partial", "operatorname", "mathrm"})
COMMANDS: frozenset[str] = frozenset(
    {*COMMAND_TOKENS, *SPACING, *SIZING, *COMMAND_FUNCTIONS, *COMMAND_NAMES, *STRUCTURE}
)
ALLOWED_COMMANDS: tuple[str, ...] = tuple(sorted("\\" + c for c in COMMANDS if c not in {" "}))

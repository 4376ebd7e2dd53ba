"""The two ways a formula is refused: it does not read (FormulaError), or it is too big to read or to
work on (FormulaTooComplex, a FormulaError too: catch it first). Both carry the 1-based column."""

from __future__ import annotations


class FormulaError(ValueError):
    """The formula does not read: `message` says what was expected, `column` (1-based) where, and
    `allowed_names` the names (or functions, or commands) that would have been accepted there."""

    def __init__(self, message: str, column: int | None = None, allowed_names: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.column = column
        self.allowed_names = tuple(allowed_names)

    def __str__(self) -> str:
        where = f" (column {self.column})" if self.column is not None else ""
        return f"{self.message}{where}"


class FormulaTooComplex(FormulaError):
    """A limit is passed: `limit` names it ("characters", "nodes", "depth", "power", "number"),
    `maximum` is its value and `found` what the formula has (or would have)."""

    def __init__(self, limit: str, maximum: int, found: int | float | None, message: str, column: int | None = None):
        super().__init__(message, column)
        self.limit = limit
        self.maximum = maximum
        self.found = found

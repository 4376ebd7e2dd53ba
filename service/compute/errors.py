"""Exceptions of the compute layer. They carry no HTTP status: the api layer maps them."""

from __future__ import annotations

from collections.abc import Sequence


class ComputeError(Exception):
    """Base class of every error the compute layer raises on purpose."""

    slug = "compute-error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ShapeError(ComputeError):
    """Arrays whose shapes do not fit together (len(w) != columns of X, ...)."""

    slug = "validation-error"

    def __init__(self, detail: str, loc: Sequence[str | int] = ()) -> None:
        super().__init__(detail)
        self.loc = tuple(loc)


class DomainError(ComputeError):
    """Values outside the domain a loss or activation declares (y < 0 for poisson, ...)."""

    slug = "domain-error"

    def __init__(self, detail: str, loc: Sequence[str | int] = (), examples: Sequence[int] = ()) -> None:
        super().__init__(detail)
        self.loc = tuple(loc)
        self.examples = [int(i) for i in examples]


class IncompatiblePairing(ComputeError):
    """An activation whose range cannot reach the loss's domain."""

    slug = "incompatible-pairing"


class NonFiniteResult(ComputeError):
    """A result whose true value is not representable in float64 (it overflows)."""

    slug = "non-finite-result"

    def __init__(self, quantity: str, examples: Sequence[int] = (), reason: str = "") -> None:
        self.quantity = quantity
        self.examples = [int(i) for i in examples]
        self.reason = reason
        where = f" for examples {_short(self.examples)}" if self.examples else ""
        super().__init__(f"{quantity} is not representable in float64{where}" + (f": {reason}" if reason else ""))


def _short(examples: Sequence[int], limit: int = 20) -> str:
    shown = ", ".join(str(i) for i in examples[:limit])
    more = f" and {len(examples) - limit} more" if len(examples) > limit else ""
    return f"[{shown}]{more}"

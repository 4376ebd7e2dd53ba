"""Domains and ranges as data: intervals of the real line and the probability simplex.

Each activation declares the range of f and each loss the values of f and y it accepts; the
compatibility of a pairing and the validation of targets are both read from these declarations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Formula:
    """A formula shown to users, in LaTeX and in plain text."""

    latex: str
    text: str


def _bound_text(v: float) -> str:
    if v == math.inf:
        return "∞"
    if v == -math.inf:
        return "-∞"
    return f"{v:g}"


def _bound_latex(v: float) -> str:
    if v == math.inf:
        return r"\infty"
    if v == -math.inf:
        return r"-\infty"
    return f"{v:g}"


@dataclass(frozen=True)
class Interval:
    """An interval of the real line; infinite ends are always open."""

    lo: float
    hi: float
    lo_closed: bool = False
    hi_closed: bool = False

    kind = "interval"

    def contains(self, v: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
        """Elementwise membership of v (any shape)."""
        lo_ok = v >= self.lo if self.lo_closed else v > self.lo
        hi_ok = v <= self.hi if self.hi_closed else v < self.hi
        return np.asarray(lo_ok & hi_ok)

    def includes(self, other: Interval) -> bool:
        """Whether `other` is a subset of this interval."""
        lo_ok = other.lo > self.lo or (other.lo == self.lo and (self.lo_closed or not other.lo_closed))
        hi_ok = other.hi < self.hi or (other.hi == self.hi and (self.hi_closed or not other.hi_closed))
        return lo_ok and hi_ok

    @property
    def text(self) -> str:
        if self.lo == -math.inf and self.hi == math.inf:
            return "ℝ"
        left = "[" if self.lo_closed else "("
        right = "]" if self.hi_closed else ")"
        return f"{left}{_bound_text(self.lo)}, {_bound_text(self.hi)}{right}"

    @property
    def latex(self) -> str:
        if self.lo == -math.inf and self.hi == math.inf:
            return r"\mathbb{R}"
        left = "[" if self.lo_closed else "("
        right = "]" if self.hi_closed else ")"
        return f"{left}{_bound_latex(self.lo)}, {_bound_latex(self.hi)}{right}"

    def describe(self) -> dict[str, object]:
        """JSON-ready description (finite bounds only: infinite ends are reported as null)."""
        return {
            "kind": "interval",
            "text": self.text,
            "latex": self.latex,
            "min": self.lo if math.isfinite(self.lo) else None,
            "max": self.hi if math.isfinite(self.hi) else None,
            "min_inclusive": self.lo_closed,
            "max_inclusive": self.hi_closed,
        }


@dataclass(frozen=True)
class Simplex:
    """Rows of k non-negative entries summing to 1 (softmax outputs, probability targets)."""

    kind = "simplex"
    text = "probability simplex (k entries in [0, 1] summing to 1)"
    latex = r"\Delta^{k-1}"

    def describe(self) -> dict[str, object]:
        return {"kind": "simplex", "text": self.text, "latex": self.latex}


REALS = Interval(-math.inf, math.inf)
POSITIVE = Interval(0.0, math.inf)
NON_NEGATIVE = Interval(0.0, math.inf, lo_closed=True)
UNIT_OPEN = Interval(0.0, 1.0)
UNIT_CLOSED = Interval(0.0, 1.0, lo_closed=True, hi_closed=True)
SYMMETRIC_UNIT_OPEN = Interval(-1.0, 1.0)
SIMPLEX = Simplex()

Space = Interval | Simplex

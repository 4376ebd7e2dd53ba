"""Reading a learner's numbers and comparing them with the expected ones within a tolerance."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.compute.stable import Array

_SPECIAL = {
    "nan": math.nan,
    "infinity": math.inf,
    "+infinity": math.inf,
    "-infinity": -math.inf,
    "inf": math.inf,
    "+inf": math.inf,
    "-inf": -math.inf,
}


@dataclass(frozen=True)
class Tolerance:
    """numpy's allclose rule |a − e| ≤ atol + rtol·|e| for every component, or n significant figures:
    |a − e| ≤ ½·10^(⌊log10 |e|⌋ − n + 1) (and |a| ≤ atol where e = 0)."""

    rtol: float = 1e-5
    atol: float = 1e-8
    sig_figs: int | None = None

    def describe(self) -> str:
        if self.sig_figs is not None:
            return f"{self.sig_figs} significant figures"
        return f"rtol {self.rtol:g}, atol {self.atol:g}"

    def close(self, a: Array, e: Array) -> Array:
        """Elementwise: is a within tolerance of e? (Both finite, same shape.)"""
        with np.errstate(over="ignore", invalid="ignore"):
            diff = np.abs(a - e)
            if self.sig_figs is None:
                return np.asarray(diff <= self.atol + self.rtol * np.abs(e))
            mag = np.abs(e)
            safe = np.where(mag > 0, mag, 1.0)
            bound = 0.5 * 10.0 ** (np.floor(np.log10(safe)) - self.sig_figs + 1)
            return np.asarray(np.where(mag > 0, diff <= bound, diff <= self.atol))

    def allclose(self, a: Array, e: Array) -> bool:
        return a.shape == e.shape and bool(np.all(self.close(a, e)))


@dataclass(frozen=True)
class Parsed:
    """A learner's value as an array, or its defect: why it is not one, or not a finite one."""

    array: Array | None
    defect: str | None = None  # what is wrong with the value, in words for the learner; None if nothing


def _describe_shape(shape: tuple[int, ...]) -> str:
    if shape == ():
        return "a number"
    if len(shape) == 1:
        return f"a list of {shape[0]} numbers"
    return "an array of shape " + "×".join(str(s) for s in shape)


def describe_shape(shape: tuple[int, ...]) -> str:
    return _describe_shape(shape)


def _to_float(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int | float):
        try:
            return float(v)
        except OverflowError:  # an integer beyond float64: read as infinite, then graded not finite
            return math.inf if v > 0 else -math.inf
    if isinstance(v, str):
        return _SPECIAL.get(v.strip().lower())
    return None


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(s for s in shape if s != 1)


def parse_answer(value: Any, expected_shape: tuple[int, ...]) -> Parsed:
    """Turn a JSON value into a float64 array of the expected shape, or say what is wrong with it.

    Numbers, nested lists of numbers and the strings "NaN", "Infinity", "-Infinity" are read (NaN
    and ±Infinity are then refused as not finite by `check`); anything else is a wrong answer.
    """
    expected = _describe_shape(expected_shape)

    def walk(v: Any, depth: int) -> Any:
        if isinstance(v, list):
            if depth >= len(expected_shape) + 2:
                raise ValueError
            return [walk(x, depth + 1) for x in v]
        f = _to_float(v)
        if f is None:
            raise TypeError
        return f

    nulls = False

    def is_null(v: Any) -> bool:
        return v is None or (isinstance(v, list) and any(is_null(x) for x in v))

    try:
        nested = walk(value, 0)
    except TypeError:
        nulls = is_null(value)
        what = "null (no value)" if nulls else "not a number"
        return Parsed(None, f"the answer holds a value that is {what}; expected {expected}")
    except ValueError:
        return Parsed(None, f"the answer is nested too deeply; expected {expected}")
    try:
        arr = np.array(nested, dtype=np.float64)
    except ValueError:
        return Parsed(None, f"the answer's rows have different lengths; expected {expected}")
    if arr.shape != expected_shape:
        # numpy users often give [x] for a number or a column for a row: accept when unambiguous
        if arr.size == int(np.prod(expected_shape)) and arr.squeeze().shape == _squeezed(expected_shape):
            arr = arr.reshape(expected_shape)
        else:
            return Parsed(None, f"the answer is {_describe_shape(arr.shape)}; expected {expected}")
    bad = ~np.isfinite(arr)
    if np.any(bad):
        kinds = sorted({"NaN" if math.isnan(x) else "infinite" for x in np.atleast_1d(arr[bad]).tolist()})
        at = ""
        if arr.ndim > 0:
            where = [[int(j) for j in i] if arr.ndim > 1 else int(i[0]) for i in np.argwhere(bad)[:5]]
            at = f" at {where if len(where) > 1 else where[0]}"
        return Parsed(arr, f"the answer is not finite ({' and '.join(kinds)}{at}); a correct answer is a finite number")
    return Parsed(arr)

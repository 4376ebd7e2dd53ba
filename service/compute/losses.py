"""Losses L(f, y) of one example: value, derivative ∂L/∂f, formulas, the targets they accept.

Shapes: for scalar outputs f and y are (m,) and every method returns (m,); for k outputs
(softmax) f and y are (m, k) rows (class indices already turned into one-hot rows), value returns
(m,) and dL_df returns (m, k).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

import numpy as np

from service.compute.domains import (
    NON_NEGATIVE,
    POSITIVE,
    REALS,
    SIMPLEX,
    UNIT_CLOSED,
    UNIT_OPEN,
    Formula,
    Space,
)
from service.compute.stable import Array


class LossName(StrEnum):
    SQUARED_ERROR = "squared_error"
    BINARY_CROSS_ENTROPY = "binary_cross_entropy"
    CATEGORICAL_CROSS_ENTROPY = "categorical_cross_entropy"
    POISSON = "poisson"
    ABSOLUTE_ERROR = "absolute_error"
    HUBER = "huber"


@dataclass(frozen=True)
class LossParam:
    """A parameter of a loss, declared as data so the api layer can validate and document it."""

    name: str
    default: float
    description: str
    exclusive_minimum: float = -math.inf


class Loss(ABC):
    """Base class: subclasses set the class attributes and implement value and dL_df."""

    name: ClassVar[LossName]
    # plain attributes (not ClassVar): a formula loss (service.compute.custom) sets them per instance
    formula: Formula
    derivative_formula: Formula
    targets: Space  # the values y may take (per entry for k outputs)
    targets_text: str
    f_domain: ClassVar[Space]  # the values of f the loss is defined for
    cross_entropy: ClassVar[bool] = False
    param_specs: ClassVar[tuple[LossParam, ...]] = ()
    kinks: ClassVar[str | None] = None

    def __init__(self, **params: float) -> None:
        known = {p.name: p for p in self.param_specs}
        for key in params:
            if key not in known:
                raise TypeError(f"{self.name} takes no parameter {key!r}")
        self.params: dict[str, float] = {p.name: float(params.get(p.name, p.default)) for p in self.param_specs}
        for p in self.param_specs:
            if not self.params[p.name] > p.exclusive_minimum:
                raise ValueError(f"{self.name}: {p.name} must be > {p.exclusive_minimum:g}")

    @abstractmethod
    def value(self, f: Array, y: Array) -> Array:
        """L(f, y) for each example: (m,)."""

    @abstractmethod
    def dL_df(self, f: Array, y: Array) -> Array:
        """∂L/∂f, same shape as f."""

    def kink_mask(self, f: Array, y: Array, width: Array | float = 0.0) -> Array:
        """Examples whose f lies within `width` of a kink of L (where ∂L/∂f jumps)."""
        return np.zeros(f.shape[0], dtype=bool)


class SquaredError(Loss):
    name = LossName.SQUARED_ERROR
    formula = Formula(r"L = \tfrac{1}{2}\,(f - y)^{2}", "L = 1/2 (f - y)^2")
    derivative_formula = Formula(r"\frac{\partial L}{\partial f} = f - y", "dL/df = f - y")
    targets = REALS
    targets_text = "any real y (with softmax: a class index, or a row of k reals)"
    f_domain = REALS

    def value(self, f: Array, y: Array) -> Array:
        with np.errstate(over="ignore"):
            d = f - y
            sq = 0.5 * d * d
        return sq if sq.ndim == 1 else np.sum(sq, axis=1)

    def dL_df(self, f: Array, y: Array) -> Array:
        with np.errstate(over="ignore"):
            return f - y


class BinaryCrossEntropy(Loss):
    name = LossName.BINARY_CROSS_ENTROPY
    formula = Formula(r"L = -y \log f - (1 - y) \log(1 - f)", "L = -y log(f) - (1 - y) log(1 - f)")
    derivative_formula = Formula(
        r"\frac{\partial L}{\partial f} = \frac{f - y}{f\,(1 - f)}", "dL/df = (f - y) / (f (1 - f))"
    )
    targets = UNIT_CLOSED
    targets_text = "y in [0, 1]: 0/1 labels or soft labels"
    f_domain = UNIT_OPEN
    cross_entropy = True

    def value(self, f: Array, y: Array) -> Array:
        with np.errstate(divide="ignore", invalid="ignore"):
            return -(y * np.log(f) + (1.0 - y) * np.log1p(-f))

    def dL_df(self, f: Array, y: Array) -> Array:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return (f - y) / (f * (1.0 - f))


class CategoricalCrossEntropy(Loss):
    name = LossName.CATEGORICAL_CROSS_ENTROPY
    formula = Formula(r"L = -\sum_{k} y_k \log f_k", "L = -sum_k y_k log(f_k)")
    derivative_formula = Formula(r"\frac{\partial L}{\partial f_k} = -\frac{y_k}{f_k}", "dL/df_k = -y_k / f_k")
    targets = SIMPLEX
    targets_text = "a class index in 0..k-1, or a one-hot / probability row of k entries summing to 1 (within 1e-9)"
    f_domain = SIMPLEX
    cross_entropy = True

    def value(self, f: Array, y: Array) -> Array:
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(y == 0.0, 0.0, y * np.log(f))  # 0·log 0 = 0
        return -np.sum(terms, axis=1)

    def dL_df(self, f: Array, y: Array) -> Array:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return np.where(y == 0.0, 0.0, -y / f)


class Poisson(Loss):
    name = LossName.POISSON
    formula = Formula(r"L = f - y \log f", "L = f - y log(f)")
    derivative_formula = Formula(r"\frac{\partial L}{\partial f} = 1 - \frac{y}{f}", "dL/df = 1 - y / f")
    targets = NON_NEGATIVE
    targets_text = "counts or rates y >= 0 (the constant log y! is dropped from L)"
    f_domain = POSITIVE

    def value(self, f: Array, y: Array) -> Array:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return f - np.where(y == 0.0, 0.0, y * np.log(f))

    def dL_df(self, f: Array, y: Array) -> Array:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return 1.0 - y / f


class AbsoluteError(Loss):
    name = LossName.ABSOLUTE_ERROR
    formula = Formula(r"L = \lvert f - y \rvert", "L = |f - y|")
    derivative_formula = Formula(r"\frac{\partial L}{\partial f} = \operatorname{sign}(f - y)", "dL/df = sign(f - y)")
    targets = REALS
    targets_text = "any real y"
    f_domain = REALS
    kinks = "f = y, where sign(0) = 0 is chosen"

    def value(self, f: Array, y: Array) -> Array:
        with np.errstate(over="ignore"):
            return np.abs(f - y)

    def dL_df(self, f: Array, y: Array) -> Array:
        with np.errstate(over="ignore"):
            return np.sign(f - y)  # f − y may overflow to ±inf: its sign is still right

    def kink_mask(self, f: Array, y: Array, width: Array | float = 0.0) -> Array:
        return np.asarray(np.abs(f - y) <= width)


class Huber(Loss):
    name = LossName.HUBER
    formula = Formula(
        r"L = \begin{cases} \tfrac{1}{2}(f - y)^{2} & \lvert f - y \rvert \le \delta \\"
        r" \delta\left(\lvert f - y \rvert - \tfrac{1}{2}\delta\right) & \text{otherwise} \end{cases}",
        "L = 1/2 (f - y)^2 if |f - y| <= delta else delta (|f - y| - delta/2)",
    )
    derivative_formula = Formula(
        r"\frac{\partial L}{\partial f} = \operatorname{clip}(f - y, -\delta, \delta)",
        "dL/df = clip(f - y, -delta, delta)",
    )
    targets = REALS
    targets_text = "any real y"
    f_domain = REALS
    param_specs = (LossParam("delta", 1.0, "width of the quadratic zone, δ > 0", exclusive_minimum=0.0),)
    kinks = "none in ∂L/∂f (it is continuous); its own derivative jumps at |f - y| = δ"

    @property
    def delta(self) -> float:
        return self.params["delta"]

    def value(self, f: Array, y: Array) -> Array:
        d = self.delta
        with np.errstate(over="ignore", invalid="ignore"):
            a = np.abs(f - y)
            # δ(|f − y| − δ/2) as |δf − δy| − δ²/2: scaling first keeps it finite where f − y overflows
            linear = np.abs(d * f - d * y) - 0.5 * d * d
            return np.where(a <= d, 0.5 * np.minimum(a, d) ** 2, linear)

    def dL_df(self, f: Array, y: Array) -> Array:
        with np.errstate(over="ignore"):
            return np.clip(f - y, -self.delta, self.delta)


LOSSES: dict[LossName, type[Loss]] = {
    cls.name: cls for cls in (SquaredError, BinaryCrossEntropy, CategoricalCrossEntropy, Poisson, AbsoluteError, Huber)
}


def make_loss(name: LossName | str, params: dict[str, float] | None = None) -> Loss:
    """The loss `name` with its parameters (defaults where not given)."""
    return LOSSES[LossName(name)](**(params or {}))

"""Activations f = g(z): value, derivative, formulas and range, one small class each.

Shapes: scalar activations take z of shape (m,) and return f and df/dz of shape (m,);
softmax takes z of shape (m, k) and returns f (m, k) and the Jacobian df/dz (m, k, k).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import StrEnum
from typing import ClassVar

import numpy as np

from service.compute import stable
from service.compute.domains import (
    NON_NEGATIVE,
    POSITIVE,
    REALS,
    SIMPLEX,
    SYMMETRIC_UNIT_OPEN,
    UNIT_OPEN,
    Formula,
    Space,
)
from service.compute.stable import Array


class ActivationName(StrEnum):
    IDENTITY = "identity"
    SIGMOID = "sigmoid"
    TANH = "tanh"
    RELU = "relu"
    EXP = "exp"
    SOFTPLUS = "softplus"
    SOFTMAX = "softmax"


class Activation(ABC):
    """Base class: subclasses set the class attributes and implement value and derivative."""

    name: ClassVar[ActivationName]
    output_range: ClassVar[Space]
    vector: ClassVar[bool] = False  # True for softmax: k outputs per example
    # plain attributes (not ClassVar): a formula activation (service.compute.custom) sets them per instance
    formula: Formula
    derivative_formula: Formula
    stable_evaluation: ClassVar[str] = "direct"
    kinks: ClassVar[str | None] = None  # where the derivative is a chosen subgradient
    # what the breakdown tells a learner about this activation's numbers:
    # values of f that float64 reaches although the true value never does, and why that is harmless
    rounding_notes: ClassVar[tuple[tuple[float, str], ...]] = ()
    # a hidden layer's g'(z) peak, below a share of which the layer is saturated (None: never saturates)
    saturation_peak: ClassVar[float | None] = None
    # g'(z) = 0 for every z ≤ 0: a unit with z ≤ 0 on every example is dead
    dead_below_zero: ClassVar[bool] = False

    @abstractmethod
    def value(self, z: Array) -> Array:
        """f = g(z), same shape as z."""

    @abstractmethod
    def derivative(self, z: Array, f: Array) -> Array:
        """df/dz at z, given f = g(z): (m,) for scalar activations, (m, k, k) for softmax."""

    def derivative_as_written(self, z: Array, f: Array) -> Array:
        """df/dz as the course writes it, in terms of f where its formula uses f, for any f (a
        learner's own, wrong, f included): what grading expects from a learner's f. By default the
        derivative itself; the activations whose formula is in f override it."""
        return self.derivative(z, f)

    def kink_mask(self, z: Array, width: Array | float = 0.0) -> Array:
        """Examples whose z lies within `width` of a kink (where df/dz jumps); none by default."""
        return np.zeros(z.shape[0], dtype=bool)


class Identity(Activation):
    name = ActivationName.IDENTITY
    output_range = REALS
    formula = Formula("f = z", "f = z")
    derivative_formula = Formula(r"\frac{\partial f}{\partial z} = 1", "df/dz = 1")

    def value(self, z: Array) -> Array:
        return z.copy()

    def derivative(self, z: Array, f: Array) -> Array:
        return np.ones_like(z)


class Sigmoid(Activation):
    name = ActivationName.SIGMOID
    output_range = UNIT_OPEN
    formula = Formula(r"f = \sigma(z) = \frac{1}{1 + e^{-z}}", "f = sigmoid(z) = 1 / (1 + e^(-z))")
    derivative_formula = Formula(r"\frac{\partial f}{\partial z} = f\,(1 - f)", "df/dz = f (1 - f)")
    stable_evaluation = (
        "f = e^z/(1+e^z) for z < 0 and 1/(1+e^(-z)) otherwise (as scipy.special.expit); "
        "df/dz = σ(z)·σ(−z), since 1 − f cancels for large z"
    )

    rounding_notes = (
        (
            1.0,
            "f = σ(z) rounds to exactly 1 in float64 here although the true value is not "
            "1; the loss and dL/dz were computed from z, so they keep full precision",
        ),
        (
            0.0,
            "f = σ(z) rounds to exactly 0 in float64 here although the true value is not "
            "0; the loss and dL/dz were computed from z, so they keep full precision",
        ),
    )
    saturation_peak = 0.25

    def value(self, z: Array) -> Array:
        return stable.sigmoid(z)

    def derivative(self, z: Array, f: Array) -> Array:
        s, s_neg = stable.sigmoid_pair(z)
        return s * s_neg

    def derivative_as_written(self, z: Array, f: Array) -> Array:
        return f * (1.0 - f)


class Tanh(Activation):
    name = ActivationName.TANH
    output_range = SYMMETRIC_UNIT_OPEN
    formula = Formula(r"f = \tanh z = \frac{e^{z} - e^{-z}}{e^{z} + e^{-z}}", "f = tanh(z)")
    derivative_formula = Formula(r"\frac{\partial f}{\partial z} = 1 - f^{2}", "df/dz = 1 - f^2")
    stable_evaluation = "df/dz = 1/cosh²(z) = 4e/(1+e)² with e = e^(−2|z|), since 1 − f² cancels for |z| ≳ 10"

    saturation_peak = 1.0

    def value(self, z: Array) -> Array:
        return np.tanh(z)

    def derivative(self, z: Array, f: Array) -> Array:
        return stable.sech2(z)

    def derivative_as_written(self, z: Array, f: Array) -> Array:
        return 1.0 - f * f


class Relu(Activation):
    name = ActivationName.RELU
    output_range = NON_NEGATIVE
    formula = Formula(r"f = \max(0, z)", "f = max(0, z)")
    derivative_formula = Formula(
        r"\frac{\partial f}{\partial z} = \begin{cases} 1 & z > 0 \\ 0 & z \le 0 \end{cases}",
        "df/dz = 1 if z > 0 else 0",
    )
    kinks = "z = 0, where relu'(0) = 0 is chosen (as PyTorch)"

    dead_below_zero = True

    def value(self, z: Array) -> Array:
        return np.maximum(z, 0.0)

    def derivative(self, z: Array, f: Array) -> Array:
        return (z > 0).astype(np.float64)

    def kink_mask(self, z: Array, width: Array | float = 0.0) -> Array:
        return np.asarray(np.abs(z) <= width)


class Exp(Activation):
    name = ActivationName.EXP
    output_range = POSITIVE
    formula = Formula(r"f = e^{z}", "f = e^z")
    derivative_formula = Formula(r"\frac{\partial f}{\partial z} = e^{z} = f", "df/dz = e^z = f")
    stable_evaluation = "e^z overflows past z ≈ 709.78: that is reported as a non-finite result, never a silent inf"

    rounding_notes = (
        (
            0.0,
            "f underflows to 0 in float64 here although its true value is positive; "
            "the loss and dL/dz were computed from z where that matters",
        ),
    )

    def value(self, z: Array) -> Array:
        with np.errstate(over="ignore"):
            return np.exp(z)

    def derivative(self, z: Array, f: Array) -> Array:
        return f.copy()


class Softplus(Activation):
    name = ActivationName.SOFTPLUS
    output_range = POSITIVE
    formula = Formula(r"f = \log\left(1 + e^{z}\right)", "f = log(1 + e^z)")
    derivative_formula = Formula(
        r"\frac{\partial f}{\partial z} = \sigma(z) = \frac{1}{1 + e^{-z}}", "df/dz = sigmoid(z) = 1 / (1 + e^(-z))"
    )
    stable_evaluation = "f = logaddexp(0, z) = max(z, 0) + log1p(e^(−|z|))"

    rounding_notes = (
        (
            0.0,
            "f underflows to 0 in float64 here although its true value is positive; "
            "the loss and dL/dz were computed from z where that matters",
        ),
    )

    def value(self, z: Array) -> Array:
        return stable.softplus(z)

    def derivative(self, z: Array, f: Array) -> Array:
        return stable.sigmoid(z)


class Softmax(Activation):
    name = ActivationName.SOFTMAX
    output_range = SIMPLEX
    vector = True
    formula = Formula(r"f_k = \frac{e^{z_k}}{\sum_{l} e^{z_l}}", "f_k = e^(z_k) / sum_l e^(z_l)")
    derivative_formula = Formula(
        r"\frac{\partial f_k}{\partial z_l} = f_k\,(\delta_{kl} - f_l)", "df_k/dz_l = f_k (delta_kl - f_l)"
    )
    stable_evaluation = "subtract max(z) from each row before exp, so every exp is ≤ 1"

    rounding_notes = (
        (
            0.0,
            "f underflows to 0 in float64 here although its true value is positive; "
            "the loss and dL/dz were computed from z where that matters",
        ),
    )

    def value(self, z: Array) -> Array:
        return stable.softmax_rows(z)

    def derivative(self, z: Array, f: Array) -> Array:
        jac = -f[:, :, None] * f[:, None, :]
        k = f.shape[1]
        idx = np.arange(k)
        # the diagonal f_k (1 − f_k), with 1 − f_k as the sum of the other entries where f_k ≈ 1
        jac[:, idx, idx] = f * stable.complement_rows(f)
        return jac

    def derivative_as_written(self, z: Array, f: Array) -> Array:
        """diag(f) − f fᵀ, as written, for any f (not only rows that sum to 1)."""
        jac = -f[:, :, None] * f[:, None, :]
        idx = np.arange(f.shape[1])
        jac[:, idx, idx] += f
        return jac


ACTIVATIONS: dict[ActivationName, Activation] = {
    cls.name: cls() for cls in (Identity, Sigmoid, Tanh, Relu, Exp, Softplus, Softmax)
}

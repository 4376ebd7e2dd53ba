"""Single-layer models: forward pass, cost J and its gradients, from one stable code path.

Shapes (course notation): X is (m, n); for one output w is (n,), b a float, y (m,);
for k outputs (softmax) w is (n, k), b (k,), and y is (m,) class indices or (m, k) rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from service.compute.domains import Interval
from service.compute.errors import DomainError, NonFiniteResult, ShapeError
from service.compute.fused import summarize
from service.compute.losses import LossName
from service.compute.model_names import ModelName
from service.compute.pairings import Pairing
from service.compute.stable import Array

PROBABILITY_ROW_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Regularization:
    """R(w): l2 = λ/(2m) Σ w², l1 = (λ/m) Σ |w|; b is never regularized (the course's convention)."""

    kind: Literal["l1", "l2"]
    lam: float

    def __post_init__(self) -> None:
        if self.kind not in ("l1", "l2"):
            raise ValueError(f"unknown regularization {self.kind!r}: l1 or l2")

    def value(self, w: Array, m: int) -> float:
        """R(w); inf only when the true value is not representable (Σ w² alone may overflow,
        λ/(2m) alone may underflow)."""
        if self.lam == 0.0 or w.size == 0:
            return 0.0
        power, denom = (2, 2.0 * m) if self.kind == "l2" else (1, float(m))
        scale = self.lam / denom
        a = np.abs(w)
        with np.errstate(over="ignore"):
            total = float(np.sum(a * a if power == 2 else a))
        if np.isfinite(total) and scale >= np.finfo(np.float64).tiny:
            with np.errstate(over="ignore"):
                return float(scale * total)
        s = float(np.max(a))
        if s == 0.0:
            return 0.0
        # R = λ/denom · s^p · Σ (|w|/s)^p with s = max |w|, combined in logs (a fallback: ~1e-13 relative)
        q = float(np.sum((a / s) ** power))
        with np.errstate(over="ignore"):
            return float(np.exp(np.log(self.lam) - np.log(denom) + power * np.log(s) + np.log(q)))

    def gradient(self, w: Array, m: int) -> Array:
        if self.kind == "l2":
            return (self.lam / m) * w
        return (self.lam / m) * np.sign(w)


@dataclass
class Objective:
    """A model, its parameters and its data, as float64 arrays (y already one-hot for softmax)."""

    model: ModelName
    pairing: Pairing
    X: Array
    y: Array
    w: Array
    b: Array  # shape () for one output, (k,) for k outputs
    regularization: Regularization | None = None

    @property
    def m(self) -> int:
        return int(self.X.shape[0])

    @property
    def n(self) -> int:
        return int(self.X.shape[1])

    @property
    def k(self) -> int:
        return int(self.w.shape[1]) if self.w.ndim == 2 else 1


@dataclass
class Gradients:
    """J and its gradients, with the data and regularization parts apart."""

    loss: float
    grad_w: Array
    grad_b: Array
    data_loss: float
    regularization_loss: float
    grad_w_data: Array
    grad_w_regularization: Array | None


@dataclass
class Evaluation(Gradients):
    """The result: J, its gradients, and the per-example arrays of the forward and backward pass."""

    z: Array
    f: Array
    per_sample_loss: Array
    dL_dz: Array


def target_violations(pairing: Pairing, y: Array, k: int) -> list[tuple[tuple[int, ...], str]]:
    """Targets outside the loss's declared domain, as (index within y, reason); empty if all valid.

    y is as the client gave it: (m,) values or class indices, or (m, k) rows.
    """
    loss = pairing.loss
    out: list[tuple[tuple[int, ...], str]] = []
    if pairing.vector:
        if y.ndim == 1:
            bad = (y != np.round(y)) | (y < 0) | (y > k - 1)
            for i in np.flatnonzero(bad)[:20]:
                out.append(((int(i),), f"a class index must be an integer in 0..{k - 1}"))
            return out
        if y.shape[1] != k:
            return [((), f"each target row must have k = {k} entries (the columns of w)")]
        if loss.name is LossName.CATEGORICAL_CROSS_ENTROPY:
            bad_entry = (y < 0) | (y > 1)
            for i, j in np.argwhere(bad_entry)[:20]:
                out.append(((int(i), int(j)), "a probability must lie in [0, 1]"))
            sums = np.sum(y, axis=1)
            bad_rows = np.abs(sums - 1.0) > PROBABILITY_ROW_TOLERANCE
            for i in np.flatnonzero(bad_rows & ~np.any(bad_entry, axis=1))[:20]:
                out.append(
                    (
                        (int(i),),
                        "a target row must sum to 1 (within 1e-9): then dL/dz = f - y; otherwise dL/dz = (sum y) f - y",
                    )
                )
        return out
    if y.ndim != 1:
        return [((), "one target per example is expected (a list of numbers)")]
    dom = loss.targets
    assert isinstance(dom, Interval)
    inside = dom.contains(y)
    if inside.all():
        return out
    for i in np.flatnonzero(~inside)[:20]:
        out.append(((int(i),), f"{loss.name} takes targets in {dom.text}"))
    return out


def prepare_targets(pairing: Pairing, y: Array, k: int) -> Array:
    """Targets in the shape of f: class indices become one-hot rows for k outputs."""
    if pairing.vector and y.ndim == 1:
        onehot = np.zeros((y.shape[0], k))
        onehot[np.arange(y.shape[0]), y.astype(np.int64)] = 1.0
        return onehot
    return y


def build_objective(
    model: ModelName,
    pairing: Pairing,
    X: Array,
    y: Array,
    w: Array,
    b: Array | float,
    regularization: Regularization | None = None,
) -> Objective:
    """Check shapes and target domains (a guard when used as a library) and build an Objective."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    b_arr = np.asarray(b, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ShapeError("X must be a non-empty m×n matrix", ("data", "X"))
    m, n = X.shape
    if pairing.vector:
        if w.ndim != 2 or w.shape[0] != n or w.shape[1] < 2:
            raise ShapeError(f"w must be n×k with n = {n} rows (the columns of X) and k ≥ 2", ("parameters", "w"))
        k = w.shape[1]
        if b_arr.shape != (k,):
            raise ShapeError(f"b must have k = {k} entries", ("parameters", "b"))
    else:
        if w.shape != (n,):
            raise ShapeError(f"w must have n = {n} entries (the columns of X)", ("parameters", "w"))
        if b_arr.shape != ():
            raise ShapeError("b must be a number", ("parameters", "b"))
        k = 1
    if y.ndim not in ((1, 2) if pairing.vector else (1,)):
        raise ShapeError(
            "y must be m class indices or m rows of k entries" if pairing.vector else "y must be m numbers",
            ("data", "y"),
        )
    if y.shape[0] != m:
        raise ShapeError(f"y must have m = {m} entries (the rows of X)", ("data", "y"))
    for arr, loc in ((X, "X"), (y, "y")):
        if not np.all(np.isfinite(arr)):
            raise DomainError("every number must be finite", ("data", loc))
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b_arr))):
        raise DomainError("every number must be finite", ("parameters",))
    bad = target_violations(pairing, y, k)
    if bad:
        idx, why = bad[0]
        raise DomainError(why, ("data", "y", *idx), examples=sorted({i[0] for i, _ in bad if i}))
    if regularization is not None and not (regularization.lam >= 0 and np.isfinite(regularization.lam)):
        raise DomainError("lambda must be a finite number ≥ 0", ("regularization", "lambda"))
    return Objective(model, pairing, X, prepare_targets(pairing, y, k), w, b_arr, regularization)


def _bad_examples(a: Array) -> list[int]:
    bad = ~np.isfinite(a)
    if bad.ndim > 1:
        bad = np.any(bad.reshape(bad.shape[0], -1), axis=1)
    return [int(i) for i in np.flatnonzero(bad)]


def _require_finite(quantity: str, a: Array, reason: str) -> None:
    if not np.all(np.isfinite(a)):
        raise NonFiniteResult(quantity, _bad_examples(a) if a.ndim else [], reason)


def _require_finite_gradient(quantity: str, g: Array, what: str) -> None:
    """Gradients are indexed by parameter, not by example: name the components that overflow."""
    if np.isfinite(g).all():
        return
    bad = np.argwhere(~np.isfinite(g))
    if bad.size:
        comps = ", ".join("[" + "][".join(str(int(i)) for i in idx) + "]" for idx in bad[:20])
        raise NonFiniteResult(quantity, [], f"{what} overflows float64 for components {comps}")


def linear_part(X: Array, w: Array, b: Array) -> Array:
    """z = X w + b: (m,) for one output, (m, k) for k outputs."""
    with np.errstate(over="ignore", invalid="ignore"):
        return X @ w + b


def forward(objective: Objective, w: Array | None = None, b: Array | None = None) -> tuple[Array, Array, Array, Array]:
    """(z, f, L, ∂L/∂z) for every example, each checked to be finite."""
    w = objective.w if w is None else w
    b = objective.b if b is None else b
    z = linear_part(objective.X, w, b)
    _require_finite("z", z, "w·x + b overflows float64")
    f, L, dL_dz = objective.pairing.forward_backward(z, objective.y)
    _require_finite("f", f, "the activation overflows float64 (e^z for z > 709.78)")
    _require_finite("per-sample loss", L, "L(f, y) overflows float64")
    _require_finite("dL/dz", dL_dz, "dL/dz overflows float64")
    return z, f, L, dL_dz


def _mean(L: Array) -> float:
    with np.errstate(over="ignore"):
        v = float(np.mean(L))
        if not np.isfinite(v):  # the sum overflowed although every term and the mean may not
            v = float(np.sum(L / L.shape[0]))
    return v


def cost(objective: Objective, w: Array | None = None, b: Array | None = None) -> float:
    """J(w, b) = (1/m) Σ L + R(w) at the given parameters (the objective's by default)."""
    w = objective.w if w is None else w
    _, _, L, _ = forward(objective, w, b)
    J = _mean(L)
    if objective.regularization is not None:
        J += objective.regularization.value(w, objective.m)
    if not np.isfinite(J):
        raise NonFiniteResult("loss", [], "J overflows float64")
    return J


def _assemble(
    objective: Objective, data_loss: float, grad_w_data: Array, grad_b: Array, *, data_checked: bool = False
) -> Gradients:
    """Add the regularization term to the data term's J and gradients, each checked to be finite
    (the data term's gradients need no second check when the caller has made it: `data_checked`)."""
    if not data_checked:
        _require_finite_gradient("gradients.w", grad_w_data, "the data term of dJ/dw")
        _require_finite_gradient("gradients.b", np.atleast_1d(grad_b), "dJ/db")
    m = objective.m
    reg_loss = 0.0
    grad_w = grad_w_data
    grad_w_reg = None
    if objective.regularization is not None:
        with np.errstate(over="ignore", invalid="ignore"):
            reg_loss = objective.regularization.value(objective.w, m)
            grad_w_reg = objective.regularization.gradient(objective.w, m)
            grad_w = grad_w_data + grad_w_reg
        if not np.isfinite(reg_loss):
            formula = "λ/(2m) Σ w²" if objective.regularization.kind == "l2" else "(λ/m) Σ |w|"
            raise NonFiniteResult("regularization term", [], f"{formula} overflows float64")
        _require_finite_gradient("gradients.w", grad_w, "dJ/dw")
    loss = data_loss + reg_loss
    if not np.isfinite(loss):
        raise NonFiniteResult("loss", [], "J overflows float64")
    return Gradients(
        loss=loss,
        grad_w=grad_w,
        grad_b=np.asarray(grad_b),
        data_loss=data_loss,
        regularization_loss=reg_loss,
        grad_w_data=grad_w_data,
        grad_w_regularization=grad_w_reg,
    )


def evaluate(objective: Objective) -> Evaluation:
    """Loss J and gradients ∂J/∂w (shape of w), ∂J/∂b (shape of b), and the per-example arrays of
    the forward and backward pass (which the breakdown, built by the caller, reads)."""
    m = objective.m
    z, f, L, dL_dz = forward(objective)
    data_loss = _mean(L)
    with np.errstate(over="ignore", invalid="ignore"):
        grad_w_data = objective.X.T @ dL_dz / m
        if not np.all(np.isfinite(grad_w_data)):  # the sum overflowed: scale first
            grad_w_data = objective.X.T @ (dL_dz / m)
        grad_b = np.mean(dL_dz, axis=0)
        if not np.all(np.isfinite(grad_b)):
            grad_b = np.sum(dL_dz / m, axis=0)
    g = _assemble(objective, data_loss, grad_w_data, np.asarray(grad_b))
    return Evaluation(**vars(g), z=z, f=f, per_sample_loss=L, dL_dz=dL_dz)


def gradients(objective: Objective, w: Array | None = None, b: Array | None = None) -> Gradients:
    """J and its gradients without the per-example arrays: one pass over X (see fused.py).

    Anything not finite on the way falls back to `evaluate`, which raises the same errors as always.
    """
    if w is not None or b is not None:
        objective = replace(objective, w=objective.w if w is None else w, b=objective.b if b is None else b)
    sums = summarize(objective.X, objective.y, objective.w, objective.b, objective.pairing)
    if sums is None:
        return evaluate(objective)
    m = objective.m
    # summarize checked the sums finite; dividing by m ≥ 1 keeps them finite
    return _assemble(objective, sums.loss / m, sums.grad_w / m, sums.grad_b / m, data_checked=True)


def explain_size(problem_m: int, k: int) -> int:
    """How many numbers the breakdown holds: per-example factors (softmax Jacobians count m·k²)."""
    # per_sample holds z, f, dL/df, dL/dz (k each), L and df/dz (k² for softmax); the steps repeat them
    per_example = 4 * k + 1 + (k * k if k > 1 else 1)
    return 2 * problem_m * per_example

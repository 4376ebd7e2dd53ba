"""An independent oracle for the grading tests: random problems and their answers in plain numpy.

Everything a test compares with is computed here from docs/design/math.md's PLAIN formulas (1/(1+e^(−z)),
−y log f − (1−y) log(1−f), the k×k softmax Jacobian multiplied out, ...), and every catalogued
mistake is re-implemented from docs/design/math.md's table ("what their answer equals", "applies when"). The
code under test is used only to build the Objective (build_objective, make_pairing) that the
grader takes as input; no number it computes is read here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from service.compute.model_names import ModelName
from service.compute.models import Objective, Regularization, build_objective
from service.compute.pairings import make_pairing
from tests import oracles as plain

Array = np.ndarray

# label -> (model, activation, loss); the four presets and five non-canonical single_layer pairings
PAIRINGS: dict[str, tuple[str, str, str]] = {
    "linear_regression": ("linear_regression", "identity", "squared_error"),
    "logistic_regression": ("logistic_regression", "sigmoid", "binary_cross_entropy"),
    "softmax_regression": ("softmax_regression", "softmax", "categorical_cross_entropy"),
    "poisson_regression": ("poisson_regression", "exp", "poisson"),
    "sigmoid+squared_error": ("single_layer", "sigmoid", "squared_error"),
    "tanh+squared_error": ("single_layer", "tanh", "squared_error"),
    "softplus+poisson": ("single_layer", "softplus", "poisson"),
    "relu+huber": ("single_layer", "relu", "huber"),
    "identity+absolute_error": ("single_layer", "identity", "absolute_error"),
}
# docs/design/math.md, "Canonical pairings"
CANONICAL = {
    ("identity", "squared_error"),
    ("sigmoid", "binary_cross_entropy"),
    ("softmax", "categorical_cross_entropy"),
    ("exp", "poisson"),
}
CROSS_ENTROPY = {"binary_cross_entropy", "categorical_cross_entropy"}
REGULARIZATIONS: tuple[str | None, ...] = (None, "l1", "l2")


def _math_md_catalogue() -> list[tuple[str, str]]:
    """(code, parts) of each row of docs/design/math.md's mistake catalogue, in its order."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "design" / "math.md").read_text()
    table = text.split("\n## The mistake catalogue\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \|.*\| ([^|]*) \|$", table, re.M)
    return [(code, parts.strip()) for code, parts in rows]


# docs/design/math.md's catalogue, in its order: the codes of every model kind, then the codes that
# belong to backpropagation (their parts are a network's layers)
MATH_MD_CODES = tuple(code for code, parts in _math_md_catalogue() if parts != "gradients.layers")
MATH_MD_NETWORK_CODES = tuple(code for code, parts in _math_md_catalogue() if parts == "gradients.layers")


@dataclass
class Case:
    label: str
    model: str
    activation: str
    loss: str
    X: Array
    y: Array  # as the client gives it (class indices for softmax)
    w: Array
    b: Array
    reg_kind: str | None = None
    lam: float = 0.0
    loss_params: dict[str, float] = field(default_factory=dict)

    @property
    def m(self) -> int:
        return int(self.X.shape[0])

    @property
    def vector(self) -> bool:
        return self.activation == "softmax"

    @property
    def canonical(self) -> bool:
        return (self.activation, self.loss) in CANONICAL

    def objective(self) -> Objective:
        """The grader's input, built by the service's own constructors."""
        pairing = make_pairing(self.activation, self.loss, self.loss_params or None)
        reg = None if self.reg_kind is None else Regularization(self.reg_kind, self.lam)  # type: ignore[arg-type]
        return build_objective(ModelName(self.model), pairing, self.X, self.y, self.w, self.b, reg)


def make_case(label: str, reg_kind: str | None, seed: int) -> Case:
    """A random problem: m in 2..8, n in 1..4, moderate z so every factor is finite and well conditioned."""
    model, act, loss = PAIRINGS[label]
    rng = np.random.default_rng([seed, len(label), sum(map(ord, label)), REGULARIZATIONS.index(reg_kind)])
    m, n = int(rng.integers(2, 9)), int(rng.integers(1, 5))
    X = rng.uniform(-1.5, 1.5, (m, n))
    params: dict[str, float] = {}
    if act == "softmax":
        k = int(rng.integers(2, 5))
        w = rng.normal(0.0, 0.6, (n, k))
        b = rng.normal(0.0, 0.5, k)
        y = rng.integers(0, k, m).astype(np.float64)
    else:
        w = rng.normal(0.0, 0.6, n)
        b = np.asarray(rng.normal(0.0, 0.5))
        if loss == "binary_cross_entropy":
            y = rng.integers(0, 2, m).astype(np.float64)
            if seed % 2:  # a soft label too
                y[0] = 0.25
        elif loss == "poisson":
            y = rng.poisson(1.5, m).astype(np.float64)
        elif loss == "huber":
            y = rng.normal(0.0, 1.5, m)
            params = {"delta": float(rng.uniform(0.3, 1.5))}
        else:
            y = rng.normal(0.0, 1.0, m)
    lam = float(rng.uniform(0.2, 2.0)) if reg_kind else 0.0
    return Case(label, model, act, loss, X, y, w, b, reg_kind, lam, params)


def all_cases(seeds: range) -> list[tuple[str, str | None, int]]:
    return [(label, reg, seed) for label in PAIRINGS for reg in REGULARIZATIONS for seed in seeds]


# --- plain formulas (docs/design/math.md) -------------------------------------------------------------------


def _activation(name: str, z: Array) -> tuple[Array, Array]:
    return plain.activation(name, z)


def _loss(name: str, f: Array, y: Array, params: dict[str, float]) -> tuple[Array, Array]:
    return plain.loss(name, f, y, params.get("delta", 1.0))


@dataclass
class Solution:
    z: Array
    f: Array
    y: Array  # one-hot for softmax
    L: Array
    dL_df: Array
    df_dz: Array
    r: Array  # ∂L/∂z
    data_loss: float
    R: float
    dR: Array
    J: float
    gw: Array
    gb: Array

    def parts(self) -> dict[str, Array]:
        return {
            "loss": np.asarray(self.J),
            "gradients.w": self.gw,
            "gradients.b": np.asarray(self.gb),
            "per_sample.z": self.z,
            "per_sample.f": self.f,
            "per_sample.dL_df": self.dL_df,
            "per_sample.df_dz": self.df_dz,
            "per_sample.dL_dz": self.r,
        }


def one_hot(case: Case) -> Array:
    if case.vector and case.y.ndim == 1:
        k = case.w.shape[1]
        return np.eye(k)[case.y.astype(int)]
    return case.y


def chain_rule(case: Case, z: Array, f: Array, dL_df: Array, df_dz: Array, y: Array) -> Array:
    """∂L/∂z: f − y for a canonical pairing, else ∂L/∂f · ∂f/∂z (the Jacobian product for softmax)."""
    if case.canonical:
        return f - y
    if case.vector:
        return np.einsum("ik,ikl->il", dL_df, df_dz)
    return dL_df * df_dz


def regularization(case: Case, w: Array) -> tuple[float, Array]:
    m, lam = case.m, case.lam
    if case.reg_kind == "l2":
        return lam / (2 * m) * float(np.sum(w**2)), lam / m * w
    if case.reg_kind == "l1":
        return lam / m * float(np.sum(np.abs(w))), lam / m * np.sign(w)
    return 0.0, np.zeros_like(w)


def solve(case: Case) -> Solution:
    X, w, b, m = case.X, case.w, case.b, case.m
    y = one_hot(case)
    z = X @ w + b
    f, df_dz = _activation(case.activation, z)
    L, dL_df = _loss(case.loss, f, y, case.loss_params)
    r = chain_rule(case, z, f, dL_df, df_dz, y)
    R, dR = regularization(case, w)
    data_loss = float(np.mean(L))
    gw = X.T @ r / m + dR
    gb = np.mean(r, axis=0)
    return Solution(z, f, y, L, dL_df, df_dz, r, data_loss, R, dR, data_loss + R, gw, np.asarray(gb))


def forward_from(case: Case, z: Array) -> Solution:
    """The whole chain from a (possibly wrong) z: what a learner who slipped in z would get after."""
    X, w, m = case.X, case.w, case.m
    y = one_hot(case)
    f, df_dz = _activation(case.activation, z)
    L, dL_df = _loss(case.loss, f, y, case.loss_params)
    r = chain_rule(case, z, f, dL_df, df_dz, y)
    R, dR = regularization(case, w)
    data_loss = float(np.mean(L))
    return Solution(
        z, f, y, L, dL_df, df_dz, r, data_loss, R, dR, data_loss + R, X.T @ r / m + dR, np.asarray(np.mean(r, axis=0))
    )


# --- the catalogue of mistakes (docs/design/math.md's table) -------------------------------------------------


def _from_r(case: Case, s: Solution, r: Array) -> dict[str, Array]:
    """The gradient parts (and ∂L/∂z) when r replaces the correct ∂L/∂z."""
    return {
        "gradients.w": case.X.T @ r / case.m + s.dR,
        "gradients.b": np.asarray(np.mean(r, axis=0)),
        "per_sample.dL_dz": r,
    }


def applies(code: str, case: Case) -> bool:
    """docs/design/math.md's "applies when" column."""
    regularized = case.reg_kind is not None and case.lam > 0
    return {
        "missing_mean": case.m > 1,
        "sign_flipped": True,
        "missing_input_factor": True,
        "missing_activation_derivative": case.activation != "identity",
        "extra_activation_derivative": case.canonical and case.activation != "identity",
        "used_z_for_f": case.canonical and case.activation != "identity",
        "double_factor": case.loss == "squared_error",
        "regularized_bias": regularized,
        "missing_regularization": regularized,
        "regularization_scale": regularized and case.reg_kind == "l2",
        "loss_missing_half": case.loss == "squared_error",
        "loss_missing_mean": case.m > 1,
        "loss_sign_flipped": case.loss in CROSS_ENTROPY,
        "loss_missing_regularization": regularized,
    }[code]


def all_variants(case: Case, s: Solution) -> dict[str, dict[str, Array]]:
    """What each mistake's answer equals (docs/design/math.md's table), computed whether or not it applies."""
    X, m, r = case.X, case.m, s.r
    extra = np.einsum("ik,ikl->il", s.f - s.y, s.df_dz) if case.vector else (s.f - s.y) * s.df_dz
    bias_term = case.lam / m * (case.b if case.reg_kind == "l2" else np.sign(case.b))
    return {
        "missing_mean": {"gradients.w": X.T @ r + s.dR, "gradients.b": np.asarray(np.sum(r, axis=0))},
        "sign_flipped": {
            "gradients.w": -X.T @ r / m + s.dR,
            "gradients.b": np.asarray(-np.mean(r, axis=0)),
            "per_sample.dL_dz": -r,
        },
        "missing_input_factor": {"gradients.w": np.broadcast_to(np.mean(r, axis=0), case.w.shape) + s.dR},
        "missing_activation_derivative": _from_r(case, s, s.dL_df),
        "extra_activation_derivative": _from_r(case, s, extra),
        "used_z_for_f": _from_r(case, s, s.z - s.y),
        "double_factor": {"gradients.w": 2 * X.T @ r / m + s.dR, "gradients.b": np.asarray(2 * np.mean(r, axis=0))},
        "regularized_bias": {"gradients.b": np.asarray(s.gb + bias_term)},
        "missing_regularization": {"gradients.w": s.gw - s.dR},
        "regularization_scale": {"gradients.w": s.gw - s.dR + case.lam / (2 * m) * case.w},
        "loss_missing_half": {"loss": np.asarray(2 * s.data_loss + s.R)},
        "loss_missing_mean": {"loss": np.asarray(float(np.sum(s.L)) + s.R)},
        "loss_sign_flipped": {"loss": np.asarray(-s.data_loss + s.R)},
        "loss_missing_regularization": {"loss": np.asarray(s.data_loss)},
    }


def mistake_variants(case: Case, s: Solution) -> dict[str, dict[str, Array]]:
    """Every mistake whose "applies when" holds, with the value of each part it changes."""
    return {code: v for code, v in all_variants(case, s).items() if applies(code, case)}


def close(a: Array, e: Array, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
    """numpy's allclose rule, as docs/design/math.md states it."""
    a, e = np.asarray(a, dtype=np.float64), np.asarray(e, dtype=np.float64)
    return a.shape == e.shape and bool(np.all(np.abs(a - e) <= atol + rtol * np.abs(e)))


def jsonable(a: Any) -> Any:
    a = np.asarray(a, dtype=np.float64)
    return float(a) if a.ndim == 0 else a.tolist()

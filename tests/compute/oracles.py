"""Independent oracles for the compute tests.

The formulas here are the PLAIN textbook ones (docs/design/math.md's tables), written with autograd.numpy so
that autograd differentiates them: 1/(1+e^(-z)), log(1+e^z), -y log f - (1-y) log(1-f), ...
None of them calls the code under test; only registry names, loss parameters and declared domains
are read from it (to sample inputs), never a number it computes.

Every registry entry must have an oracle here: a new activation or loss makes the tests fail with
"no oracle for ..." until its plain formula is added, after which it is tested everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import autograd.numpy as anp
import numpy as np

from service.compute.activations import ACTIVATIONS, ActivationName
from service.compute.domains import Interval, Simplex
from service.compute.losses import LOSSES, LossName
from service.compute.pairings import all_pairings

EPS = float(np.finfo(np.float64).eps)

# --- plain formulas ---------------------------------------------------------------------------


def _softmax(z: Any) -> Any:
    e = anp.exp(z)
    return e / anp.sum(e, axis=-1, keepdims=True)


ACTIVATION_FORMULAS: dict[str, Callable[[Any], Any]] = {
    "identity": lambda z: 1.0 * z,
    "sigmoid": lambda z: 1.0 / (1.0 + anp.exp(-z)),
    "tanh": lambda z: (anp.exp(z) - anp.exp(-z)) / (anp.exp(z) + anp.exp(-z)),
    "relu": lambda z: anp.where(z > 0, z, 0.0),
    "exp": lambda z: anp.exp(z),
    "softplus": lambda z: anp.log(1.0 + anp.exp(z)),
    "softmax": _softmax,
}

# Per-entry loss terms; for k outputs the per-example loss is the sum over the row.
LOSS_TERMS: dict[str, Callable[..., Any]] = {
    "squared_error": lambda f, y: 0.5 * (f - y) ** 2,
    "binary_cross_entropy": lambda f, y: -y * anp.log(f) - (1.0 - y) * anp.log(1.0 - f),
    "categorical_cross_entropy": lambda f, y: -y * anp.log(f),
    "poisson": lambda f, y: f - y * anp.log(f),
    "absolute_error": lambda f, y: anp.abs(f - y),
    "huber": lambda f, y, delta=1.0: anp.where(  # docs/design/math.md: default δ = 1.0
        anp.abs(f - y) <= delta, 0.5 * (f - y) ** 2, delta * (anp.abs(f - y) - 0.5 * delta)
    ),
}

# Distance to a kink (where the derivative jumps), for the entries that have one.
ACTIVATION_KINK_DISTANCE: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda z: np.abs(z),
}
LOSS_KINK_DISTANCE: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "absolute_error": lambda f, y: np.abs(f - y),
}


def activation_formula(name: str) -> Callable[[Any], Any]:
    assert str(name) in ACTIVATION_FORMULAS, f"no oracle for activation {name!s}: add its plain formula"
    return ACTIVATION_FORMULAS[str(name)]


def plain_loss(name: str, f: Any, y: Any, params: dict[str, float] | None = None) -> Any:
    """L(f, y) per example from the plain formula: (m,) for f (m,) or (m, k)."""
    assert str(name) in LOSS_TERMS, f"no oracle for loss {name!s}: add its plain formula"
    terms = LOSS_TERMS[str(name)](f, y, **(params or {}))
    return anp.sum(terms, axis=1) if anp.ndim(terms) == 2 else terms


def plain_activation(name: str, z: Any) -> Any:
    return activation_formula(name)(z)


def activation_kink_distance(name: str, z: np.ndarray) -> np.ndarray:
    fn = ACTIVATION_KINK_DISTANCE.get(str(name))
    return np.full(z.shape[0], np.inf) if fn is None else _rows_min(fn(z))


def loss_kink_distance(name: str, f: np.ndarray, y: np.ndarray) -> np.ndarray:
    fn = LOSS_KINK_DISTANCE.get(str(name))
    return np.full(f.shape[0], np.inf) if fn is None else _rows_min(fn(f, y))


def _rows_min(d: np.ndarray) -> np.ndarray:
    return d if d.ndim == 1 else np.min(d.reshape(d.shape[0], -1), axis=1)


# --- docs/design/math.md's tables, as data -------------------------------------------------------------

_R = (-math.inf, math.inf, False, False)

# Range of f for each activation: (lo, hi, lo_closed, hi_closed), or "simplex" (k outputs).
MATH_RANGES: dict[str, tuple[float, float, bool, bool] | str] = {
    "identity": _R,
    "sigmoid": (0.0, 1.0, False, False),
    "tanh": (-1.0, 1.0, False, False),
    "relu": (0.0, math.inf, True, False),
    "exp": (0.0, math.inf, False, False),
    "softplus": (0.0, math.inf, False, False),
    "softmax": "simplex",
}

# For each loss: (valid y, the f it needs), in the same notation.
MATH_DOMAINS: dict[str, tuple[tuple[float, float, bool, bool] | str, tuple[float, float, bool, bool] | str]] = {
    "squared_error": (_R, _R),
    "binary_cross_entropy": ((0.0, 1.0, True, True), (0.0, 1.0, False, False)),
    "categorical_cross_entropy": ("simplex", "simplex"),
    "poisson": ((0.0, math.inf, True, False), (0.0, math.inf, False, False)),
    "absolute_error": (_R, _R),
    "huber": (_R, _R),
}

# Losses that take k outputs from softmax (docs/design/math.md: categorical_cross_entropy and squared_error).
MATH_SEVERAL_OUTPUTS = {"categorical_cross_entropy", "squared_error"}

# Canonical pairings and their models (docs/design/math.md's table).
MATH_CANONICAL: dict[tuple[str, str], str] = {
    ("identity", "squared_error"): "linear_regression",
    ("sigmoid", "binary_cross_entropy"): "logistic_regression",
    ("softmax", "categorical_cross_entropy"): "softmax_regression",
    ("exp", "poisson"): "poisson_regression",
}


def _subset(inner: tuple[float, float, bool, bool], outer: tuple[float, float, bool, bool]) -> bool:
    ilo, ihi, ilc, ihc = inner
    olo, ohi, olc, ohc = outer
    lo_ok = ilo > olo or (ilo == olo and (olc or not ilc))
    hi_ok = ihi < ohi or (ihi == ohi and (ohc or not ihc))
    return lo_ok and hi_ok


def math_compatible(activation: str, loss: str) -> bool:
    """docs/design/math.md's rule: the activation's range must lie in the loss's f-domain; k outputs only
    from softmax, only into categorical_cross_entropy or squared_error."""
    rng = MATH_RANGES[str(activation)]
    need = MATH_DOMAINS[str(loss)][1]
    if rng == "simplex":
        return str(loss) in MATH_SEVERAL_OUTPUTS
    if need == "simplex":
        return False
    assert isinstance(rng, tuple) and isinstance(need, tuple)
    return _subset(rng, need)


# --- registries, parametrisations ------------------------------------------------------------


def loss_param_sets(loss: LossName | str) -> list[dict[str, float]]:
    """Defaults, plus each parameter at a quarter and at four times its default (huber's δ)."""
    out: list[dict[str, float]] = [{}]
    for p in LOSSES[LossName(loss)].param_specs:
        for v in (0.25 * p.default, 4.0 * p.default):
            if v > p.exclusive_minimum:
                out.append({p.name: v})
    return out


def params_id(params: dict[str, float]) -> str:
    return ",".join(f"{k}={v:g}" for k, v in params.items())


def compatible_pairings() -> list[tuple[ActivationName, LossName, dict[str, float]]]:
    """Every compatible (activation, loss, loss params) from the registries."""
    return [(a, lo, p) for a, lo, ok, _ in all_pairings() if ok for p in loss_param_sets(lo)]


def pairing_id(case: tuple[ActivationName, LossName, dict[str, float]]) -> str:
    a, lo, p = case
    return f"{a}+{lo}" + (f"[{params_id(p)}]" if p else "")


def is_vector(activation: ActivationName | str) -> bool:
    return ACTIVATIONS[ActivationName(activation)].vector


# --- sampling from declared domains ----------------------------------------------------------


def sample_f(space: Interval | Simplex, rng: np.random.Generator, m: int, k: int = 3) -> np.ndarray:
    """Values of f inside a loss's f-domain, kept a little away from finite ends."""
    if isinstance(space, Simplex):
        return _plain_softmax_rows(rng.normal(0.0, 1.5, (m, k)))
    return _sample_interval(space, rng, m, targets=False)


def sample_targets(space: Interval | Simplex, rng: np.random.Generator, m: int, k: int | None = None) -> np.ndarray:
    """Targets y in a loss's declared target space: (m,) values, or (m, k) rows when k is given.

    Closed ends are included (0/1 labels, y = 0 counts); probability rows mix one-hot and soft rows.
    """
    if isinstance(space, Simplex):
        assert k is not None
        rows = rng.dirichlet(np.ones(k), size=m)
        onehot = np.eye(k)[rng.integers(0, k, size=m)]
        return np.where(rng.random((m, 1)) < 0.4, onehot, rows)
    if k is not None:
        return _sample_interval(space, rng, m * k, targets=True).reshape(m, k)
    return _sample_interval(space, rng, m, targets=True)


def _sample_interval(space: Interval, rng: np.random.Generator, m: int, *, targets: bool) -> np.ndarray:
    lo, hi = space.lo, space.hi
    if math.isfinite(lo) and math.isfinite(hi):
        width = hi - lo
        v = rng.uniform(lo + 0.02 * width, hi - 0.02 * width, m)
    elif math.isfinite(lo):
        v = lo + rng.lognormal(0.0, 1.0, m)
        if targets:  # counts as well as rates
            v = np.where(rng.random(m) < 0.5, lo + rng.poisson(3.0, m), v)
    elif math.isfinite(hi):
        v = hi - rng.lognormal(0.0, 1.0, m)
    else:
        v = rng.normal(0.0, 3.0, m)
    if targets:
        ends = [e for e, closed in ((lo, space.lo_closed), (hi, space.hi_closed)) if closed]
        if ends:
            pick = rng.random(m) < 0.4
            v = np.where(pick, rng.choice(ends, size=m), v)
    return v


def _plain_softmax_rows(z: np.ndarray) -> np.ndarray:
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# --- comparisons -----------------------------------------------------------------------------


def fd_agrees(a: np.ndarray, n: np.ndarray, noise: np.ndarray | float, rel: float = 1e-6) -> np.ndarray:
    """docs/design/math.md's check |a − n| / max(|a|, |n|, 1e−8) ≤ rel, widened by the finite difference's own
    rounding noise (≈ eps·|F|/h, which dominates where the derivative is small next to F)."""
    a, n = np.asarray(a, dtype=float), np.asarray(n, dtype=float)
    scale = np.maximum(np.maximum(np.abs(a), np.abs(n)), 1e-8)
    return np.abs(a - n) <= rel * scale + noise


def central_difference(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Elementwise central differences of an elementwise function, with h = 1e−6·max(1, |x|).

    Returns (estimate, rounding noise bound). The step actually taken, (x+h) − (x−h), is used.
    """
    h = 1e-6 * np.maximum(1.0, np.abs(x))
    xp, xm = x + h, x - h
    fp, fm = fn(xp), fn(xm)
    est = (fp - fm) / (xp - xm)
    noise = 8.0 * EPS * np.maximum(np.abs(fp), np.abs(fm)) / (xp - xm)
    return est, noise

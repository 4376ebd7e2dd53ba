"""The numpy anchor: logistic-regression loss and gradients in a few lines of plain numpy.

Used by the benchmark suite (its "naive numpy" row, and the compute of the plain FastAPI and bare
ASGI anchors) and by a fast test that checks it against the service's own `evaluate`: an anchor
that computed something else would make every ratio meaningless. Imports numpy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]


def logistic_numpy(X: Array, y: Array, w: Array, b: float) -> tuple[float, Array, float]:
    """(J, ∂J/∂w, ∂J/∂b) of logistic regression (sigmoid + binary cross-entropy), mean over m.

    z = X w + b; L = softplus(z) − y z (stable for any z); ∂L/∂z = σ(z) − y; ∂J/∂w = Xᵀ(f − y)/m.
    """
    m = X.shape[0]
    z = X @ w + b
    loss = float(np.mean(np.logaddexp(0.0, z) - y * z))
    f = np.exp(-np.logaddexp(0.0, -z))  # σ(z) without overflow
    r = f - y
    return loss, X.T @ r / m, float(np.mean(r))


def logistic_problem(m: int, n: int, seed: int = 7, digits: int | None = 6) -> tuple[Array, Array, Array, float]:
    """A reproducible logistic-regression problem (X, y, w, b); X ~ N(0, 1), rounded to `digits`."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n))
    w = rng.standard_normal(n) / np.sqrt(n)
    if digits is not None:
        X = np.round(X, digits)
        w = np.round(w, digits)
    y = (rng.random(m) < 0.5).astype(np.float64)
    return X, y, w, 0.25


def logistic_body(X: Array, y: Array, w: Array, b: float, **extra: Any) -> dict[str, Any]:
    """The POST /gradient body of that problem (y as 0/1 integers, as a client would send it)."""
    return {
        "model": "logistic_regression",
        "parameters": {"w": w.tolist(), "b": b},
        "data": {"X": X.tolist(), "y": y.astype(np.int64).tolist()},
        **extra,
    }

"""The plain formulas every test checks the service against, in one place (docs/design/math.md's
tables): each activation's f and ∂f/∂z, each loss's per-example L and ∂L/∂f, written the textbook
way with numpy (1/(1+e^(−z)), −y log f − (1−y) log(1−f), the softmax Jacobian multiplied out).

They read nothing from `service` but names, so they can disagree with its stable kernels; on the
moderate inputs the tests use both must agree to rounding. (tests/compute/oracles.py writes the same
formulas for autograd, which differentiates them, and checks them against these.)
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = Any


def activation(name: str, z: Array) -> tuple[Array, Array]:
    """f and ∂f/∂z (for softmax the k×k Jacobian per example, ∂f_k/∂z_l = f_k(δ_kl − f_l))."""
    if name == "identity":
        return z.copy(), np.ones_like(z)
    if name == "sigmoid":
        f = 1.0 / (1.0 + np.exp(-z))
        return f, f * (1.0 - f)
    if name == "tanh":
        f = np.tanh(z)
        return f, 1.0 - f**2
    if name == "relu":
        return np.maximum(z, 0.0), (z > 0).astype(np.float64)
    if name == "exp":
        return np.exp(z), np.exp(z)
    if name == "softplus":
        return np.log1p(np.exp(z)), 1.0 / (1.0 + np.exp(-z))
    if name == "softmax":
        e = np.exp(z)
        f = e / e.sum(axis=1, keepdims=True)
        eye = np.eye(z.shape[1])
        return f, f[:, :, None] * (eye[None, :, :] - f[:, None, :])
    raise ValueError(f"no oracle for the activation {name!r}")


def loss(name: str, f: Array, y: Array, delta: float = 1.0) -> tuple[Array, Array]:
    """Per-example L (a row's entries summed, for k outputs) and ∂L/∂f (per entry)."""
    if name == "squared_error":
        L = 0.5 * (f - y) ** 2
        return (L.sum(axis=1) if L.ndim == 2 else L), f - y
    if name == "binary_cross_entropy":
        return -y * np.log(f) - (1 - y) * np.log(1 - f), (f - y) / (f * (1 - f))
    if name == "categorical_cross_entropy":
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.where(y > 0, y * np.log(f), 0.0)  # 0·log 0 = 0: a class with no weight adds nothing
        return -logs.sum(axis=1), -y / f
    if name == "poisson":
        return f - y * np.log(f), 1 - y / f
    if name == "absolute_error":
        return np.abs(f - y), np.sign(f - y)
    if name == "huber":
        a = np.abs(f - y)
        return np.where(a <= delta, 0.5 * a**2, delta * (a - 0.5 * delta)), np.clip(f - y, -delta, delta)
    raise ValueError(f"no oracle for the loss {name!r}")

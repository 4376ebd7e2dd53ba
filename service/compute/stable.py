"""Numerically stable elementary functions shared by activations, losses and pairings.

Every function takes and returns float64 arrays of any shape and never overflows internally:
each evaluates exp only at non-positive arguments, so the only overflow left is a true one.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]


def sigmoid_pair(z: Array) -> tuple[Array, Array]:
    """Return (σ(z), σ(−z)) from one exp: e = e^(−|z|) never overflows.

    σ(−z) = 1 − σ(z) is computed directly rather than by subtraction, which cancels for z ≫ 0.
    """
    e = np.exp(-np.abs(z))
    one_plus = 1.0 + e
    big = 1.0 / one_plus  # σ(|z|)
    small = e / one_plus  # σ(−|z|), exact down to subnormals
    pos = z >= 0
    return np.where(pos, big, small), np.where(pos, small, big)


def sigmoid(z: Array) -> Array:
    """σ(z) = 1/(1+e^(−z)), two-branch form (as scipy.special.expit)."""
    return sigmoid_pair(z)[0]


def softplus(z: Array) -> Array:
    """log(1 + e^z) without overflow: logaddexp(0, z) = max(z, 0) + log1p(e^(−|z|))."""
    return np.logaddexp(0.0, z)


def log_sigmoid(z: Array) -> Array:
    """log σ(z) = −softplus(−z), finite for every finite z."""
    return -softplus(-z)


def sech2(z: Array) -> Array:
    """1/cosh²(z) = 4e/(1+e)² with e = e^(−2|z|); 1 − tanh² cancels for |z| ≳ 10."""
    with np.errstate(over="ignore"):  # −2|z| = −inf past 8.9e307: e = 0, exactly right
        e = np.exp(-2.0 * np.abs(z))
    return 4.0 * e / ((1.0 + e) * (1.0 + e))


def log_softplus(z: Array) -> Array:
    """log(softplus(z)), finite where softplus(z) underflows to 0 (z below about −745).

    For z < −37, softplus(z) = e^z (1 − e^z/2 + …) and the correction is below half an ulp of z,
    so log softplus(z) = z there.
    """
    out = np.empty_like(z)
    low = z < -37.0
    out[low] = z[low]
    out[~low] = np.log(softplus(z[~low]))
    return out


def sigmoid_over_softplus(z: Array) -> Array:
    """σ(z)/softplus(z), which tends to 1 as z → −∞ where both factors underflow."""
    out = np.empty_like(z)
    low = z < -37.0
    t = np.exp(z[low])
    # σ/softplus = t / ((1+t) log1p(t)) and t/log1p(t) = 1 + t/2 + O(t²): below ulp at z < −37.
    out[low] = 1.0 / (1.0 + t)
    zz = z[~low]
    out[~low] = sigmoid(zz) / softplus(zz)
    return out


def shifted_rows(z: Array) -> tuple[Array, Array, Array]:
    """(max of each row (m,), its column (m,), z − max (m, k)); a row spanning > 1.8e308 gives −inf."""
    arg = np.argmax(z, axis=1)
    rows = np.arange(z.shape[0])
    mx = z[rows, arg]
    with np.errstate(over="ignore"):
        return mx, arg, z - mx[:, None]


def logsumexp_rows(z: Array) -> Array:
    """log Σ_k e^(z_k) for each row of z (m×k) = max + log1p(Σ_{l≠argmax} e^(z_l − max))."""
    mx, arg, shifted = shifted_rows(z)
    return mx + log1p_others(shifted, arg)


def log1p_others(shifted: Array, arg: Array) -> Array:
    """log(1 + Σ_{l≠argmax} e^(z_l − max)) per row: log1p keeps the small sum's digits."""
    e = np.exp(shifted)
    e[np.arange(e.shape[0]), arg] = 0.0
    return np.log1p(np.sum(e, axis=1))


def softmax_rows(z: Array) -> Array:
    """e^(z_k)/Σ_l e^(z_l) for each row of z (m×k); subtracting the max keeps exp ≤ 1."""
    _, _, shifted = shifted_rows(z)
    e = np.exp(shifted)
    return e / np.sum(e, axis=1, keepdims=True)


def complement_rows(f: Array) -> Array:
    """1 − f_k for each entry of softmax rows f; at each row's largest entry it is the sum of the
    others, since 1 − f_k cancels where f_k ≈ 1."""
    c = 1.0 - f
    arg = np.argmax(f, axis=1)
    rows = np.arange(f.shape[0])
    others = f.copy()
    others[rows, arg] = 0.0
    c[rows, arg] = np.sum(others, axis=1)
    return c

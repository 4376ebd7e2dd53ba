"""Neural networks: several layers, trained by backpropagation (docs/design/math.md, "Neural networks").

Layer l (1-based, as the course writes it): z[l] = a[l−1] W[l] + b[l], a[l] = g[l](z[l]), a[0] = X.
Backward: δ[L] = ∂L/∂z[L] (f − y for a canonical output pairing, from the pairing's stable kernel);
∂J/∂W[l] = (1/m) a[l−1]ᵀ δ[l] + ∂R/∂W[l]; ∂J/∂b[l] = (1/m) Σ_i δ[l]_i;
δ[l−1] = (δ[l] W[l]ᵀ) ⊙ g'[l−1](z[l−1]).

Shapes: X (m, n); W[l] (n_{l−1}, n_l); b[l] (n_l,); z[l], a[l], δ[l] (m, n_l). The output layer has
one unit for a scalar activation (then f and y are (m,)) or k ≥ 2 units with softmax.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from service.compute.activations import Activation
from service.compute.errors import DomainError, NonFiniteResult, ShapeError
from service.compute.models import Regularization, _mean, prepare_targets, target_violations
from service.compute.models import _require_finite as _finite
from service.compute.models import _require_finite_gradient as _finite_gradient
from service.compute.pairings import Pairing
from service.compute.stable import Array


@dataclass
class NetworkObjective:
    """Hidden activations, the output pairing, parameters per layer and data (y one-hot for softmax)."""

    hidden: list[Activation]  # g[1] … g[L−1]
    pairing: Pairing  # g[L] with the loss
    Ws: list[Array]
    bs: list[Array]
    X: Array
    y: Array
    regularization: Regularization | None = None

    @property
    def m(self) -> int:
        return int(self.X.shape[0])

    @property
    def depth(self) -> int:
        return len(self.Ws)

    def activation(self, layer: int) -> Activation:
        """g[layer], 1-based."""
        return self.hidden[layer - 1] if layer < self.depth else self.pairing.activation

    @property
    def parameter_count(self) -> int:
        return sum(W.size + b.size for W, b in zip(self.Ws, self.bs, strict=True))


@dataclass
class NetworkEvaluation:
    loss: float
    grad_Ws: list[Array]
    grad_bs: list[Array]
    zs: list[Array]  # z[1] … z[L], each (m, n_l)
    activations: list[Array]  # a[0] = X, a[1] … a[L]
    deltas: list[Array]  # δ[1] … δ[L], each (m, n_l)
    per_sample_loss: Array
    data_loss: float
    regularization_loss: float
    grad_W_regularization: list[Array] | None


def build_network(
    hidden: list[Activation],
    pairing: Pairing,
    Ws: list[Any],
    bs: list[Any],
    X: Any,
    y: Any,
    regularization: Regularization | None = None,
) -> NetworkObjective:
    """Check shapes and targets (a guard when used as a library) and build a NetworkObjective."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ShapeError("X must be a non-empty m×n matrix", ("data", "X"))
    if len(Ws) != len(bs) or len(Ws) != len(hidden) + 1 or not Ws:
        raise ShapeError("one W and one b per layer, and one activation per hidden layer", ("parameters", "layers"))
    Ws_a = [np.asarray(W, dtype=np.float64) for W in Ws]
    bs_a = [np.asarray(b, dtype=np.float64) for b in bs]
    width = X.shape[1]
    for i, (W, b) in enumerate(zip(Ws_a, bs_a, strict=True)):
        if W.ndim != 2 or W.shape[0] != width or W.shape[1] < 1:
            raise ShapeError(f"W must be {width}×n_out", ("parameters", "layers", i, "W"))
        if b.shape != (W.shape[1],):
            raise ShapeError(f"b must have {W.shape[1]} entries", ("parameters", "layers", i, "b"))
        width = W.shape[1]
    k = width
    if pairing.vector and k < 2:
        raise ShapeError("a softmax output layer needs k ≥ 2 units", ("parameters", "layers", len(Ws_a) - 1, "W"))
    if not pairing.vector and k != 1:
        raise ShapeError(
            f"{pairing.activation.name} gives one output: the last layer needs 1 unit",
            ("parameters", "layers", len(Ws_a) - 1, "W"),
        )
    y = np.asarray(y, dtype=np.float64)
    if y.ndim not in ((1, 2) if pairing.vector else (1,)) or y.shape[0] != X.shape[0]:
        raise ShapeError(f"y must have m = {X.shape[0]} entries (the rows of X)", ("data", "y"))
    for arr in (X, y, *Ws_a, *bs_a):
        if not np.all(np.isfinite(arr)):
            raise DomainError("every number must be finite", ())
    bad = target_violations(pairing, y, k)
    if bad:
        idx, why = bad[0]
        raise DomainError(why, ("data", "y", *idx), examples=sorted({i[0] for i, _ in bad if i}))
    return NetworkObjective(hidden, pairing, Ws_a, bs_a, X, prepare_targets(pairing, y, k), regularization)


def forward(
    net: NetworkObjective, Ws: list[Array] | None = None, bs: list[Array] | None = None
) -> tuple[list[Array], list[Array], Array, Array]:
    """(z[1..L], a[0..L], L per example, δ[L]), each checked to be finite."""
    Ws = net.Ws if Ws is None else Ws
    bs = net.bs if bs is None else bs
    a = net.X
    zs: list[Array] = []
    acts: list[Array] = [a]
    for layer, (W, b) in enumerate(zip(Ws, bs, strict=True), start=1):
        with np.errstate(over="ignore", invalid="ignore"):
            z = a @ W + b
        _finite(f"z[{layer}]", z, f"a[{layer - 1}] W[{layer}] + b[{layer}] overflows float64")
        zs.append(z)
        if layer < len(Ws):
            a = net.activation(layer).value(z)
            _finite(f"a[{layer}]", a, "the activation overflows float64 (e^z for z > 709.78)")
            acts.append(a)
    z_out = zs[-1] if net.pairing.vector else zs[-1][:, 0]
    f, L, delta = net.pairing.forward_backward(z_out, net.y)
    _finite("f", f, "the output activation overflows float64 (e^z for z > 709.78)")
    _finite("per-sample loss", L, "L(f, y) overflows float64")
    _finite("dL/dz", delta, "dL/dz overflows float64")
    acts.append(f if net.pairing.vector else f[:, None])
    return zs, acts, L, delta if net.pairing.vector else delta[:, None]


def _reg_value(net: NetworkObjective, Ws: list[Array]) -> float:
    reg = net.regularization
    if reg is None:
        return 0.0
    total = 0.0
    for W in Ws:
        total += reg.value(W, net.m)
    return total


def cost(net: NetworkObjective, Ws: list[Array] | None = None, bs: list[Array] | None = None) -> float:
    """J = (1/m) Σ L + R(W[1..L]) at the given parameters (the objective's by default)."""
    Ws = net.Ws if Ws is None else Ws
    _, _, L, _ = forward(net, Ws, bs)
    with np.errstate(over="ignore"):
        J = _mean(L) + _reg_value(net, Ws)
    if not np.isfinite(J):
        raise NonFiniteResult("loss", [], "J overflows float64")
    return J


def evaluate(net: NetworkObjective) -> NetworkEvaluation:
    """Loss and gradients of every layer by backpropagation, and the arrays of both passes (which
    the breakdown, built by the caller, reads)."""
    m = net.m
    zs, acts, L, delta = forward(net)
    data_loss = _mean(L)
    reg = net.regularization
    reg_loss = _reg_value(net, net.Ws)
    deltas: list[Array] = [delta]
    grad_Ws: list[Array] = []
    grad_bs: list[Array] = []
    reg_grads: list[Array] | None = [] if reg is not None else None
    for layer in range(net.depth, 0, -1):
        d = deltas[0]
        with np.errstate(over="ignore", invalid="ignore"):
            gW = acts[layer - 1].T @ d / m
            if not np.all(np.isfinite(gW)):  # the sum overflowed although the mean may not: scale first
                gW = acts[layer - 1].T @ (d / m)
            gb = np.mean(d, axis=0)
            if not np.all(np.isfinite(gb)):
                gb = np.sum(d / m, axis=0)
            if reg is not None and reg_grads is not None:
                rg = reg.gradient(net.Ws[layer - 1], m)
                reg_grads.insert(0, rg)
                gW = gW + rg
        _finite_gradient(f"gradients.layers.{layer - 1}.W", gW, f"dJ/dW[{layer}]")
        _finite_gradient(f"gradients.layers.{layer - 1}.b", gb, f"dJ/db[{layer}]")
        grad_Ws.insert(0, gW)
        grad_bs.insert(0, gb)
        if layer > 1:
            g = net.activation(layer - 1)
            with np.errstate(over="ignore", invalid="ignore"):
                back = (d @ net.Ws[layer - 1].T) * g.derivative(zs[layer - 2], acts[layer - 1])
            _finite(f"delta[{layer - 1}]", back, "δ overflows float64")
            deltas.insert(0, back)
    loss = data_loss + reg_loss
    if not np.isfinite(loss):
        raise NonFiniteResult("loss", [], "J overflows float64")
    return NetworkEvaluation(loss, grad_Ws, grad_bs, zs, acts, deltas, L, data_loss, reg_loss, reg_grads)


def explain_size(m: int, widths: list[int], k: int) -> int:
    """Numbers in a network breakdown: z, a and δ per layer and example, and the output factors."""
    # per layer: z, a, δ and g'(z) in `layers`, z, a and δ again in the steps; the output's factors twice
    per_layer = sum(7 * w for w in widths)
    out = 2 * (4 * k + 1 + (k * k if k > 1 else 1))
    return m * (per_layer + out)

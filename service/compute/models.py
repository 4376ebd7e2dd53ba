"""Models: one abstraction for every model kind — a single-layer model is a network of depth one.

Layer l (1-based, as the course writes it): z[l] = a[l−1] W[l] + b[l], a[l] = g[l](z[l]), a[0] = X;
the output layer's activation is the pairing's, and the pairing's stable kernel gives f, L and
δ[L] = ∂L/∂z[L] (f − y for a canonical pairing). Backward: ∂J/∂W[l] = (1/m) a[l−1]ᵀ δ[l] + ∂R/∂W[l],
∂J/∂b[l] = (1/m) Σ_i δ[l]_i, δ[l−1] = (δ[l] W[l]ᵀ) ⊙ g'[l−1](z[l−1]) (docs/design/math.md).

Shapes: X (m, n); W[l] (n_{l−1}, n_l); b[l] (n_l,). A single-layer model (the presets and
`single_layer`) is one layer whose parameters keep the course's shapes: for one output w is (n,), b a
number and z, f, y are (m,); for k outputs (softmax) w is (n, k), b (k,). A `neural_network`'s output
layer has one unit as a column (W (n_{L−1}, 1), b (1,)) or k ≥ 2 units with softmax. Each kind keeps the
shapes its answers were always computed in, so every number is the same as before the two were one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from service.compute.activations import Activation
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
    """The objective J of a model of any kind: the model, its parameters and its data, as float64 arrays
    (y already one-hot for softmax). A single-layer model is a network of depth one.

    `Ws[l-1]`, `bs[l-1]` are layer l's parameters; `hidden` holds g[1] … g[L−1] (empty for depth one);
    `pairing` is the output layer's activation with the loss. `model` is the kind the request named,
    which decides the shapes of the answer (a `neural_network` of one layer answers as a network).
    """

    model: ModelName
    pairing: Pairing
    X: Array
    y: Array
    Ws: list[Array]
    bs: list[Array]  # a single-layer model with one output: b has shape ()
    hidden: list[Activation] = field(default_factory=list)
    regularization: Regularization | None = None

    @property
    def m(self) -> int:
        return int(self.X.shape[0])

    @property
    def n(self) -> int:
        return int(self.X.shape[1])

    @property
    def depth(self) -> int:
        return len(self.Ws)

    @property
    def is_network(self) -> bool:
        """Answers as a network (gradients per layer, the per-layer breakdown), whatever its depth."""
        return self.model is ModelName.NEURAL_NETWORK

    @property
    def w(self) -> Array:
        """The output layer's weights: a single-layer model's w."""
        return self.Ws[-1]

    @property
    def b(self) -> Array:
        """The output layer's bias: a single-layer model's b."""
        return self.bs[-1]

    @property
    def k(self) -> int:
        """Outputs: the output layer's units."""
        return int(self.Ws[-1].shape[1]) if self.Ws[-1].ndim == 2 else 1

    def activation(self, layer: int) -> Activation:
        """g[layer], 1-based."""
        return self.hidden[layer - 1] if layer < self.depth else self.pairing.activation

    @property
    def parameter_count(self) -> int:
        return sum(W.size + b.size for W, b in zip(self.Ws, self.bs, strict=True))

    @property
    def weight_count(self) -> int:
        """Σ_l n_{l−1}·n_l: the multiply-adds of one forward pass per example."""
        return sum(W.size for W in self.Ws)

    def with_parameters(self, Ws: list[Array], bs: list[Array]) -> Objective:
        return Objective(self.model, self.pairing, self.X, self.y, Ws, bs, self.hidden, self.regularization)


def output(a: Array) -> Array:
    """An output-layer array (z, f or δ) in the pairing's shape: a column of one unit becomes (m,)."""
    return a[:, 0] if a.ndim == 2 and a.shape[1] == 1 else a


@dataclass
class Gradients:
    """J and its gradients per layer, with the data and regularization parts apart."""

    loss: float
    grad_Ws: list[Array]
    grad_bs: list[Array]
    data_loss: float
    regularization_loss: float
    grad_Ws_data: list[Array]
    grad_W_regularization: list[Array] | None

    # a depth-one model's names (the output layer's for any depth)
    @property
    def grad_w(self) -> Array:
        return self.grad_Ws[-1]

    @property
    def grad_b(self) -> Array:
        return self.grad_bs[-1]

    @property
    def grad_w_data(self) -> Array:
        return self.grad_Ws_data[-1]

    @property
    def grad_w_regularization(self) -> Array | None:
        return None if self.grad_W_regularization is None else self.grad_W_regularization[-1]


@dataclass
class Evaluation(Gradients):
    """The result: J, its gradients, and the per-example arrays of both passes, per layer."""

    zs: list[Array]  # z[1] … z[L], in the layer's shape
    activations: list[Array]  # a[0] = X, a[1] … a[L] (a[L] = f in the shape of z[L])
    deltas: list[Array]  # δ[1] … δ[L] (δ[L] = ∂L/∂z in the shape of z[L])
    per_sample_loss: Array

    @property
    def z(self) -> Array:
        """The output layer's z in the pairing's shape."""
        return output(self.zs[-1])

    @property
    def f(self) -> Array:
        return output(self.activations[-1])

    @property
    def dL_dz(self) -> Array:
        return output(self.deltas[-1])


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


def _data_matrix(X: Any) -> Array:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ShapeError("X must be a non-empty m×n matrix", ("data", "X"))
    return X


def _checked_targets(pairing: Pairing, y: Array, k: int) -> Array:
    """y within the loss's domain (DomainError at the first bad one), in the shape of f."""
    bad = target_violations(pairing, y, k)
    if bad:
        idx, why = bad[0]
        raise DomainError(why, ("data", "y", *idx), examples=sorted({i[0] for i, _ in bad if i}))
    return prepare_targets(pairing, y, k)


def build_objective(
    model: ModelName,
    pairing: Pairing,
    X: Any,
    y: Any,
    w: Any,
    b: Any,
    regularization: Regularization | None = None,
) -> Objective:
    """A single-layer model (a network of depth one) with its shapes and target domains checked (a
    guard when used as a library)."""
    X = _data_matrix(X)
    y = np.asarray(y, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    b_arr = np.asarray(b, dtype=np.float64)
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
    targets = _checked_targets(pairing, y, k)
    if regularization is not None and not (regularization.lam >= 0 and np.isfinite(regularization.lam)):
        raise DomainError("lambda must be a finite number ≥ 0", ("regularization", "lambda"))
    return Objective(model, pairing, X, targets, [w], [b_arr], [], regularization)


def build_network(
    hidden: list[Activation],
    pairing: Pairing,
    Ws: list[Any],
    bs: list[Any],
    X: Any,
    y: Any,
    regularization: Regularization | None = None,
) -> Objective:
    """A neural_network with its shapes and targets checked (a guard when used as a library)."""
    X = _data_matrix(X)
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
    targets = _checked_targets(pairing, y, k)
    return Objective(ModelName.NEURAL_NETWORK, pairing, X, targets, Ws_a, bs_a, hidden, regularization)


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


def forward(
    model: Objective, Ws: list[Array] | None = None, bs: list[Array] | None = None
) -> tuple[list[Array], list[Array], Array, Array]:
    """(z[1..L], a[0..L], L per example, δ[L]), each checked to be finite; a[L] = f and δ[L] in the
    shape of z[L]. Errors name the quantities as each kind's answers do (z, or z[l] in a network)."""
    Ws = model.Ws if Ws is None else Ws
    bs = model.bs if bs is None else bs
    network = model.is_network
    a = model.X
    zs: list[Array] = []
    acts: list[Array] = [a]
    for layer, (W, b) in enumerate(zip(Ws, bs, strict=True), start=1):
        with np.errstate(over="ignore", invalid="ignore"):
            z = a @ W + b
        if network:
            _require_finite(f"z[{layer}]", z, f"a[{layer - 1}] W[{layer}] + b[{layer}] overflows float64")
        else:
            _require_finite("z", z, "w·x + b overflows float64")
        zs.append(z)
        if layer < len(Ws):
            a = model.activation(layer).value(z)
            _require_finite(f"a[{layer}]", a, "the activation overflows float64 (e^z for z > 709.78)")
            acts.append(a)
    f, L, delta = model.pairing.forward_backward(output(zs[-1]), model.y)
    which = "the output activation" if network else "the activation"
    _require_finite("f", f, f"{which} overflows float64 (e^z for z > 709.78)")
    _require_finite("per-sample loss", L, "L(f, y) overflows float64")
    _require_finite("dL/dz", delta, "dL/dz overflows float64")
    column = zs[-1].ndim != f.ndim  # one output unit of a network: a column
    acts.append(f[:, None] if column else f)
    return zs, acts, L, delta[:, None] if column else delta


def _mean(L: Array) -> float:
    with np.errstate(over="ignore"):
        v = float(np.mean(L))
        if not np.isfinite(v):  # the sum overflowed although every term and the mean may not
            v = float(np.sum(L / L.shape[0]))
    return v


def _regularization_loss(model: Objective, Ws: list[Array]) -> float:
    """R summed over the layers' weights (0 without regularization)."""
    reg = model.regularization
    total = 0.0
    if reg is not None:
        with np.errstate(over="ignore", invalid="ignore"):
            for W in Ws:
                total += reg.value(W, model.m)
    return total


def cost(model: Objective, Ws: list[Array] | None = None, bs: list[Array] | None = None) -> float:
    """J = (1/m) Σ L + R(W[1..L]) at the given parameters (the model's by default)."""
    Ws = model.Ws if Ws is None else Ws
    _, _, L, _ = forward(model, Ws, bs)
    J = _mean(L)
    if model.regularization is not None:
        with np.errstate(over="ignore"):
            J += _regularization_loss(model, Ws)
    if not np.isfinite(J):
        raise NonFiniteResult("loss", [], "J overflows float64")
    return J


def _data_gradients(a: Array, delta: Array, m: int) -> tuple[Array, Array]:
    """(1/m) aᵀ δ and (1/m) Σ δ, scaled first where the sum overflows although the mean may not."""
    with np.errstate(over="ignore", invalid="ignore"):
        gW = a.T @ delta / m
        if not np.all(np.isfinite(gW)):
            gW = a.T @ (delta / m)
        gb = np.mean(delta, axis=0)
        if not np.all(np.isfinite(gb)):
            gb = np.sum(delta / m, axis=0)
    return gW, np.asarray(gb)


def _regularized(
    model: Objective, layer: int, gW_data: Array, gb: Array, reg_loss: float, *, data_checked: bool = False
) -> tuple[Array, Array | None]:
    """Layer `layer`'s dJ/dW (data term plus ∂R/∂W) and ∂R/∂W, each checked to be finite and named as
    each kind's answers name them (gradients.w, or gradients.layers.<i>.W in a network). A
    single-layer model checks the data term, then R, then the sum; `data_checked` skips the first
    when the caller has made it."""
    reg = model.regularization
    if not model.is_network:
        if not data_checked:
            _require_finite_gradient("gradients.w", gW_data, "the data term of dJ/dw")
            _require_finite_gradient("gradients.b", np.atleast_1d(gb), "dJ/db")
        if reg is not None and not np.isfinite(reg_loss):
            formula = "λ/(2m) Σ w²" if reg.kind == "l2" else "(λ/m) Σ |w|"
            raise NonFiniteResult("regularization term", [], f"{formula} overflows float64")
    gW, rg = gW_data, None
    if reg is not None:
        with np.errstate(over="ignore", invalid="ignore"):
            rg = reg.gradient(model.Ws[layer - 1], model.m)
            gW = gW_data + rg
    if model.is_network:
        _require_finite_gradient(f"gradients.layers.{layer - 1}.W", gW, f"dJ/dW[{layer}]")
        _require_finite_gradient(f"gradients.layers.{layer - 1}.b", gb, f"dJ/db[{layer}]")
    elif reg is not None:
        _require_finite_gradient("gradients.w", gW, "dJ/dw")
    return gW, rg


def _total(data_loss: float, reg_loss: float) -> float:
    loss = data_loss + reg_loss
    if not np.isfinite(loss):
        raise NonFiniteResult("loss", [], "J overflows float64")
    return loss


def evaluate(model: Objective) -> Evaluation:
    """J and the gradients of every layer by backpropagation, and the per-example arrays of both
    passes (which the breakdown, the check and the grading, built by the callers, read)."""
    m, reg = model.m, model.regularization
    zs, acts, L, delta = forward(model)
    data_loss = _mean(L)
    reg_loss = _regularization_loss(model, model.Ws)
    deltas: list[Array] = [delta]
    grad_Ws: list[Array] = []
    grad_bs: list[Array] = []
    data_Ws: list[Array] = []
    reg_grads: list[Array] | None = [] if reg is not None else None
    for layer in range(model.depth, 0, -1):
        d = deltas[0]
        gW_data, gb = _data_gradients(acts[layer - 1], d, m)
        gW, rg = _regularized(model, layer, gW_data, gb, reg_loss)
        grad_Ws.insert(0, gW)
        grad_bs.insert(0, gb)
        data_Ws.insert(0, gW_data)
        if reg_grads is not None and rg is not None:
            reg_grads.insert(0, rg)
        if layer > 1:
            g = model.activation(layer - 1)
            with np.errstate(over="ignore", invalid="ignore"):
                back = (d @ model.Ws[layer - 1].T) * g.derivative(zs[layer - 2], acts[layer - 1])
            _require_finite(f"delta[{layer - 1}]", back, "δ overflows float64")
            deltas.insert(0, back)
    loss = _total(data_loss, reg_loss)
    return Evaluation(loss, grad_Ws, grad_bs, data_loss, reg_loss, data_Ws, reg_grads, zs, acts, deltas, L)


def gradients(model: Objective) -> Gradients:
    """J and its gradients without the per-example arrays.

    The one dispatch to the fused kernel (fused.py `summarize`): a single-layer model — depth one, in
    the course's shapes — needs no per-example arrays when no breakdown and no check is asked, so J
    and the gradients are sums made in one pass over X, without allocating z, f, L and ∂L/∂z. A
    network (even of depth one, whose output is a column) backpropagates through `evaluate`, as
    does anything not finite on the way, which then raises the same errors as always.
    """
    if model.depth == 1 and not model.is_network:
        sums = summarize(model.X, model.y, model.w, model.b, model.pairing)
        if sums is not None:
            m = model.m
            reg_loss = _regularization_loss(model, model.Ws)
            # summarize checked the sums finite; dividing by m ≥ 1 keeps them finite
            gW_data, gb = sums.grad_w / m, np.asarray(sums.grad_b / m)
            gW, rg = _regularized(model, 1, gW_data, gb, reg_loss, data_checked=True)
            loss = _total(sums.loss / m, reg_loss)
            return Gradients(loss, [gW], [gb], sums.loss / m, reg_loss, [gW_data], None if rg is None else [rg])
    return evaluate(model)


def explain_size(m: int, k: int, layer_widths: list[int] | tuple[int, ...] = ()) -> int:
    """How many numbers a breakdown holds, for any model: per example, the output's factors twice (in
    per_sample and in the steps: z, f, ∂L/∂f, ∂L/∂z with k each, L, and ∂f/∂z, k² for softmax), and
    for a network's per-layer breakdown 7 per unit of every layer (z, a, δ and g'(z) in `layers`, z, a
    and δ again in the steps). A single-layer model's breakdown has no per-layer part: no widths."""
    per_output = 4 * k + 1 + (k * k if k > 1 else 1)
    return m * (7 * sum(layer_widths) + 2 * per_output)

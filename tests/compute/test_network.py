"""Neural networks (docs/design/math.md, "Neural networks"): J and every ∂J/∂W[l], ∂J/∂b[l] from backpropagation
against autograd of a plain composed cost written here; central differences and the kink report; a
depth-1 network against the single-layer model; the per-layer breakdown and its factors; extreme inputs.

The plain cost composes the oracles' textbook formulas (tests/compute/oracles.py) layer by layer in
autograd.numpy; nothing numeric is read from the code under test.
"""

from __future__ import annotations

from typing import Any

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import elementwise_grad, grad

from service.compute.activations import ACTIVATIONS, ActivationName
from service.compute.breakdown import build_breakdown
from service.compute.errors import DomainError, NonFiniteResult, ShapeError
from service.compute.finite_differences import STEP, verify
from service.compute.losses import LOSSES, LossName
from service.compute.model_names import ModelName
from service.compute.models import Objective, Regularization, build_network, build_objective, cost, evaluate
from service.compute.pairings import CANONICAL, compatibility, make_pairing
from tests.compute import oracles

pytestmark = pytest.mark.filterwarnings("error")

RTOL, ATOL = 1e-9, 1e-12
LAMBDA = 0.7
KINK_MARGIN = 1e-4  # |z| of relu units, |f − y| for absolute_error, |W| for l1: kept this far from kinks
Z_LIMIT = 6.0  # every |z| of a random network stays below this (moderate inputs for exp and the plain formulas)

HIDDEN = [a for a in ActivationName if not ACTIVATIONS[a].vector]
PAIRINGS = oracles.compatible_pairings()
SEEDS = (0, 1, 2, 3)
REGS: tuple[str | None, ...] = (None, "l1", "l2")


def _architecture(index: int, seed: int) -> tuple[int, list[ActivationName]]:
    """Depth 1–4 and hidden activations drawn from every scalar activation (deterministic per case)."""
    rng = np.random.default_rng(10_000 + 97 * index + seed)
    depth = 1 + (index + seed) % 4  # every depth for every few pairings
    hidden = [HIDDEN[int(i)] for i in rng.integers(0, len(HIDDEN), depth - 1)]
    return depth, hidden


def _cases() -> list[Any]:
    out = []
    for i, case in enumerate(PAIRINGS):
        a, lo, p = case
        for seed in SEEDS:
            depth, hidden = _architecture(i, seed)
            reg = REGS[(i + seed) % 3]
            cid = f"{oracles.pairing_id(case)}-d{depth}-{'-'.join(hidden) or 'none'}-{reg or 'noreg'}-s{seed}"
            out.append(pytest.param(a, lo, p, hidden, reg, 1000 * i + seed, id=cid))
    return out


CASES = _cases()


def test_cases_cover_every_pairing_depth_hidden_activation_and_regularization() -> None:
    accepted = {(a, lo) for a in ActivationName for lo in LossName if compatibility(a, lo)[0]}
    seen = {(c.values[0], c.values[1]) for c in CASES}
    assert seen == accepted
    assert {len(c.values[3]) + 1 for c in CASES} == {1, 2, 3, 4}
    assert {h for c in CASES for h in c.values[3]} == set(HIDDEN)
    assert {c.values[4] for c in CASES} == {None, "l1", "l2"}
    assert any(c.values[1] is LossName.HUBER and c.values[2] for c in CASES)


# --- a random network and its plain cost ---------------------------------------------------------


def plain_forward(acts: list[str], Ws: list[Any], bs: list[Any], X: Any) -> tuple[list[Any], list[Any]]:
    """z[1..L] and a[0..L] from the plain formulas (works on numpy arrays and on autograd boxes)."""
    a = X
    zs, As = [], [X]
    for name, W, b in zip(acts, Ws, bs, strict=True):
        z = anp.dot(a, W) + b
        a = oracles.plain_activation(name, z)
        zs.append(z)
        As.append(a)
    return zs, As


def plain_cost(
    acts: list[str], loss: str, params: dict[str, float], X: Any, Y: Any, reg: Regularization | None, vector: bool
) -> Any:
    """J(Ws, bs) = mean_i L(a[L]_i, y_i) + R(W[1..L]) composed from the plain formulas."""
    m = X.shape[0]
    depth = len(acts)

    def J(theta: tuple[Any, ...]) -> Any:
        Ws, bs = list(theta[:depth]), list(theta[depth:])
        _, As = plain_forward(acts, Ws, bs, X)
        f = As[-1] if vector else As[-1][:, 0]
        out = anp.mean(oracles.plain_loss(loss, f, Y, params))
        for W in Ws:
            if reg is not None and reg.kind == "l2":
                out = out + reg.lam / (2 * m) * anp.sum(W**2)
            elif reg is not None:
                out = out + reg.lam / m * anp.sum(anp.abs(W))
        return out

    return J


class NetCase:
    """A random network (shapes, parameters, data) away from kinks, and its plain cost."""

    def __init__(
        self,
        activation: ActivationName,
        loss: LossName,
        params: dict[str, float],
        hidden: list[ActivationName],
        reg: str | None,
        seed: int,
    ) -> None:
        rng = np.random.default_rng(seed)
        self.activation, self.loss, self.params, self.hidden = activation, loss, params, list(hidden)
        self.acts = [str(h) for h in hidden] + [str(activation)]
        self.vector = oracles.is_vector(activation)
        self.reg = None if reg is None else Regularization(reg, LAMBDA)  # type: ignore[arg-type]
        for _ in range(2000):
            m, n = int(rng.integers(1, 9)), int(rng.integers(1, 6))
            k = int(rng.integers(2, 6)) if self.vector else 1
            widths = [int(w) for w in rng.integers(1, 6, len(hidden))] + [k]
            X = rng.normal(0.0, 1.0, (m, n))
            Ws, bs, fan_in = [], [], n
            for w in widths:
                Ws.append(rng.normal(0.0, 1.0 / np.sqrt(fan_in), (fan_in, w)))
                bs.append(rng.normal(0.0, 0.3, w))
                fan_in = w
            if self.vector and seed % 2 == 0:
                y = rng.integers(0, k, m)
                Y = np.eye(k)[y]
            else:
                y = oracles.sample_targets(LOSSES[loss].targets, rng, m, k if self.vector else None)
                Y = y
            zs, As = plain_forward(self.acts, Ws, bs, X)
            f = As[-1] if self.vector else As[-1][:, 0]
            if not all(np.all(np.abs(z) < Z_LIMIT) for z in zs):
                continue
            if not all(
                np.all(oracles.activation_kink_distance(name, z) > KINK_MARGIN)
                for name, z in zip(self.acts, zs, strict=True)
            ):
                continue
            if not np.all(oracles.loss_kink_distance(loss, f, Y) > KINK_MARGIN):
                continue
            if reg == "l1" and not all(np.all(np.abs(W) > KINK_MARGIN) for W in Ws):
                continue
            break
        else:
            raise AssertionError("could not draw a network away from kinks")
        self.m, self.X, self.y, self.Y, self.Ws, self.bs, self.widths = m, X, y, Y, Ws, bs, widths
        self.zs, self.As = zs, As
        self.pairing = make_pairing(activation, loss, params)
        self.net = build_network([ACTIVATIONS[h] for h in hidden], self.pairing, Ws, bs, X, y, self.reg)
        self.J = plain_cost(self.acts, str(loss), params, X, Y, self.reg, self.vector)

    @property
    def theta(self) -> tuple[Any, ...]:
        return (*self.Ws, *self.bs)


# --- 1. backpropagation against autograd ---------------------------------------------------------


@pytest.mark.parametrize(("activation", "loss", "params", "hidden", "reg", "seed"), CASES)
def test_matches_autograd_of_plain_composed_cost(
    activation: ActivationName,
    loss: LossName,
    params: dict[str, float],
    hidden: list[ActivationName],
    reg: str | None,
    seed: int,
) -> None:
    c = NetCase(activation, loss, params, hidden, reg, seed)
    ev = evaluate(c.net)
    J = c.J(c.theta)
    assert isinstance(ev.loss, float)
    np.testing.assert_allclose(ev.loss, J, rtol=RTOL, atol=ATOL)
    g = grad(c.J)(c.theta)
    depth = len(c.Ws)
    assert len(ev.grad_Ws) == len(ev.grad_bs) == depth
    for layer in range(depth):
        assert ev.grad_Ws[layer].shape == c.Ws[layer].shape
        assert ev.grad_bs[layer].shape == c.bs[layer].shape
        np.testing.assert_allclose(ev.grad_Ws[layer], g[layer], rtol=RTOL, atol=ATOL, err_msg=f"dJ/dW[{layer + 1}]")
        np.testing.assert_allclose(
            ev.grad_bs[layer], g[depth + layer], rtol=RTOL, atol=ATOL, err_msg=f"dJ/db[{layer + 1}]"
        )
    # the forward arrays, and the split of J into data and regularization terms
    for layer in range(depth):
        np.testing.assert_allclose(ev.zs[layer], c.zs[layer], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(ev.activations[layer + 1], c.As[layer + 1], rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(ev.activations[0], c.X)
    if c.reg is None:
        assert ev.regularization_loss == 0.0 and ev.grad_W_regularization is None
    else:
        R = sum(
            LAMBDA / (2 * c.m) * np.sum(W**2) if c.reg.kind == "l2" else LAMBDA / c.m * np.sum(np.abs(W)) for W in c.Ws
        )
        np.testing.assert_allclose(ev.regularization_loss, R, rtol=1e-13)
    np.testing.assert_allclose(ev.loss, ev.data_loss + ev.regularization_loss, rtol=1e-15)
    # cost() at the problem's parameters and elsewhere
    np.testing.assert_allclose(cost(c.net), J, rtol=RTOL, atol=ATOL)
    Ws2 = [0.8 * W + 0.05 for W in c.Ws]
    bs2 = [0.5 * b - 0.1 for b in c.bs]
    np.testing.assert_allclose(cost(c.net, Ws2, bs2), c.J((*Ws2, *bs2)), rtol=RTOL, atol=ATOL)


def test_evaluate_does_not_modify_the_problem() -> None:
    c = NetCase(ActivationName.SIGMOID, LossName.BINARY_CROSS_ENTROPY, {}, [ActivationName.TANH] * 2, "l2", 5)
    saved = [a.copy() for a in (c.net.X, c.net.y, *c.net.Ws, *c.net.bs)]
    build_breakdown(c.net, evaluate(c.net), full=True)
    verify(c.net, evaluate(c.net))
    for a, s in zip((c.net.X, c.net.y, *c.net.Ws, *c.net.bs), saved, strict=True):
        np.testing.assert_array_equal(a, s)


@pytest.mark.parametrize("kind", ["l1", "l2"])
def test_biases_are_never_regularized(kind: str) -> None:
    c = NetCase(ActivationName.IDENTITY, LossName.SQUARED_ERROR, {}, [ActivationName.TANH], None, 11)
    plain = evaluate(c.net)
    net = build_network(c.net.hidden, c.pairing, c.Ws, c.bs, c.X, c.y, Regularization(kind, 2.5))  # type: ignore[arg-type]
    ev = evaluate(net)
    for gb, gb0 in zip(ev.grad_bs, plain.grad_bs, strict=True):
        np.testing.assert_array_equal(gb, gb0)
    assert ev.grad_W_regularization is not None
    for W, gW, gW0, rg in zip(c.Ws, ev.grad_Ws, plain.grad_Ws, ev.grad_W_regularization, strict=True):
        expected = 2.5 / c.m * (W if kind == "l2" else np.sign(W))
        np.testing.assert_allclose(rg, expected, rtol=1e-15)
        np.testing.assert_allclose(gW, gW0 + expected, rtol=1e-15, atol=1e-300)


# --- 2. central differences and the kink report ------------------------------------------------

SMOOTH_HIDDEN = [h for h in HIDDEN if ACTIVATIONS[h].kinks is None]
SMOOTH_PAIRINGS = [
    (a, lo, p)
    for a, lo, p in PAIRINGS
    if ACTIVATIONS[a].kinks is None and lo is not LossName.ABSOLUTE_ERROR and not (lo is LossName.HUBER and p)
]


@pytest.mark.parametrize(
    ("activation", "loss", "params", "seed"),
    [
        pytest.param(a, lo, p, 500 + i, id=oracles.pairing_id((a, lo, p)))
        for i, (a, lo, p) in enumerate(SMOOTH_PAIRINGS)
    ],
)
def test_finite_differences_agree_on_smooth_networks(
    activation: ActivationName, loss: LossName, params: dict[str, float], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    hidden = [SMOOTH_HIDDEN[int(i)] for i in rng.integers(0, len(SMOOTH_HIDDEN), 1 + seed % 3)]
    c = NetCase(activation, loss, params, hidden, REGS[seed % 3], seed)
    ev = evaluate(c.net)
    report = verify(c.net, ev)
    assert report["skipped"] == [] and report["kinks"] == []
    assert report["agrees"] is True
    # one component per weight and bias, in order, analytic values exactly the evaluation's
    expected_names = [
        f"layers[{layer}].{which}" + "".join(f"[{i}]" for i in idx)
        for layer in range(len(c.Ws))
        for which, arr in (("W", c.Ws[layer]), ("b", c.bs[layer]))
        for idx in np.ndindex(arr.shape)
    ]
    assert [comp["parameter"] for comp in report["components"]] == expected_names
    flat = [float(x) for layer in range(len(c.Ws)) for x in (*ev.grad_Ws[layer].ravel(), *ev.grad_bs[layer].ravel())]
    assert [comp["analytic"] for comp in report["components"]] == flat
    # and the numeric values agree with autograd of the plain cost (an independent check of the differences)
    auto = grad(c.J)(c.theta)
    depth = len(c.Ws)
    auto_flat = [float(x) for layer in range(depth) for x in (*auto[layer].ravel(), *auto[depth + layer].ravel())]
    for comp, a in zip(report["components"], auto_flat, strict=True):
        assert comp["relative_error"] < 1e-5, comp
        assert abs(comp["numeric"] - a) <= 1e-5 * max(abs(a), abs(comp["numeric"]), 1e-8) + 1e-9, (comp, a)
    assert report["max_relative_error"] == max(comp["relative_error"] for comp in report["components"])
    assert report["max_relative_error"] < 1e-5


def _relu_net(layer_with_zero: int, loss: str = "squared_error") -> tuple[Objective, int]:
    """A relu network whose z[layer_with_zero] is exactly 0 for example 1 (unit 0), nowhere near 0 elsewhere."""
    X = np.array([[1.0, 2.0], [2.0, -1.0], [0.5, 0.25], [-1.5, 1.0]])
    W1 = np.array([[1.0, -0.75], [0.5, 0.5]])  # X W1 = [[2, 0.25], [1.5, -2], [0.625, -0.25], [-1, 1.625]]
    W2 = np.array([[1.0], [0.5]])
    if layer_with_zero == 1:
        b1, b2 = np.array([-1.5, 0.5]), np.array([0.25])  # z[1] example 1, unit 0: 1.5 − 1.5 = 0
    else:
        # z[1] = [[2.5, 0.75], [2, −1.5], [1.125, 0.25], [−0.5, 2.125]], a[1] W2 = [2.875, 2, 1.25, 1.0625]
        b1, b2 = np.array([0.5, 0.5]), np.array([-2.0])  # z[2] example 1: 2 − 2 = 0
    W3 = np.array([[0.8]])
    b3 = np.array([0.1])
    relu = ACTIVATIONS[ActivationName.RELU]
    net = build_network(
        [relu, relu], make_pairing("identity", loss), [W1, W2, W3], [b1, b2, b3], X, [0.3, -0.2, 0.5, 1.0]
    )
    return net, 1


@pytest.mark.parametrize("layer", [1, 2])
def test_kink_report_lists_the_relu_layer_with_z_exactly_zero(layer: int) -> None:
    net, example = _relu_net(layer)
    ev = evaluate(net)
    z = ev.zs[layer - 1]
    assert z[example, 0] == 0.0  # the construction is exact
    report = verify(net, ev)
    relu_kinks = [k for k in report["kinks"] if "layer" in k["at"]]
    assert len(relu_kinks) == 1, report["kinks"]
    kink = relu_kinks[0]
    assert kink["at"].startswith(f"layer {layer}:"), kink
    assert "z = 0" in kink["at"]
    assert example in kink["examples"] and kink["count"] == len(kink["examples"])
    assert all(np.any(np.abs(z[i]) <= 1e-5 * max(1.0, np.max(np.abs(z)))) for i in kink["examples"])
    # relu'(0) = 0 is the subgradient used (docs/design/math.md: 0 at z = 0, as PyTorch)
    assert ev.deltas[layer - 1][example, 0] == 0.0


def test_no_kink_reported_away_from_zero() -> None:
    c = NetCase(ActivationName.IDENTITY, LossName.SQUARED_ERROR, {}, [ActivationName.RELU] * 2, None, 21)
    assert all(np.min(np.abs(z)) > 1e3 * STEP * max(1.0, np.max(np.abs(z))) for z in evaluate(c.net).zs[:-1])
    assert verify(c.net, evaluate(c.net))["kinks"] == []


def test_kink_report_lists_absolute_error_at_f_equal_y() -> None:
    # depth 2, tanh hidden, identity + absolute_error output; example 0 has f == y exactly
    X = np.array([[0.0], [1.0], [-1.0]])
    tanh = ACTIVATIONS[ActivationName.TANH]
    Ws, bs = [np.array([[1.0]]), np.array([[2.0]])], [np.array([0.0]), np.array([0.5])]
    y = [0.5, -3.0, 3.0]  # f = 2·tanh(x) + 0.5: 0.5 exactly for x = 0
    net = build_network([tanh], make_pairing("identity", "absolute_error"), Ws, bs, X, y)
    ev = evaluate(net)
    assert ev.activations[-1][0, 0] == 0.5
    report = verify(net, ev)
    assert any(0 in k["examples"] and "f = y" in k["at"] for k in report["kinks"]), report["kinks"]


# --- 3. depth 1 is the single-layer model -------------------------------------------------------


@pytest.mark.parametrize("reg", REGS, ids=lambda r: r or "noreg")
@pytest.mark.parametrize(
    ("activation", "loss", "params"), [pytest.param(*case, id=oracles.pairing_id(case)) for case in PAIRINGS]
)
def test_depth_one_equals_the_single_layer_model(
    activation: ActivationName, loss: LossName, params: dict[str, float], reg: str | None
) -> None:
    c = NetCase(activation, loss, params, [], reg, 7000 + len(str(reg)))
    W, b = c.Ws[0], c.bs[0]
    w, b0 = (W, b) if c.vector else (W[:, 0], float(b[0]))
    objective = build_objective(ModelName.SINGLE_LAYER, c.pairing, c.X, c.y, w, b0, c.reg)
    single = evaluate(objective)
    ev = evaluate(c.net)
    tight: dict[str, Any] = {"rtol": 1e-15, "atol": 0.0}
    np.testing.assert_allclose(ev.loss, single.loss, **tight)
    np.testing.assert_allclose(ev.data_loss, single.data_loss, **tight)
    np.testing.assert_allclose(ev.regularization_loss, single.regularization_loss, **tight)
    gW = ev.grad_Ws[0] if c.vector else ev.grad_Ws[0][:, 0]
    gb = ev.grad_bs[0] if c.vector else ev.grad_bs[0][0]
    # gradients: 1 ulp-ish of the terms they sum (a matrix product and a matrix-vector product may round apart)
    scale = np.abs(c.X).T @ np.abs(single.dL_dz) / c.m
    np.testing.assert_allclose(gW, single.grad_w, rtol=1e-15, atol=float(np.max(scale)) * 4 * oracles.EPS)
    np.testing.assert_allclose(
        gb, single.grad_b, rtol=1e-15, atol=float(np.mean(np.abs(single.dL_dz))) * 4 * oracles.EPS
    )
    z = ev.zs[0] if c.vector else ev.zs[0][:, 0]
    np.testing.assert_allclose(z, single.z, rtol=1e-15, atol=float(np.max(np.abs(single.z))) * 4 * oracles.EPS)
    np.testing.assert_allclose(ev.per_sample_loss, single.per_sample_loss, rtol=1e-15, atol=1e-300)
    delta = ev.deltas[0] if c.vector else ev.deltas[0][:, 0]
    np.testing.assert_allclose(delta, single.dL_dz, rtol=1e-15, atol=1e-300)


@pytest.mark.parametrize(
    ("X", "w", "y"),
    [
        pytest.param([[1.0], [1.0]], 1e308, [0.0, 0.0], id="J=1e308"),
        pytest.param([[1e308], [1e308]], 1.0, [9e307, 9e307], id="dJdW=1e308"),
    ],
)
def test_depth_one_equals_the_single_layer_model_near_overflow(X: list[list[float]], w: float, y: list[float]) -> None:
    pairing = make_pairing("identity", "absolute_error")
    single = evaluate(build_objective(ModelName.SINGLE_LAYER, pairing, X, y, [w], 0.0))
    assert np.isfinite(single.loss) and np.all(np.isfinite(single.grad_w))
    ev = evaluate(build_network([], pairing, [[[w]]], [[0.0]], X, y))
    assert ev.loss == single.loss
    np.testing.assert_array_equal(ev.grad_Ws[0][:, 0], single.grad_w)


# --- 4. the breakdown ----------------------------------------------------------------------------

BREAKDOWN_CASES = {
    # id: (output activation, loss, params, hidden, reg, seed)
    "tanh-relu/sigmoid+bce/l2": ("sigmoid", "binary_cross_entropy", {}, ["tanh", "relu"], "l2", 31),
    "sigmoid/softmax+cce": ("softmax", "categorical_cross_entropy", {}, ["sigmoid"], None, 32),
    "exp-softplus/softmax+se/l1": ("softmax", "squared_error", {}, ["exp", "softplus"], "l1", 33),
    "identity-tanh-sigmoid/softplus+poisson": ("softplus", "poisson", {}, ["identity", "tanh", "sigmoid"], None, 34),
    "relu/tanh+huber": ("tanh", "huber", {"delta": 0.25}, ["relu"], "l2", 35),
    "depth1/exp+poisson": ("exp", "poisson", {}, [], "l1", 36),
}


def _breakdown_case(key: str) -> NetCase:
    act, loss, params, hidden, reg, seed = BREAKDOWN_CASES[key]
    return NetCase(ActivationName(act), LossName(loss), params, [ActivationName(h) for h in hidden], reg, seed)


def _plain_dL_dz(c: NetCase, z_out: np.ndarray) -> np.ndarray:
    """∂L_i/∂z[L]_i per example, from autograd of the plain per-example loss."""

    def total(z: Any) -> Any:
        f = oracles.plain_activation(str(c.activation), z)
        return anp.sum(oracles.plain_loss(str(c.loss), f, c.Y, c.params))

    return grad(total)(z_out)


@pytest.mark.parametrize("key", list(BREAKDOWN_CASES))
def test_breakdown_layers_and_factors_multiply_back(key: str) -> None:
    c = _breakdown_case(key)
    ev = evaluate(c.net)
    breakdown = build_breakdown(c.net, ev, full=True)
    bd = breakdown
    assert bd is not None
    assert set(bd) == {"layers", "per_sample", "steps", "simplification", "notes"}
    depth, m = len(c.Ws), c.m
    layers = bd["layers"]
    assert [e["layer"] for e in layers] == list(range(1, depth + 1))
    for layer, e in enumerate(layers, start=1):
        hidden = layer < depth
        keys = {"layer", "activation", "units", "z", "a", "delta", "dJ_dW", "dJ_db"} | (
            {"g_prime"} if hidden else set()
        )
        assert set(e) == keys, (layer, set(e))
        assert e["activation"] == c.acts[layer - 1]
        assert e["units"] == c.widths[layer - 1]
        # forward values against the plain forward pass
        np.testing.assert_allclose(e["z"], c.zs[layer - 1], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(e["a"], c.As[layer], rtol=RTOL, atol=ATOL)
        assert np.shape(e["delta"]) == (m, c.widths[layer - 1])
        if hidden:
            # g'(z[l]) against autograd of the plain activation
            gp_auto = elementwise_grad(lambda z, name=c.acts[layer - 1]: oracles.plain_activation(name, z))(
                c.zs[layer - 1]
            )
            np.testing.assert_allclose(e["g_prime"], gp_auto, rtol=RTOL, atol=ATOL)
        # dJ/dW[l] = a[l−1]ᵀ δ[l] / m (+ ∂R/∂W[l]), dJ/db[l] = mean δ[l]
        expected_W = np.asarray(ev.activations[layer - 1]).T @ e["delta"] / m
        if c.reg is not None:
            W = c.Ws[layer - 1]
            expected_W = expected_W + LAMBDA / m * (W if c.reg.kind == "l2" else np.sign(W))
        np.testing.assert_allclose(e["dJ_dW"], expected_W, rtol=1e-14, atol=1e-300)
        np.testing.assert_allclose(e["dJ_db"], np.mean(e["delta"], axis=0), rtol=1e-14, atol=1e-300)
        np.testing.assert_array_equal(e["dJ_dW"], ev.grad_Ws[layer - 1])
        np.testing.assert_array_equal(e["dJ_db"], ev.grad_bs[layer - 1])
        # δ[l−1] = (δ[l] W[l]ᵀ) ⊙ g'[l−1](z[l−1])
        if layer > 1:
            prev = layers[layer - 2]
            np.testing.assert_allclose(
                prev["delta"], (e["delta"] @ c.Ws[layer - 1].T) * prev["g_prime"], rtol=1e-14, atol=1e-300
            )
    # δ[L] is the per-example ∂L/∂z, and that is autograd's
    ps = bd["per_sample"]
    top = layers[-1]["delta"] if c.vector else layers[-1]["delta"][:, 0]
    np.testing.assert_array_equal(ps["dL_dz"], top)
    z_out = c.zs[-1] if c.vector else c.zs[-1][:, 0]
    np.testing.assert_allclose(ps["dL_dz"], _plain_dL_dz(c, z_out), rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(ps["z"], layers[-1]["z"] if c.vector else layers[-1]["z"][:, 0])
    np.testing.assert_allclose(
        ps["loss"],
        oracles.plain_loss(str(c.loss), c.As[-1] if c.vector else c.As[-1][:, 0], c.Y, c.params),
        rtol=RTOL,
        atol=ATOL,
    )
    if not c.vector and (str(c.activation), str(c.loss)) not in oracles.MATH_CANONICAL:
        np.testing.assert_allclose(
            np.asarray(ps["dL_df"]) * np.asarray(ps["df_dz"]), ps["dL_dz"], rtol=1e-13, atol=1e-300
        )
    # the simplification is there exactly for a canonical output pairing
    assert (bd["simplification"] is not None) == ((c.activation, c.loss) in CANONICAL)


def _expected_factors(depth: int) -> list[str]:
    forward = [f for layer in range(1, depth + 1) for f in (f"z[{layer}]", f"a[{layer}]")] + ["L", "J"]
    backward = ["dL/df", "df/dz", f"delta[{depth}]"]
    for layer in range(depth, 0, -1):
        backward += [f"dJ/dW[{layer}]", f"dJ/db[{layer}]"] + ([f"delta[{layer - 1}]"] if layer > 1 else [])
    return forward + backward


@pytest.mark.parametrize("key", list(BREAKDOWN_CASES))
def test_breakdown_steps_are_ordered_forward_then_backward(key: str) -> None:
    c = _breakdown_case(key)
    depth = len(c.Ws)
    ev = evaluate(c.net)
    breakdown = build_breakdown(c.net, ev, full=False)
    assert breakdown is not None
    steps = breakdown["steps"]
    assert [s["factor"] for s in steps] == _expected_factors(depth)
    kinds = {s["factor"]: s["kind"] for s in steps}
    for factor, kind in kinds.items():
        if factor.startswith(("z[", "a[")) or factor in ("L", "J"):
            assert kind == "forward", factor
        elif factor in ("dL/df", "df/dz"):
            assert kind == "local", factor
        elif factor.startswith("delta["):
            assert kind == "chain", factor
        else:
            assert kind == "aggregate", factor
    for s in steps:
        assert isinstance(s["latex"], str) and s["latex"] and isinstance(s["text"], str) and s["text"]
        assert "derivation" not in s  # only with full
    by = {s["factor"]: s for s in steps}
    layers = breakdown["layers"]
    for layer in range(1, depth + 1):
        np.testing.assert_array_equal(by[f"z[{layer}]"]["value"], layers[layer - 1]["z"])
        np.testing.assert_array_equal(by[f"a[{layer}]"]["value"], layers[layer - 1]["a"])
        np.testing.assert_array_equal(by[f"delta[{layer}]"]["value"], layers[layer - 1]["delta"])
        np.testing.assert_array_equal(by[f"dJ/dW[{layer}]"]["value"], ev.grad_Ws[layer - 1])
        np.testing.assert_array_equal(by[f"dJ/db[{layer}]"]["value"], ev.grad_bs[layer - 1])
        assert ("+" in by[f"dJ/dW[{layer}]"]["text"].split("delta")[-1]) == (c.reg is not None)
    assert by["J"]["value"] == ev.loss
    np.testing.assert_array_equal(by["L"]["value"], ev.per_sample_loss)


@pytest.mark.parametrize("key", list(BREAKDOWN_CASES))
def test_full_adds_derivations(key: str) -> None:
    c = _breakdown_case(key)
    depth = len(c.Ws)
    ev = evaluate(c.net)
    breakdown = build_breakdown(c.net, ev, full=True)
    assert breakdown is not None
    steps = breakdown["steps"]
    assert [s["factor"] for s in steps] == _expected_factors(depth)
    derived = [s["factor"] for s in steps if "derivation" in s]
    assert derived == ["dL/df", "df/dz"] + [f"delta[{layer}]" for layer in range(depth - 1, 0, -1)]
    for s in steps:
        for d in s.get("derivation", []):
            assert set(d) == {"rule", "latex", "text", "why"}
            assert all(isinstance(d[k], str) and d[k] for k in d)
        if "derivation" in s:
            assert s["derivation"], s["factor"]


@pytest.mark.parametrize("key", list(BREAKDOWN_CASES))
def test_explain_never_changes_the_numbers(key: str) -> None:
    c = _breakdown_case(key)
    plain = evaluate(c.net)
    for full in (False, True):
        ev = evaluate(c.net)
        build_breakdown(c.net, ev, full=full)  # the breakdown only reads the evaluation
        assert ev.loss == plain.loss
        for a, b in zip((*ev.grad_Ws, *ev.grad_bs), (*plain.grad_Ws, *plain.grad_bs), strict=True):
            np.testing.assert_array_equal(a, b)


def test_notes_name_saturated_sigmoid_and_tanh_units() -> None:
    X = np.array([[1.0, -0.5], [0.5, 1.0], [-1.0, 0.25]])
    # layer 1 (sigmoid): unit 0 has huge weights (|z| ≥ 20), unit 1 moderate; layer 2 (tanh): unit 1 saturated
    W1 = np.array([[60.0, 0.3], [-10.0, 0.2]])  # z[1] unit 0: [65, 20, −62.5]
    W2 = np.array([[0.5, 40.0], [0.2, 40.0]])
    W3 = np.array([[0.4], [-0.6]])
    bs = [np.array([0.0, 0.1]), np.array([0.0, 10.0]), np.array([0.1])]
    acts = [ACTIVATIONS[ActivationName.SIGMOID], ACTIVATIONS[ActivationName.TANH]]
    net = build_network(acts, make_pairing("identity", "squared_error"), [W1, W2, W3], bs, X, [0.5, -0.5, 1.0])
    ev = evaluate(net)
    breakdown = build_breakdown(net, ev, full=False)
    assert breakdown is not None
    notes = {n["quantity"]: n for n in breakdown["notes"]}
    assert "g'(z[1])" in notes and "g'(z[2])" in notes, breakdown["notes"]
    n1, n2 = notes["g'(z[1])"], notes["g'(z[2])"]
    assert n1["units"] == [0] and n1["examples"] == [0, 1, 2] and n1["count"] == 3
    assert "sigmoid" in n1["reason"] and "saturated" in n1["reason"]
    assert n2["units"] == [1] and n2["count"] == 3
    assert "tanh" in n2["reason"]
    # the independent check: those units' g'(z) really is below 1e-4 of its peak
    assert np.all(np.abs(ev.zs[0][:, 0]) >= 15.0) and np.all(np.abs(ev.zs[0][:, 1]) < 1.0)
    assert np.all(1.0 / np.cosh(ev.zs[1][:, 1]) ** 2 < 1e-4)


def test_notes_name_dead_relu_units() -> None:
    X = np.array([[1.0, 2.0], [-1.0, 0.5], [0.5, -1.0]])
    W1 = np.array([[0.5, 0.3, -0.2], [0.25, 0.1, 0.4]])
    b1 = np.array([0.1, -10.0, 0.05])  # unit 1: z ≤ −9 for every example
    W2 = np.array([[0.7], [0.6], [-0.4]])
    relu = ACTIVATIONS[ActivationName.RELU]
    net = build_network(
        [relu], make_pairing("identity", "squared_error"), [W1, W2], [b1, np.array([0.0])], X, [1.0, 0.0, 2.0]
    )
    ev = evaluate(net)
    breakdown = build_breakdown(net, ev, full=False)
    assert breakdown is not None
    dead = [n for n in breakdown["notes"] if n["quantity"] == "g'(z[1])"]
    assert len(dead) == 1 and dead[0]["units"] == [1], breakdown["notes"]
    assert "dead" in dead[0]["reason"]
    # no gradient reaches the weights feeding unit 1
    np.testing.assert_array_equal(ev.grad_Ws[0][:, 1], 0.0)
    assert ev.grad_bs[0][1] == 0.0


@pytest.mark.parametrize("key", ["tanh-relu/sigmoid+bce/l2", "sigmoid/softmax+cce"])
def test_no_saturation_or_dead_notes_on_moderate_networks(key: str) -> None:
    c = _breakdown_case(key)
    ev = evaluate(c.net)
    breakdown = build_breakdown(c.net, ev, full=False)
    assert breakdown is not None
    for n in breakdown["notes"]:
        layer = int(n["quantity"][len("g'(z[") : -2]) if n["quantity"].startswith("g'") else None
        assert layer is None or c.acts[layer - 1] == "relu", n
        if layer is not None:  # a dead relu unit must really be dead
            assert all(np.all(c.zs[layer - 1][:, u] <= 0) for u in n["units"])


def test_explain_with_large_finite_deltas_raises_no_warning() -> None:
    identity = ACTIVATIONS[ActivationName.IDENTITY]
    net = build_network(
        [identity],
        make_pairing("identity", "absolute_error"),
        [[[1e-300]], [[1e308]]],
        [[0.0], [0.0]],
        [[1.0], [1.0]],
        [0.0, 2e8],
    )
    plain = evaluate(net)
    ev = evaluate(net)
    build_breakdown(net, ev, full=False)
    assert ev.loss == plain.loss


# --- 5. extreme inputs ---------------------------------------------------------------------------


def test_sigmoid_bce_output_at_z_800_is_finite_and_exact() -> None:
    X = np.array([[1.0], [-1.0], [1.0], [-1.0], [1.0]])
    y = np.array([0.0, 1.0, 1.0, 0.0, 0.25])
    identity = ACTIVATIONS[ActivationName.IDENTITY]
    Ws = [np.array([[1.0]]), np.array([[800.0]])]
    bs = [np.array([0.0]), np.array([0.0])]
    net = build_network([identity], make_pairing("sigmoid", "binary_cross_entropy"), Ws, bs, X, y)
    ev = evaluate(net)
    z = X[:, 0] * 800.0
    np.testing.assert_array_equal(ev.zs[-1][:, 0], z)
    # the softplus form of the loss: L = log(1 + e^z) − y z
    reference = np.logaddexp(0.0, z) - y * z
    np.testing.assert_array_equal(reference, [800.0, 800.0, 0.0, 0.0, 600.0])
    np.testing.assert_allclose(ev.per_sample_loss, reference, rtol=1e-15, atol=0)
    assert ev.loss == 440.0
    # δ[2] = f − y = [1, −1, 0, 0, 0.75]: dJ/dW[2] = mean(a[1] δ[2]) = 2.75/5, dJ/db[2] = 0.75/5; layer 1 is 800×
    np.testing.assert_allclose(ev.deltas[-1][:, 0], [1.0, -1.0, 0.0, 0.0, 0.75], rtol=0, atol=1e-300)
    np.testing.assert_allclose(ev.grad_Ws[1], [[0.55]], rtol=1e-15)
    np.testing.assert_allclose(ev.grad_bs[1], [0.15], rtol=1e-15)
    np.testing.assert_allclose(ev.grad_Ws[0], [[440.0]], rtol=1e-15)
    np.testing.assert_allclose(ev.grad_bs[0], [120.0], rtol=1e-15)
    assert cost(net) == ev.loss
    explained = evaluate(net)
    breakdown = build_breakdown(net, explained, full=True)
    assert explained.loss == ev.loss
    np.testing.assert_array_equal(breakdown["per_sample"]["loss"], ev.per_sample_loss)


@pytest.mark.parametrize(
    ("X", "W1", "W2", "quantity", "examples"),
    [
        pytest.param([[1.0], [2.0], [0.5]], 400.0, 1.0, "a[1]", [1], id="exp-overflows"),
        pytest.param([[1.0], [1.8], [-2.0], [1.9]], 400.0, 1.0, "a[1]", [1, 3], id="exp-overflows-twice"),
        pytest.param([[1.0], [1.75], [0.5]], 400.0, 1e5, "z[2]", [1], id="next-z-overflows"),
        pytest.param([[1e300], [1.0]], 1e10, 1.0, "z[1]", [0], id="z-overflows"),
    ],
)
def test_exp_hidden_layer_overflow_is_a_non_finite_result(
    X: list[list[float]], W1: float, W2: float, quantity: str, examples: list[int]
) -> None:
    exp = ACTIVATIONS[ActivationName.EXP]
    Xa = np.asarray(X)
    net = build_network(
        [exp], make_pairing("identity", "squared_error"), [[[W1]], [[W2]]], [[0.0], [0.0]], Xa, np.zeros(len(X))
    )
    for call in (
        lambda: evaluate(net),
        lambda: build_breakdown(net, evaluate(net), full=True),
        lambda: cost(net),
    ):
        with pytest.raises(NonFiniteResult) as info:
            call()
        assert info.value.quantity == quantity
        assert info.value.examples == examples
        assert quantity in info.value.detail


def test_exp_hidden_layer_near_overflow_is_fine() -> None:
    # z[1] = 700: a[1] = e^700 ≈ 1.01e304 is finite; the output layer scales it back down
    exp = ACTIVATIONS[ActivationName.EXP]
    net = build_network(
        [exp], make_pairing("identity", "squared_error"), [[[700.0]], [[1e-304]]], [[0.0], [0.0]], [[1.0]], [0.0]
    )
    ev = evaluate(net)
    f = np.exp(700.0) * 1e-304
    np.testing.assert_allclose(ev.loss, 0.5 * f * f, rtol=1e-14)
    np.testing.assert_allclose(ev.grad_Ws[1], [[f * np.exp(700.0)]], rtol=1e-14)


# --- construction: shapes and targets (a guard when used as a library) --------------------------

_X = [[1.0, 2.0], [3.0, 4.0]]
_T = ACTIVATIONS[ActivationName.TANH]


def _shapes(*shapes: tuple[int, int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Ws of these shapes and bs matching their columns."""
    return [np.ones(s) for s in shapes], [np.zeros(s[1]) for s in shapes]


_OK = _shapes((2, 2), (2, 1))
SHAPE_ERRORS = {
    "one W too many": (
        "identity",
        "squared_error",
        *_shapes((2, 2), (2, 1), (1, 1)),
        [0.0, 1.0],
        ("parameters", "layers"),
    ),
    "W rows != previous units": (
        "identity",
        "squared_error",
        *_shapes((2, 3), (2, 1)),
        [0.0, 1.0],
        ("parameters", "layers", 1, "W"),
    ),
    "W rows != n": (
        "identity",
        "squared_error",
        *_shapes((3, 2), (2, 1)),
        [0.0, 1.0],
        ("parameters", "layers", 0, "W"),
    ),
    "b length": (
        "identity",
        "squared_error",
        _OK[0],
        [np.zeros(3), np.zeros(1)],
        [0.0, 1.0],
        ("parameters", "layers", 0, "b"),
    ),
    "2 units, sigmoid out": (
        "sigmoid",
        "binary_cross_entropy",
        *_shapes((2, 2), (2, 2)),
        [0.0, 1.0],
        ("parameters", "layers", 1, "W"),
    ),
    "1 unit, softmax out": ("softmax", "categorical_cross_entropy", *_OK, [0, 0], ("parameters", "layers", 1, "W")),
    "y length": ("identity", "squared_error", *_OK, [0.0], ("data", "y")),
}


@pytest.mark.parametrize("args", list(SHAPE_ERRORS.values()), ids=list(SHAPE_ERRORS))
def test_build_network_shape_errors(args: tuple) -> None:
    act, loss, Ws, bs, y, loc = args
    with pytest.raises(ShapeError) as info:
        build_network([_T], make_pairing(act, loss), Ws, bs, _X, y)
    assert info.value.loc == loc and info.value.detail


def test_build_network_target_domain() -> None:
    with pytest.raises(DomainError) as info:
        build_network(
            [_T], make_pairing("sigmoid", "binary_cross_entropy"), [np.ones((2, 2)), np.ones((2, 1))],
            [np.zeros(2), np.zeros(1)], _X, [0.0, 2.0],
        )  # fmt: skip
    assert info.value.loc == ("data", "y", 1) and info.value.examples == [1]

"""Grading a neural network's loss and per-layer gradients: backprop's mistakes, applied by hand, must be named.

Networks are random (seeded): depth 1–3, hidden activations sigmoid/tanh/relu/softplus/identity, the four
canonical output pairings, no regularization, l1 and l2, m in 2..6, and square hidden/output weight matrices
in some cases (so that using W[l] for W[l]ᵀ has the right shape). The correct answer and every mistake's
answer come from the plain-numpy forward pass and backpropagation below (docs/design/math.md, "Neural networks"), never
from the grader's reference; the service is used only to build the Objective it grades.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from service.compute.activations import ACTIVATIONS, ActivationName
from service.compute.models import Objective, Regularization, build_network
from service.compute.pairings import make_pairing
from service.grading.grade import GradeOptions, grade
from service.grading.mistakes import NETWORK_MISTAKES
from service.grading.reference import build_reference

Array = np.ndarray
RTOL, ATOL = 1e-5, 1e-8

HIDDEN = ("sigmoid", "tanh", "relu", "softplus", "identity")
# label -> (output activation, loss); all canonical: δ[L] = f − y
OUTPUTS: dict[str, tuple[str, str]] = {
    "sigmoid+bce": ("sigmoid", "binary_cross_entropy"),
    "identity+se": ("identity", "squared_error"),
    "softmax+cce": ("softmax", "categorical_cross_entropy"),
    "exp+poisson": ("exp", "poisson"),
}
REGS: tuple[str | None, ...] = (None, "l1", "l2")
SEEDS = range(6)
# the single-layer codes that carry over to backpropagation, as the brief lists them
OUTPUT_CODES = (
    "missing_mean",
    "sign_flipped",
    "missing_activation_derivative",
    "extra_activation_derivative",
    "used_z_for_f",
    "double_factor",
    "regularized_bias",
    "missing_regularization",
    "regularization_scale",
    "loss_missing_half",
    "loss_missing_mean",
    "loss_sign_flipped",
    "loss_missing_regularization",
)


# --- the independent oracle: plain formulas, layer by layer --------------------------------------


def act(name: str, z: Array) -> tuple[Array, Array]:
    """a = g(z) and g′(z) (for softmax the k×k Jacobian per example), plain formulas."""
    if name == "identity":
        return z.copy(), np.ones_like(z)
    if name == "sigmoid":
        a = 1.0 / (1.0 + np.exp(-z))
        return a, a * (1.0 - a)
    if name == "tanh":
        a = np.tanh(z)
        return a, 1.0 - a**2
    if name == "relu":
        return np.maximum(0.0, z), (z > 0).astype(np.float64)
    if name == "softplus":
        return np.log(1.0 + np.exp(z)), 1.0 / (1.0 + np.exp(-z))
    if name == "exp":
        return np.exp(z), np.exp(z)
    if name == "softmax":
        e = np.exp(z)
        a = e / e.sum(axis=1, keepdims=True)
        jac = a[:, :, None] * (np.eye(z.shape[1])[None] - a[:, None, :])  # ∂f_k/∂z_l = f_k(δ_kl − f_l)
        return a, jac
    raise ValueError(name)


def loss_of(name: str, f: Array, y: Array) -> tuple[Array, Array]:
    """Per-example L and ∂L/∂f."""
    if name == "binary_cross_entropy":
        return -y * np.log(f) - (1 - y) * np.log(1 - f), (f - y) / (f * (1 - f))
    if name == "squared_error":
        return 0.5 * (f - y) ** 2, f - y
    if name == "categorical_cross_entropy":
        return -np.sum(y * np.log(f), axis=1), -y / f
    if name == "poisson":
        return f - y * np.log(f), 1 - y / f
    raise ValueError(name)


@dataclass
class Net:
    label: str
    hidden: list[str]
    out: str
    loss: str
    Ws: list[Array]
    bs: list[Array]
    X: Array
    y: Array  # as the client gives it: class indices for softmax
    reg: str | None = None
    lam: float = 0.0

    @property
    def m(self) -> int:
        return int(self.X.shape[0])

    @property
    def depth(self) -> int:
        return len(self.Ws)

    @property
    def vector(self) -> bool:
        return self.out == "softmax"

    def target(self) -> Array:
        """y as a column (m, 1), or one-hot (m, k) for softmax."""
        if self.vector:
            return np.eye(self.Ws[-1].shape[1])[self.y.astype(int)]
        return self.y[:, None]

    def objective(self) -> Objective:
        """The grader's input, built by the service's own constructor."""
        hidden = [ACTIVATIONS[ActivationName(h)] for h in self.hidden]
        regularization = None if self.reg is None else Regularization(self.reg, self.lam)  # type: ignore[arg-type]
        return build_network(
            hidden, make_pairing(self.out, self.loss), self.Ws, self.bs, self.X, self.y, regularization
        )


@dataclass
class Solution:
    zs: list[Array]  # z[1..L]
    acts: list[Array]  # a[0..L], a[L] = f as (m, k)
    gprimes: list[Array]  # g′[l](z[l]) for hidden l = 1..L−1
    y: Array  # (m, k)
    L: Array
    dL_df: Array  # (m, k)
    df_dz: Array  # (m, k), or (m, k, k) for softmax
    data_loss: float
    R: float
    dRs: list[Array]
    J: float
    delta: Array  # δ[L] = f − y
    gWs: list[Array] = field(default_factory=list)
    gbs: list[Array] = field(default_factory=list)

    def parts(self) -> dict[str, Array]:
        out: dict[str, Array] = {"loss": np.asarray(self.J)}
        for i, (gW, gb) in enumerate(zip(self.gWs, self.gbs, strict=True)):
            out[f"gradients.layers.{i}.W"] = gW
            out[f"gradients.layers.{i}.b"] = gb
        return out


def regularization(net: Net) -> tuple[float, list[Array]]:
    m, lam = net.m, net.lam
    if net.reg == "l2":
        return lam / (2 * m) * sum(float(np.sum(W**2)) for W in net.Ws), [lam / m * W for W in net.Ws]
    if net.reg == "l1":
        return lam / m * sum(float(np.sum(np.abs(W))) for W in net.Ws), [lam / m * np.sign(W) for W in net.Ws]
    return 0.0, [np.zeros_like(W) for W in net.Ws]


def solve(net: Net) -> Solution:
    a = net.X
    zs, acts, gprimes = [], [a], []
    for layer, (W, b) in enumerate(zip(net.Ws, net.bs, strict=True), start=1):
        z = a @ W + b
        zs.append(z)
        a, gp = act(net.hidden[layer - 1] if layer < net.depth else net.out, z)
        acts.append(a)
        gprimes.append(gp)
    y = net.target()
    f = acts[-1]
    if net.vector:
        L, dL_df = loss_of(net.loss, f, y)
    else:
        L, dL_df = loss_of(net.loss, f[:, 0], y[:, 0])
        dL_df = dL_df[:, None]
    R, dRs = regularization(net)
    data_loss = float(np.mean(L))
    sol = Solution(zs, acts, gprimes[:-1], y, L, dL_df, gprimes[-1], data_loss, R, dRs, data_loss + R, delta=f - y)
    sol.gWs, sol.gbs = backprop(net, sol, sol.delta)
    return sol


def backprop(
    net: Net,
    s: Solution,
    delta_L: Array,
    *,
    scale: dict[int, float] | None = None,  # layer (1-based) -> factor of the data term (default 1/m)
    sign: float = 1.0,
    drop_gprime: int | None = None,  # hidden layer whose g′(z) is left out of δ
    untransposed: int | None = None,  # layer whose W is used where Wᵀ belongs
    reg_factor: float = 1.0,
    reg_bias: bool = False,
) -> tuple[list[Array], list[Array]]:
    """∂J/∂W[l] = (1/m) a[l−1]ᵀ δ[l] + ∂R/∂W[l], ∂J/∂b[l] = (1/m) Σ δ[l], δ[l−1] = (δ[l] W[l]ᵀ) ⊙ g′(z[l−1])."""
    m = net.m
    gWs: list[Array] = [np.empty(0)] * net.depth
    gbs: list[Array] = [np.empty(0)] * net.depth
    d = delta_L
    for layer in range(net.depth, 0, -1):
        k = (scale or {}).get(layer, 1.0 / m)
        gWs[layer - 1] = sign * k * (s.acts[layer - 1].T @ d) + reg_factor * s.dRs[layer - 1]
        gb = sign * k * d.sum(axis=0)
        if reg_bias:
            b = net.bs[layer - 1]
            gb = gb + net.lam / m * (b if net.reg == "l2" else np.sign(b))
        gbs[layer - 1] = gb
        if layer > 1:
            W = net.Ws[layer - 1]
            back = d @ (W if untransposed == layer else W.T)
            d = back if drop_gprime == layer - 1 else back * s.gprimes[layer - 2]
    return gWs, gbs


def grad_parts(gWs: list[Array], gbs: list[Array]) -> dict[str, Array]:
    out: dict[str, Array] = {}
    for i, (gW, gb) in enumerate(zip(gWs, gbs, strict=True)):
        out[f"gradients.layers.{i}.W"] = gW
        out[f"gradients.layers.{i}.b"] = gb
    return out


def _regularized(net: Net) -> bool:
    return net.reg is not None and net.lam > 0


def all_variants(net: Net, s: Solution) -> list[tuple[str, str, dict[str, Array]]]:
    """(code, where, parts) of every mistake, whether or not it applies; see `applies`."""
    m, L = net.m, net.depth
    scaled = dict.fromkeys(range(1, L + 1), 1.0)
    out: list[tuple[str, str, dict[str, Array]]] = [
        ("missing_mean", "", grad_parts(*backprop(net, s, s.delta, scale=scaled))),
        ("sign_flipped", "", grad_parts(*backprop(net, s, s.delta, sign=-1.0))),
        ("missing_activation_derivative", "", grad_parts(*backprop(net, s, s.dL_df))),
    ]
    extra = np.einsum("ik,ikl->il", s.delta, s.df_dz) if net.vector else s.delta * s.df_dz
    out += [
        ("extra_activation_derivative", "", grad_parts(*backprop(net, s, extra))),
        ("used_z_for_f", "", grad_parts(*backprop(net, s, s.zs[-1] - s.y))),
        (
            "double_factor",
            "",
            grad_parts(*backprop(net, s, s.delta, scale=dict.fromkeys(range(1, L + 1), 2.0 / m))),
        ),
    ]
    if _regularized(net):
        out += [
            ("regularized_bias", "", grad_parts(*backprop(net, s, s.delta, reg_bias=True))),
            ("missing_regularization", "", grad_parts(*backprop(net, s, s.delta, reg_factor=0.0))),
            ("regularization_scale", "", grad_parts(*backprop(net, s, s.delta, reg_factor=0.5))),
        ]
    for layer in range(1, L):
        out.append(
            (
                "missing_hidden_derivative",
                f"@{layer}",
                grad_parts(*backprop(net, s, s.delta, drop_gprime=layer)),
            )
        )
    for layer in range(2, L + 1):
        W = net.Ws[layer - 1]
        if W.shape[0] == W.shape[1]:
            out.append(
                (
                    "weights_not_transposed",
                    f"@{layer}",
                    grad_parts(*backprop(net, s, s.delta, untransposed=layer)),
                )
            )
    for layer in range(1, L + 1):
        out.append(("layer_missing_mean", f"@{layer}", grad_parts(*backprop(net, s, s.delta, scale={layer: 1.0}))))
    out += [
        ("loss_missing_half", "", {"loss": np.asarray(2 * s.data_loss + s.R)}),
        ("loss_missing_mean", "", {"loss": np.asarray(float(np.sum(s.L)) + s.R)}),
        ("loss_sign_flipped", "", {"loss": np.asarray(-s.data_loss + s.R)}),
        ("loss_missing_regularization", "", {"loss": np.asarray(s.data_loss)}),
    ]
    return out


def applies(code: str, where: str, net: Net) -> bool:
    """docs/design/math.md's "applies when" for the output mistakes, and the network mistakes' own conditions."""
    out_not_identity = net.out != "identity"  # every output pairing here is canonical
    if code == "missing_hidden_derivative":
        return net.hidden[int(where[1:]) - 1] != "identity"
    return {
        "missing_mean": net.m > 1,
        "sign_flipped": True,
        "missing_activation_derivative": out_not_identity,
        "extra_activation_derivative": out_not_identity,
        "used_z_for_f": out_not_identity,
        "double_factor": net.loss == "squared_error",
        "regularized_bias": _regularized(net),
        "missing_regularization": _regularized(net),
        "regularization_scale": _regularized(net) and net.reg == "l2",
        "weights_not_transposed": True,  # built only for a square W[l], l ≥ 2
        "layer_missing_mean": net.m > 1 and net.depth > 1,
        "loss_missing_half": net.loss == "squared_error",
        "loss_missing_mean": net.m > 1,
        "loss_sign_flipped": net.loss in ("binary_cross_entropy", "categorical_cross_entropy"),
        "loss_missing_regularization": _regularized(net),
    }[code]


def close(a: Any, e: Any, rtol: float = RTOL, atol: float = ATOL) -> bool:
    a, e = np.asarray(a, dtype=np.float64), np.asarray(e, dtype=np.float64)
    return a.shape == e.shape and bool(np.all(np.abs(a - e) <= atol + rtol * np.abs(e)))


def jsonable(a: Any) -> Any:
    a = np.asarray(a, dtype=np.float64)
    return float(a) if a.ndim == 0 else a.tolist()


def make_net(label: str, reg: str | None, seed: int) -> Net:
    """depth = 1 + seed % 3; even seeds make W[l] square where possible (hidden→hidden, and hidden→softmax)."""
    out, loss = OUTPUTS[label]
    rng = np.random.default_rng([seed, list(OUTPUTS).index(label), REGS.index(reg)])
    depth = 1 + seed % 3
    m, n = int(rng.integers(2, 7)), int(rng.integers(1, 4))
    k = int(rng.integers(2, 4)) if out == "softmax" else 1
    widths = [int(rng.integers(1, 5)) for _ in range(depth - 1)]
    if seed % 2 == 0 and depth > 1:
        w = k if out == "softmax" else int(rng.integers(2, 4))
        widths = [w] * (depth - 1)  # W[2..L−1] square; with softmax W[L] too
    sizes = [n, *widths, k]
    hidden = [
        HIDDEN[(seed + 2 * layer + REGS.index(reg) + list(OUTPUTS).index(label)) % 5] for layer in range(depth - 1)
    ]
    Ws = [rng.normal(0.0, 0.8, (sizes[i], sizes[i + 1])) for i in range(depth)]
    bs = [rng.normal(0.0, 0.3, sizes[i + 1]) for i in range(depth)]
    X = rng.uniform(-1.5, 1.5, (m, n))
    if loss == "binary_cross_entropy":
        y = rng.integers(0, 2, m).astype(np.float64)
        if seed % 2:
            y[0] = 0.25
    elif loss == "categorical_cross_entropy":
        y = rng.integers(0, k, m).astype(np.float64)
    elif loss == "poisson":
        y = rng.poisson(1.5, m).astype(np.float64)
    else:
        y = rng.normal(0.0, 1.0, m)
    lam = float(rng.uniform(0.2, 2.0)) if reg else 0.0
    return Net(label, hidden, out, loss, Ws, bs, X, y, reg, lam)


CASES = [(label, reg, seed) for label in OUTPUTS for reg in REGS for seed in SEEDS]


def _case_id(c: tuple[str, str | None, int]) -> str:
    return f"{c[0]}-{c[1] or 'noreg'}-{c[2]}"


def _checks(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in result["checks"]}


def _named(check: dict[str, Any]) -> list[str]:
    mistake = check["mistake"]
    return [mistake["code"], *mistake.get("also_matches", [])] if mistake else []


# --- the oracle itself ----------------------------------------------------------------------------


def test_oracle_agrees_with_finite_differences() -> None:
    """The plain backprop above is J's gradient: central differences on a few random networks."""
    for label, reg, seed in [("sigmoid+bce", "l2", 2), ("softmax+cce", "l1", 4), ("exp+poisson", None, 5)]:
        net = make_net(label, reg, seed)
        s = solve(net)
        h = 1e-6
        for i in range(net.depth):
            for arr, grads in ((net.Ws[i], s.gWs[i]), (net.bs[i], s.gbs[i])):
                num = np.zeros_like(arr)
                for idx in np.ndindex(arr.shape):
                    old = arr[idx]
                    arr[idx] = old + h
                    up = solve(net).J
                    arr[idx] = old - h
                    down = solve(net).J
                    arr[idx] = old
                    num[idx] = (up - down) / (2 * h)
                assert np.allclose(grads, num, rtol=1e-5, atol=1e-7), (label, i)


# --- every mistake, applied by hand, named by the grader -----------------------------------------


def run_case(label: str, reg: str | None, seed: int) -> set[str]:
    """Grade each applicable mistake of one network; return the codes whose diagnosis was checked."""
    net = make_net(label, reg, seed)
    s = solve(net)
    ref = build_reference(net.objective())
    opts = GradeOptions()
    correct = s.parts()
    assert set(ref.expected) == set(correct)

    right = grade(ref, {p: jsonable(v) for p, v in correct.items()}, opts)
    assert right["score"] == 1.0 and right["correct"] is True, right
    assert all(c["correct"] and c["mistake"] is None for c in right["checks"])

    every = all_variants(net, s)
    applicable = [(code, where, v) for code, where, v in every if applies(code, where, net)]
    exercised: set[str] = set()
    for code, where, variant in applicable:
        answer = {p: jsonable(variant.get(p, correct[p])) for p in correct}
        result = grade(ref, answer, opts)
        checks = _checks(result)
        assert set(checks) == set(correct)
        n_right = 0
        for part, exp in correct.items():
            check = checks[part]
            if part not in variant or close(variant[part], exp):
                # unchanged, or the variant is the correct value here: never diagnosed
                assert check["correct"] is True and check["mistake"] is None, (code, where, part, check)
                n_right += 1
                continue
            given = variant[part]
            assert check["correct"] is False and check["points"] == 0.0, (code, where, part, check)
            named = _named(check)
            assert code in named, (code, where, part, check["message"])
            assert len(set(named)) == len(named)
            assert check["mistake"]["message"] in check["message"]
            # the codes named are exactly the applicable mistakes this value matches, by the oracle's computation
            real = {c for c, _w, v in applicable if part in v and close(given, v[part]) and not close(v[part], exp)}
            assert set(named) == real, (code, where, part, named, real)
            assert check["mistake"]["code"] == named[0]
            if len(real) > 1:
                assert "also_matches" in check["mistake"]
            exercised.add(code)
        assert result["score"] == pytest.approx(n_right / len(correct))
        assert result["correct"] is (n_right == len(correct))

    # a mistake that does not apply (e.g. loss_missing_half without squared_error, l1 with regularization_scale,
    # layer_missing_mean in a one-layer network) is never named
    for code, where, variant in every:
        if applies(code, where, net):
            continue
        for part, value in variant.items():
            if close(value, correct[part]):
                continue
            check = _checks(grade(ref, {part: jsonable(value)}, opts))[part]
            assert check["correct"] is False
            assert code not in _named(check), (code, where, part, _named(check))
    return exercised


@pytest.mark.parametrize("label,reg,seed", CASES, ids=[_case_id(c) for c in CASES])
def test_backprop_mistakes_are_named(label: str, reg: str | None, seed: int) -> None:
    run_case(label, reg, seed)


def test_every_network_mistake_is_exercised() -> None:
    exercised: set[str] = set()
    for c in CASES:
        exercised |= run_case(*c)
    network_codes = {m.code for m in NETWORK_MISTAKES}
    assert network_codes == {"missing_hidden_derivative", "weights_not_transposed", "layer_missing_mean"}
    assert network_codes <= exercised, network_codes - exercised
    assert set(OUTPUT_CODES) <= exercised, set(OUTPUT_CODES) - exercised


def test_cases_cover_the_brief() -> None:
    """The random networks have every depth, hidden activation, square W[l] (l ≥ 2) and m in 2..6."""
    nets = [make_net(*c) for c in CASES]
    assert {n.depth for n in nets} == {1, 2, 3}
    assert {h for n in nets for h in n.hidden} == set(HIDDEN)
    assert any(n.Ws[i].shape[0] == n.Ws[i].shape[1] for n in nets for i in range(1, n.depth))
    assert any(n.depth == 3 and n.Ws[1].shape[0] == n.Ws[1].shape[1] > 1 for n in nets)
    assert any(n.vector and n.depth > 1 and n.Ws[-1].shape[0] == n.Ws[-1].shape[1] for n in nets)
    assert {n.m for n in nets} <= set(range(2, 7)) and len({n.m for n in nets}) > 3


# --- variants equal to the answer key ------------------------------------------------------------


def _positive_relu_net() -> Net:
    """relu → relu → sigmoid, every hidden z > 0: dropping g′ (= 1) changes nothing."""
    rng = np.random.default_rng(11)
    X = rng.uniform(0.1, 1.5, (4, 2))
    Ws = [np.abs(rng.normal(0, 0.8, (2, 3))), np.abs(rng.normal(0, 0.8, (3, 3))), rng.normal(0, 0.8, (3, 1))]
    bs = [np.abs(rng.normal(0, 0.3, 3)) + 0.1, np.abs(rng.normal(0, 0.3, 3)) + 0.1, rng.normal(0, 0.3, 1)]
    return Net("relu", ["relu", "relu"], "sigmoid", "binary_cross_entropy", Ws, bs, X, np.array([0.0, 1, 1, 0]))


def test_dropped_relu_derivative_equal_to_the_key_is_never_named() -> None:
    net = _positive_relu_net()
    s = solve(net)
    assert all(np.all(z > 0) for z in s.zs[:-1])
    variants = {(c, w): v for c, w, v in all_variants(net, s)}
    for layer in (1, 2):
        v = variants[("missing_hidden_derivative", f"@{layer}")]
        assert all(close(v[p], s.parts()[p], 1e-12, 1e-300) for p in v)
    ref = build_reference(net.objective())
    result = grade(ref, {p: jsonable(v) for p, v in s.parts().items()}, GradeOptions())
    assert result["score"] == 1.0 and all(c["mistake"] is None for c in result["checks"])
    # a wrong layer-0 gradient is never explained by that (non-)mistake
    for part in ("gradients.layers.0.W", "gradients.layers.1.b"):
        wrong = grade(ref, {part: jsonable(3 * s.parts()[part] + 1)}, GradeOptions())["checks"][0]
        assert wrong["correct"] is False and "missing_hidden_derivative" not in _named(wrong)
    # W[2] is square: using it untransposed is a real, named mistake here
    v = variants[("weights_not_transposed", "@2")]
    check = _checks(grade(ref, {"gradients.layers.0.W": jsonable(v["gradients.layers.0.W"])}, GradeOptions()))
    assert "weights_not_transposed" in _named(check["gradients.layers.0.W"])


def test_symmetric_and_one_by_one_weights_never_name_weights_not_transposed() -> None:
    """W[l] = W[l]ᵀ (symmetric, or 1×1 before a scalar output): the variant is the correct value."""
    net = _positive_relu_net()
    net.Ws[1] = net.Ws[1] + net.Ws[1].T
    s = solve(net)
    variants = {(c, w): v for c, w, v in all_variants(net, s)}
    v = variants[("weights_not_transposed", "@2")]
    assert all(close(v[p], s.parts()[p], 1e-12, 1e-300) for p in v)
    ref = build_reference(net.objective())
    for part in ("gradients.layers.0.W", "gradients.layers.0.b"):
        wrong = grade(ref, {part: jsonable(-2 * s.parts()[part] + 0.5)}, GradeOptions())["checks"][0]
        assert wrong["correct"] is False and "weights_not_transposed" not in _named(wrong)
    # a 1×1 output weight
    rng = np.random.default_rng(5)
    one = Net(
        "1x1",
        ["tanh"],
        "identity",
        "squared_error",
        [rng.normal(0, 0.8, (2, 1)), np.array([[0.7]])],
        [rng.normal(0, 0.3, 1), np.array([0.1])],
        rng.uniform(-1, 1, (3, 2)),
        rng.normal(0, 1, 3),
    )
    s1 = solve(one)
    v1 = {(c, w): v for c, w, v in all_variants(one, s1)}[("weights_not_transposed", "@2")]
    assert all(close(v1[p], s1.parts()[p], 1e-12, 1e-300) for p in v1)
    ref1 = build_reference(one.objective())
    wrong = grade(ref1, {"gradients.layers.0.W": jsonable(s1.gWs[0] * 7)}, GradeOptions())["checks"][0]
    assert wrong["correct"] is False and "weights_not_transposed" not in _named(wrong)


def test_one_layer_network_never_names_layer_missing_mean() -> None:
    """Depth 1: summing over the examples is missing_mean alone."""
    net = make_net("sigmoid+bce", "l2", 3)
    assert net.depth == 1
    s = solve(net)
    variant = next(v for c, _w, v in all_variants(net, s) if c == "missing_mean")
    ref = build_reference(net.objective())
    result = grade(ref, {p: jsonable(v) for p, v in variant.items()}, GradeOptions())
    for c in result["checks"]:
        assert c["correct"] is False and _named(c) == ["missing_mean"], c


def test_one_layer_missing_mean_in_a_deep_network_is_named() -> None:
    """Forgetting 1/m in one layer of three: only that layer's parts are wrong, and they name layer_missing_mean."""
    net = make_net("softmax+cce", "l2", 2)
    assert net.depth == 3 and net.m > 1
    s = solve(net)
    ref = build_reference(net.objective())
    for layer in (1, 2, 3):
        variant = grad_parts(*backprop(net, s, s.delta, scale={layer: 1.0}))
        result = grade(ref, {p: jsonable(v) for p, v in variant.items()}, GradeOptions())
        checks = _checks(result)
        for i in range(3):
            for key in ("W", "b"):
                c = checks[f"gradients.layers.{i}.{key}"]
                if i == layer - 1:
                    assert c["correct"] is False and "layer_missing_mean" in _named(c), c
                else:
                    assert c["correct"] is True and c["mistake"] is None
        assert result["score"] == pytest.approx(4 / 6)

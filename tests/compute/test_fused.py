"""The one-pass path (fused.py, models.gradients): blocks of rows spread over threads.

It must give what `evaluate` gives — same J and gradients to rounding, the same errors — for every
pairing, with many blocks and several threads, and not depend on the number of threads at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from service.compute import fused
from service.compute.errors import NonFiniteResult
from service.compute.losses import LOSSES
from service.compute.model_names import ModelName
from service.compute.models import Regularization, build_objective, evaluate, gradients
from service.compute.pairings import make_pairing
from tests.compute import oracles

pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture(params=["blocks", "split"])
def small_blocks(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[None]:
    """Blocks (or kernel pieces) of 7 rows and threads from the first block on, so small problems
    take every branch: one pass in blocks, or the split into whole products with pieces between (the
    canonical pairings' sums-only kernels take blocks either way)."""
    monkeypatch.setattr(fused, "BLOCK_BYTES", 8)
    monkeypatch.setattr(fused, "MIN_BLOCK_ROWS", 7)
    monkeypatch.setattr(fused, "KERNEL_ROWS", 7)
    monkeypatch.setattr(fused, "PARALLEL_MIN_ELEMENTS", 0)
    monkeypatch.setattr(fused, "SPLIT_MIN_COLUMNS", 1 if request.param == "split" else 10**9)
    fused.set_threads(2)
    yield
    fused.set_threads(None)


def _random_problem(activation: Any, loss: Any, params: dict[str, float], seed: int, m: int = 61) -> Any:
    rng = np.random.default_rng(seed)
    vector = oracles.is_vector(activation)
    n = int(rng.integers(1, 6))
    k = int(rng.integers(2, 5)) if vector else None
    X = rng.normal(0.0, 1.5, (m, n))
    w = rng.normal(0.0, 0.7, (n, k) if k else (n,))
    b = rng.normal(0.0, 0.5, (k,)) if k else float(rng.normal(0.0, 0.5))
    y = rng.integers(0, k, m) if k and seed % 2 else oracles.sample_targets(LOSSES[loss].targets, rng, m, k)
    reg = Regularization("l2", 0.3) if seed % 3 == 0 else None
    return build_objective(ModelName.SINGLE_LAYER, make_pairing(activation, loss, params), X, y, w, b, reg)


PAIRINGS = [pytest.param(a, lo, p, id=oracles.pairing_id((a, lo, p))) for a, lo, p in oracles.compatible_pairings()]


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(("activation", "loss", "params"), PAIRINGS)
def test_blocks_and_threads_give_what_evaluate_gives(activation: Any, loss: Any, params: Any, seed: int) -> None:
    objective = _random_problem(activation, loss, params, seed)
    ev = evaluate(objective)
    g = gradients(objective)
    assert not hasattr(g, "z"), "the one-pass path fell back to evaluate"
    np.testing.assert_allclose(g.loss, ev.loss, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(g.grad_w, ev.grad_w, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g.grad_b, ev.grad_b, rtol=1e-12, atol=1e-14)
    assert g.grad_w.shape == ev.grad_w.shape and np.shape(g.grad_b) == np.shape(ev.grad_b)
    assert g.regularization_loss == ev.regularization_loss


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize(("activation", "loss", "params"), PAIRINGS)
def test_result_does_not_depend_on_the_number_of_threads(activation: Any, loss: Any, params: Any) -> None:
    objective = _random_problem(activation, loss, params, seed=5, m=200)
    results = []
    for threads in (1, 2, 3):
        fused.set_threads(threads)
        results.append(gradients(objective))
    for other in results[1:]:
        assert other.loss == results[0].loss
        assert np.array_equal(other.grad_w, results[0].grad_w)
        assert np.array_equal(other.grad_b, results[0].grad_b)


@pytest.mark.parametrize(
    ("activation", "loss", "n", "splits"),
    [
        ("sigmoid", "binary_cross_entropy", 8, False),
        ("sigmoid", "binary_cross_entropy", 40, False),
        ("sigmoid", "squared_error", 40, True),
    ],
)
def test_large_problem_runs_in_parallel_and_matches_evaluate(
    monkeypatch: pytest.MonkeyPatch, activation: Any, loss: Any, n: int, splits: bool
) -> None:
    """The real block sizes and thresholds: 2·10⁵ × 8 is 13 blocks over the pool; a canonical pairing's
    sums-only kernel always takes blocks (one read of X), another pairing at 2·10⁵ × 40 splits."""
    rng = np.random.default_rng(7)
    m = 200_000
    X = rng.normal(size=(m, n))
    w = rng.normal(size=n)
    y = (rng.random(m) < 0.3).astype(float)
    objective = build_objective(ModelName.SINGLE_LAYER, make_pairing(activation, loss), X, y, w, -0.2)
    assert X.size >= fused.PARALLEL_MIN_ELEMENTS and m > fused.block_rows(n, 1)
    split_calls: list[int] = []
    real_split = fused._split

    def spy(*args: Any) -> Any:
        split_calls.append(1)
        return real_split(*args)

    monkeypatch.setattr(fused, "_split", spy)
    ev, g = evaluate(objective), gradients(objective)
    assert bool(split_calls) == splits
    np.testing.assert_allclose(g.loss, ev.loss, rtol=1e-13)
    np.testing.assert_allclose(g.grad_w, ev.grad_w, rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(g.grad_b, ev.grad_b, rtol=1e-11, atol=1e-15)


@pytest.mark.usefixtures("small_blocks")
def test_extreme_logits_are_as_exact_as_evaluate() -> None:
    zs = np.array([30.0, -30.0, 700.0, -700.0, 800.0, -800.0, 1e5, -1e5] * 4)
    ys = np.array([0.0, 1.0, 0.3, 0.9] * 8)
    objective = build_objective(
        ModelName.LOGISTIC_REGRESSION, make_pairing("sigmoid", "binary_cross_entropy"), zs[:, None], ys, [1.0], 0.0
    )
    ev, g = evaluate(objective), gradients(objective)
    np.testing.assert_allclose(g.loss, ev.loss, rtol=1e-14)
    np.testing.assert_allclose(g.grad_w, ev.grad_w, rtol=1e-13)
    np.testing.assert_allclose(g.grad_b, ev.grad_b, rtol=1e-13)


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize(
    ("activation", "loss", "z", "w"),
    [
        ("exp", "poisson", 800.0, 1.0),  # f = e^z overflows
        ("identity", "squared_error", 1e300, 1.0),  # L = (f − y)²/2 overflows
        ("sigmoid", "binary_cross_entropy", 1e308, 2.0),  # z = w·x overflows
    ],
)
def test_non_finite_results_raise_what_evaluate_raises(activation: str, loss: str, z: float, w: float) -> None:
    """An overflow in one block falls back to evaluate, which names the quantity and the examples."""
    xs = np.ones((40, 1))
    xs[23, 0] = z
    objective = build_objective(ModelName.SINGLE_LAYER, make_pairing(activation, loss), xs, np.ones(40), [w], 0.0)
    with pytest.raises(NonFiniteResult) as expected:
        evaluate(objective)
    with pytest.raises(NonFiniteResult) as got:
        gradients(objective)
    assert str(got.value) == str(expected.value)
    assert got.value.examples == expected.value.examples == [23]


def test_gradients_at_other_parameters_leaves_the_problem_alone() -> None:
    objective = build_objective(
        ModelName.LINEAR_REGRESSION, make_pairing("identity", "squared_error"), [[1.0], [2.0]], [1.0, 3.0], [0.5], 0.0
    )
    g = gradients(objective.with_parameters([np.array([2.0])], [np.asarray(1.0)]))
    # z = 2x + 1 = (3, 5), r = (2, 2): J = (2 + 2)/2 = 2, dJ/dw = (2·1 + 2·2)/2 = 3, dJ/db = 2
    assert (g.loss, float(g.grad_w[0]), float(g.grad_b)) == (2.0, 3.0, 2.0)
    assert objective.w.tolist() == [0.5]


def test_set_threads_refuses_zero() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        fused.set_threads(0)


def test_blas_is_limited_to_one_thread_inside_the_pool_and_restored_after() -> None:
    from threadpoolctl import threadpool_info

    def blas_threads() -> list[int]:
        return [int(i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()
    with fused._one_blas_thread():
        with fused._one_blas_thread():  # a concurrent summary: the outer one restores, not this one
            assert all(t == 1 for t in blas_threads())
        assert all(t == 1 for t in blas_threads())
    assert blas_threads() == before

"""Hypothesis: for every compatible pairing, any finite inputs (up to ±1e300, small shapes) either
evaluate to finite numbers or raise NonFiniteResult: never another exception, a warning or a NaN.
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from service.compute.activations import ActivationName
from service.compute.domains import Interval, Simplex
from service.compute.errors import NonFiniteResult
from service.compute.losses import LOSSES, LossName
from service.compute.model_names import ModelName
from service.compute.models import Evaluation, Regularization, build_objective, cost, evaluate
from service.compute.pairings import CANONICAL, make_pairing
from tests.compute import oracles

pytestmark = pytest.mark.filterwarnings("error")

BOUND = 1e300
# Reproducible by default; explore with e.g. COMPUTE_PROPERTY_EXAMPLES=2000 (then randomized).
_EXPLORE = int(os.environ.get("COMPUTE_PROPERTY_EXAMPLES", "0"))
PROFILE = settings(
    max_examples=_EXPLORE or 25,
    deadline=None,
    derandomize=not _EXPLORE,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
QUANTITIES = {"z", "f", "per-sample loss", "dL/dz", "gradients.w", "gradients.b", "regularization term", "loss"}

finite = st.floats(min_value=-BOUND, max_value=BOUND, allow_nan=False, allow_infinity=False)


def _interval_floats(space: Interval) -> st.SearchStrategy[float]:
    lo = max(space.lo, -BOUND)
    hi = min(space.hi, BOUND)
    return st.floats(
        min_value=lo,
        max_value=hi,
        exclude_min=not space.lo_closed and math.isfinite(space.lo),
        exclude_max=not space.hi_closed and math.isfinite(space.hi),
        allow_nan=False,
        allow_infinity=False,
    )


@st.composite
def problems(draw: Any, activation: ActivationName, loss: LossName, params: dict[str, float]) -> dict[str, Any]:
    vector = oracles.is_vector(activation)
    m = draw(st.integers(1, 3))
    n = draw(st.integers(1, 3))
    k = draw(st.integers(2, 3)) if vector else None
    X = draw(arrays(np.float64, (m, n), elements=finite))
    w = draw(arrays(np.float64, (n, k) if k else (n,), elements=finite))
    b = draw(arrays(np.float64, (k,), elements=finite)) if k else draw(finite)
    targets = LOSSES[loss].targets
    if isinstance(targets, Simplex):
        assert k is not None
        if draw(st.booleans()):
            y = np.array(draw(st.lists(st.integers(0, k - 1), min_size=m, max_size=m)))
        else:
            weights = draw(arrays(np.float64, (m, k), elements=st.integers(0, 9).map(float)))
            weights[:, 0] += weights.sum(axis=1) == 0  # no all-zero row
            y = weights / weights.sum(axis=1, keepdims=True)
    else:
        assert isinstance(targets, Interval)
        if vector and draw(st.booleans()):
            y = np.array(draw(st.lists(st.integers(0, k - 1), min_size=m, max_size=m)))  # type: ignore[operator]
        else:
            y = draw(arrays(np.float64, (m, k) if k else (m,), elements=_interval_floats(targets)))
    reg_kind = draw(st.sampled_from([None, "l1", "l2"]))
    reg = None if reg_kind is None else Regularization(reg_kind, draw(st.floats(0.0, BOUND)))
    return {"X": X, "y": y, "w": w, "b": b, "regularization": reg}


def _check_evaluation(ev: Evaluation, case: dict[str, Any]) -> None:
    for name in ("loss", "data_loss", "regularization_loss"):
        assert math.isfinite(getattr(ev, name)), name
    for name in ("grad_w", "grad_b", "z", "f", "per_sample_loss", "dL_dz", "grad_w_data"):
        arr = np.asarray(getattr(ev, name))
        assert np.all(np.isfinite(arr)), f"{name} = {arr}"
    assert ev.grad_w.shape == np.shape(case["w"]) and ev.grad_b.shape == np.shape(case["b"])


def _check_error(err: NonFiniteResult, m: int) -> None:
    assert err.quantity in QUANTITIES, err.quantity
    assert err.detail
    assert all(0 <= i < m for i in err.examples), err.examples


CASES = oracles.compatible_pairings()
IDS = [oracles.pairing_id(c) for c in CASES]


@pytest.mark.parametrize(("activation", "loss", "params"), CASES, ids=IDS)
def test_evaluate_is_finite_or_raises_non_finite_result(
    activation: ActivationName, loss: LossName, params: dict[str, float]
) -> None:
    pairing = make_pairing(activation, loss, params)
    model = CANONICAL[(activation, loss)].model if (activation, loss) in CANONICAL else ModelName.SINGLE_LAYER

    @PROFILE
    @given(case=problems(activation, loss, params))
    def check(case: dict[str, Any]) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a RuntimeWarning is a failure even without -W error
            objective = build_objective(model, pairing, **case)
            try:
                ev = evaluate(objective)
            except NonFiniteResult as err:
                _check_error(err, objective.m)
            else:
                _check_evaluation(ev, case)
            try:
                J = cost(objective)
            except NonFiniteResult as err:
                _check_error(err, objective.m)
            else:
                assert math.isfinite(J), J

    check()


@pytest.mark.parametrize(("activation", "loss", "params"), CASES, ids=IDS)
def test_moderate_inputs_always_evaluate(activation: ActivationName, loss: LossName, params: dict[str, float]) -> None:
    """With |X|, |w|, |b| ≤ 10 (|z| ≤ 310) and targets ≤ 1e3, nothing overflows except e^z past 709
    (which needs |z| > 709): every compatible pairing must return finite numbers, and the loss and
    gradients must not depend on the order of the examples beyond rounding."""
    pairing = make_pairing(activation, loss, params)
    small = st.floats(min_value=-10.0, max_value=10.0, allow_nan=False)

    @PROFILE
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        vector = oracles.is_vector(activation)
        m = data.draw(st.integers(1, 4))
        n = data.draw(st.integers(1, 3))
        k = data.draw(st.integers(2, 3)) if vector else None
        X = data.draw(arrays(np.float64, (m, n), elements=small))
        w = data.draw(arrays(np.float64, (n, k) if k else (n,), elements=small))
        b = data.draw(arrays(np.float64, (k,), elements=small)) if k else data.draw(small)
        targets = LOSSES[loss].targets
        if isinstance(targets, Simplex):
            y = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=m, max_size=m)))  # type: ignore[operator]
        else:
            assert isinstance(targets, Interval)
            lo, hi = max(targets.lo, -1e3), min(targets.hi, 1e3)
            y = data.draw(arrays(np.float64, (m, k) if k else (m,), elements=st.floats(lo, hi)))
            y = np.clip(y, targets.lo, targets.hi)
        objective = build_objective(ModelName.SINGLE_LAYER, pairing, X, y, w, b)
        ev = evaluate(objective)
        _check_evaluation(ev, {"w": w, "b": b})
        order = np.arange(m)[::-1]
        ev2 = evaluate(build_objective(ModelName.SINGLE_LAYER, pairing, X[order], y[order], w, b))
        scale = np.mean(np.abs(ev.per_sample_loss)) + 1e-300
        assert abs(ev2.loss - ev.loss) <= 1e-13 * scale * m
        np.testing.assert_allclose(ev2.per_sample_loss, ev.per_sample_loss[order], rtol=4 * oracles.EPS, atol=0)

    check()

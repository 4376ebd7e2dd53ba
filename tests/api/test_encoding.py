"""The response encoder: orjson with numpy, each big array of a breakdown encoded once."""

from __future__ import annotations

import numpy as np
import orjson

from service.compute.breakdown import build_breakdown
from service.compute.model_names import ModelName
from service.compute.models import build_objective, evaluate
from service.compute.pairings import make_pairing
from service.http.wire.encoding import dumps


def _plain(obj: object) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY, default=lambda o: o.tolist())


def test_breakdown_encodes_to_the_same_bytes_as_plain_orjson() -> None:
    rng = np.random.default_rng(3)
    for act, loss, model, y in (
        ("sigmoid", "binary_cross_entropy", ModelName.LOGISTIC_REGRESSION, rng.integers(0, 2, 300)),
        ("softmax", "categorical_cross_entropy", ModelName.SOFTMAX_REGRESSION, rng.integers(0, 3, 300)),
    ):
        k = 3 if act == "softmax" else None
        w = rng.normal(size=(4, k)) if k else rng.normal(size=4)
        b = np.zeros(k) if k else 0.0
        objective = build_objective(model, make_pairing(act, loss), rng.normal(size=(300, 4)), y, w, b)
        ev = evaluate(objective)
        breakdown = build_breakdown(objective, ev, full=True)
        body = {"loss": ev.loss, "gradients": {"w": ev.grad_w, "b": ev.grad_b}, "breakdown": breakdown}
        assert dumps(body) == _plain(body)
        # the steps repeat the per-example arrays: the same objects, which is what the encoder shares
        steps = breakdown["steps"]
        assert isinstance(steps, list) and steps[0]["value"] is ev.z


def test_small_arrays_and_scalars_are_left_to_orjson() -> None:
    body = {
        "breakdown": {
            "a": np.arange(3.0),
            "b": [np.float64(1.5), 2],
            "c": np.arange(100.0)[::2],
            "d": np.arange(400.0)[::2],
        }
    }
    assert dumps(body) == _plain(body)

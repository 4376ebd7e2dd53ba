"""The benchmark suite's anchors compute what the service computes (else every ratio is meaningless).

Fast checks in the default run, without torch or jax (the suite itself checks those, before timing):
the numpy anchor against `evaluate`, including |z| large enough to overflow a naive formula, and the
plain FastAPI and bare ASGI anchor apps against the service's own POST /gradient on the suite's body.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.compute.model_names import ModelName
from service.compute.models import build_objective, evaluate
from service.compute.pairings import make_pairing
from tests.benchmarks.anchor_apps import bare_app, plain_app
from tests.benchmarks.anchor_numpy import logistic_body, logistic_numpy, logistic_problem
from tests.benchmarks.suite import NPY_CONTENT_TYPE, npy_multipart_body, small_body


def _service(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: float) -> tuple[float, np.ndarray, float]:
    objective = build_objective(
        ModelName.LOGISTIC_REGRESSION, make_pairing("sigmoid", "binary_cross_entropy"), X, y, w, b
    )
    ev = evaluate(objective)
    return ev.loss, ev.grad_w, float(ev.grad_b)


@pytest.mark.parametrize(("scale", "m", "n"), [(1.0, 7, 3), (1.0, 100, 4), (400.0, 50, 2)])
def test_numpy_anchor_matches_evaluate(scale: float, m: int, n: int) -> None:
    X, y, w, b = logistic_problem(m, n, seed=m + n, digits=None)
    want = _service(X * scale, y, w, b)
    loss, grad_w, grad_b = logistic_numpy(X * scale, y, w, b)
    assert loss == pytest.approx(want[0], rel=1e-12)
    np.testing.assert_allclose(grad_w, want[1], rtol=1e-12, atol=1e-15)
    assert grad_b == pytest.approx(want[2], rel=1e-12, abs=1e-15)


def test_anchor_apps_answer_as_the_service() -> None:
    body, _ = small_body()
    headers = {"Content-Type": "application/json"}
    with TestClient(create_app()) as service:
        want = service.post("/gradient", content=body, headers=headers).json()
    for app in (plain_app, bare_app):
        got = TestClient(app).post("/gradient", content=body, headers=headers).json()
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-12)
        np.testing.assert_allclose(got["gradients"]["w"], want["gradients"]["w"], rtol=1e-12)
        assert got["gradients"]["b"] == pytest.approx(want["gradients"]["b"], rel=1e-12)


def test_bodies_are_the_sizes_the_issue_names() -> None:
    body, _ = small_body()
    assert 8_000 < len(body) < 10_000  # "~9 KB"
    X, y, w, b = logistic_problem(1000, 20, digits=None)
    per_row = len(json.dumps(logistic_body(X, y, w, b)).encode()) / 1000
    assert 400 < per_row < 440  # so 100,000 rows make the "~42 MB" big body


def test_the_suites_npy_body_answers_as_its_json_body() -> None:
    X, y, w, b = logistic_problem(300, 5, seed=3, digits=None)
    doc = logistic_body(X, y, w, b)
    with TestClient(create_app()) as service:
        want = service.post("/gradient", json=doc)
        got = service.post("/gradient", content=npy_multipart_body(doc, X), headers={"Content-Type": NPY_CONTENT_TYPE})
    assert (got.status_code, got.content) == (200, want.content)

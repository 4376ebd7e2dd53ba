"""verify: true: a central finite-difference check of every gradient component (docs/design/math.md)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.compute.pairings import all_pairings
from service.settings import Settings
from tests.api.helpers import WORKED_X, assert_problem, preset, single_layer, strict_loads

KINKED = {"relu", "absolute_error"}
SMOOTH = [(str(a), str(lo)) for a, lo, ok, _ in all_pairings() if ok and str(a) not in KINKED and str(lo) not in KINKED]
VERIFICATION_KEYS = {
    "method",
    "components",
    "max_relative_error",
    "expected_agreement",
    "agrees",
    "kinks",
    "skipped",
}


def verified(client: TestClient, req: dict[str, Any]) -> dict[str, Any]:
    resp = client.post("/gradient", json={**req, "verify": True})
    assert resp.status_code == 200, resp.text
    return strict_loads(resp.text)


def component_names(req: dict[str, Any]) -> list[str]:
    w, b = req["parameters"]["w"], req["parameters"]["b"]
    if isinstance(b, list):
        names = [f"w[{i}][{j}]" for i, row in enumerate(w) for j in range(len(row))]
        return names + [f"b[{j}]" for j in range(len(b))]
    return [f"w[{i}]" for i in range(len(w))] + ["b"]


def test_verify_is_off_by_default(client: TestClient) -> None:
    out = client.post("/gradient", json=preset("logistic_regression")).json()
    assert "verification" not in out
    out = client.post("/gradient", json={**preset("logistic_regression"), "verify": False}).json()
    assert "verification" not in out


@pytest.mark.parametrize(
    "req",
    [preset(m) for m in ("linear_regression", "logistic_regression", "softmax_regression", "poisson_regression")]
    + [preset("logistic_regression", regularization={"kind": "l2", "lambda": 0.7})]
    + [preset("softmax_regression", regularization={"kind": "l1", "lambda": 0.2})],
    ids=["linear", "logistic", "softmax", "poisson", "logistic_l2", "softmax_l1"],
)
def test_verification_structure(client: TestClient, req: dict[str, Any]) -> None:
    out = verified(client, req)
    v = out["verification"]
    assert set(v) == VERIFICATION_KEYS
    names = component_names(req)
    assert [c["parameter"] for c in v["components"]] == names
    if isinstance(req["parameters"]["b"], list):  # softmax: n·k + k components
        n, k = len(req["parameters"]["w"]), len(req["parameters"]["b"])
        assert len(v["components"]) == n * k + k
    analytic = np.concatenate([np.ravel(out["gradients"]["w"]), np.ravel(out["gradients"]["b"])])
    assert [c["analytic"] for c in v["components"]] == analytic.tolist()  # the returned gradients, bit for bit
    for c in v["components"]:
        assert set(c) == {"parameter", "analytic", "numeric", "relative_error"}
        a, n = c["analytic"], c["numeric"]
        assert c["relative_error"] == pytest.approx(abs(a - n) / max(abs(a), abs(n), 1e-8), rel=1e-12, abs=1e-300)
        assert c["relative_error"] < 1e-5
    assert v["max_relative_error"] == max(c["relative_error"] for c in v["components"])
    assert v["agrees"] is True
    assert v["kinks"] == [] and v["skipped"] == []
    assert isinstance(v["method"], str) and v["method"]


@pytest.mark.parametrize(("activation", "loss"), SMOOTH)
def test_smooth_pairings_agree(client: TestClient, activation: str, loss: str) -> None:
    req = single_layer(activation, loss, regularization={"kind": "l2", "lambda": 0.3})
    v = verified(client, req)["verification"]
    assert [c["parameter"] for c in v["components"]] == component_names(req)
    assert v["max_relative_error"] < 1e-5
    assert all(c["relative_error"] < 1e-5 for c in v["components"])
    assert v["agrees"] is True
    assert v["kinks"] == []


def test_numeric_derivative_is_an_actual_difference(client: TestClient) -> None:
    """The numeric value is not a copy of the analytic one: it matches an independent central difference."""
    req = preset("poisson_regression")
    out = verified(client, req)
    X = np.asarray(WORKED_X)
    y = np.asarray(req["data"]["y"], dtype=float)

    def J(w: np.ndarray, b: float) -> float:
        z = X @ w + b
        return float(np.mean(np.exp(z) - y * z))

    w0, b0 = np.array(req["parameters"]["w"]), req["parameters"]["b"]
    h = 1e-6
    numeric_b = (J(w0, b0 + h) - J(w0, b0 - h)) / (2 * h)
    comp = {c["parameter"]: c for c in out["verification"]["components"]}
    assert comp["b"]["numeric"] == pytest.approx(numeric_b, rel=1e-7)
    assert comp["b"]["numeric"] != comp["b"]["analytic"]


def test_relu_kink_is_listed(client: TestClient) -> None:
    # z = w·x + b is exactly 0 for example 1 (1·1 − 1·1 + 0) and away from 0 for the others
    req = {
        "model": "single_layer",
        "activation": "relu",
        "loss": "squared_error",
        "parameters": {"w": [1.0, -1.0], "b": 0.0},
        "data": {"X": [[2.0, 0.5], [1.0, 1.0], [0.5, 2.0]], "y": [1.0, 1.0, 0.0]},
    }
    v = verified(client, req)["verification"]
    assert len(v["kinks"]) == 1
    kink = v["kinks"][0]
    assert kink["examples"] == [1]
    assert kink["count"] == 1
    assert "z = 0" in kink["at"]
    assert [c["parameter"] for c in v["components"]] == ["w[0]", "w[1]", "b"]


def test_relu_derivative_at_zero_is_zero(client: TestClient) -> None:
    """docs/design/math.md: relu'(0) = 0 (as PyTorch), so an example with z = 0 adds nothing to the gradient."""
    req = {
        "model": "single_layer",
        "activation": "relu",
        "loss": "squared_error",
        "parameters": {"w": [1.0, -1.0], "b": 0.0},
        "data": {"X": [[2.0, 0.5], [1.0, 1.0], [0.5, 2.0]], "y": [1.0, 1.0, 0.0]},  # z = 1.5, 0, −1.5
        "explain": "factors",
    }
    out = client.post("/gradient", json=req).json()
    assert out["breakdown"]["per_sample"]["df_dz"] == [1.0, 0.0, 0.0]
    # only example 0 contributes: dL/dz = f − y = 0.5
    assert out["gradients"] == {"w": [0.5 * 2.0 / 3, 0.5 * 0.5 / 3], "b": 0.5 / 3}


def test_relu_away_from_kinks_agrees(client: TestClient) -> None:
    req = single_layer("relu", "squared_error")
    v = verified(client, req)["verification"]
    assert v["kinks"] == [] and v["agrees"] is True


def test_absolute_error_kink_is_listed(client: TestClient) -> None:
    # identity: f = z = 1·x; example 0 has f = y exactly
    req = {
        "model": "single_layer",
        "activation": "identity",
        "loss": "absolute_error",
        "parameters": {"w": [1.0], "b": 0.0},
        "data": {"X": [[2.0], [3.0], [-1.0]], "y": [2.0, 0.0, 1.0]},
    }
    v = verified(client, req)["verification"]
    assert any(k["examples"] == [0] for k in v["kinks"])


def test_verify_too_large() -> None:
    with TestClient(create_app(Settings(max_verify_work=10))) as small:
        req = preset("linear_regression")
        body = assert_problem(small.post("/gradient", json={**req, "verify": True}), 422, "explain-too-large")
        assert "verify" in body["detail"]
        assert small.post("/gradient", json=req).status_code == 200  # the same problem without verify is fine

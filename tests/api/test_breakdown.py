"""The chain-rule breakdown of POST /gradient: per-example factors, steps, simplification, notes, LaTeX."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.compute.pairings import all_pairings
from service.settings import Settings
from tests.api.helpers import (
    PRESET_PAIRINGS,
    SOFTMAX_ROWS,
    WORKED_X,
    all_finite,
    assert_problem,
    oracle,
    pairing_of,
    preset,
    single_layer,
    strict_loads,
    top_level_raw,
)
from tests.latex import collect_latex, katex_errors

CANONICAL = set(PRESET_PAIRINGS.values())

REQUESTS: dict[str, dict[str, Any]] = {
    "linear_regression": preset("linear_regression"),
    "logistic_regression": preset("logistic_regression"),
    "softmax_regression": preset("softmax_regression"),
    "softmax_regression_rows": preset("softmax_regression", data={"X": WORKED_X, "y": SOFTMAX_ROWS}),
    "poisson_regression": preset("poisson_regression"),
    "sigmoid_squared_error": single_layer("sigmoid", "squared_error"),
    "sigmoid_huber": single_layer("sigmoid", "huber", loss_params={"delta": 0.5}),
    "tanh_absolute_error": single_layer("tanh", "absolute_error"),
    "softplus_poisson": single_layer("softplus", "poisson"),
    "relu_squared_error": single_layer("relu", "squared_error"),
    "exp_squared_error": single_layer("exp", "squared_error"),
    "softmax_squared_error": single_layer("softmax", "squared_error"),
}
SCALAR = [name for name, req in REQUESTS.items() if pairing_of(req)[0] != "softmax"]
VECTOR = [name for name, req in REQUESTS.items() if pairing_of(req)[0] == "softmax"]
PER_SAMPLE_KEYS = {"z", "f", "loss", "dL_df", "df_dz", "dL_dz"}


def post(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    resp = client.post("/gradient", json=body)
    assert resp.status_code == 200, resp.text
    return strict_loads(resp.text)


def breakdown(client: TestClient, req: dict[str, Any], explain: Any = "factors", **extra: Any) -> dict[str, Any]:
    out = post(client, {**req, "explain": explain, **extra})
    bd = out["breakdown"]
    assert set(bd) == {"per_sample", "steps", "simplification", "notes"}
    return bd


@pytest.mark.parametrize("explain", [False, True, "factors", "full"])
def test_explain_values(client: TestClient, explain: Any) -> None:
    out = post(client, {**preset("logistic_regression"), "explain": explain})
    assert ("breakdown" in out) is (explain is not False)


def test_explain_defaults_to_off(client: TestClient) -> None:
    assert "breakdown" not in post(client, preset("linear_regression"))


def test_explain_true_is_factors(client: TestClient) -> None:
    req = preset("poisson_regression")
    assert post(client, {**req, "explain": True}) == post(client, {**req, "explain": "factors"})


@pytest.mark.parametrize("name", list(REQUESTS))
def test_per_sample_is_math_md(client: TestClient, name: str) -> None:
    req = REQUESTS[name]
    ps = breakdown(client, req)["per_sample"]
    assert set(ps) == PER_SAMPLE_KEYS
    ref = oracle(req)
    m = len(req["data"]["X"])
    for key, ref_key in [
        ("z", "z"),
        ("f", "f"),
        ("loss", "L"),
        ("dL_df", "dL_df"),
        ("df_dz", "df_dz"),
        ("dL_dz", "dL_dz"),
    ]:
        got = np.asarray(ps[key], dtype=float)
        assert got.shape == ref[ref_key].shape, key
        assert got.shape[0] == m
        np.testing.assert_allclose(got, ref[ref_key], rtol=1e-11, atol=1e-15, err_msg=key)


@pytest.mark.parametrize("name", SCALAR)
@pytest.mark.parametrize("reg", [None, {"kind": "l2", "lambda": 0.7}, {"kind": "l1", "lambda": 0.4}])
def test_scalar_factors_multiply_back_to_the_gradient(client: TestClient, name: str, reg: Any) -> None:
    req = dict(REQUESTS[name])
    if reg:
        req["regularization"] = reg
    out = post(client, {**req, "explain": "factors"})
    ps = out["breakdown"]["per_sample"]
    dL_df, df_dz, dL_dz = (np.asarray(ps[k], dtype=float) for k in ("dL_df", "df_dz", "dL_dz"))
    np.testing.assert_allclose(dL_df * df_dz, dL_dz, rtol=1e-12, atol=1e-300)
    X = np.asarray(req["data"]["X"], dtype=float)
    w = np.asarray(req["parameters"]["w"], dtype=float)
    m = X.shape[0]
    expected_w = np.array([np.mean(dL_dz * X[:, j]) for j in range(X.shape[1])])
    if reg and reg["kind"] == "l2":
        expected_w += reg["lambda"] / m * w
    elif reg:
        expected_w += reg["lambda"] / m * np.sign(w)
    np.testing.assert_allclose(out["gradients"]["w"], expected_w, rtol=1e-13, atol=1e-16)
    assert out["gradients"]["b"] == pytest.approx(np.mean(dL_dz), rel=1e-13, abs=1e-16)


@pytest.mark.parametrize("name", VECTOR)
def test_softmax_jacobian_applied_to_dL_df_gives_dL_dz(client: TestClient, name: str) -> None:
    req = REQUESTS[name]
    out = post(client, {**req, "explain": "factors"})
    ps = out["breakdown"]["per_sample"]
    dL_df = np.asarray(ps["dL_df"], dtype=float)
    jac = np.asarray(ps["df_dz"], dtype=float)
    dL_dz = np.asarray(ps["dL_dz"], dtype=float)
    f = np.asarray(ps["f"], dtype=float)
    m, k = f.shape
    assert dL_df.shape == (m, k) and dL_dz.shape == (m, k)
    assert jac.shape == (m, k, k)
    for i in range(m):  # df_dz[i][k][l] = ∂f_k/∂z_l = f_k (δ_kl − f_l)
        for a in range(k):
            for c in range(k):
                assert jac[i, a, c] == pytest.approx(f[i, a] * ((a == c) - f[i, c]), rel=1e-12, abs=1e-16)
    # dL/dz_l = Σ_k dL/df_k ∂f_k/∂z_l
    chained = np.array([[sum(dL_df[i, a] * jac[i, a, c] for a in range(k)) for c in range(k)] for i in range(m)])
    np.testing.assert_allclose(chained, dL_dz, rtol=1e-12, atol=1e-15)
    X = np.asarray(req["data"]["X"], dtype=float)
    expected_w = X.T @ dL_dz / m
    np.testing.assert_allclose(out["gradients"]["w"], expected_w, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(out["gradients"]["b"], dL_dz.mean(axis=0), rtol=1e-13, atol=1e-16)


def test_softmax_jacobian_is_not_transposed(client: TestClient) -> None:
    """For categorical CE, Σ_k dL/df_k ∂f_k/∂z_l = f_l − y_l; with y a non-symmetric row this pins the order."""
    req = preset("softmax_regression", data={"X": WORKED_X, "y": SOFTMAX_ROWS})
    ps = breakdown(client, req)["per_sample"]
    f = np.asarray(ps["f"])
    y = np.asarray(SOFTMAX_ROWS)
    np.testing.assert_allclose(ps["dL_dz"], f - y, rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(ps["dL_df"], -y / f, rtol=1e-12)


@pytest.mark.parametrize("name", list(REQUESTS))
@pytest.mark.parametrize("reg", [None, {"kind": "l2", "lambda": 0.5}])
def test_steps_are_ordered(client: TestClient, name: str, reg: Any) -> None:
    req = dict(REQUESTS[name])
    if reg:
        req["regularization"] = reg
    out = post(client, {**req, "explain": "factors"})
    steps = out["breakdown"]["steps"]
    ps = out["breakdown"]["per_sample"]
    factors = [s["factor"] for s in steps]
    expected = ["z", "f", "L", "J", "dL/df", "df/dz", "dL/dz", "dz/dw", "dz/db"]
    expected += ["dR/dw"] if reg else []
    expected += ["dJ/dw", "dJ/db"]
    assert factors == expected
    by = {s["factor"]: s for s in steps}
    for s in steps:
        assert isinstance(s["latex"], str) and s["latex"]
        assert isinstance(s["text"], str) and s["text"]
        assert s["kind"] in {"forward", "local", "chain", "regularization", "aggregate"}
    assert by["dz/dw"]["value_ref"] == "data.X"
    assert "value" not in by["dz/dw"]
    for factor, key in [
        ("z", "z"),
        ("f", "f"),
        ("L", "loss"),
        ("dL/df", "dL_df"),
        ("df/dz", "df_dz"),
        ("dL/dz", "dL_dz"),
    ]:
        assert by[factor]["value"] == ps[key], factor
    assert by["J"]["value"] == out["loss"]
    assert by["dJ/dw"]["value"] == out["gradients"]["w"]
    assert by["dJ/db"]["value"] == out["gradients"]["b"]
    assert by["dJ/dw"]["kind"] == by["dJ/db"]["kind"] == "aggregate"


@pytest.mark.parametrize("name", list(REQUESTS))
def test_simplification_only_for_canonical_pairings(client: TestClient, name: str) -> None:
    req = REQUESTS[name]
    simp = breakdown(client, req)["simplification"]
    if pairing_of(req) in CANONICAL:
        assert simp is not None
        assert simp["reason"]["latex"] and simp["reason"]["text"]
        assert "f - y" in simp["dL_dz"]["text"]
        assert isinstance(simp["explanation"], str) and simp["explanation"]
    else:
        assert simp is None


def test_single_layer_canonical_pairing_has_the_simplification(client: TestClient) -> None:
    req = {**preset("logistic_regression"), "model": "single_layer", "activation": "sigmoid"}
    req["loss"] = "binary_cross_entropy"
    assert breakdown(client, req)["simplification"] is not None


@pytest.mark.parametrize("name", list(REQUESTS))
def test_full_adds_derivations_on_the_local_steps(client: TestClient, name: str) -> None:
    req = REQUESTS[name]
    factors = breakdown(client, req, "factors")
    full = breakdown(client, req, "full")
    assert full["per_sample"] == factors["per_sample"]
    for s_factors, s_full in zip(factors["steps"], full["steps"], strict=True):
        assert "derivation" not in s_factors
        if s_full["factor"] in ("dL/df", "df/dz"):
            derivation = s_full["derivation"]
            assert isinstance(derivation, list) and derivation
            for d in derivation:
                assert d["rule"] and d["latex"] and d["text"] and d["why"]
            assert {k: v for k, v in s_full.items() if k != "derivation"} == s_factors
        else:
            assert s_full == s_factors


# --- explain never changes a number ----------------------------------------------------------------

BIT_REQUESTS = {**REQUESTS, "api_example": {**preset("logistic_regression"), "parameters": {"w": [2.0, 3.0], "b": 1.0}}}


@pytest.mark.parametrize("name", list(BIT_REQUESTS))
@pytest.mark.parametrize("reg", [None, {"kind": "l2", "lambda": 0.7}])
def test_loss_and_gradients_bit_identical_with_explain_and_verify(client: TestClient, name: str, reg: Any) -> None:
    req = dict(BIT_REQUESTS[name])
    if reg:
        req["regularization"] = reg
    variants = [{"explain": False}, {"explain": "factors"}, {"explain": True}, {"explain": "full"}, {"verify": True}]
    variants.append({"explain": "full", "verify": True})
    texts = []
    for extra in variants:
        resp = client.post("/gradient", json={**req, **extra})
        assert resp.status_code == 200, resp.text
        texts.append(resp.text)
    parsed = [strict_loads(t) for t in texts]
    raw = [top_level_raw(t) for t in texts]
    for p, r in zip(parsed[1:], raw[1:], strict=True):
        assert p["loss"] == parsed[0]["loss"]
        assert p["gradients"] == parsed[0]["gradients"]
        assert r["loss"] == raw[0]["loss"]
        assert r["gradients"] == raw[0]["gradients"]
    assert "breakdown" in parsed[1] and "verification" in parsed[4]


# --- extreme z: notes instead of inf ------------------------------------------------------------------

EXTREME = {
    "model": "logistic_regression",
    "parameters": {"w": [400.0, 0.0], "b": 0.0},
    # z = 400, 800, 800, −800, −800, 1 with y = 1, 1, 0, 0, 1, 0
    "data": {"X": [[1, 5], [2, 5], [2, -5], [-2, 5], [-2, 5], [0.0025, 3]], "y": [1, 1, 0, 0, 1, 0]},
}


def test_extreme_logistic_z_is_finite_and_noted(client: TestClient) -> None:
    out = post(client, {**EXTREME, "explain": "factors"})
    assert all_finite(out)
    ps = out["breakdown"]["per_sample"]
    assert ps["z"] == [400.0, 800.0, 800.0, -800.0, -800.0, 1.0]
    # L = softplus(z) − y z: e^-400, ~0, 800, ~0, 800, softplus(1)
    np.testing.assert_allclose(ps["loss"][:5], [np.exp(-400.0), 0.0, 800.0, 0.0, 800.0], rtol=1e-12, atol=0)
    np.testing.assert_allclose(ps["dL_dz"][:5], [-np.exp(-400.0), 0.0, 1.0, 0.0, -1.0], rtol=1e-12, atol=0)
    f1 = 1 / (1 + np.exp(-1.0))
    expected_dL_dz = np.array([-np.exp(-400.0), 0.0, 1.0, 0.0, -1.0, f1])
    X = np.asarray(EXTREME["data"]["X"])
    np.testing.assert_allclose(out["gradients"]["w"], X.T @ expected_dL_dz / 6, rtol=1e-13)
    assert out["gradients"]["b"] == pytest.approx(np.mean(expected_dL_dz), rel=1e-13)
    assert out["loss"] == pytest.approx((np.exp(-400.0) + 1600 + np.log1p(np.exp(1.0))) / 6, rel=1e-13)

    # dL/df = (f − y)/(f(1 − f)) is not representable where f rounds to 1 with y = 0 (or to 0 with y = 1)
    assert ps["dL_df"][2] is None and ps["dL_df"][4] is None
    assert [i for i, v in enumerate(ps["dL_df"]) if v is None] == [2, 4]
    assert ps["dL_df"][5] == pytest.approx(f1 / (f1 * (1 - f1)), rel=1e-12)
    notes = out["breakdown"]["notes"]
    for note in notes:
        assert set(note) == {"quantity", "examples", "count", "reason"}
        assert note["count"] == len(note["examples"]) and isinstance(note["reason"], str) and note["reason"]
    dL_df_notes = [n for n in notes if n["quantity"] == "dL/df"]
    assert len(dL_df_notes) == 1 and dL_df_notes[0]["examples"] == [2, 4]
    f_examples = sorted(i for n in notes if n["quantity"] == "f" for i in n["examples"])
    assert f_examples == [0, 1, 2, 3, 4]  # f rounds to exactly 1 (z = 400, 800) or 0 (z = −800)
    assert any("1" in n["reason"] and n["examples"] == [0, 1, 2] for n in notes if n["quantity"] == "f")


def test_no_notes_for_moderate_z(client: TestClient) -> None:
    assert breakdown(client, preset("logistic_regression"))["notes"] == []


def test_extreme_explain_does_not_change_numbers(client: TestClient) -> None:
    plain = client.post("/gradient", json=EXTREME)
    explained = client.post("/gradient", json={**EXTREME, "explain": "full"})
    a, b = top_level_raw(plain.text), top_level_raw(explained.text)
    assert a["loss"] == b["loss"] and a["gradients"] == b["gradients"]


def test_softmax_underflowing_f_gives_null_dL_df_and_a_note(client: TestClient) -> None:
    req = {
        "model": "softmax_regression",
        "parameters": {"w": [[1000.0, 0.0]], "b": [0.0, 0.0]},
        "data": {"X": [[1.0], [0.001]], "y": [1, 1]},
        "explain": "factors",
    }
    out = post(client, req)
    assert all_finite(out)
    ps = out["breakdown"]["per_sample"]
    assert ps["dL_df"][0][1] is None  # −y/f with f = e^-1000 underflowed to 0
    assert ps["loss"][0] == pytest.approx(1000.0, rel=1e-15)
    assert any(n["quantity"] == "dL/df" and n["examples"] == [0] for n in out["breakdown"]["notes"])


# --- size limit ---------------------------------------------------------------------------------------


def test_explain_too_large() -> None:
    with TestClient(create_app(Settings(max_explain_values=100))) as small:
        big = {"model": "linear_regression", "parameters": {"w": [1.0], "b": 0.0}}
        big["data"] = {"X": [[float(i)] for i in range(50)], "y": [0.5] * 50}
        body = assert_problem(small.post("/gradient", json={**big, "explain": True}), 422, "explain-too-large")
        assert "explain" in body["detail"]
        assert_problem(small.post("/gradient", json={**big, "explain": "full"}), 422, "explain-too-large")
        assert small.post("/gradient", json=big).status_code == 200  # without explain the same problem is fine
        tiny = {**big, "data": {"X": [[1.0], [2.0]], "y": [0.5, 1.0]}, "explain": "full"}
        assert small.post("/gradient", json=tiny).status_code == 200
        # softmax Jacobians count m·k²: 2 examples of k = 6 exceed 100 numbers
        sm = {
            "model": "softmax_regression",
            "parameters": {"w": [[0.1] * 6], "b": [0.0] * 6},
            "data": {"X": [[1.0], [2.0]], "y": [0, 5]},
            "explain": "factors",
        }
        assert_problem(small.post("/gradient", json=sm), 422, "explain-too-large")


# --- LaTeX parses with KaTeX --------------------------------------------------------------------------


def _explained_requests() -> list[dict[str, Any]]:
    reqs = [preset(m, explain="full", regularization={"kind": "l2", "lambda": 0.1}) for m in PRESET_PAIRINGS]
    reqs.append(preset("linear_regression", explain="full", regularization={"kind": "l1", "lambda": 0.1}))
    for act, loss, ok, _ in all_pairings():
        if ok:
            reqs.append(single_layer(str(act), str(loss), explain="full"))
    return reqs


def test_every_latex_string_parses_with_katex(client: TestClient) -> None:
    strings: list[str] = []
    for path in ("/activations", "/losses", "/pairings", "/models"):
        resp = client.get(path)
        assert resp.status_code == 200
        strings += collect_latex(resp.json())
    catalog_count = len(strings)
    assert catalog_count > 0
    for req in _explained_requests():
        out = post(client, req)
        found = collect_latex(out["breakdown"])
        assert len(found) >= 10  # every step, the derivations and (canonical) the simplification
        strings += found
    assert len(strings) > catalog_count
    assert katex_errors(strings) == []


def test_katex_check_can_fail() -> None:
    """The checker itself reports a broken string (so the test above can fail)."""
    assert [s for s, _ in katex_errors([r"\frac{a}{b}", r"\frac{a}{"])] == [r"\frac{a}{"]


def test_notes_list_at_most_50_examples_with_the_full_count(client: TestClient) -> None:
    req = {
        "model": "logistic_regression",
        "parameters": {"w": [400.0], "b": 0.0},
        "data": {"X": [[2.0]] * 60 + [[0.001]], "y": [0] * 61},  # z = 800 with y = 0 for the first 60
        "explain": True,
    }
    notes = post(client, req)["breakdown"]["notes"]
    dL_df = [n for n in notes if n["quantity"] == "dL/df"]
    assert len(dL_df) == 1
    assert dL_df[0]["count"] == 60
    assert dL_df[0]["examples"] == list(range(50))

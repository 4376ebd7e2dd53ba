"""POST /gradient with model neural_network: numbers against an independent autograd oracle, gradients
shaped as the parameters, the breakdown's LaTeX parsed by KaTeX, and every malformed request a 422 with
the location of the offending value (never a 500)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad
from fastapi.testclient import TestClient

from service.app import create_app
from service.compute.activations import ACTIVATIONS
from service.compute.model_names import ModelName
from service.http.schemas.gradient import EXAMPLES
from service.settings import Settings
from tests.api.helpers import assert_problem, loc_resolves, locs, strict_loads, top_level_raw
from tests.compute import oracles
from tests.latex import collect_latex, katex_errors

EXAMPLE = EXAMPLES[ModelName.NEURAL_NETWORK]
X4 = [[0.5, 1.5], [1.0, -1.0], [-1.5, 0.5], [2.0, 0.25]]


def net_request(
    acts: list[str],
    loss: str,
    Ws: list[list[list[float]]],
    bs: list[list[float]],
    X: list[list[float]],
    y: list[Any],
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "model": "neural_network",
        "layers": [{"activation": a} for a in acts],
        "loss": loss,
        "parameters": {"layers": [{"W": W, "b": b} for W, b in zip(Ws, bs, strict=True)]},
        "data": {"X": X, "y": y},
    }
    return copy.deepcopy({**body, **extra})


def post(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    resp = client.post("/gradient", json=body)
    assert resp.status_code == 200, resp.text
    return strict_loads(resp.text)


# --- the independent oracle: the plain formulas composed layer by layer, differentiated by autograd ----


def oracle(req: dict[str, Any]) -> tuple[float, list[dict[str, np.ndarray]]]:
    acts = [spec["activation"] for spec in req["layers"]]
    X = np.asarray(req["data"]["X"], dtype=float)
    Ws = [np.asarray(lp["W"], dtype=float) for lp in req["parameters"]["layers"]]
    bs = [np.asarray(lp["b"], dtype=float) for lp in req["parameters"]["layers"]]
    vector = acts[-1] == "softmax"
    y = np.asarray(req["data"]["y"], dtype=float)
    if vector and y.ndim == 1:
        y = np.eye(Ws[-1].shape[1])[y.astype(int)]
    params = dict(req.get("loss_params") or {})
    reg = req.get("regularization")
    m, depth = X.shape[0], len(Ws)

    def J(theta: tuple[Any, ...]) -> Any:
        a = X
        for name, W, b in zip(acts, theta[:depth], theta[depth:], strict=True):
            a = oracles.plain_activation(name, anp.dot(a, W) + b)
        out = anp.mean(oracles.plain_loss(req["loss"], a if vector else a[:, 0], y, params))
        for W in theta[:depth]:
            if reg and reg["kind"] == "l2":
                out = out + reg["lambda"] / (2 * m) * anp.sum(W**2)
            elif reg:
                out = out + reg["lambda"] / m * anp.sum(anp.abs(W))
        return out

    theta = (*Ws, *bs)
    g = grad(J)(theta)
    return float(J(theta)), [{"W": g[i], "b": g[depth + i]} for i in range(depth)]


def assert_matches_oracle(out: dict[str, Any], req: dict[str, Any]) -> None:
    J, grads = oracle(req)
    np.testing.assert_allclose(out["loss"], J, rtol=1e-9, atol=1e-12)
    assert len(out["gradients"]["layers"]) == len(grads)
    for got, want in zip(out["gradients"]["layers"], grads, strict=True):
        np.testing.assert_allclose(got["W"], want["W"], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(got["b"], want["b"], rtol=1e-9, atol=1e-12)


def assert_mirrors_parameters(out: dict[str, Any], req: dict[str, Any]) -> None:
    """gradients = {"layers": [{"W", "b"}, ...]}, each list exactly as nested as the parameter it belongs to."""
    assert set(out["gradients"]) == {"layers"}
    params = req["parameters"]["layers"]
    assert len(out["gradients"]["layers"]) == len(params)
    for got, lp in zip(out["gradients"]["layers"], params, strict=True):
        assert set(got) == {"W", "b"}
        assert isinstance(got["W"], list) and len(got["W"]) == len(lp["W"])
        for row, prow in zip(got["W"], lp["W"], strict=True):
            assert isinstance(row, list) and len(row) == len(prow)
            assert all(isinstance(v, float) for v in row)
        assert isinstance(got["b"], list) and len(got["b"]) == len(lp["b"])
        assert all(isinstance(v, float) for v in got["b"])


# --- the schema's example and valid requests --------------------------------------------------


def test_schema_example(client: TestClient) -> None:
    req = copy.deepcopy(EXAMPLE)
    out = post(client, req)
    assert out["model"] == "neural_network"
    assert out["pairing"] == {"activation": "sigmoid", "loss": "binary_cross_entropy", "canonical": True}
    assert set(out) == {"model", "pairing", "loss", "gradients", "breakdown"}  # explain "factors", no verify
    assert_mirrors_parameters(out, req)
    assert_matches_oracle(out, req)
    bd = out["breakdown"]
    assert set(bd) == {"layers", "per_sample", "steps", "simplification", "notes"}
    assert [e["layer"] for e in bd["layers"]] == [1, 2]
    assert [e["units"] for e in bd["layers"]] == [3, 1]
    assert "g_prime" in bd["layers"][0] and "g_prime" not in bd["layers"][1]
    assert [s["factor"] for s in bd["steps"]] == [
        "z[1]", "a[1]", "z[2]", "a[2]", "L", "J",
        "dL/df", "df/dz", "delta[2]", "dJ/dW[2]", "dJ/db[2]", "delta[1]", "dJ/dW[1]", "dJ/db[1]",
    ]  # fmt: skip
    assert bd["simplification"] is not None  # sigmoid + binary_cross_entropy at the output is canonical
    # the breakdown's gradients are the response's
    for e, g in zip(bd["layers"], out["gradients"]["layers"], strict=True):
        assert e["dJ_dW"] == g["W"] and e["dJ_db"] == g["b"]


def test_schema_example_verified(client: TestClient) -> None:
    req = {**copy.deepcopy(EXAMPLE), "verify": True, "explain": False}
    out = post(client, req)
    assert set(out) == {"model", "pairing", "loss", "gradients", "verification"}
    ver = out["verification"]
    assert ver["agrees"] is True and ver["skipped"] == [] and ver["kinks"] == []
    assert len(ver["components"]) == 2 * 3 + 3 + 3 * 1 + 1
    assert ver["components"][0]["parameter"] == "layers[0].W[0][0]"
    assert ver["components"][-1]["parameter"] == "layers[1].b[0]"
    assert ver["max_relative_error"] < 1e-5
    flat = [v for g in out["gradients"]["layers"] for v in (*np.ravel(g["W"]), *g["b"])]
    assert [c["analytic"] for c in ver["components"]] == flat


def test_numbers_bit_identical_with_explain_and_verify(client: TestClient) -> None:
    base = {**copy.deepcopy(EXAMPLE), "explain": False}
    texts = []
    for extra in ({}, {"explain": "factors"}, {"explain": "full"}, {"explain": True, "verify": True}):
        resp = client.post("/gradient", json={**base, **extra})
        assert resp.status_code == 200, resp.text
        raw = top_level_raw(resp.text)
        texts.append((raw["loss"], raw["gradients"]))
    assert all(t == texts[0] for t in texts)


def test_softmax_output_with_class_indices(client: TestClient) -> None:
    Ws = [[[0.5, -0.4, 0.3], [0.2, 0.6, -0.5]], [[0.7, -0.2, 0.1], [-0.3, 0.4, 0.2], [0.5, 0.1, -0.6]]]
    bs = [[0.1, 0.0, -0.1], [0.05, -0.05, 0.0]]
    y = [0, 2, 1, 2]
    req = net_request(["tanh", "softmax"], "categorical_cross_entropy", Ws, bs, X4, y, explain="factors")
    out = post(client, req)
    assert out["pairing"] == {"activation": "softmax", "loss": "categorical_cross_entropy", "canonical": True}
    assert_mirrors_parameters(out, req)
    assert_matches_oracle(out, req)
    ps = out["breakdown"]["per_sample"]
    assert np.shape(ps["f"]) == (4, 3) and np.shape(ps["df_dz"]) == (4, 3, 3)
    np.testing.assert_allclose(np.sum(ps["f"], axis=1), 1.0, rtol=1e-15)
    # class indices and the same one-hot rows give the same bits
    rows = np.eye(3)[y].tolist()
    a = client.post("/gradient", json={**req, "explain": False})
    b = client.post("/gradient", json={**req, "explain": False, "data": {"X": X4, "y": rows}})
    assert a.status_code == b.status_code == 200
    assert top_level_raw(a.text)["gradients"] == top_level_raw(b.text)["gradients"]
    assert top_level_raw(a.text)["loss"] == top_level_raw(b.text)["loss"]


@pytest.mark.parametrize(
    "req",
    [
        pytest.param(
            net_request(
                ["relu", "softmax"], "squared_error", [[[0.5, -0.4], [0.3, 0.2]], [[0.7, -0.2], [-0.3, 0.4]]],
                [[0.1, 0.2], [0.05, -0.05]], X4, [[0.2, 0.8], [1.5, -0.5], [0.0, 1.0], [0.5, 0.5]],
                regularization={"kind": "l1", "lambda": 0.3},
            ),
            id="relu/softmax+squared_error/l1",
        ),
        pytest.param(
            net_request(
                ["sigmoid", "exp", "identity"], "huber",
                [[[0.5, -0.4], [0.3, 0.2]], [[0.7, -0.2, 0.1], [-0.3, 0.4, 0.2]], [[0.5], [0.1], [-0.6]]],
                [[0.1, 0.2], [0.05, -0.05, 0.0], [0.2]], X4, [1.0, -2.0, 0.5, 3.0], loss_params={"delta": 0.5},
                regularization={"kind": "l2", "lambda": 0.7},
            ),
            id="sigmoid-exp/identity+huber[0.5]/l2",
        ),
        pytest.param(
            net_request(
                ["softplus", "tanh"], "absolute_error", [[[0.5, -0.4, 0.25], [0.3, 0.2, -0.1]], [[0.7], [-0.3], [0.2]]],
                [[0.1, 0.2, 0.0], [0.05]], X4, [0.9, -0.9, 0.1, 0.3],
            ),
            id="softplus/tanh+absolute_error",
        ),
        pytest.param(
            net_request(
                ["tanh", "softplus"], "poisson", [[[0.5, -0.4], [0.3, 0.2]], [[0.7], [-0.3]]], [[0.1, 0.2], [0.05]],
                X4, [0, 2, 1, 4], explain="full",
            ),
            id="tanh/softplus+poisson",
        ),
    ],
)  # fmt: skip
def test_more_networks_match_the_oracle(client: TestClient, req: dict[str, Any]) -> None:
    out = post(client, req)
    assert out["pairing"]["activation"] == req["layers"][-1]["activation"]
    assert out["pairing"]["loss"] == req["loss"]
    assert out["pairing"]["canonical"] is False
    if "loss_params" in req:
        assert out["pairing"]["loss_params"] == req["loss_params"]
    assert_mirrors_parameters(out, req)
    assert_matches_oracle(out, req)


def _full_requests() -> list[dict[str, Any]]:
    """Networks covering every activation in a hidden and in the output layer, every loss, l1 and l2."""
    W22, b2 = [[0.5, -0.4], [0.3, 0.2]], [0.1, -0.2]
    W21, b1 = [[0.6], [-0.35]], [0.05]
    out = []
    for hidden in (name.value for name, act in ACTIVATIONS.items() if not act.vector):
        out.append(net_request([hidden, "sigmoid"], "binary_cross_entropy", [W22, W21], [b2, b1], X4, [0, 1, 1, 0]))
    for act, loss, y, extra in (
        ("identity", "squared_error", [0.5, -1.0, 2.0, 0.0], {"regularization": {"kind": "l2", "lambda": 0.5}}),
        ("identity", "huber", [0.5, -1.0, 2.0, 0.0], {"loss_params": {"delta": 0.25}}),
        ("tanh", "absolute_error", [0.5, -0.9, 0.8, 0.0], {"regularization": {"kind": "l1", "lambda": 0.5}}),
        ("relu", "squared_error", [0.5, 1.0, 2.0, 0.0], {}),
        ("exp", "poisson", [0, 1, 3, 2], {}),
        ("softplus", "poisson", [0, 1, 3, 2], {}),
        ("sigmoid", "poisson", [0, 1, 3, 2], {}),
    ):
        out.append(net_request(["tanh", act], loss, [W22, W21], [b2, b1], X4, y, **extra))
    W23 = [[0.5, -0.4, 0.1], [0.3, 0.2, -0.2]]
    out.append(
        net_request(
            ["relu", "softmax"], "categorical_cross_entropy", [W22, W23], [b2, [0.0, 0.1, -0.1]], X4, [0, 2, 1, 1]
        )
    )
    out.append(net_request(["softmax"], "squared_error", [W23], [[0.0, 0.1, -0.1]], X4, [[1, 0, 0.5]] * 4))
    out.append(
        net_request(["sigmoid", "tanh", "identity"], "squared_error", [W22, W22, W21], [b2, b2, b1], X4, [1, 2, 3, 4])
    )
    return [{**r, "explain": "full"} for r in out]


def _full_latex(client: TestClient) -> list[str]:
    strings: list[str] = []
    for req in _full_requests():
        out = post(client, req)
        found = collect_latex(out["breakdown"])
        steps = out["breakdown"]["steps"]
        assert len(found) >= len(steps) + sum(len(s.get("derivation", [])) for s in steps)
        assert any("derivation" in s for s in steps)
        strings += found
    strings = sorted(set(strings))
    assert len(strings) > 50
    return strings


# a^{[l−1]}^{\top} and W^{[l]}^{\top}: a superscript on a superscripted symbol (KaTeX: "Double superscript")
DOUBLE_SUPERSCRIPT = "]}^{"


def test_every_latex_string_of_a_full_breakdown_parses_with_katex(client: TestClient) -> None:
    assert katex_errors(_full_latex(client)) == []


def test_latex_without_the_transposes_parses_with_katex(client: TestClient) -> None:
    """Every other LaTeX string of the full breakdowns parses (the transposes are the xfail above)."""
    strings = _full_latex(client)
    others = [s for s in strings if DOUBLE_SUPERSCRIPT not in s]
    assert len(others) > 40
    assert katex_errors(others) == []
    # nothing but the transposed products fails
    failing = {s for s, _ in katex_errors(strings)}
    assert failing <= {s for s in strings if DOUBLE_SUPERSCRIPT in s}


def test_non_finite_result_names_the_layer(client: TestClient) -> None:
    # exp hidden layer: z[1] = 400·x, e^800 overflows for example 1
    req = net_request(
        ["exp", "identity"], "squared_error", [[[400.0]], [[1.0]]], [[0.0], [0.0]], [[1.0], [2.0], [0.5]], [0, 0, 0]
    )
    body = assert_problem(client.post("/gradient", json=req), 422, "non-finite-result")
    assert body["quantity"] == "a[1]" and body["examples"] == [1]
    assert "a[1]" in body["detail"]


# --- errors: precise locations, never a 500 --------------------------------------------------------


def _example(**changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(EXAMPLE), **changes}


def _with(path: list[str | int], value: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    req = copy.deepcopy(base if base is not None else EXAMPLE)
    node: Any = req
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return req


P0, P1 = ["parameters", "layers", 0], ["parameters", "layers", 1]
ERRORS: dict[str, tuple[dict[str, Any], str, list[list[str | int]] | None]] = {
    "fewer parameter layers than layers": (
        _with(["parameters", "layers"], copy.deepcopy(EXAMPLE["parameters"]["layers"][:1])),
        "validation-error",
        [["parameters", "layers"]],
    ),
    "more layers than parameter layers": (
        _example(layers=[*EXAMPLE["layers"], {"activation": "identity"}]),
        "validation-error",
        [["parameters", "layers"]],
    ),
    "W[1] rows != n": (_with([*P0, "W"], [[0.5, -0.4, 0.3]]), "validation-error", [[*P0, "W"]]),
    "W[2] rows != previous units": (_with([*P1, "W"], [[0.7], [-0.3]]), "validation-error", [[*P1, "W"]]),
    "ragged W row": (_with([*P0, "W", 1], [0.2, 0.6]), "validation-error", [[*P0, "W", 1]]),
    "b[1] too short": (_with([*P0, "b"], [0.1, 0.0]), "validation-error", [[*P0, "b"]]),
    "b[2] too long": (_with([*P1, "b"], [0.05, 0.0]), "validation-error", [[*P1, "b"]]),
    "softmax in a hidden layer": (
        _with(["layers", 0, "activation"], "softmax"),
        "validation-error",
        [["layers", 0, "activation"]],
    ),
    "2 output units with sigmoid": (
        _with([*P1], {"W": [[0.7, 0.1], [-0.3, 0.2], [0.5, 0.0]], "b": [0.05, 0.0]}),
        "validation-error",
        [[*P1, "W"]],
    ),
    "1 output unit with softmax": (
        _example(layers=[{"activation": "relu"}, {"activation": "softmax"}], loss="categorical_cross_entropy"),
        "validation-error",
        [[*P1, "W"]],
    ),
    "y too short": (_with(["data", "y"], [0, 0, 0, 1, 1]), "validation-error", [["data", "y"]]),
    "y rows for one output": (_with(["data", "y"], [[0.0]] * 6), "validation-error", [["data", "y"]]),
    "ragged X": (_with(["data", "X", 2], [1.5]), "validation-error", [["data", "X", 2]]),
    "target outside the loss's domain": (_with(["data", "y", 4], 2.0), "domain-error", [["data", "y", 4]]),
    "loss parameter of another loss": (
        _example(loss_params={"delta": 0.5}),
        "validation-error",
        [["loss_params", "delta"]],
    ),
    "unknown activation": (
        _with(["layers", 1, "activation"], "gelu"),
        "validation-error",
        [["layers", 1, "activation"]],
    ),
    "no layers": (_example(layers=[]), "validation-error", [["layers"]]),
    "W not a matrix": (_with([*P0, "W"], [0.5, -0.4, 0.3]), "validation-error", None),
    "softmax rows of the wrong length": (
        _example(
            layers=[{"activation": "relu"}, {"activation": "softmax"}],
            loss="categorical_cross_entropy",
            parameters={"layers": [EXAMPLE["parameters"]["layers"][0], {"W": [[0.7, 0.1]] * 3, "b": [0.0, 0.1]}]},
            data={"X": EXAMPLE["data"]["X"], "y": [[1.0, 0.0, 0.0]] * 6},
        ),
        "validation-error",
        [["data", "y", i] for i in range(6)],
    ),
    "incompatible output pairing": (
        _example(loss="poisson", layers=[{"activation": "relu"}, {"activation": "identity"}]),
        "incompatible-pairing",
        None,
    ),
    "categorical_cross_entropy after sigmoid": (
        _example(loss="categorical_cross_entropy"),
        "incompatible-pairing",
        None,
    ),
}


@pytest.mark.parametrize(("req", "slug", "expected"), list(ERRORS.values()), ids=list(ERRORS))
def test_error(
    lenient_client: TestClient, req: dict[str, Any], slug: str, expected: list[list[str | int]] | None
) -> None:
    body = assert_problem(lenient_client.post("/gradient", json=req), 422, slug)
    if expected is not None:
        assert locs(body) == expected, body
    for loc in locs(body):
        assert loc_resolves(req, loc), loc
    if slug == "incompatible-pairing":
        assert body["activation"] == req["layers"][-1]["activation"] and body["loss"] == req["loss"]
        assert req["loss"] in body["detail"]


def test_error_cases_are_valid_once_repaired(client: TestClient) -> None:
    """The base of every error case is valid: each error comes from its one change."""
    post(client, copy.deepcopy(EXAMPLE))


def test_ragged_target_rows_are_a_422(lenient_client: TestClient) -> None:
    req = _example(
        layers=[{"activation": "relu"}, {"activation": "softmax"}],
        loss="categorical_cross_entropy",
        parameters={"layers": [EXAMPLE["parameters"]["layers"][0], {"W": [[0.7, 0.1]] * 3, "b": [0.0, 0.1]}]},
        data={"X": EXAMPLE["data"]["X"], "y": [[1.0, 0.0]] * 5 + [[1.0]]},
    )
    body = assert_problem(lenient_client.post("/gradient", json=req), 422, {"validation-error", "domain-error"})
    assert ["data", "y", 5] in locs(body)


def _mutations() -> Iterator[tuple[str, dict[str, Any]]]:
    """Structural changes of the example, one at a time: every one must be answered 200 or 422."""
    layers = EXAMPLE["parameters"]["layers"]
    for i, lp in enumerate(layers):
        W, b = lp["W"], lp["b"]
        yield f"W{i}-drop-row", _with(["parameters", "layers", i, "W"], W[:-1])
        yield f"W{i}-add-row", _with(["parameters", "layers", i, "W"], [*W, W[0]])
        yield f"W{i}-drop-col", _with(["parameters", "layers", i, "W"], [r[:-1] for r in W])
        yield f"W{i}-add-col", _with(["parameters", "layers", i, "W"], [[*r, 0.5] for r in W])
        yield f"W{i}-empty-rows", _with(["parameters", "layers", i, "W"], [[] for _ in W])
        yield f"W{i}-empty", _with(["parameters", "layers", i, "W"], [])
        yield f"b{i}-empty", _with(["parameters", "layers", i, "b"], [])
        yield f"b{i}-add", _with(["parameters", "layers", i, "b"], [*b, 0.0])
        yield f"b{i}-matrix", _with(["parameters", "layers", i, "b"], [b])
        yield f"W{i}-huge", _with(["parameters", "layers", i, "W"], [[1e308] * len(r) for r in W])
    for act in (name.value for name in ACTIVATIONS):
        for loss in ("squared_error", "binary_cross_entropy", "categorical_cross_entropy", "poisson", "huber"):
            req = _with(["layers", 1, "activation"], act)
            req["loss"] = loss
            yield f"{act}+{loss}", req
    yield "X-empty-row", _with(["data", "X", 0], [])
    yield "X-empty", _with(["data", "X"], [])
    yield "y-empty", _with(["data", "y"], [])
    yield "y-class-rows", _with(["data", "y"], [[1, 0]] * 6)
    yield "no-parameters", {k: v for k, v in copy.deepcopy(EXAMPLE).items() if k != "parameters"}
    yield "parameters-w", _with(["parameters"], {"w": [1.0, 2.0], "b": 0.0})
    yield "verify-full", _example(verify=True, explain="full")


@pytest.mark.parametrize(("name", "req"), list(_mutations()), ids=[n for n, _ in _mutations()])
def test_structural_mutations_never_500(lenient_client: TestClient, name: str, req: dict[str, Any]) -> None:
    resp = lenient_client.post("/gradient", json=req)
    assert resp.status_code in (200, 422), (name, resp.status_code, resp.text[:300])
    if resp.status_code == 422:
        body = assert_problem(
            resp, 422, {"validation-error", "domain-error", "incompatible-pairing", "non-finite-result"}
        )
        for loc in locs(body):
            assert loc_resolves(req, loc), (name, loc)


# --- limits ----------------------------------------------------------------------------------------

SMALL = Settings(max_layers=2, max_units=3, max_parameters=10, max_explain_values=50, max_verify_work=100)


@pytest.fixture
def small() -> Iterator[TestClient]:
    with TestClient(create_app(SMALL), raise_server_exceptions=False) as c:
        yield c


def _chain(n: int, widths: list[int], m: int, **extra: Any) -> dict[str, Any]:
    """A valid tanh…identity + squared_error network: n inputs, the given layer widths (last 1), m examples."""
    Ws, bs, fan_in = [], [], n
    for j, w in enumerate(widths):
        Ws.append([[0.1 * (r + 1) - 0.05 * (c + j) for c in range(w)] for r in range(fan_in)])
        bs.append([0.01 * c for c in range(w)])
        fan_in = w
    X = [[0.5 * i - 0.25 * c for c in range(n)] for i in range(m)]
    acts = ["tanh"] * (len(widths) - 1) + ["identity"]
    return net_request(acts, "squared_error", Ws, bs, X, [0.1 * i for i in range(m)], **extra)


LIMIT_CASES = {
    # id: (request, status, slug, locs)
    "2 layers is the limit": (_chain(1, [3, 1], 2), 200, None, None),
    "3 layers": (_chain(1, [2, 2, 1], 2), 422, "validation-error", [["layers"]]),
    "3 units is the limit": (_chain(1, [3, 1], 2), 200, None, None),
    "4 units": (  # a softmax layer of 4 classes on one feature: 8 parameters, only the unit count is over
        net_request(["softmax"], "categorical_cross_entropy", [[[0.1, 0.2, 0.3, 0.4]]], [[0.0] * 4], [[1.0]], [2]),
        422,
        "validation-error",
        [["parameters", "layers", 0, "W"]],
    ),
    "10 parameters is the limit": (_chain(1, [3, 1], 2), 200, None, None),  # 3 + 3 + 3 + 1
    "13 parameters": (_chain(2, [3, 1], 2), 422, "validation-error", [["parameters", "layers"]]),  # 6 + 3 + 3 + 1
    # per example: 7 numbers per unit (z, a, δ, g' and the steps' z, a, δ) + the output's 6 factors twice
    "explain of 26 numbers": (_chain(1, [1, 1], 1, explain="factors"), 200, None, None),  # 1·(7·2 + 12)
    "explain of 52 numbers": (_chain(1, [1, 1], 2, explain="factors"), 422, "explain-too-large", None),
    "verify of 96 multiply-adds": (_chain(1, [1, 1], 6, verify=True), 200, None, None),  # 2·4·(6·2)
    "verify of 112 multiply-adds": (_chain(1, [1, 1], 7, verify=True), 422, "explain-too-large", None),
}


@pytest.mark.parametrize(("req", "status", "slug", "expected"), list(LIMIT_CASES.values()), ids=list(LIMIT_CASES))
def test_limits(small: TestClient, req: dict[str, Any], status: int, slug: str | None, expected: Any) -> None:
    resp = small.post("/gradient", json=req)
    if status == 200:
        assert resp.status_code == 200, resp.text
        out = strict_loads(resp.text)
        assert_mirrors_parameters(out, req)
        assert_matches_oracle(out, req)
        return
    assert slug is not None
    body = assert_problem(resp, status, slug)
    if expected is not None:
        assert locs(body) == expected, body
    if slug == "explain-too-large":
        assert body["size"] > body["limit"]
        assert body["limit"] in (SMALL.max_explain_values, SMALL.max_verify_work)
        assert body["limit"] == (SMALL.max_verify_work if req.get("verify") else SMALL.max_explain_values)


def test_default_client_accepts_what_the_small_limits_refuse(client: TestClient) -> None:
    for req, status, _, _ in LIMIT_CASES.values():
        if status == 422:
            post(client, req)


# --- the cost of the forward and backward passes ---------------------------------------------------


def test_the_reviews_822_kb_network_is_a_quick_422(client: TestClient) -> None:
    """m = 100,000 examples through one hidden layer of 1,000 units: 10⁸ values kept for backprop (20 s and
    5.6 GB before the limit), from a body of 822 kB."""
    m, units = 100_000, 1000
    X = "[" + ",".join(["[0.5]", "[1.5]"] * (m // 2)) + "]"
    y = "[" + ",".join(["1", "0"] * (m // 2)) + "]"
    W1 = "[[" + ",".join(["0.1"] * units) + "]]"
    W2 = "[" + ",".join(["[0.1]"] * units) + "]"
    raw = (
        '{"model": "neural_network", "layers": [{"activation": "sigmoid"}, {"activation": "sigmoid"}], '
        f'"loss": "binary_cross_entropy", "parameters": {{"layers": [{{"W": {W1}, "b": [{",".join(["0"] * units)}]}}, '
        f'{{"W": {W2}, "b": [0]}}]}}, "data": {{"X": {X}, "y": {y}}}}}'
    )
    assert 800_000 < len(raw) < 850_000
    resp = client.post("/gradient", content=raw, headers={"content-type": "application/json"})
    body = assert_problem(resp, 422, "validation-error")
    assert locs(body) == [["data", "X"]]
    (error,) = body["errors"]
    assert f"{m * (units + 1)} values" in error["msg"] and str(Settings().max_network_values) in error["msg"]
    assert "fewer examples" in error["msg"]


@pytest.mark.parametrize(
    ("limits", "m", "status", "quantity"),
    [
        # _chain(2, [3, 1], m): Σ weights = 2·3 + 3·1 = 9, Σ units = 4
        ({"max_network_work": 36}, 4, 200, None),
        ({"max_network_work": 36}, 5, 422, "45 multiply-adds"),
        ({"max_network_values": 16}, 4, 200, None),
        ({"max_network_values": 16}, 5, 422, "20 values"),
    ],
)
def test_network_cost_limits(limits: dict[str, int], m: int, status: int, quantity: str | None) -> None:
    req = _chain(2, [3, 1], m)
    with TestClient(create_app(Settings(**limits)), raise_server_exceptions=False) as c:
        resp = c.post("/gradient", json=req)
        descent = c.post("/descent", json={"problem": req, "learning_rate": 0.1, "steps": 1})
    if status == 200:
        assert_matches_oracle(post_ok(resp), req)
        assert descent.status_code == 200, descent.text
        return
    body = assert_problem(resp, 422, "validation-error")
    assert locs(body) == [["data", "X"]]
    assert quantity is not None and quantity in body["errors"][0]["msg"]
    assert str(next(iter(limits.values()))) in body["errors"][0]["msg"]
    # /descent goes through the same check, located in its problem
    body = assert_problem(descent, 422, "validation-error")
    assert locs(body) == [["problem", "data", "X"]]


def post_ok(resp: Any) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    return strict_loads(resp.text)

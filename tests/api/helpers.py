"""Shared helpers of the HTTP tests: request builders, an independent numpy oracle, problem checks.

The oracle uses the PLAIN formulas of docs/design/math.md (1/(1+e^(−z)), −y log f − (1−y) log(1−f), the
k×k softmax Jacobian multiplied out, ...). It reads nothing from `service` but names, so it can
disagree with the service's stable kernels; on the moderate inputs used here both must agree to
rounding.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import httpx
import numpy as np

from tests import oracles as plain

WORKED_X: list[list[float]] = [[0.5, 1.5], [1, 1], [1.5, 0.5], [3, 0.5], [2, 2], [1, 2.5]]
PROBLEM_JSON = "application/problem+json"
URN = "urn:gradient-service:problem:"
MAX_PROBLEM_BYTES = 16 * 1024

SOFTMAX_PARAMS: dict[str, Any] = {"w": [[0.5, -0.2, 0.1], [-0.3, 0.4, 0.2]], "b": [0.0, 0.1, -0.1]}
SOFTMAX_CLASSES = [0, 0, 1, 2, 2, 1]
SOFTMAX_ROWS = [[0.7, 0.2, 0.1], [0.5, 0.25, 0.25], [0.0, 1.0, 0.0], [0.1, 0.1, 0.8], [0.2, 0.3, 0.5], [0.3, 0.6, 0.1]]

# Targets in each loss's domain, one per example of WORKED_X.
TARGETS: dict[str, list[float]] = {
    "squared_error": [1.2, 0.8, 2.0, 3.1, 2.2, 0.9],
    "absolute_error": [1.2, 0.8, 2.0, 3.1, 2.2, 0.9],
    "huber": [1.2, 0.8, 2.0, 3.1, 2.2, -0.4],
    "binary_cross_entropy": [0, 0, 0.25, 1, 1, 1],
    "poisson": [1, 2, 0, 4, 3, 2],
}

PRESET_PAIRINGS = {
    "linear_regression": ("identity", "squared_error"),
    "logistic_regression": ("sigmoid", "binary_cross_entropy"),
    "softmax_regression": ("softmax", "categorical_cross_entropy"),
    "poisson_regression": ("exp", "poisson"),
}


def preset(model: str, **extra: Any) -> dict[str, Any]:
    """A valid request for a preset model on the worked X (moderate z, so every factor is finite)."""
    if model == "linear_regression":
        body: dict[str, Any] = {
            "parameters": {"w": [1.0, -0.5], "b": 0.25},
            "data": {"X": WORKED_X, "y": TARGETS["squared_error"]},
        }
    elif model == "logistic_regression":
        body = {"parameters": {"w": [0.5, -0.25], "b": 0.1}, "data": {"X": WORKED_X, "y": [0, 0, 0, 1, 1, 1]}}
    elif model == "softmax_regression":
        body = {"parameters": copy.deepcopy(SOFTMAX_PARAMS), "data": {"X": WORKED_X, "y": SOFTMAX_CLASSES}}
    elif model == "poisson_regression":
        body = {"parameters": {"w": [0.3, 0.2], "b": 0.1}, "data": {"X": WORKED_X, "y": TARGETS["poisson"]}}
    else:
        raise ValueError(model)
    return copy.deepcopy({"model": model, **body, **extra})


def single_layer(activation: str, loss: str, **extra: Any) -> dict[str, Any]:
    """A valid single_layer request for a compatible pairing."""
    if activation == "softmax":
        params: dict[str, Any] = copy.deepcopy(SOFTMAX_PARAMS)
        y: list[Any] = list(SOFTMAX_CLASSES)
    else:
        params = {"w": [0.4, -0.3], "b": 0.2}
        y = list(TARGETS[loss])
    body = {"model": "single_layer", "activation": activation, "loss": loss, "parameters": params}
    body["data"] = {"X": WORKED_X, "y": y}
    return copy.deepcopy({**body, **extra})


def pairing_of(req: dict[str, Any]) -> tuple[str, str]:
    if req["model"] == "single_layer":
        return req["activation"], req["loss"]
    return PRESET_PAIRINGS[req["model"]]


# --- the independent oracle (plain formulas) --------------------------------------------------


def oracle(req: dict[str, Any]) -> dict[str, Any]:
    """J, gradients and the per-example factors of a valid request, from the plain formulas."""
    act, loss = pairing_of(req)
    X = np.asarray(req["data"]["X"], dtype=float)
    w = np.asarray(req["parameters"]["w"], dtype=float)
    b = np.asarray(req["parameters"]["b"], dtype=float)
    y = np.asarray(req["data"]["y"], dtype=float)
    m = X.shape[0]
    if act == "softmax" and y.ndim == 1:
        y = np.eye(w.shape[1])[y.astype(int)]
    delta = float((req.get("loss_params") or {}).get("delta", 1.0))
    z = X @ w + b
    f, df_dz = plain.activation(act, z)
    L, dL_df = plain.loss(loss, f, y, delta)
    dL_dz = np.einsum("ik,ikl->il", dL_df, df_dz) if act == "softmax" else dL_df * df_dz
    grad_w = X.T @ dL_dz / m
    J = float(np.mean(L))
    reg = req.get("regularization")
    if reg:
        lam = reg["lambda"]
        if reg["kind"] == "l2":
            J += lam / (2 * m) * float(np.sum(w * w))
            grad_w = grad_w + lam / m * w
        else:
            J += lam / m * float(np.sum(np.abs(w)))
            grad_w = grad_w + lam / m * np.sign(w)
    return {
        "loss": J,
        "w": grad_w,
        "b": dL_dz.mean(axis=0),
        "z": z,
        "f": f,
        "L": L,
        "dL_df": dL_df,
        "df_dz": df_dz,
        "dL_dz": dL_dz,
    }


# --- response checks ----------------------------------------------------------------------------


def strict_loads(text: str) -> Any:
    """json.loads that refuses NaN / Infinity (Python's json accepts them; JSON does not)."""

    def refuse(const: str) -> Any:
        raise ValueError(f"non-JSON constant {const} in the response")

    return json.loads(text, parse_constant=refuse)


def all_finite(obj: Any) -> bool:
    """Every number anywhere in a parsed JSON value is finite."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return True
    if isinstance(obj, int | float):
        return math.isfinite(obj)
    if isinstance(obj, dict):
        return all(all_finite(v) for v in obj.values())
    if isinstance(obj, list):
        return all(all_finite(v) for v in obj)
    return False


def top_level_raw(text: str) -> dict[str, str]:
    """The raw JSON text of each top-level member of an object, exactly as sent (for bit-level checks)."""
    dec = json.JSONDecoder()
    spans: dict[str, str] = {}

    def skip(i: int) -> int:
        while text[i] in " \t\r\n":
            i += 1
        return i

    i = skip(0)
    assert text[i] == "{"
    i = skip(i + 1)
    while text[i] != "}":
        key, i = dec.raw_decode(text, i)
        i = skip(i)
        assert text[i] == ":"
        start = skip(i + 1)
        _, end = dec.raw_decode(text, start)
        spans[key] = text[start:end]
        i = skip(end)
        if text[i] == ",":
            i = skip(i + 1)
    return spans


def assert_problem(resp: httpx.Response, status: int, slug: str | set[str], *, secret: str | None = None) -> Any:
    """The answer is an RFC 9457 problem of this status and slug, small, without traceback or echo."""
    text = resp.text
    assert resp.status_code == status, (resp.status_code, text[:500])
    assert resp.headers["content-type"].split(";")[0].strip() == PROBLEM_JSON
    assert len(resp.content) < MAX_PROBLEM_BYTES, len(resp.content)
    assert "Traceback" not in text
    assert 'File "' not in text
    if secret is not None:
        assert secret not in text, f"the request's value {secret!r} is echoed: {text[:500]}"
    body = strict_loads(text)
    assert isinstance(body, dict)
    slugs = {slug} if isinstance(slug, str) else slug
    assert body["type"] in {URN + s for s in slugs}, body
    assert isinstance(body["title"], str) and body["title"]
    assert body["status"] == status
    assert isinstance(body["detail"], str) and body["detail"]
    if body["type"] == URN + "validation-error":
        assert "errors" in body, body
    if "errors" in body:
        errors = body["errors"]
        assert isinstance(errors, list) and 1 <= len(errors) <= 20, errors
        for e in errors:
            assert set(e) == {"loc", "msg"}, e
            assert isinstance(e["loc"], list)
            assert all(isinstance(p, str | int) and not isinstance(p, bool) for p in e["loc"]), e
            assert isinstance(e["msg"], str) and e["msg"]
    return body


def locs(body: dict[str, Any]) -> list[list[str | int]]:
    return [e["loc"] for e in body.get("errors", [])]


def loc_resolves(request: Any, loc: list[str | int]) -> bool:
    """Whether `loc` is a JSON path into the request (its last key may be a missing required field)."""
    node = request
    for depth, part in enumerate(loc):
        last = depth == len(loc) - 1
        if isinstance(node, dict) and isinstance(part, str):
            if part not in node:
                return last
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return False
    return True

"""Random bodies and random mutations of valid requests: never a 5xx, always problem+json or finite numbers."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.app import create_app
from tests.api.helpers import (
    PRESET_PAIRINGS,
    PROBLEM_JSON,
    SOFTMAX_ROWS,
    URN,
    WORKED_X,
    all_finite,
    preset,
    single_layer,
    strict_loads,
)

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

VALID = [preset(m) for m in PRESET_PAIRINGS] + [
    preset("softmax_regression", data={"X": WORKED_X, "y": SOFTMAX_ROWS}),
    preset("logistic_regression", regularization={"kind": "l2", "lambda": 0.7}, explain="full", verify=True),
    preset("poisson_regression", regularization={"kind": "l1", "lambda": 0.2}, explain=True),
    single_layer("sigmoid", "huber", loss_params={"delta": 0.5}, explain="factors"),
    single_layer("softmax", "squared_error", verify=True),
    single_layer("relu", "absolute_error", explain="full"),
    single_layer("tanh", "squared_error"),
]
NAMES = ["model", "parameters", "data", "w", "b", "X", "y", "activation", "loss", "loss_params", "delta"]
NAMES += ["regularization", "kind", "lambda", "explain", "verify", "linear_regression", "softmax", "huber"]

# Integers stay within ±2^64: a 400-digit class index is a known 500 (test_errors.test_huge_class_index_is_a_422).
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0, 1, 2, -1, 0.5, 1e308, -1e308, 5e-324, 800.0, 1e200])
    | st.text(max_size=12)
    | st.sampled_from(NAMES)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=25,
)


@pytest.fixture(scope="module")
def fuzz_client() -> Iterator[TestClient]:
    with TestClient(create_app(), raise_server_exceptions=False) as c:
        yield c


def check_answer(resp: Any) -> None:
    assert resp.status_code < 500, resp.text[:500]
    if resp.status_code == 200:
        assert resp.headers["content-type"].split(";")[0] == "application/json"
        assert all_finite(strict_loads(resp.text))
    else:
        assert resp.headers["content-type"].split(";")[0] == PROBLEM_JSON, resp.text[:300]
        body = strict_loads(resp.text)
        assert body["type"].startswith(URN) and body["status"] == resp.status_code
        assert "Traceback" not in resp.text


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    body = copy.deepcopy(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 3))):
        candidates = paths(body)
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        parent: Any = body
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["drop", "replace", "replace", "add"]))
        if action == "drop":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = draw(json_values)
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(NAMES))] = draw(json_values)
        else:
            parent.append(draw(json_values))
    return body


@FUZZ
@given(body=json_values)
def test_random_json(fuzz_client: TestClient, body: Any) -> None:
    check_answer(
        fuzz_client.post("/gradient", content=json.dumps(body).encode(), headers={"content-type": "application/json"})
    )


@FUZZ
@given(body=mutated())
def test_mutated_valid_requests(fuzz_client: TestClient, body: dict[str, Any]) -> None:
    check_answer(
        fuzz_client.post("/gradient", content=json.dumps(body).encode(), headers={"content-type": "application/json"})
    )


@settings(FUZZ, max_examples=50)
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_random_bytes(fuzz_client: TestClient, raw: bytes) -> None:
    check_answer(fuzz_client.post("/gradient", content=raw, headers={"content-type": "application/json"}))


def test_valid_bases_are_valid(fuzz_client: TestClient) -> None:
    """The mutations start from requests that succeed, so a refusal comes from the mutation."""
    for body in VALID:
        resp = fuzz_client.post("/gradient", json=body)
        assert resp.status_code == 200, resp.text
        check_answer(resp)

"""Every error class of POST /gradient (and 404/405) as RFC 9457 problem+json (docs/errors.md).

Each bad request carries a distinctive value ("SECRET-123" or 123456.789) where it can, and the
answer must not echo it, nor carry a traceback, nor exceed 16 KB, nor be a 500.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.api.helpers import (
    MAX_PROBLEM_BYTES,
    SOFTMAX_PARAMS,
    WORKED_X,
    assert_problem,
    loc_resolves,
    locs,
    preset,
    single_layer,
)

SECRET = "SECRET-123"
BIG = 123456.789
BIG_TEXT = "123456.789"
JSON_HEADERS = {"content-type": "application/json"}


def with_value(base: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    body = copy.deepcopy(base)
    node: Any = body
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return body


def without(base: dict[str, Any], *path: str) -> dict[str, Any]:
    body = copy.deepcopy(base)
    node: Any = body
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return body


@dataclass
class Case:
    id: str
    status: int | set[int]  # a set: any of these
    slug: str | set[str]
    body: dict[str, Any] | list[Any] | None = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON_HEADERS))
    loc: list[str | int] | None = None  # a loc the errors must contain
    secret: str | None = BIG_TEXT
    detail_contains: tuple[str, ...] = ()

    def send(self, client: TestClient) -> Any:
        content = self.raw if self.raw is not None else json.dumps(self.body).encode()
        return client.post("/gradient", content=content, headers=self.headers)


# --- bad values: JSON literals, strings and booleans where numbers belong ---------------------------

# logistic regression with l2; X[0][0] carries the distinctive number that must not come back
VALUE_BASE = with_value(
    preset("logistic_regression", regularization={"kind": "l2", "lambda": 0.5}), ("data", "X", 0, 0), BIG
)
VALUE_PATHS: list[tuple[str | int, ...]] = [
    ("data", "X", 3, 1),
    ("data", "y", 2),
    ("parameters", "w", 0),
    ("parameters", "b"),
    ("regularization", "lambda"),
]
LITERALS = {"NaN": "NaN", "Infinity": "Infinity", "-Infinity": "-Infinity", "1e999": "1e999", "-1e999": "-1e999"}
PLACEHOLDER = "__PLACEHOLDER__"


def value_cases() -> Iterator[Case]:
    for path in VALUE_PATHS:
        where = "/".join(map(str, path))
        for name, literal in LITERALS.items():
            raw = json.dumps(with_value(VALUE_BASE, path, PLACEHOLDER)).replace(f'"{PLACEHOLDER}"', literal)
            yield Case(f"{name}@{where}", 422, "validation-error", raw=raw.encode(), loc=list(path))
        for name, value in [("numeric-string", "2.5"), ("secret-string", SECRET), ("true", True), ("false", False)]:
            secret = SECRET if value == SECRET else BIG_TEXT
            yield Case(
                f"{name}@{where}",
                422,
                "validation-error",
                body=with_value(VALUE_BASE, path, value),
                loc=list(path),
                secret=secret,
            )
        yield Case(f"null@{where}", 422, "validation-error", body=with_value(VALUE_BASE, path, None), loc=list(path))


SOFTMAX = preset("softmax_regression")
SOFTMAX_SECRET = with_value(SOFTMAX, ("data", "X", 0, 0), BIG)
SL_SIGMOID_BCE = with_value(single_layer("sigmoid", "binary_cross_entropy"), ("data", "X", 0, 0), BIG)
SL_EXP_POISSON = with_value(single_layer("exp", "poisson"), ("data", "X", 0, 0), 0.25)


def structural_cases() -> Iterator[Case]:
    lin = preset("linear_regression")
    logi = preset("logistic_regression")
    # unknown fields, anywhere
    yield Case("unknown-top-level", 422, "validation-error", body={**lin, "unexpected": BIG}, loc=["unexpected"])
    yield Case(
        "unknown-in-parameters",
        422,
        "validation-error",
        body=with_value(lin, ("parameters", "c"), BIG),
        loc=["parameters", "c"],
    )
    yield Case(
        "unknown-in-data",
        422,
        "validation-error",
        body=with_value(lin, ("data", "weights"), [BIG]),
        loc=["data", "weights"],
    )
    reg = {**lin, "regularization": {"kind": "l2", "lambda": 0.1, "alpha": BIG}}
    yield Case("unknown-in-regularization", 422, "validation-error", body=reg, loc=["regularization", "alpha"])
    huber = single_layer("identity", "huber", loss_params={"delta": 0.5, "epsilon": BIG})
    yield Case("unknown-in-loss_params", 422, "validation-error", body=huber, loc=["loss_params", "epsilon"])
    for key, value in [("activation", "sigmoid"), ("loss", "squared_error"), ("loss_params", {"delta": 1.0})]:
        yield Case(f"preset-given-{key}", 422, "validation-error", body={**logi, key: value}, loc=[key])
    # names
    yield Case("unknown-model", 422, "validation-error", body={**lin, "model": SECRET}, loc=["model"], secret=SECRET)
    yield Case("numeric-model", 422, "validation-error", body={**lin, "model": BIG}, loc=["model"])
    yield Case("missing-model", 422, "validation-error", body=without(lin, "model"), loc=["model"])
    sl = single_layer("sigmoid", "squared_error")
    yield Case(
        "unknown-activation",
        422,
        "validation-error",
        body={**sl, "activation": SECRET},
        loc=["activation"],
        secret=SECRET,
    )
    yield Case("unknown-loss", 422, "validation-error", body={**sl, "loss": SECRET}, loc=["loss"], secret=SECRET)
    yield Case("missing-activation", 422, "validation-error", body=without(sl, "activation"), loc=["activation"])
    yield Case(
        "unknown-regularization-kind",
        422,
        "validation-error",
        body={**lin, "regularization": {"kind": SECRET, "lambda": 1}},
        loc=["regularization", "kind"],
        secret=SECRET,
    )
    yield Case(
        "negative-lambda",
        422,
        "validation-error",
        body={**lin, "regularization": {"kind": "l1", "lambda": -BIG}},
        loc=["regularization", "lambda"],
    )
    yield Case("verify-string", 422, "validation-error", body={**lin, "verify": SECRET}, loc=["verify"], secret=SECRET)
    yield Case("missing-data", 422, "validation-error", body=without(lin, "data"), loc=["data"])
    yield Case("missing-b", 422, "validation-error", body=without(lin, "parameters", "b"), loc=["parameters", "b"])
    yield Case("body-is-a-list", 422, "validation-error", body=[lin], loc=[])
    # shapes
    yield Case("ragged-X", 422, "validation-error", body=with_value(lin, ("data", "X", 3), [BIG]), loc=["data", "X", 3])
    yield Case("empty-X", 422, "validation-error", body=with_value(lin, ("data", "X"), []), loc=["data", "X"])
    yield Case(
        "empty-w", 422, "validation-error", body=with_value(lin, ("parameters", "w"), []), loc=["parameters", "w"]
    )
    yield Case(
        "len-w-not-n",
        422,
        "validation-error",
        body=with_value(lin, ("parameters", "w"), [1.0, 2.0, BIG]),
        loc=["parameters", "w"],
    )
    yield Case(
        "len-y-not-m", 422, "validation-error", body=with_value(lin, ("data", "y"), [1.0, BIG]), loc=["data", "y"]
    )
    yield Case(
        "softmax-w-row-length",
        422,
        "validation-error",
        body=with_value(SOFTMAX, ("parameters", "w", 1), [0.1, BIG]),
        loc=["parameters", "w", 1],
    )
    yield Case(
        "softmax-w-rows-not-n",
        422,
        "validation-error",
        body=with_value(SOFTMAX, ("parameters", "w"), [[0.1, 0.2, BIG]]),
        loc=["parameters", "w"],
    )
    yield Case(
        "softmax-b-scalar",
        422,
        "validation-error",
        body=with_value(SOFTMAX, ("parameters", "b"), BIG),
        loc=["parameters", "b"],
    )
    yield Case(
        "softmax-b-one-entry",
        422,
        "validation-error",
        body=with_value(SOFTMAX, ("parameters", "b"), [BIG]),
        loc=["parameters", "b"],
    )
    yield Case(
        "softmax-b-shorter-than-w-rows",
        422,
        "validation-error",
        body=with_value(SOFTMAX_SECRET, ("parameters", "b"), [0.0, 0.1]),
    )
    yield Case(
        "softmax-b-longer-than-w-rows",
        422,
        "validation-error",
        body=with_value(SOFTMAX_SECRET, ("parameters", "b"), [0.0, 0.1, 0.2, 0.3]),
    )
    yield Case(
        "scalar-b-list",
        422,
        "validation-error",
        body=with_value(lin, ("parameters", "b"), [BIG]),
        loc=["parameters", "b"],
    )
    yield Case(
        "scalar-w-matrix",
        422,
        "validation-error",
        body=with_value(lin, ("parameters", "w"), [[BIG], [1.0]]),
        loc=["parameters", "w", 0],
    )
    sl_softmax_scalar = {**single_layer("sigmoid", "squared_error"), "activation": "softmax"}
    yield Case(
        "single-layer-softmax-scalar-parameters",
        422,
        "validation-error",
        body=sl_softmax_scalar,
        loc=["parameters"],
        secret=None,
    )
    sl_sigmoid_matrix = {**single_layer("softmax", "squared_error"), "activation": "sigmoid"}
    yield Case(
        "single-layer-sigmoid-matrix-parameters",
        422,
        "validation-error",
        body=sl_sigmoid_matrix,
        loc=["parameters"],
        secret=None,
    )
    # targets
    yield Case(
        "class-index-equal-k",
        422,
        {"validation-error", "domain-error"},
        body=with_value(SOFTMAX_SECRET, ("data", "y", 4), 3),
        loc=["data", "y", 4],
    )
    yield Case(
        "class-index-negative",
        422,
        {"validation-error", "domain-error"},
        body=with_value(SOFTMAX_SECRET, ("data", "y", 4), -1),
        loc=["data", "y", 4],
    )
    yield Case(
        "class-index-fraction",
        422,
        {"validation-error", "domain-error"},
        body=with_value(SOFTMAX_SECRET, ("data", "y", 4), 1.5),
        loc=["data", "y", 4],
    )
    yield Case(
        "class-index-bool",
        422,
        "validation-error",
        body=with_value(SOFTMAX_SECRET, ("data", "y", 4), True),
        loc=["data", "y", 4],
    )
    rows = [[1.0, 0.0, 0.0]] * 5 + [[0.5, 0.4, 0.2]]
    yield Case(
        "probability-row-sum",
        422,
        {"validation-error", "domain-error"},
        body=with_value(SOFTMAX_SECRET, ("data", "y"), rows),
        loc=["data", "y", 5],
    )
    rows = [[1.0, 0.0, 0.0]] * 5 + [[1.5, -0.5, 0.0]]
    yield Case(
        "probability-negative",
        422,
        {"validation-error", "domain-error"},
        body=with_value(SOFTMAX_SECRET, ("data", "y"), rows),
        loc=["data", "y", 5, 1],
    )
    rows = [[1.0, 0.0, 0.0]] * 5 + [[0.5, 0.5]]
    yield Case(
        "probability-row-length",
        422,
        {"validation-error", "domain-error"},
        body=with_value(SOFTMAX_SECRET, ("data", "y"), rows),
        loc=["data", "y", 5],
    )
    bce = with_value(VALUE_BASE, ("data", "y", 1), 2)
    yield Case("bce-target-2", 422, {"validation-error", "domain-error"}, body=bce, loc=["data", "y", 1])
    yield Case(
        "bce-target-2-single-layer",
        422,
        {"validation-error", "domain-error"},
        body=with_value(SL_SIGMOID_BCE, ("data", "y", 1), 2),
        loc=["data", "y", 1],
    )
    pois = with_value(preset("poisson_regression"), ("data", "y", 1), -1)
    yield Case("poisson-target-negative", 422, {"validation-error", "domain-error"}, body=pois, loc=["data", "y", 1])
    yield Case(
        "poisson-target-negative-single-layer",
        422,
        {"validation-error", "domain-error"},
        body=with_value(SL_EXP_POISSON, ("data", "y", 1), -1),
        loc=["data", "y", 1],
    )
    yield Case(
        "scalar-model-target-rows",
        422,
        "validation-error",
        body=with_value(sl, ("data", "y"), [[BIG]] * 6),
        loc=["data", "y"],
    )
    # pairings
    for act, loss in [
        ("identity", "binary_cross_entropy"),
        ("relu", "poisson"),
        ("tanh", "categorical_cross_entropy"),
        ("softmax", "poisson"),
        ("identity", "poisson"),
        ("sigmoid", "categorical_cross_entropy"),
        ("softmax", "huber"),
    ]:
        body = single_layer("softmax" if act == "softmax" else "sigmoid", "squared_error")
        body = with_value({**body, "activation": act, "loss": loss}, ("data", "X", 0, 0), BIG)
        if loss == "categorical_cross_entropy":
            body["data"]["y"] = [0, 0, 0, 1, 1, 1]
        yield Case(f"incompatible-{act}+{loss}", 422, "incompatible-pairing", body=body, detail_contains=(act, loss))
    # loss parameters
    se = with_value(single_layer("sigmoid", "squared_error", loss_params={"delta": 0.5}), ("data", "X", 0, 0), BIG)
    yield Case("loss_params-on-squared_error", 422, "validation-error", body=se, loc=["loss_params", "delta"])
    for delta in (0, -0.5, "1.0", True):
        body = with_value(single_layer("identity", "huber", loss_params={"delta": delta}), ("data", "X", 0, 0), BIG)
        yield Case(f"huber-delta-{delta}", 422, "validation-error", body=body, loc=["loss_params", "delta"])
    # results not representable in float64
    exp = {"model": "poisson_regression", "parameters": {"w": [400.0], "b": 0.0}}
    exp["data"] = {"X": [[1.0], [2.0], [0.5], [1.999]], "y": [1, 2, 3, 4]}
    yield Case("exp-overflow", 422, "non-finite-result", body=exp, detail_contains=("[1, 3]",))
    z = {
        "model": "linear_regression",
        "parameters": {"w": [1e200], "b": 0.0},
        "data": {"X": [[1.0], [1e200]], "y": [1, 2]},
    }
    yield Case("z-overflow", 422, "non-finite-result", body=z, detail_contains=("z",))


def non_json_cases() -> Iterator[Case]:
    valid = json.dumps(preset("linear_regression")).encode()
    yield Case("invalid-json", 400, "invalid-json", raw=b'{"model": "linear_regression", SECRET-123}', secret=SECRET)
    yield Case("truncated-json", 400, "invalid-json", raw=valid[:-5])
    yield Case("trailing-garbage", 400, "invalid-json", raw=valid + b" SECRET-123", secret=SECRET)
    yield Case("single-quotes", 400, "invalid-json", raw=b"{'model': 'SECRET-123'}", secret=SECRET)
    yield Case("invalid-utf8", 400, "invalid-json", raw=b'{"model": "\xff\xfe"}')
    yield Case("empty-body", 400, "invalid-json", raw=b"")
    yield Case("whitespace-body", 400, "invalid-json", raw=b" \n\t ")
    yield Case("text-plain", 415, "unsupported-media-type", raw=valid, headers={"content-type": "text/plain"})
    yield Case(
        "form",
        415,
        "unsupported-media-type",
        raw=b"model=SECRET-123",
        headers={"content-type": "application/x-www-form-urlencoded"},
        secret=SECRET,
    )
    yield Case("no-content-type", 415, "unsupported-media-type", raw=valid, headers={})
    yield Case(
        "xml",
        415,
        "unsupported-media-type",
        raw=b"<model>SECRET-123</model>",
        headers={"content-type": "application/xml"},
        secret=SECRET,
    )
    deep = b"[" * 10_000 + b"]" * 10_000
    yield Case("deep-nesting", {400, 422}, {"invalid-json", "validation-error"}, raw=deep)
    inner = b'{"model":"linear_regression","parameters":{"w":[1],"b":0},"data":{"X":' + deep + b',"y":[1]}}'
    yield Case("deep-nesting-in-X", {400, 422}, {"invalid-json", "validation-error"}, raw=inner)
    yield Case(
        "deep-objects", {400, 422}, {"invalid-json", "validation-error"}, raw=b'{"a":' * 10_000 + b"1" + b"}" * 10_000
    )


CASES = [*value_cases(), *structural_cases(), *non_json_cases()]


def check(resp: Any, case: Case) -> dict[str, Any]:
    status = case.status
    if isinstance(status, set):
        assert resp.status_code in status, resp.text[:300]
        status = resp.status_code
    body = assert_problem(resp, status, case.slug, secret=case.secret)
    if case.loc is not None:
        assert case.loc in locs(body), body
    for part in case.detail_contains:
        assert part in body["detail"], body
    if isinstance(case.body, dict):
        for loc in locs(body):
            assert loc_resolves(case.body, loc), (loc, body)
    return body


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_error(lenient_client: TestClient, case: Case) -> None:
    check(case.send(lenient_client), case)


def test_cases_are_valid_once_repaired(client: TestClient) -> None:
    """The bases the bad values go into are themselves accepted (so each error comes from the one change)."""
    for base in (
        preset("logistic_regression", regularization={"kind": "l2", "lambda": 0.5}),
        SOFTMAX_SECRET,
        SL_SIGMOID_BCE,
        SL_EXP_POISSON,
    ):
        assert client.post("/gradient", json=base).status_code == 200
    # VALUE_BASE itself, with the big number in X, is valid too
    assert client.post("/gradient", json=VALUE_BASE).status_code == 200


def test_literals_reach_the_parser_unquoted() -> None:
    """The literal cases really send NaN, not the string "NaN" (so they test the 422 on a readable body)."""
    raw = next(c.raw for c in CASES if c.id == "NaN@parameters/b")
    assert raw is not None and b'"b": NaN' in raw


def test_incompatible_pairing_names_the_reason(client: TestClient) -> None:
    body = {**single_layer("sigmoid", "squared_error"), "activation": "identity", "loss": "binary_cross_entropy"}
    problem = assert_problem(client.post("/gradient", json=body), 422, "incompatible-pairing")
    assert "log" in problem["detail"]  # docs/design/math.md: identity + bce takes log of a negative number
    assert len(problem["detail"]) > 40


def test_non_finite_result_names_quantity_and_examples(client: TestClient) -> None:
    exp = {"model": "poisson_regression", "parameters": {"w": [400.0], "b": 0.0}}
    exp["data"] = {"X": [[1.0], [2.0], [0.5], [1.999]], "y": [1, 2, 3, 4]}  # z = 400, 800, 200, 799.6
    problem = assert_problem(client.post("/gradient", json=exp), 422, "non-finite-result")
    assert problem["quantity"] in ("f", "e^z", "exp(z)")
    assert problem["examples"] == [1, 3]
    z = {
        "model": "linear_regression",
        "parameters": {"w": [1e200], "b": 0.0},
        "data": {"X": [[1.0], [1e200]], "y": [1, 2]},
    }
    problem = assert_problem(client.post("/gradient", json=z), 422, "non-finite-result")
    assert problem["quantity"] == "z"
    assert problem["examples"] == [1]


def test_error_count_is_capped_for_a_megabyte_of_bad_values(client: TestClient) -> None:
    bad = preset("linear_regression")
    bad["data"] = {"X": [[f"{SECRET}-{i}", BIG] for i in range(40_000)], "y": [BIG] * 40_000}
    raw = json.dumps(bad).encode()
    assert len(raw) > 1_000_000
    resp = client.post("/gradient", content=raw, headers=JSON_HEADERS)
    problem = assert_problem(resp, 422, "validation-error", secret=SECRET)
    assert BIG_TEXT not in resp.text
    assert len(problem["errors"]) == 20
    assert problem["errors"][0]["loc"] == ["data", "X", 0, 0]


def test_error_count_is_capped_for_many_ragged_rows(client: TestClient) -> None:
    bad = preset("linear_regression")
    bad["data"] = {"X": [[1.0, 2.0]] + [[BIG]] * 30_000, "y": [1.0] * 30_001}
    resp = client.post("/gradient", json=bad)
    problem = assert_problem(resp, 422, "validation-error")
    assert len(problem["errors"]) <= 20
    assert problem["errors"][0]["loc"] == ["data", "X", 1]


def test_error_count_is_capped_for_many_bad_targets(client: TestClient) -> None:
    bad = single_layer("exp", "poisson")
    bad["data"] = {"X": [[0.1, 0.2]] * 30_000, "y": [-BIG] * 30_000}
    problem = assert_problem(client.post("/gradient", json=bad), 422, {"validation-error", "domain-error"})
    assert 1 <= len(problem["errors"]) <= 20


def test_many_unknown_fields(client: TestClient) -> None:
    body = {**preset("linear_regression"), **{f"field{i}": BIG for i in range(5000)}}
    problem = assert_problem(client.post("/gradient", json=body), 422, "validation-error")
    assert len(problem["errors"]) == 20


# --- the body size limit -------------------------------------------------------------------------------


@pytest.fixture
def small_body_client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(max_body_bytes=1000)), raise_server_exceptions=False) as c:
        yield c


def test_body_over_the_limit_by_content_length(small_body_client: TestClient) -> None:
    body = preset("linear_regression")
    body["data"] = {"X": [[BIG, 1.0]] * 100, "y": [1.0] * 100}
    raw = json.dumps(body).encode()
    assert len(raw) > 1000
    resp = small_body_client.post("/gradient", content=raw, headers=JSON_HEADERS)
    assert_problem(resp, 413, "body-too-large")


def test_body_refused_by_its_declared_length_before_reading(small_body_client: TestClient) -> None:
    """A Content-Length over the limit is refused at once, whatever the body turns out to be."""
    headers = {**JSON_HEADERS, "content-length": "5000"}
    assert_problem(small_body_client.post("/gradient", content=b"{}", headers=headers), 413, "body-too-large")


def test_content_length_not_a_number(small_body_client: TestClient) -> None:
    headers = {**JSON_HEADERS, "content-length": "SECRET-123"}
    resp = small_body_client.post("/gradient", content=b"{}", headers=headers)
    assert_problem(resp, 400, "invalid-json", secret=SECRET)


def test_body_over_the_limit_streamed(small_body_client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"model": "linear_regression", "data": {"X": ['
        for _ in range(200):
            yield b"[123456.789, 1.0],"
        yield b"[1, 1]]}}"

    resp = small_body_client.post("/gradient", content=chunks(), headers=JSON_HEADERS)
    assert_problem(resp, 413, "body-too-large", secret=BIG_TEXT)


def test_body_under_the_limit_is_accepted(small_body_client: TestClient) -> None:
    raw = json.dumps(preset("linear_regression")).encode()
    assert len(raw) < 1000
    assert small_body_client.post("/gradient", content=raw, headers=JSON_HEADERS).status_code == 200

    def chunks() -> Iterator[bytes]:
        yield raw[:50]
        yield raw[50:]

    assert small_body_client.post("/gradient", content=chunks(), headers=JSON_HEADERS).status_code == 200


# --- unknown routes and methods --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "slug"),
    [
        ("GET", f"/{SECRET}", 404, "not-found"),
        ("POST", "/gradients", 404, "not-found"),
        ("GET", "/gradient", 405, "method-not-allowed"),
        ("PUT", "/gradient", 405, "method-not-allowed"),
        ("DELETE", "/gradient", 405, "method-not-allowed"),
        ("POST", "/activations", 405, "method-not-allowed"),
        ("POST", "/healthz", 405, "method-not-allowed"),
    ],
)
def test_routing_errors_are_problems(
    lenient_client: TestClient, method: str, path: str, status: int, slug: str
) -> None:
    resp = lenient_client.request(method, path, content=b"{}", headers=JSON_HEADERS)
    assert_problem(resp, status, slug, secret=SECRET)


# --- bugs found --------------------------------------------------------------------------------------------


def test_long_unknown_key_is_not_echoed_in_full(lenient_client: TestClient) -> None:
    body = {**preset("linear_regression"), SECRET + "K" * 100_000: 1}
    resp = lenient_client.post("/gradient", json=body)
    assert resp.status_code == 422
    assert len(resp.content) < MAX_PROBLEM_BYTES


def test_many_long_unknown_keys_keep_the_problem_small(lenient_client: TestClient) -> None:
    body = {**preset("linear_regression"), **{f"k{i}" + "x" * 3000: 1 for i in range(30)}}
    resp = lenient_client.post("/gradient", json=body)
    assert resp.status_code == 422
    assert len(resp.content) < MAX_PROBLEM_BYTES


@pytest.mark.parametrize("explain", [SECRET, 1, None])
def test_bad_explain_loc_is_a_path(lenient_client: TestClient, explain: Any) -> None:
    body = {**preset("linear_regression"), "explain": explain}
    problem = assert_problem(lenient_client.post("/gradient", json=body), 422, "validation-error", secret=SECRET)
    assert all(loc == ["explain"] for loc in locs(problem)), problem


@pytest.mark.parametrize(
    ("path", "value"),
    [(("parameters", "w", 1), SECRET), (("parameters", "b"), True), (("parameters", "extra"), 1.0)],
    ids=["w-string", "b-bool", "unknown-key"],
)
def test_single_layer_parameter_locs_are_paths(
    lenient_client: TestClient, path: tuple[str | int, ...], value: Any
) -> None:
    body = with_value(single_layer("sigmoid", "squared_error"), path, value)
    problem = assert_problem(lenient_client.post("/gradient", json=body), 422, "validation-error", secret=SECRET)
    assert list(path) in locs(problem)
    for loc in locs(problem):
        assert loc_resolves(body, loc), loc


def test_huge_class_index_is_a_422(lenient_client: TestClient) -> None:
    raw = json.dumps(SOFTMAX).replace('"y": [0, 0,', '"y": [' + "1" * 400 + ", 0,", 1).encode()
    assert b"1111111111" in raw
    resp = lenient_client.post("/gradient", content=raw, headers=JSON_HEADERS)
    problem = assert_problem(resp, 422, {"validation-error", "domain-error"})
    assert ["data", "y", 0] in locs(problem)


def test_softmax_params_fixture_is_softmax_shaped() -> None:
    assert len(SOFTMAX_PARAMS["w"]) == len(WORKED_X[0]) and len(SOFTMAX_PARAMS["b"]) == 3


def test_non_finite_result_for_many_examples_stays_small(client: TestClient) -> None:
    body = {"model": "poisson_regression", "parameters": {"w": [400.0], "b": 0.0}}
    body["data"] = {"X": [[2.0]] * 10_000, "y": [0] * 10_000}
    problem = assert_problem(client.post("/gradient", json=body), 422, "non-finite-result")
    assert problem["examples"] == list(range(50))

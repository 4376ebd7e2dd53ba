"""The array path (service/http/wire/arrays.py) against the usual one: for every body it either gives up
(None) or gives the request the whole-body validation gives, with X as the same numbers in an array.
Whenever the whole-body validation refuses a body, the array path must give up on it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from service.app import create_app
from service.http.errors import ProblemError
from service.http.schemas.gradient import GRADIENT_REQUEST
from service.http.wire import arrays
from service.http.wire.json import parse
from service.settings import Settings

ROWS = [[0.5, 1.5], [1, 1], [1.5, 0.5], [3, 0.5], [2, 2], [1, 2.5]]
BASE: dict[str, Any] = {
    "model": "logistic_regression",
    "parameters": {"w": [0.1, -0.2], "b": 0.05},
    "data": {"X": ROWS, "y": [0, 0, 0, 1, 1, 1]},
}


@pytest.fixture(autouse=True, params=[1, 7, 1 << 16], ids=["row-chunks", "small-chunks", "real-chunks"])
def small_chunks(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Chunks of one row (a split after every row), of a row or two, and of the real size."""
    monkeypatch.setattr(arrays, "CHUNK_BYTES", request.param)


def _always(m: int, n: int, request: Any) -> bool:
    return True


def _usual(body: bytes) -> Any | None:
    try:
        return parse(GRADIENT_REQUEST, body)
    except ProblemError:
        return None


def _check(body: bytes) -> Any | None:
    """Both paths on one body; returns the array path's result."""
    fast = arrays.parse_with_matrix(GRADIENT_REQUEST, body, _always)
    usual = _usual(body)
    if usual is None:
        assert fast is None, body[:200]
        return None
    if fast is not None:
        X = fast.data.X
        assert isinstance(X, np.ndarray) and X.dtype == np.float64
        assert X.tolist() == usual.data.X
        assert np.array_equal(X, np.asarray(usual.data.X), equal_nan=False)
        rest_fast = fast.model_dump(exclude={"data": {"X"}})
        rest_usual = usual.model_dump(exclude={"data": {"X"}})
        assert rest_fast == rest_usual
    return fast


def _body(doc: Any, **dumps: Any) -> bytes:
    return json.dumps(doc, **dumps).encode()


@pytest.mark.parametrize(
    "dumps",
    [{"separators": (",", ":")}, {}, {"separators": (", ", ": ")}],
    ids=["compact", "default", "spaced"],
)
def test_common_formats_take_the_array_path(dumps: dict[str, Any]) -> None:
    assert _check(_body(BASE, **dumps)) is not None


def test_pretty_printed_bodies_take_the_usual_path() -> None:
    assert _check(_body(BASE, indent=2)) is None


def _with_X(text: str) -> bytes:
    return (
        b'{"model":"logistic_regression","parameters":{"w":[0.1,-0.2],"b":0.05},"data":{"X":'
        + text.encode()
        + (b',"y":[0,1]}}')
    )


BAD_X = {
    "bool": "[[1,true],[2,3]]",
    "null": "[[1,null],[2,3]]",
    "string": '[[1,"2"],[2,3]]',
    "nan": "[[1,NaN],[2,3]]",
    "infinity": "[[1,Infinity],[2,3]]",
    "overflow": "[[1,1e999],[2,3]]",
    "ragged": "[[1,2],[3]]",
    "ragged later": "[[1,2],[3,4,5]]",
    "empty row": "[[],[]]",
    "empty": "[]",
    "trailing comma": "[[1,2],[3,4],]",
    "missing comma": "[[1,2] [3,4]]",
    "leading comma": "[,[1,2],[3,4]]",
    "plus sign": "[[+1,2],[3,4]]",
    "leading zero": "[[01,2],[3,4]]",
    "bare dot": "[[.5,2],[3,4]]",
    "deeper": "[[[1,2]],[[3,4]]]",
    "objects": '[{"a":1},{"b":2}]',
    "spaced end": "[[1,2],[3,4] ]",
    "ok": "[[1,2],[3,4]]",
    "ints and exponents": "[[-0,2E3],[3.25e-2,-4]]",
}


@pytest.mark.parametrize("text", list(BAD_X.values()), ids=list(BAD_X))
def test_each_kind_of_matrix_matches_the_usual_path(text: str) -> None:
    _check(_with_X(text))


TRICKS = {
    "escaped key": b'{"model":"logistic_regression","parameters":{"w":[0.1,-0.2],"b":0.05},'
    b'"data":{"\\u0058":[[1,2],[3,4]],"y":[0,1]}}',
    "duplicate key": b'{"model":"logistic_regression","parameters":{"w":[0.1,-0.2],"b":0.05},'
    b'"data":{"X":[[1,2],[3,4]],"X":[[5,6],[7,8]],"y":[0,1]}}',
    "X as a value first": b'{"model":"logistic_regression","parameters":{"w":[0.1,-0.2],"b":0.05},'
    b'"data":{"y":[0,1],"X":[[1,2],[3,4]]},"explain":"X"}',
    "X elsewhere": b'{"model":"logistic_regression","X":[[1,2]],"parameters":{"w":[0.1,-0.2],"b":0.05},'
    b'"data":{"y":[0,1],"Z":[[1,2],[3,4]]}}',
    "placeholder value": b'{"model":"logistic_regression","parameters":{"w":[0.1],"b":0.05},'
    b'"data":{"X":[[0]],"y":[1]}}',
    "not json after X": b'{"model":"logistic_regression","parameters":{"w":[0.1,-0.2],"b":0.05},'
    b'"data":{"X":[[1,2],[3,4]],"y":[0,1]',
    "X last in the body": b'{"model":"logistic_regression","parameters":{"w":[0.1,-0.2],"b":0.05},'
    b'"data":{"y":[0,1],"X":[[1,2],[3,4]]}}',
    "X last, spaced": b'{"model":"logistic_regression","parameters":{"w":[0.1,-0.2],"b":0.05},'
    b'"data":{"y":[0,1],"X":[[1,2],[3,4]] } }',
    "a matrix after X before any quote": b'{"model":"logistic_regression","parameters":{"w":[0.1,-0.2],"b":0.05},'
    b'"data":{"y":[0,1],"X":[[1,2],[3,4]]}, "z": [[1]]}',
    "softmax rows after X": b'{"model":"softmax_regression","parameters":{"w":[[1,2],[3,4]],"b":[0,0]},'
    b'"data":{"X":[[1,2],[3,4]],"y":[[0,1],[1,0]]}}',
}


@pytest.mark.parametrize("body", list(TRICKS.values()), ids=list(TRICKS))
def test_bodies_built_to_mislead_the_cut(body: bytes) -> None:
    _check(body)


def test_limits_send_the_body_the_usual_way() -> None:
    calls: list[tuple[int, int]] = []

    def refuse(m: int, n: int, request: Any) -> bool:
        calls.append((m, n))
        return False

    assert arrays.parse_with_matrix(GRADIENT_REQUEST, _body(BASE), refuse) is None
    assert calls == [(6, 2)]


numbers = st.one_of(
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(st.lists(numbers, min_size=0, max_size=4), min_size=0, max_size=6),
    separators=st.sampled_from([(",", ":"), (", ", ": ")]),
)
def test_random_matrices_agree_with_the_usual_path(rows: list[list[Any]], separators: tuple[str, str]) -> None:
    doc = {**BASE, "data": {"X": rows, "y": [0] * len(rows)}}
    _check(json.dumps(doc, separators=separators).encode())


# --- through the HTTP handler: big bodies (array path) answer as small ones (usual path) ----------


@pytest.fixture
def clients() -> Iterator[tuple[TestClient, TestClient]]:
    with (
        TestClient(create_app(Settings(inline_body_bytes=0))) as big,
        TestClient(create_app(Settings())) as small,
    ):
        yield big, small


@pytest.mark.parametrize(
    "doc",
    [
        BASE,
        {**BASE, "explain": True},
        {**BASE, "data": {"X": [[1, True], [2, 3]], "y": [0, 1]}},
        {**BASE, "data": {"X": [[1e308, 1e308]] * 2, "y": [0, 1]}, "parameters": {"w": [10.0, 10.0], "b": 0.0}},
        {**BASE, "data": {"X": ROWS, "y": [0, 0, 0, 1, 1, 2]}},
        {**BASE, "parameters": {"w": [0.1, 0.2, 0.3], "b": 0.0}},
    ],
    ids=["ok", "explain", "bool", "non-finite", "domain", "shapes"],
)
def test_http_answers_do_not_depend_on_the_path(clients: tuple[TestClient, TestClient], doc: Any) -> None:
    big, small = clients
    a, b = big.post("/gradient", json=doc), small.post("/gradient", json=doc)
    assert (a.status_code, a.content) == (b.status_code, b.content)


def _spy(module: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[list[bool], Any]:
    """Replace module.parse_with_matrix by a wrapper noting whether each call took the array path."""
    taken: list[bool] = []
    real = module.parse_with_matrix

    def spy(*args: Any) -> Any:
        result = real(*args)
        taken.append(result is not None)
        return result

    monkeypatch.setattr(module, "parse_with_matrix", spy)
    return taken, spy


def test_big_bodies_take_the_array_path(
    clients: tuple[TestClient, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.http.handlers import gradient

    taken, _ = _spy(gradient, monkeypatch)
    big, small = clients
    assert big.post("/gradient", json=BASE).status_code == 200
    assert small.post("/gradient", json=BASE).status_code == 200
    assert taken == [True]  # the big-body app only


def test_descent_answers_do_not_depend_on_the_path(
    clients: tuple[TestClient, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.http.handlers import descent

    taken, spy = _spy(descent, monkeypatch)
    big, _ = clients
    doc = {
        "problem": BASE,
        "learning_rate": 0.5,
        "steps": 20,
        "compare_with": {"activation": "identity", "loss": "squared_error"},
    }
    bad = {**doc, "problem": {**BASE, "data": {"X": [[1, 2], [3]], "y": [0, 1]}}}
    for d in (doc, bad):
        text = json.dumps(d, separators=(",", ":")).encode()
        a = big.post("/descent", content=text, headers={"content-type": "application/json"})
        # the usual path, called directly on the same body
        monkeypatch.setattr(descent, "parse_with_matrix", lambda *args: None)
        b = big.post("/descent", content=text, headers={"content-type": "application/json"})
        monkeypatch.setattr(descent, "parse_with_matrix", spy)
        assert (a.status_code, a.content) == (b.status_code, b.content)
    assert taken == [True, False]

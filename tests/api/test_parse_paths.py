"""parse() tries small bodies the quick way (orjson, then strict validation of the Python objects) and
falls back to validating the JSON text. Both ways must accept the same bodies with the same values
and refuse the same bodies with the same problem: compared here on every kind of request, on the
documented examples and on random mutations of them."""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from service.http.errors import ProblemError
from service.http.schemas.descent import DESCENT_REQUEST
from service.http.schemas.descent import EXAMPLE as DESCENT_EXAMPLE
from service.http.schemas.gradient import EXAMPLES, GRADIENT_REQUEST
from service.http.schemas.grading import EXAMPLE_PROBLEM, GRADE_REQUEST, SIGN_REQUEST
from service.http.wire import json as body_module
from service.http.wire.json import parse

CASES: list[tuple[str, TypeAdapter[Any], dict[str, Any]]] = [
    *((f"gradient-{model}", GRADIENT_REQUEST, example) for model, example in EXAMPLES.items()),
    ("descent", DESCENT_REQUEST, DESCENT_EXAMPLE),
    ("sign", SIGN_REQUEST, {"problem": EXAMPLE_PROBLEM}),
]
# Grading bodies carry free-form answers (numbers or lists of anything): there an integer beyond 64 bits
# is a float through orjson and an int through pydantic, so the grading routes never take the quick way.
# (test_the_quick_way_would_differ_on_free_form_answers shows it)


def _outcome(adapter: TypeAdapter[Any], body: bytes, quick: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(body_module, "QUICK_PARSE_MAX_BYTES", 1 << 30 if quick else -1)
    try:
        value = parse(adapter, body, quick=True)
    except ProblemError as exc:
        return ("refused", exc.status, exc.slug, exc.detail, exc.errors)
    return ("accepted", type(value).__name__, repr(value))  # repr keeps 1 apart from 1.0, True from 1


def _same(adapter: TypeAdapter[Any], body: bytes, monkeypatch: pytest.MonkeyPatch) -> Any:
    quick = _outcome(adapter, body, True, monkeypatch)
    text = _outcome(adapter, body, False, monkeypatch)
    assert quick == text, body[:300]
    return quick


@pytest.mark.parametrize(("adapter", "example"), [pytest.param(a, e, id=n) for n, a, e in CASES])
def test_examples_are_accepted_both_ways(
    adapter: TypeAdapter[Any], example: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _same(adapter, orjson.dumps(example), monkeypatch)[0] == "accepted"


SPECIAL_BODIES = [
    b'{"model": "logistic_regression", "parameters": {"w": [NaN], "b": 0}, "data": {"X": [[1]], "y": [0]}}',
    b'{"model": "logistic_regression", "parameters": {"w": [1e999], "b": 0}, "data": {"X": [[1]], "y": [0]}}',
    b'{"model": "logistic_regression", "parameters": {"w": [123456789012345678901234567890], "b": 0},'
    b' "data": {"X": [[1]], "y": [0]}}',
    b'{"model": "logistic_regression", "parameters": {"w": [1], "b": 0}, "data": {"X": [[1]], "y": [0]}, "z": 1}',
    b'{"model": "logistic_regression", "model": "linear_regression", "parameters": {"w": [1], "b": 0},'
    b' "data": {"X": [[1]], "y": [0.5]}}',
    b'{"model": "single_layer", "activation": "sigmoid", "loss": "binary_cross_entropy",'
    b' "parameters": {"w": [1], "b": 0}, "data": {"X": [[1]], "y": [1]}}',
    b'{"model": "logistic_regression", "parameters": {"w": [true], "b": 0}, "data": {"X": [[1]], "y": [0]}}',
    b'{"model": "logistic_regression", "parameters": {"w": ["1"], "b": 0}, "data": {"X": [[1]], "y": [0]}}',
    b'{"model": "logistic_regression", "parameters": {"w": [1], "b": 0}, "data": {"X": [[1]], "y": [0]}',
    b'{"model": "logistic_regression", "parameters": {"w": [1], "b": 0}, "data": {"X": [[1]], "y": ["\\ud800"]}}',
    b"[]",
    b'"x"',
    b"{}",
]


@pytest.mark.parametrize("body", SPECIAL_BODIES)
def test_edge_bodies_get_the_same_answer_both_ways(body: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    _same(GRADIENT_REQUEST, body, monkeypatch)


leaves = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.sampled_from(["", "sigmoid", "binary_cross_entropy", "softmax", "l2", "full", "factors", "x"]),
    st.lists(st.floats(-10, 10), max_size=3),
    st.lists(st.lists(st.integers(0, 3), max_size=3), max_size=3),
    st.dictionaries(st.sampled_from(["w", "b", "kind", "lambda", "extra"]), st.integers(0, 2), max_size=2),
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:3]):
            out += _paths(v, (*prefix, i))
    return out


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=st.sampled_from(CASES), data=st.data())
def test_mutated_bodies_get_the_same_answer_both_ways(
    case: tuple[str, TypeAdapter[Any], dict[str, Any]], data: st.DataObject, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, adapter, example = case
    doc = example
    for _ in range(data.draw(st.integers(1, 2))):
        path = data.draw(st.sampled_from(_paths(doc)))
        doc = _replace(doc, path, data.draw(leaves))
    text = json.dumps(doc, allow_nan=False, default=str)
    _same(adapter, text.encode(), monkeypatch)


def test_the_quick_way_would_differ_on_free_form_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Why the grading routes do not take it: a learner's 2⁶⁴ + 1 stays an int only from the JSON text."""
    body = orjson.dumps({"problem": EXAMPLE_PROBLEM, "answer": {"loss": 1}}).replace(
        b'"loss":1', b'"loss":18446744073709551617'
    )
    quick = _outcome(GRADE_REQUEST, body, True, monkeypatch)
    text = _outcome(GRADE_REQUEST, body, False, monkeypatch)
    assert quick != text and "18446744073709551617" in text[2]


# --- /grade/batch: its answers (or items) are validated one by one when graded, not in the parse ---

_BATCH_ANSWER = {"loss": 0.5, "gradients": {"w": [0.1, 0.2], "b": 0.0}}
BATCH_BODIES: dict[str, Any] = {
    "answers": {"problem": EXAMPLE_PROBLEM, "answers": [_BATCH_ANSWER, {"loss": "x"}, 42, None]},
    "answers-options": {
        "problem": EXAMPLE_PROBLEM,
        "answers": [_BATCH_ANSWER],
        "tolerance": {"sig_figs": 3},
        "format": "gradescope",
    },
    "token": {"problem_token": "abc.def", "answers": [_BATCH_ANSWER]},
    "items": {"items": [{"problem": EXAMPLE_PROBLEM, "answer": _BATCH_ANSWER}, {"anything": [1, 2]}]},
    "items-not-objects": {"items": [{"problem": EXAMPLE_PROBLEM, "answer": _BATCH_ANSWER}, 42, [None], "x"]},
    "answers-empty": {"problem": EXAMPLE_PROBLEM, "answers": []},
    "items-empty": {"items": []},
    "answers-not-a-list": {"problem": EXAMPLE_PROBLEM, "answers": {"loss": 1}},
    "both": {"problem": EXAMPLE_PROBLEM, "problem_token": "a.b", "answers": [_BATCH_ANSWER]},
    "neither": {"answers": [_BATCH_ANSWER]},
    "unknown-field": {"problem": EXAMPLE_PROBLEM, "answers": [_BATCH_ANSWER], "bonus": 1},
    "bad-tolerance": {"items": [{"problem": EXAMPLE_PROBLEM, "answer": {}}], "tolerance": {"rtol": -1}},
    "bad-problem": {"problem": {**EXAMPLE_PROBLEM, "model": "nope"}, "answers": [_BATCH_ANSWER]},
    "not-an-object": [1, 2],
    "a-number": 3,
}
BATCH_TEXTS: dict[str, bytes] = {
    **{name: orjson.dumps(body) for name, body in BATCH_BODIES.items()},
    "long-integer": b'{"problem": '
    + orjson.dumps(EXAMPLE_PROBLEM)
    + b', "answers": [{"loss": 123456789012345678901234567890}]}',
    "long-integer-in-problem": orjson.dumps({"items": [{"problem": EXAMPLE_PROBLEM, "answer": {}}]}).replace(
        b'"b":-3', b'"b":100000000000000000000000'
    ),
    "nan": b'{"problem": ' + orjson.dumps(EXAMPLE_PROBLEM) + b', "answers": [{"loss": NaN}]}',
    "invalid-json": b'{"problem": ',
    "duplicate-keys": b'{"items": [], "items": [{"answer": {}}]}',
}


@pytest.mark.parametrize("name", sorted(BATCH_TEXTS))
def test_a_batch_is_parsed_as_the_strict_way_parses_it(name: str) -> None:
    from service.http.handlers.grading import BATCH_TAGS, parse_batch
    from service.http.schemas.grading import BATCH_REQUEST

    def outcome(fn: Any) -> Any:
        try:
            value = fn()
        except ProblemError as exc:
            return ("refused", exc.status, exc.slug, exc.detail, exc.errors)
        return ("accepted", type(value).__name__, repr(value))

    body = BATCH_TEXTS[name]
    assert outcome(lambda: parse_batch(body)) == outcome(lambda: parse(BATCH_REQUEST, body, BATCH_TAGS))

"""Grading integrity: the grader, never the student, decides how an answer is scored.

A signed problem seals its scoring options (tolerance, points, reveal, carry-forward); a student
key that sets any of them is refused, naming the field. Tokens are verified before any answer is
parsed, and a token whose HMAC is valid but whose payload is not a problem is a 403, never a 500.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from service.http.routes import grade as grade_route
from service.http.schemas.grading import SCORING_FIELDS
from tests.api.helpers import assert_problem
from tests.api.test_security import HALF_ANSWER, RIGHT_ANSWER, SECRET, WORKED, G, S, app_client, sign

WRONG_LOSS = {**RIGHT_ANSWER, "loss": 12345.0}
# every scoring option, set to what a student would want
CHOSEN: dict[str, Any] = {
    "tolerance": {"rtol": 1e300, "atol": 1e300},
    "points": {"loss": 1e6},
    "reveal": False,
    "carry_forward": True,
    "carry_forward_credit": 1.0,
}


@pytest.fixture
def client() -> Iterator[TestClient]:
    with app_client(max_attempts=1000, rate_limit_per_minute=0) as c:
        yield c


def _checks(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in body["checks"]}


def test_every_scoring_option_is_listed() -> None:
    assert set(SCORING_FIELDS) == set(CHOSEN)


@pytest.mark.parametrize("field", sorted(CHOSEN))
def test_a_student_may_not_set_a_scoring_option(client: TestClient, field: str) -> None:
    tok = sign(client)
    bodies = {
        "/grade": {"problem_token": tok, "answer": WRONG_LOSS, field: CHOSEN[field]},
        "/grade/batch answers": {"problem_token": tok, "answers": [WRONG_LOSS], field: CHOSEN[field]},
        "/grade/batch items": {"items": [{"problem_token": tok, "answer": WRONG_LOSS}], field: CHOSEN[field]},
    }
    for what, body in bodies.items():
        path = what.split(" ")[0]
        problem = assert_problem(client.post(path, json=body, headers=S), 403, "forbidden")
        assert field in problem["detail"] and problem["fields"] == [field], what
        assert problem["errors"] == [{"loc": [field], "msg": "a student key may not set this"}]
        assert "token" not in problem["detail"]  # the learner's page tells this 403 from a bad token's by it


def test_the_reported_exploits_score_nothing(client: TestClient) -> None:
    """A wrong loss with a huge tolerance (score 1.0 on the old main), and huge points on the one
    right part (0.999998): both refused; the same wrong answer without them scores what it is worth."""
    tok = sign(client)
    r = client.post(
        "/grade", json={"problem_token": tok, "answer": WRONG_LOSS, "tolerance": CHOSEN["tolerance"]}, headers=S
    )
    assert_problem(r, 403, "forbidden")
    r = client.post("/grade", json={"problem_token": tok, "answer": HALF_ANSWER, "points": {"loss": 1e6}}, headers=S)
    assert_problem(r, 403, "forbidden")
    r = client.post("/grade", json={"problem_token": tok, "answer": WRONG_LOSS}, headers=S)
    assert r.status_code == 200 and r.json()["score"] == pytest.approx(2 / 3)


def test_format_stays_the_students(client: TestClient) -> None:
    tok = sign(client)
    r = client.post("/grade", json={"problem_token": tok, "answer": RIGHT_ANSWER, "format": "gradescope"}, headers=S)
    assert r.status_code == 200 and r.json()["score"] == 3.0


def test_the_sealed_tolerance_and_points_grade_the_students_answer(client: TestClient) -> None:
    loose = {**RIGHT_ANSWER, "loss": 0.3669}  # right to 3 significant figures only
    default = sign(client)
    sealed = sign(client, tolerance={"sig_figs": 3}, points={"loss": 2, "gradients.w": 3})
    r = client.post("/grade", json={"problem_token": default, "answer": loose}, headers=S)
    assert _checks(r.json())["loss"]["correct"] is False
    body = client.post("/grade", json={"problem_token": sealed, "answer": loose}, headers=S).json()
    assert _checks(body)["loss"]["correct"] is True and _checks(body)["loss"]["message"] == "Correct."
    assert body["points"] == 6.0 and body["max_points"] == 6.0
    # a wrong part under the sealed points
    body = client.post("/grade", json={"problem_token": sealed, "answer": HALF_ANSWER}, headers=S).json()
    assert (body["points"], body["max_points"]) == (5.0, 6.0)


def test_sealed_reveal_shows_the_expected_values_to_students(client: TestClient) -> None:
    tok = sign(client, reveal=True)
    body = client.post("/grade", json={"problem_token": tok, "answer": HALF_ANSWER}, headers=S).json()
    assert _checks(body)["gradients.b"]["expected"] == pytest.approx(-0.2171984948563006 / 6)
    hidden = sign(client)
    body = client.post("/grade", json={"problem_token": hidden, "answer": HALF_ANSWER}, headers=S).json()
    assert "expected" not in _checks(body)["gradients.b"]


def test_a_grader_key_may_override_the_sealed_options_in_the_clear(client: TestClient) -> None:
    tok = sign(client, points={"loss": 2})
    body = client.post("/grade", json={"problem_token": tok, "answer": RIGHT_ANSWER}, headers=G).json()
    assert body["max_points"] == 4.0  # the sealed points
    r = client.post("/grade", json={"problem_token": tok, "answer": RIGHT_ANSWER, "points": {"loss": 5}}, headers=G)
    assert r.json()["max_points"] == 7.0
    r = client.post(
        "/grade", json={"problem_token": tok, "answer": WRONG_LOSS, "tolerance": CHOSEN["tolerance"]}, headers=G
    )
    assert r.json()["score"] == 1.0


def test_a_token_seals_every_default(client: TestClient) -> None:
    payload = orjson.loads(base64.urlsafe_b64decode(sign(client).split(".")[0] + "=="))
    assert payload["grading"] == {
        "tolerance": {"rtol": 1e-5, "atol": 1e-8},
        "points": {},
        "reveal": False,
        "carry_forward": True,
        "carry_forward_credit": 0.5,
    }


def test_sign_refuses_points_for_parts_the_problem_does_not_have(client: TestClient) -> None:
    r = client.post(
        "/problems/sign", json={"problem": WORKED, "points": {"gradients.layers.0.W": 1, "loss": 2}}, headers=G
    )
    problem = assert_problem(r, 422, "validation-error")
    assert r.status_code == 422 and [e["loc"] for e in problem["errors"]] == [["points", "gradients.layers.0.W"]]
    for bad in ({"carry_forward_credit": 1.5}, {"tolerance": {"rtol": -1}}, {"format": "gradescope"}):
        assert_problem(
            client.post("/problems/sign", json={"problem": WORKED, **bad}, headers=G), 422, "validation-error"
        )


def test_carry_forward_from_made_up_values_scores_nothing_for_a_student(client: TestClient) -> None:
    """The third exploit: dL/dz zeros and gradients zeros (2/3 by carry-forward on the old main)."""
    tok = sign(client, carry_forward_credit=1.0)
    answer = {"per_sample": {"dL_dz": [0.0] * 6}, "gradients": {"w": [0.0, 0.0], "b": 0.0}}
    body = client.post("/grade", json={"problem_token": tok, "answer": answer}, headers=S).json()
    assert body["points"] == 0.0, body


# --- tokens whose HMAC is valid but whose payload is not a problem ---------------------------------


def _forge(payload: bytes) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return b64(payload) + "." + b64(hmac.new(SECRET.encode(), payload, hashlib.sha256).digest())


LATER = int(time.time()) + 3600
MALFORMED = {
    "not-json": b"{not json",
    "a-list": b"[1, 2, 3]",
    "a-string": b'"problem"',
    "no-exp": orjson.dumps({"problem": WORKED}),
    "exp-a-string": orjson.dumps({"exp": "tomorrow", "problem": WORKED}),
    "exp-a-bool": orjson.dumps({"exp": True, "problem": WORKED}),
    "exp-a-float": orjson.dumps({"exp": 1e300, "problem": WORKED}),
    "no-problem": orjson.dumps({"exp": LATER}),
    "problem-a-list": orjson.dumps({"exp": LATER, "problem": [WORKED]}),
    "unknown-model": orjson.dumps({"exp": LATER, "problem": {**WORKED, "model": "quantum_regression"}}),
    "invalid-problem": orjson.dumps({"exp": LATER, "problem": {**WORKED, "parameters": {"w": [1], "b": 0}}}),
    "grading-a-list": orjson.dumps({"exp": LATER, "problem": WORKED, "grading": [1]}),
    "grading-unknown-field": orjson.dumps({"exp": LATER, "problem": WORKED, "grading": {"bonus": 1}}),
    "grading-bad-tolerance": orjson.dumps({"exp": LATER, "problem": WORKED, "grading": {"tolerance": {"rtol": -1}}}),
    "extra-field": orjson.dumps({"exp": LATER, "problem": WORKED, "admin": True}),
    "not-utf8": b'{"exp": 1, "problem": "\xff"}',
}


@pytest.mark.parametrize("how", sorted(MALFORMED))
def test_a_signed_but_malformed_payload_is_403(client: TestClient, how: str) -> None:
    tok = _forge(MALFORMED[how])
    for headers in (S, G):
        r = client.post("/grade", json={"problem_token": tok, "answer": RIGHT_ANSWER}, headers=headers)
        assert_problem(r, 403, "forbidden")
        r = client.post("/grade/batch", json={"problem_token": tok, "answers": [RIGHT_ANSWER]}, headers=headers)
        assert_problem(r, 403, "forbidden")
    r = client.post("/grade/batch", json={"items": [{"problem_token": tok, "answer": RIGHT_ANSWER}]}, headers=G)
    assert r.status_code == 200 and r.json()["results"][0]["type"].endswith(":forbidden")


def test_a_well_formed_forged_payload_is_graded(client: TestClient) -> None:
    """The forging helper is right: the same construction over a good payload is accepted."""
    tok = _forge(orjson.dumps({"exp": LATER, "problem": WORKED}, option=orjson.OPT_SORT_KEYS))
    r = client.post("/grade", json={"problem_token": tok, "answer": RIGHT_ANSWER}, headers=S)
    assert r.status_code == 200 and r.json()["score"] == 1.0


# --- the token before the answer -------------------------------------------------------------------


def test_a_students_token_is_verified_before_the_answer_is_parsed(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    good, bad = sign(client), sign(client)[:-3] + "AAA"
    parsed: list[Any] = []
    real = grade_route.parse
    monkeypatch.setattr(grade_route, "parse", lambda *a, **k: parsed.append(a) or real(*a, **k))
    big_answer = {"per_sample": {"z": [[0.5] * 100] * 100}}
    for path, body in (
        ("/grade", {"problem_token": bad, "answer": big_answer}),
        ("/grade", {"problem_token": bad, "answer": "not an answer", "unknown": 1}),
        ("/grade/batch", {"problem_token": bad, "answers": [big_answer] * 5}),
        ("/grade/batch", {"items": [{"problem_token": bad, "answer": big_answer}]}),
    ):
        assert_problem(client.post(path, json=body, headers=S), 403, "forbidden")
    assert parsed == []
    assert client.post("/grade", json={"problem_token": good, "answer": RIGHT_ANSWER}, headers=S).status_code == 200
    assert len(parsed) == 1


# --- batches ---------------------------------------------------------------------------------------


def test_a_batch_over_the_work_budget_is_refused_before_it_is_graded() -> None:
    with app_client(max_batch_work=5_000_000, rate_limit_per_minute=0) as c:
        ok = c.post("/grade/batch", json={"problem": WORKED, "answers": [RIGHT_ANSWER] * 10}, headers=G)
        assert ok.status_code == 200 and len(ok.json()["results"]) == 10
        r = c.post("/grade/batch", json={"problem": WORKED, "answers": [RIGHT_ANSWER] * 100}, headers=G)
        problem = assert_problem(r, 422, "validation-error")
        assert problem["max_work"] == 5_000_000 and problem["work"] > 5_000_000
        assert problem["errors"][0]["loc"] == ["answers"]
        items = [
            {"problem": {**WORKED, "parameters": {"w": [1, i], "b": 0}}, "answer": RIGHT_ANSWER} for i in range(60)
        ]
        r = c.post("/grade/batch", json={"items": items}, headers=G)
        assert assert_problem(r, 422, "validation-error")["errors"][0]["loc"] == ["items"]


def test_a_batch_graded_in_slices_answers_as_one_pass(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    tok = sign(client)
    body = {"items": [{"problem_token": tok, "answer": a} for a in (RIGHT_ANSWER, HALF_ANSWER, WRONG_LOSS)] * 4}
    whole = client.post("/grade/batch", json=body, headers=G).json()
    monkeypatch.setattr(grade_route, "BATCH_SLICE_SECONDS", 0.0)  # a slice per step
    sliced = client.post("/grade/batch", json=body, headers=G).json()
    assert sliced == whole and [r["score"] for r in whole["results"][:3]] == pytest.approx([1.0, 2 / 3, 2 / 3])

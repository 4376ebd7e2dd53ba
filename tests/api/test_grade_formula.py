"""POST /grade/formula with keys: students grade signed questions only, cannot change how they are scored,
and spend attempts; graders may grade questions in the clear and sign them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.api.test_security import app_client, bearer

G, S, OP = bearer("g-key"), bearer("s-key"), bearer("o-key")
QUESTION = {"model": "logistic_regression", "target": "dJ/dw_j", "regularization": {"kind": "l2"}}
RIGHT = r"\frac{1}{m}\sum_{i=1}^{m} (f^{(i)} - y^{(i)}) x_j^{(i)} + \frac{\lambda}{m} w_j"


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with app_client(max_attempts=3, rate_limit_per_minute=0) as c:
        yield c


def _token(client: TestClient, **fields: object) -> str:
    r = client.post("/problems/sign", json={"question": QUESTION, **fields}, headers=G)
    assert r.status_code == 200, r.text
    return str(r.json()["problem_token"])


def test_roles(client: TestClient) -> None:
    body = {"question": QUESTION, "answer": RIGHT}
    assert client.post("/grade/formula", json=body, headers=G).json()["correct"] is True
    assert client.post("/grade/formula", json=body, headers=OP).status_code == 403
    assert client.post("/grade/formula", json=body, headers=S).status_code == 403  # in the clear: not for students
    assert client.post("/problems/sign", json={"question": QUESTION}, headers=S).status_code == 403


def test_a_student_grades_a_signed_question_with_the_sealed_options(client: TestClient) -> None:
    token = _token(client, reveal=False, step_credit=1.0)
    steps = {"steps": [r"\frac{\partial J(\mathbf{w},b)}{\partial w_j}", r"\frac{1}{m}\sum_{i=1}^{m} (f - y) x_j"]}
    r = client.post("/grade/formula", json={"question_token": token, "answer": steps}, headers=S)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["first_wrong_step"] == 1 and out["mistake"]["code"] == "missing_regularization"
    assert out["score"] == 0.5 and out["counterexample"] == {"shown": False}
    for field, value in (("reveal", True), ("step_credit", 0.0)):
        r = client.post("/grade/formula", json={"question_token": token, "answer": RIGHT, field: value}, headers=S)
        assert r.status_code == 403 and field in r.json()["detail"]


def test_a_students_attempts_are_counted(client: TestClient) -> None:
    token = _token(client)
    body = {"question_token": token, "answer": "f - y"}
    assert [client.post("/grade/formula", json=body, headers=S).status_code for _ in range(4)] == [200, 200, 200, 403]


def test_a_grader_may_override_the_sealed_options_in_the_clear(client: TestClient) -> None:
    token = _token(client)
    r = client.post("/grade/formula", json={"question_token": token, "answer": "f - y", "reveal": True}, headers=G)
    assert r.status_code == 200 and "point" in r.json()["counterexample"]
    assert r.json()["expected"]["text"].startswith("1/m*sum")


def test_a_class_batch_of_formulas_has_a_summary(client: TestClient) -> None:
    answers = [RIGHT] * 3 + [r"\frac{1}{m}\sum_{i=1}^{m} (f - y) x_j"] * 4 + ["foo(z)", 7]
    r = client.post("/grade/batch", json={"question": QUESTION, "answers": answers}, headers=G)
    assert r.status_code == 200, r.text
    out = r.json()
    assert [x.get("correct") for x in out["results"][:7]] == [True] * 3 + [False] * 4
    assert out["results"][7]["type"].endswith("formula-error") and out["results"][8]["status"] == 422
    summary = out["summary"]
    assert (summary["answers"], summary["graded"], summary["correct"]) == (9, 7, 3)
    assert summary["mistakes"][0] == {"code": "missing_regularization", "answers": 4, "share": 4 / 7}
    assert sum(b["answers"] for b in summary["score_distribution"]) == 7
    assert "57%" in summary["headline"]


def test_a_students_batch_takes_an_attempt_per_answer(client: TestClient) -> None:
    token = _token(client, expires_in=3600)  # not another test's token (signed in the same second)
    body = {"question_token": token, "answers": ["f - y", "f - y"]}
    assert client.post("/grade/batch", json=body, headers=S).status_code == 200
    assert client.post("/grade/batch", json=body, headers=S).status_code == 403  # 4 > 3 attempts
    assert client.post("/grade/batch", json={"question": QUESTION, "answers": ["f"]}, headers=S).status_code == 403


@pytest.mark.parametrize(
    ("answer", "method"),
    [
        ("(f - y) x_j", "numeric+symbolic"),
        (r"\left(\frac{1}{1+e^{-z}} - y\right) x_j", "numeric+symbolic"),  # f = σ(z) put in: the same function
        (r"-(y - \sigma(z)) \cdot x_j", "numeric+symbolic"),
    ],
)
def test_an_answer_equal_at_the_points_is_confirmed_by_sympy(client: TestClient, answer: str, method: str) -> None:
    """An answer the points find equal is confirmed symbolically in the formula workers (f = g(z) in both)."""
    body = {"question": {"model": "logistic_regression", "target": "dL/dw_j"}, "answer": answer}
    result = client.post("/grade/formula", json=body, headers=G).json()
    assert result["equivalent"] is True and result["method"] == method, result


def test_a_sum_over_the_examples_stays_a_numeric_verdict(client: TestClient) -> None:
    """Sums over a symbolic m are not given to SymPy: the points' verdict stands, and says so."""
    result = client.post("/grade/formula", json={"question": QUESTION, "answer": RIGHT}, headers=G).json()
    assert result["equivalent"] is True and result["method"] == "numeric", result

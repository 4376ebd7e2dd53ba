"""The forum's derivation, random mal-rule answers, the catalogue's formula examples, and the endpoint."""

from __future__ import annotations

import random

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.formulas import parse, to_text
from service.formulas.tree import Add, Call, Div, Expr, Mul, Neg, Number, Pow, Symbol
from service.grading.formula_equivalence import Points, compare
from service.grading.formula_grade import grade_formula
from service.grading.formula_targets import derivative_question, model_question
from service.grading.malrules import mal_derivatives
from service.grading.mistakes import catalogue


def test_forum_derivation_missing_df_db_is_named() -> None:
    """The forum: logistic regression's dL/db with ∂f/∂b left out of the first term ("it is not equal to 1")."""
    q = model_question("logistic_regression", "dL/db")
    steps = [
        parse(r"\frac{\partial L}{\partial f}\frac{\partial f}{\partial z}\frac{\partial z}{\partial b}"),
        parse(r"-\frac{y}{f} + \frac{1-y}{1-f} \cdot f(1-f)"),
    ]
    result = grade_formula(q, steps)
    assert result["first_wrong_step"] == 1
    assert result["steps"][0]["correct"] is True
    assert result["mistake"]["code"] == "missing_inner_derivative"
    assert "∂f/∂z = f(1 - f)" in result["mistake"]["message"]
    assert 0 < result["score"] < 1


def _random_tree(rng: random.Random, depth: int) -> Expr:
    z = Symbol("z")
    if depth == 0:
        return z if rng.random() < 0.7 else Number(rng.choice([1, 2, 3]))  # type: ignore[arg-type]
    kind = rng.choice(["exp", "log", "pow", "mul", "div", "add", "tanh"])
    a = _random_tree(rng, depth - 1)
    b = _random_tree(rng, depth - 1)
    if kind == "exp":
        return Call("exp", (Mul((Number(2), a)) if a == z else a,))  # type: ignore[arg-type]
    if kind == "log":
        return Call("log", (Add((Number(2), Pow(a, Number(2)))),))  # type: ignore[arg-type]
    if kind == "tanh":
        return Call("tanh", (a,))
    if kind == "pow":
        return Pow(Add((a, Number(1))), Number(rng.choice([2, 3])))  # type: ignore[arg-type]
    if kind == "mul":
        return Mul((a, b))
    if kind == "div":
        return Div(a, Add((Number(2), Pow(b, Number(2)))))  # type: ignore[arg-type]
    return Add((a, Neg(b)))


def test_random_mal_rule_answers_are_diagnosed() -> None:
    """Each mal-rule applied to random formulas gives a wrong derivative that the grader names by its code
    (or, where two rules give the same formula, by one listed as also matching)."""
    rng = random.Random(15)
    diagnosed = 0
    for _ in range(60):
        expr = _random_tree(rng, rng.choice([2, 3]))
        try:
            q = derivative_question(expr, "z")
        except ValueError:
            continue
        points = Points(q)
        for mal in mal_derivatives(expr, "z")[:6]:
            verdict = compare(points, mal.derivative)
            if verdict.equivalent is not False:
                continue  # the mal-rule changes nothing here (e.g. an inner derivative equal to 1)
            result = grade_formula(q, mal.derivative)
            named = result["mistake"]
            assert named is not None, to_text(mal.derivative)
            assert mal.code == named["code"] or mal.code in (named["also_matches"] or []), (to_text(expr), mal.code)
            diagnosed += 1
    assert diagnosed >= 60


@pytest.mark.parametrize("entry", [e for e in catalogue() if "formula_example" in e], ids=lambda e: e["code"])
def test_catalogue_formula_examples_are_named(entry: dict[str, str]) -> None:
    """Each code's example in GET /mistakes is graded as that code."""
    example = entry["formula_example"]
    head, answer = example.split(" answered ")
    answer = answer.split(" — ")[0]
    if head.startswith("derivative_of "):
        expression, variable = head.removeprefix("derivative_of ").rsplit(" by ", 1)
        q = derivative_question(parse(expression), variable)
    else:
        words = head.split()
        reg = words[-1] if words[-2] == "with" else None
        q = model_question(words[2], words[0], regularization=reg)
    result = grade_formula(q, parse(answer))
    assert result["mistake"] is not None and entry["code"] in [
        result["mistake"]["code"],
        *(result["mistake"]["also_matches"] or []),
    ]


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app())


def test_endpoint_formats_token_and_errors(client: TestClient) -> None:
    body = {"question": {"model": "logistic_regression", "target": "dL/dw_j"}, "answer": "(f - y) x_j"}
    r = client.post("/grade/formula", json=body)
    assert r.status_code == 200 and r.json()["correct"] is True and r.json()["score"] == 1.0
    for fmt in ("gradescope", "prairielearn"):
        r = client.post("/grade/formula", json={**body, "format": fmt})
        assert r.status_code == 200 and r.json()["score"] == 1.0
    wrong = {**body, "answer": "f - y"}
    r = client.post("/grade/formula", json=wrong).json()
    assert r["mistake"]["code"] == "missing_input_factor" and r["counterexample"] == {"shown": False}
    r = client.post("/grade/formula", json={**wrong, "reveal": True}).json()
    assert set(r["counterexample"]["point"]) >= {"z", "f", "y", "x_j"}
    r = client.post("/grade/formula", json={**body, "answer": "foo(z)"})
    assert r.status_code == 422 and r.json()["type"].endswith("formula-error")
    r = client.post("/grade/formula", json={**body, "answer": "z" + "^z" * 70})
    assert r.status_code == 422 and r.json()["type"].endswith("formula-too-complex")
    r = client.post("/grade/formula", json={**body, "answer": {"steps": ["f"] * 21}})
    assert r.status_code == 422
    r = client.post("/grade/formula", json={"question": {"model": "neural_network", "target": "L"}, "answer": "f"})
    assert r.status_code == 422
    token = client.post(
        "/problems/sign", json={"question": {"model": "logistic_regression", "target": "dL/db"}, "step_credit": 1.0}
    ).json()["problem_token"]
    r = client.post("/grade/formula", json={"question_token": token, "answer": {"steps": ["dL/dz", "z - y"]}}).json()
    assert r["first_wrong_step"] == 1 and r["score"] == 0.5 and r["mistake"]["code"] == "used_z_for_f"
    r = client.post("/grade/formula", json={"question_token": token[:-2] + "xx", "answer": "f - y"})
    assert r.status_code == 403
    r = client.post("/grade", json={"problem_token": token, "answer": {"loss": 1.0}})
    assert r.status_code == 403  # a question's token is not a problem's


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        ("sum_{i=1}^{m} " * 40 + "f", None),  # expands past the cap: refused before any term is made
        ("sum_{j=1}^{n} sum_{i=1}^{m} " * 10 + "(f - y)", None),
        ("sum_{i=1}^{10^50} (f - y)", False),  # more terms than examples
        ("sum_{i=1}^{m/2} (f - y)", None),
        ("max(f, y)", None),
        ("dJ/dz", None),  # a Leibniz name without a meaning in the question
        ("log(-f)", False),
        ("e^(e^(e^(e^(e^(e^z)))))", False),
    ],
)
def test_hostile_or_undecidable_answers_are_bounded_and_never_guessed(answer: str, verdict: bool | None) -> None:
    q = model_question("logistic_regression", "dJ/db")
    result = grade_formula(q, parse(answer))
    assert result["equivalent"] is verdict and result["correct"] is False
    if verdict is None:
        assert result["feedback"].startswith("This could not be decided")

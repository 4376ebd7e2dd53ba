"""Learners' answers written for the purpose (formula_answers.tsv): each verdict and mistake as expected."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from service.formulas import parse
from service.grading.formula_grade import grade_formula
from service.grading.formula_targets import Question, derivative_question, model_question
from service.grading.malrules import RULE_CODES
from tests.grading.oracle import MATH_MD_CODES

DATA = Path(__file__).with_name("formula_answers.tsv")
VERDICTS = {"true": True, "false": False, "null": None}


def question(spec: str) -> Question:
    if spec.startswith("d:"):
        expression, variable = spec[2:].rsplit(":", 1)
        return derivative_question(parse(expression), variable)
    parts = spec.split(":")
    if parts[0] == "single_layer":
        return model_question("single_layer", parts[3], parts[1], parts[2])
    return model_question(parts[0], parts[1], regularization=parts[2] if len(parts) > 2 else None)


def rows() -> list[tuple[str, str, str, str]]:
    out = []
    for line in DATA.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        spec, answer, verdict, code = line.split("\t")
        out.append((spec, answer, verdict, code))
    return out


ROWS = rows()


def test_enough_answers_for_every_code() -> None:
    assert len(ROWS) >= 200
    codes = Counter(code for *_, code in ROWS)
    # the catalogue's codes that have a formula (its gradient codes) and the rules of differentiation
    for code in (*MATH_MD_CODES[:10], *RULE_CODES):
        assert codes[code] >= 1, code
    assert sum(1 for *_, v, _ in ROWS if v == "true") >= 80


@pytest.mark.parametrize(("spec", "answer", "verdict", "code"), ROWS, ids=[f"{r[0]}|{r[1]}" for r in ROWS])
def test_answer(spec: str, answer: str, verdict: str, code: str) -> None:
    q = question(spec)
    steps = answer.split(" ;; ")
    formulas = [parse(s) for s in steps]
    result = grade_formula(q, formulas if len(steps) > 1 else formulas[0])
    if len(steps) > 1:
        assert result["correct"] is VERDICTS[verdict]
    else:
        assert result["equivalent"] is VERDICTS[verdict], result["counterexample"]
    named = result["mistake"]["code"] if result["mistake"] else "-"
    assert named == code, result["mistake"]

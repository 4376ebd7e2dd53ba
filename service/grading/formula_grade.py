"""Grading a learner's formula, or a whole derivation step by step, against a question's target.

A formula is correct when it is equivalent to the target (service.grading.formula_equivalence); a
wrong one is named by the first mistake variant it is equivalent to (service.grading.formula_mistakes:
rules of differentiation first, then the catalogue's order), the others it matches listed. A
derivation's steps each should equal the target (the first may restate the chain rule in Leibniz
names, which stand for their true values): the first step that does not is `first_wrong_step`, and
the steps before it earn `step_credit` of the points, shared equally among the steps.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any

from service.formulas import Expr, to_latex, to_text
from service.grading.formula_equivalence import Confirm, Points, Verdict, agree, compare
from service.grading.formula_mistakes import FormulaVariant, variants
from service.grading.formula_targets import Question
from service.grading.grade import version
from service.grading.mistakes import ALL_MISTAKES, FORMULA_MISTAKES

CACHE_SIZE = 128
TITLES = {m.code: m.title.lower() for m in (*ALL_MISTAKES, *FORMULA_MISTAKES)}


@dataclass(frozen=True)
class FormulaOptions:
    reveal: bool = False
    step_credit: float = 0.5  # the share of the points the steps before the first wrong one earn


class _Prepared:
    """A question's points, true values and mistake variants (the variants made when first needed)."""

    def __init__(self, question: Question) -> None:
        self.question = question
        self.points = Points(question)
        self._variants: list[FormulaVariant] | None = None

    @property
    def variants(self) -> list[FormulaVariant]:
        if self._variants is None:
            self._variants = variants(self.question, self.points)
        return self._variants


_CACHE: OrderedDict[tuple[Any, ...], _Prepared] = OrderedDict()


def prepared(question: Question) -> _Prepared:
    key = (question.pairing, question.regularization, question.target, question.truth)
    found = _CACHE.get(key)
    if found is None:
        found = _CACHE[key] = _Prepared(question)
        if len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    _CACHE.move_to_end(key)
    return found


@dataclass
class Judged:
    formula: Expr
    verdict: Verdict
    mistake: FormulaVariant | None
    also: list[str]


def judge(prep: _Prepared, formula: Expr, confirm: Confirm | None = None) -> Judged:
    verdict = compare(prep.points, formula, confirm)
    if verdict.equivalent is not False:
        return Judged(formula, verdict, None, [])
    matches = [v for v in prep.variants if agree(prep.points, verdict.values, v.values)]
    also = list(dict.fromkeys(v.code for v in matches[1:] if v.code != matches[0].code)) if matches else []
    return Judged(formula, verdict, matches[0] if matches else None, also)


def _read(formula: Expr) -> dict[str, str]:
    return {"latex": to_latex(formula), "text": to_text(formula)}


def _mistake(j: Judged) -> dict[str, Any] | None:
    if j.mistake is None:
        return None
    return {"code": j.mistake.code, "message": j.mistake.message, "also_matches": j.also or None}


def _message(j: Judged) -> str:
    if j.verdict.equivalent:
        return "Correct."
    if j.verdict.equivalent is None:
        return f"This could not be decided: {j.verdict.reason}."
    if j.mistake is not None:
        return j.mistake.message
    return "This is not equal to the target, and no catalogued mistake explains it."


def _counterexample(j: Judged, reveal: bool) -> dict[str, Any] | None:
    if j.verdict.equivalent is not False or j.verdict.counterexample is None:
        return None
    if reveal:
        return j.verdict.counterexample
    return {"shown": False}  # there is one; its values only with reveal


def grade_formula(
    question: Question,
    answer: Expr | list[Expr],
    options: FormulaOptions = FormulaOptions(),
    confirm: Confirm | None = None,
) -> dict[str, Any]:
    """The native result of one formula, or of a derivation (a list of formulas)."""
    prep = prepared(question)
    steps = answer if isinstance(answer, list) else [answer]
    # SymPy confirms the answer (the last step) when the points found it equal: one worker job per answer,
    # not per step of a derivation (each step is still judged at the points)
    last = len(steps) - 1
    judged = [judge(prep, formula, confirm if k == last else None) for k, formula in enumerate(steps)]
    final = judged[-1]
    wrong = next((k for k, j in enumerate(judged) if j.verdict.equivalent is not True), None)
    score = 1.0 if wrong is None else options.step_credit * wrong / len(steps) if isinstance(answer, list) else 0.0
    blamed = judged[wrong] if wrong is not None else final
    result: dict[str, Any] = {
        "correct": wrong is None,
        "score": score,
        "equivalent": final.verdict.equivalent,
        "method": final.verdict.method,
        "answer": _read(final.formula),
        "mistake": _mistake(blamed) if wrong is not None else None,
        "counterexample": _counterexample(blamed, options.reveal) if wrong is not None else None,
        "steps": [
            {
                "index": k,
                "correct": j.verdict.equivalent is True,
                "equivalent": j.verdict.equivalent,
                "mistake": _mistake(j),
                "message": _message(j),
                **_read(j.formula),
            }
            for k, j in enumerate(judged)
        ]
        if isinstance(answer, list)
        else [],
        "first_wrong_step": wrong if isinstance(answer, list) else None,
        "feedback": _feedback(judged, wrong, isinstance(answer, list)),
        "version": version(),
    }
    if options.reveal:
        result["expected"] = _read(question.truth)
    return result


def _feedback(judged: list[Judged], wrong: int | None, derivation: bool) -> str:
    if wrong is None:
        return "Correct: every step equals the target." if derivation else "Correct."
    message = _message(judged[wrong])
    if not derivation:
        return message
    return f"Step {wrong + 1} is the first that does not equal the target: {message}"


SCORE_BINS = 10


def class_summary(results: list[dict[str, Any] | None]) -> dict[str, Any]:
    """What an instructor reads first about a class's native results (None: an answer not graded):
    the score distribution, how many answers each mistake explains, the steps most often first wrong."""
    graded = [r for r in results if r is not None]
    n = len(graded)
    bins = [0] * SCORE_BINS
    for r in graded:
        bins[min(SCORE_BINS - 1, int(r["score"] * SCORE_BINS))] += 1
    codes = Counter(r["mistake"]["code"] for r in graded if r["mistake"])
    steps = Counter(r["first_wrong_step"] for r in graded if r["first_wrong_step"] is not None)
    unexplained = sum(1 for r in graded if not r["correct"] and r["mistake"] is None)
    mistakes = [{"code": code, "answers": count, "share": count / n} for code, count in codes.most_common()]
    headline = "No answer was graded." if not n else f"{sum(r['correct'] for r in graded)} of {n} answers are correct."
    if mistakes:
        top = mistakes[0]
        headline += f" {top['share']:.0%} of the answers: {TITLES.get(str(top['code']), top['code'])}."
    return {
        "answers": len(results),
        "graded": n,
        "correct": sum(1 for r in graded if r["correct"]),
        "mean_score": sum(r["score"] for r in graded) / n if n else 0.0,
        "score_distribution": [
            {"from": k / SCORE_BINS, "to": (k + 1) / SCORE_BINS, "answers": count} for k, count in enumerate(bins)
        ],
        "mistakes": mistakes,
        "unexplained": unexplained,
        "first_wrong_steps": [{"index": index, "answers": count} for index, count in sorted(steps.items())],
        "headline": headline,
    }

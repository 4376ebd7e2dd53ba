"""From POST /grade/formula (and a question's POST /problems/sign) to the formula grader and back."""

from __future__ import annotations

import time
from typing import Any

import orjson
from pydantic import ValidationError

from service.formulas import Expr, FormulaError, FormulaTooComplex, parse, to_text
from service.formulas.pool import PoolError
from service.formulas.tree import Derivative, Sum, walk
from service.grading.formats import render
from service.grading.formula_grade import FormulaOptions, class_summary, grade_formula
from service.grading.formula_targets import (
    Question,
    QuestionError,
    derivative_question,
    model_question,
    read,
    replace,
)
from service.http.errors import ProblemError, problem_body
from service.http.handlers import custom_formulas
from service.http.schemas.grade_formula import (
    FORMULA_ANSWER,
    FORMULA_SCORING_FIELDS,
    MAX_STEPS,
    DerivativeOf,
    FormulaQuestion,
    FormulaScoringIn,
    FormulaSteps,
    GradeFormulaBatch,
    GradeFormulaRequest,
    SignQuestionRequest,
)
from service.http.security.attempts import AttemptStore
from service.http.security.keys import Principal
from service.http.security.signing import MalformedToken, Signer, token_digest
from service.observability import GRADES
from service.settings import Settings


def formula_problem(exc: FormulaError, loc: list[str | int]) -> ProblemError:
    """A formula that does not read (422 formula-error) or is too big to work on (formula-too-complex)."""
    if isinstance(exc, FormulaTooComplex):
        return ProblemError(
            422,
            "formula-too-complex",
            f"The formula is too complex: {exc.message}.",
            [{"loc": loc, "msg": str(exc)}],
            limit=exc.limit,
            maximum=exc.maximum,
        )
    extra: dict[str, Any] = {"column": exc.column} if exc.column is not None else {}
    if exc.allowed_names:
        extra["allowed"] = list(exc.allowed_names)
    return ProblemError(
        422, "formula-error", f"The formula does not read: {exc}.", [{"loc": loc, "msg": str(exc)}], **extra
    )


def _read(text: str, syntax: str, loc: list[str | int]) -> Expr:
    try:
        return parse(text, syntax)  # type: ignore[arg-type]
    except FormulaError as exc:
        raise formula_problem(exc, loc) from None


def build_question(q: FormulaQuestion, syntax: str = "auto") -> Question:
    """The question's target and truth; a question this grader cannot set is a 422 at its place."""
    try:
        if isinstance(q.target, DerivativeOf):
            if q.model is not None or q.regularization is not None:
                raise QuestionError(("question", "model"), "a derivative_of question takes no model")
            expr = _read(q.target.derivative_of, syntax, ["question", "target", "derivative_of"])
            return derivative_question(expr, q.target.variable)
        if q.model is None:
            raise QuestionError(("question", "model"), "a question on a model's quantity names the model")
        reg = q.regularization.kind if q.regularization else None
        return model_question(q.model, q.target, q.activation, q.loss, reg)
    except QuestionError as exc:
        raise ProblemError(
            422,
            "validation-error",
            f"This question cannot be graded: {exc.message}.",
            [{"loc": list(exc.loc), "msg": exc.message}],
        ) from None
    except FormulaError as exc:
        raise formula_problem(exc, ["question", "target"]) from None


QUESTION_KEY = "formula_question"


def sign_question(req: SignQuestionRequest, settings: Settings, signer: Signer) -> dict[str, Any]:
    build_question(req.question)  # a question that cannot be graded is refused now, not when students use it
    expires = int(time.time()) + (req.expires_in or settings.token_lifetime_seconds)
    sealed = {QUESTION_KEY: req.question.model_dump(mode="json", exclude_none=True)}
    scoring = req.model_dump(mode="json", include=set(FORMULA_SCORING_FIELDS))
    return {"problem_token": signer.sign(sealed, expires, scoring), "expires_at": expires}


def open_question(token: str, signer: Signer | None) -> tuple[FormulaQuestion, FormulaScoringIn]:
    if signer is None:
        raise ProblemError(403, "forbidden", "This service does not accept problem tokens.")
    sealed = signer.verify(token)
    if set(sealed.problem) != {QUESTION_KEY}:
        raise MalformedToken()
    try:
        question = FormulaQuestion.model_validate_json(orjson.dumps(sealed.problem[QUESTION_KEY]))
        scoring = FormulaScoringIn.model_validate_json(orjson.dumps(sealed.grading or {}))
    except ValidationError:
        raise MalformedToken() from None
    return question, scoring


def student_check(raw: Any, principal: Principal) -> None:
    """A student key grades signed questions only, and may not set how they are scored."""
    if not principal.is_student_only:
        return
    if not isinstance(raw, dict) or raw.get("question_token") is None:
        raise ProblemError(403, "forbidden", "A student key grades signed questions only: send question_token.")
    names = [name for name in FORMULA_SCORING_FIELDS if name in raw]
    if names:
        raise ProblemError(
            403,
            "forbidden",
            f"A student key may not set {', '.join(names)}: the grader sealed it in the signed question.",
            [{"loc": [name], "msg": "a student key may not set this"} for name in names],
            fields=names,
        )


async def take_attempt(
    principal: Principal,
    req: GradeFormulaRequest | GradeFormulaBatch,
    signer: Signer | None,
    attempts: AttemptStore,
    settings: Settings,
) -> None:
    """A student key's answers each take one of its attempts at the signed question (as /grade counts them)."""
    if not principal.is_student_only or req.question_token is None:
        return
    if signer is None:
        raise ProblemError(403, "forbidden", "This service does not accept problem tokens.")
    sealed = signer.verify(req.question_token)
    key = f"attempts:{principal.key_id}:{token_digest(req.question_token)}"
    n = len(req.answers) if isinstance(req, GradeFormulaBatch) else 1
    consumed = await attempts.consume(key, n, settings.max_attempts, sealed.expires)
    if not consumed.granted:
        raise ProblemError(
            403,
            "forbidden",
            f"This key has used its {settings.max_attempts} attempts at this question.",
            attempts=consumed.used,
            max_attempts=settings.max_attempts,
        )


def _resolve(req: GradeFormulaRequest | GradeFormulaBatch, signer: Signer | None) -> tuple[Question, FormulaOptions]:
    """The question (in the clear or signed) and how it is scored: sealed options, any a grader sets in the
    clear taking their place (a student key's request never gets here with one)."""
    if req.question_token is not None:
        question_in, sealed = open_question(req.question_token, signer)
        clear = {n: getattr(req, n) for n in FORMULA_SCORING_FIELDS if n in req.model_fields_set}
        scoring = sealed.model_copy(update=clear)
    else:
        assert req.question is not None
        question_in, scoring = req.question, req
    options = FormulaOptions(reveal=scoring.reveal, step_credit=scoring.step_credit)
    return build_question(question_in, req.syntax), options


def _answer(answer: str | FormulaSteps, syntax: str, loc: list[str | int]) -> Expr | list[Expr]:
    if isinstance(answer, str):
        return _read(answer, syntax, loc)
    return [_read(step, syntax, [*loc, "steps", k]) for k, step in enumerate(answer.steps)]


def _counted(native: dict[str, Any]) -> dict[str, Any]:
    GRADES.labels("correct" if native["correct"] else "incorrect").inc()
    return native


EQUIVALENT_JOB = "service.formulas.algebra:equivalent"
_CONFIRMED: dict[tuple[str, str, str], bool | None] = {}  # (answer, truth, f's definition): a class repeats itself
_CONFIRMED_MAX = 4096


def symbolic_confirm(answer: Expr, truth: Expr, question: Question) -> bool | None:
    """SymPy's verdict, in the formula workers within their time limit, that an answer the points found equal
    to the truth is the same function (f = g(z) put in both, Leibniz names as their formulas): True when
    proved; None when it cannot say (a sum over the examples, a refusal of the workers), and the verdict
    stays the points' ("numeric")."""

    def grounded(tree: Expr) -> Expr:
        return replace(tree, lambda node: question.leibniz.get(to_text(node)) if isinstance(node, Derivative) else None)

    a, t = grounded(answer), grounded(truth)
    if any(isinstance(node, Sum | Derivative) for tree in (a, t) for node in walk(tree)):
        return None
    g = question.pairing.g if question.pairing is not None else ""
    key = (to_text(a), to_text(t), g)
    if key in _CONFIRMED:
        return _CONFIRMED[key]
    substitutions = {"f": read(g)} if g else None
    try:
        proved = bool(custom_formulas.run_job(EQUIVALENT_JOB, a, t, substitutions))
    except (PoolError, ProblemError, FormulaTooComplex):
        return None  # busy, too long, stopping: the points' verdict stands (not cached: another time may do)
    if len(_CONFIRMED) >= _CONFIRMED_MAX:
        _CONFIRMED.clear()
    _CONFIRMED[key] = proved
    return proved


def grade_formula_request(req: GradeFormulaRequest, signer: Signer | None) -> dict[str, Any]:
    question, options = _resolve(req, signer)
    native = _counted(
        grade_formula(question, _answer(req.answer, req.syntax, ["answer"]), options, confirm=symbolic_confirm)
    )
    return render_formula(native, req.format)


def grade_formula_batch(req: GradeFormulaBatch, signer: Signer | None) -> dict[str, Any]:
    """Every answer graded on its own (one that does not read gets a problem object in its place), and the
    class summary of the native results."""
    question, options = _resolve(req, signer)
    results: list[dict[str, Any]] = []
    natives: list[dict[str, Any] | None] = []
    for i, raw in enumerate(req.answers):
        loc: list[str | int] = ["answers", i]
        try:
            try:
                answer = FORMULA_ANSWER.validate_python(raw, strict=True)
            except ValidationError:
                raise ProblemError(
                    422,
                    "validation-error",
                    f'answers[{i}] is neither a formula nor {{"steps": [...]}} of at most {MAX_STEPS} formulas.',
                    [{"loc": loc, "msg": 'a string of at most 2000 characters, or {"steps": [strings]}'}],
                ) from None
            native = _counted(grade_formula(question, _answer(answer, req.syntax, loc), options))
        except ProblemError as exc:
            GRADES.labels("ungradable").inc()
            natives.append(None)
            results.append(problem_body(exc.status, exc.slug, exc.detail, exc.errors, **exc.extra))
            continue
        natives.append(native)
        results.append(render_formula(native, req.format))
    return {"results": results, "summary": class_summary(natives)}


def _checks(native: dict[str, Any]) -> list[dict[str, Any]]:
    """The result as checks for graders' formats: one per step, or one for the formula."""
    if native["steps"]:
        n = len(native["steps"])
        return [
            {
                "name": f"step {s['index'] + 1}",
                "points": (1.0 if s["correct"] else 0.0) / n,
                "max_points": 1.0 / n,
                "message": s["message"],
                "mistake": s["mistake"],
            }
            for s in native["steps"]
        ]
    return [
        {
            "name": "formula",
            "points": native["score"],
            "max_points": 1.0,
            "message": native["feedback"],
            "mistake": native["mistake"],
        }
    ]


def render_formula(native: dict[str, Any], fmt: str) -> dict[str, Any]:
    if fmt == "native":
        return native
    shaped = {**native, "points": native["score"], "max_points": 1.0, "checks": _checks(native)}
    return render(shaped, fmt)

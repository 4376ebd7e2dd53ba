"""POST /grade, POST /grade/batch, GET /mistakes."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import orjson
from fastapi import APIRouter, Request

from service.grading.mistakes import catalogue
from service.http.deps import GRADER, STUDENT_OR_OPERATOR, SettingsDep, StudentOrGrader
from service.http.handlers.grade_formula import (
    grade_formula_batch,
    grade_formula_request,
    sign_question,
    student_check,
    take_attempt,
)
from service.http.handlers.grading import (
    batch_body_work,
    batch_steps,
    check_student,
    grade_request,
    parse_batch,
    run_steps,
    sign_problem,
    student_tokens,
)
from service.http.schemas.grade_formula import (
    EXAMPLE_QUESTION,
    GRADE_FORMULA_BATCH,
    GRADE_FORMULA_REQUEST,
    SIGN_QUESTION_REQUEST,
    GradeFormulaResult,
)
from service.http.schemas.grading import (
    EXAMPLE_ANSWER,
    EXAMPLE_PROBLEM,
    GRADE_REQUEST,
    SIGN_REQUEST,
    BatchResponse,
    GradeRequest,
    GradeResponse,
    SignResponse,
)
from service.http.schemas.problem import AUTH_RESPONSES, PROBLEM_RESPONSES
from service.http.security.signing import Signer
from service.http.wire.encoding import JSONBytes, dumps
from service.http.wire.json import parse, read_json
from service.settings import Settings

router = APIRouter(tags=["grading"])


def _body(schema: str, examples: dict[str, Any] | None = None, also: str | None = None) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema}"}
    content: dict[str, Any] = {"schema": {"oneOf": [ref, {"$ref": f"#/components/schemas/{also}"}]} if also else ref}
    if examples:
        content["examples"] = examples
    return {"requestBody": {"required": True, "content": {"application/json": content}}}


_BATCH_EXAMPLES = {
    "answers": {
        "summary": "a class's answers to one problem",
        "value": {"problem": EXAMPLE_PROBLEM, "answers": [EXAMPLE_ANSWER, {"loss": 0.3668668}]},
    },
    "items": {
        "summary": "problem and answer pairs",
        "value": {"items": [{"problem": EXAMPLE_PROBLEM, "answer": EXAMPLE_ANSWER}]},
    },
    "formulas": {
        "summary": "a class's formulas for one formula question, with a class summary",
        "value": {"question": EXAMPLE_QUESTION, "answers": ["(f - y) x_j", "f - y"]},
    },
}


def _grade(req: GradeRequest, settings: Settings, signer: Signer, opened: dict[str, Any]) -> bytes:
    return dumps(grade_request(req, settings, signer, opened))


# a batch is graded in slices of about this long in a worker thread, the event loop running alone
# between them, so health checks and small requests are answered while a big batch is graded
BATCH_SLICE_SECONDS = 0.01


@router.post(
    "/problems/sign",
    summary="Sign a problem for students",
    response_class=JSONBytes,
    responses={200: {"model": SignResponse, "description": "The token and its expiry."}, **PROBLEM_RESPONSES},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/SignRequest"},
                            {"$ref": "#/components/schemas/SignQuestionRequest"},
                        ]
                    },
                    "examples": {
                        "problem": {"summary": "a problem, for POST /grade", "value": {"problem": EXAMPLE_PROBLEM}},
                        "question": {
                            "summary": "a formula question, for POST /grade/formula",
                            "value": {"question": EXAMPLE_QUESTION, "step_credit": 0.5},
                        },
                    },
                }
            },
        }
    },
    dependencies=[GRADER],
)
async def sign(request: Request, settings: SettingsDep) -> JSONBytes:
    """A token for a problem (HMAC over the canonical problem, with an expiry) to grade it without revealing
    it, or for a formula question (a body with `question`) to grade with POST /grade/formula."""
    body = await read_json(request)
    if _has_question(body):
        question = parse(SIGN_QUESTION_REQUEST, body)
        return JSONBytes(dumps(sign_question(question, settings, request.app.state.signer)))
    req = parse(SIGN_REQUEST, body)
    return JSONBytes(dumps(sign_problem(req, settings, request.app.state.signer)))


def _formula_batch(body: bytes | bytearray) -> dict[str, Any] | None:
    """The body, when it is a batch of formulas for one question (it names a question, not a problem)."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    named = isinstance(raw, dict) and ("question" in raw or "question_token" in raw)
    return raw if named and "problem" not in raw and "problem_token" not in raw else None


def _has_question(body: bytes | bytearray) -> bool:
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(raw, dict) and "question" in raw and "problem" not in raw


@router.post(
    "/grade/formula",
    summary="Grade a learner's formula or derivation",
    response_class=JSONBytes,
    responses={
        200: {"model": GradeFormulaResult, "description": "Verdict, mistake named, each step judged."},
        **PROBLEM_RESPONSES,
    },
    openapi_extra=_body("GradeFormulaRequest"),
)
async def grade_formula(request: Request, settings: SettingsDep, principal: StudentOrGrader) -> JSONBytes:
    """Grade a formula (or a derivation, step by step) against a question's target: equivalence at random
    points of each quantity's domain, the mistake named (a rule of differentiation or the catalogue's)."""
    body = await read_json(request)
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        raw = None
    student_check(raw, principal)
    req = parse(GRADE_FORMULA_REQUEST, body)
    await take_attempt(principal, req, request.app.state.signer, request.app.state.attempts, settings)
    result = await anyio.to_thread.run_sync(grade_formula_request, req, request.app.state.signer)
    return JSONBytes(dumps(result))


@router.post(
    "/grade",
    summary="Grade a learner's answer",
    response_class=JSONBytes,
    responses={
        200: {"model": GradeResponse, "description": "Points, per-part checks and the mistake made."},
        **PROBLEM_RESPONSES,
    },
    openapi_extra=_body("GradeRequest"),
)
async def grade(
    request: Request,
    settings: SettingsDep,
    principal: StudentOrGrader,
) -> JSONBytes:
    """Grade an answer to a problem: points, a check per part, the mistake made and feedback."""
    body = await read_json(request)
    state = request.app.state
    opened = student_tokens(body, principal, state.signer)  # before the answer is parsed
    big = len(body) > settings.inline_body_bytes
    req = await anyio.to_thread.run_sync(parse, GRADE_REQUEST, body) if big else parse(GRADE_REQUEST, body)
    await check_student(principal, req, opened, state.attempts, settings)
    if big:
        return JSONBytes(await anyio.to_thread.run_sync(_grade, req, settings, state.signer, opened))
    return JSONBytes(_grade(req, settings, state.signer, opened))


@router.post(
    "/grade/batch",
    summary="Grade many answers",
    response_class=JSONBytes,
    responses={200: {"model": BatchResponse, "description": "One result per answer, in order."}, **PROBLEM_RESPONSES},
    openapi_extra=_body("GradeBatchRequest", _BATCH_EXAMPLES, also="GradeFormulaBatch"),
)
async def grade_many(
    request: Request,
    settings: SettingsDep,
    principal: StudentOrGrader,
) -> JSONBytes:
    """Grade a whole class's answers to one problem, or many problem/answer pairs, each on its own; or a
    class's formulas for one formula question (with `question` or `question_token`), with a class summary."""
    body = await read_json(request)
    state = request.app.state
    formula = _formula_batch(body)
    if formula is not None:
        student_check(formula, principal)
        req_f = parse(GRADE_FORMULA_BATCH, body)
        await take_attempt(principal, req_f, state.signer, state.attempts, settings)
        return JSONBytes(dumps(await anyio.to_thread.run_sync(grade_formula_batch, req_f, state.signer)))
    opened = student_tokens(body, principal, state.signer)  # before any answer is parsed
    batch_body_work(len(body), settings)  # a body too big to grade is refused before it is parsed
    req = await anyio.to_thread.run_sync(parse_batch, body)
    await check_student(principal, req, opened, state.attempts, settings)
    steps = batch_steps(req, settings, state.signer, opened, encode=dumps, body_bytes=len(body))
    while True:
        done, result = await anyio.to_thread.run_sync(run_steps, steps, BATCH_SLICE_SECONDS)
        if done:
            return JSONBytes(dumps(result))  # its results are encoded already: this joins them


@router.get(
    "/mistakes",
    response_class=JSONBytes,
    responses={
        200: {"content": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}}},
        **AUTH_RESPONSES,
    },
    dependencies=[STUDENT_OR_OPERATOR],
)
async def mistakes() -> JSONBytes:
    """The catalogue of common mistakes the grader names (docs/design/math.md), with their explanations."""
    return JSONBytes(dumps(catalogue()))

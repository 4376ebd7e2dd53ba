"""POST /grade, POST /grade/batch, GET /mistakes."""

from __future__ import annotations

import re
import time
from typing import Annotated, Any

import anyio.to_thread
import orjson
from fastapi import APIRouter, Depends, Request
from pydantic import TypeAdapter, ValidationError

from service.api.body import MODEL_TAGS, parse, read_json
from service.api.encoding import JSONBytes, dumps
from service.api.errors import ProblemError
from service.api.grading import (
    batch_body_work,
    batch_steps,
    check_student,
    grade_request,
    reference_for,
    run_steps,
    sealed_scoring,
    student_tokens,
)
from service.api.grading_schemas import (
    BatchResponse,
    GradeBatchRequest,
    GradeRequest,
    GradeResponse,
    SignRequest,
    SignResponse,
)
from service.api.responses import AUTH_RESPONSES, PROBLEM_RESPONSES
from service.api.security import Principal, Signer, access, app_settings
from service.grading.mistakes import catalogue
from service.settings import Settings

router = APIRouter(tags=["grading"])
_GRADE: TypeAdapter[GradeRequest] = TypeAdapter(GradeRequest)
_SIGN: TypeAdapter[SignRequest] = TypeAdapter(SignRequest)
_BATCH: TypeAdapter[Any] = TypeAdapter(GradeBatchRequest)


def _body(schema: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        }
    }


def _grade(req: GradeRequest, settings: Settings, signer: Signer, opened: dict[str, Any]) -> bytes:
    return dumps(grade_request(req, settings, signer, opened))


_BATCH_TAGS = MODEL_TAGS | {"answers", "items"}
# a batch is graded in slices of about this long in a worker thread, the event loop running alone
# between them, so health checks and small requests are answered while a big batch is graded
BATCH_SLICE_SECONDS = 0.01


_LONG_NUMBER = re.compile(rb"[0-9]{19}")


def parse_batch(body: bytes | bytearray) -> Any:
    """Parse a batch as `parse` does, without validating its answers (or items) in one long call that
    would hold the interpreter: each is validated on its own when it is graded. The answers stand as
    placeholders while the rest of the request is validated; a body this way cannot read (invalid
    JSON, numbers orjson refuses) is parsed the strict way, which says what is wrong with it."""
    raw = None
    if not _LONG_NUMBER.search(body):  # orjson reads an integer beyond 64 bits as a float; pydantic, as an int
        try:
            raw = orjson.loads(body)
        except orjson.JSONDecodeError:
            raw = None
    field = "answers" if isinstance(raw, dict) and "answers" in raw else "items"
    values = raw.get(field) if isinstance(raw, dict) else None
    if not isinstance(raw, dict) or not isinstance(values, list):
        return parse(_BATCH, body, _BATCH_TAGS)
    stubs = [0] * len(values) if field == "answers" else [{} if isinstance(v, dict) else v for v in values]
    try:
        req = _BATCH.validate_python({**raw, field: stubs}, strict=True)
    except (ValidationError, TypeError, ValueError):
        return parse(_BATCH, body, _BATCH_TAGS)
    return req.model_copy(update={field: values})


@router.post(
    "/problems/sign",
    summary="Sign a problem for students",
    response_class=JSONBytes,
    responses={200: {"model": SignResponse, "description": "The token and its expiry."}, **PROBLEM_RESPONSES},
    openapi_extra=_body("SignRequest"),
    dependencies=[Depends(access("grader"))],
)
async def sign(request: Request, settings: Annotated[Settings, Depends(app_settings)]) -> JSONBytes:
    """A token for a problem (HMAC over the canonical problem, with an expiry) to grade it without revealing it."""
    req = parse(_SIGN, await read_json(request))
    ref = reference_for(req.problem, settings)  # a bad problem is refused now, not when students use it
    unknown = [part for part in req.points or {} if part not in ref.expected]
    if unknown:
        raise ProblemError(
            422,
            "validation-error",
            "points names parts this problem does not have.",
            [
                {"loc": ["points", part], "msg": f"no part {part} in this model: it has {', '.join(ref.expected)}"}
                for part in unknown
            ],
        )
    expires = int(time.time()) + (req.expires_in or settings.token_lifetime_seconds)
    problem = req.problem.model_dump(mode="json", by_alias=True, exclude_none=True)
    problem.pop("explain", None)
    problem.pop("verify", None)
    token = request.app.state.signer.sign(problem, expires, sealed_scoring(req))
    return JSONBytes(dumps({"problem_token": token, "expires_at": expires}))


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
    settings: Annotated[Settings, Depends(app_settings)],
    principal: Annotated[Principal, Depends(access("student"))],
) -> JSONBytes:
    """Grade an answer to a problem: points, a check per part, the mistake made and feedback."""
    body = await read_json(request)
    state = request.app.state
    opened = student_tokens(body, principal, state.signer)  # before the answer is parsed
    big = len(body) > settings.inline_body_bytes
    req = await anyio.to_thread.run_sync(parse, _GRADE, body) if big else parse(_GRADE, body)
    await check_student(principal, req, opened, state.attempts, settings)
    if big:
        return JSONBytes(await anyio.to_thread.run_sync(_grade, req, settings, state.signer, opened))
    return JSONBytes(_grade(req, settings, state.signer, opened))


@router.post(
    "/grade/batch",
    summary="Grade many answers",
    response_class=JSONBytes,
    responses={200: {"model": BatchResponse, "description": "One result per answer, in order."}, **PROBLEM_RESPONSES},
    openapi_extra=_body("GradeBatchRequest"),
)
async def grade_many(
    request: Request,
    settings: Annotated[Settings, Depends(app_settings)],
    principal: Annotated[Principal, Depends(access("student"))],
) -> JSONBytes:
    """Grade a whole class's answers to one problem, or many problem/answer pairs, each on its own."""
    body = await read_json(request)
    state = request.app.state
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
    dependencies=[Depends(access("student", "operator"))],
)
async def mistakes() -> JSONBytes:
    """The catalogue of common mistakes the grader names (docs/design/math.md), with their explanations."""
    return JSONBytes(dumps(catalogue()))

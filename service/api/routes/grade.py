"""POST /grade, POST /grade/batch, GET /mistakes."""

from __future__ import annotations

import time
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from pydantic import TypeAdapter

from service.api.body import MODEL_TAGS, parse, read_json
from service.api.encoding import JSONBytes, dumps
from service.api.grading import check_student, grade_batch, grade_request, reference_for
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


def _grade(req: GradeRequest, settings: Settings, signer: Signer) -> bytes:
    return dumps(grade_request(req, settings, signer))


_BATCH_TAGS = MODEL_TAGS | {"answers", "items"}


def _batch(req: Any, settings: Settings, signer: Signer) -> bytes:
    return dumps(grade_batch(req, settings, signer))


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
    reference_for(req.problem, settings)  # a bad problem is refused now, not when students use it
    expires = int(time.time()) + (req.expires_in or settings.token_lifetime_seconds)
    problem = req.problem.model_dump(mode="json", by_alias=True, exclude_none=True)
    problem.pop("explain", None)
    problem.pop("verify", None)
    token = request.app.state.signer.sign(problem, expires)
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
    big = len(body) > settings.inline_body_bytes
    req = await anyio.to_thread.run_sync(parse, _GRADE, body) if big else parse(_GRADE, body)
    state = request.app.state
    await check_student(principal, req, state.signer, state.attempts, settings)
    if big:
        return JSONBytes(await anyio.to_thread.run_sync(_grade, req, settings, state.signer))
    return JSONBytes(_grade(req, settings, state.signer))


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
    req = await anyio.to_thread.run_sync(parse, _BATCH, body, _BATCH_TAGS)
    state = request.app.state
    await check_student(principal, req, state.signer, state.attempts, settings)
    return JSONBytes(await anyio.to_thread.run_sync(_batch, req, settings, state.signer))


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
    """The catalogue of common mistakes the grader names (MATH.md), with their explanations."""
    return JSONBytes(dumps(catalogue()))

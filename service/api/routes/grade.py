"""POST /grade, POST /grade/batch, GET /mistakes."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from pydantic import TypeAdapter

from service.api.body import MODEL_TAGS, parse, read_json
from service.api.encoding import JSONBytes, dumps
from service.api.grading import grade_batch, grade_request
from service.api.grading_schemas import BatchResponse, GradeBatchRequest, GradeRequest, GradeResponse
from service.api.responses import PROBLEM_RESPONSES
from service.grading.mistakes import catalogue
from service.settings import Settings, get_settings

router = APIRouter(tags=["grading"])
_GRADE: TypeAdapter[GradeRequest] = TypeAdapter(GradeRequest)
_BATCH: TypeAdapter[Any] = TypeAdapter(GradeBatchRequest)


def _body(schema: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        }
    }


def _grade(body: bytes, settings: Settings) -> bytes:
    return dumps(grade_request(parse(_GRADE, body), settings))


_BATCH_TAGS = MODEL_TAGS | {"answers", "items"}


def _batch(body: bytes, settings: Settings) -> bytes:
    return dumps(grade_batch(parse(_BATCH, body, _BATCH_TAGS), settings))


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
async def grade(request: Request, settings: Annotated[Settings, Depends(get_settings)]) -> JSONBytes:
    """Grade an answer to a problem: points, a check per part, the mistake made and feedback."""
    body = await read_json(request)
    if len(body) > settings.inline_body_bytes:
        return JSONBytes(await anyio.to_thread.run_sync(_grade, body, settings))
    return JSONBytes(_grade(body, settings))


@router.post(
    "/grade/batch",
    summary="Grade many answers",
    response_class=JSONBytes,
    responses={200: {"model": BatchResponse, "description": "One result per answer, in order."}, **PROBLEM_RESPONSES},
    openapi_extra=_body("GradeBatchRequest"),
)
async def grade_many(request: Request, settings: Annotated[Settings, Depends(get_settings)]) -> JSONBytes:
    """Grade a whole class's answers to one problem, or many problem/answer pairs, each on its own."""
    body = await read_json(request)
    return JSONBytes(await anyio.to_thread.run_sync(_batch, body, settings))


@router.get("/mistakes", response_class=JSONBytes)
async def mistakes() -> JSONBytes:
    """The catalogue of common mistakes the grader names (MATH.md), with their explanations."""
    return JSONBytes(dumps(catalogue()))

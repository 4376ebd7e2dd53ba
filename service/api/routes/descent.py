"""POST /descent."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from pydantic import TypeAdapter

from service.api.arrays import parse_with_matrix
from service.api.body import parse, read_json
from service.api.descent import run_descent
from service.api.descent_schemas import DescentRequest
from service.api.encoding import JSONBytes, dumps
from service.api.problems import within_limits
from service.api.responses import PROBLEM_RESPONSES
from service.api.security import access, app_settings
from service.settings import Settings

router = APIRouter(dependencies=[Depends(access("grader"))], tags=["descent"])
_DESCENT: TypeAdapter[DescentRequest] = TypeAdapter(DescentRequest)


def _run(body: bytes, settings: Settings) -> bytes:
    # X straight into an array (service/api/arrays.py), else the whole body validated
    req = parse_with_matrix(
        _DESCENT, body, lambda m, n, _: within_limits(m, n, settings), lambda r: getattr(r.problem, "data", None)
    )
    return dumps(run_descent(req if req is not None else parse(_DESCENT, body), settings))


_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "runs: one per pairing, each with status (completed, converged, diverged, non-finite), "
        "explanation, history (loss and gradient_norm per step), snapshots of the parameters and final; "
        "comparison: a summary when two pairings ran.",
        "content": {"application/json": {"schema": {"type": "object"}}},
    },
    **PROBLEM_RESPONSES,
}


@router.post(
    "/descent",
    summary="Gradient descent with its cost history",
    response_class=JSONBytes,
    responses=_RESPONSE,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DescentRequest"}}},
        }
    },
)
async def run(request: Request, settings: Annotated[Settings, Depends(app_settings)]) -> JSONBytes:
    """k steps of batch gradient descent from given parameters, for any model; optionally two pairings side by side."""
    body = await read_json(request)
    return JSONBytes(await anyio.to_thread.run_sync(_run, body, settings))

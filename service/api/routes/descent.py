"""POST /descent."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Request

from service.api.binary import RawBody, read_body
from service.api.descent import DESCENT_BODY, parse_descent, run_descent
from service.api.encoding import JSONBytes, dumps
from service.api.responses import PROBLEM_RESPONSES
from service.api.security import access, app_settings
from service.settings import Settings

router = APIRouter(dependencies=[Depends(access("grader"))], tags=["descent"])


def _run(raw: RawBody, settings: Settings) -> bytes:
    return dumps(run_descent(parse_descent(raw, settings), settings))


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
    openapi_extra=DESCENT_BODY,
)
async def run(request: Request, settings: Annotated[Settings, Depends(app_settings)]) -> JSONBytes:
    """k steps of batch gradient descent from given parameters, for any model; optionally two pairings side by side."""
    raw = await read_body(request)
    return JSONBytes(await anyio.to_thread.run_sync(_run, raw, settings))

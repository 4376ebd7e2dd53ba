"""POST /descent."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request

from service.http.deps import GRADER, SettingsDep
from service.http.handlers.descent import parse_descent, run_descent
from service.http.schemas.descent import DESCENT_BODY
from service.http.schemas.problem import PROBLEM_RESPONSES
from service.http.wire.binary import RawBody, read_body
from service.http.wire.encoding import JSONBytes, dumps
from service.settings import Settings

router = APIRouter(dependencies=[GRADER], tags=["descent"])


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
async def run(request: Request, settings: SettingsDep) -> JSONBytes:
    """k steps of batch gradient descent from given parameters, for any model; optionally two pairings side by side."""
    raw = await read_body(request)
    return JSONBytes(await anyio.to_thread.run_sync(_run, raw, settings))

"""POST /gradient."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from pydantic import TypeAdapter

from service.api.body import parse, read_json
from service.api.encoding import JSONBytes, dumps
from service.api.problems import Prepared, prepare
from service.api.responses import PROBLEM_RESPONSES, gradient_response
from service.api.schemas import EXAMPLES, GradientRequest, GradientResponse
from service.settings import Settings, get_settings

router = APIRouter(tags=["gradient"])
_REQUEST: TypeAdapter[Any] = TypeAdapter(GradientRequest)

_OPENAPI_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/GradientRequest"},
                "examples": {str(model): {"summary": str(model), "value": ex} for model, ex in EXAMPLES.items()},
            }
        },
    }
}


def _run(prepared: Prepared) -> bytes:
    return dumps(gradient_response(prepared))


@router.post(
    "/gradient",
    summary="Loss and gradients of a model",
    response_class=JSONBytes,
    responses={200: {"model": GradientResponse, "description": "The cost J and its gradients."}, **PROBLEM_RESPONSES},
    openapi_extra=_OPENAPI_BODY,
)
async def gradient(request: Request, settings: Annotated[Settings, Depends(get_settings)]) -> JSONBytes:
    """The cost J and its gradients ∂J/∂w, ∂J/∂b, with the chain-rule breakdown on request."""
    req = parse(_REQUEST, await read_json(request))
    prepared = prepare(req, settings)
    if prepared.work > settings.inline_work_limit or prepared.verify:
        body = await anyio.to_thread.run_sync(_run, prepared)
    else:
        body = _run(prepared)
    return JSONBytes(body)

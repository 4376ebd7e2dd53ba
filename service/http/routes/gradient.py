"""POST /gradient."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.http.handlers.gradient import handle
from service.http.schemas.gradient import GRADIENT_BODY, GradientResponse
from service.http.schemas.problem import PROBLEM_RESPONSES
from service.http.wire.encoding import JSONBytes

router = APIRouter(tags=["gradient"])


@router.post(
    "/gradient",
    summary="Loss and gradients of a model",
    response_class=JSONBytes,
    responses={200: {"model": GradientResponse, "description": "The cost J and its gradients."}, **PROBLEM_RESPONSES},
    openapi_extra=GRADIENT_BODY,
)
async def gradient(request: Request) -> JSONBytes:
    """The cost J and its gradients ∂J/∂w, ∂J/∂b, with the chain-rule breakdown on request."""
    return await handle(request)

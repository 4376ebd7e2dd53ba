"""Liveness, readiness and version."""

from __future__ import annotations

import platform

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from service import __version__
from service.grading import GRADING_RULES_VERSION
from service.http.deps import STUDENT_OR_OPERATOR
from service.http.schemas.problem import AUTH_RESPONSES
from service.http.security.limits import RedisLimiter

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Not ready (starting or draining)."}})
async def readyz(request: Request) -> JSONResponse:
    """The service is ready to take traffic (and reaches Redis, when it uses one)."""
    if not getattr(request.app.state, "ready", False):
        return JSONResponse({"status": "not-ready"}, status_code=503)
    limiter = getattr(request.app.state, "limiter", None)
    if isinstance(limiter, RedisLimiter) and not await limiter.ping():
        return JSONResponse({"status": "not-ready", "reason": "redis unreachable"}, status_code=503)
    attempts = getattr(request.app.state, "attempts", None)  # and its attempt store answers
    if attempts is not None and not await attempts.ping():
        return JSONResponse({"status": "not-ready", "reason": "attempt store unavailable"}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get("/version", dependencies=[STUDENT_OR_OPERATOR], responses=AUTH_RESPONSES)
async def version() -> dict[str, str]:
    """The service's and the grading rules' versions, and those of the libraries that compute."""
    return {
        "service": __version__,
        "grading_rules": GRADING_RULES_VERSION,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }

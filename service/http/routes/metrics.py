"""GET /metrics."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from service.http.deps import OPERATOR
from service.http.schemas.problem import AUTH_RESPONSES
from service.observability import metrics_payload

router = APIRouter(responses=AUTH_RESPONSES, dependencies=[OPERATOR], tags=["operations"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics() -> Response:
    """Prometheus metrics: requests by route and status, latency, problem sizes, grading outcomes."""
    body, content_type = metrics_payload()
    return Response(body, media_type=content_type)

"""GET /explain (the learner's page) and GET /static/... (its script, style and KaTeX)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.responses import Response

from service.http.deps import SettingsDep
from service.http.errors import ProblemError
from service.http.handlers.learner import PAGE_HEADERS, explain_page
from service.web import assets

# Open, with or without API keys: a browser's navigation cannot send a bearer key. The page holds only
# the course's fixed worked example; everything a learner computes goes through the API with their key.
router = APIRouter(tags=["learner's page"])

_LONG = "public, max-age=31536000, immutable"
_SHORT = "public, max-age=300, must-revalidate"


@router.get("/explain", response_class=HTMLResponse, responses={200: {"content": {"text/html": {}}}})
async def explain(request: Request, settings: SettingsDep) -> HTMLResponse:
    """The learner's page: pick a model, edit data and parameters, see the derivation, graph, descent and grading."""
    page: str | None = getattr(request.app.state, "explain_page", None)
    if page is None:
        page = request.app.state.explain_page = explain_page(settings)
    return HTMLResponse(page, headers=PAGE_HEADERS)


@router.get("/static/{name:path}", include_in_schema=False)
async def static(name: str, request: Request) -> Response:
    asset = assets().get(name)  # an exact name from the package's own files: no path is ever joined
    if asset is None:
        raise ProblemError(404, "not-found", "No such static file.")
    versioned = request.query_params.get("v") == asset.version
    headers = {
        "ETag": asset.etag,
        "Cache-Control": _LONG if versioned else _SHORT,
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)

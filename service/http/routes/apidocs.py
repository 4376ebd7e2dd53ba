"""GET /docs (Swagger UI) and GET /redoc (ReDoc): the OpenAPI document as pages, from vendored files.

Swagger UI (swagger-ui-dist 5.35.0) and ReDoc (2.5.4, its standalone bundle) are vendored in
service/web/static/ with their licences, and served by the learner's page's /static/ route, so both
pages work on a network with no other host (no CDN, no web fonts). Open, like /openapi.json.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

from service.web import url

SWAGGER_UI_VERSION = "5.35.0"
REDOC_VERSION = "2.5.4"

router = APIRouter(include_in_schema=False)


def _title(request: Request) -> str:
    return str(request.app.title)


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=f"{_title(request)} - Swagger UI",
        swagger_js_url=url("swagger-ui/swagger-ui-bundle.js"),
        swagger_css_url=url("swagger-ui/swagger-ui.css"),
        swagger_favicon_url=url("swagger-ui/favicon-32x32.png"),
        oauth2_redirect_url=None,
    )


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(
        openapi_url=request.app.openapi_url,
        title=f"{_title(request)} - ReDoc",
        redoc_js_url=url("redoc/redoc.standalone.js"),
        redoc_favicon_url=url("swagger-ui/favicon-32x32.png"),
        with_google_fonts=False,
    )

"""The ASGI application: `service.app:app`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import TypeAdapter

from service import __version__
from service.api import errors
from service.api.body import BodyLimitMiddleware
from service.api.routes import catalog, gradient, health
from service.api.schemas import GradientRequest
from service.settings import Settings, get_settings

DESCRIPTION = (
    "Loss and gradients of machine-learning models, explained step by step with the chain rule "
    "(dL/dw = dL/df · df/dz · dz/dw). Errors are RFC 9457 problem details."
)


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    request_schema = TypeAdapter(GradientRequest).json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in request_schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components["GradientRequest"] = request_schema
    app.openapi_schema = dict(sorted(schema.items()))
    return app.openapi_schema


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.ready = True
        yield
        app.state.ready = False

    app = FastAPI(title="gradient-service", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.ready = False
    app.state.settings = settings
    app.dependency_overrides[get_settings] = lambda: settings
    errors.install(app)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    for module in (gradient, catalog, health):
        app.include_router(module.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


app = create_app()

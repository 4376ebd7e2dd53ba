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
from service.api.descent_schemas import DescentRequest
from service.api.grading_schemas import DOCUMENTED_ITEMS, Answer, GradeBatchRequest, GradeItem, GradeRequest
from service.api.routes import catalog, descent, grade, gradient, health, metrics
from service.api.schemas import GradientRequest
from service.observability import RequestContextMiddleware
from service.settings import Settings, get_settings

REQUEST_SCHEMAS: dict[str, Any] = {
    "GradientRequest": GradientRequest,
    "GradeRequest": GradeRequest,
    "GradeBatchRequest": GradeBatchRequest,
    "Answer": Answer,
    "GradeItem": GradeItem,
    "DescentRequest": DescentRequest,
}

DESCRIPTION = (
    "Loss and gradients of machine-learning models, explained step by step with the chain rule "
    "(dL/dw = dL/df · df/dz · dz/dw). Errors are RFC 9457 problem details."
)


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    # The routes parse their bodies themselves (one strict pass); their schemas are added here.
    for name, model in REQUEST_SCHEMAS.items():
        request_schema = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}")
        for def_name, definition in request_schema.pop("$defs", {}).items():
            components.setdefault(def_name, definition)
        components[name] = request_schema
    for (model_name, field), item in DOCUMENTED_ITEMS.items():
        components[model_name]["properties"][field]["items"] = {"$ref": f"#/components/schemas/{item}"}
    schema["components"]["schemas"] = dict(sorted(components.items()))
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
    modules = (gradient, grade, descent, catalog, health, metrics)
    for module in modules:
        app.include_router(module.router)
    # outermost: the request id and timing cover everything, 413s from the body limit included
    paths = frozenset(route.path for m in modules for route in m.router.routes if hasattr(route, "path"))
    app.add_middleware(RequestContextMiddleware, routes=paths)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


app = create_app()

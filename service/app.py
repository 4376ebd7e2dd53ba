"""The ASGI application: `service.app:app`."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import TypeAdapter

from service import __version__
from service.compute import fused
from service.http import errors
from service.http.handlers import gradient as gradient_handler
from service.http.handlers.custom_formulas import use_pool as use_formula_pool
from service.http.handlers.derive import make_pool
from service.http.middleware.body_limit import BodyLimitMiddleware, limit_by_role
from service.http.middleware.cors import ProblemCORSMiddleware
from service.http.middleware.fastpath import FastPathMiddleware
from service.http.middleware.head import HeadMiddleware
from service.http.middleware.request_context import RequestContextMiddleware
from service.http.routes import apidocs, catalog, derive, descent, grade, gradient, health, learner, metrics, render
from service.http.schemas.derive import DeriveRequest
from service.http.schemas.descent import DescentRequest
from service.http.schemas.grade_formula import GradeFormulaBatch, GradeFormulaRequest, SignQuestionRequest
from service.http.schemas.gradient import GradientRequest
from service.http.schemas.grading import (
    DOCUMENTED_ITEMS,
    Answer,
    GradeBatchRequest,
    GradeItem,
    GradeRequest,
    SignRequest,
)
from service.http.security.access import AuthThrottle
from service.http.security.attempts import AttemptStoreError, make_attempt_store
from service.http.security.keys import KeyRing
from service.http.security.limits import RedisLimiter, make_limiter
from service.http.security.signing import Signer
from service.runtime import tune_allocator
from service.settings import Settings, get_settings

REQUEST_SCHEMAS: dict[str, Any] = {
    "GradientRequest": GradientRequest,
    "GradeRequest": GradeRequest,
    "GradeBatchRequest": GradeBatchRequest,
    "Answer": Answer,
    "GradeItem": GradeItem,
    "DescentRequest": DescentRequest,
    "DeriveRequest": DeriveRequest,
    "SignRequest": SignRequest,
    "GradeFormulaRequest": GradeFormulaRequest,
    "GradeFormulaBatch": GradeFormulaBatch,
    "SignQuestionRequest": SignQuestionRequest,
}

log = logging.getLogger("service.app")

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


def _drain_on_sigterm(app: FastAPI, seconds: float) -> None:
    """On SIGTERM, answer 503 on /readyz for `seconds` while still serving (so a load balancer stops
    sending new requests), then hand the signal to uvicorn, which finishes in-flight requests and exits."""
    if threading.current_thread() is not threading.main_thread():
        return  # signals can only be handled in the main thread (not under a test client)
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        if not app.state.ready:
            return
        app.state.ready = False
        log.info("SIGTERM: draining for %.1f s (/readyz answers 503), then stopping", seconds)
        if callable(previous):
            timer = threading.Timer(seconds, previous, args=(signum, frame))
            timer.daemon = True
            timer.start()

    signal.signal(signal.SIGTERM, on_sigterm)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if app.state.keyring.open:
            log.warning(
                "no API keys configured: the service is OPEN to anyone who can reach it (fine for local use; "
                "set GRADIENT_SERVICE_API_KEYS or GRADIENT_SERVICE_API_KEYS_FILE before exposing it)"
            )
        if settings.signing_secret is None:
            log.warning(
                "no GRADIENT_SERVICE_SIGNING_SECRET: problem tokens are signed with a random secret of this "
                "process, valid only here and until it restarts (set it, the same on every replica)"
            )
        try:
            await app.state.attempts.open()
        except AttemptStoreError as exc:
            log.error("refusing to start: %s", exc)
            raise
        if app.state.formula_pool.closed:  # the app started again after a shutdown (as test clients do)
            app.state.formula_pool = make_pool(settings)
        if settings.formula_start_workers:
            await app.state.formula_pool.astart()  # its workers, SymPy loaded, before the first /derive
        use_formula_pool(app.state.formula_pool)  # formula activations and losses share it
        app.state.ready = True
        if settings.drain_seconds > 0:
            _drain_on_sigterm(app, settings.drain_seconds)
        yield
        app.state.ready = False
        use_formula_pool(None)
        await app.state.formula_pool.aclose()
        if isinstance(app.state.limiter, RedisLimiter):
            await app.state.limiter.close()
        await app.state.attempts.close()

    # FastAPI's OpenTelemetry hooks off: the service reports through /metrics and its JSON logs, and
    # the hooks' per-request check of the providers costs more than a small problem's computation.
    app = FastAPI(
        title="gradient-service",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # no trailing-slash redirects: Starlette builds them from the Host header, so `POST /grade/` with a
        # forged Host would redirect to any site; such a path is a plain 404 problem instead
        redirect_slashes=False,
        # /docs and /redoc from vendored files (service/http/routes/apidocs.py), not from a CDN
        docs_url=None,
        redoc_url=None,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.ready = False
    app.state.settings = settings
    fused.set_threads(settings.compute_threads)
    tune_allocator()  # numpy's block-sized temporaries without page-fault churn (service/runtime.py)
    app.state.keyring = KeyRing(settings.keys())
    app.state.limiter = make_limiter(settings)
    app.state.attempts = make_attempt_store(settings)  # opened (the data directory made) by the lifespan
    app.state.auth_throttle = AuthThrottle()  # client addresses with too many failed authentications
    app.state.signer = Signer.from_settings(settings)
    app.state.formula_pool = make_pool(settings)  # worker processes for formula jobs: started by the lifespan
    errors.install(app)
    # innermost: POST /gradient past FastAPI's routing (inside the body limit, CORS and request id)
    app.add_middleware(FastPathMiddleware, routes={"/gradient": gradient_handler.handle})
    app.add_middleware(
        BodyLimitMiddleware,
        limit=settings.max_body_bytes,
        limit_for=limit_by_role(app.state.keyring, settings.max_body_bytes, settings.student_max_body_bytes),
        timeout=settings.body_read_timeout_seconds,
    )
    if settings.cors_origins:
        # an explicit allow-list: a wildcard never goes with credentials
        wildcard = "*" in settings.cors_origins
        app.add_middleware(
            ProblemCORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=not wildcard,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    modules = (gradient, grade, descent, derive, render, catalog, health, metrics, learner, apidocs)
    for module in modules:
        app.include_router(module.router)
    app.add_middleware(HeadMiddleware)  # HEAD answered as GET without the body (service/http/middleware/head.py)
    # outermost: the request id and timing cover everything, 413s from the body limit included
    paths = frozenset(route.path for m in modules for route in m.router.routes if hasattr(route, "path"))
    app.add_middleware(RequestContextMiddleware, routes=paths)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


app = create_app()

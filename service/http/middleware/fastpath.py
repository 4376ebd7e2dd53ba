"""The hot endpoints served straight from ASGI, past FastAPI's routing and dependency solving.

POST /gradient is the endpoint clients call in loops. FastAPI spends more CPU matching the
route and solving its dependencies than the service spends parsing and computing a small problem
(docs/performance.md, "Measured choices in the code"). This middleware sits innermost, inside the
request id, CORS and body limit middlewares, and calls the route's own handler, with the route's
own access check: the same code, the same validation, the same answers. The FastAPI route stays
registered: it documents the operation in the OpenAPI document and serves any other method
(405) or a path under a root_path, which do not match here.

Errors are answered as the app's exception handlers answer them (problem+json); an unexpected
exception propagates to the app's last-resort handler, as from any route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from service.compute.errors import ComputeError
from service.http.errors import ProblemError, client_gone, compute_error_response, problem_error_response

Handler = Callable[[Request], Awaitable[Response]]


class FastPathMiddleware:
    def __init__(self, app: ASGIApp, routes: dict[str, Handler]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.routes.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await handler(request)
        except ProblemError as exc:
            response = problem_error_response(exc)
        except ComputeError as exc:
            response = compute_error_response(exc)
        except ClientDisconnect:
            response = client_gone(scope["method"], scope["path"])
        await response(scope, receive, send)

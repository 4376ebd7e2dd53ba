"""HEAD for every GET resource (RFC 9110 §9.3.2): the GET's status and headers, without the body.

FastAPI's routes answer only the methods they declare, so HEAD /explain, /healthz or a static file
would be 405. Link checkers, uptime monitors and caches send HEAD; this middleware runs such a
request as the GET it mirrors and drops the body on the way out, keeping Content-Length, ETag and
the rest. The request id, timing, metrics and access log (outside this middleware) still see HEAD.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # the last (empty) body message below ends the response
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, without_body)

"""The body limit: a request's body refused (413) over its limit, by Content-Length at once or while a
chunked body streams, and (408) when it arrives too slowly; the limit depends on the caller's role."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.http.errors import ProblemError, problem_body
from service.http.security.keys import KeyRing, NoKey, presented_key


class BodyTooLarge(ProblemError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            "body-too-large",
            f"The body is larger than the limit of {limit} bytes.",
            headers={"Connection": "close"},
            limit=limit,
        )


class BodyTimeout(ProblemError):
    def __init__(self, seconds: float) -> None:
        super().__init__(
            408,
            "body-timeout",
            f"The body did not arrive within {seconds:g} s of the request's start: send it faster, or a smaller one.",
            headers={"Connection": "close"},
            timeout_seconds=seconds,
        )


Headers = Iterable[tuple[bytes, bytes]]


def limit_by_role(ring: KeyRing, limit: int, student_limit: int) -> Callable[[Headers], int]:
    """The body limit of a request, from its Authorization header alone: `limit` when the service is open or
    the key is valid and not student-only, `student_limit` for a student-only key and for a missing or
    invalid one (so that a caller without a key cannot send the big bodies). The route authenticates again."""

    def limit_for(headers: Headers) -> int:
        if ring.open:
            return limit
        for name, value in headers:
            if name == b"authorization":
                try:
                    principal = ring.lookup(presented_key(value))
                except NoKey:
                    return student_limit
                return student_limit if principal is None or principal.is_student_only else limit
        return student_limit

    return limit_for


class BodyLimitMiddleware:
    """Refuse bodies over the request's limit: by Content-Length at once, and while a chunked body streams;
    and bodies whose last byte comes more than `timeout` seconds after the request's start (408).

    The limit is `limit`, or `limit_for(headers)` when given (limit_by_role: smaller for students)."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        limit_for: Callable[[Headers], int] | None = None,
        timeout: float | None = None,
    ) -> None:
        self.app = app
        self.limit = limit
        self.limit_for = limit_for
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", ())
        limit = self.limit if self.limit_for is None else self.limit_for(headers)
        for key, value in headers:
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_problem(send, 400, "invalid-json", "The Content-Length header is not a number.")
                    return
                if declared > limit:
                    await _send_problem(
                        send, 413, "body-too-large", f"The body is larger than the limit of {limit} bytes.", limit=limit
                    )
                    return
        received = 0
        complete = False
        timeout = self.timeout
        timer: asyncio.TimerHandle | None = None
        waiting: asyncio.Task[Any] | None = None  # the task inside receive() while the body is due
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            if waiting is not None:
                waiting.cancel()

        if timeout is not None:
            # One timer for the whole body, armed once per request: anyio.fail_after around each
            # receive() made a cancel scope per message, ~18 µs of a small request's ~470.
            timer = asyncio.get_running_loop().call_later(max(0.0, timeout), expire)

        async def limited() -> Message:
            nonlocal received, complete, waiting
            if complete or timer is None or timeout is None:
                message = await receive()  # after the body: a disconnect may come whenever it does
            else:
                if expired:
                    raise BodyTimeout(timeout)
                waiting = asyncio.current_task()
                try:
                    message = await receive()
                except asyncio.CancelledError:
                    if not expired or waiting is None:
                        raise
                    waiting.uncancel()  # this cancellation was the timer's, not the caller's
                    raise BodyTimeout(timeout) from None
                finally:
                    waiting = None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
                complete = not message.get("more_body", False)
                if complete and timer is not None:
                    timer.cancel()
            return message

        try:
            await self.app(scope, limited, send)
        finally:
            if timer is not None:
                timer.cancel()


async def _send_problem(send: Send, status: int, slug: str, detail: str, **extra: Any) -> None:
    body = orjson.dumps(problem_body(status, slug, detail, **extra))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})

"""RFC 9457 problem details: the one place where errors become HTTP responses.

Responses never carry a traceback and never echo the request's values: pydantic's `input` and
`ctx` are dropped, messages are pydantic's own or ours, and at most 20 errors are listed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from service.compute.errors import ComputeError, DomainError, NonFiniteResult, ShapeError

log = logging.getLogger("service.errors")

MAX_ERRORS = 20
MAX_MSG = 300
PROBLEM_JSON = "application/problem+json"

TITLES = {
    "invalid-json": "The body is not valid JSON",
    "invalid-multipart": "The multipart body cannot be read",
    "body-too-large": "The body is too large",
    "body-timeout": "The body came too slowly",
    "unsupported-media-type": "Unsupported media type",
    "validation-error": "The request does not match the schema",
    "domain-error": "A value is outside its domain",
    "incompatible-pairing": "The activation cannot feed this loss",
    "non-finite-result": "The result is not representable in float64",
    "explain-too-large": "The requested breakdown is too large",
    "formula-error": "The formula does not read",
    "formula-too-complex": "The formula is too complex",
    "formula-pool-busy": "The formula workers are busy",
    "not-found": "No such resource",
    "method-not-allowed": "Method not allowed",
    "unauthorized": "Authentication required",
    "forbidden": "Not allowed",
    "rate-limited": "Too many requests",
    "cors-refused": "CORS preflight refused",
    "headers-too-large": "The request headers are too large",
    "invalid-request": "The HTTP request cannot be parsed",
    "unavailable": "Temporarily unavailable",
    "internal-error": "Internal error",
}


class ProblemError(Exception):
    """An error answered as problem+json."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        errors: Sequence[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.errors = list(errors) if errors is not None else None
        self.headers = headers
        self.extra = extra


def problem_body(
    status: int, slug: str, detail: str, errors: Sequence[dict[str, Any]] | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"urn:gradient-service:problem:{slug}",
        "title": TITLES.get(slug, slug),
        "status": status,
        "detail": detail[:1000],
    }
    if errors is not None:
        body["errors"] = [{"loc": list(e["loc"]), "msg": str(e["msg"])[:MAX_MSG]} for e in errors[:MAX_ERRORS]]
        if len(errors) > MAX_ERRORS:
            body["errors_omitted"] = len(errors) - MAX_ERRORS
    body.update(extra)
    return body


def problem_response(
    status: int,
    slug: str,
    detail: str,
    errors: Sequence[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    return Response(
        orjson.dumps(problem_body(status, slug, detail, errors, **extra)),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


MAX_KEY = 64


def _clean_loc(
    loc: Sequence[Any], tags: frozenset[str], keys: frozenset[str] | None = None, unknown_last: bool = False
) -> list[str | int]:
    """The JSON path of an error: indices and the body's own keys, without pydantic's branch labels.

    `keys` are the field names the schema knows; any other string is a union branch's tag or type
    label (e.g. 'bool', "literal['factors','full']", 'numbers'), except the last part of an
    unknown-field error, which is the client's key (cut to 64 characters: never echoed at length).
    """
    out: list[str | int] = []
    last = len(loc) - 1
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out.append(part)
            continue
        s = str(part)
        if i == 0 and s in tags:  # the discriminator's branch name
            continue
        if unknown_last and i == last:
            out.append(s if len(s) <= MAX_KEY else s[:MAX_KEY] + "…")
        elif keys is None or s in keys:
            out.append(s)
    return out


_OWN_MESSAGES = {
    "enum": "unknown name: expected one of {expected}",
}
# Fields typed as a union of a boolean and names, where pydantic reports one error per branch.
_LOC_MESSAGES: dict[tuple[str | int, ...], str] = {("explain",): 'explain must be false, true, "factors" or "full"'}


def validation_errors(
    exc: ValidationError, tags: frozenset[str] = frozenset(), keys: frozenset[str] | None = None
) -> list[dict[str, Any]]:
    """pydantic errors as [{loc, msg}], without the input values; the messages of one location
    (the branches of a union such as explain's bool | "factors" | "full") are joined."""
    by_loc: dict[tuple[Any, ...], list[str]] = {}
    for err in exc.errors(include_input=False, include_url=False):
        loc = _clean_loc(err["loc"], tags, keys, unknown_last=err["type"] == "extra_forbidden")
        template = _OWN_MESSAGES.get(err["type"])
        ctx = err.get("ctx") or {}
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            field = str(ctx.get("discriminator", "")).strip("'") or "model"
            loc = [*loc, field]
            expected = ctx.get("expected_tags") or ", ".join(f"'{t}'" for t in sorted(tags))
            what = "unknown value" if err["type"] == "union_tag_invalid" else "a required field is missing"
            msg = f"{what}: expected one of {expected}"
        elif template and "expected" in ctx:
            msg = template.format(expected=ctx["expected"])
        else:
            msg = err["msg"]
        msg = _LOC_MESSAGES.get(tuple(loc), msg)
        msgs = by_loc.setdefault(tuple(loc), [])
        if msg not in msgs:
            msgs.append(msg)
    return [{"loc": list(loc), "msg": "; or ".join(msgs)} for loc, msgs in by_loc.items()]


def compute_error_problem(exc: ComputeError) -> ProblemError:
    if isinstance(exc, NonFiniteResult):
        return ProblemError(
            422, exc.slug, exc.detail, quantity=exc.quantity, examples=exc.examples[:50], reason=exc.reason
        )
    if isinstance(exc, ShapeError | DomainError):
        return ProblemError(422, exc.slug, exc.detail, errors=[{"loc": list(exc.loc), "msg": exc.detail}])
    return ProblemError(422, exc.slug, exc.detail)


def problem_error_response(exc: ProblemError) -> Response:
    return problem_response(exc.status, exc.slug, exc.detail, exc.errors, exc.headers, **exc.extra)


def compute_error_response(exc: ComputeError) -> Response:
    p = compute_error_problem(exc)
    return problem_response(p.status, p.slug, p.detail, p.errors, **p.extra)


# nginx's status for a request its client closed: it is never sent (no one is there to read it),
# but the access log and the metrics count the request under it, not as a server error.
CLIENT_CLOSED = 499


def client_gone(method: str, path: str) -> Response:
    """The answer to a request whose client left before its body was read: logged, not a traceback."""
    log.info("client disconnected before its body was read: %s %s", method, path)
    return Response(status_code=CLIENT_CLOSED)


def install(app: FastAPI) -> None:
    """Register the handlers: problems, compute errors, HTTP errors and a last resort."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> Response:
        return problem_error_response(exc)

    @app.exception_handler(ComputeError)
    async def _compute(request: Request, exc: ComputeError) -> Response:
        return compute_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": _clean_loc(e.get("loc", ()), frozenset()), "msg": e.get("msg", "")} for e in exc.errors()]
        return problem_response(422, "validation-error", "The request does not match the schema.", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(slug, "HTTP error")
        return problem_response(exc.status_code, slug, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, exc: ClientDisconnect) -> Response:
        return client_gone(request.method, request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(500, "internal-error", "An unexpected error occurred; it has been logged.")

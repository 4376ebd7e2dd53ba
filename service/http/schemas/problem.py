"""Problem details (RFC 9457): their model and the error answers the OpenAPI document lists per route."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from service.http.errors import PROBLEM_JSON


class ErrorItem(BaseModel):
    loc: list[str | int] = Field(description='A JSON path, e.g. ["data", "X", 3, 1].')
    msg: str


class ProblemDetails(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(description="urn:gradient-service:problem:<slug>")
    title: str
    status: int
    detail: str
    errors: list[ErrorItem] | None = Field(None, description="For validation errors: at most 20.")


def problem(description: str) -> dict[str, Any]:
    return {"model": ProblemDetails, "description": description, "content": {PROBLEM_JSON: {}}}


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: problem("The body is not valid JSON (invalid-json), or a multipart body cannot be read (invalid-multipart)."),
    401: problem("Keys are configured and the request has no valid one (unauthorized)."),
    403: problem("The key's role may not do this, or a problem token is altered or expired (forbidden)."),
    429: problem("The key's rate limit is reached; see Retry-After (rate-limited)."),
    503: problem("The shared rate limiter cannot be reached (unavailable)."),
    413: problem("The body is over the size limit (body-too-large)."),
    415: problem("The body is not JSON, nor multipart where the operation takes it (unsupported-media-type)."),
    422: problem(
        "Schema, shape, domain, incompatible pairing, non-finite result or too large a breakdown "
        "(validation-error, domain-error, incompatible-pairing, non-finite-result, explain-too-large)."
    ),
}

# what any route behind an API key may also answer
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {code: PROBLEM_RESPONSES[code] for code in (401, 403, 429, 503)}

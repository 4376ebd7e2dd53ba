"""CORS: Starlette's middleware, its refused preflights answered as problem+json (400 cors-refused)."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from service.http.errors import problem_response

_PREFIX = "Disallowed CORS "


class ProblemCORSMiddleware(CORSMiddleware):
    """A preflight Starlette refuses (origin, method, headers or private network not allowed) is a 400
    problem naming what was refused, never the request's values; its CORS headers are kept."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        text = bytes(response.body).decode("utf-8", "replace")
        refused = text.removeprefix(_PREFIX) if text.startswith(_PREFIX) else "request"
        headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-type", "content-length")}
        parts = [part.strip() for part in refused.split(",")]
        return problem_response(
            response.status_code,
            "cors-refused",
            f"The CORS preflight is refused, not allowed: its {', '.join(parts)} (methods allowed: "
            f"{', '.join(self.allow_methods)}; headers allowed: {', '.join(self.allow_headers)}).",
            headers=headers,
            refused=parts,
        )

"""POST /gradient: a body parsed (JSON, the array path or multipart), the problem prepared, its answer
built; both the route and the fast path (service/http/middleware/fastpath.py) call `handle`."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from starlette.requests import Request

from service.http.handlers.custom_formulas import names_a_formula
from service.http.handlers.objectives import Prepared, prepare, within_limits
from service.http.handlers.responses import gradient_response
from service.http.schemas.gradient import GRADIENT_REQUEST
from service.http.security.access import access
from service.http.wire.arrays import parse_with_matrix
from service.http.wire.binary import RawBody, parse_multipart, read_body
from service.http.wire.encoding import JSONBytes, dumps
from service.http.wire.json import parse
from service.observability import PROBLEM_SIZE
from service.settings import Settings

_SIZE = PROBLEM_SIZE.labels("/gradient")


def _compute(prepared: Prepared) -> bytes:
    _SIZE.observe(prepared.model.X.size)
    return dumps(gradient_response(prepared))


def parse_request(raw: RawBody, settings: Settings) -> Any:
    """A /gradient body validated: multipart with X as .npy (service/http/wire/binary.py), or JSON with X
    straight into an array (service/http/wire/arrays.py), else the whole JSON body validated."""
    if raw.multipart:
        return parse_multipart(GRADIENT_REQUEST, raw, ("data",))
    req = parse_with_matrix(GRADIENT_REQUEST, raw.data, lambda m, n, _: within_limits(m, n, settings))
    return req if req is not None else parse(GRADIENT_REQUEST, raw.data)


def _parse_and_compute(raw: RawBody, settings: Settings) -> bytes:
    return _compute(prepare(parse_request(raw, settings), settings))


def _prepare_and_compute(req: Any, settings: Settings) -> bytes:
    return _compute(prepare(req, settings))


_ACCESS = access("grader")


async def handle(request: Request) -> JSONBytes:
    """POST /gradient: the route and the fast path (service/http/middleware/fastpath.py) both call this."""
    await _ACCESS(request)
    settings: Settings = request.app.state.settings
    raw = await read_body(request)
    # A thread hop costs a large share of a small request's whole work inline (docs/performance.md,
    # "Measured choices in the code"): small requests stay on the event loop; big ones, multipart
    # bodies (made for big X) and verify must not stall it, nor a formula: reading one waits for the
    # formula workers (deriving it and proving its cancellation, up to their time limit).
    if len(raw) > settings.inline_body_bytes or raw.multipart:
        return JSONBytes(await anyio.to_thread.run_sync(_parse_and_compute, raw, settings))
    req = parse(GRADIENT_REQUEST, raw.data, quick=True)
    if names_a_formula(req):
        return JSONBytes(await anyio.to_thread.run_sync(_prepare_and_compute, req, settings))
    prepared = prepare(req, settings)
    if prepared.verify:
        return JSONBytes(await anyio.to_thread.run_sync(_compute, prepared))
    return JSONBytes(_compute(prepared))

"""POST /derive."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.http.deps import StudentOrGrader
from service.http.handlers.derive import derive
from service.http.schemas.derive import DERIVE_BODY, DERIVE_REQUEST, DeriveResponse
from service.http.schemas.problem import PROBLEM_RESPONSES, problem
from service.http.security.access import caller_key
from service.http.wire.encoding import JSONBytes, dumps
from service.http.wire.json import parse, read_json

router = APIRouter(tags=["formulas"])

_RESPONSES = {
    200: {"model": DeriveResponse, "description": "The derivative and every rule applied, in LaTeX and plain text."},
    **PROBLEM_RESPONSES,
    422: problem(
        "The body does not match the schema (validation-error), the expression or variable does not read "
        "(formula-error: where, expected, allowed_names) or passes a limit (formula-too-complex: limit)."
    ),
    503: problem(
        "The formula workers are busy (formula-pool-busy), or the shared rate limiter cannot be reached "
        "(unavailable); see Retry-After."
    ),
}


@router.post(
    "/derive",
    summary="Differentiate a formula, rule by rule",
    response_class=JSONBytes,
    responses=_RESPONSES,
    openapi_extra=DERIVE_BODY,
)
async def derive_route(request: Request, principal: StudentOrGrader) -> JSONBytes:
    """The derivative of a formula (plain text or LaTeX) and each rule applied: constant, identity, sum,
    constant_multiple, product, quotient, power, exp, log, chain, function, simplify."""
    req = parse(DERIVE_REQUEST, await read_json(request), frozenset())
    pool = request.app.state.formula_pool
    return JSONBytes(dumps(await derive(req, pool, caller_key(request, principal))))

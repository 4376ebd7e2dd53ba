"""POST /graph and POST /descent/plot: the service's drawings, as SVG."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from service.http.deps import GRADER, SettingsDep
from service.http.handlers.descent import parse_descent, run_descent
from service.http.handlers.gradient import parse_request
from service.http.handlers.learner import as_json, evaluate_json
from service.http.schemas.descent import DESCENT_BODY
from service.http.schemas.gradient import GRADIENT_BODY
from service.http.schemas.problem import PROBLEM_RESPONSES
from service.http.wire.binary import RawBody, read_body
from service.render.curve import cost_curves
from service.render.graph import MAX_EXAMPLES_DRAWN, gradient_graph
from service.settings import Settings

router = APIRouter(dependencies=[GRADER], tags=["drawings"])
SVG = "image/svg+xml"
# A drawing is a document of its own: nothing in it may run or load anything.
SVG_HEADERS = {"Content-Security-Policy": "default-src 'none'", "X-Content-Type-Options": "nosniff"}
MAX_EXAMPLES_LIMIT = 20


def _svg_response(description: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"description": description, "content": {SVG: {"schema": {"type": "string"}}}},
        **PROBLEM_RESPONSES,
    }


def _graph(raw: RawBody, settings: Settings, examples: int) -> str:
    problem, result = evaluate_json(parse_request(raw, settings), settings)
    return gradient_graph(problem, result, max_examples=examples)


def _plot(raw: RawBody, settings: Settings) -> str:
    return cost_curves(as_json(run_descent(parse_descent(raw, settings), settings)))


@router.post(
    "/graph",
    summary="The computational graph, as SVG",
    response_class=Response,
    responses=_svg_response(
        "x, w, b, z, f, L, J (per layer for a neural_network) with forward values and gradients, and the local "
        "derivative on every edge; every number is also in a data-* attribute as JSON."
    ),
    openapi_extra=GRADIENT_BODY,
)
async def graph(
    request: Request,
    settings: SettingsDep,
    examples: Annotated[
        int, Query(ge=1, le=MAX_EXAMPLES_LIMIT, description="How many examples to draw (the rest are summarised).")
    ] = MAX_EXAMPLES_DRAWN,
) -> Response:
    """The body of POST /gradient, drawn: every check and limit of /gradient applies (explain's size limit too)."""
    raw = await read_body(request)
    svg = await anyio.to_thread.run_sync(_graph, raw, settings, examples)
    return Response(svg, media_type=SVG, headers=SVG_HEADERS)


@router.post(
    "/descent/plot",
    summary="The cost curve of a descent, as SVG",
    response_class=Response,
    responses=_svg_response("J per step, one panel per run (two side by side with compare_with)."),
    openapi_extra=DESCENT_BODY,
)
async def descent_plot(request: Request, settings: SettingsDep) -> Response:
    """The body of POST /descent, run and drawn: the cost J at every step of each run."""
    raw = await read_body(request)
    svg = await anyio.to_thread.run_sync(_plot, raw, settings)
    return Response(svg, media_type=SVG, headers=SVG_HEADERS)

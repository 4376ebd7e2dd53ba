"""AsyncGradientClient sends, for every method, the very request GradientClient sends, and reads the
answers the same way (results, SVG text, ServiceError with the problem details, ready() on a 503)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gradient_service_client import AsyncGradientClient, GradientClient, ServiceError, build_problem

X = [[0.5, 1.5], [1, 1], [1.5, 0.5], [3, 0.5], [2, 2], [1, 2.5]]
PROBLEM = build_problem("logistic_regression", {"w": [2, 3], "b": 1}, {"X": X, "y": [0, 0, 0, 1, 1, 1]})
CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("gradient", ("logistic_regression", PROBLEM["parameters"], PROBLEM["data"]), {"explain": "factors"}),
    ("gradient", ("logistic_regression", PROBLEM["parameters"], PROBLEM["data"]), {"binary": True}),
    ("graph", (PROBLEM,), {"examples": 2}),
    ("descent", (PROBLEM,), {"learning_rate": 0.1, "steps": 5, "compare_with": {"activation": "identity"}}),
    ("descent_plot", (PROBLEM,), {"learning_rate": 0.1, "steps": 5, "binary": True}),
    ("grade", (PROBLEM, {"loss": 3.0}), {"tolerance": {"sig_figs": 2}, "format": "gradescope"}),
    ("grade", ("a.token", {"loss": 3.0}), {}),
    ("grade_batch", ("a.token", [{"loss": 3.0}, {"loss": 1.0}]), {"reveal": True}),
    ("grade_batch", (), {"items": [{"problem": PROBLEM, "answer": {"loss": 3.0}}]}),
    ("sign", (PROBLEM,), {"expires_in": 60, "points": {"loss": 2}, "carry_forward_credit": 0.25}),
    ("mistakes", (), {}),
    ("version", (), {}),
    ("health", (), {}),
    ("ready", (), {}),
]


def _answer(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith(("/graph", "/plot")):
        return httpx.Response(200, text="<svg/>", headers={"content-type": "image/svg+xml"})
    return httpx.Response(
        200, json={"results": [{"ok": request.url.path}]} if "batch" in request.url.path else {"ok": 1}
    )


def _recorder(seen: list[httpx.Request], answer: Callable[[httpx.Request], httpx.Response]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return answer(request)

    return httpx.MockTransport(handler)


def _comparable(request: httpx.Request) -> tuple[Any, ...]:
    content_type = request.headers.get("content-type", "")
    body: Any = request.content
    if content_type == "application/json":
        body = json.loads(body)
    elif content_type.startswith("multipart/form-data"):  # the boundary differs from one request to the next
        boundary = content_type.split("boundary=")[1].encode()
        body, content_type = body.replace(boundary, b"B"), "multipart/form-data"
    headers = {k: v for k, v in request.headers.items() if k in ("authorization", "accept", "user-agent")}
    return request.method, str(request.url), content_type, headers, body


@pytest.mark.parametrize(("method", "args", "kwargs"), CALLS, ids=[f"{c[0]}-{i}" for i, c in enumerate(CALLS)])
def test_the_same_request_and_result(method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    sync_seen: list[httpx.Request] = []
    async_seen: list[httpx.Request] = []
    base = "https://example.edu/prefix/"
    with httpx.Client(transport=_recorder(sync_seen, _answer)) as transport:
        sync_result = getattr(GradientClient(base, api_key="k", client=transport), method)(*args, **kwargs)

    async def run() -> Any:
        transport = httpx.AsyncClient(transport=_recorder(async_seen, _answer))
        async with transport, AsyncGradientClient(base, api_key="k", client=transport) as client:
            return await getattr(client, method)(*args, **kwargs)

    async_result = asyncio.run(run())
    assert async_result == sync_result
    assert [_comparable(r) for r in async_seen] == [_comparable(r) for r in sync_seen]
    assert len(sync_seen) == 1 and str(sync_seen[0].url).startswith("https://example.edu/prefix/")


def test_errors_and_readiness() -> None:
    problem = {"type": "urn:gradient-service:problem:validation-error", "title": "Invalid", "status": 422,
               "detail": "1 error", "errors": [{"loc": ["data", "y", 1], "msg": "bad"}]}  # fmt: skip

    def refuse(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/readyz":
            return httpx.Response(503, json={**problem, "status": 503, "type": "about:blank"})
        return httpx.Response(422, json=problem, headers={"content-type": "application/problem+json"})

    async def run() -> tuple[ServiceError, bool]:
        transport = httpx.AsyncClient(transport=_recorder([], refuse))
        async with transport, AsyncGradientClient(client=transport) as client:
            with pytest.raises(ServiceError) as refused:
                await client.gradient("logistic_regression", PROBLEM["parameters"], PROBLEM["data"])
            return refused.value, await client.ready()

    error, ready = asyncio.run(run())
    assert (error.status, error.slug, error.title, error.detail) == (422, "validation-error", "Invalid", "1 error")
    assert error.errors == [{"loc": ["data", "y", 1], "msg": "bad"}]
    assert ready is False
    with pytest.raises(ValueError, match="api_key is empty"):
        AsyncGradientClient(api_key="")

"""AsyncGradientClient: GradientClient's twin for asyncio code (``await client.gradient(...)``).

Every method takes the same arguments and returns the same typed results as GradientClient's (the
two build their requests with the same functions); see GradientClient for what each one does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Self, overload

import httpx

from gradient_service_client._client import (
    DEFAULT_BASE_URL,
    DescentResult,
    Explain,
    GradeFormat,
    GradeResult,
    GradescopeResult,
    GradientResult,
    Health,
    MistakeInfo,
    PrairieLearnResult,
    ServiceError,
    SignedProblem,
    VersionInfo,
    _answer,
    _default_headers,
    _descent_request,
    _grade_batch_request,
    _grade_request,
    _gradient_request,
    _graph_request,
    _http_arguments,
    _normalize_base_url,
    _Request,
    _sign_request,
)

__all__ = ["AsyncGradientClient"]


class AsyncGradientClient:
    """An asyncio client of one gradient-service instance (``httpx.AsyncClient`` underneath).

    Arguments as GradientClient's; `client` is an ``httpx.AsyncClient`` to use as the transport (kept
    open by `aclose()`). Use it as ``async with AsyncGradientClient(...) as client:``, or call
    ``await client.aclose()``.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = _normalize_base_url(base_url)
        self._headers = _default_headers(api_key)
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(timeout=timeout)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it (a client passed in is left open)."""
        if self._owns_client:
            await self._client.aclose()

    def __repr__(self) -> str:
        return f"AsyncGradientClient({self.base_url!r})"

    async def _run(self, request: _Request) -> Any:
        response = await self._client.request(
            request.method, self.base_url + request.path, **_http_arguments(self._headers, request)
        )
        return _answer(response, request.svg)

    async def gradient(
        self,
        model: str,
        parameters: Mapping[str, Any],
        data: Mapping[str, Any],
        *,
        activation: str | None = None,
        loss: str | None = None,
        loss_params: Mapping[str, float] | None = None,
        regularization: Mapping[str, Any] | None = None,
        explain: Explain = False,
        verify: bool = False,
        binary: bool | None = None,
    ) -> GradientResult:
        """The cost J and its gradients (POST /gradient); see GradientClient.gradient."""
        request = _gradient_request(
            model, parameters, data, activation, loss, loss_params, regularization, explain, verify, binary
        )
        result: GradientResult = await self._run(request)
        return result

    async def graph(
        self, problem: Mapping[str, Any], *, examples: int | None = None, binary: bool | None = None
    ) -> str:
        """The computational graph as an SVG document (POST /graph); see GradientClient.graph."""
        svg: str = await self._run(_graph_request(problem, examples, binary))
        return svg

    async def descent(
        self,
        problem: Mapping[str, Any],
        *,
        learning_rate: float,
        steps: int,
        record_every: int | None = None,
        patience: int | None = None,
        gradient_tolerance: float | None = None,
        compare_with: Mapping[str, Any] | None = None,
        binary: bool | None = None,
    ) -> DescentResult:
        """Batch gradient descent (POST /descent); see GradientClient.descent."""
        request = _descent_request(
            "/descent", problem, learning_rate, steps, record_every, patience, gradient_tolerance, compare_with, binary
        )
        result: DescentResult = await self._run(request)
        return result

    async def descent_plot(
        self,
        problem: Mapping[str, Any],
        *,
        learning_rate: float,
        steps: int,
        record_every: int | None = None,
        patience: int | None = None,
        gradient_tolerance: float | None = None,
        compare_with: Mapping[str, Any] | None = None,
        binary: bool | None = None,
    ) -> str:
        """The descent's cost curves as an SVG document (POST /descent/plot)."""
        request = _descent_request(
            "/descent/plot",
            problem,
            learning_rate,
            steps,
            record_every,
            patience,
            gradient_tolerance,
            compare_with,
            binary,
        )
        svg: str = await self._run(request)
        return svg

    @overload
    async def grade(
        self,
        problem: Mapping[str, Any] | str,
        answer: Mapping[str, Any],
        *,
        tolerance: Mapping[str, Any] | None = ...,
        points: Mapping[str, float] | None = ...,
        reveal: bool = ...,
        format: Literal["native"] = ...,
    ) -> GradeResult: ...

    @overload
    async def grade(
        self,
        problem: Mapping[str, Any] | str,
        answer: Mapping[str, Any],
        *,
        tolerance: Mapping[str, Any] | None = ...,
        points: Mapping[str, float] | None = ...,
        reveal: bool = ...,
        format: Literal["gradescope"],
    ) -> GradescopeResult: ...

    @overload
    async def grade(
        self,
        problem: Mapping[str, Any] | str,
        answer: Mapping[str, Any],
        *,
        tolerance: Mapping[str, Any] | None = ...,
        points: Mapping[str, float] | None = ...,
        reveal: bool = ...,
        format: Literal["prairielearn"],
    ) -> PrairieLearnResult: ...

    async def grade(
        self,
        problem: Mapping[str, Any] | str,
        answer: Mapping[str, Any],
        *,
        tolerance: Mapping[str, Any] | None = None,
        points: Mapping[str, float] | None = None,
        reveal: bool = False,
        format: GradeFormat = "native",
    ) -> GradeResult | GradescopeResult | PrairieLearnResult:
        """Grade a learner's answer (POST /grade); see GradientClient.grade."""
        request = _grade_request(problem, answer, tolerance, points, reveal, format)
        result: GradeResult | GradescopeResult | PrairieLearnResult = await self._run(request)
        return result

    async def grade_batch(
        self,
        problem: Mapping[str, Any] | str | None = None,
        answers: Sequence[Mapping[str, Any]] | None = None,
        *,
        items: Sequence[Mapping[str, Any]] | None = None,
        tolerance: Mapping[str, Any] | None = None,
        points: Mapping[str, float] | None = None,
        reveal: bool = False,
        format: GradeFormat = "native",
    ) -> list[dict[str, Any]]:
        """Grade many answers at once (POST /grade/batch); see GradientClient.grade_batch."""
        response = await self._run(_grade_batch_request(problem, answers, items, tolerance, points, reveal, format))
        results: list[dict[str, Any]] = response["results"]
        return results

    async def sign(
        self,
        problem: Mapping[str, Any],
        *,
        expires_in: int | None = None,
        tolerance: Mapping[str, Any] | None = None,
        points: Mapping[str, float] | None = None,
        reveal: bool = False,
        carry_forward: bool | None = None,
        carry_forward_credit: float | None = None,
    ) -> SignedProblem:
        """A problem token for students (POST /problems/sign, grader keys only); see GradientClient.sign."""
        request = _sign_request(problem, expires_in, tolerance, points, reveal, carry_forward, carry_forward_credit)
        result: SignedProblem = await self._run(request)
        return result

    async def mistakes(self) -> list[MistakeInfo]:
        """The catalogue of mistakes the grader names (GET /mistakes)."""
        result: list[MistakeInfo] = await self._run(_Request("GET", "/mistakes"))
        return result

    async def version(self) -> VersionInfo:
        """The service's and the grading rules' versions (GET /version)."""
        result: VersionInfo = await self._run(_Request("GET", "/version"))
        return result

    async def health(self) -> Health:
        """``{"status": "ok"}`` when the process is alive (GET /healthz)."""
        result: Health = await self._run(_Request("GET", "/healthz"))
        return result

    async def ready(self) -> bool:
        """Whether the service takes traffic (GET /readyz answers 200; 503 while starting or draining)."""
        try:
            await self._run(_Request("GET", "/readyz"))
        except ServiceError as exc:
            if exc.status == 503:
                return False
            raise
        return True

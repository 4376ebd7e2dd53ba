"""POST /derive: the contract's answer, its LaTeX parsed by KaTeX, learner forms, and every refusal a clean,
fast problem+json: syntax errors with where and the names allowed, the hostile list, the pool's limits and busy."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.formulas import parse
from service.formulas.derive import RULES
from service.formulas.numeric import evaluate
from service.formulas.pool import PoolBusy, WorkerPool
from service.http.errors import ProblemError
from service.http.handlers.derive import run_formula_job
from service.http.schemas.derive import EXAMPLES
from service.settings import Settings
from tests.latex import collect_latex, katex_errors

URN = "urn:gradient-service:problem:"


@pytest.fixture(scope="module")
def default_client() -> Iterator[TestClient]:
    """The app as it runs by default (its time limit included), for what the time limit bounds."""
    with TestClient(create_app(Settings(formula_start_workers=True))) as c:
        yield c


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    """The app with its formula workers started by the lifespan, as the service runs."""
    # a generous time limit: these tests check answers, not the clock (a loaded 2-core CI machine); SymPy's
    # search for a form in f has half of it (its budget has its own test)
    with TestClient(create_app(Settings(formula_start_workers=True, formula_time_limit_seconds=10.0))) as c:
        yield c


def post(client: TestClient, body: dict[str, Any]) -> Any:
    return client.post("/derive", json=body)


def problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == URN + slug
    assert "Traceback" not in response.text
    return body


def test_sigmoid_as_written(client: TestClient) -> None:
    r = post(client, {"expression": "1/(1+e^{-z})", "variable": "z"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"expression", "variable", "derivative", "steps", "in_terms_of"}
    assert body["variable"] == "z" and body["in_terms_of"] == "z"
    assert body["expression"]["text"] == "1/(1 + exp(-z))"
    rules = [s["rule"] for s in body["steps"]]
    assert {"quotient", "exp", "chain"} <= set(rules) <= set(RULES)
    assert all(set(s) == {"rule", "latex", "text", "why"} and s["why"] for s in body["steps"])
    # the derivative, read back with the service's own parser, is the sigmoid's slope
    z = np.linspace(-5, 5, 21)
    s = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(evaluate(parse(body["derivative"]["text"]), {"z": z}), s * (1 - s), rtol=1e-12)


@pytest.mark.parametrize(
    ("expression", "form"),
    [("sigma(z)", "f*(1 - f)"), ("1/(1+e^{-z})", "f*(1 - f)"), ("tanh(z)", "1 - f^2"), ("e^z", "f")],
)
def test_in_terms_of_f(client: TestClient, expression: str, form: str) -> None:
    body = post(client, {"expression": expression, "variable": "z", "in_terms_of": "f"}).json()
    assert body["in_terms_of"] == "f"
    assert body["derivative"]["text"] == form
    if expression != "e^z":  # e^z: the tracer's e^z is f itself, the last step says so
        assert body["steps"][-1]["rule"] == "simplify"


def test_in_terms_of_f_where_it_cannot_be_stays_in_the_variable(client: TestClient) -> None:
    body = post(client, {"expression": "z^2", "variable": "z", "in_terms_of": "f"}).json()
    assert body["in_terms_of"] == "z" and body["derivative"]["text"] == "2*z"


def test_latex_in_and_every_latex_out_parses_with_katex(client: TestClient) -> None:
    answers = [post(client, example["value"]).json() for example in EXAMPLES.values()]
    answers.append(post(client, {"expression": "\\frac{1}{m}\\sum_{i=1}^{m} x_j^{(i)} w_j", "variable": "w_j"}).json())
    answers.append(post(client, {"expression": "z^z + \\sqrt{1 + z^2} - \\log(\\cosh(z))", "variable": "z"}).json())
    latex = []
    for answer in answers:
        if "steps" in answer:
            latex += collect_latex(answer)
    assert len(latex) > 50
    assert katex_errors(latex) == []


def test_the_openapi_examples_are_answered(client: TestClient) -> None:
    for name, example in EXAMPLES.items():
        r = post(client, example["value"])
        assert r.status_code == 200, (name, r.text)


def test_variable_names_are_canonical(client: TestClient) -> None:
    body = post(client, {"expression": "(w_j x_j + b - y)^2", "variable": "w_{j}"}).json()
    assert body["variable"] == "w_j"
    np.testing.assert_allclose(
        evaluate(parse(body["derivative"]["text"]), {"w_j": 0.3, "x_j": 2.0, "b": 0.1, "y": 1.0}),
        2 * (0.3 * 2.0 + 0.1 - 1.0) * 2.0,
    )


def test_syntax_error_says_where_what_and_the_names(client: TestClient) -> None:
    body = problem(post(client, {"expression": "1/(1+e^{-z}", "variable": "z"}), 422, "formula-error")
    assert body["where"]["field"] == "expression" and body["where"]["column"] >= 1
    assert body["expected"] and "z" in body["allowed_names"]
    assert body["errors"][0]["loc"] == ["expression"]


def test_an_unknown_name_is_named(client: TestClient) -> None:
    body = problem(post(client, {"expression": "2*q + z", "variable": "z"}), 422, "formula-error")
    assert "q" in body["detail"] and body["where"]["column"] == 3


def test_a_bad_variable(client: TestClient) -> None:
    body = problem(post(client, {"expression": "z", "variable": "z+1"}), 422, "formula-error")
    assert body["where"] == {"field": "variable"}


def test_what_the_tracer_cannot_derive(client: TestClient) -> None:
    body = problem(post(client, {"expression": "max(0, z)", "variable": "z"}), 422, "formula-error")
    assert body["what"] == "max"


def test_schema_errors(client: TestClient) -> None:
    problem(post(client, {"expression": "z"}), 422, "validation-error")
    problem(post(client, {"expression": "z", "variable": "z", "in_terms_of": "g"}), 422, "validation-error")
    problem(post(client, {"expression": 3, "variable": "z"}), 422, "validation-error")
    problem(client.post("/derive", content=b"{", headers={"content-type": "application/json"}), 400, "invalid-json")


HOSTILE: dict[str, tuple[str, str, str | tuple[str, ...] | None]] = {
    "huge power": ("10^10^10", "formula-too-complex", "power"),
    "tower": ("2^2^2^2^2^2", "formula-too-complex", "power"),
    "nested powers": ("((9^9)^9999)^9999", "formula-too-complex", "power"),
    "deep nesting": ("1/(1+" * 100 + "z" + ")" * 100, "formula-too-complex", "depth"),
    "deep functions": ("tanh(" * 100 + "z" + ")" * 100, "formula-too-complex", "depth"),
    "dunder": ("__import__('os').system('true')", "formula-error", None),
    "dunder name": ("z.__class__", "formula-error", None),
    "latex input": ("\\input{/etc/passwd}", "formula-error", None),
    "latex write": ("\\immediate\\write18{ls}", "formula-error", None),
    "5000-term sum": ("+".join(["z"] * 5000), "formula-too-complex", "characters"),
    "1000-term sum": ("+".join(["z"] * 1000), "formula-too-complex", "nodes"),
    # about a second of tracing before its output limit: on a loaded machine the time limit may come first
    "product blow-up": ("*".join(["(z+1)"] * 300), "formula-too-complex", ("derivative", "time")),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_inputs_are_refused_fast_and_clean(default_client: TestClient, name: str) -> None:
    expression, slug, limit = HOSTILE[name]
    start = time.perf_counter()
    body = problem(post(default_client, {"expression": expression, "variable": "z"}), 422, slug)
    elapsed = time.perf_counter() - start
    limit_s = Settings().formula_time_limit_seconds
    assert elapsed < limit_s + 2.0, elapsed  # the worker's time limit bounds what is not refused before
    assert name == "product blow-up" or elapsed < 2.0, elapsed  # the rest are refused before any worker
    if limit is not None:
        assert body["limit"] in (limit if isinstance(limit, tuple) else (limit,))


def test_redundant_parentheses_are_not_nesting(client: TestClient) -> None:
    assert post(client, {"expression": "(" * 500 + "z" + ")" * 500, "variable": "z"}).status_code == 200


def test_a_job_past_the_time_limit_is_killed_and_answered_422() -> None:
    settings = Settings(formula_start_workers=True, formula_time_limit_seconds=0.05, formula_workers=1)
    with TestClient(create_app(settings)) as c:
        pool: WorkerPool = c.app.state.formula_pool  # type: ignore[attr-defined]
        body = problem(post(c, {"expression": "*".join(["(z+1)"] * 300), "variable": "z"}), 422, "formula-too-complex")
        assert body["limit"] == "time" and body["maximum"] == 0.05
        assert pool.counters.too_long == 1
        # and the replaced worker answers the next one (given time)
        c.app.state.formula_pool.time_limit = 5.0  # type: ignore[attr-defined]
        assert post(c, {"expression": "z^2", "variable": "z"}).status_code == 200


def test_a_busy_pool_is_503_with_retry_after() -> None:
    class Busy(WorkerPool):
        async def run(self, *args: Any, **kwargs: Any) -> Any:
            raise PoolBusy(8)

    with pytest.raises(ProblemError) as raised:
        asyncio.run(run_formula_job(Busy(size=1, time_limit=2.0), "key", "math:factorial", 3))
    assert raised.value.status == 503 and raised.value.slug == "formula-pool-busy"
    assert raised.value.headers == {"Retry-After": "2"}


def test_the_pool_is_closed_on_shutdown() -> None:
    with TestClient(create_app(Settings(formula_start_workers=True))) as c:
        pool: WorkerPool = c.app.state.formula_pool  # type: ignore[attr-defined]
        assert len(pool.pids()) == pool.size
    assert pool.closed and pool.pids() == []


def test_an_app_started_again_gets_a_new_pool() -> None:
    app = create_app(Settings(formula_start_workers=False))
    for _ in range(2):
        with TestClient(app) as c:
            assert post(c, {"expression": "z^2", "variable": "z"}).status_code == 200


def test_the_service_process_does_not_load_sympy() -> None:
    """SymPy loads in the formula workers (and their fork server) only, never in the process that serves HTTP."""
    code = "import sys, service.app; print('sympy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"

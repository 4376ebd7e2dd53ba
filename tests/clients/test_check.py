"""check(): the learner's function run here on the token's problem, only its outputs graded, against the
application with a student key (which may not send scoring options), and what the notebook shows."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from gradient_service_client import GradientClient, ServiceError, check, read_token
from gradient_service_client.check import answer_from_output
from service.app import create_app
from service.settings import Settings

X = [[0.5, 1.5], [1, 1], [1.5, 0.5], [3, 0.5], [2, 2], [1, 2.5]]
Y = [0, 0, 0, 1, 1, 1]
WORKED = {"model": "logistic_regression", "parameters": {"w": [2, 3], "b": 1}, "data": {"X": X, "y": Y}}


def sigmoid(z: Any) -> Any:
    return 1 / (1 + np.exp(-z))


def gradient_without_mean(X: Any, y: Any, w: Any, b: Any) -> tuple[Any, float]:
    """The lab's loop with the 1/m forgotten."""
    err = sigmoid(X @ w + b) - y
    return X.T @ err, float(np.sum(err))


def compute_gradient_logistic(X: Any, y: Any, w: Any, b: Any) -> tuple[float, Any]:
    """The course's order in some labs: dj_db first."""
    m = X.shape[0]
    err = sigmoid(X @ w + b) - y
    dj_db = np.sum(err) / m
    dj_dw = X.T @ err / m
    return dj_db, dj_dw


def compute_cost_logistic(X: Any, y: Any, w: Any, b: Any) -> float:
    f = sigmoid(X @ w + b)
    return float(np.mean(-y * np.log(f) - (1 - y) * np.log(1 - f)))


@pytest.fixture(scope="module")
def keyed() -> Iterator[TestClient]:
    settings = Settings(api_keys={"g": ["grader"], "s": ["student"]}, signing_secret="k" * 32, rate_limit_per_minute=0)
    with TestClient(create_app(settings)) as c:
        yield c


def _token(keyed: TestClient, problem: dict[str, Any] = WORKED, **options: Any) -> str:
    return GradientClient(api_key="g", client=keyed).sign(problem, **options)["problem_token"]


def test_the_forgotten_mean_is_named(keyed: TestClient) -> None:
    result = check(gradient_without_mean, _token(keyed), api_key="s", client=keyed)
    assert not result.correct and result.score == 0.0
    assert [c["name"] for c in result.checks] == ["gradients.w", "gradients.b"]
    assert result.mistakes == ["missing_mean"]
    text = str(result)
    assert text.startswith("gradient_without_mean: not yet correct, 0 of 2 parts right")
    assert "✗ gradients.w: wrong (0/1). Summed instead of averaged (missing_mean): This is the sum" in text
    assert "Next: Look at gradients.w, gradients.b: summed instead of averaged (missing_mean)" in text
    page = result._repr_html_()
    assert "<code>missing_mean</code>" in page and "∂J/∂w" in page and "/explain" in page
    # the rule each wrong part follows, typeset by the notebook; in plain text too
    assert page.count("<div class='formula'>$$") == 2 and r"\frac{1}{m} \sum_{i=1}^{m}" in page
    assert "the rule: dJ/db = (1/m) sum_i dL/df * df/dz" in text
    assert "`gradients.w` follows $$" in result._repr_markdown_()
    assert "| `gradients.b` | ✗ wrong | 0/1 | Summed instead of averaged (missing_mean)" in result._repr_markdown_()


def test_either_order_and_the_cost(keyed: TestClient) -> None:
    token = _token(keyed)
    result = check(compute_gradient_logistic, token, api_key="s", client=keyed)  # dj_db, dj_dw
    assert result.correct and result.score == 1.0 and result.mistakes == []
    assert "Next: nothing to fix, every part is right." in str(result)

    def dw_first(X: Any, y: Any, w: Any, b: Any) -> tuple[Any, float]:
        dj_db, dj_dw = compute_gradient_logistic(X, y, w, b)
        return dj_dw, dj_db

    assert check(dw_first, token, api_key="s", client=keyed).correct
    cost = check(compute_cost_logistic, token, api_key="s", client=keyed)
    assert cost.correct and [c["name"] for c in cost.checks] == ["loss"]
    assert cost.answer == {"loss": pytest.approx(3.001384020645288)}


def test_per_example_intermediates_in_a_dict(keyed: TestClient) -> None:
    def with_factors(X: Any, y: Any, w: Any, b: Any) -> dict[str, Any]:
        z = X @ w + b
        f = sigmoid(z)
        dj_db, dj_dw = compute_gradient_logistic(X, y, w, b)
        return {"z": z, "f": f, "dL_dz": f + y, "dj_dw": dj_dw, "dj_db": dj_db}  # dL/dz wrong: f + y

    result = check(with_factors, _token(keyed), api_key="s", client=keyed)
    verdicts = {c["name"]: c["correct"] for c in result.checks}
    assert verdicts == {
        "gradients.w": True,
        "gradients.b": True,
        "per_sample.z": True,
        "per_sample.f": True,
        "per_sample.dL_dz": False,
    }


def test_numpy_arrays_or_lists(keyed: TestClient) -> None:
    seen: list[tuple[type, type, type]] = []

    def spy(X: Any, y: Any, w: Any, b: Any) -> float:
        seen.append((type(X), type(w), type(b)))
        return compute_cost_logistic(np.asarray(X), np.asarray(y), np.asarray(w), b)

    token = _token(keyed)
    check(spy, token, api_key="s", client=keyed)
    check(spy, token, api_key="s", client=keyed, use_numpy=False)
    assert seen == [(np.ndarray, np.ndarray, np.float64), (list, list, float)]


def test_shapes_that_cannot_tell_use_the_returned_names_or_order(keyed: TestClient) -> None:
    problem = {
        "model": "linear_regression",
        "parameters": {"w": [2.0], "b": 0.0},
        "data": {"X": [[1.0], [2.0]], "y": [1.0, 3.0]},
    }

    def scalars(X: Any, y: Any, w: Any, b: Any) -> tuple[float, float]:
        m = len(X)
        err = [w[0] * X[i][0] + b - y[i] for i in range(m)]
        dj_db = sum(err) / m
        dj_dw = sum(e * X[i][0] for i, e in enumerate(err)) / m
        return dj_db, dj_dw

    token = _token(keyed, problem)
    assert check(scalars, token, api_key="s", client=keyed, use_numpy=False).correct  # told by the names
    unnamed = lambda X, y, w, b: scalars(X, y, w, b)  # noqa: E731 (no return statement with names)
    with pytest.raises(ValueError, match="order="):
        check(unnamed, token, api_key="s", client=keyed, use_numpy=False)
    assert check(unnamed, token, api_key="s", client=keyed, use_numpy=False, order=("b", "w")).correct
    assert not check(unnamed, token, api_key="s", client=keyed, use_numpy=False, order="w,b").correct


def test_only_the_outputs_and_the_token_are_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    """No scoring option (a student key gets 403 for those) and no code; URL and key from the environment."""
    seen: list[httpx.Request] = []
    graded = {
        "score": 1.0, "points": 1.0, "max_points": 1.0, "correct": True, "feedback": "",
        "checks": [
            {"name": "loss", "correct": True, "points": 1.0, "max_points": 1.0, "message": "Correct.", "mistake": None}
        ],
        "version": {"service": "x", "grading_rules": "y"},
    }  # fmt: skip

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=graded)

    monkeypatch.setenv("GRADIENT_SERVICE_URL", "https://example.edu/gs/")
    monkeypatch.setenv("GRADIENT_SERVICE_API_KEY", "student-key")
    payload = json.dumps({"exp": 2**40, "problem": WORKED}).encode()
    token = base64.urlsafe_b64encode(payload).rstrip(b"=").decode() + ".c2ln"
    with httpx.Client(transport=httpx.MockTransport(handler)) as transport:
        result = check(compute_cost_logistic, token, client=transport)
    assert result.correct
    (request,) = seen
    assert str(request.url) == "https://example.edu/gs/grade"
    assert request.headers["Authorization"] == "Bearer student-key"
    body = json.loads(request.content)
    assert set(body) == {"problem_token", "answer"} and body["problem_token"] == token
    assert body["answer"] == {"loss": pytest.approx(3.001384020645288)}


def test_a_refusal_is_a_service_error(keyed: TestClient) -> None:
    token = _token(keyed)
    with pytest.raises(ServiceError) as refused:
        check(compute_cost_logistic, token, api_key="nobody", client=keyed)
    assert refused.value.status == 401
    altered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with pytest.raises(ServiceError) as bad:
        check(compute_cost_logistic, altered, api_key="s", client=keyed)
    assert 400 <= bad.value.status < 500


def test_tokens_and_outputs_check_cannot_read() -> None:
    for bad in ("", "abc", "a.b.c", "!!!.sig"):
        with pytest.raises(ValueError):
            read_token(bad)
    with pytest.raises(ValueError, match="does not know the key 'grad'"):
        answer_from_output({"grad": 1.0}, WORKED)
    with pytest.raises(ValueError, match="returned str"):
        answer_from_output("0.5", WORKED)


def test_every_part_formula_parses_with_katex() -> None:
    """The rules shown beside wrong parts are LaTeX that KaTeX (as Jupyter's MathJax) can typeset."""
    from gradient_service_client.check import _LAYER_FORMULAS, PART_FORMULAS, part_formula
    from tests.latex import katex_errors

    latex = [f[0] for f in (*PART_FORMULAS.values(), *_LAYER_FORMULAS.values())]
    assert katex_errors(latex) == []
    assert part_formula("gradients.layers.2.W") == _LAYER_FORMULAS["W"] and part_formula("nothing") is None

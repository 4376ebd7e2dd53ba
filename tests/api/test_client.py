"""gradient_service_client.GradientClient against the application (FastAPI's TestClient as its transport),
and against httpx.MockTransport for what the client itself sends (URLs, headers, bodies)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from gradient_service_client import (
    DEFAULT_BASE_URL,
    GradientClient,
    ServiceError,
    build_problem,
    is_problem,
    to_json_value,
)
from service.app import create_app
from tests.api.helpers import WORKED_X
from tests.system.server import ROOT

Y = [0, 0, 0, 1, 1, 1]
# docs/design/math.md, worked example (course 1): w = [2, 3], b = 1
WORKED_GRAD_W = [0.498333393278696, 0.49883942983996693]
WORKED_GRAD_B = 0.49861806546328574
WORKED = build_problem("logistic_regression", {"w": [2, 3], "b": 1}, {"X": WORKED_X, "y": Y})


@pytest.fixture
def service() -> Iterator[GradientClient]:
    with TestClient(create_app()) as tc, GradientClient(client=tc) as gc:
        yield gc


def _reference(service: GradientClient) -> dict[str, Any]:
    ref = service.gradient("logistic_regression", {"w": [2, 3], "b": 1}, {"X": WORKED_X, "y": Y})
    return {"loss": ref["loss"], "gradients": ref["gradients"]}


Handler = Callable[[httpx.Request], httpx.Response]


def _recording(seen: list[httpx.Request], response: Handler | None = None) -> httpx.Client:
    """An httpx.Client whose transport records each request and answers with `response` (default {})."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return response(request) if response else httpx.Response(200, json={"results": []})

    return httpx.Client(transport=httpx.MockTransport(handler))


# --- POST /gradient -------------------------------------------------------------------------------


def test_gradient_of_the_worked_example(service: GradientClient) -> None:
    result = service.gradient("logistic_regression", {"w": [2, 3], "b": 1}, {"X": WORKED_X, "y": Y})
    np.testing.assert_allclose(result["gradients"]["w"], WORKED_GRAD_W, rtol=1e-14, atol=0)
    np.testing.assert_allclose(result["gradients"]["b"], WORKED_GRAD_B, rtol=1e-14, atol=0)
    assert result["model"] == "logistic_regression"
    assert result["pairing"] == {"activation": "sigmoid", "loss": "binary_cross_entropy", "canonical": True}
    assert isinstance(result["loss"], float)
    assert "breakdown" not in result and "verification" not in result


def test_numpy_arrays_and_scalars_are_accepted(service: GradientClient) -> None:
    plain = service.gradient("logistic_regression", {"w": [2, 3], "b": 1}, {"X": WORKED_X, "y": Y})
    arrays = service.gradient(
        "logistic_regression",
        {"w": np.array([2.0, 3.0]), "b": np.float64(1.0)},
        {"X": np.array(WORKED_X), "y": np.array(Y, dtype=np.int64)},
        regularization={"kind": "l2", "lambda": np.float32(0.0)},
    )
    assert arrays["loss"] == plain["loss"]
    assert arrays["gradients"] == plain["gradients"]


def test_softmax_with_numpy_rows(service: GradientClient) -> None:
    w = np.array([[0.5, -0.2, 0.1], [-0.3, 0.4, 0.2]])
    result = service.gradient(
        "softmax_regression",
        {"w": w, "b": np.array([0.0, 0.1, -0.1])},
        {"X": np.array(WORKED_X), "y": np.array([0, 0, 1, 2, 2, 1])},
    )
    grad_w = np.asarray(result["gradients"]["w"])
    assert grad_w.shape == w.shape
    assert len(result["gradients"]["b"]) == 3  # type: ignore[arg-type]


def test_single_layer_options_explain_and_verify(service: GradientClient) -> None:
    result = service.gradient(
        "single_layer",
        {"w": [0.4, -0.3], "b": 0.2},
        {"X": WORKED_X, "y": [1.2, 0.8, 2.0, 3.1, 2.2, -0.4]},
        activation="tanh",
        loss="huber",
        loss_params={"delta": 0.5},
        regularization={"kind": "l1", "lambda": 0.1},
        explain="factors",
        verify=True,
    )
    assert result["pairing"]["activation"] == "tanh"
    assert result["pairing"]["canonical"] is False
    assert result["pairing"].get("loss_params") == {"delta": 0.5}
    breakdown = result["breakdown"]
    assert len(breakdown["per_sample"]["dL_dz"]) == len(WORKED_X)
    assert breakdown["steps"][-1]["factor"] == "dJ/db"
    assert breakdown["simplification"] is None
    assert result["verification"]["agrees"] is True


def test_build_problem_leaves_defaults_out() -> None:
    assert WORKED == {
        "model": "logistic_regression",
        "parameters": {"w": [2, 3], "b": 1},
        "data": {"X": WORKED_X, "y": Y},
    }
    full = build_problem("logistic_regression", {"w": [1], "b": 0}, {"X": [[1]], "y": [1]}, explain=True, verify=True)
    assert full["explain"] is True and full["verify"] is True


def test_to_json_value_converts_nested_tolist_objects() -> None:
    value = {"a": (np.int64(3), np.float32(0.5)), "b": [np.array([[1, 2]])], 4: "text"}
    converted = to_json_value(value)
    assert converted == {"a": [3, 0.5], "b": [[[1, 2]]], "4": "text"}
    assert type(converted["a"][0]) is int and type(converted["a"][1]) is float
    json.dumps(converted)


# --- POST /grade and /grade/batch -----------------------------------------------------------------


def test_grade_a_correct_answer(service: GradientClient) -> None:
    answer = _reference(service)
    result = service.grade(WORKED, answer)
    assert result["correct"] is True
    assert (result["score"], result["points"], result["max_points"]) == (1.0, 3.0, 3.0)
    assert [c["name"] for c in result["checks"]] == ["loss", "gradients.w", "gradients.b"]
    assert all(c["correct"] and c["mistake"] is None for c in result["checks"])
    assert set(result["version"]) == {"service", "grading_rules"}
    assert isinstance(result["feedback"], str)


def test_grade_names_the_mistake_with_numpy_answer(service: GradientClient) -> None:
    ref = _reference(service)
    m = len(WORKED_X)
    answer = {  # summed over the examples instead of averaged
        "loss": ref["loss"],
        "gradients": {"w": np.asarray(ref["gradients"]["w"]) * m, "b": np.float64(ref["gradients"]["b"] * m)},
    }
    result = service.grade(WORKED, answer, points={"gradients.w": 2}, reveal=True)
    checks = {c["name"]: c for c in result["checks"]}
    assert result["correct"] is False
    assert (result["points"], result["max_points"]) == (1.0, 4.0)
    mistake = checks["gradients.w"]["mistake"]
    assert mistake is not None and mistake["code"] == "missing_mean"
    assert checks["gradients.w"]["max_points"] == 2.0
    np.testing.assert_allclose(checks["gradients.w"]["expected"], WORKED_GRAD_W, rtol=1e-14)


def test_grade_tolerance_and_nan(service: GradientClient) -> None:
    ref = _reference(service)
    rounded = {"loss": round(ref["loss"], 3)}
    assert service.grade(WORKED, rounded)["correct"] is False
    assert service.grade(WORKED, rounded, tolerance={"sig_figs": 3})["correct"] is True
    nan = service.grade(WORKED, {"loss": float("nan")})  # a learner's NaN is graded, not refused
    assert nan["correct"] is False and "NaN" in nan["checks"][0]["message"]


def test_grade_in_gradescope_and_prairielearn_formats(service: GradientClient) -> None:
    ref = _reference(service)
    answer = {"loss": ref["loss"], "gradients": {"w": ref["gradients"]["w"], "b": 0.0}}
    gs = service.grade(WORKED, answer, format="gradescope")
    assert gs["score"] == 2.0
    assert [(t["name"], t["score"], t["max_score"]) for t in gs["tests"]] == [
        ("loss", 1.0, 1.0),
        ("gradients.w", 1.0, 1.0),
        ("gradients.b", 0.0, 1.0),
    ]
    pl = service.grade(WORKED, answer, format="prairielearn")
    assert pl["gradable"] is True
    assert pl["score"] == pytest.approx(2 / 3)


def test_grade_batch_one_problem_many_answers(service: GradientClient) -> None:
    ref = _reference(service)
    answers: list[dict[str, Any]] = [ref, {"loss": 0.0}, {"lost": 1.0}, {"gradients": {"b": ref["gradients"]["b"]}}]
    results = service.grade_batch(WORKED, answers)
    assert len(results) == 4
    assert results[0]["correct"] is True and results[0]["score"] == 1.0
    assert results[1]["correct"] is False
    assert is_problem(results[2]) and not is_problem(results[0])
    err = ServiceError.from_problem(results[2])
    assert (err.status, err.slug) == (422, "validation-error")
    assert err.errors is not None and err.errors[0]["loc"] == ["answers", 2, "lost"]
    assert results[3]["correct"] is True and [c["name"] for c in results[3]["checks"]] == ["gradients.b"]


def test_grade_batch_items_and_format(service: GradientClient) -> None:
    ref = _reference(service)
    other = build_problem("linear_regression", {"w": [1.0, -0.5], "b": 0.25}, {"X": WORKED_X, "y": Y})
    items = [{"problem": WORKED, "answer": {"loss": ref["loss"]}}, {"problem": other, "answer": {"loss": ref["loss"]}}]
    results = service.grade_batch(items=items, format="gradescope")
    assert [r["score"] for r in results] == [1.0, 0.0]
    assert all("tests" in r for r in results)


def test_grade_batch_needs_one_form_of_request(service: GradientClient) -> None:
    with pytest.raises(ValueError, match="problem and answers"):
        service.grade_batch(WORKED)
    with pytest.raises(ValueError, match="not both"):
        service.grade_batch(WORKED, [{"loss": 1.0}], items=[{"problem": WORKED, "answer": {"loss": 1.0}}])


def test_a_bad_shared_problem_fails_the_batch(service: GradientClient) -> None:
    bad = build_problem("logistic_regression", {"w": [1], "b": 0}, {"X": [[1], [2]], "y": [0, 7]})
    with pytest.raises(ServiceError) as info:
        service.grade_batch(bad, [{"loss": 1.0}])
    assert (info.value.status, info.value.slug) == (422, "validation-error")
    assert info.value.errors == [{"loc": ["problem", "data", "y", 1], "msg": "Input should be less than or equal to 1"}]


# --- errors ---------------------------------------------------------------------------------------


def test_service_error_on_a_422_carries_the_problem(service: GradientClient) -> None:
    with pytest.raises(ServiceError) as info:
        service.gradient("logistic_regression", {"w": [1], "b": 0}, {"X": [[1], [2]], "y": [0, 7]})
    err = info.value
    assert err.status == 422
    assert err.type == "urn:gradient-service:problem:validation-error"
    assert err.slug == "validation-error"
    assert err.title and err.detail
    assert err.errors == [{"loc": ["data", "y", 1], "msg": "Input should be less than or equal to 1"}]
    assert "422 validation-error" in str(err) and "['data', 'y', 1]" in str(err)


def test_service_error_keeps_the_extra_members(service: GradientClient) -> None:
    with pytest.raises(ServiceError) as info:
        service.gradient("single_layer", {"w": [1], "b": 0}, {"X": [[1]], "y": [1]}, activation="relu", loss="poisson")
    err = info.value
    assert (err.status, err.slug, err.errors) == (422, "incompatible-pairing", None)
    assert err.body["activation"] == "relu" and err.body["loss"] == "poisson"


def test_a_problem_with_nan_is_refused_with_its_location(service: GradientClient) -> None:
    with pytest.raises(ServiceError) as info:
        service.gradient("logistic_regression", {"w": [float("nan"), 3], "b": 1}, {"X": WORKED_X, "y": Y})
    assert info.value.errors is not None
    assert info.value.errors[0]["loc"] == ["parameters", "w", 0]


def test_a_misspelt_answer_part_is_a_422(service: GradientClient) -> None:
    with pytest.raises(ServiceError) as info:
        service.grade(WORKED, {"gradients": {"W": [0, 0]}})
    assert info.value.slug == "validation-error"


def test_non_problem_error_responses() -> None:
    seen: list[httpx.Request] = []
    html = _recording(seen, lambda r: httpx.Response(502, text="<html>Bad gateway</html>"))
    with GradientClient(client=html) as gc, pytest.raises(ServiceError) as info:
        gc.version()
    assert (info.value.status, info.value.type, info.value.slug) == (502, "about:blank", "about:blank")
    assert info.value.title == "Bad Gateway" and "Bad gateway" in info.value.detail

    problem = {"type": "urn:gradient-service:problem:unauthorized", "title": "Unauthorized", "status": 401}
    denied = _recording(seen, lambda r: httpx.Response(401, json=problem))
    with GradientClient(client=denied) as gc, pytest.raises(ServiceError) as info:
        gc.mistakes()
    assert (info.value.status, info.value.slug) == (401, "unauthorized")


# --- what the client sends -------------------------------------------------------------------------


def test_authorization_header_is_sent_when_api_key_is_set() -> None:
    seen: list[httpx.Request] = []
    with GradientClient(api_key="s3cret", client=_recording(seen)) as gc:
        gc.grade_batch(WORKED, [{"loss": 1.0}])
        gc.version()
    assert [r.headers["authorization"] for r in seen] == ["Bearer s3cret", "Bearer s3cret"]
    assert seen[0].headers["content-type"] == "application/json"
    assert json.loads(seen[0].content) == {"problem": WORKED, "answers": [{"loss": 1.0}]}


def test_no_authorization_header_without_api_key() -> None:
    seen: list[httpx.Request] = []
    with GradientClient(client=_recording(seen)) as gc:
        gc.grade_batch(WORKED, [{"loss": 1.0}])
    assert "authorization" not in seen[0].headers
    with pytest.raises(ValueError, match="api_key"):
        GradientClient(api_key="")


def test_the_api_key_reaches_the_application() -> None:
    seen: list[str | None] = []
    app = create_app()

    @app.middleware("http")
    async def record(request: Any, call_next: Any) -> Any:
        seen.append(request.headers.get("authorization"))
        return await call_next(request)

    with TestClient(app) as tc, GradientClient(api_key="k1", client=tc) as gc:
        assert gc.health() == {"status": "ok"}
    assert seen == ["Bearer k1"]


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        (DEFAULT_BASE_URL, "http://127.0.0.1:8000/grade/batch"),
        ("http://example.test:9000/", "http://example.test:9000/grade/batch"),
        ("https://example.edu/gradient-service", "https://example.edu/gradient-service/grade/batch"),
        ("https://example.edu/gradient-service/", "https://example.edu/gradient-service/grade/batch"),
    ],
)
def test_base_url_handling(base_url: str, expected: str) -> None:
    seen: list[httpx.Request] = []
    with GradientClient(base_url, client=_recording(seen)) as gc:
        gc.grade_batch(WORKED, [{"loss": 1.0}])
    assert str(seen[0].url) == expected
    assert seen[0].method == "POST"


def test_base_url_wins_over_the_given_clients_base_url() -> None:
    seen: list[httpx.Request] = []
    transport = _recording(seen)
    transport.base_url = "http://elsewhere.test"
    with GradientClient("http://svc.test:8000", client=transport) as gc:
        gc.grade_batch(WORKED, [{"loss": 1.0}])
    assert str(seen[0].url) == "http://svc.test:8000/grade/batch"


@pytest.mark.parametrize("bad", ["127.0.0.1:8000", "ftp://example.test", "http://", "http://h/?q=1"])
def test_bad_base_url_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        GradientClient(bad)


def test_context_manager_closes_only_its_own_client() -> None:
    with GradientClient() as own:
        pass
    assert own._client.is_closed
    given = httpx.Client()
    with GradientClient(client=given):
        pass
    assert not given.is_closed
    given.close()


def test_transport_errors_are_httpx_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    refusing = httpx.Client(transport=httpx.MockTransport(refuse))
    with GradientClient(client=refusing) as gc, pytest.raises(httpx.TransportError):
        gc.health()


# --- catalogue and operations -----------------------------------------------------------------------


def test_mistakes_version_health_ready(service: GradientClient) -> None:
    codes = [m["code"] for m in service.mistakes()]
    assert "missing_mean" in codes and len(codes) == len(set(codes))
    version = service.version()
    assert {"service", "grading_rules"} <= set(version)
    assert service.health() == {"status": "ok"}
    assert service.ready() is True


def test_ready_is_false_while_the_application_is_not_started() -> None:
    tc = TestClient(create_app())  # no `with`: the lifespan has not run, so /readyz is 503
    with GradientClient(client=tc) as gc:
        assert gc.ready() is False


def test_importing_the_client_stays_light() -> None:
    code = (
        "import sys, gradient_service_client; "
        "heavy = {'fastapi', 'pydantic', 'numpy', 'starlette', 'service', 'uvicorn', 'redis', 'prometheus_client'}"
        " & {m.split('.')[0] for m in sys.modules}; "
        "print(sorted(heavy), gradient_service_client.__file__)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "clients" / "python")}
    out = subprocess.run([sys.executable, "-c", code], cwd="/", env=env, capture_output=True, text=True, check=True)
    heavy, path = out.stdout.split()
    assert heavy == "[]"
    assert path.startswith(str(ROOT / "clients" / "python"))  # this checkout's client, not an installed one


def test_sign_then_grade_with_the_token(client: TestClient) -> None:
    """A grader signs a problem; the token stands in for it when grading (what a student key sends)."""
    from gradient_service_client import GradientClient

    gc = GradientClient(client=client)
    problem = {
        "model": "linear_regression",
        "parameters": {"w": [2.0], "b": 0.0},
        "data": {"X": [[1.0], [2.0]], "y": [1.0, 3.0]},
    }
    signed = gc.sign(problem, expires_in=60)
    assert isinstance(signed["problem_token"], str) and signed["expires_at"] > 0
    result = gc.grade(signed["problem_token"], {"loss": 0.5})
    assert result["score"] == 1.0
    batch = gc.grade_batch(signed["problem_token"], [{"loss": 0.5}, {"loss": 1.0}])
    assert [r["score"] for r in batch] == [1.0, 0.0]
    pl = gc.grade(problem, {"loss": 0.5}, format="prairielearn")
    assert pl["output"].startswith("gradient-service ")


def test_sign_seals_the_scoring_options(client: TestClient) -> None:
    """Options given to sign grade the token's answers without being sent again."""
    from gradient_service_client import GradientClient

    gc = GradientClient(client=client)
    problem = {
        "model": "linear_regression",
        "parameters": {"w": [2.0], "b": 0.0},
        "data": {"X": [[1.0], [2.0]], "y": [1.0, 3.0]},
    }
    plain = gc.sign(problem)["problem_token"]
    sealed = gc.sign(problem, tolerance={"sig_figs": 2}, points={"loss": 4}, carry_forward_credit=0.25)["problem_token"]
    near = {"loss": 0.501}  # J = 0.5: right to 2 significant figures only
    assert gc.grade(plain, near)["points"] == 0.0
    result = gc.grade(sealed, near)
    assert result["points"] == 4.0 and result["max_points"] == 4.0

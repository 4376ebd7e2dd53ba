"""Request ids, JSON logs and Prometheus metrics."""

from __future__ import annotations

import json
import logging

from fastapi.testclient import TestClient

from service.observability import JSONFormatter, request_id_var


def _metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + "{"):
            got = ",".join(sorted(line[len(name) + 1 : line.index("}")].split(",")))
            if got == want:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_request_id_is_echoed_when_well_formed(client: TestClient) -> None:
    r = client.get("/healthz", headers={"X-Request-ID": "grader-42.run:7"})
    assert r.headers["x-request-id"] == "grader-42.run:7"


def test_request_id_is_generated_when_absent_or_malformed(client: TestClient) -> None:
    a = client.get("/healthz").headers["x-request-id"]
    b = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces <script>"}).headers["x-request-id"]
    assert len(a) == 32 and len(b) == 32 and a != b
    assert "script" not in b


def test_request_id_is_on_error_responses_too(client: TestClient) -> None:
    r = client.post("/gradient", content=b"{", headers={"content-type": "application/json", "X-Request-ID": "e-1"})
    assert r.status_code == 400 and r.headers["x-request-id"] == "e-1"


def test_metrics_count_requests_by_route_and_status(client: TestClient) -> None:
    before = client.get("/metrics").text
    body = {
        "model": "linear_regression",
        "parameters": {"w": [1.0, 2.0], "b": 0.0},
        "data": {"X": [[1, 2], [3, 4], [5, 6]], "y": [1, 2, 3]},
    }
    for _ in range(3):
        assert client.post("/gradient", json=body).status_code == 200
    assert client.post("/gradient", json={"model": "nope"}).status_code == 422
    client.get("/no-such-page")
    after = client.get("/metrics").text
    ok = _metric(after, "gradient_http_requests_total", route="/gradient", method="POST", status="200")
    assert ok - _metric(before, "gradient_http_requests_total", route="/gradient", method="POST", status="200") == 3
    bad = _metric(after, "gradient_http_requests_total", route="/gradient", method="POST", status="422")
    assert bad - _metric(before, "gradient_http_requests_total", route="/gradient", method="POST", status="422") == 1
    # unknown paths share one label: no unbounded cardinality
    assert _metric(after, "gradient_http_requests_total", route="other", method="GET", status="404") >= 1
    assert 'gradient_http_request_duration_seconds_bucket{le="0.005",route="/gradient"}' in after
    sizes = _metric(after, "gradient_problem_size_elements_sum", route="/gradient")
    assert sizes - _metric(before, "gradient_problem_size_elements_sum", route="/gradient") == 3 * 6


def test_unknown_methods_share_one_label(client: TestClient) -> None:
    before = client.get("/metrics").text
    for method in ("PROPFIND", "BREW", "X-ANYTHING"):
        client.request(method, "/healthz")
    after = client.get("/metrics").text
    other = _metric(after, "gradient_http_requests_total", route="/healthz", method="other", status="405")
    assert other - _metric(before, "gradient_http_requests_total", route="/healthz", method="other", status="405") == 3
    assert "PROPFIND" not in after and "BREW" not in after


def test_metrics_count_grading_outcomes(client: TestClient) -> None:
    before = client.get("/metrics").text
    problem = {
        "model": "linear_regression",
        "parameters": {"w": [2.0], "b": 0.0},
        "data": {"X": [[1], [2]], "y": [1, 3]},
    }
    r = client.post("/grade/batch", json={"problem": problem, "answers": [{"loss": 0.5}, {"loss": 9}, {"lost": 1}]})
    assert r.status_code == 200
    after = client.get("/metrics").text
    for outcome in ("correct", "incorrect", "ungradable"):
        delta = _metric(after, "gradient_grading_outcomes_total", outcome=outcome) - _metric(
            before, "gradient_grading_outcomes_total", outcome=outcome
        )
        assert delta == 1, outcome


def test_json_log_lines_carry_the_request_id() -> None:
    token = request_id_var.set("rid-7")
    try:
        record = logging.makeLogRecord(
            {"name": "service.access", "levelname": "INFO", "msg": "GET %s", "args": ("/x",), "status": 200}
        )
        line = JSONFormatter().format(record)
    finally:
        request_id_var.reset(token)
    data = json.loads(line)
    assert data["request_id"] == "rid-7" and data["message"] == "GET /x" and data["status"] == 200

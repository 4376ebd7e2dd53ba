"""The client's drawings and descent: GradientClient.graph, .descent and .descent_plot."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from gradient_service_client import GradientClient, ServiceError, build_problem
from service.app import create_app
from tests.api.helpers import WORKED_X

Y = [0, 0, 0, 1, 1, 1]
PROBLEM = build_problem("logistic_regression", {"w": [0.0, 0.0], "b": 0.0}, {"X": np.asarray(WORKED_X), "y": Y})
COMPARE = {"activation": "sigmoid", "loss": "squared_error"}


@pytest.fixture
def both() -> Iterator[tuple[GradientClient, TestClient]]:
    with TestClient(create_app()) as tc, GradientClient(client=tc) as gc:
        yield gc, tc


def test_descent_is_the_services_answer(both: tuple[GradientClient, TestClient]) -> None:
    gc, tc = both
    got = gc.descent(PROBLEM, learning_rate=1.0, steps=50, record_every=10, compare_with=COMPARE)
    want = tc.post(
        "/descent",
        json={"problem": PROBLEM, "learning_rate": 1.0, "steps": 50, "record_every": 10, "compare_with": COMPARE},
    ).json()
    assert got == want
    assert [run["pairing"]["loss"] for run in got["runs"]] == ["binary_cross_entropy", "squared_error"]
    assert got["runs"][0]["history"]["loss"][-1] < got["runs"][0]["history"]["loss"][0]
    assert "comparison" in got


def test_descent_sends_x_as_npy_on_request(both: tuple[GradientClient, TestClient]) -> None:
    gc, _ = both
    as_json = gc.descent(PROBLEM, learning_rate=0.5, steps=20, binary=False)
    as_npy = gc.descent(PROBLEM, learning_rate=0.5, steps=20, binary=True)
    assert as_npy == as_json and "comparison" not in as_json


def test_the_drawings_are_the_services_svg(both: tuple[GradientClient, TestClient]) -> None:
    gc, tc = both
    graph = gc.graph(PROBLEM, examples=2)
    assert graph == tc.post("/graph?examples=2", json=PROBLEM).text
    assert graph.lstrip().startswith(("<svg", "<?xml")) and "4 more examples not drawn" in graph
    assert gc.graph(PROBLEM, binary=True) == gc.graph(PROBLEM)
    plot = gc.descent_plot(PROBLEM, learning_rate=1.0, steps=30, compare_with=COMPARE)
    body = {"problem": PROBLEM, "learning_rate": 1.0, "steps": 30, "compare_with": COMPARE}
    assert plot == tc.post("/descent/plot", json=body).text


def test_descent_errors_are_service_errors(both: tuple[GradientClient, TestClient]) -> None:
    gc, _ = both
    with pytest.raises(ServiceError) as info:
        gc.descent(PROBLEM, learning_rate=0.0, steps=5)
    assert info.value.status == 422 and info.value.errors is not None
    assert info.value.errors[0]["loc"] == ["learning_rate"]
    with pytest.raises(ServiceError) as drawn:
        gc.graph({**PROBLEM, "model": "nope"})
    assert drawn.value.status == 422
    with pytest.raises(ValueError, match=r"problem\.data\['X'\]"):
        gc.descent({"model": "logistic_regression"}, learning_rate=1.0, steps=1, binary=True)

"""The client's binary form: X as a .npy part (GradientClient.gradient(binary=...), npy_bytes)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from gradient_service_client import BINARY_MIN_NUMBERS, GradientClient, ServiceError, npy_bytes
from service.app import create_app
from tests.api.helpers import WORKED_X

Y = [0, 0, 0, 1, 1, 1]


@pytest.fixture
def service() -> Iterator[tuple[GradientClient, list[httpx.Request]]]:
    """A client of the real application that also records the requests it sends."""
    seen: list[httpx.Request] = []
    with TestClient(create_app()) as tc, GradientClient(client=tc) as gc:
        tc.event_hooks["request"] = [seen.append]
        yield gc, seen


def _load(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "X",
    [
        pytest.param(WORKED_X, id="lists"),
        pytest.param(np.asarray(WORKED_X), id="float64"),
        pytest.param(np.asarray(WORKED_X, dtype=np.float32), id="float32"),
        pytest.param(np.asarray(WORKED_X, dtype=">f8"), id="big-endian"),
        pytest.param(np.asfortranarray(np.asarray(WORKED_X)), id="Fortran order (goes through tolist)"),
        pytest.param(np.asarray(WORKED_X)[:, ::-1], id="a strided view"),
        pytest.param(np.arange(12, dtype=np.int64).reshape(4, 3), id="integers (sent as float64)"),
        pytest.param([[1, 2.5]], id="one row"),
    ],
)
def test_npy_bytes_is_read_back_by_numpy(X: object) -> None:
    back = _load(npy_bytes(X))
    want = np.asarray(X)
    assert back.shape == want.shape and back.dtype.kind == "f"
    np.testing.assert_array_equal(back, want.astype(np.float64))


def test_npy_bytes_refuses_what_is_not_a_matrix() -> None:
    for bad in ([1, 2, 3], [[1, 2], [3]], "X"):
        with pytest.raises(ValueError):
            npy_bytes(bad)


def test_binary_answers_as_json(service: tuple[GradientClient, list[httpx.Request]]) -> None:
    gc, seen = service
    as_json = gc.gradient("logistic_regression", {"w": [2, 3], "b": 1}, {"X": WORKED_X, "y": Y}, binary=False)
    as_npy = gc.gradient("logistic_regression", {"w": [2, 3], "b": 1}, {"X": WORKED_X, "y": Y}, binary=True)
    assert as_npy == as_json
    assert seen[0].headers["content-type"] == "application/json"
    assert seen[1].headers["content-type"].startswith("multipart/form-data; boundary=")
    assert b'"X"' not in seen[1].content.split(b"\x93NUMPY")[0].split(b'name="X"')[0]  # X is not in the JSON part


def test_binary_is_the_default_for_a_big_x(service: tuple[GradientClient, list[httpx.Request]]) -> None:
    gc, seen = service
    rng = np.random.default_rng(1)
    m = BINARY_MIN_NUMBERS // 4
    X = rng.normal(size=(m, 4))
    y = (rng.random(m) < 0.5).astype(int)
    big = gc.gradient("logistic_regression", {"w": [0.1, 0.2, -0.3, 0.0], "b": 0.5}, {"X": X, "y": y})
    small = gc.gradient("logistic_regression", {"w": [0.1, 0.2, -0.3, 0.0], "b": 0.5}, {"X": X[:-1], "y": y[:-1]})
    assert seen[0].headers["content-type"].startswith("multipart/form-data")
    assert seen[1].headers["content-type"] == "application/json"
    again = gc.gradient("logistic_regression", {"w": [0.1, 0.2, -0.3, 0.0], "b": 0.5}, {"X": X, "y": y}, binary=False)
    assert big == again and small != big


def test_binary_errors_are_located_as_in_json(service: tuple[GradientClient, list[httpx.Request]]) -> None:
    gc, _ = service
    X = np.asarray(WORKED_X, dtype=np.float64)
    X[2, 1] = np.inf
    with pytest.raises(ServiceError) as info:
        gc.gradient("logistic_regression", {"w": [2, 3], "b": 1}, {"X": X, "y": Y}, binary=True)
    assert info.value.status == 422
    assert info.value.errors == [{"loc": ["data", "X", 2, 1], "msg": "Input should be a finite number"}]
    with pytest.raises(ValueError, match="data\\['X'\\]"):
        gc.gradient("logistic_regression", {"w": [2, 3], "b": 1}, {"y": Y}, binary=True)

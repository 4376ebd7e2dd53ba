"""The last resort: an unexpected exception is a generic 500 problem, its traceback logged only."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.http.handlers import responses

BODY = {"model": "linear_regression", "parameters": {"w": [1.0], "b": 0.0}, "data": {"X": [[1.0]], "y": [2.0]}}


def test_an_unexpected_exception_is_a_generic_500(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(prepared: object) -> dict[str, object]:
        raise RuntimeError("SECRET-internal-state 0xdeadbeef")

    monkeypatch.setattr(responses, "gradients", explode)
    with TestClient(create_app(), raise_server_exceptions=False) as client, caplog.at_level(logging.ERROR):
        r = client.post("/gradient", json=BODY)
    assert r.status_code == 500
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["type"] == "urn:gradient-service:problem:internal-error" and body["status"] == 500
    assert "SECRET" not in r.text and "Traceback" not in r.text and "deadbeef" not in r.text
    logged = "\n".join(rec.getMessage() + (rec.exc_text or "") for rec in caplog.records)
    assert any(rec.exc_info for rec in caplog.records), "the traceback is logged on the server"
    assert "POST /gradient" in logged

"""Failed authentications throttled per client address (service.http.security.access.authenticate_throttled).

Each application is built from explicit Settings; TestClient's `client` sets the TCP peer's address.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.http.security import access
from service.settings import Settings
from tests.api.helpers import assert_problem

KEYS: dict[str, list[str]] = {"g-key": ["grader"], "s-key": ["student"]}
GOOD = {"Authorization": "Bearer g-key"}
WRONG = {"Authorization": "Bearer wrong-key"}
BURST = 5


@contextmanager
def clients(*addresses: str, **overrides: Any) -> Iterator[list[TestClient]]:
    """One application, a client per peer address."""
    base: dict[str, Any] = {
        "api_keys": KEYS,
        "signing_secret": "x" * 32,
        "rate_limit_per_minute": 0,
        "auth_failures_per_minute": 60,
        "auth_failure_burst": BURST,
    }
    app = create_app(Settings(**{**base, **overrides}))
    with TestClient(app, raise_server_exceptions=False, client=(addresses[0], 40000)) as first:
        others = [TestClient(app, raise_server_exceptions=False, client=(a, 40000)) for a in addresses[1:]]
        yield [first, *others]


def test_failures_beyond_the_burst_are_429_with_retry_after() -> None:
    with clients("10.0.0.1") as (c,):
        for _ in range(BURST):
            assert_problem(c.get("/version", headers=WRONG), 401, "unauthorized")
        r = c.get("/version", headers=WRONG)
        body = assert_problem(r, 429, "rate-limited", secret="wrong-key")
        assert "failed authentications" in body["detail"]
        assert 1 <= int(r.headers["retry-after"]) <= 2  # one failure a second
        assert body["retry_after"] == int(r.headers["retry-after"])
        # the fast path (POST /gradient) and every other keyed route are throttled alike
        assert_problem(c.post("/gradient", json={}, headers=WRONG), 429, "rate-limited")
        assert_problem(c.get("/metrics", headers=WRONG), 429, "rate-limited")


def test_a_blocked_address_is_refused_even_with_a_correct_key_and_other_addresses_are_not() -> None:
    with clients("10.0.0.1", "10.0.0.2") as (guesser, other):
        for _ in range(BURST + 1):
            guesser.get("/version", headers=WRONG)
        # a correct key from the blocked address gets the same 429: no answer tells a right guess apart
        assert_problem(guesser.get("/version", headers=GOOD), 429, "rate-limited")
        assert_problem(guesser.get("/version"), 429, "rate-limited")
        assert other.get("/version", headers=GOOD).status_code == 200
        assert_problem(other.get("/version", headers=WRONG), 401, "unauthorized")
        # public routes need no key and are never throttled
        assert guesser.get("/healthz").status_code == 200
        assert guesser.get("/readyz").status_code == 200


def test_successes_and_requests_without_a_key_are_not_counted() -> None:
    with clients("10.0.0.1") as (c,):
        for _ in range(5 * BURST):
            assert c.get("/version", headers=GOOD).status_code == 200
            assert_problem(c.get("/version"), 401, "unauthorized")  # no Authorization header: no key tried
        for _ in range(BURST):
            assert_problem(c.get("/version", headers=WRONG), 401, "unauthorized")
        assert_problem(c.get("/version", headers=WRONG), 429, "rate-limited")


def test_the_block_ends_when_the_bucket_refills(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [time.monotonic()]
    monkeypatch.setattr(access.time, "monotonic", lambda: now[0])
    with clients("10.0.0.1") as (c,):
        for _ in range(BURST):
            c.get("/version", headers=WRONG)
        r = c.get("/version", headers=WRONG)
        assert r.status_code == 429
        now[0] += float(r.headers["retry-after"]) + 0.01
        assert c.get("/version", headers=GOOD).status_code == 200
        assert c.get("/version", headers=WRONG).status_code == 401  # the one failure refilled meanwhile
        assert c.get("/version", headers=WRONG).status_code == 429


def test_zero_turns_the_throttle_off() -> None:
    with clients("10.0.0.1", auth_failures_per_minute=0) as (c,):
        for _ in range(3 * BURST):
            assert_problem(c.get("/version", headers=WRONG), 401, "unauthorized")
        assert c.get("/version", headers=GOOD).status_code == 200


def test_an_open_service_is_never_throttled() -> None:
    with clients("10.0.0.1", api_keys={}) as (c,):
        for _ in range(3 * BURST):
            assert c.get("/version", headers=WRONG).status_code == 200


def test_the_blocked_addresses_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(access.AuthThrottle, "MAX_BLOCKED", 3)
    throttle = access.AuthThrottle()
    for i in range(10):
        throttle.block(f"10.0.0.{i}", 60)
    assert [throttle.blocked_for(f"10.0.0.{i}") > 0 for i in range(10)] == [False] * 7 + [True] * 3

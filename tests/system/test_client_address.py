"""The client address failed authentications are throttled by, against a real server: the TCP peer,
or, from a proxy named by TRUSTED_PROXIES, the X-Forwarded-For it sets."""

from __future__ import annotations

import httpx
import pytest

from tests.system.server import running_service

pytestmark = pytest.mark.slow

KEYS = '{"g-key": ["grader"]}'
GOOD = {"Authorization": "Bearer g-key"}
WRONG = {"Authorization": "Bearer wrong"}
ENV = {"GRADIENT_SERVICE_API_KEYS": KEYS, "GRADIENT_SERVICE_AUTH_FAILURE_BURST": "3"}


def _spend(client: httpx.Client, forwarded: str) -> None:
    statuses = [client.get("/version", headers={**WRONG, "X-Forwarded-For": forwarded}).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


def test_without_trusted_proxies_x_forwarded_for_is_ignored() -> None:
    with running_service(env=ENV) as svc, httpx.Client(base_url=svc.base, timeout=10) as client:
        _spend(client, "198.51.100.1")
        # a forged header does not make a new client: the peer (127.0.0.1) is blocked
        r = client.get("/version", headers={**GOOD, "X-Forwarded-For": "198.51.100.2"})
        assert r.status_code == 429 and r.headers["content-type"] == "application/problem+json"
        assert int(r.headers["retry-after"]) >= 1


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket() -> None:
    env = {**ENV, "GRADIENT_SERVICE_TRUSTED_PROXIES": '["127.0.0.1"]'}
    with running_service(env=env) as svc, httpx.Client(base_url=svc.base, timeout=10) as client:
        _spend(client, "198.51.100.1")
        assert client.get("/version", headers={**GOOD, "X-Forwarded-For": "198.51.100.1"}).status_code == 429
        assert client.get("/version", headers={**GOOD, "X-Forwarded-For": "198.51.100.2"}).status_code == 200

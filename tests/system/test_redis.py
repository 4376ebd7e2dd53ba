"""Rate limits and attempt counts shared through a real Redis server (RedisLimiter, RedisAttemptStore).

Two applications, each behind its own TestClient (its own event loop and Redis connections), stand in
for two workers or two replicas of the service: what one counts, the other must see.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import anyio
import pytest
import redis
from fastapi.testclient import TestClient

from service.app import create_app
from service.http.security.attempts import Consumed, RedisAttemptStore
from service.http.security.limits import LimiterUnavailable
from service.settings import Settings
from tests.api.helpers import assert_problem
from tests.system.server import free_port

pytestmark = pytest.mark.slow

SECRET = "r" * 32
KEYS = {"g-key": ["grader"], "s-key": ["student"], "o-key": ["operator"]}
G = {"Authorization": "Bearer g-key"}
S = {"Authorization": "Bearer s-key"}
O = {"Authorization": "Bearer o-key"}  # noqa: E741
WORKED: dict[str, Any] = {
    "model": "logistic_regression",
    "parameters": {"w": [1, 1], "b": -3},
    "data": {"X": [[0.5, 1.5], [1, 1], [1.5, 0.5], [3, 0.5], [2, 2], [1, 2.5]], "y": [0, 0, 0, 1, 1, 1]},
}
ANSWER = {"loss": 0.36686678640551745}


def _unavailable(reason: str) -> None:
    message = f"NO REDIS: {reason}; the shared rate limits and attempt counts are NOT tested"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _redis_server() -> str:
    """The path of redis-server, installed from Debian's package when missing and we may."""
    found = shutil.which("redis-server")
    if found:
        return found
    if getattr(os, "geteuid", lambda: -1)() != 0 or shutil.which("apt-get") is None:
        _unavailable("redis-server is not on PATH and it cannot be installed here (not root, or no apt-get)")
    # RUNLEVEL=1: the package's postinst must not start a system-wide redis on 6379
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "RUNLEVEL": "1"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "redis-server"]
    done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:  # maybe the package lists are missing
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
        done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=600)
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
    )
    if done.returncode != 0 or not found:
        _unavailable(f"apt-get install redis-server failed: {(done.stderr or done.stdout).strip()[-500:]}")
    assert found is not None
    return found


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    server = _redis_server()
    port = free_port()
    proc = subprocess.Popen(
        [server, "--port", str(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                raise RuntimeError(f"redis-server exited early:\n{out}")
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not answer PING in time")
            time.sleep(0.05)
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


@pytest.fixture
def db(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


def _apps(redis_url: str | None, stack: ExitStack, **overrides: Any) -> tuple[TestClient, TestClient]:
    """Two separate applications (two workers/replicas) on the same Redis and the same signing secret."""
    fields: dict[str, Any] = {"api_keys": KEYS, "signing_secret": SECRET, "redis_url": redis_url, **overrides}
    a = stack.enter_context(TestClient(create_app(Settings(**fields))))
    b = stack.enter_context(TestClient(create_app(Settings(**fields))))
    return a, b


def test_two_apps_share_one_rate_limit_bucket(redis_url: str, db: redis.Redis) -> None:
    with ExitStack() as stack:
        a, b = _apps(redis_url, stack, rate_limit_per_minute=60, rate_limit_burst=3)
        assert a.get("/version", headers=O).status_code == 200
        assert a.get("/version", headers=O).status_code == 200
        assert b.get("/version", headers=O).status_code == 200
        r = b.get("/version", headers=O)  # the 4th of the key, though only the 2nd on app B
        assert_problem(r, 429, "rate-limited", secret="o-key")
        assert int(r.headers["retry-after"]) >= 1
        assert_problem(a.get("/version", headers=O), 429, "rate-limited")
        # another key has its own bucket, also shared
        assert b.get("/version", headers=S).status_code == 200
        assert a.get("/version", headers=S).status_code == 200


def test_without_redis_each_app_has_its_own_bucket(db: redis.Redis) -> None:
    """The contrast: in memory, the same four requests all pass (so the test above checks Redis)."""
    with ExitStack() as stack:
        a, b = _apps(None, stack, rate_limit_per_minute=60, rate_limit_burst=3)
        for client in (a, a, b, b):
            assert client.get("/version", headers=O).status_code == 200
    assert db.dbsize() == 0


def test_two_apps_share_the_attempts_of_a_token(redis_url: str, db: redis.Redis) -> None:
    with ExitStack() as stack:
        a, b = _apps(redis_url, stack, max_attempts=3, rate_limit_per_minute=0)
        r = a.post("/problems/sign", json={"problem": WORKED, "expires_in": 600}, headers=G)
        assert r.status_code == 200, r.text
        token = r.json()["problem_token"]
        body = {"problem_token": token, "answer": ANSWER}
        assert a.post("/grade", json=body, headers=S).status_code == 200
        assert b.post("/grade", json=body, headers=S).status_code == 200  # a token signed on A is valid on B
        assert a.post("/grade", json=body, headers=S).status_code == 200
        refused = assert_problem(b.post("/grade", json=body, headers=S), 403, "forbidden")
        assert refused["attempts"] == 3 and refused["max_attempts"] == 3  # the refused grading took none
        assert_problem(a.post("/grade", json=body, headers=S), 403, "forbidden")
        # batch answers count in the same shared counter
        r = b.post("/problems/sign", json={"problem": WORKED, "expires_in": 601}, headers=G)
        other = r.json()["problem_token"]
        assert (
            a.post("/grade/batch", json={"problem_token": other, "answers": [ANSWER] * 2}, headers=S).status_code == 200
        )
        assert b.post("/grade", json={"problem_token": other, "answer": ANSWER}, headers=S).status_code == 200
        assert_problem(a.post("/grade", json={"problem_token": other, "answer": ANSWER}, headers=S), 403, "forbidden")


def test_every_key_in_redis_expires(redis_url: str, db: redis.Redis) -> None:
    with ExitStack() as stack:
        a, b = _apps(redis_url, stack, max_attempts=3, rate_limit_per_minute=60, rate_limit_burst=3)
        token = a.post("/problems/sign", json={"problem": WORKED, "expires_in": 600}, headers=G).json()["problem_token"]
        assert b.post("/grade", json={"problem_token": token, "answer": ANSWER}, headers=S).status_code == 200
        assert a.get("/version", headers=O).status_code == 200
        keys = db.keys("*")
        assert len(keys) >= 3, keys  # a bucket for each of the 3 keys and the student's counter
        ttls = {k.decode(): db.ttl(k) for k in keys}
        assert all(ttl > 0 for ttl in ttls.values()), ttls  # -1 would be a key kept for ever
        # a bucket lives about as long as it takes to refill (3 tokens at 1/s); a counter, as long as the token
        buckets = {k: t for k, t in ttls.items() if "bucket" in k}
        counters = {k: t for k, t in ttls.items() if "attempts" in k}
        assert len(buckets) == 3 and len(counters) == 1, ttls
        assert all(t <= 4 for t in buckets.values()), buckets
        assert all(590 <= t <= 600 for t in counters.values()), counters
        # a further attempt does not push the counter's expiry beyond the token's
        assert b.post("/grade", json={"problem_token": token, "answer": ANSWER}, headers=S).status_code == 200
        assert all(db.ttl(k) <= 600 for k in counters)


def test_a_redis_outage_is_not_an_internal_error() -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings = Settings(api_keys=KEYS, signing_secret=SECRET, redis_url=dead)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        r = c.get("/version", headers=O)
        assert r.status_code in (200, 503), r.text
        if r.status_code == 503:
            assert r.headers["content-type"].startswith("application/problem+json")
            assert c.get("/readyz").status_code == 503


# --- the attempt store itself ------------------------------------------------------------------------

LATER = 4_000_000_000  # an expiry far in the future (2096)


def _consume(url: str, key: str, n: int, limit: int, expires_at: float = LATER) -> Consumed:
    async def run() -> Consumed:
        store = RedisAttemptStore(url)
        try:
            return await store.consume(key, n, limit, expires_at)
        finally:
            await store.close()

    return anyio.run(run)


def test_redis_store_limit_is_exact_and_all_or_nothing(redis_url: str, db: redis.Redis) -> None:
    assert [_consume(redis_url, "k", 1, 3).granted for _ in range(4)] == [True, True, True, False]
    assert _consume(redis_url, "k", 1, 3) == Consumed(False, 3, 3)
    assert _consume(redis_url, "b", 3, 5) == Consumed(True, 3, 5)
    assert _consume(redis_url, "b", 3, 5) == Consumed(False, 3, 5)  # 3 asked, 2 left: none taken
    assert _consume(redis_url, "b", 2, 5) == Consumed(True, 5, 5)
    assert _consume(redis_url, "new", 6, 5) == Consumed(False, 0, 5)
    assert not db.exists("gradient:attempts:new"), "a refused first consume leaves no key behind"


def test_redis_store_key_expires_with_the_token(redis_url: str, db: redis.Redis) -> None:
    expires = int(time.time()) + 600  # a token's expiry is a whole second
    assert _consume(redis_url, "k", 1, 3, expires).granted
    assert 595 <= db.ttl("gradient:attempts:k") <= 600
    assert db.expiretime("gradient:attempts:k") == expires, "EXPIREAT: the token's own expiry"
    assert _consume(redis_url, "short", 2, 2, time.time() + 1).granted
    assert not _consume(redis_url, "short", 1, 2, time.time() + 1).granted
    time.sleep(2.1)
    assert _consume(redis_url, "short", 2, 2, time.time() + 60) == Consumed(True, 2, 2)


def test_redis_50_concurrent_consumes_grant_exactly_5(redis_url: str, db: redis.Redis) -> None:
    assert _consume(redis_url, "k", 5, 10).granted  # 5 of 10 used: 5 left

    async def tasks() -> list[Consumed]:  # 50 at once on one store (its connection pool)
        store = RedisAttemptStore(redis_url)
        try:
            return list(await asyncio.gather(*(store.consume("k", 1, 10, LATER) for _ in range(50))))
        finally:
            await store.close()

    results = asyncio.run(tasks())
    assert sum(r.granted for r in results) == 5
    assert sorted(r.used for r in results if r.granted) == [6, 7, 8, 9, 10]
    # and from 50 threads, each its own store and connection (as many workers or replicas would)
    assert _consume(redis_url, "t", 5, 10).granted
    barrier = threading.Barrier(50)
    granted: list[bool] = []

    def one() -> None:
        barrier.wait()
        granted.append(_consume(redis_url, "t", 1, 10).granted)

    threads = [threading.Thread(target=one) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(granted) == 50 and sum(granted) == 5
    assert int(db.get("gradient:attempts:t") or 0) == 10


def test_redis_store_fails_closed() -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(LimiterUnavailable):
        _consume(dead, "k", 1, 3)

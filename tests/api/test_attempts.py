"""Attempt stores (service.http.security.attempts): atomic, all-or-nothing consumes that outlive an application.

The Redis store has the same tests against a real Redis server in tests/system/test_redis.py.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.http.security.attempts import (
    AttemptStore,
    AttemptStoreError,
    Consumed,
    MemoryAttemptStore,
    SqliteAttemptStore,
    make_attempt_store,
)
from service.settings import Settings
from tests.api.helpers import assert_problem
from tests.system.server import ROOT

SECRET = "a" * 32
KEYS = {"g-key": ["grader"], "s-key": ["student"]}
G = {"Authorization": "Bearer g-key"}
S = {"Authorization": "Bearer s-key"}
WORKED: dict[str, Any] = {
    "model": "logistic_regression",
    "parameters": {"w": [1, 1], "b": -3},
    "data": {"X": [[0.5, 1.5], [1, 1], [1.5, 0.5], [3, 0.5], [2, 2], [1, 2.5]], "y": [0, 0, 0, 1, 1, 1]},
}
ANSWER = {"loss": 0.36686678640551745}
LATER = 4_000_000_000.0  # an expiry far in the future (2096)


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AttemptStore]:
    made: AttemptStore = SqliteAttemptStore(tmp_path) if request.param == "sqlite" else MemoryAttemptStore()
    anyio.run(made.open)
    yield made
    anyio.run(made.close)


def consume(store: AttemptStore, key: str, n: int, limit: int, expires_at: float = LATER) -> Consumed:
    return anyio.run(store.consume, key, n, limit, expires_at)


# --- the operation ----------------------------------------------------------------------------------


def test_the_limit_is_exact(store: AttemptStore) -> None:
    assert [consume(store, "k", 1, 3).granted for _ in range(5)] == [True, True, True, False, False]
    assert consume(store, "k", 1, 3) == Consumed(False, 3, 3)
    assert consume(store, "other", 1, 3) == Consumed(True, 1, 3)  # each key its own count
    assert consume(store, "k", 1, 4) == Consumed(True, 4, 4)  # a higher limit (a changed setting) allows more


def test_all_or_nothing(store: AttemptStore) -> None:
    assert consume(store, "k", 3, 5) == Consumed(True, 3, 5)
    refused = consume(store, "k", 3, 5)  # 3 asked, 2 left: refused, and nothing taken
    assert refused == Consumed(False, 3, 5) and refused.left == 2
    assert consume(store, "k", 2, 5) == Consumed(True, 5, 5)  # the 2 left are still there
    assert consume(store, "new", 6, 5) == Consumed(False, 0, 5)
    assert consume(store, "new", 5, 5) == Consumed(True, 5, 5)


def test_an_expired_count_is_forgotten(store: AttemptStore) -> None:
    soon = time.time() + 0.3
    assert consume(store, "k", 2, 2, soon).granted
    assert not consume(store, "k", 1, 2, soon).granted
    time.sleep(0.4)
    assert consume(store, "k", 2, 2, time.time() + 60) == Consumed(True, 2, 2)


def test_bad_arguments_are_refused(store: AttemptStore) -> None:
    with pytest.raises(ValueError, match="n must be"):
        consume(store, "k", 0, 3)
    with pytest.raises(ValueError, match="limit"):
        consume(store, "k", 1, -1)
    assert anyio.run(store.ping) is True


# --- SQLite: a file, shared and kept ------------------------------------------------------------------


def test_sqlite_counts_survive_a_new_store_on_the_same_dir(tmp_path: Path) -> None:
    first = SqliteAttemptStore(tmp_path / "nested" / "dir")  # the directory is created
    assert consume(first, "k", 4, 5).granted
    anyio.run(first.close)
    second = SqliteAttemptStore(tmp_path / "nested" / "dir")
    assert consume(second, "k", 2, 5) == Consumed(False, 4, 5)
    anyio.run(second.close)


def test_sqlite_uses_wal_and_removes_expired_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SqliteAttemptStore(tmp_path)
    consume(store, "old", 1, 5, time.time() + 0.2)
    consume(store, "new", 1, 5)
    time.sleep(0.3)
    monkeypatch.setattr(store, "_next_purge", 0.0)  # the purge is due (at most once a minute)
    consume(store, "third", 1, 5)
    anyio.run(store.close)
    with sqlite3.connect(tmp_path / "attempts.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert sorted(k for (k,) in db.execute("SELECT key FROM attempts")) == ["new", "third"]
    db.close()


def test_an_unwritable_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")  # works as root too, where permissions do not stop writes
    store = SqliteAttemptStore(blocker / "data")
    with pytest.raises(AttemptStoreError, match="GRADIENT_SERVICE_DATA_DIR") as info:
        anyio.run(store.open)
    assert str(blocker / "data") in str(info.value)
    assert anyio.run(store.ping) is False


def test_a_read_only_database_is_a_clear_error(tmp_path: Path) -> None:
    store = SqliteAttemptStore(tmp_path)
    anyio.run(store.open)
    anyio.run(store.close)
    ro = SqliteAttemptStore(tmp_path)
    real = sqlite3.connect

    def read_only(path: Any, **kwargs: Any) -> sqlite3.Connection:
        return real(f"file:{path}?mode=ro", uri=True, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sqlite3, "connect", read_only)
        with pytest.raises(AttemptStoreError, match="cannot write"):
            anyio.run(ro.open)


def test_the_app_refuses_to_start_on_an_unwritable_data_dir(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    app = create_app(Settings(api_keys=KEYS, signing_secret=SECRET, data_dir=blocker / "data"))
    with pytest.raises(AttemptStoreError), TestClient(app):
        pass
    assert any("refusing to start" in r.getMessage() for r in caplog.records)


def test_serve_refuses_to_start_on_an_unwritable_data_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = {"GRADIENT_SERVICE_DATA_DIR": str(blocker / "data"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "service", "serve", "--port", "9"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "refusing to start" in done.stderr and "GRADIENT_SERVICE_DATA_DIR" in done.stderr


def test_make_attempt_store_follows_the_settings(tmp_path: Path) -> None:
    sqlite_store = make_attempt_store(Settings(data_dir=tmp_path))
    assert isinstance(sqlite_store, SqliteAttemptStore) and sqlite_store.path == tmp_path / "attempts.sqlite3"
    assert not sqlite_store.path.exists(), "nothing is opened until the lifespan starts"
    redis_store = make_attempt_store(Settings(data_dir=tmp_path, redis_url="redis://127.0.0.1:9/0"))
    assert type(redis_store).__name__ == "RedisAttemptStore"
    anyio.run(redis_store.close)


# --- concurrency: 50 consumes of a key with 5 left grant exactly 5 --------------------------------


def _prefill(path: Path, key: str) -> None:
    store = SqliteAttemptStore(path)
    assert consume(store, key, 5, 10).granted  # 5 of 10 used: 5 left
    anyio.run(store.close)


def test_50_concurrent_tasks_on_one_store(store: AttemptStore) -> None:
    assert consume(store, "k", 5, 10).granted

    async def main() -> list[Consumed]:
        return list(await asyncio.gather(*(store.consume("k", 1, 10, LATER) for _ in range(50))))

    results = asyncio.run(main())
    assert sum(r.granted for r in results) == 5
    assert sorted(r.used for r in results if r.granted) == [6, 7, 8, 9, 10]


def test_50_threads_each_with_its_own_sqlite_connection(tmp_path: Path) -> None:
    _prefill(tmp_path, "k")
    barrier = threading.Barrier(50)
    granted: list[bool] = []

    def one() -> None:
        store = SqliteAttemptStore(tmp_path)
        anyio.run(store.open)
        barrier.wait()
        granted.append(consume(store, "k", 1, 10).granted)
        anyio.run(store.close)

    threads = [threading.Thread(target=one) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(granted) == 50 and sum(granted) == 5


# One "worker process": its own stores (connections) on the data dir argv[1], argv[2] consumes at once,
# each in its own thread, when the test says go (after every process has opened its stores).
_PROCESS_WORKER = """
import sys, threading, anyio
from pathlib import Path
from service.http.security.attempts import SqliteAttemptStore
stores = [SqliteAttemptStore(Path(sys.argv[1])) for _ in range(int(sys.argv[2]))]
for s in stores:
    anyio.run(s.open)
results = []
def one(s):
    results.append(anyio.run(s.consume, "k", 1, 10, 4e9).granted)
threads = [threading.Thread(target=one, args=(s,)) for s in stores]
print("ready", flush=True)
sys.stdin.readline()
for t in threads:
    t.start()
for t in threads:
    t.join()
print(sum(results), flush=True)
"""


def test_50_consumes_from_5_processes(tmp_path: Path) -> None:
    _prefill(tmp_path, "k")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _PROCESS_WORKER, str(tmp_path), "10"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(5)
    ]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        counts = [int(p.communicate(timeout=60)[0].strip()) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert all(p.returncode == 0 for p in procs)
    assert sum(counts) == 5, counts


# --- through the API -------------------------------------------------------------------------------


def _app(data_dir: Path, **overrides: Any) -> TestClient:
    fields: dict[str, Any] = {
        "api_keys": KEYS,
        "signing_secret": SECRET,
        "max_attempts": 3,
        "rate_limit_per_minute": 0,
        "data_dir": data_dir,
        **overrides,
    }
    return TestClient(create_app(Settings(**fields)))


def _sign(c: TestClient, expires_in: int = 600) -> str:
    r = c.post("/problems/sign", json={"problem": WORKED, "expires_in": expires_in}, headers=G)
    assert r.status_code == 200, r.text
    return str(r.json()["problem_token"])


def test_attempts_survive_a_restart_on_the_same_data_dir(tmp_path: Path) -> None:
    with _app(tmp_path) as first:
        token = _sign(first)
        for _ in range(3):
            assert first.post("/grade", json={"problem_token": token, "answer": ANSWER}, headers=S).status_code == 200
    with _app(tmp_path) as restarted:  # a new process would be the same: nothing is kept in memory
        refused = assert_problem(
            restarted.post("/grade", json={"problem_token": token, "answer": ANSWER}, headers=S), 403, "forbidden"
        )
        assert refused["attempts"] == 3 and refused["max_attempts"] == 3
        assert "used its 3 attempts" in refused["detail"]


def test_two_apps_on_one_data_dir_share_the_attempts(tmp_path: Path) -> None:
    with _app(tmp_path) as a, _app(tmp_path) as b:
        token = _sign(a)
        body = {"problem_token": token, "answer": ANSWER}
        assert [c.post("/grade", json=body, headers=S).status_code for c in (a, b, a, b)] == [200, 200, 200, 403]


def test_a_refused_batch_takes_no_attempt(tmp_path: Path) -> None:
    with _app(tmp_path) as c:
        token = _sign(c)
        assert c.post("/grade", json={"problem_token": token, "answer": ANSWER}, headers=S).status_code == 200
        r = c.post("/grade/batch", json={"problem_token": token, "answers": [ANSWER] * 3}, headers=S)
        assert assert_problem(r, 403, "forbidden")["attempts"] == 1  # 1 used, 3 asked: none taken
        items = [{"problem_token": token, "answer": ANSWER}] * 3  # the same token 3 times: 3 at once
        assert_problem(c.post("/grade/batch", json={"items": items}, headers=S), 403, "forbidden")
        r = c.post("/grade/batch", json={"problem_token": token, "answers": [ANSWER] * 2}, headers=S)
        assert r.status_code == 200, r.text  # the 2 left were still there
        assert_problem(c.post("/grade", json={"problem_token": token, "answer": ANSWER}, headers=S), 403, "forbidden")


def test_a_bad_token_in_items_takes_no_attempt_of_the_good_ones(tmp_path: Path) -> None:
    with _app(tmp_path) as c:
        token = _sign(c)
        items = [{"problem_token": token, "answer": ANSWER}, {"problem_token": token + "x", "answer": ANSWER}]
        assert_problem(c.post("/grade/batch", json={"items": items}, headers=S), 403, "forbidden")
        r = c.post("/grade/batch", json={"problem_token": token, "answers": [ANSWER] * 3}, headers=S)
        assert r.status_code == 200, r.text


def test_concurrent_gradings_never_overrun(tmp_path: Path) -> None:
    """20 gradings at once through the app (each store call in a worker thread): exactly 3 pass."""
    with _app(tmp_path) as c:
        token = _sign(c)
        body = {"problem_token": token, "answer": ANSWER}
        statuses: list[int] = []
        barrier = threading.Barrier(20)

        def one() -> None:
            barrier.wait()
            statuses.append(c.post("/grade", json=body, headers=S).status_code)

        threads = [threading.Thread(target=one) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(statuses) == [200] * 3 + [403] * 17

"""Students' attempts at signed problems, counted where every worker (and, with Redis, every replica) sees them.

One operation, `consume(key, n, limit, expires_at)`, checks and takes n attempts atomically and all or
nothing: a batch of 3 answers with 2 attempts left is refused and takes none. Stores:

- `SqliteAttemptStore` (the default): a SQLite file in `settings.data_dir`, in WAL mode, one
  `BEGIN IMMEDIATE` transaction per consume (the check and the update under SQLite's write lock), so
  the worker processes of one host share it safely, and the counts survive a restart. The sqlite3
  calls are blocking (a wait for another process's write lock lasts up to `busy_timeout`), so they
  run in a worker thread, off the event loop.
- `RedisAttemptStore` (when `redis_url` is set): the same check and increment in one Lua script, the
  key expiring with the token; several replicas share it. Unreachable, it fails closed (503).
- `MemoryAttemptStore`: this process's memory only, for tests.

A store is made without touching the disk or the network (`make_attempt_store`); `open()`, run by
the application's lifespan (and by `python -m service serve` before the workers start), creates the
data directory and the database, and raises `AttemptStoreError` with a clear message when it cannot:
the service then refuses to start rather than grade without counting.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio.to_thread

from service.http.errors import ProblemError
from service.http.security.limits import LimiterUnavailable, RedisClient
from service.settings import Settings

log = logging.getLogger("service.attempts")

DB_NAME = "attempts.sqlite3"
BUSY_TIMEOUT_MS = 5000
PURGE_EVERY_S = 60.0


@dataclass(frozen=True)
class Consumed:
    """The outcome of a consume: whether the n attempts were granted, the attempts used after the
    call (unchanged when refused) and the limit."""

    granted: bool
    used: int
    limit: int

    @property
    def left(self) -> int:
        return max(0, self.limit - self.used)


class AttemptStoreError(RuntimeError):
    """The store cannot be opened (an unwritable data directory, say): the service must not start."""


class AttemptStoreUnavailable(ProblemError):
    """The store failed during a request: a 503, never a grading without counting (fail closed)."""

    def __init__(self) -> None:
        super().__init__(
            503,
            "unavailable",
            "The attempt store cannot be used right now; try again shortly.",
            headers={"Retry-After": "5"},
        )


class AttemptStore(Protocol):
    """Where attempts are counted; every method is safe to call from several tasks at once."""

    async def open(self) -> None:
        """Prepare the store (idempotent); AttemptStoreError when it cannot be used."""

    async def consume(self, key: str, n: int, limit: int, expires_at: float) -> Consumed:
        """Take n attempts of `key` if used + n <= limit, atomically; else take none.

        `expires_at` (Unix time, the token's expiry) is when the count may be forgotten."""

    async def ping(self) -> bool:
        """Whether the store answers (for /readyz)."""

    async def close(self) -> None:
        """Release connections (idempotent)."""


def _check(n: int, limit: int) -> None:
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n}")
    if limit < 0:
        raise ValueError(f"limit must not be negative, not {limit}")


class MemoryAttemptStore:
    """Counts in this process's memory: for tests (each worker would count on its own)."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    async def open(self) -> None:
        return None

    async def consume(self, key: str, n: int, limit: int, expires_at: float) -> Consumed:
        _check(n, limit)
        now = time.time()
        with self._lock:
            used, expires = self._counts.get(key, (0, expires_at))
            if expires <= now:
                used = 0
            if used + n > limit:
                return Consumed(False, used, limit)
            self._counts[key] = (used + n, expires_at)
            for stale in [k for k, (_, e) in self._counts.items() if e <= now]:
                del self._counts[stale]
            return Consumed(True, used + n, limit)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    key TEXT PRIMARY KEY,
    used INTEGER NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS attempts_expiry ON attempts (expires_at);
"""


class SqliteAttemptStore:
    """Attempts in a SQLite file shared by the worker processes of one host.

    One connection per store, used under a lock by one thread at a time (so `check_same_thread` is
    off); across processes, SQLite's own locking: WAL (readers never block the writer), a busy
    timeout, and `BEGIN IMMEDIATE`, which takes the write lock before the count is read, so no two
    consumes can both read the same count. Expired rows are deleted at most once a minute, inside a
    consume's transaction (and at open).
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / DB_NAME
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._next_purge = 0.0

    # --- blocking parts, run in a worker thread ---

    def _connect(self) -> sqlite3.Connection:
        """The open connection (made on first use); the lock must be held."""
        if self._conn is not None:
            return self._conn
        where = self.path.parent
        try:
            where.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise AttemptStoreError(
                f"cannot create or open the attempts database {self.path} "
                f"(GRADIENT_SERVICE_DATA_DIR={where}): {exc}; make the directory writable by this user"
            ) from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"journal_mode is {mode}, not wal")
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL: durable at each checkpoint, never corrupt
            conn.executescript(_SCHEMA)
            conn.execute("BEGIN IMMEDIATE")  # a read-only database or directory fails here, not later
            conn.execute("DELETE FROM attempts WHERE expires_at <= ?", (time.time(),))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.close()
            raise AttemptStoreError(
                f"cannot write the attempts database {self.path} (GRADIENT_SERVICE_DATA_DIR={where}): {exc}; "
                "the directory and the file must be writable by this user"
            ) from exc
        self._next_purge = time.monotonic() + PURGE_EVERY_S
        self._conn = conn
        return conn

    def _open(self) -> None:
        with self._lock:
            self._connect()

    def _consume(self, key: str, n: int, limit: int, expires_at: float) -> Consumed:
        with self._lock:
            try:
                conn = self._connect()
            except AttemptStoreError as exc:
                log.error("%s", exc)
                raise AttemptStoreUnavailable() from exc
            now = time.time()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    row = conn.execute("SELECT used, expires_at FROM attempts WHERE key = ?", (key,)).fetchone()
                    used = int(row[0]) if row is not None and float(row[1]) > now else 0
                    granted = used + n <= limit
                    if granted:
                        used += n
                        conn.execute(
                            "INSERT INTO attempts (key, used, expires_at) VALUES (?, ?, ?) "
                            "ON CONFLICT (key) DO UPDATE SET used = excluded.used, expires_at = excluded.expires_at",
                            (key, used, float(expires_at)),
                        )
                    if time.monotonic() >= self._next_purge:
                        conn.execute("DELETE FROM attempts WHERE expires_at <= ?", (now,))
                        self._next_purge = time.monotonic() + PURGE_EVERY_S
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:  # busy beyond the timeout, disk full, a file gone read-only...
                log.error("attempts database %s failed: %s", self.path, exc)
                raise AttemptStoreUnavailable() from exc
            return Consumed(granted, used, limit)

    def _ping(self) -> bool:
        with self._lock:
            try:
                self._connect().execute("SELECT 1").fetchone()
            except (AttemptStoreError, sqlite3.Error):
                return False
            return True

    def _close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # --- the protocol ---

    async def open(self) -> None:
        await anyio.to_thread.run_sync(self._open)

    async def consume(self, key: str, n: int, limit: int, expires_at: float) -> Consumed:
        _check(n, limit)
        return await anyio.to_thread.run_sync(self._consume, key, n, limit, expires_at)

    async def ping(self) -> bool:
        return await anyio.to_thread.run_sync(self._ping)

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self._close)

    def open_sync(self) -> None:
        """`open`, for callers without an event loop (the `serve` command's check before the workers start)."""
        self._open()

    def close_sync(self) -> None:
        self._close()


# KEYS[1] the counter; ARGV: n, limit, the expiry as a Unix time. Returns {granted (0/1), used}.
_CONSUME_LUA = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local n, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
if used + n > limit then return {0, used} end
used = redis.call('INCRBY', KEYS[1], n)
redis.call('EXPIREAT', KEYS[1], ARGV[3])
return {1, used}
"""


class RedisAttemptStore(RedisClient):
    """Attempts in Redis: the check and the increment in one Lua script (atomic on the server), the
    key expiring when the token does. Shared by every worker and replica; fails closed (503)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._script = self._redis.register_script(_CONSUME_LUA)

    async def open(self) -> None:
        return None  # Redis may come up after the service: /readyz says whether it answers

    async def consume(self, key: str, n: int, limit: int, expires_at: float) -> Consumed:
        _check(n, limit)
        try:
            granted, used = await self._script(
                keys=[f"gradient:attempts:{key}"], args=[n, limit, max(1, math.ceil(expires_at))]
            )
        except self._errors:
            raise LimiterUnavailable() from None  # fail closed: attempts that cannot be counted are not granted
        return Consumed(bool(int(granted)), int(used), limit)


def make_attempt_store(settings: Settings) -> SqliteAttemptStore | RedisAttemptStore:
    """Redis when `redis_url` is set, else SQLite in `data_dir` (nothing is opened yet)."""
    if settings.redis_url:
        return RedisAttemptStore(settings.redis_url)
    return SqliteAttemptStore(settings.data_dir)

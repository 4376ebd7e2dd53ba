"""A small closed-loop load generator for the load and fault tests: N client threads, each with its
own keep-alive connection, posting the reference requests back to back for a fixed time.

Every loop is bounded twice, by time and by a request count, and stops by itself. Traffic goes only
to the base URL given, which the tests make a loopback address.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from tests.deploy.tools import GRADE_REQUEST

MAX_REQUESTS_PER_CLIENT = 200_000
JSON_HEADERS = {"Content-Type": "application/json"}


def reference_gradient(m: int = 100, n: int = 4, seed: int = 7) -> dict[str, Any]:
    """The reference shape: logistic regression on m × n (100 × 4), from a fixed seed."""
    rng = np.random.default_rng(seed)
    X = np.round(rng.normal(size=(m, n)), 6)
    y = (rng.random(m) < 0.5).astype(int)
    w = np.round(rng.normal(size=n), 6)
    return {
        "model": "logistic_regression",
        "parameters": {"w": w.tolist(), "b": 0.25},
        "data": {"X": X.tolist(), "y": y.tolist()},
    }


# (path, body): one /grade for every GRADE_EVERY requests, the rest /gradient
GRADIENT = ("/gradient", json.dumps(reference_gradient()).encode())
GRADE = ("/grade", json.dumps(GRADE_REQUEST).encode())
GRADE_EVERY = 5


@dataclass(frozen=True, slots=True)
class Outcome:
    path: str
    start: float  # time.monotonic()
    end: float
    status: int | None  # None: a transport error (no HTTP answer)
    error: str | None = None
    body_ok: bool = True  # the body is byte for byte the reference answer


@dataclass
class Load:
    """`concurrency` clients posting to `base` until `duration` seconds pass or `stop()` is called."""

    base: str
    concurrency: int
    duration: float
    timeout: float = 10.0
    outcomes: list[Outcome] = field(default_factory=list)
    _in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _expected: dict[str, bytes] = field(default_factory=dict)
    started: float = 0.0
    finished: float = 0.0

    def __enter__(self) -> Load:
        with httpx.Client(base_url=self.base, timeout=self.timeout) as client:
            for path, body in (GRADIENT, GRADE):
                r = client.post(path, content=body, headers=JSON_HEADERS)
                assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:500]}"
                self._expected[path] = r.content
        self.started = time.monotonic()
        for i in range(self.concurrency):
            t = threading.Thread(target=self._client, args=(i,), name=f"load-{i}", daemon=True)
            self._threads.append(t)
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.timeout + 5)
        assert not any(t.is_alive() for t in self._threads), "a load client did not stop"
        if not self.finished:
            self.finished = time.monotonic()

    def wait(self) -> None:
        """Until the duration has passed (the clients stop by themselves then)."""
        for t in self._threads:
            t.join(timeout=self.duration + self.timeout + 5)
        self.stop()

    def _client(self, i: int) -> None:
        deadline = self.started + self.duration
        with httpx.Client(base_url=self.base, timeout=self.timeout, limits=httpx.Limits(max_connections=1)) as c:
            for n in range(MAX_REQUESTS_PER_CLIENT):
                if self._stop.is_set() or time.monotonic() >= deadline:
                    return
                path, body = GRADE if (n + i) % GRADE_EVERY == 0 else GRADIENT
                with self._lock:
                    self._in_flight += 1
                start = time.monotonic()
                try:
                    r = c.post(path, content=body, headers=JSON_HEADERS)
                except httpx.TransportError as exc:
                    outcome = Outcome(path, start, time.monotonic(), None, f"{type(exc).__name__}: {exc}")
                else:
                    ok = r.status_code != 200 or r.content == self._expected[path]
                    outcome = Outcome(path, start, time.monotonic(), r.status_code, body_ok=ok)
                finally:
                    with self._lock:
                        self._in_flight -= 1
                self.outcomes.append(outcome)

    # ---- figures --------------------------------------------------------------------------

    def transport_errors(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status is None]

    def server_errors(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status is not None and o.status >= 500]

    def figures(self) -> dict[str, Any]:
        elapsed = (self.finished or time.monotonic()) - self.started
        answered = [o for o in self.outcomes if o.status is not None]
        lat = np.array([o.end - o.start for o in answered]) * 1000 if answered else np.array([0.0])
        by_path = Counter(o.path for o in self.outcomes)
        return {
            "concurrency": self.concurrency,
            "duration_s": round(elapsed, 3),
            "requests": len(self.outcomes),
            "requests_per_path": dict(by_path),
            "req_per_s": round(len(self.outcomes) / elapsed, 1) if elapsed > 0 else 0.0,
            "latency_ms": {
                "p50": round(float(np.percentile(lat, 50)), 2),
                "p90": round(float(np.percentile(lat, 90)), 2),
                "p99": round(float(np.percentile(lat, 99)), 2),
                "max": round(float(lat.max()), 2),
            },
            "statuses": {str(k): v for k, v in sorted(Counter(o.status for o in answered).items())},
            "status_5xx": len(self.server_errors()),
            "transport_errors": len(self.transport_errors()),
            "wrong_bodies": sum(not o.body_ok for o in self.outcomes),
        }


def children(pid: int) -> list[int]:
    """The pids whose parent is pid (from /proc)."""
    out = []
    for stat in _proc_stats():
        # /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after its ')'
        pid_s, rest = stat.split(" ", 1)
        fields = rest.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            out.append(int(pid_s))
    return sorted(out)


def workers(pid: int) -> list[int]:
    """uvicorn's worker processes under the supervisor pid (multiprocessing's spawned children,
    not its resource tracker)."""
    found = []
    for child in children(pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ")
        except OSError:
            continue
        if b"spawn_main" in cmdline or b"multiprocessing.spawn" in cmdline:
            found.append(child)
    return found


def _proc_stats() -> list[str]:
    stats = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stats.append(f.read())
        except OSError:
            continue  # exited meanwhile
    return stats


def open_sockets(pid: int) -> int:
    """How many sockets pid holds open (its listening socket and its connections)."""
    n = 0
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return 0
    for fd in fds:
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            continue
    return n

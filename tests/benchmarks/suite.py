"""The performance suite of issue 6: the service against its anchors, in separate processes, interleaved.

    make bench                                        # the full run (4–8 min), writes docs/perf/
    python -m tests.benchmarks.suite --only compute,small --rounds 3
    python -m tests.benchmarks.suite --quick          # a smoke check of every section (under 1 min)

Run it with the bench venv (.venv-bench, made by `make bench` from constraints.txt and
tests/benchmarks/requirements.txt: torch, jax, matplotlib). Sections:

1. small    req/s of POST /gradient on a ~9 KB 100×4 logistic body: the service (uvicorn, one worker,
            one BLAS thread) against plain FastAPI (pydantic body model) and a bare ASGI app; wrk
            (or the async fallback) posts from the other core; CPU time per request from /proc.
2. big      one ~42 MB 100,000×20 body, and its ~16 MB multipart form with X as .npy: end-to-end time
            and peak memory (VmHWM of a fresh server) against the floor (orjson + numpy in a process of
            its own) and plain FastAPI.
3. compute  logistic loss + gradients at m = 10⁶, n = 10 and 100, both cores: the service's
            `gradients` (and `evaluate`) against naive numpy, PyTorch autograd, jax.jit(value_and_grad) and X @ w.
4. explain  evaluate with explain "factors" against gradients without it, at m = 10⁴, in-process and over HTTP.
5. grading  a batch of 1,000 answers to one problem (bench_grade_batch's class).
6. growth   gradients time against m and n; plot in docs/perf/cost-growth.svg.

Every figure is the median over `--rounds` rounds; in each round the contenders run one after
the other, in a rotated order, so that a slow spell of the machine hits all of them. Only
127.0.0.1 is loaded, every run is bounded in time, and every server is stopped at the end.
A full run (no --only, no --quick) writes docs/perf/latest.md, latest.json and cost-growth.svg,
and puts the tables in docs/performance.md (between its perf-table markers);
a partial or quick run writes to .bench/ (not committed). A script, not a test: pytest does not
collect it (no test_*.py file here).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from tests.benchmarks.anchor_numpy import Array, logistic_body, logistic_numpy, logistic_problem

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SECTIONS = ("small", "big", "compute", "explain", "grading", "growth")
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
THREAD_VARS = (*ONE_THREAD, "XLA_FLAGS")
CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVER_CORE, CLIENT_CORE = "0", "1"
# The targets of issue 18: small requests at least twice plain FastAPI's (req/s, CPU per request);
# compute at most 0.8× PyTorch autograd at every size and 1.5× one read of X at n = 100.
SMALL_TARGET = 2.0
TORCH_TARGET = 0.8
READ_TARGET = 1.5
RTOL = 1e-9


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def rotated(items: list[str], k: int) -> list[str]:
    k %= len(items)
    return items[k:] + items[:k]


def has_taskset() -> bool:
    return shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


def pinned(cmd: list[str], cpus: str | None) -> list[str]:
    return ["taskset", "-c", cpus, *cmd] if cpus is not None and has_taskset() else cmd


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def run_child(args: list[str], env: dict[str, str], cpus: str | None = None, timeout: float = 600) -> dict[str, Any]:
    """Run `python -m tests.benchmarks.<args>` and return its RESULT line; abort the suite on failure."""
    cmd = pinned([sys.executable, "-m", *args], cpus)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"aborted: {' '.join(args[:3])} exited with status {proc.returncode}")
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])  # type: ignore[no-any-return]
    raise SystemExit(f"aborted: {' '.join(args[:3])} printed no result")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- servers ------------------------------------------------------------------------------------------

SERVER_LABELS = {
    "service": "service POST /gradient",
    "service2": "service, 2 workers",
    "plain": "plain FastAPI (pydantic list[list[float]])",
    "bare": "bare ASGI (orjson → numpy → orjson)",
}


@dataclass
class Server:
    kind: str  # service, service2, plain, bare
    log_dir: Path
    cpus: str | None = SERVER_CORE
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        host = ["--host", "127.0.0.1", "--port", str(self.port)]
        if self.kind in ("service", "service2"):
            workers = "2" if self.kind == "service2" else "1"
            return [sys.executable, "-m", "service", "serve", *host, "--workers", workers]
        app = {"plain": "plain_app", "bare": "bare_app"}[self.kind]
        uvicorn = [sys.executable, "-m", "uvicorn", f"tests.benchmarks.anchor_apps:{app}", *host]
        return [*uvicorn, "--workers", "1", "--no-access-log", "--log-level", "warning"]

    def env(self) -> dict[str, str]:
        if self.kind in ("service", "service2"):
            # No access log lines, as the anchors run (--no-access-log): one JSON line per request
            # costs the service about 50 µs of its ~0.4 ms (service/observability.py), which is a
            # feature, not part of what is compared. Its other middleware (request ids, metrics) stays.
            return clean_env(**ONE_THREAD, GRADIENT_SERVICE_LOG_LEVEL="warning")
        return clean_env(**ONE_THREAD)

    def start(self, probe: bytes) -> Server:
        self.port = free_port()
        cpus = None if self.kind == "service2" else self.cpus
        log_file = open(self.log_dir / f"{self.kind}-{self.port}.log", "wb")  # noqa: SIM115 (kept for the process)
        self.proc = subprocess.Popen(
            pinned(self.command(), cpus), cwd=ROOT, env=self.env(), stdout=log_file, stderr=log_file
        )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"aborted: the {self.kind} server exited; see {log_file.name}")
            with contextlib.suppress(httpx.TransportError):
                r = httpx.post(self.url + "/gradient", content=probe, headers=JSON, timeout=10)
                if r.status_code == 200:
                    if self.kind == "service2":  # both workers up: a few more answers
                        for _ in range(20):
                            httpx.post(self.url + "/gradient", content=probe, headers=JSON, timeout=10)
                    return self
            if time.monotonic() > deadline:
                raise SystemExit(f"aborted: the {self.kind} server did not answer in 60 s")
            time.sleep(0.1)

    def pids(self) -> list[int]:
        assert self.proc is not None
        out, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*/children"):
                with contextlib.suppress(OSError):
                    todo.extend(int(c) for c in task.read_text().split())
        return out

    def cpu_seconds(self) -> float:
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        return total / CLK_TCK

    def vm_hwm_bytes(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


JSON = {"Content-Type": "application/json"}


@contextlib.contextmanager
def serving(kind: str, log_dir: Path, probe: bytes) -> Iterator[Server]:
    server = Server(kind, log_dir)
    try:
        yield server.start(probe)
    finally:
        server.stop()


@contextlib.contextmanager
def on_cores(cpus: str) -> Iterator[None]:
    """Pin this process (the HTTP client) to `cpus` for a while, where the machine has the cores."""
    before = os.sched_getaffinity(0)
    if has_taskset():
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def raw_post(
    port: int, path: str, body: bytes, timeout: float = 300, content_type: str = "application/json"
) -> tuple[int, bytes, float]:
    """POST over a plain socket: (status, body, seconds from the first byte sent to the last received).

    httpx spends ~0.2 s of Python in sending a 42 MB body; this client costs next to nothing."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        t0 = time.perf_counter()
        sock.sendall(head)
        sock.sendall(body)
        data = bytearray()
        need = -1
        while need < 0 or len(data) < need:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            data += chunk
            if need < 0 and b"\r\n\r\n" in data:
                header = bytes(data).split(b"\r\n\r\n", 1)[0]
                length = re.search(rb"(?i)content-length:\s*(\d+)", header)
                need = len(header) + 4 + int(length.group(1)) if length else 1 << 62
        seconds = time.perf_counter() - t0
    header, _, payload = bytes(data).partition(b"\r\n\r\n")
    return int(header.split()[1]), payload, seconds


def check_answer(what: str, answer: dict[str, Any], want: tuple[float, Any, float]) -> None:
    loss, gw, gb = want
    got_w = np.asarray(answer["gradients"]["w"], dtype=np.float64)
    ok = (
        np.isclose(answer["loss"], loss, rtol=RTOL, atol=0)
        and np.allclose(got_w, gw, rtol=RTOL, atol=1e-15)
        and np.isclose(answer["gradients"]["b"], gb, rtol=RTOL, atol=1e-15)
    )
    if not ok:
        raise SystemExit(f"aborted: {what} answers {answer['loss']}, {got_w}, {answer['gradients']['b']}; want {want}")


# --- load generation ------------------------------------------------------------------------------

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def load(url: str, body_path: Path, seconds: float, connections: int, cpus: str | None) -> dict[str, float]:
    """Closed-loop POSTs of the body for `seconds`: wrk with post.lua, or the async fallback."""
    if shutil.which("wrk"):
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(HERE / "post.lua"), url]
        out = subprocess.run(
            pinned(cmd, cpus),
            env={**os.environ, "BENCH_BODY": str(body_path)},
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        ).stdout
        requests = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
        rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
        if not (requests and rps):
            raise SystemExit(f"aborted: cannot read wrk's output:\n{out}")
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        p50 = re.search(r"50%\s+([\d.]+)(us|ms|s|m)", out)
        return {
            "seconds": float(requests.group(2)) * _UNITS[requests.group(3)],
            "requests": int(requests.group(1)),
            "rps": float(rps.group(1)),
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "errors": sum(int(g) for g in errors.groups()) if errors else 0,
            "p50_s": float(p50.group(1)) * _UNITS[p50.group(2)] if p50 else float("nan"),
        }
    args = ["tests.benchmarks.async_load", url, str(body_path), "--seconds", str(seconds)]
    res = run_child([*args, "--connections", str(connections)], clean_env(), cpus, timeout=seconds + 60)
    return {**res, "p50_s": float("nan")}


# --- the suite ----------------------------------------------------------------------------------------


@dataclass
class Plan:
    rounds: int
    quick: bool
    sections: tuple[str, ...]
    out_dir: Path
    work: Path
    load_seconds: float = 5.0
    connections: int = 8
    compute_sizes: list[tuple[int, int]] = field(default_factory=lambda: [(1_000_000, 10), (1_000_000, 100)])
    big_shape: tuple[int, int] = (100_000, 20)
    explain_m: int = 10_000
    grading_answers: int = 1000
    growth_m: list[int] = field(default_factory=lambda: [100, 1_000, 10_000, 100_000, 1_000_000])
    growth_n: list[int] = field(default_factory=lambda: [1, 3, 10, 30, 100, 300, 1000])
    growth_http_m: list[int] = field(default_factory=lambda: [100, 1_000, 10_000])

    @classmethod
    def make(cls, args: argparse.Namespace, work: Path) -> Plan:
        sections = tuple(args.only.split(",")) if args.only else SECTIONS
        unknown = set(sections) - set(SECTIONS)
        if unknown:
            raise SystemExit(f"unknown sections {sorted(unknown)}: choose from {', '.join(SECTIONS)}")
        full = not args.quick and not args.only
        out = args.out or (ROOT / "docs" / "perf" if full else ROOT / ".bench")
        plan = cls(args.rounds or (1 if args.quick else 5), args.quick, sections, out, work)
        if args.quick:
            plan.load_seconds, plan.compute_sizes, plan.big_shape = 1.0, [(100_000, 10), (100_000, 100)], (10_000, 20)
            plan.explain_m, plan.grading_answers = 2_000, 200
            plan.growth_m, plan.growth_n, plan.growth_http_m = [100, 10_000], [1, 100], [100, 1_000]
        return plan


def small_body() -> tuple[bytes, tuple[float, Any, float]]:
    X, y, w, b = logistic_problem(100, 4, seed=7, digits=None)
    return json.dumps(logistic_body(X, y, w, b)).encode(), logistic_numpy(X, y, w, b)


def section_small(plan: Plan) -> dict[str, Any]:
    body, want = small_body()
    body_path = plan.work / "small.json"
    body_path.write_bytes(body)
    kinds = ["service", "plain", "bare", "service2"]
    raw: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    servers = {k: Server(k, plan.work) for k in kinds}
    try:
        for k in kinds:  # all up at once: an idle server costs nothing; each is checked first
            servers[k].start(body)
            check_answer(
                SERVER_LABELS[k], httpx.post(servers[k].url + "/gradient", content=body, headers=JSON).json(), want
            )
            load(servers[k].url + "/gradient", body_path, 1.0, plan.connections, CLIENT_CORE)  # warm-up
        for r in range(plan.rounds):
            for k in rotated(kinds, r):
                s = servers[k]
                cpu0 = s.cpu_seconds()
                res = load(
                    s.url + "/gradient",
                    body_path,
                    plan.load_seconds,
                    plan.connections,
                    None if k == "service2" else CLIENT_CORE,
                )
                cpu = s.cpu_seconds() - cpu0
                res["cpu_per_request_s"] = cpu / max(res["requests"], 1)
                res["server_busy"] = cpu / res["seconds"]  # < 1 (one worker): other load took its core
                if res["non2xx"] or res["errors"]:
                    raise SystemExit(f"aborted: {k} answered {res['non2xx']} non-2xx, {res['errors']} socket errors")
                raw[k].append(res)
                log(
                    f"small round {r + 1}: {k} {res['rps']:.0f} req/s, "
                    f"{res['cpu_per_request_s'] * 1e6:.0f} µs CPU/request"
                )
    finally:
        for s in servers.values():
            s.stop()
    return {
        "body_bytes": len(body),
        "load_seconds": plan.load_seconds,
        "connections": plan.connections,
        "generator": "wrk" if shutil.which("wrk") else "tests.benchmarks.async_load",
        "pinned": has_taskset(),
        "raw": raw,
        "rps": {k: median([x["rps"] for x in v]) for k, v in raw.items()},
        "cpu_per_request_s": {k: median([x["cpu_per_request_s"] for x in v]) for k, v in raw.items()},
        "p50_s": {k: median([x["p50_s"] for x in v]) for k, v in raw.items()},
        "server_busy": {k: median([x["server_busy"] for x in v]) for k, v in raw.items()},
    }


NPY_BOUNDARY = "gradient-service-bench-7f3a"
NPY_CONTENT_TYPE = f"multipart/form-data; boundary={NPY_BOUNDARY}"


def npy_multipart_body(doc: dict[str, Any], X: Array) -> bytes:
    """The multipart/form-data form of a /gradient body: the JSON without X, and X as a .npy part."""
    request = {**doc, "data": {k: v for k, v in doc["data"].items() if k != "X"}}
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(X, dtype=np.float64))
    b = NPY_BOUNDARY.encode()
    return b"".join(
        [
            b"--" + b + b'\r\nContent-Disposition: form-data; name="request"\r\nContent-Type: application/json\r\n\r\n',
            json.dumps(request).encode(),
            b"\r\n--" + b + b'\r\nContent-Disposition: form-data; name="X"; filename="X.npy"\r\n',
            b"Content-Type: application/x-npy\r\n\r\n",
            buf.getvalue(),
            b"\r\n--" + b + b"--\r\n",
        ]
    )


def section_big(plan: Plan) -> dict[str, Any]:
    m, n = plan.big_shape
    X, y, w, b = logistic_problem(m, n, seed=17, digits=None)
    want = logistic_numpy(X, y, w, b)
    doc = logistic_body(X, y, w, b)
    body = json.dumps(doc).encode()
    npy_body = npy_multipart_body(doc, X)
    del X, doc
    body_path = plan.work / "big.json"
    body_path.write_bytes(body)
    probe, _ = small_body()
    kinds = ["service", "service-npy", "plain", "bare", "floor"]
    sizes = {k: len(npy_body) if k == "service-npy" else len(body) for k in kinds}
    raw: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    for r in range(plan.rounds):
        for k in rotated(kinds, r):
            if k == "floor":
                res = run_child(
                    ["tests.benchmarks.worker", "floor", "--body", str(body_path)], clean_env(**ONE_THREAD), SERVER_CORE
                )
                check_answer(
                    "the floor", {"loss": res["loss"], "gradients": {"w": res["grad_w"], "b": res["grad_b"]}}, want
                )
                entry = {"seconds": res["seconds"], "peak_extra_bytes": res["peak_extra_bytes"]}
            else:
                npy = k == "service-npy"
                with serving("service" if npy else k, plan.work, probe) as s, on_cores(CLIENT_CORE):
                    base = s.vm_hwm_bytes()  # a fresh server, after one small request
                    if npy:
                        status, payload, seconds = raw_post(
                            s.port, "/gradient", npy_body, content_type=NPY_CONTENT_TYPE
                        )
                    else:
                        status, payload, seconds = raw_post(s.port, "/gradient", body)
                    peak = s.vm_hwm_bytes()
                if status != 200:
                    raise SystemExit(f"aborted: {k} answered {status}: {payload[:300]!r}")
                check_answer(SERVER_LABELS.get(k, k), json.loads(payload), want)
                entry = {"seconds": seconds, "peak_extra_bytes": peak - base, "baseline_bytes": base}
            raw[k].append(entry)
            log(f"big round {r + 1}: {k} {entry['seconds']:.2f} s, +{entry['peak_extra_bytes'] / 2**20:.0f} MiB")
    return {
        "shape": [m, n],
        "body_bytes": len(body),
        "npy_body_bytes": len(npy_body),
        "sizes": sizes,
        "raw": raw,
        "seconds": {k: median([x["seconds"] for x in v]) for k, v in raw.items()},
        "peak_extra_bytes": {k: median([x["peak_extra_bytes"] for x in v]) for k, v in raw.items()},
    }


COMPUTE_LABELS = {
    "service": "service `gradients(problem)` (POST /gradient's path)",
    "evaluate": "service `evaluate(problem)` (keeps per-example arrays)",
    "fused": "service, entry point given by --fused-entry",
    "numpy": "naive numpy",
    "torch": "PyTorch autograd (2 threads)",
    "jax": "jax.jit(value_and_grad), x64",
    "read": "one read of X (`X @ w`, BLAS gemv)",
}


def section_compute(plan: Plan) -> dict[str, Any]:
    data = plan.work / "compute"
    sizes = ",".join(f"{m}x{n}" for m, n in plan.compute_sizes)
    run_child(["tests.benchmarks.worker", "write-data", "--data", str(data), "--sizes", sizes], clean_env())
    impls = ["service", "evaluate", "fused", "numpy", "torch", "jax", "read"]
    raw: dict[str, list[dict[str, Any]]] = {k: [] for k in impls}
    fused_name = None
    for r in range(plan.rounds):
        for impl in rotated(impls, r):
            if impl == "fused" and r > 0 and fused_name is None:
                continue
            res = run_child(
                ["tests.benchmarks.worker", "compute", impl, "--data", str(data), "--sizes", sizes], clean_env()
            )
            if impl == "fused":
                fused_name = res.get("entry")
                if fused_name is None:
                    continue
            raw[impl].append(res)
            log(
                f"compute round {r + 1}: {impl} "
                + ", ".join(f"{s} {e['min'] * 1e3:.1f} ms" for s, e in res["sizes"].items())
            )
    if not raw["fused"]:
        del raw["fused"]
    for impl, results in raw.items():  # every anchor computed the service's numbers at full size too
        for res in results:
            for size, e in res["sizes"].items():
                ref = raw["service"][0]["sizes"][size]
                if "loss" in e:
                    check_answer(
                        f"{impl} at {size}",
                        {"loss": e["loss"], "gradients": {"w": e["grad_w"], "b": e["grad_b"]}},
                        (ref["loss"], np.asarray(ref["grad_w"]), ref["grad_b"]),
                    )
    for results in raw.values():
        for res in results:
            for e in res["sizes"].values():
                e.pop("grad_w", None)
    medians = {
        impl: {size: median([res["sizes"][size]["min"] for res in results]) for size in results[0]["sizes"]}
        for impl, results in raw.items()
    }
    return {"sizes": [f"{m}x{n}" for m, n in plan.compute_sizes], "fused": fused_name, "raw": raw, "seconds": medians}


def _http_times(url: str, bodies: dict[str, bytes], reps: int) -> dict[str, float]:
    """Median seconds of sequential POSTs of each body, interleaved, after one warm-up each."""
    times: dict[str, list[float]] = {k: [] for k in bodies}
    with httpx.Client(timeout=120) as client:
        for body in bodies.values():
            client.post(url, content=body, headers=JSON).raise_for_status()
        for _ in range(reps):
            for k, body in bodies.items():
                t0 = time.perf_counter()
                r = client.post(url, content=body, headers=JSON)
                times[k].append(time.perf_counter() - t0)
                r.raise_for_status()
    return {k: median(v) for k, v in times.items()}


def section_explain(plan: Plan) -> dict[str, Any]:
    m, n = plan.explain_m, 4
    X, y, w, b = logistic_problem(m, n, seed=5)
    bodies = {
        "none": json.dumps(logistic_body(X, y, w, b)).encode(),
        "factors": json.dumps(logistic_body(X, y, w, b, explain="factors")).encode(),
    }
    probe, _ = small_body()
    raw: dict[str, list[dict[str, float]]] = {"in_process": [], "http": []}
    for r in range(plan.rounds):
        res = run_child(["tests.benchmarks.worker", "explain", "--m", str(m), "--n", str(n)], clean_env(**ONE_THREAD))
        raw["in_process"].append({"none": res["none"], "factors": res["factors"]})
        with serving("service", plan.work, probe) as s, on_cores(CLIENT_CORE):
            raw["http"].append(_http_times(s.url + "/gradient", bodies, 5 if plan.quick else 15))
        log(f"explain round {r + 1}: in-process {raw['in_process'][-1]}, HTTP {raw['http'][-1]}")
    return {
        "m": m,
        "n": n,
        "raw": raw,
        "seconds": {where: {k: median([x[k] for x in v]) for k in ("none", "factors")} for where, v in raw.items()},
    }


def section_grading(plan: Plan) -> dict[str, Any]:
    from tests.benchmarks.bench_grade_batch import PROBLEM, make_class

    answers, _ = make_class(plan.grading_answers, 1)
    body = json.dumps({"problem": PROBLEM, "answers": answers}, allow_nan=True).encode()
    probe, _ = small_body()
    raw: dict[str, list[float]] = {"in_process": [], "http": []}
    for r in range(plan.rounds):
        res = run_child(
            ["tests.benchmarks.worker", "grading", "--answers", str(plan.grading_answers)], clean_env(**ONE_THREAD)
        )
        raw["in_process"].append(res["seconds"])
        with serving("service", plan.work, probe) as s, on_cores(CLIENT_CORE):
            raw["http"].append(_http_times(s.url + "/grade/batch", {"batch": body}, 3)["batch"])
        log(f"grading round {r + 1}: in-process {res['seconds']:.3f} s, HTTP {raw['http'][-1]:.3f} s")
    return {
        "answers": plan.grading_answers,
        "body_bytes": len(body),
        "raw": raw,
        "seconds": {k: median(v) for k, v in raw.items()},
    }


def section_growth(plan: Plan) -> dict[str, Any]:
    n_fixed, m_fixed = 20, 10_000
    args = ["tests.benchmarks.worker", "growth", "--m-list", ",".join(map(str, plan.growth_m))]
    args += ["--n-list", ",".join(map(str, plan.growth_n)), "--m-fixed", str(m_fixed), "--n-fixed", str(n_fixed)]
    inproc = run_child(args, clean_env(**ONE_THREAD))  # one thread: the steadiest curve on a shared machine
    probe, _ = small_body()
    http = []
    with serving("service", plan.work, probe) as s, on_cores(CLIENT_CORE):
        for m in plan.growth_http_m:
            X, y, w, b = logistic_problem(m, n_fixed, seed=13, digits=None)
            body = json.dumps(logistic_body(X, y, w, b)).encode()
            t = _http_times(s.url + "/gradient", {"b": body}, 5 if m >= 10_000 else 15)["b"]
            http.append({"m": m, "n": n_fixed, "seconds": t, "body_bytes": len(body)})
    log(f"growth: {len(inproc['vs_m']) + len(inproc['vs_n'])} in-process points, {len(http)} HTTP points")
    return {**inproc, "http": http}


# --- report -------------------------------------------------------------------------------------------


def _ms(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:,.0f} µs"
    return f"{s * 1e3:,.1f} ms" if s < 10 else f"{s:,.1f} s"


def _x(r: float) -> str:
    return f"{r:.2f}×"


def _mib(b: float) -> str:
    return f"{b / 2**20:,.0f} MiB"


def _status(ok: bool) -> str:
    return "met" if ok else "**not met**"


def report(results: dict[str, Any], meta: dict[str, Any]) -> str:
    targets: list[tuple[str, str, str, bool]] = []
    parts: list[str] = []
    if "small" in results:
        s = results["small"]
        rps, cpu = s["rps"], s["cpu_per_request_s"]
        targets.append(
            (
                "1. small: service req/s ÷ plain FastAPI req/s",
                _x(rps["service"] / rps["plain"]),
                f"≥ {SMALL_TARGET:g}×",
                rps["service"] / rps["plain"] >= SMALL_TARGET,
            )
        )
        targets.append(
            (
                "1. small, CPU view: plain FastAPI CPU per request ÷ service's",
                _x(cpu["plain"] / cpu["service"]),
                f"≥ {SMALL_TARGET:g}×",
                cpu["plain"] / cpu["service"] >= SMALL_TARGET,
            )
        )
        pin = (
            f"server on core {SERVER_CORE}, {s['generator']} on core {CLIENT_CORE} (taskset)"
            if s["pinned"]
            else "not pinned (taskset or a second core missing)"
        )
        lines = [
            f"### 1. Small request: {s['body_bytes']:,} B body (100×4 logistic), {s['generator']}, "
            f"{s['connections']} connections, {s['load_seconds']:g} s per run; {pin}; the 2-worker service and "
            "its load generator are not pinned. One worker, OMP/OpenBLAS threads = 1 everywhere.",
            "",
            "| server | req/s | vs plain FastAPI | vs bare ASGI | CPU per request (server) | server CPU busy "
            "| latency p50 |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for k in ("service", "plain", "bare", "service2"):
            lines.append(
                f"| {SERVER_LABELS[k]} | {rps[k]:,.0f} | {_x(rps[k] / rps['plain'])} | {_x(rps[k] / rps['bare'])} "
                f"| {cpu[k] * 1e6:,.0f} µs | {s['server_busy'][k]:.0%} | {s['p50_s'][k] * 1e3:.2f} ms |"
            )
        lines.append("")
        lines.append(
            f"CPU per request, plain FastAPI ÷ service: {_x(cpu['plain'] / cpu['service'])} "
            "(the fairest figure on 2 cores: it does not depend on how the load generator or other processes "
            "share the machine). Server CPU busy = the server's CPU seconds ÷ the run's wall time: below 100% for "
            "a one-worker server, something else (the load generator, another process) took part of its core."
        )
        raw = s.get("raw", {})
        pairs = [
            p["cpu_per_request_s"] / q["cpu_per_request_s"]
            for p, q in zip(raw.get("plain", []), raw.get("service", []), strict=False)
            if q.get("cpu_per_request_s")
        ]
        if len(pairs) > 1:
            lines.append("")
            lines.append(
                "The same ratio round by round (each round runs the servers back to back): "
                + ", ".join(_x(r) for r in pairs)
                + f"; their median {_x(median(pairs))}. The target's figure above is the ratio of the medians; "
                "on this shared machine the plain endpoint's own CPU per request moves by tens of percent between "
                "rounds, and the two figures differ by as much."
            )
        parts.append("\n".join(lines))
    if "big" in results:
        b = results["big"]
        sec, mem, size = b["seconds"], b["peak_extra_bytes"], b["body_bytes"]
        targets.append(
            (
                "2. big: service time ÷ floor",
                _x(sec["service"] / sec["floor"]),
                "≤ 1.2×",
                sec["service"] / sec["floor"] <= 1.2,
            )
        )
        targets.append(
            (
                "2. big: service peak extra memory ÷ body size",
                _x(mem["service"] / size),
                "≤ 4×",
                mem["service"] / size <= 4,
            )
        )
        m, n = b["shape"]
        lines = [
            f"### 2. Big request: {m:,}×{n} logistic, {size / 2**20:,.1f} MiB body; end-to-end time of one POST on a "
            "fresh server (pinned, one BLAS thread; the client on the other core); peak memory = VmHWM after the "
            "request − VmHWM after one small warm-up request.",
            "",
            "| what | time | vs floor | peak extra memory | ÷ body size |",
            "|---|---:|---:|---:|---:|",
        ]
        names = {
            **SERVER_LABELS,
            "service-npy": "service POST /gradient, X as a .npy part (multipart/form-data)",
            "floor": "floor: orjson.loads + np.asarray + numpy + orjson.dumps (own process)",
        }
        sizes = b.get("sizes", {})
        for k in ("service", "service-npy", "plain", "bare", "floor"):
            if k not in sec:
                continue
            own = sizes.get(k, size)
            lines.append(
                f"| {names[k]} | {_ms(sec[k])} | {_x(sec[k] / sec['floor'])} | {_mib(mem[k])} | {_x(mem[k] / own)} |"
            )
        if "service-npy" in sec:
            lines.append("")
            lines.append(
                f"The .npy form's body is {b['npy_body_bytes'] / 2**20:,.1f} MiB (its memory ratio is to that size); "
                f"it answers the same numbers {_x(sec['service'] / sec['service-npy'])} faster than the JSON body."
            )
        parts.append("\n".join(lines))
    if "compute" in results:
        c = results["compute"]
        sec = c["seconds"]
        big_n = [s for s in c["sizes"] if s.endswith("x100")]
        for size in c["sizes"]:
            targets.append(
                (
                    f"3. compute {size}: service ÷ PyTorch autograd",
                    _x(sec["service"][size] / sec["torch"][size]),
                    f"≤ {TORCH_TARGET:g}×",
                    sec["service"][size] <= TORCH_TARGET * sec["torch"][size],
                )
            )
        for size in big_n:
            targets.append(
                (
                    f"3. compute {size}: service ÷ one read of X",
                    _x(sec["service"][size] / sec["read"][size]),
                    f"≤ {READ_TARGET:g}×",
                    sec["service"][size] <= READ_TARGET * sec["read"][size],
                )
            )
        header = "| implementation | " + " | ".join(f"{s} | ÷ torch | ÷ jax | ÷ read" for s in c["sizes"]) + " |"
        lines = [
            "### 3. Compute: logistic loss + gradients, float64, m×n as given; one process per implementation "
            "and round, both cores (OpenBLAS, torch and XLA use 2 threads); the Objective, the tensors and the jit "
            "compilation are made outside the timing; in each process the best of 5 calls after a warm-up (other "
            "work on the machine only adds time), then the median over the rounds.",
            "",
            header,
            "|---|" + "---:|---:|---:|---:|" * len(c["sizes"]),
        ]
        for impl in sec:
            cells = " | ".join(
                f"{_ms(sec[impl][s])} | {_x(sec[impl][s] / sec['torch'][s])} | {_x(sec[impl][s] / sec['jax'][s])} "
                f"| {_x(sec[impl][s] / sec['read'][s])}"
                for s in c["sizes"]
            )
            label = COMPUTE_LABELS[impl] + (f" (`{c['fused']}`)" if impl == "fused" else "")
            lines.append(f"| {label} | {cells} |")
        parts.append("\n".join(lines))
    if "explain" in results:
        e = results["explain"]["seconds"]
        for where, label in (("in_process", "in-process"), ("http", "over HTTP, encoding included")):
            ratio = e[where]["factors"] / e[where]["none"]
            targets.append((f"4. explain factors ÷ none, {label}", _x(ratio), "≤ 3×", ratio <= 3))
        lines = [
            f'### 4. explain: "factors" at m = {results["explain"]["m"]:,}, n = {results["explain"]["n"]} '
            "(in-process: one BLAS thread; HTTP: one POST at a time to a one-worker service)",
            "",
            "| where | explain none | explain factors | ratio |",
            "|---|---:|---:|---:|",
        ]
        for where, label in (
            ("in_process", "in-process `gradients` ÷ `evaluate(factors)`"),
            ("http", "POST /gradient"),
        ):
            lines.append(
                f"| {label} | {_ms(e[where]['none'])} | {_ms(e[where]['factors'])} "
                f"| {_x(e[where]['factors'] / e[where]['none'])} |"
            )
        parts.append("\n".join(lines))
    if "grading" in results:
        g = results["grading"]
        sec = g["seconds"]
        targets.append(
            (f"5. grading a batch of {g['answers']:,} answers (HTTP)", _ms(sec["http"]), "≤ 0.5 s", sec["http"] <= 0.5)
        )
        parts.append(
            "\n".join(
                [
                    f"### 5. Grading: {g['answers']:,} answers to one problem ({g['body_bytes']:,} B body)",
                    "",
                    "| where | time | answers/s |",
                    "|---|---:|---:|",
                    f"| POST /grade/batch (one worker) | {_ms(sec['http'])} | {g['answers'] / sec['http']:,.0f} |",
                    f"| in-process parse + grade_batch + encode | {_ms(sec['in_process'])} "
                    f"| {g['answers'] / sec['in_process']:,.0f} |",
                ]
            )
        )
    if "growth" in results:
        gr = results["growth"]
        lines = [
            f"### 6. Cost growth (in-process, one BLAS thread, best of ≥ 5 calls over 0.2 s): gradients against m at "
            f"n = {gr['n_fixed']} and "
            f"against n at m = {gr['m_fixed']:,}; over HTTP for small m. Plot: [cost-growth.svg](cost-growth.svg).",
            "",
            "| m | n | service `gradients` | naive numpy | per element (service) |",
            "|---:|---:|---:|---:|---:|",
        ]
        for p in gr["vs_m"] + gr["vs_n"]:
            lines.append(
                f"| {p['m']:,} | {p['n']:,} | {_ms(p['service'])} | {_ms(p['numpy'])} "
                f"| {p['service'] / (p['m'] * p['n']) * 1e9:.2f} ns |"
            )
        lines += ["", "| m (HTTP) | n | POST /gradient | body |", "|---:|---:|---:|---:|"]
        for p in gr["http"]:
            lines.append(f"| {p['m']:,} | {p['n']} | {_ms(p['seconds'])} | {p['body_bytes']:,} B |")
        parts.append("\n".join(lines))
    head = [
        "## Latest run",
        "",
        f"{meta['date']}, commit `{meta['commit']}`, Python {meta['python']}, {meta['cpus']} CPUs "
        f"({meta['cpu_model']}), load average before the run {meta['load_before']}, after {meta['load_after']}; "
        f"{meta['mode']}, "
        f"{meta['rounds']} interleaved rounds, medians; {meta['duration_s']:.0f} s in all"
        + (", at nice −10 (ahead of other work on the machine)." if meta.get("nice") else "."),
        "",
        "| target | measured | goal | status |",
        "|---|---:|---:|---|",
    ]
    head += [f"| {what} | {got} | {goal} | {_status(ok)} |" for what, got, goal, ok in targets]
    # "### 1. Small request: what was measured ..." -> a short heading, then the method as a paragraph
    parts = [re.sub(r"^(### [^:]+): (.)", lambda mt: f"{mt[1]}\n\n{mt[2].upper()}", part, count=1) for part in parts]
    return "\n".join(head) + "\n\n" + "\n\n".join(parts) + "\n"


def plot(growth: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_m, ax_n) = plt.subplots(1, 2, figsize=(11, 4.5))
    vs_m, vs_n, http = growth["vs_m"], growth["vs_n"], growth["http"]
    ms = np.array([p["m"] for p in vs_m], dtype=float)
    svc = np.array([p["service"] for p in vs_m])
    ax_m.loglog(ms, svc, "o-", label="service gradients (in-process)")
    ax_m.loglog(ms, [p["numpy"] for p in vs_m], "s--", label="naive numpy (in-process)")
    if http:
        ax_m.loglog([p["m"] for p in http], [p["seconds"] for p in http], "^-", label="POST /gradient (HTTP)")
    ax_m.loglog(ms, svc[-1] * ms / ms[-1], ":", color="gray", label="linear in m (through the largest)")
    ax_m.axhline(svc[0], color="gray", lw=0.8, ls="--", label=f"fixed overhead (m = {int(ms[0])})")
    ax_m.set(
        xlabel=f"m (examples), n = {growth['n_fixed']}",
        ylabel="seconds per call (one BLAS thread)",
        title="Cost against m",
    )
    ns = np.array([p["n"] for p in vs_n], dtype=float)
    svc_n = np.array([p["service"] for p in vs_n])
    ax_n.loglog(ns, svc_n, "o-", label="service gradients (in-process)")
    ax_n.loglog(ns, [p["numpy"] for p in vs_n], "s--", label="naive numpy (in-process)")
    ax_n.loglog(ns, svc_n[-1] * ns / ns[-1], ":", color="gray", label="linear in n (through the largest)")
    ax_n.set(xlabel=f"n (features), m = {growth['m_fixed']:,}", ylabel="seconds per call", title="Cost against n")
    for ax in (ax_m, ax_n):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(
        "gradient-service gradients: flat where a cost does not grow with the variable\n(the fixed overhead "
        "against m, the per-example work against n), linear where it follows the dotted line",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path)  # the format from the suffix: .svg for the docs
    plt.close(fig)


def _meta(plan: Plan) -> dict[str, Any]:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    dirty = subprocess.run(["git", "status", "--porcelain", "service"], cwd=ROOT, capture_output=True, text=True).stdout
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit.strip() + ("+dirty service/" if dirty.strip() else ""),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "load_before": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
        "mode": "quick"
        if plan.quick
        else ("partial: " + ",".join(plan.sections) if plan.sections != SECTIONS else "full"),
        "rounds": plan.rounds,
        "sections": list(plan.sections),
    }


PAGE_START, PAGE_END = "<!-- perf-table -->", "<!-- /perf-table -->"


def update_page(table: str) -> None:
    """Put the latest full run's tables in docs/performance.md (between its perf-table markers)."""
    page = ROOT / "docs" / "performance.md"
    text = page.read_text()
    if PAGE_START not in text or PAGE_END not in text:
        return
    body = table.replace("(cost-growth.svg)", "(perf/cost-growth.svg)")
    head, rest = text.split(PAGE_START, 1)
    tail = rest.split(PAGE_END, 1)[1]
    page.write_text(f"{head}{PAGE_START}\n{body}{PAGE_END}{tail}")


def render(path: Path) -> int:
    """The report of a saved run, written again next to its JSON (and into docs/performance.md for a full run)."""
    saved = json.loads(path.read_text())
    table = report(saved["results"], saved["meta"])
    (path.parent / "latest.md").write_text(table)
    full = saved["meta"].get("mode") == "full"
    if path.resolve() == (ROOT / "docs" / "perf" / "latest.json").resolve() and full:
        update_page(table)
    print(table)
    return 0


RUNNERS: dict[str, Callable[[Plan], dict[str, Any]]] = {
    "small": section_small,
    "big": section_big,
    "compute": section_compute,
    "explain": section_explain,
    "grading": section_grading,
    "growth": section_growth,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.suite", description=__doc__.split("\n")[0])
    parser.add_argument("--only", help=f"comma-separated sections: {','.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true", help="small sizes, one round: a smoke check")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5, quick 1)")
    parser.add_argument("--out", type=Path, help="where to write latest.md, latest.json, cost-growth.svg")
    parser.add_argument(
        "--fused-entry",
        metavar="MODULE:FUNCTION",
        help="also time this compute entry point (called with an Objective, returning an Evaluation); by default "
        "the suite looks for a public function named *fused* in service.compute",
    )
    parser.add_argument(
        "--no-nice", action="store_true", help="do not raise the suite's priority (nice -10, as root) over other work"
    )
    parser.add_argument(
        "--render",
        type=Path,
        metavar="LATEST_JSON",
        help="measure nothing: write the report again from a run's latest.json (next to it; docs/performance.md too "
        "for docs/perf/latest.json of a full run), e.g. after a change to the report's wording",
    )
    args = parser.parse_args(argv)
    if args.render:
        return render(args.render)
    started = time.monotonic()
    if args.fused_entry:
        os.environ["BENCH_FUSED_ENTRY"] = args.fused_entry  # the compute workers inherit it
    niced = False
    if not args.no_nice and os.geteuid() == 0:
        os.nice(-10)  # servers, clients and anchors inherit it: other work on the machine disturbs them less
        niced = True
    with tempfile.TemporaryDirectory(prefix="gradient-bench-") as tmp:
        plan = Plan.make(args, Path(tmp))
        meta = _meta(plan)
        meta["nice"] = -10 if niced else 0
        results: dict[str, Any] = {}
        for name in plan.sections:
            log(f"section {name}")
            t0 = time.monotonic()
            results[name] = RUNNERS[name](plan)
            results[name]["section_seconds"] = time.monotonic() - t0
    meta["duration_s"] = time.monotonic() - started
    meta["load_after"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    if "growth" in results:
        plot(results["growth"], plan.out_dir / "cost-growth.svg")
    table = report(results, meta)
    (plan.out_dir / "latest.md").write_text(table)
    if plan.out_dir == ROOT / "docs" / "perf" and plan.sections == SECTIONS and not plan.quick:
        update_page(table)
    (plan.out_dir / "latest.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")
    print(table)
    log(f"wrote {plan.out_dir / 'latest.md'} and latest.json in {meta['duration_s']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

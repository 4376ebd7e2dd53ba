"""Where the service's time goes: py-spy samples of a running server, grouped by stage.

    .venv-bench/bin/python -m tests.benchmarks.profile_service [--seconds 8] [--big-rows 100000]

Starts the service as the suite does (one worker, one BLAS thread, pinned to core 0), then
(1) records it with py-spy while wrk (core 1) posts the suite's small body, and (2) records it while
one client posts the big body a few times. For each, prints the share of the server's main-thread
samples per stage (innermost matching frame wins) and writes the raw stacks (flamegraph input) to
.bench/profile-small.txt and .bench/profile-big.txt. py-spy comes with the bench venv; it needs
ptrace rights (root here). Only 127.0.0.1 is loaded and both runs are bounded in time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tests.benchmarks.anchor_numpy import logistic_body, logistic_problem
from tests.benchmarks.suite import CLIENT_CORE, ROOT, Server, load, raw_post, small_body

# (stage, substring of a py-spy frame); specific stages first, then the layers they run in
STAGES = [
    ("settings dependency: signature analysed per request (dependency_overrides)", "get_dependant ("),
    ("sync dependency run in the thread pool (thread hop)", "run_in_threadpool"),
    ("access log (JSON formatting and write)", "Logger.info"),
    ("parse: pydantic validate_json", "parse (service/http/wire/json.py"),
    ("prepare: checks, domains, np.asarray", "prepare"),
    ("compute: evaluate", "evaluate (service/compute/models.py"),
    ("response: build + orjson", "_compute (service/http/handlers/gradient.py"),
    ("reading the body", "read_json"),
    ("other dependency solving", "solve_dependencies"),
    ("prometheus metrics", "prometheus_client"),
    ("request-id middleware", "observability.py"),
    ("FastAPI routing and middleware", "fastapi/"),
    ("Starlette", "starlette/"),
    ("uvicorn protocol (Python)", "uvicorn/protocols"),
    ("event loop and sockets (uvloop, C)", "Runner.run"),
]
SPECIFIC = 8


def stage_shares(raw: Path) -> tuple[int, Counter[str]]:
    shares: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if "Condition.wait" in frames[-1] or any("Queue.get" in f for f in frames):
            continue  # idle pool threads
        n = int(count)
        total += n
        hit = None
        for candidates in (STAGES[:SPECIFIC], STAGES[SPECIFIC:]):
            for frame in reversed(frames):
                hit = next((name for name, mark in candidates if mark in frame), None)
                if hit:
                    break
            if hit:
                break
        shares[hit or "other"] += n
    return total, shares


def record(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    cmd = [spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "250", "-f", "raw", "-o", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def show(title: str, raw: Path) -> None:
    total, shares = stage_shares(raw)
    print(f"\n{title}: {total} samples of the server's busy threads")
    for name, n in shares.most_common():
        print(f"  {n / max(total, 1):6.1%}  {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.profile_service")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--big-rows", type=int, default=100_000)
    args = parser.parse_args(argv)
    out = ROOT / ".bench"
    out.mkdir(exist_ok=True)
    body, _ = small_body()
    (out / "small.json").write_bytes(body)
    X, y, w, b = logistic_problem(args.big_rows, 20, seed=17, digits=None)
    big = json.dumps(logistic_body(X, y, w, b)).encode()
    server = Server("service", out)
    try:
        server.start(body)
        assert server.proc is not None
        url = server.url + "/gradient"
        load(url, out / "small.json", 1.0, 8, CLIENT_CORE)  # warm-up
        spy = record(server.proc.pid, args.seconds, out / "profile-small.txt")
        time.sleep(0.5)
        res = load(url, out / "small.json", args.seconds - 1, 8, CLIENT_CORE)
        spy.wait(timeout=args.seconds + 30)
        show(f"small request ({res['rps']:.0f} req/s during the recording)", out / "profile-small.txt")
        spy = record(server.proc.pid, args.seconds, out / "profile-big.txt")
        deadline = time.monotonic() + args.seconds - 2
        times = []
        while time.monotonic() < deadline:
            status, _, seconds = raw_post(server.port, "/gradient", big)
            assert status == 200
            times.append(seconds)
        spy.wait(timeout=args.seconds + 30)
        show(
            f"big request ({len(big) / 2**20:.0f} MiB, {len(times)} posts, best {min(times):.2f} s)",
            out / "profile-big.txt",
        )
    finally:
        server.stop()
    print(f"\nraw stacks: {out / 'profile-small.txt'}, {out / 'profile-big.txt'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

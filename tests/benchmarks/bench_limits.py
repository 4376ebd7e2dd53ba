"""The largest request the default limits accept: its time and the server's peak memory.

    python -m tests.benchmarks.bench_limits [--rows 250000] [--features 20] [--repeat 3]

With the defaults (body ≤ 64 MiB, m ≤ 10⁶, n ≤ 10⁵, m·n ≤ 5·10⁶), the most numbers a body can
carry is m·n = 5·10⁶: here X of 250,000 × 20 entries written as single digits (about 10 MB).
The script starts the service on a free loopback port, posts that logistic-regression problem,
and reports the wall time per request and the server process's peak resident memory (VmHWM),
next to the body's size. A script, not a test: it does not import pytest.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import httpx

from tests.system.server import running_service


def _body(rows: int, features: int) -> bytes:
    row = "[" + ",".join("1" if j % 2 else "0" for j in range(features)) + "]"
    X = "[" + ",".join([row] * rows) + "]"
    y = "[" + ",".join("1" if i % 2 else "0" for i in range(rows)) + "]"
    w = "[" + ",".join(["0.01"] * features) + "]"
    return (
        '{"model": "logistic_regression", "parameters": {"w": '
        + w
        + ', "b": 0.0}, "data": {"X": '
        + X
        + ', "y": '
        + y
        + "}}"
    ).encode()


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=250_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    body = _body(args.rows, args.features)
    with running_service() as svc:
        baseline = _peak_rss_mb(svc.proc.pid)
        times = []
        with httpx.Client(base_url=svc.base, timeout=600) as client:
            for _ in range(args.repeat):
                start = time.perf_counter()
                r = client.post("/gradient", content=body, headers={"content-type": "application/json"})
                times.append(time.perf_counter() - start)
                assert r.status_code == 200, r.text[:300]
        peak = _peak_rss_mb(svc.proc.pid)
    size = f"m = {args.rows}, n = {args.features} (m·n = {args.rows * args.features})"
    print(f"request: {size}, body {len(body) / 2**20:.1f} MiB")
    print(f"time per request: median {statistics.median(times):.2f} s, min {min(times):.2f} s over {args.repeat}")
    print(f"server peak RSS: {peak:.0f} MiB (idle after start: {baseline:.0f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

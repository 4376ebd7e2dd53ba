"""POST /derive on the catalogue's functions, against a real server with its formula workers warm.

    python -m tests.benchmarks.bench_derive [--requests 200] [--workers 2]

1. Per formula (the catalogue's activations without relu and softmax, as written and by name, and its
   differentiable losses in f; the activations also `in_terms_of: "f"`, which runs SymPy): `--requests`
   requests one after another on one keep-alive connection, after 20 to warm up: p50/p99 of the round trip.
2. Small /gradient requests (the worked example) one after another, alone, then while 8 hostile /derive
   requests (a product of 300 sums: the tracer refuses it at its output limit after about a second, in a
   worker) are sent at once and again as each is answered, for `--hostile-seconds` (10 s).

A script that measures and reports, not a test: it does not import pytest.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import threading
import time
from typing import Any

import httpx

from service.http.schemas.gradient import EXAMPLES
from tests.system.server import running_service

ACTIVATIONS = {
    "identity": "z",
    "sigmoid": "sigma(z)",
    "sigmoid as written": "1/(1+e^{-z})",
    "tanh": "tanh(z)",
    "tanh as written": "(e^z - e^{-z})/(e^z + e^{-z})",
    "exp": "e^z",
    "softplus": "log(1 + e^z)",
}
LOSSES = {
    "squared_error": "1/2 (f - y)^2",
    "binary_cross_entropy": "-y log(f) - (1 - y) log(1 - f)",
    "binary_cross_entropy (LaTeX)": "-\\left(y\\log(f) + (1-y)\\log(1-f)\\right)",
    "poisson": "f - y log(f)",
}
HOSTILE = "*".join(["(z+1)"] * 300)
WORKED = {k: v for k, v in EXAMPLES["logistic_regression"].items() if k != "explain"}  # type: ignore[index]


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000
    return f"n={len(ordered):4d} p50={p50:7.2f} ms p99={p99:7.2f} ms"


def _times(
    client: httpx.Client, path: str, body: dict[str, Any], n: int, warm: int = 20, seconds: float = 0.0
) -> list[float]:
    """n round trips one after another (and more until `seconds` have passed)."""
    for _ in range(warm):
        client.post(path, json=body).raise_for_status()
    times: list[float] = []
    end = time.perf_counter() + seconds
    while len(times) < n or time.perf_counter() < end:
        t0 = time.perf_counter()
        r = client.post(path, json=body)
        times.append(time.perf_counter() - t0)
        r.raise_for_status()
    return times


def _hostile_load(base: str, stop: threading.Event, refused: list[int]) -> None:
    with httpx.Client(base_url=base, timeout=30) as client:
        while not stop.is_set():
            r = client.post("/derive", json={"expression": HOSTILE, "variable": "z"})
            refused.append(r.status_code)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2, help="formula worker processes")
    parser.add_argument("--hostile-seconds", type=float, default=10.0, help="how long the hostile phase lasts")
    args = parser.parse_args()
    env = {"GRADIENT_SERVICE_FORMULA_START_WORKERS": "true", "GRADIENT_SERVICE_FORMULA_WORKERS": str(args.workers)}
    env["GRADIENT_SERVICE_RATE_LIMIT_PER_MINUTE"] = "0"
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} · {platform.machine()} · {platform.processor()}")
    with running_service(env=env) as service, httpx.Client(base_url=service.base, timeout=30) as client:
        print(f"formula workers: {args.workers}; {args.requests} requests per row, one at a time\n")
        print("POST /derive")
        for name, expression in ACTIVATIONS.items():
            body = {"expression": expression, "variable": "z"}
            print(f"  {name:30s} {_ms(_times(client, '/derive', body, args.requests))}")
            body_f = {**body, "in_terms_of": "f"}
            print(f"  {name + ', in f':30s} {_ms(_times(client, '/derive', body_f, args.requests))}")
        for name, expression in LOSSES.items():
            body = {"expression": expression, "variable": "f"}
            print(f"  {name:30s} {_ms(_times(client, '/derive', body, args.requests))}")

        print("\nPOST /gradient (the worked example)")
        print(f"  {'alone':30s} {_ms(_times(client, '/gradient', WORKED, args.requests))}")
        stop = threading.Event()
        statuses: list[int] = []
        threads = [threading.Thread(target=_hostile_load, args=(service.base, stop, statuses)) for _ in range(8)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        try:
            during = _times(client, "/gradient", WORKED, args.requests, warm=0, seconds=args.hostile_seconds)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        print(f"  {'while 8 hostile /derive run':30s} {_ms(during)}")
        answered = {code: statuses.count(code) for code in sorted(set(statuses))}
        print(f"  hostile /derive answered: {answered} (422 formula-too-complex; 503 formula-pool-busy)")


if __name__ == "__main__":
    main()

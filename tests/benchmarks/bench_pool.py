"""The formula worker pool's round trip: a trivial job's latency alone, and while 8 hostile jobs run.

    python -m tests.benchmarks.bench_pool [--size 2] [--time-limit 2.0] [--jobs 300]

1. Idle: `--jobs` trivial jobs (`operator:add`), one at a time, on a started pool: p50/p99 of `await pool.run`.
2. Hostile: 8 infinite loops submitted at once (each refused with WorkTooLong at the time limit, its worker
   killed and replaced) while trivial jobs are submitted one at a time: their latency includes waiting for a
   free worker, so it shows what a well-behaved formula pays when the pool is flooded. Twice: the flood from
   one other client (the pool's share per client keeps a worker free), and the flood and the trivial jobs
   under one client (no fairness can help: what one client's own flood costs it). Also the event loop's
   worst gap against a 10 ms tick, over the whole run.

A script that measures and reports, not a test: it does not import pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from service.formulas.pool import PoolBusy, WorkerPool, WorkTooLong


def _ms(values: list[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000
    return f"n={len(ordered)} p50={p50:.2f} ms p99={p99:.2f} ms max={ordered[-1] * 1000:.2f} ms"


async def _idle(pool: WorkerPool, jobs: int) -> list[float]:
    for _ in range(20):  # warm up
        await pool.run("operator:add", 1, 2)
    times = []
    for _ in range(jobs):
        t0 = time.perf_counter()
        await pool.run("operator:add", 1, 2)
        times.append(time.perf_counter() - t0)
    return times


async def _hostile(pool: WorkerPool, attacker: str, learner: str) -> tuple[list[float], int, int, float, float]:
    gaps: list[float] = []
    stop = asyncio.Event()

    async def tick() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    t0 = time.perf_counter()
    hostile: list[asyncio.Task[object]] = []
    for _ in range(8):
        hostile.append(asyncio.create_task(pool.run("tests.formulas.pool_jobs:spin", client=attacker)))
    await asyncio.sleep(0.01)
    times: list[float] = []
    busy = 0
    while not all(task.done() for task in hostile):
        t1 = time.perf_counter()
        try:
            await pool.run("operator:add", 1, 2, client=learner)
            times.append(time.perf_counter() - t1)
        except PoolBusy:
            busy += 1
            await asyncio.sleep(0.05)
    results = await asyncio.gather(*hostile, return_exceptions=True)
    total = time.perf_counter() - t0
    stop.set()
    await ticker
    refused = sum(isinstance(r, WorkTooLong) for r in results)
    return times, refused, busy, total, max(gaps)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=2)
    parser.add_argument("--time-limit", type=float, default=2.0)
    parser.add_argument("--jobs", type=int, default=300)
    args = parser.parse_args()
    async with WorkerPool(size=args.size, time_limit=args.time_limit, imports=["tests.formulas.pool_jobs"]) as pool:
        t0 = time.perf_counter()
        await pool.astart()
        print(f"pool of {args.size}, time limit {args.time_limit} s: started in {time.perf_counter() - t0:.3f} s")
        print("trivial job, idle pool:          ", _ms(await _idle(pool, args.jobs)))
        for title, attacker, learner in (
            ("8 hostile from another client", "attacker", "learner"),
            ("8 hostile from the same client", "learner", "learner"),
        ):
            times, refused, busy, total, worst_gap = await _hostile(pool, attacker, learner)
            print(f"trivial job, {title}: ", _ms(times), f"(PoolBusy {busy}×)")
            print(f"  hostile jobs refused WorkTooLong: {refused}/8 (the rest PoolBusy), all within {total:.2f} s")
            print(f"  event loop's worst gap (10 ms tick): {worst_gap * 1000:.1f} ms")
        print(f"workers started: {pool.counters.started}")


if __name__ == "__main__":
    asyncio.run(main())

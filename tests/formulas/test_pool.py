"""The worker pool (service/formulas/pool.py): results, errors, the time and memory limits, a bounded queue, a
responsive event loop while hostile work runs, and no processes left behind.

The machine may be shared and small: every timing assertion has a generous margin (a kill within the limit
plus 1 s, an event loop gap under 100 ms against a 10 ms tick). Jobs are top-level functions of this module
(pickled by reference) or "module:qualname" strings.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from service.formulas.pool import (
    JobFailed,
    PoolBusy,
    PoolClosed,
    WorkerCrashed,
    WorkerPool,
    WorkTooBig,
    WorkTooLong,
)
from tests.formulas.pool_jobs import add, exit_hard, fail, grow, kill_self, pid, spin, started_at

ROOT = Path(__file__).resolve().parents[2]
JOBS = "tests.formulas.pool_jobs"  # imported by the workers at start: light, no pytest
MiB = 2**20


@pytest.fixture
def pool() -> Iterator[WorkerPool]:
    p = WorkerPool(imports=[JOBS], size=2, time_limit=0.5, memory_limit_bytes=256 * MiB)
    try:
        yield p
    finally:
        p.close()


def _gone(pids: list[int]) -> bool:
    for p in pids:
        try:
            if psutil.Process(p).status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            pass
    return True


def _wait_gone(pids: list[int], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if _gone(pids):
            return True
        time.sleep(0.05)
    return _gone(pids)


def _wait_replaced(pool: WorkerPool, before: set[int], within: float = 5.0) -> set[int]:
    """The pool's pids once a worker has been replaced (in the background) and all are started."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        now = set(pool.pids())
        if len(now) == pool.size and now != before:
            return now
        time.sleep(0.02)
    return set(pool.pids())


# ------------------------------------------------------------------------------------- results and errors


def test_a_job_returns_its_result(pool: WorkerPool) -> None:
    assert pool.run_sync(add, 2, 3) == 5
    assert pool.run_sync("math:factorial", 10) == 3628800
    assert pool.run_sync("os.path:join", "a", "b") == "a/b"
    assert pool.run_sync(pid) != os.getpid()


def test_an_exception_in_the_job_is_raised_with_its_type_and_message(pool: WorkerPool) -> None:
    with pytest.raises(JobFailed) as info:
        pool.run_sync("operator:truediv", 1, 0)
    assert info.value.type_name == "ZeroDivisionError"
    assert str(info.value) == "ZeroDivisionError: division by zero"
    with pytest.raises(JobFailed) as info:
        pool.run_sync(fail, "no good")
    assert info.value.type_name == "tests.formulas.pool_jobs.CustomError"
    assert info.value.message == "no good"
    assert "fail" in info.value.remote_traceback
    with pytest.raises(JobFailed, match="ValueError"):
        pool.run_sync("not-a-reference")
    with pytest.raises(JobFailed, match="ModuleNotFoundError"):
        pool.run_sync("no_such_module:f")
    assert pool.run_sync(add, 1, 1) == 2  # the same worker goes on after an ordinary exception


def test_a_lambda_is_refused_before_it_reaches_a_worker(pool: WorkerPool) -> None:
    with pytest.raises(TypeError, match="lambda"):
        pool.run_sync(lambda: 1)


def test_a_worker_that_dies_gives_worker_crashed_and_is_replaced(pool: WorkerPool) -> None:
    with pytest.raises(WorkerCrashed, match="exit code 3") as info:
        pool.run_sync(exit_hard, 3)
    assert info.value.exitcode == 3
    with pytest.raises(WorkerCrashed, match="SIGSEGV"):
        pool.run_sync(kill_self)
    assert pool.run_sync(add, 1, 2) == 3


# ------------------------------------------------------------------------------------- the time limit


@pytest.mark.parametrize(
    ("job", "args"),
    [
        (spin, ()),  # a bytecode loop
        ("builtins:pow", (10, 10**9)),  # one C call: it never returns to the interpreter until done
        ("builtins:sum", (range(10**13),)),  # ditto
    ],
    ids=["while-true", "pow-10-10e9", "sum-range-10e13"],
)
def test_work_over_the_time_limit_is_killed_and_the_worker_replaced(pool: WorkerPool, job: object, args: tuple) -> None:
    pool.start()
    before = set(pool.pids())
    t0 = time.monotonic()
    with pytest.raises(WorkTooLong) as info:
        pool.run_sync(job, *args)  # type: ignore[arg-type]
    elapsed = time.monotonic() - t0
    assert info.value.limit == 0.5
    assert 0.5 <= elapsed < 0.5 + 1.0
    after = _wait_replaced(pool, before)
    assert len(after) == 2 and len(after - before) == 1  # one worker replaced
    assert _wait_gone(list(before - after), 2.0)
    assert pool.run_sync(add, 2, 2) == 4
    assert pool.run_sync(add, 3, 3) == 6  # both workers serve


def test_a_per_call_timeout_overrides_the_pool_limit(pool: WorkerPool) -> None:
    pool.start()
    t0 = time.monotonic()
    with pytest.raises(WorkTooLong, match=r"0\.2 s"):
        pool.run_sync(spin, timeout=0.2)
    assert time.monotonic() - t0 < 0.2 + 1.0
    assert pool.run_sync("time:sleep", 0.7, timeout=3.0) is None  # longer than the pool's 0.5 s


# ------------------------------------------------------------------------------------- the memory limit


@pytest.mark.parametrize(("job", "args"), [("builtins:bytearray", (512 * MiB,)), (grow, ())], ids=["one", "growing"])
def test_work_over_the_memory_limit_gets_work_too_big_and_the_pool_recovers(
    pool: WorkerPool, job: object, args: tuple
) -> None:
    pool.start()
    t0 = time.monotonic()
    with pytest.raises(WorkTooBig) as info:
        pool.run_sync(job, *args, timeout=10.0)  # type: ignore[arg-type]
    assert info.value.limit == 256 * MiB
    assert time.monotonic() - t0 < 10.0  # refused by the allocator, not by the clock
    assert pool.run_sync(add, 1, 2) == 3
    # a big request is fine, under the limit (64 MiB through the pipe: the clock is not what this checks)
    assert pool.run_sync("builtins:len", bytes(64 * MiB), timeout=10.0) == 64 * MiB


# ------------------------------------------------------------------------------------- asyncio


def test_run_awaits_a_result_and_an_error(pool: WorkerPool) -> None:
    async def main() -> None:
        assert await pool.run(add, 20, 22) == 42
        assert await asyncio.gather(*(pool.run(add, i, i) for i in range(10))) == [2 * i for i in range(10)]
        with pytest.raises(JobFailed, match="CustomError: oops"):
            await pool.run(fail, "oops")
        with pytest.raises(WorkTooLong):
            await pool.run(spin, timeout=0.2)
        with pytest.raises(WorkTooBig):
            await pool.run("builtins:bytearray", 512 * MiB)
        assert await pool.run(add, 1, 1) == 2

    asyncio.run(main())


@pytest.mark.slow  # ~2 s, and timing-sensitive: not beside another xdist worker on a small machine
def test_the_event_loop_stays_responsive_while_hostile_work_runs() -> None:
    async def main(pool: WorkerPool) -> tuple[float, int, list[BaseException | None]]:
        gaps: list[float] = []
        stop = asyncio.Event()

        async def tick() -> None:
            last = time.monotonic()
            while not stop.is_set():
                await asyncio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        ticker = asyncio.create_task(tick())
        results = await asyncio.gather(
            *(pool.run(spin) for _ in range(4)),
            *(pool.run("builtins:pow", 10, 10**9) for _ in range(2)),
            return_exceptions=True,
        )
        stop.set()
        await ticker
        return max(gaps), len(gaps), [r if isinstance(r, BaseException) else None for r in results]

    with WorkerPool(imports=[JOBS], size=2, time_limit=0.4) as pool:
        pool.start()
        worst, ticks, errors = asyncio.run(main(pool))
    assert all(isinstance(e, WorkTooLong) for e in errors), errors
    assert ticks > 50
    # blocked by a job, the loop would stall for the time limit (0.4 s) or more; a loaded machine's scheduler
    # alone can delay a 10 ms tick by a hundred milliseconds or so
    assert worst < 0.25, f"the event loop stalled {worst * 1000:.0f} ms"


def test_cancelling_a_running_job_kills_its_worker(pool: WorkerPool) -> None:
    async def main() -> None:
        pool.start()
        before = set(pool.pids())
        task = asyncio.create_task(pool.run(spin, timeout=30))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await pool.run(add, 1, 2) == 3
        assert await pool.run(add, 2, 2) == 4
        after = await asyncio.to_thread(_wait_replaced, pool, before)
        assert len(after) == 2 and after != before
        assert _wait_gone(list(before - after), 2.0)

    t0 = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - t0 < 5.0
    assert pool.counters.started >= 3  # the cancelled job's worker was replaced


# ------------------------------------------------------------------------------------- the queue


def test_more_waiting_jobs_than_the_bound_raise_pool_busy() -> None:
    async def main(pool: WorkerPool) -> None:
        await pool.astart()
        running = [asyncio.create_task(pool.run(spin)) for _ in range(3)]  # 1 running, 2 waiting
        await asyncio.sleep(0.05)
        t0 = time.monotonic()
        with pytest.raises(PoolBusy, match="2 jobs are already waiting"):
            await pool.run(add, 1, 1)
        with pytest.raises(PoolBusy):
            pool.run_sync(add, 1, 1)
        assert time.monotonic() - t0 < 0.1  # refused at once, not after a wait
        results = await asyncio.gather(*running, return_exceptions=True)
        assert all(isinstance(r, WorkTooLong) for r in results), results
        assert await pool.run(add, 1, 1) == 2

    with WorkerPool(imports=[JOBS], size=1, time_limit=0.3, max_waiting=2) as pool:
        asyncio.run(main(pool))
        assert pool.counters.busy == 2


# ------------------------------------------------------------------------------------- fairness between clients


def test_a_client_flooding_the_pool_holds_its_share_and_another_client_runs_at_once() -> None:
    """8 formulas that run to the time limit from one client take 1 of the 2 workers (its share); another
    client's job runs on the other one and answers while the flood's first jobs still run."""

    async def main(pool: WorkerPool) -> tuple[list[object], float, int, float]:
        hostile = [asyncio.create_task(pool.run(spin, client="attacker")) for _ in range(4)]
        await asyncio.sleep(0.05)
        assert pool.waiting() == 3  # one runs, three wait: the attacker's share is one worker
        t0 = time.monotonic()
        normal = await pool.run(add, 40, 2, client="learner")
        waited = time.monotonic() - t0
        finished = sum(task.done() for task in hostile)
        results = await asyncio.gather(*hostile, return_exceptions=True)
        return results, waited, finished, normal

    with WorkerPool(imports=[JOBS], size=2, time_limit=2.0) as pool:
        pool.start()
        results, waited, finished, normal = asyncio.run(main(pool))
    assert normal == 42
    assert finished == 0  # the learner did not wait for any of the attacker's jobs to end
    assert waited < 2.0  # far less than one time limit (it did not queue)
    assert all(isinstance(r, WorkTooLong) for r in results), results


def test_a_freed_worker_goes_to_the_next_client_in_turn_not_the_oldest_job() -> None:
    """One worker: A queues three jobs, then B one; B's job starts second, before A's second and third."""

    async def main(pool: WorkerPool) -> dict[str, list[float]]:
        blocker = asyncio.create_task(pool.run("time:sleep", 0.3, client="A"))
        await asyncio.sleep(0.05)
        a_jobs = [asyncio.create_task(pool.run(started_at, client="A")) for _ in range(2)]
        await asyncio.sleep(0.02)
        b_job = asyncio.create_task(pool.run(started_at, client="B"))
        await blocker
        return {"A": list(await asyncio.gather(*a_jobs)), "B": [await b_job]}

    with WorkerPool(imports=[JOBS], size=1, time_limit=5.0) as pool:
        pool.start()
        starts = asyncio.run(main(pool))
    assert starts["B"][0] < max(starts["A"]), starts  # B did not wait behind all of A's queue
    assert sorted(starts["A"] + starts["B"])[1] == starts["B"][0], starts  # B went second: right after A's first


def test_one_client_cannot_fill_the_queue() -> None:
    """A client's waiting jobs are bounded on their own (per_client_waiting): beyond that it gets PoolBusy at
    once, while another client can still queue and run."""

    async def main(pool: WorkerPool) -> int:
        running = asyncio.create_task(pool.run(spin, client="attacker"))
        await asyncio.sleep(0.05)
        queued = [asyncio.create_task(pool.run(spin, client="attacker")) for _ in range(2)]
        await asyncio.sleep(0.05)
        with pytest.raises(PoolBusy):
            await pool.run(spin, client="attacker")
        result = await pool.run(add, 1, 1, client="learner")  # the other worker is free for it
        await asyncio.gather(running, *queued, return_exceptions=True)
        return int(result)

    with WorkerPool(imports=[JOBS], size=2, time_limit=0.3, max_waiting=8, per_client_waiting=2) as pool:
        pool.start()
        assert asyncio.run(main(pool)) == 2
        assert pool.counters.busy == 1


def test_jobs_without_a_client_keep_the_whole_pool() -> None:
    """The command line and tests name no client: they are not held to a share (both workers run at once)."""
    with WorkerPool(imports=[JOBS], size=2, time_limit=5.0) as pool:
        pool.start()

        async def main() -> float:
            t0 = time.monotonic()
            _, second = await asyncio.gather(pool.run("time:sleep", 1.0), pool.run(started_at))
            return float(second) - t0

        assert asyncio.run(main()) < 1.0  # the second began while the first slept: it did not wait for it


def test_share_options_are_checked() -> None:
    with pytest.raises(ValueError, match="per_client"):
        WorkerPool(size=2, per_client=0)


@pytest.mark.slow
def test_eight_hostile_jobs_are_each_refused_and_a_normal_job_still_completes() -> None:
    async def main(pool: WorkerPool) -> tuple[list[object], object, float, float]:
        t0 = time.monotonic()
        hostile = [asyncio.create_task(pool.run(spin)) for _ in range(8)]
        await asyncio.sleep(0.05)
        normal = await pool.run(add, 40, 2)  # waits its turn behind up to 8 hostile jobs
        t_normal = time.monotonic() - t0
        results = await asyncio.gather(*hostile, return_exceptions=True)
        return results, normal, t_normal, time.monotonic() - t0

    with WorkerPool(imports=[JOBS], size=2, time_limit=0.5) as pool:
        pool.start()
        results, normal, t_normal, t_all = asyncio.run(main(pool))
    assert all(isinstance(r, WorkTooLong) for r in results), results
    assert normal == 42
    # 8 hostile jobs on 2 workers: 4 rounds of 0.5 s, plus a worker restart after each; generous margins
    assert t_normal < 4 * 0.5 + 4.0
    assert t_all < 4 * 0.5 + 4.0


def test_run_sync_is_safe_from_many_threads(pool: WorkerPool) -> None:
    results: list[int] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        value = pool.run_sync(add, i, 1)
        with lock:
            results.append(value)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]  # 2 running, 6 waiting
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(results) == [i + 1 for i in range(8)]


# ------------------------------------------------------------------------------------- no processes left behind


def _workers_of_forkserver() -> list[psutil.Process]:
    """Our child processes that are not the (per-process, shared) multiprocessing fork server itself."""
    me = psutil.Process()
    children = me.children(recursive=True)
    servers = {c.pid for c in me.children() if "forkserver" in " ".join(c.cmdline())}
    return [c for c in children if c.pid not in servers and c.ppid() in servers and c.status() != psutil.STATUS_ZOMBIE]


def test_close_leaves_no_worker_processes() -> None:
    pool = WorkerPool(imports=[JOBS], size=2, time_limit=0.5)
    pool.start()
    pool.run_sync(add, 1, 1)
    pids = pool.pids()
    assert len(pids) == 2 and all(psutil.pid_exists(p) for p in pids)
    pool.close()
    assert pool.pids() == []
    assert _wait_gone(pids, 2.0)
    assert _workers_of_forkserver() == []
    with pytest.raises(PoolClosed):
        pool.run_sync(add, 1, 1)
    pool.close()  # idempotent


def test_close_while_jobs_run_and_wait() -> None:
    async def main(pool: WorkerPool) -> list[object]:
        tasks = [asyncio.create_task(pool.run(spin, timeout=30)) for _ in range(4)]  # 2 running, 2 waiting
        await asyncio.sleep(0.3)
        await pool.aclose()
        return await asyncio.gather(*tasks, return_exceptions=True)

    pool = WorkerPool(imports=[JOBS], size=2, time_limit=0.5)
    pool.start()
    pids = pool.pids()
    t0 = time.monotonic()
    results = asyncio.run(main(pool))
    assert time.monotonic() - t0 < 5.0
    assert all(isinstance(r, PoolClosed) for r in results), results
    assert _wait_gone(pids, 2.0)
    assert pool.pids() == []
    assert _workers_of_forkserver() == []


@pytest.mark.slow
def test_workers_die_with_the_parent_even_in_a_c_call() -> None:
    script = textwrap.dedent(
        """
        import sys, threading, time
        from service.formulas.pool import WorkerPool

        if __name__ == "__main__":
            pool = WorkerPool(size=2, time_limit=60)
            pool.start()
            print(*pool.pids(), flush=True)
            for _ in range(2):
                threading.Thread(target=pool.run_sync, args=("builtins:pow", 10, 10**10), daemon=True).start()
            time.sleep(60)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        assert parent.stdout is not None
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2
        time.sleep(0.5)
        assert all(psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)  # busy in pow
        parent.kill()  # SIGKILL: no close(), no atexit
        parent.wait(10)
        assert _wait_gone(pids, 5.0), "a worker outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
        if parent.stdout is not None:
            parent.stdout.close()


def test_the_spawn_start_method_works_too() -> None:
    with WorkerPool(imports=[JOBS], size=1, time_limit=0.5, start_method="spawn") as pool:
        assert pool.run_sync(add, 1, 2) == 3
        with pytest.raises(WorkTooLong):
            pool.run_sync(spin)
        assert pool.run_sync(add, 2, 2) == 4
        pids = pool.pids()
    assert _wait_gone(pids, 2.0)
    with pytest.raises(ValueError, match="start_method"):
        WorkerPool(start_method="fork")

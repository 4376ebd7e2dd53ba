"""CPU per small request inside the ASGI application, without a server or sockets, by stage.

    .venv-bench/bin/python -m tests.benchmarks.bench_request_path [--requests 2000] [--rounds 5] [--stages]

Calls the service's app, the plain FastAPI anchor and the bare ASGI anchor
(tests/benchmarks/anchor_apps.py) directly with the suite's small body (100×4 logistic), in one
process, interleaved round by round, and prints each one's CPU time per request (the best round:
other work on the machine only adds time). What the server adds (HTTP parsing, sockets) is the
same for all three and is not here; the suite's small section measures it. `--stages` adds a
cProfile of the service's requests with the inclusive time of each stage of the request path.
Run under `valgrind --tool=callgrind` (with `--only NAME`) for instruction counts, which a
loaded machine does not disturb.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import time
from collections.abc import Callable
from typing import Any

from tests.benchmarks.suite import small_body

os.environ.setdefault("GRADIENT_SERVICE_LOG_LEVEL", "warning")  # no access log, as the suite runs it

Message = dict[str, Any]


def scope_for(body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/gradient",
        "raw_path": b"/gradient",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }


def driver(app: Any, body: bytes) -> Callable[[int], Any]:
    """An async function posting the body `count` times to the app, checking each status."""

    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    async def run(count: int) -> None:
        for _ in range(count):
            sent.clear()
            await app(scope_for(body), receive, send)
            assert sent[0]["status"] == 200, sent

    return run


async def _lifespan(app: Any) -> None:
    """Run the app's startup (the service opens its attempt store there)."""
    queue: asyncio.Queue[Message] = asyncio.Queue()
    await queue.put({"type": "lifespan.startup"})
    started = asyncio.Event()

    async def receive() -> Message:
        return await queue.get()

    async def send(message: Message) -> None:
        if message["type"].startswith("lifespan.startup"):
            started.set()

    asyncio.get_running_loop().create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    await started.wait()


def apps() -> dict[str, Any]:
    from service.app import create_app
    from tests.benchmarks.anchor_apps import bare_app, plain_app

    return {"service": create_app(), "plain": plain_app, "bare": bare_app}


# (stage, function whose inclusive time it is), outermost first
STAGES = [
    ("request context (id, timing, metrics)", "request_context.py", "__call__"),
    ("body limit", "body_limit.py", "__call__"),
    ("fast path (handler + response)", "fastpath.py", "__call__"),
    ("handler", "handlers/gradient.py", "handle"),
    ("access check", "security/access.py", "dependency"),
    ("read body", "wire/binary.py", "read_body"),
    ("parse (orjson + strict validation)", "wire/json.py", "parse"),
    ("prepare (checks, domains, arrays)", "handlers/objectives.py", "prepare"),
    ("compute + response body", "handlers/gradient.py", "_compute"),
    ("compute: gradients", "compute/models.py", "gradients"),
    ("response: build", "handlers/responses.py", "gradient_response"),
    ("response: orjson", "wire/encoding.py", "dumps"),
    ("response: send", "starlette/responses.py", "__call__"),
]


def stages(app: Any, body: bytes, count: int) -> None:
    run = driver(app, body)
    asyncio.run(run(200))
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    asyncio.run(run(count))
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(tt for (_, _, _), (_, _, tt, _, _) in stats.items())
    print(f"\nstages of the service's request (cProfile, inclusive; {total / count * 1e6:.0f} µs per request profiled)")
    for name, file_part, func in STAGES:
        cum = sum(ct for (file, _, fn), (_, _, _, ct, _) in stats.items() if file.endswith(file_part) and fn == func)
        print(f"  {cum / count * 1e6:7.1f} µs  {name}")
    print("\nthe 25 functions with the most own time:")
    rows = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[:25]
    for (file, line, fn), (_, calls, tt, _, _) in rows:
        where = f"{file.split('site-packages/')[-1]}:{line}"
        print(f"  {tt / count * 1e6:7.2f} µs  {calls / count:5.1f} calls  {fn} ({where})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.bench_request_path")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", help="one of service, plain, bare")
    parser.add_argument("--stages", action="store_true")
    args = parser.parse_args(argv)
    body, _ = small_body()
    targets = apps()
    if args.only:
        targets = {args.only: targets[args.only]}
    runs = {}
    for name, app in targets.items():
        if name == "service":
            asyncio.run(_lifespan(app))
        runs[name] = driver(app, body)
        asyncio.run(runs[name](50))  # warm-up
    best: dict[str, float] = {}
    for r in range(args.rounds):
        order = list(runs)[r % len(runs) :] + list(runs)[: r % len(runs)]
        for name in order:
            t0 = time.process_time()
            asyncio.run(runs[name](args.requests))
            per = (time.process_time() - t0) / args.requests
            best[name] = min(best.get(name, per), per)
    for name, per in best.items():
        ratio = f", plain ÷ this {best['plain'] / per:.2f}×" if "plain" in best else ""
        print(f"{name:8s} {per * 1e6:7.1f} µs CPU per request (best of {args.rounds} rounds){ratio}")
    if args.stages and "service" in targets:
        stages(targets["service"], body, args.requests)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

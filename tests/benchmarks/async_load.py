"""A fallback closed-loop load generator, for when `wrk` is missing (stdlib only, HTTP/1.1 keep-alive).

    python -m tests.benchmarks.async_load URL BODY_FILE --seconds 5 --connections 8

`connections` coroutines each POST the body back to back on one connection until `seconds` pass
(bounded also by a request count), then it prints `RESULT {json}` with wrk's figures: requests,
seconds, non-2xx answers and errors. The suite pins it to a core of its own with taskset. It is
slower than wrk (Python parses every answer), so it saturates a fast server less: prefer wrk.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from urllib.parse import urlsplit

MAX_REQUESTS = 1_000_000


async def _client(host: str, port: int, request: bytes, deadline: float, stats: dict[str, int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.monotonic() < deadline and stats["requests"] < MAX_REQUESTS:
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            stats["requests"] += 1
            if not status_line.split(b" ", 2)[1].startswith(b"2"):
                stats["non2xx"] += 1
    except (OSError, asyncio.IncompleteReadError, IndexError):
        stats["errors"] += 1
    finally:
        writer.close()


async def run(url: str, body: bytes, seconds: float, connections: int) -> dict[str, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = (
        f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    stats = {"requests": 0, "non2xx": 0, "errors": 0}
    start = time.monotonic()
    deadline = start + seconds
    await asyncio.gather(*(_client(host, port, request, deadline, stats) for _ in range(connections)))
    elapsed = time.monotonic() - start
    return {**stats, "seconds": elapsed, "rps": stats["requests"] / elapsed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.async_load")
    parser.add_argument("url")
    parser.add_argument("body", type=Path)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.url, args.body.read_bytes(), args.seconds, args.connections))
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

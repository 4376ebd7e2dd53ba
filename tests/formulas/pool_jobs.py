"""Jobs for the worker pool's tests and benchmark: top-level functions (pickled by reference), and a light module
(the workers import it at start: no pytest)."""

from __future__ import annotations

import os
import signal

MiB = 2**20


class CustomError(Exception):
    pass


def add(a: int, b: int) -> int:
    return a + b


def fail(message: str) -> None:
    raise CustomError(message)


def spin() -> None:
    while True:
        pass


def grow() -> int:
    chunks = []
    while True:
        chunks.append(bytearray(16 * MiB))
        if len(chunks) > 10_000:
            return len(chunks)


def pid() -> int:
    return os.getpid()


def exit_hard(code: int) -> None:
    os._exit(code)


def kill_self() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def started_at() -> float:
    """When the job began, on the system-wide monotonic clock (comparable between processes on Linux)."""
    import time

    return time.monotonic()

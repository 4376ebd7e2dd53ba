"""Start the real service (`python -m service serve`) on a free loopback port for system tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    """A running service: its base URL, its process and its log (stdout and stderr)."""

    def __init__(self, base: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.base = base
        self.proc = proc
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def running_service(
    env: dict[str, str] | None = None, timeout: float = 30.0, port: int | None = None
) -> Iterator[Service]:
    """Yield the service once /readyz answers 200 (on `port`, default a free one); stop it with SIGTERM afterwards."""
    port = port if port is not None else free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="gradient-service-"))
    log_path = log_dir / "service.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the service exited early:\n{log_path.read_text(errors='replace')}")
            try:
                if httpx.get(base + "/readyz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the service did not become ready in time")
            time.sleep(0.1)
        yield Service(base, proc, log_path)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

"""The image for real: build docker/Dockerfile, run it, use it, stop it.

Uses docker when a Docker engine answers, otherwise podman as set up by the repository's
tests/deploy/container-engine.sh (a local stand-in for python:3.11-slim; see its header). Prints,
and writes to container-metrics.json in the test's tmp dir, the image size and the start-to-healthy
time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from gradient_service_client import npy_bytes
from tests.deploy.tools import (
    DOCKERFILE,
    ENGINE_SETUP,
    GRADE_REQUEST,
    GRADE_SCORE,
    ROOT,
    WORKED_EXAMPLE,
    WORKED_GRADIENT_B,
    WORKED_GRADIENT_W,
    run,
    unavailable,
)
from tests.system.server import free_port

pytestmark = pytest.mark.slow


@dataclass
class Engine:
    exe: str
    env: dict[str, str]
    build_args: list[str] = field(default_factory=list)
    run_args: list[str] = field(default_factory=list)

    @property
    def podman(self) -> bool:
        return Path(self.exe).name == "podman"

    def __call__(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        return run([self.exe, *args], timeout=timeout, env=self.env, check=check)

    def logs(self, name: str) -> str:
        """The container's stdout and stderr (the service logs to stderr)."""
        proc = subprocess.run(
            [self.exe, "logs", name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self.env, timeout=60
        )
        return proc.stdout.decode(errors="replace")

    def status(self, *args: str, timeout: float = 60) -> int:
        return subprocess.run([self.exe, *args], capture_output=True, env=self.env, timeout=timeout).returncode


def _engine() -> Engine:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "info"], capture_output=True, timeout=60).returncode == 0:
        return Engine(docker, dict(os.environ))
    if not ENGINE_SETUP.is_file():
        unavailable(f"no Docker engine answers `docker info`, and {ENGINE_SETUP} (podman's setup) is missing")
    # the setup exports what podman needs (its storage and configuration): take the environment it leaves
    proc = subprocess.run(
        ["bash", "-c", 'source "$1" >&2 && env -0', "bash", str(ENGINE_SETUP)],
        capture_output=True,
        timeout=900,
    )
    if proc.returncode != 0:
        unavailable(f"no Docker engine, and podman could not be set up: {proc.stderr.decode(errors='replace')[-800:]}")
    env = dict(item.split("=", 1) for item in proc.stdout.decode().split("\0") if "=" in item)
    podman = shutil.which("podman", path=env.get("PATH"))
    if podman is None:
        unavailable("podman's setup ran but podman is not on PATH")
    return Engine(
        podman,
        env,
        build_args=["--pull=never", "--network=host", "--format", "docker"],  # docker format keeps HEALTHCHECK
        run_args=["--network=slirp4netns"],
    )


def _healthy(engine: Engine, name: str) -> bool:
    if engine.podman:  # podman runs the image's HEALTHCHECK only when asked, here
        return engine.status("healthcheck", "run", name) == 0
    return engine("inspect", "--format", "{{.State.Health.Status}}", name).strip() == "healthy"


JSON_HEADERS = {"content-type": "application/json"}


def test_image_builds_runs_healthy_as_non_root_and_stops_cleanly(tmp_path: Path) -> None:
    engine = _engine()
    run_id = uuid.uuid4().hex[:12]
    tag = f"localhost/gradient-service-test:{run_id}"
    name = f"gradient-service-test-{run_id}"
    metrics: dict[str, object] = {"engine": Path(engine.exe).name}

    started = time.monotonic()
    engine("build", *engine.build_args, "-f", str(DOCKERFILE), "-t", tag, str(ROOT), timeout=900)
    metrics["build_s"] = round(time.monotonic() - started, 1)
    try:
        size = int(engine("image", "inspect", "--format", "{{.Size}}", tag).strip())
        metrics["image_size_bytes"] = size
        metrics["image_size_mb"] = round(size / 1e6, 1)
        base = engine("image", "inspect", "--format", "{{.Size}}", "python:3.11-slim", check=False).strip()
        if base.isdigit():  # what the image adds to its base (podman's stand-in base is larger than the real one)
            metrics["base_image_size_mb"] = round(int(base) / 1e6, 1)
            metrics["added_to_base_mb"] = round((size - int(base)) / 1e6, 1)
        (image,) = json.loads(engine("image", "inspect", tag))
        healthcheck = image.get("Healthcheck") or image["Config"].get("Healthcheck")  # podman | docker
        assert healthcheck and healthcheck["Test"][0] == "CMD", "the image keeps its HEALTHCHECK"
        assert image["Config"]["User"].split(":")[0] not in {"", "0", "root"}

        port = free_port()
        started = time.monotonic()
        # two workers (multiprocess metrics) and a read-only root filesystem, as Kubernetes runs it
        engine(
            "run", "-d", "--name", name, *engine.run_args, "-p", f"127.0.0.1:{port}:8000",
            "-e", "WEB_CONCURRENCY=2", "--read-only", "--tmpfs", "/tmp", tag,
        )  # fmt: skip
        deadline = started + 90
        while not _healthy(engine, name):
            state = json.loads(engine("inspect", "--format", "{{json .State}}", name))
            assert state["Running"], f"the container stopped: {state}\n{engine.logs(name)}"
            assert time.monotonic() < deadline, f"not healthy in 90 s:\n{engine.logs(name)}"
            time.sleep(0.2)
        metrics["start_to_healthy_s"] = round(time.monotonic() - started, 2)

        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as client:
            deadline = time.monotonic() + 30
            while client.get("/readyz").status_code != 200:  # healthy (alive) comes before ready
                assert time.monotonic() < deadline, "healthy but never ready"
                time.sleep(0.1)
            r = client.post("/gradient", json=WORKED_EXAMPLE)
            assert r.status_code == 200, r.text
            assert r.json()["gradients"]["w"] == pytest.approx(WORKED_GRADIENT_W, rel=1e-12)
            assert r.json()["gradients"]["b"] == pytest.approx(WORKED_GRADIENT_B, rel=1e-12)
            r = client.post("/grade", json=GRADE_REQUEST)
            assert r.status_code == 200, r.text
            assert r.json()["score"] == pytest.approx(GRADE_SCORE)
            # the learner's page and its vendored KaTeX ship in the image (package data)
            r = client.get("/explain")
            assert r.status_code == 200 and "katex" in r.text
            for asset in ("katex/katex.min.js", "katex/katex.min.css", "katex/fonts/KaTeX_Main-Regular.woff2"):
                assert client.get(f"/static/{asset}").status_code == 200, asset
            # a big compact body (above INLINE_BODY_BYTES: the array path) is answered in the image too
            rows = [[0.5, 1.5]] * 5000
            big = {**WORKED_EXAMPLE, "data": {"X": rows, "y": [0, 1] * 2500}}
            r = client.post("/gradient", content=json.dumps(big, separators=(",", ":")), headers=JSON_HEADERS)
            assert r.status_code == 200, r.text
            # ... and as its multipart form with X as .npy (python-multipart in the image), the same answer
            request = {**big, "data": {"y": big["data"]["y"]}}
            files = {"request": (None, json.dumps(request), "application/json"), "X": ("X.npy", npy_bytes(rows))}
            as_npy = client.post("/gradient", files=files)
            assert (as_npy.status_code, as_npy.content) == (200, r.content), as_npy.text
            # prometheus_client's multiprocess mode works in the image's (writable) metrics directory
            r = client.get("/metrics")
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
            assert "# TYPE" in r.text

        assert engine("exec", name, "id", "-u").strip() not in {"", "0"}, "the service runs as root"
        cmdline = engine("exec", name, "cat", "/proc/1/cmdline").replace("\0", " ")
        assert "-m service serve" in cmdline, f"PID 1 is not the service (exec-form CMD): {cmdline}"

        started = time.monotonic()
        engine("stop", "-t", "20", name, timeout=60)
        stop_s = metrics["stop_s"] = round(time.monotonic() - started, 2)
        state = json.loads(engine("inspect", "--format", "{{json .State}}", name))
        logs = engine.logs(name)
        assert state["ExitCode"] == 0, f"exit code {state['ExitCode']} on SIGTERM:\n{logs[-3000:]}"
        assert stop_s < 15, "stopped by SIGKILL after the timeout, not by SIGTERM"
        assert "shutdown complete" in logs.lower() or "Finished server process" in logs
    finally:
        engine("rm", "-f", name, check=False)
        engine("rmi", "-f", tag, check=False)
        out = tmp_path / "container-metrics.json"
        out.write_text(json.dumps(metrics, indent=2) + "\n")
        print(f"\ncontainer metrics ({out}): {json.dumps(metrics)}")

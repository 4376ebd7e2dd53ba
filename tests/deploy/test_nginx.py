"""docker/nginx/nginx.conf for real: nginx in front of two real services on loopback ports.

Only the listen address and upstream-servers.conf (the replicas' addresses) are replaced; the rest
of the file is the one compose mounts.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.tools import NGINX_DIR, WORKED_EXAMPLE, WORKED_GRADIENT_W, is_root, unavailable
from tests.system.server import Service, free_port, running_service

pytestmark = pytest.mark.slow

NOBODY = 65534
MAX_BODY = 64 * 1024 * 1024  # GRADIENT_SERVICE_MAX_BODY_BYTES' default, and nginx's client_max_body_size


def _nginx() -> str:
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
    if found:
        return found
    if not is_root():
        unavailable("nginx is not installed, and only root can install it (apt-get install nginx-light)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "nginx-light"]
    if subprocess.run(cmd, capture_output=True, env=env, timeout=600).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env, timeout=600)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        if proc.returncode != 0:
            unavailable(f"apt-get install nginx-light failed: {proc.stderr[-500:]}")
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(found, os.X_OK):
        unavailable("nginx was installed but is not found")
    return found


def render(prefix: Path, port: int, upstreams: list[str]) -> Path:
    """docker/nginx's files in prefix, listening on 127.0.0.1:port, sending to the given upstreams."""
    conf = (NGINX_DIR / "nginx.conf").read_text()
    conf, n = re.subn(r"^(\s*)listen 8080;$", rf"\1listen 127.0.0.1:{port};", conf, flags=re.M)
    assert n == 1, "nginx.conf's `listen 8080;` was not found"
    (prefix / "nginx.conf").write_text(conf)
    (prefix / "upstream-servers.conf").write_text(
        "".join(f"server {u} max_fails=1 fail_timeout=5s;\n" for u in upstreams)
    )
    return prefix / "nginx.conf"


@contextlib.contextmanager
def running_nginx(upstreams: list[str]) -> Iterator[tuple[str, Path]]:
    """nginx on a free loopback port (base URL and access log), its files in a temporary prefix."""
    nginx = _nginx()
    prefix = Path(tempfile.mkdtemp(prefix="gradient-nginx-"))
    port = free_port()
    conf = render(prefix, port, upstreams)
    log = prefix / "access.log"
    log.touch()
    (prefix / "error.log").touch()
    # unprivileged, as compose runs it: when the tests run as root, nginx runs as nobody, and
    # owns its prefix (where it writes its temporary files) and its logs
    user = NOBODY if is_root() else None
    if user is not None:
        for path in (prefix, log, prefix / "error.log"):
            os.chown(path, NOBODY, NOBODY)
    cmd = [nginx, "-p", f"{prefix}/", "-c", str(conf), "-g", f"daemon off; pid {prefix}/nginx.pid;"]
    # (stdout: nginx reopens /dev/stdout for its access log, which a pipe of ours would not allow)
    check = subprocess.run(
        [*cmd, "-t"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=30, user=user, group=user
    )
    assert check.returncode == 0, check.stderr
    with open(log, "ab") as out, open(prefix / "error.log", "ab") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, user=user, group=user)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            assert proc.poll() is None, (prefix / "error.log").read_text()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(base + "/nginx-health", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.05)
        yield base, log
    finally:
        proc.send_signal(signal.SIGQUIT)  # graceful
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(prefix, ignore_errors=True)


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[str, Path, list[Service]]]:
    _nginx()  # skip (or fail under CI) before starting anything
    with contextlib.ExitStack() as stack:
        services = [stack.enter_context(running_service()) for _ in range(2)]
        upstreams = [s.base.removeprefix("http://") for s in services]
        base, log = stack.enter_context(running_nginx(upstreams))
        yield base, log, services


def _access_log(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def test_gradient_through_the_proxy_with_a_request_id(stack: tuple[str, Path, list[Service]]) -> None:
    base, log, services = stack
    with httpx.Client(base_url=base, timeout=10) as client:
        r = client.post("/gradient", json=WORKED_EXAMPLE)
        assert r.status_code == 200, r.text
        assert r.json()["gradients"]["w"] == pytest.approx(WORKED_GRADIENT_W, rel=1e-12)
        generated = r.headers.get_list("x-request-id")
        assert len(generated) == 1 and re.fullmatch(r"[0-9a-f]{32}", generated[0]), generated
        # a client's id is passed through to the service and comes back; a malformed one is replaced
        r = client.post("/gradient", json=WORKED_EXAMPLE, headers={"X-Request-ID": "grader-42.run:7"})
        assert r.headers.get_list("x-request-id") == ["grader-42.run:7"]
        r = client.post("/gradient", json=WORKED_EXAMPLE, headers={"X-Request-ID": "bad id\tinjected"})
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])
        for _ in range(6):
            assert client.post("/gradient", json=WORKED_EXAMPLE).status_code == 200
    time.sleep(0.2)
    entries = [e for e in _access_log(log) if e["uri"] == "/gradient"]
    assert any(e["request_id"] == "grader-42.run:7" for e in entries)
    # round robin: both replicas served some of them
    used = {e["upstream"] for e in entries}
    assert used == {s.base.removeprefix("http://") for s in services}, used
    assert "grader-42.run:7" in "".join(s.log() for s in services), "the service logs the id nginx sent it"


def test_bodies_over_64_mib_are_refused_by_nginx(stack: tuple[str, Path, list[Service]]) -> None:
    base, log, _ = stack
    with httpx.Client(base_url=base, timeout=60) as client:
        headers = {"Content-Type": "application/json", "X-Request-ID": "too-big"}
        r = client.post("/gradient", content=b" " * (MAX_BODY + 1), headers=headers)
        assert r.status_code == 413
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"] == "urn:gradient-service:problem:body-too-large"
        assert "proxy" in r.json()["detail"], "refused by nginx, not by a replica"
        assert r.headers["x-request-id"] == "too-big"
        # exactly the limit goes through to the service (whose answer is about the JSON, not the size)
        r = client.post("/gradient", content=b" " * MAX_BODY, headers=headers)
        assert r.status_code == 400, r.text
        assert r.json()["type"] == "urn:gradient-service:problem:invalid-json"
    time.sleep(0.2)
    refused = [e for e in _access_log(log) if e["request_id"] == "too-big" and e["status"] == 413]
    assert refused and refused[0]["upstream"] == "", "nginx answered 413 without asking a replica"


def test_requests_keep_succeeding_when_a_replica_dies(stack: tuple[str, Path, list[Service]]) -> None:
    base, log, services = stack
    with httpx.Client(base_url=base, timeout=10) as client:
        # keep-alive connections to both replicas are open in nginx's pool
        for _ in range(4):
            assert client.post("/gradient", json=WORKED_EXAMPLE).status_code == 200
        services[0].proc.kill()
        services[0].proc.wait()
        for i in range(20):
            r = client.post("/gradient", json=WORKED_EXAMPLE)
            assert r.status_code == 200, f"request {i} after the replica died: {r.status_code} {r.text}"
            assert r.json()["gradients"]["w"] == pytest.approx(WORKED_GRADIENT_W, rel=1e-12)
        time.sleep(0.2)
        # the POST that met the dead replica was retried on the other one (non_idempotent)
        dead = services[0].base.removeprefix("http://")
        retried = [e for e in _access_log(log) if str(e["upstream"]).startswith(dead + ", ")]
        assert retried and retried[0]["method"] == "POST" and retried[0]["status"] == 200, _access_log(log)[-5:]
        # with no replica left, the proxy answers a problem document, not an HTML page
        services[1].proc.send_signal(signal.SIGTERM)
        services[1].proc.wait(timeout=15)
        r = client.post("/gradient", json=WORKED_EXAMPLE)
        assert r.status_code == 503
        assert r.json()["type"] == "urn:gradient-service:problem:service-unavailable"
        assert r.headers["retry-after"] == "1"

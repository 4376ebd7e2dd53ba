"""System tests against a real uvicorn process: the documented commands, the worked example, shutdown."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.system.server import ROOT, running_service

pytestmark = pytest.mark.slow

README = ROOT / "README.md"
# every page of the docs site with a replayed example, and the README
DOCUMENTS = [README, *sorted((ROOT / "docs").rglob("*.md"))]
EXAMPLE = re.compile(
    r"<!-- example(?P<varies>: varies)? -->\n```bash\n(?P<cmd>.*?)\n```\n```json\n(?P<out>.*?)```", re.S
)


def _documents(text: str) -> list[object]:
    """Every JSON document in text (one command may print several)."""
    dec = json.JSONDecoder()
    docs, i = [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return docs
        doc, i = dec.raw_decode(text, i)
        docs.append(doc)


# finite differences divide a last-ulp difference of exp between CPUs by h = 1e-6
# Finite-difference estimates move with the last bits of J (which BLAS kernels and SIMD loops set, and they
# differ between CPUs): an estimate agrees to about 1e-9, and its relative error is any value far below 1e-6.
_LOOSE = {"numeric": (1e-6, 0.0), "relative_error": (0.0, 1e-8), "max_relative_error": (0.0, 1e-8)}


def _close(a: object, b: object, rtol: float = 1e-12, atol: float = 0.0) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], *_LOOSE.get(k, (rtol, atol))) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y, rtol, atol) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        # BLAS kernels differ between CPUs in the last ulp of a sum
        return (
            isinstance(a, int | float) and isinstance(b, int | float) and bool(np.isclose(a, b, rtol=rtol, atol=atol))
        )
    return a == b


def _run(cmd: str, base: str) -> str:
    cmd = cmd.replace("http://127.0.0.1:8000", base)
    # `python3` in a command is the project's (numpy included), as for a reader who ran make run
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    out = subprocess.run(
        ["bash", "-o", "pipefail", "-c", cmd],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "PATH": path},
    )
    return out.stdout


def test_readme_examples_are_the_service_output() -> None:
    """Replay every curl command of the README and of every page under docs/ (each `<!-- example -->`
    block); UPDATE_README=1 rewrites the outputs instead."""
    if shutil.which("curl") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("curl is needed to replay the documented commands")
        pytest.skip("curl is not installed: the documented commands cannot be replayed")
    texts = {path: path.read_text() for path in DOCUMENTS}
    found = {path: list(EXAMPLE.finditer(text)) for path, text in texts.items()}
    assert len(found[README]) >= 1, "the README's example was not found"
    assert sum(len(examples) for examples in found.values()) >= 20, "the documented examples were not found"
    for path, text in texts.items():
        markers = len(re.findall(r"^<!-- example", text, re.M))
        assert markers == len(found[path]), f"{path.relative_to(ROOT)}: an example marker without its blocks"
    update = os.environ.get("UPDATE_README") == "1"
    with running_service() as svc:
        base = svc.base
        for path, examples in found.items():
            if not examples:
                continue
            where = path.relative_to(ROOT)
            text, new_text, pos = texts[path], [], 0
            for ex in examples:
                got = _run(ex["cmd"], base)
                if update:
                    new_text.append(text[pos : ex.start("out")] + got)
                    pos = ex.end("out")
                    continue
                shown, actual = _documents(ex["out"]), _documents(got)
                assert shown, f"{where} shows no output for: {ex['cmd'][:80]}"
                if ex["varies"]:
                    assert [sorted(d) for d in shown] == [sorted(d) for d in actual]  # type: ignore[call-overload]
                else:
                    assert _close(shown, actual), f"{where}: output differs for: {ex['cmd'][:100]}\n{got}"
            if update:
                path.write_text("".join(new_text) + text[pos:])


def test_worked_example_over_http_and_clean_shutdown() -> None:
    body = {
        "model": "logistic_regression",
        "parameters": {"w": [2, 3], "b": 1},
        "data": {"X": [[0.5, 1.5], [1, 1], [1.5, 0.5], [3, 0.5], [2, 2], [1, 2.5]], "y": [0, 0, 0, 1, 1, 1]},
    }
    with running_service() as svc:
        base, proc = svc.base, svc.proc
        r = httpx.post(base + "/gradient", json=body, timeout=10)
        assert r.status_code == 200
        g = r.json()["gradients"]
        np.testing.assert_allclose(g["w"], [0.498333393278696, 0.49883942983996693], rtol=1e-14)
        np.testing.assert_allclose(g["b"], 0.49861806546328574, rtol=1e-14)
        # a large problem goes through the worker thread and gives the same kind of answer
        rng = np.random.default_rng(0)
        X = rng.normal(size=(5000, 10))
        big = {
            "model": "linear_regression",
            "parameters": {"w": [0.1] * 10, "b": 0.0},
            "data": {"X": X.tolist(), "y": rng.normal(size=5000).tolist()},
        }
        r = httpx.post(base + "/gradient", json=big, timeout=30)
        assert r.status_code == 200
        expected = X.T @ (X @ np.full(10, 0.1) - np.asarray(big["data"]["y"])) / 5000
        np.testing.assert_allclose(r.json()["gradients"]["w"], expected, rtol=1e-10)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert "Traceback" not in svc.log()


def test_openapi_served_matches_committed_file() -> None:
    committed = json.loads((ROOT / "openapi" / "openapi.json").read_text())
    with running_service() as svc:
        base = svc.base
        served = httpx.get(base + "/openapi.json", timeout=10).json()
    assert served == committed, "run `python -m service export-openapi`"


def test_docs_page_is_served() -> None:
    with running_service() as svc:
        base = svc.base
        r = httpx.get(base + "/docs", timeout=10)
    assert r.status_code == 200 and "swagger" in r.text.lower()


def test_metrics_aggregate_over_workers_and_logs_are_json(tmp_path: Path) -> None:
    """Two uvicorn workers in multiprocess mode: /metrics counts every request, whichever served it."""
    metrics_dir = tmp_path / "metrics"
    env = {"WEB_CONCURRENCY": "2", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}

    def hit(i: int) -> None:  # a new connection each time, so the kernel spreads them over the workers
        assert httpx.get(svc.base + "/healthz", headers={"X-Request-ID": f"agg-{i}"}, timeout=10).status_code == 200

    with running_service(env=env) as svc:
        sent = 0
        with ThreadPoolExecutor(8) as pool:
            while sent < 400:
                list(pool.map(hit, range(sent, sent + 40)))
                sent += 40
                if len({p.name for p in metrics_dir.glob("*.db")}) >= 2 * 2:  # counter + histogram per worker
                    break
        pids = {p.stem.rsplit("_", 1)[-1] for p in metrics_dir.glob("*.db")}
        assert len(pids) >= 2, "both workers should have served requests"
        for _ in range(6):  # each scrape may land on either worker, and each must see every request
            text = httpx.get(svc.base + "/metrics", timeout=10).text
            line = next(
                x
                for x in text.splitlines()
                if x.startswith("gradient_http_requests_total{") and 'route="/healthz"' in x
            )
            assert float(line.rsplit(" ", 1)[1]) == sent
    lines = [json.loads(x) for x in svc.log().splitlines() if x.startswith("{")]
    access = [x for x in lines if x.get("logger") == "service.access"]
    assert {x["request_id"] for x in access} >= {f"agg-{i}" for i in range(sent)}

"""Record the golden answers: `python -m tests.golden.record` (rewrites tests/golden/golden.jsonl.gz).

Only when a change of the service's answers is meant: the golden test exists to show that a
refactor changes none. The file holds each request with the status, media type and exact bytes of
its answer. It records in a process with the pinned numeric environment (numeric_env.py): run from
another, it starts one.
"""

from __future__ import annotations

import gzip
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.golden.cases import SECRET, Case, all_cases
from tests.golden.numeric_env import is_pinned, machine_problem, pinned_env

GOLDEN = Path(__file__).with_name("golden.jsonl.gz")


def golden_settings(tmp: Path) -> Settings:
    return Settings(signing_secret=SECRET, rate_limit_per_minute=0, data_dir=tmp)


def answer(client: TestClient, case: Case) -> dict[str, Any]:
    headers = {"content-type": case.content_type} if case.body is not None else {}
    r = client.request(case.method, case.path, content=case.body, headers=headers)
    return {"status": r.status_code, "media_type": r.headers.get("content-type"), "answer": r.content.decode("utf-8")}


def record(path: Path = GOLDEN) -> Counter[int]:
    import tempfile

    statuses: Counter[int] = Counter()
    lines = []
    with tempfile.TemporaryDirectory() as tmp, TestClient(create_app(golden_settings(Path(tmp)))) as client:
        for case in all_cases():
            got = answer(client, case)
            statuses[got["status"]] += 1
            lines.append(
                json.dumps(
                    {
                        "name": case.name,
                        "method": case.method,
                        "path": case.path,
                        "content_type": case.content_type,
                        "body": None if case.body is None else case.body.decode("utf-8"),
                        **got,
                    },
                    ensure_ascii=False,
                )
            )
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        out.write(("\n".join(lines) + "\n").encode("utf-8"))
    return statuses


if __name__ == "__main__":
    if (problem := machine_problem()) is not None:
        sys.exit(problem)
    if not is_pinned():
        import subprocess

        sys.exit(
            subprocess.run([sys.executable, "-m", "tests.golden.record"], env=pinned_env(), check=False).returncode
        )
    counts = record()
    print(f"wrote {GOLDEN}: {sum(counts.values())} requests, statuses {dict(sorted(counts.items()))}", file=sys.stderr)

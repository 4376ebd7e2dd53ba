"""Replay recorded golden requests in this process and print the changed ones as JSON lines.

`python -m tests.golden.replay FIRST COUNT`: requests FIRST .. FIRST+COUNT-1 of the recording. Run by
test_golden.py in a process started with the pinned numeric environment (tests/golden/numeric_env.py).
"""

from __future__ import annotations

import gzip
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.golden.numeric_env import is_pinned


def recorded() -> list[dict[str, Any]]:
    from tests.golden.record import GOLDEN

    with gzip.open(GOLDEN, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main(first: int, count: int) -> int:
    if not is_pinned():
        print("run with the pinned numeric environment (tests/golden/numeric_env.py)", file=sys.stderr)
        return 2
    from fastapi.testclient import TestClient

    from service.app import create_app
    from tests.golden.cases import Case
    from tests.golden.record import answer, golden_settings

    records = recorded()[first : first + count]
    with tempfile.TemporaryDirectory() as tmp, TestClient(create_app(golden_settings(Path(tmp)))) as client:
        for rec in records:
            body = None if rec["body"] is None else rec["body"].encode("utf-8")
            got = answer(client, Case(rec["name"], rec["method"], rec["path"], body, rec["content_type"]))
            want = {k: rec[k] for k in ("status", "media_type", "answer")}
            if got != want:
                print(json.dumps({"name": rec["name"], "want": want, "got": got}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), int(sys.argv[2])))

"""The golden test: the service's exact answers to 2,000+ recorded requests are unchanged.

A refactor lands only with this passing: status, media type and every byte of every answer, for
every model kind and pairing, explain none/factors/full, verify, networks of 1-4 layers, grading
with every catalogued mistake, signed problems, batches, descent, the drawings, the catalogue and
errors (tests/golden/cases.py made the requests; `python -m tests.golden.record` re-records them
when a change of the answers is meant, and the commit says why).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from tests.golden.cases import Case
from tests.golden.record import GOLDEN, answer, golden_settings

with gzip.open(GOLDEN, "rt", encoding="utf-8") as _f:
    RECORDED: list[dict[str, Any]] = [json.loads(line) for line in _f if line.strip()]
CHUNK = 100
CHUNKS = [RECORDED[i : i + CHUNK] for i in range(0, len(RECORDED), CHUNK)]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with TestClient(create_app(golden_settings(tmp_path_factory.mktemp("golden")))) as c:
        yield c


def test_the_golden_set_is_large_and_varied() -> None:
    assert len(RECORDED) >= 2000
    names = [r["name"] for r in RECORDED]
    assert len(set(names)) == len(names)
    for prefix in ("gradient/single_layer/", "network/4/", "grade/", "signed/", "descent/", "graph/", "error/"):
        assert any(n.startswith(prefix) for n in names), prefix
    statuses = {r["status"] for r in RECORDED}
    assert {200, 400, 403, 404, 405, 415, 422} <= statuses
    codes = {n.split("/")[3] for n in names if n.startswith("grade/") and n.count("/") >= 3}
    from service.grading.mistakes import ALL_MISTAKES

    single_layer_codes = {m.code for m in ALL_MISTAKES}
    assert len(codes & single_layer_codes) >= 12


@pytest.mark.parametrize("chunk", range(len(CHUNKS)))
def test_the_answers_are_unchanged(client: TestClient, chunk: int) -> None:
    changed = []
    for rec in CHUNKS[chunk]:
        body = None if rec["body"] is None else rec["body"].encode("utf-8")
        got = answer(client, Case(rec["name"], rec["method"], rec["path"], body, rec["content_type"]))
        want = {k: rec[k] for k in ("status", "media_type", "answer")}
        if got != want:
            changed.append((rec["name"], want["status"], got["status"], want["answer"][:200], got["answer"][:200]))
    assert not changed, f"{len(changed)} answers changed; the first: {changed[:3]}"

"""The golden test: the service's exact answers to 2,000+ recorded requests are unchanged.

A refactor lands only with this passing: status, media type and every byte of every answer, for
every model kind and pairing, explain none/factors/full, verify, networks of 1-4 layers, grading
with every catalogued mistake, signed problems, batches, descent, the drawings, the catalogue and
errors (tests/golden/cases.py made the requests; `python -m tests.golden.record` re-records them
when a change of the answers is meant, and the commit says why). The answers are replayed in
processes started with one floating-point environment (numeric_env.py), as they were recorded, so
that the last bits do not depend on the machine's BLAS kernels and SIMD loops.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.golden.numeric_env import machine_problem, pinned_env
from tests.golden.replay import recorded

ROOT = Path(__file__).resolve().parents[2]
RECORDED = recorded()
CHUNK = 200
CHUNKS = range(0, len(RECORDED), CHUNK)


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


@pytest.mark.parametrize("first", CHUNKS)
def test_the_answers_are_unchanged(first: int) -> None:
    problem = machine_problem()
    assert problem is None, problem
    out = subprocess.run(
        [sys.executable, "-m", "tests.golden.replay", str(first), str(CHUNK)],
        cwd=ROOT,
        env=pinned_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    changed = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    first_ones = [
        (c["name"], c["want"]["status"], c["got"]["status"], c["want"]["answer"][:200], c["got"]["answer"][:200])
        for c in changed[:3]
    ]
    assert not changed, f"{len(changed)} answers changed; the first: {first_ones}"

"""Helpers for tests that check LaTeX shown to users: collect it from JSON, parse it with KaTeX.

`katex_errors` runs `node tests/katex/check.mjs` once for a whole batch of strings; it needs node
and the pinned KaTeX installed with `npm ci --prefix tests/katex`, and fails loudly (never skips)
when either is missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
KATEX_DIR = REPO_ROOT / "tests" / "katex"
CHECK_SCRIPT = KATEX_DIR / "check.mjs"

_INSTALL_HINT = f"run `npm ci --prefix tests/katex` in {REPO_ROOT} (needs node and npm)"


def collect_latex(obj: Any) -> list[str]:
    """Every string value under a key named `latex`, anywhere in a JSON-like object, in order."""
    found: list[str] = []
    _collect(obj, found)
    return found


def _collect(obj: Any, found: list[str]) -> None:
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key == "latex" and isinstance(value, str):
                found.append(value)
            else:
                _collect(value, found)
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            _collect(item, found)


def katex_errors(strings: list[str]) -> list[tuple[str, str]]:
    """(latex, error) for each string KaTeX cannot render in display mode; empty when all parse."""
    strings = list(strings)
    if not strings:
        return []
    node = shutil.which("node")
    if node is None:
        raise RuntimeError(f"node is not on PATH: the KaTeX check needs it; install Node.js, then {_INSTALL_HINT}")
    if not (KATEX_DIR / "node_modules" / "katex").is_dir():
        raise RuntimeError(f"KaTeX is not installed in {KATEX_DIR / 'node_modules'}: {_INSTALL_HINT}")
    proc = subprocess.run(
        [node, str(CHECK_SCRIPT)],
        input=json.dumps(strings),
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=KATEX_DIR,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{CHECK_SCRIPT} failed (exit {proc.returncode}): {proc.stderr.strip()}")
    try:
        failures = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise RuntimeError(f"{CHECK_SCRIPT} printed no JSON: {proc.stdout!r} {proc.stderr!r}") from exc
    return [(strings[f["index"]], f["error"]) for f in failures]

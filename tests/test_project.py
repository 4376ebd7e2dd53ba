"""The README's and the docs' promises that are checked without a server: Quick start, the pairings table, CI."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

from service.compute.activations import ActivationName
from service.compute.losses import LossName
from service.compute.pairings import CANONICAL, compatibility

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
CATALOGUE = (ROOT / "docs" / "catalogue.md").read_text()


def test_quick_start_has_exactly_two_commands() -> None:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None
    commands = [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]
    assert [c.split("#")[0].strip() for c in commands] == ["make run", "make test"]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)
    assert re.search(r"^make test-slow$", ci, re.M)
    assert re.search(r"^make docs$", ci, re.M)


def _catalogue_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("catalogue", ROOT / "hooks" / "catalogue.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pairings_table_is_generated_from_the_registry() -> None:
    """docs/catalogue.md keeps only the markers; the site's hook fills in one row per activation and
    one column per loss, each cell as `compatibility` and CANONICAL say."""
    hook = _catalogue_hook()
    kept = CATALOGUE.split(hook.START, 1)[1].split(hook.END, 1)[0]
    assert kept.strip() == "", "the table is generated: leave only the markers in docs/catalogue.md"
    table = hook.fill(CATALOGUE).split(hook.START, 1)[1].split(hook.END, 1)[0]
    rows = [r for r in table.strip().splitlines()[2:]]
    header = [c.strip() for c in table.strip().splitlines()[0].strip("|").split("|")][1:]
    assert header == [lo.value for lo in LossName]
    assert [r.strip("|").split("|")[0].strip() for r in rows] == [a.value for a in ActivationName]
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        act = ActivationName(cells[0])
        for loss, cell in zip(LossName, cells[1:], strict=True):
            ok, _ = compatibility(act, loss)
            if (act, loss) in CANONICAL:
                assert cell == f"**canonical** ({CANONICAL[(act, loss)].model.value})"
            else:
                assert cell == ("yes" if ok else "—"), (act, loss)

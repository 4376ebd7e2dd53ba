"""The deployment docs (docs/deployment.md, docs/configuration.md) match the files."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from service.settings import Settings
from tests.deploy.tools import COMPOSE, ROOT


def _deploy_text() -> str:
    return (ROOT / "docs" / "deployment.md").read_text()


def _table(section: str) -> dict[str, list[str]]:
    """The rows of the tables on docs/<section>.md (the service's settings, then compose's own)."""
    text = (ROOT / "docs" / f"{section.lower()}.md").read_text()
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `"):
            rows.setdefault(cells[0].strip("`"), cells[1:])
    return rows


def _documented_default(field: Any) -> str:
    """How the table writes a default: `value`, or "unset" for none (an empty dict of keys included)."""
    if field.default_factory is not None:
        value = field.default_factory()
        return "unset" if value == {} else f"`{json.dumps(value)}`"
    return "unset" if field.default is None else f"`{field.default}`"


def test_configuration_table_lists_every_setting_with_its_default() -> None:
    rows = _table("Configuration")
    for name, field in Settings.model_fields.items():
        var = f"GRADIENT_SERVICE_{name.upper()}"
        assert var in rows, f"{var} is not in the configuration table of docs/configuration.md"
        assert rows[var][0].split()[0] == _documented_default(field), (var, rows[var][0])
    assert rows["WEB_CONCURRENCY"][0] == "`1`"
    assert rows["PROMETHEUS_MULTIPROC_DIR"][1] == "`/tmp/gradient-metrics`"


def test_compose_variables_are_documented() -> None:
    used = set(re.findall(r"\$\{([A-Z_]+)", COMPOSE.read_text()))
    documented = set(_table("Configuration"))
    assert used <= documented, f"compose.yaml reads undocumented variables: {sorted(used - documented)}"
    for var, default in re.findall(r"\$\{([A-Z_]+):-([^}]*)\}", COMPOSE.read_text()):
        assert _table("Configuration")[var][0].split()[0] == f"`{default}`", var


def test_documented_commands_name_real_files() -> None:
    text = _deploy_text()
    for path in set(re.findall(r"(?:-f |-k )(docker/\S+)", text)):
        assert (ROOT / path).exists(), path
    compose = yaml.safe_load(COMPOSE.read_text())
    assert "nginx:1.28-alpine" in compose["services"]["nginx"]["image"] and "nginx:1.28-alpine" in text

"""For every test: the attempts database in a fresh temporary directory, never ./data of the checkout.

Attempts now outlive an application (that is their point), so two tests that sign the same problem in
the same second (the same token) would share its attempts through one database. The environment
variable is set at import, for the applications made when modules are imported or by module-scoped
fixtures, and then per test, for those a test makes (Settings reads it when constructed).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ["GRADIENT_SERVICE_DATA_DIR"] = tempfile.mkdtemp(prefix="gradient-service-data-")
# The formula workers start at their first job, not with every test's application (about 0.2 s each);
# tests/api/test_derive.py starts them with the app, as the service does.
os.environ.setdefault("GRADIENT_SERVICE_FORMULA_START_WORKERS", "false")


@pytest.fixture(autouse=True)
def _attempts_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path_factory.mktemp("data")
    monkeypatch.setenv("GRADIENT_SERVICE_DATA_DIR", str(path))
    return path

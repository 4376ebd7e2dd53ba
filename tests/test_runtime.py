"""The allocator tuning (service/runtime.py) takes effect on glibc and runs once per process."""

from __future__ import annotations

import subprocess
import sys

import pytest

RUN = """
import ctypes, json
from service import runtime
first = runtime.tune_allocator()
second = runtime.tune_allocator()
print(json.dumps([first, second]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux only")
def test_tuning_succeeds_once_in_a_fresh_process() -> None:
    out = subprocess.run([sys.executable, "-c", RUN], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[true, true]"


def test_the_app_tunes_its_process() -> None:
    from service import runtime
    from service.app import create_app

    create_app()
    assert runtime._tuned is sys.platform.startswith("linux")

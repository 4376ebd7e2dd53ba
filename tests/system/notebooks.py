"""Run the notebooks of examples/notebooks/ top to bottom in a real ipykernel against a real service.

`python -m tests.system.notebooks` runs them and writes them back with their outputs (the stored,
rendered outputs the docs show), against a service started on 127.0.0.1:8000 (or a free port).
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.system.server import ROOT, running_service

NOTEBOOKS = ROOT / "examples" / "notebooks"
GRADER, STUDENT = "g-notebook", "s-notebook"
SERVICE_ENV = {
    "GRADIENT_SERVICE_API_KEYS": json.dumps({GRADER: ["grader"], STUDENT: ["student"]}),
    "GRADIENT_SERVICE_SIGNING_SECRET": "notebook-test-secret-" + "x" * 16,
}
# The course's worked example (docs/design/math.md): what the notebooks' token holds.
WORKED_PROBLEM = {
    "model": "logistic_regression",
    "parameters": {"w": [2.0, 3.0], "b": 1.0},
    "data": {"X": [[0.5, 1.5], [1, 1], [1.5, 0.5], [3, 0.5], [2, 2], [1, 2.5]], "y": [0, 0, 0, 1, 1, 1]},
}


def notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


@contextmanager
def service_and_token(port: int | None = None) -> Iterator[tuple[str, str]]:
    """A running service with a grader and a student key, and the worked problem signed by the grader."""
    from gradient_service_client import GradientClient

    with running_service(env=SERVICE_ENV, port=port) as service:
        with GradientClient(service.base, api_key=GRADER) as grader:
            token = grader.sign(WORKED_PROBLEM, expires_in=3600)["problem_token"]
        yield service.base, token


def execute(path: Path, base_url: str, token: str, workdir: Path) -> Any:
    """The notebook at `path` executed in a fresh python3 kernel (this interpreter's), as the student:
    the client imported from this checkout, settings from the environment. Raises on a failing cell."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    pythonpath = os.pathsep.join(p for p in (str(ROOT / "clients" / "python"), os.environ.get("PYTHONPATH")) if p)
    env = {
        **os.environ,
        "PYTHONPATH": pythonpath,
        "GRADIENT_SERVICE_URL": base_url,
        "GRADIENT_SERVICE_API_KEY": STUDENT,
        "GRADIENT_SERVICE_PROBLEM_TOKEN": token,
    }
    client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(workdir)}})
    client.execute(env=env)  # jupyter_client runs "python" in the kernelspec as sys.executable
    return nb


def output_text(cell: Any) -> dict[str, str]:
    """A code cell's outputs by MIME type (text/plain, text/html, text/markdown; stream text as text/plain)."""
    found: dict[str, str] = {}
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            found["text/plain"] = found.get("text/plain", "") + output["text"]
        for mime, value in output.get("data", {}).items():
            found[mime] = found.get(mime, "") + ("".join(value) if isinstance(value, list) else str(value))
    return found


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def main() -> None:
    import tempfile

    import nbformat

    sys.path.insert(0, str(ROOT / "clients" / "python"))  # this checkout's client, as pytest's pythonpath does
    port = 8000 if _port_free(8000) else None
    with service_and_token(port) as (base, token), tempfile.TemporaryDirectory() as workdir:
        for path in notebooks():
            nb = execute(path, base, token, Path(workdir))
            for cell in nb.cells:
                cell.get("metadata", {}).pop("execution", None)
            nbformat.write(nb, path)
            print("wrote", path.relative_to(ROOT), file=sys.stderr)


if __name__ == "__main__":
    main()

"""MkDocs hook: each notebook of examples/notebooks/ as a page (examples/<name>.md), with its stored
outputs, rendered at build time: markdown cells as they are, code cells as Python blocks, and each
output as the notebook shows it (HTML where the cell gave HTML, else its plain text).

`render(notebook, name)` is plain Python over the notebook's JSON (tests/test_docs_site.py calls it);
`on_files` adds the pages to the site, so nothing is written into docs/.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "examples" / "notebooks"
# the service's vendored KaTeX, which the site also carries to typeset the notebook's formulas
KATEX = ROOT / "service" / "web" / "static" / "katex"


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _output(out: dict[str, Any]) -> str:
    if out.get("output_type") == "stream":
        return "```text\n" + _text(out.get("text", "")).rstrip() + "\n```\n"
    if out.get("output_type") == "error":
        return "```text\n" + html.escape(f"{out.get('ename')}: {out.get('evalue')}") + "\n```\n"
    data = out.get("data", {})
    if "text/html" in data:
        return '<div class="notebook-output">\n' + _text(data["text/html"]).strip() + "\n</div>\n"
    if "text/plain" in data:
        return "```text\n" + _text(data["text/plain"]).rstrip() + "\n```\n"
    return ""


def render(notebook: dict[str, Any], name: str) -> str:
    """The notebook as a markdown page: its cells in order, each code cell followed by its outputs."""
    parts = [f"<!-- generated from examples/notebooks/{name} by hooks/notebooks.py: edit the notebook, not this -->\n"]
    for cell in notebook.get("cells", []):
        source = _text(cell.get("source", "")).rstrip()
        if cell.get("cell_type") == "markdown":
            parts.append(source + "\n")
        elif cell.get("cell_type") == "code":
            parts.append("```python\n" + source + "\n```\n")
            parts.extend(_output(out) for out in cell.get("outputs", []))
    return "\n".join(p for p in parts if p)


def pages() -> dict[str, str]:
    """Site path → markdown, one page per notebook."""
    return {
        f"examples/{path.stem}.md": render(json.loads(path.read_text()), path.name)
        for path in sorted(NOTEBOOKS.glob("*.ipynb"))
    }


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for page, content in pages().items():
        files.append(File.generated(config, page, content=content))
    for path in sorted(KATEX.rglob("*")):
        if path.is_file():
            name = "assets/katex/" + path.relative_to(KATEX).as_posix()
            files.append(File.generated(config, name, abs_src_path=str(path)))
    return files

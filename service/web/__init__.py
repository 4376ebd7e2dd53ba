"""The learner's page: its HTML template and static files (our script and style, and KaTeX 0.19.1).

Static files are read once into memory from this package and served by exact name only (a lookup in
a dict built from the package's own files: nothing a request names can reach another file).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
TEMPLATES = Path(__file__).resolve().parent / "templates"
KATEX_VERSION = "0.19.1"

MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".woff2": "font/woff2",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    "": "text/plain; charset=utf-8",  # LICENSE
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    version: str  # a hash of the content: URLs carry it, so a new release is fetched anew

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


@cache
def assets() -> dict[str, Asset]:
    """Every static file by its path under static/ ('katex/katex.min.js'), with its media type."""
    found: dict[str, Asset] = {}
    for path in sorted(STATIC.rglob("*")):
        if not path.is_file() or path.suffix not in MEDIA_TYPES:
            continue
        body = path.read_bytes()
        name = path.relative_to(STATIC).as_posix()
        found[name] = Asset(body, MEDIA_TYPES[path.suffix], hashlib.sha256(body).hexdigest()[:16])
    return found


def url(name: str) -> str:
    """The versioned URL of a static file, for the page to reference."""
    return f"/static/{name}?v={assets()[name].version}"


def template(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")

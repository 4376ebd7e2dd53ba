"""A small SVG writer: every text and attribute is escaped here, in one place."""

from __future__ import annotations

import json
import math
from typing import Any
from xml.sax.saxutils import escape, quoteattr

SVG_NS = "http://www.w3.org/2000/svg"
FONT = "DejaVu Sans, Verdana, Arial, sans-serif"
INK = "#1a1a1a"
MUTED = "#4a4a4a"


def attrs(**kw: Any) -> str:
    """Attributes, escaped; a trailing underscore is dropped (class_) and other underscores become dashes."""
    parts = []
    for key, value in kw.items():
        if value is None:
            continue
        name = key.rstrip("_").replace("_", "-")
        parts.append(f"{name}={quoteattr(str(value))}")
    return " ".join(parts)


def text(x: float, y: float, content: str, **kw: Any) -> str:
    kw.setdefault("font_size", 12)
    kw.setdefault("fill", INK)
    return f"<text {attrs(x=_px(x), y=_px(y), **kw)}>{escape(content)}</text>"


def data_json(value: Any) -> str:
    """A value for a data-* attribute: JSON, so a reader gets the exact number back."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def document(width: float, height: float, body: list[str], *, ident: str, title: str, desc: str) -> str:
    """A standalone SVG document; no style element and no style attributes (the page's CSP forbids them)."""
    head = attrs(
        xmlns=SVG_NS,
        width=_px(width),
        height=_px(height),
        viewBox=f"0 0 {_px(width)} {_px(height)}",
        role="img",
        font_family=FONT,
    )
    return (
        f"<svg {head} {attrs(id=ident, aria_labelledby=f'{ident}-title {ident}-desc')}>"
        f"<title {attrs(id=ident + '-title')}>{escape(title)}</title>"
        f"<desc {attrs(id=ident + '-desc')}>{escape(desc)}</desc>" + "".join(body) + "</svg>"
    )


def _px(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def num(x: Any, digits: int = 4) -> str:
    """A number as a learner reads it: 4 significant figures, a real minus sign; n/a for a missing one."""
    if x is None:
        return "n/a"
    if isinstance(x, bool) or not isinstance(x, int | float):
        return str(x)
    if not math.isfinite(x):
        return str(x)
    s = f"{x + 0.0:.{digits}g}"  # + 0.0: −0 reads as 0
    return s.replace("-", "−")


def short(value: Any, items: int = 3, depth: int = 0) -> str:
    """A number, vector or matrix in a few characters: at most `items` entries per level, then …."""
    if isinstance(value, list):
        inner = [short(v, items, depth + 1) for v in value[:items]]
        if len(value) > items:
            inner.append(f"… {len(value)} in all")
        return "[" + ", ".join(inner) + "]"
    return num(value)


def shape(value: Any) -> str:
    dims = []
    while isinstance(value, list):
        dims.append(len(value))
        value = value[0] if value else None
    return "×".join(str(d) for d in dims) if dims else "scalar"


def named(value: Any) -> str:
    """An activation or a loss as a response's pairing names it: a catalogue name, or {"formula": ...} (its text)."""
    return str(value["formula"]) if isinstance(value, dict) else str(value)

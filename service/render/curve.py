"""The cost curve J(θ_t) of a /descent result as SVG: one panel per run, side by side.

Two pairings minimise different functions, so each panel has its own J axis: compare how fast each
curve falls, not their heights. Each point is also in a data-* attribute as exact JSON.
"""

from __future__ import annotations

import math
from typing import Any

from service.render.svg import INK, MUTED, attrs, data_json, document, named, num, text

PANEL_W, PANEL_H = 440.0, 300.0
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 64.0, 16.0, 58.0, 46.0
COLORS = ("#1f5fa8", "#b0411e")
MAX_POINTS = 2000  # a longer history is drawn through evenly spaced steps (the first and last kept)


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About `count` round tick values covering [lo, hi]."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw)
    first = math.ceil(lo / step) * step
    out, t = [], first
    while t <= hi + step * 1e-9:
        out.append(0.0 if abs(t) < step * 1e-9 else t)
        t += step
    return out


def _sample(n: int) -> list[int]:
    if n <= MAX_POINTS:
        return list(range(n))
    idx = {round(i * (n - 1) / (MAX_POINTS - 1)) for i in range(MAX_POINTS)}
    return sorted(idx)


def _panel(run: dict[str, Any], index: int, x0: float) -> list[str]:
    losses: list[float] = run["history"]["loss"]
    p = run["pairing"]
    name = f"{named(p['activation'])} + {named(p['loss'])}" + (" (canonical)" if p.get("canonical") else "")
    left, top = x0 + PLOT_LEFT, PLOT_TOP
    w, h = PANEL_W - PLOT_LEFT - PLOT_RIGHT, PANEL_H - PLOT_TOP - PLOT_BOTTOM
    n = len(losses)
    lo, hi = min(losses), max(losses)
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):
        lo, hi = lo - 0.5 * max(1.0, abs(lo)) * 0.1, hi + 0.5 * max(1.0, abs(hi)) * 0.1
    ticks = _ticks(lo, hi)
    lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])
    steps = max(n - 1, 1)

    def px(t: float) -> float:
        return left + w * t / steps

    def py(v: float) -> float:
        return top + h * (hi - v) / (hi - lo)

    color = COLORS[index % len(COLORS)]
    out = [
        f"<g {attrs(class_='run', data_run=index, data_pairing=name, data_status=run['status'])}>",
        text(x0 + 12, 20, name, font_weight="bold", font_size=13, class_="run-title"),
        text(
            x0 + 12,
            38,
            f"{run['status']} after {run['steps_taken']} steps, α = {num(run['learning_rate'])}: "
            f"J {num(losses[0])} → {num(losses[-1])}",
            fill=MUTED,
            font_size=11,
            class_="run-summary",
        ),
        f"<rect {attrs(x=left, y=top, width=w, height=h, fill='#ffffff', stroke='#999999')}/>",
    ]
    for t in ticks:
        y = py(t)
        out.append(f"<line {attrs(x1=left - 4, y1=y, x2=left + w, y2=y, stroke='#e3e3e3')}/>")
        out.append(text(left - 6, y + 4, num(t, 3), text_anchor="end", font_size=10, fill=MUTED))
    for t in _ticks(0, steps, 4):
        x = px(t)
        out.append(f"<line {attrs(x1=x, y1=top + h, x2=x, y2=top + h + 4, stroke='#999999')}/>")
        out.append(text(x, top + h + 16, f"{t:g}", text_anchor="middle", font_size=10, fill=MUTED))
    out.append(text(left + w / 2, PANEL_H - 8, "step t", text_anchor="middle", font_size=11, fill=INK))
    out.append(
        text(
            x0 + 14,
            top + h / 2,
            "J(θ_t)",
            text_anchor="middle",
            font_size=11,
            transform=f"rotate(-90 {x0 + 14:.1f} {top + h / 2:.1f})",
        )
    )
    idx = _sample(n)
    points = " ".join(f"{px(i):.2f},{py(losses[i]):.2f}" for i in idx)
    out.append(
        f"<polyline {attrs(points=points, fill='none', stroke=color, stroke_width=2, class_='curve')} "
        f"{attrs(data_steps=data_json(idx), data_loss=data_json([losses[i] for i in idx]))}/>"
    )
    if n == 1:
        out.append(f"<circle {attrs(cx=px(0), cy=py(losses[0]), r=3, fill=color)}/>")
    out.append("</g>")
    return out


def cost_curves(result: dict[str, Any]) -> str:
    """The SVG of a /descent response: J per step for each run, side by side."""
    runs = result["runs"]
    body = [f"<rect {attrs(width=PANEL_W * len(runs), height=PANEL_H, fill='#ffffff')}/>"]
    for i, run in enumerate(runs):
        body += _panel(run, i, i * PANEL_W)
    names = [f"{named(r['pairing']['activation'])} + {named(r['pairing']['loss'])}" for r in runs]
    desc = result.get("comparison") or "; ".join(
        f"{n}: {r['status']}, J from {num(r['history']['loss'][0])} to {num(r['final']['loss'])}"
        for n, r in zip(names, runs, strict=True)
    )
    return document(
        PANEL_W * len(runs),
        PANEL_H,
        body,
        ident="curve-svg",
        title="Cost during gradient descent: " + " vs ".join(names),
        desc=desc,
    )

"""The chain-rule derivation of a /gradient response as an HTML fragment (no script, no style attributes).

The learner's page draws the same structure in the browser (service/web/static/page.js) from the
same JSON; this server-side version is what a reader without JavaScript sees. Formulas are written
as plain text inside elements carrying their LaTeX in `data-latex`, which the page's script
typesets with KaTeX.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

from service.render.svg import named, num, short

MAX_COLUMNS = 12  # examples shown in a step's table; the rest are summarised

FACTOR_NAMES = {
    "z": "z",
    "f": "f",
    "L": "L",
    "J": "J",
    "dL/df": "∂L/∂f",
    "df/dz": "∂f/∂z",
    "dL/dz": "∂L/∂z",
    "dz/dw": "∂z/∂w",
    "dz/db": "∂z/∂b",
    "dR/dw": "∂R/∂w",
    "dJ/dw": "∂J/∂w",
    "dJ/db": "∂J/∂b",
}
PER_SAMPLE_COLUMNS = (("z", "z"), ("f", "f"), ("loss", "L"), ("dL_df", "∂L/∂f"), ("df_dz", "∂f/∂z"), ("dL_dz", "∂L/∂z"))


def step_id(factor: str) -> str:
    """A stable element id for a step: dL/df → step-dL-df, delta[2] → step-delta-2."""
    return "step-" + re.sub(r"[^A-Za-z0-9]+", "-", factor).strip("-")


def factor_name(factor: str) -> str:
    if factor in FACTOR_NAMES:
        return FACTOR_NAMES[factor]
    return factor.replace("dJ/d", "∂J/∂").replace("delta", "δ")


def _math(latex: str, text: str, tag: str = "div") -> str:
    return f'<{tag} class="math" data-latex="{escape(latex)}">{escape(text)}</{tag}>'


def _values(value: Any, m: int) -> str:
    if isinstance(value, list) and len(value) == m and m > 1:
        shown = value[:MAX_COLUMNS]
        head = "".join(f'<th scope="col">{i + 1}</th>' for i in range(len(shown)))
        cells = "".join(f"<td>{escape(short(v))}</td>" for v in shown)
        more = f'<p class="more">… and {m - len(shown)} more examples.</p>' if m > len(shown) else ""
        return (
            '<div class="table-wrap"><table class="values"><thead><tr><th scope="row">example</th>'
            f'{head}</tr></thead><tbody><tr><th scope="row">value</th>{cells}</tr></tbody></table></div>{more}'
        )
    return f'<p class="value">= <span class="num">{escape(short(value, 6))}</span></p>'


def _simplification(simp: dict[str, Any]) -> str:
    return (
        '<aside class="simplification" aria-label="Canonical simplification">'
        "<h4>Canonical simplification</h4>"
        + _math(simp["dL_dz"]["latex"], simp["dL_dz"]["text"])
        + "<p>The factors cancel:</p>"
        + _math(simp["cancellation"]["latex"], simp["cancellation"]["text"])
        + f"<p>Why: {escape(simp['distribution'])} distribution, {escape(simp['link'])};</p>"
        + _math(simp["log_partition"]["latex"], simp["log_partition"]["text"])
        + _math(simp["reason"]["latex"], simp["reason"]["text"])
        + f'<p class="explanation">{escape(simp["explanation"])}</p></aside>'
    )


def _step(step: dict[str, Any], m: int, simp: dict[str, Any] | None) -> str:
    factor = step["factor"]
    canonical = step.get("rule") == "canonical simplification"
    classes = f"step step-{escape(step['kind'])}" + (" canonical" if canonical else "")
    layer = f' data-layer="{int(step["layer"])}"' if "layer" in step else ""
    out = [
        f'<li class="{classes}" id="{step_id(factor)}" data-factor="{escape(factor)}"{layer} tabindex="-1">',
        f'<h3><span class="factor">{escape(factor_name(factor))}</span> <span class="kind">{escape(step["kind"])}'
        "</span></h3>",
        _math(step["latex"], step["text"]),
    ]
    if step.get("rule"):
        out.append(f'<p class="rule">{escape(step["rule"])}</p>')
    if step.get("note"):
        out.append(f'<p class="note">{escape(step["note"])}</p>')
    if "value_ref" in step:
        out.append(f'<p class="value">= the inputs <code>{escape(step["value_ref"])}</code> (not repeated)</p>')
    else:
        out.append(_values(step.get("value"), m))
    if canonical and simp is not None:
        out.append(_simplification(simp))
    if step.get("derivation"):
        items = "".join(
            f'<li>{_math(d["latex"], d["text"], "span")} <span class="why">({escape(d["rule"])}: '
            f"{escape(d['why'])})</span></li>"
            for d in step["derivation"]
        )
        out.append(
            f"<details><summary>How {escape(factor_name(factor))} is derived, rule by rule</summary>"
            f'<ol class="derivation">{items}</ol></details>'
        )
    out.append("</li>")
    return "".join(out)


def per_sample_table(problem: dict[str, Any], per_sample: dict[str, Any]) -> str:
    """Every factor of every example, side by side: multiply across a row to check the chain rule."""
    X, y = problem["data"]["X"], problem["data"]["y"]
    rows = []
    for i in range(min(len(X), 50)):
        cells = [f'<th scope="row">{i + 1}</th>', f"<td>{escape(short(X[i]))}</td>", f"<td>{escape(short(y[i]))}</td>"]
        cells += [f"<td>{escape(short(per_sample[key][i]))}</td>" for key, _ in PER_SAMPLE_COLUMNS]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(f'<th scope="col">{escape(name)}</th>' for _, name in PER_SAMPLE_COLUMNS)
    more = f'<p class="more">The first 50 of {len(X)} examples.</p>' if len(X) > 50 else ""
    return (
        '<div class="table-wrap"><table class="per-sample"><caption>Each factor, per example</caption>'
        f'<thead><tr><th scope="col">i</th><th scope="col">x</th><th scope="col">y</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>{more}"
    )


def derivation_html(problem: dict[str, Any], result: dict[str, Any]) -> str:
    """The derivation of `result` (a /gradient response with its breakdown) for `problem` (its request)."""
    bd = result["breakdown"]
    m = len(problem["data"]["X"])
    p = result["pairing"]
    canonical = " (canonical pairing)" if p["canonical"] else ""
    pair = f"{escape(named(p['activation']))} + {escape(named(p['loss']))}"
    summary = (
        f'<p class="summary">{escape(result["model"])}: {pair}{canonical}. '
        f'Cost J = <span class="num">{escape(num(result["loss"], 6))}</span>.</p>'
    )
    notes = "".join(
        f"<li><strong>{escape(n['quantity'])}</strong>: {escape(n['reason'])}</li>" for n in bd.get("notes", [])
    )
    steps = "".join(_step(s, m, bd.get("simplification")) for s in bd["steps"])
    return (
        summary
        + per_sample_table(problem, bd["per_sample"])
        + f'<ol class="steps">{steps}</ol>'
        + (f'<section class="notes"><h3>Notes</h3><ul>{notes}</ul></section>' if notes else "")
    )

"""MkDocs hook: the pairings table of docs/catalogue.md, generated from the registries at build time.

docs/catalogue.md holds only the markers `<!-- pairings-table -->` and `<!-- /pairings-table -->`;
`on_page_markdown` puts the table between them: one row per activation, one column per loss, each
cell "**canonical** (its model)", "yes" or "—" (refused) as `service.compute.pairings` decides. A new
activation or loss appears in it without an edit here or in the page.
"""

from __future__ import annotations

from typing import Any

START, END = "<!-- pairings-table -->", "<!-- /pairings-table -->"


def pairings_table() -> str:
    from service.compute.activations import ActivationName
    from service.compute.losses import LossName
    from service.compute.pairings import CANONICAL, compatibility

    def cell(act: ActivationName, loss: LossName) -> str:
        if (act, loss) in CANONICAL:
            return f"**canonical** ({CANONICAL[(act, loss)].model.value})"
        return "yes" if compatibility(act, loss)[0] else "—"

    lines = [
        "| activation \\ loss | " + " | ".join(lo.value for lo in LossName) + " |",
        "|---" * (len(LossName) + 1) + "|",
        *(f"| {a.value} | " + " | ".join(cell(a, lo) for lo in LossName) + " |" for a in ActivationName),
    ]
    return "\n".join(lines)


def fill(markdown: str) -> str:
    """The page with the generated table between the markers (a page without them is unchanged)."""
    if START not in markdown:
        return markdown
    head, rest = markdown.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{pairings_table()}\n{END}{tail}"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    return fill(markdown) if page.file.src_uri == "catalogue.md" else markdown

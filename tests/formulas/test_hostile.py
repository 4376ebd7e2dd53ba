"""The hostile list: each refused cleanly (FormulaError or FormulaTooComplex, never another exception),
within 50 ms, without computing anything big and without reaching Python's recursion limit."""

from __future__ import annotations

import time

import pytest

from service.formulas import FormulaError, FormulaTooComplex, Limits, parse

# The bounds tell "refused without the work" from "the work was done" (10^10^10 computed, a 10,000-deep
# recursion): they are not speed claims, and leave room for a loaded 2-core CI machine (a refusal takes
# well under 10 ms alone here).
BUDGET = 1.0  # seconds, with the default limits
# To reach the limits behind the length limit, some cases raise it to 2,000,000 characters: those inputs are
# 10 to 500 times the default length, and read in time linear in it.
WIDE = Limits(max_chars=2_000_000)
WIDE_BUDGET = 3.0

HOSTILE: list[tuple[str, str, Limits]] = [
    # formula, the limit (or "" for a plain FormulaError), limits
    ("10^10^10", "power", Limits()),
    ("2^2^2^2^2^2", "power", Limits()),
    ("((9^9)^9999)^9999", "power", Limits()),
    ("(9^9)^9999", "power", Limits()),
    ("2^-1000", "power", Limits()),
    ("0.5^(10^10)", "power", Limits()),
    ("z^(10^10^10)", "power", Limits()),
    ("exp(10^10^10)", "power", Limits()),
    ("(2*10^60)^2", "power", Limits()),
    ("1e999999999999", "number", Limits()),
    ("1e101", "number", Limits()),
    ("(" * 10_000 + "z" + ")" * 10_000, "characters", Limits()),
    ("(" * 10_000 + "z" + ")" * 10_000 + "+", "", WIDE),  # read as (z), then the '+' wants a term
    ("(z+" * 100 + "z" + ")" * 100, "depth", Limits()),
    ("(z+" * 10_000 + "z" + ")" * 10_000, "depth", WIDE),
    ("({" * 5_000 + "z" + "})" * 5_000, "depth", WIDE),
    ("-" * 10_000 + "z", "depth", WIDE),
    ("z" + "^z" * 10_000, "depth", WIDE),
    ("e^" * 10_000 + "z", "depth", WIDE),
    ("z" + "/z" * 300, "depth", Limits()),
    (r"\sqrt{" * 1000 + "z" + "}" * 1000, "depth", WIDE),
    ("+".join(["z"] * 5_000), "characters", Limits()),
    ("+".join(["z"] * 5_000), "nodes", WIDE),
    ("+".join(["z*f"] * 400), "nodes", Limits()),
    ("__import__('os')", "", Limits()),
    ("__import__", "", Limits()),
    ("x.__class__", "", Limits()),
    ("().__class__.__bases__[0].__subclasses__()", "", Limits()),
    ("lambda: 0", "", Limits()),
    (r"\input{/etc/passwd}", "", Limits()),
    (r"\include{/etc/passwd}", "", Limits()),
    (r"\def\x{\x}\x", "", Limits()),
    (r"\newcommand{\x}{1}", "", Limits()),
    (r"\immediate\write18{ls}", "", Limits()),
    ("z\x00", "", Limits()),
    ("\x00", "", Limits()),
    ("ｚ + 1", "", Limits()),  # fullwidth z
    ("z\u200b+1", "", Limits()),  # zero-width space
    ("\u0455in(z)", "", Limits()),  # Cyrillic s
    ("z\u202e+1", "", Limits()),  # right-to-left override
    ("𝑧", "", Limits()),  # mathematical italic z
    ("z" * 1_000_000, "characters", Limits()),
    ("z" * 1_000_000, "", WIDE),  # one unknown word, named
    ("1" * 1_000_000, "characters", Limits()),
    ("9" * 500 + "^9", "number", Limits(max_chars=10_000)),
    ("9" * 50 + "^9", "power", Limits()),
]


@pytest.mark.parametrize(
    ("text", "limit", "limits"), HOSTILE, ids=[f"{i}:{t[:24]!r}" for i, (t, _, _) in enumerate(HOSTILE)]
)
def test_hostile_inputs_are_refused_fast(text: str, limit: str, limits: Limits) -> None:
    start = time.perf_counter()
    with pytest.raises(FormulaError) as caught:
        parse(text, limits=limits)
    elapsed = time.perf_counter() - start
    if limit:
        assert isinstance(caught.value, FormulaTooComplex), caught.value
        assert caught.value.limit == limit, caught.value
    else:
        assert not isinstance(caught.value, FormulaTooComplex), caught.value
    assert elapsed < (WIDE_BUDGET if limits is WIDE else BUDGET), f"{elapsed * 1000:.1f} ms"


def test_redundant_parentheses_do_not_count() -> None:
    """((((z)))) 500 deep is z: redundant parentheses are not levels of the tree (and cost no stack)."""
    assert parse("(" * 500 + "z" + ")" * 500) == parse("z")
    assert parse("{" * 300 + "z" + "}" * 300, syntax="latex") == parse("z")


def test_limits_near_the_edge_are_accepted() -> None:
    parse("10^100")
    parse("2^332")
    parse("(9^9)^10")
    parse("1^(10^99)")
    parse("(z+" * 60 + "z" + ")" * 60)

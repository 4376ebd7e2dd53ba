"""Derivations of each activation's and loss's own derivative, and the LaTeX of the compute layer."""

from __future__ import annotations

import pytest

from service.compute.activations import ACTIVATIONS, ActivationName
from service.compute.derivations import (
    ACTIVATION_DERIVATIONS,
    LOSS_DERIVATIONS,
    DerivationStep,
    Rule,
    activation_derivation,
    loss_derivation,
)
from service.compute.domains import Formula
from service.compute.losses import LOSSES, LossName
from tests.latex import collect_latex, katex_errors


def _rhs(s: str) -> str:
    """The right-hand side of a formula: the part after its last " = "."""
    assert " = " in s, s
    return s.rsplit(" = ", 1)[1]


def _check_steps(steps: tuple[DerivationStep, ...], derivative: Formula) -> None:
    assert isinstance(steps, tuple)
    assert steps, "empty derivation"
    for i, step in enumerate(steps):
        assert isinstance(step, DerivationStep), i
        assert isinstance(step.rule, Rule), (i, step.rule)
        for field in ("latex", "text", "why"):
            value = getattr(step, field)
            assert isinstance(value, str), (i, field)
            assert value.strip(), (i, field)
        assert step.latex.isascii(), f"step {i}: LaTeX should be ASCII (use \\sigma, \\cdot, ...): {step.latex!r}"
    last = steps[-1]
    assert last.latex.endswith(_rhs(derivative.latex)), (last.latex, derivative.latex)
    assert last.text.endswith(_rhs(derivative.text)), (last.text, derivative.text)


@pytest.mark.parametrize("name", list(ActivationName))
def test_activation_derivation(name: ActivationName) -> None:
    assert name in ACTIVATION_DERIVATIONS
    steps = activation_derivation(name)
    assert steps is ACTIVATION_DERIVATIONS[name]
    _check_steps(steps, ACTIVATIONS[name].derivative_formula)


@pytest.mark.parametrize("name", list(LossName))
def test_loss_derivation(name: LossName) -> None:
    assert name in LOSS_DERIVATIONS
    steps = loss_derivation(name)
    assert steps is LOSS_DERIVATIONS[name]
    _check_steps(steps, LOSSES[name].derivative_formula)


def test_no_derivation_for_unknown_names() -> None:
    assert set(ACTIVATION_DERIVATIONS) == set(ActivationName)
    assert set(LOSS_DERIVATIONS) == set(LossName)


def _compute_layer_latex() -> list[str]:
    doc: dict[str, object] = {
        "activations": [
            {"formula": {"latex": a.formula.latex}, "derivative_formula": {"latex": a.derivative_formula.latex}}
            for a in ACTIVATIONS.values()
        ],
        "losses": [
            {"formula": {"latex": c.formula.latex}, "derivative_formula": {"latex": c.derivative_formula.latex}}
            for c in LOSSES.values()
        ],
        "derivations": [
            [{"rule": str(s.rule), "latex": s.latex} for s in steps]
            for steps in (*ACTIVATION_DERIVATIONS.values(), *LOSS_DERIVATIONS.values())
        ],
    }
    return collect_latex(doc)


def test_compute_layer_latex_parses_with_katex() -> None:
    strings = _compute_layer_latex()
    n_steps = sum(len(s) for s in (*ACTIVATION_DERIVATIONS.values(), *LOSS_DERIVATIONS.values()))
    assert len(strings) == 2 * len(ACTIVATIONS) + 2 * len(LOSSES) + n_steps
    assert katex_errors(strings) == []


def test_katex_checker_reports_broken_latex() -> None:
    errors = katex_errors([r"\frac{1}{"])
    assert len(errors) == 1
    latex, error = errors[0]
    assert latex == r"\frac{1}{"
    assert error


def test_katex_checker_pairs_errors_with_their_strings() -> None:
    errors = katex_errors([r"f = z", r"\notacommand{z}", r"e^{z}", r"\left( z"])
    assert [latex for latex, _ in errors] == [r"\notacommand{z}", r"\left( z"]


def test_collect_latex_walks_json() -> None:
    doc = {
        "latex": "a",
        "text": "not this",
        "steps": [{"latex": "b", "why": {"latex": "c"}}, ["x", {"latex": 3}], {"nested": {"latex": "d"}}],
    }
    assert collect_latex(doc) == ["a", "b", "c", "d"]
    assert collect_latex("latex") == []
    assert collect_latex([]) == []

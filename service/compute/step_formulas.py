"""The formulas of a breakdown's steps that depend on the model's shape, not on its numbers: a
single-layer model's chain (`chain_formulas`) and a network's per-layer steps. The breakdown
(breakdown.py) writes /gradient's steps with them and the learner's page its templates, so the two
cannot drift apart."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from service.compute.domains import Formula
from service.compute.pairings import rhs


@dataclass(frozen=True)
class ChainFormulas:
    """The formulas of the derivation that depend only on the output's shape and the regularization,
    not on the activation and loss (whose formulas the catalogue gives): the same for every problem
    of that kind, so the learner's page can show them without any of the problem's numbers."""

    z: Formula
    J: Formula
    dz_dw: Formula
    dz_db: Formula
    dR_dw: Formula | None
    dJ_dw: Formula
    dJ_db: Formula


@cache
def chain_formulas(vector: bool, reg_kind: str | None) -> ChainFormulas:
    """z, J, ∂z/∂w, ∂z/∂b, ∂R/∂w, ∂J/∂w and ∂J/∂b for k outputs (`vector`) or one, and regularization
    `reg_kind` ("l2", "l1" or None)."""
    if vector:
        z_formula = Formula(r"z_k = \sum_{j} x_j W_{jk} + b_k", "z_k = sum_j x_j W_jk + b_k")
        dzdw = Formula(r"\frac{\partial z_k}{\partial W_{jk}} = x_j", "dz_k/dW_jk = x_j")
        dzdb = Formula(r"\frac{\partial z_k}{\partial b_k} = 1", "dz_k/db_k = 1")
        djdw_data = Formula(
            r"\frac{1}{m} \sum_{i=1}^{m} \left(\frac{\partial L}{\partial z_k}\right)_i x_{ij}",
            "(1/m) sum_i (dL/dz_k)_i x_ij",
        )
        djdb = Formula(
            r"\frac{\partial J}{\partial b_k} = "
            r"\frac{1}{m} \sum_{i=1}^{m} \left(\frac{\partial L}{\partial z_k}\right)_i",
            "dJ/db_k = (1/m) sum_i (dL/dz_k)_i",
        )
        lhs_w = (r"\frac{\partial J}{\partial W_{jk}}", "dJ/dW_jk")
    else:
        z_formula = Formula(r"z = w \cdot x + b = \sum_{j} w_j x_j + b", "z = w . x + b = sum_j w_j x_j + b")
        dzdw = Formula(r"\frac{\partial z}{\partial w_j} = x_j", "dz/dw_j = x_j")
        dzdb = Formula(r"\frac{\partial z}{\partial b} = 1", "dz/db = 1")
        djdw_data = Formula(
            r"\frac{1}{m} \sum_{i=1}^{m} \left(\frac{\partial L}{\partial z}\right)_i x_{ij}",
            "(1/m) sum_i (dL/dz)_i x_ij",
        )
        djdb = Formula(
            r"\frac{\partial J}{\partial b} = \frac{1}{m} \sum_{i=1}^{m} \left(\frac{\partial L}{\partial z}\right)_i",
            "dJ/db = (1/m) sum_i (dL/dz)_i",
        )
        lhs_w = (r"\frac{\partial J}{\partial w_j}", "dJ/dw_j")

    reg_latex = reg_text = ""
    dR: tuple[str, str] | None = None
    if reg_kind == "l2":
        reg_latex, reg_text = r" + \frac{\lambda}{2m} \sum_{j} w_j^{2}", " + lambda/(2m) sum_j w_j^2"
        dR = (r"\frac{\lambda}{m} w_j", "(lambda/m) w_j")
    elif reg_kind is not None:
        reg_latex, reg_text = r" + \frac{\lambda}{m} \sum_{j} \lvert w_j \rvert", " + (lambda/m) sum_j |w_j|"
        dR = (r"\frac{\lambda}{m} \operatorname{sign}(w_j)", "(lambda/m) sign(w_j)")

    return ChainFormulas(
        z=z_formula,
        J=Formula(r"J = \frac{1}{m} \sum_{i=1}^{m} L_i" + reg_latex, "J = (1/m) sum_i L_i" + reg_text),
        dz_dw=dzdw,
        dz_db=dzdb,
        dR_dw=Formula(r"\frac{\partial R}{\partial w_j} = " + dR[0], "dR/dw_j = " + dR[1]) if dR else None,
        dJ_dw=Formula(
            lhs_w[0] + " = " + djdw_data.latex + (" + " + dR[0] if dR else ""),
            lhs_w[1] + " = " + djdw_data.text + (" + " + dR[1] if dR else ""),
        ),
        dJ_db=djdb,
    )


# The formulas of the network's steps. A layer is a number, or a placeholder such as "{@l}" when the
# learner's page gets them as templates to fill in (service/http/handlers/learner.py, `symbolic_chain`): the
# same functions write /gradient's steps and those templates, so the two cannot drift apart.
Layer = int | str


def _sup(name: str, layer: Layer) -> str:
    return f"{name}^{{[{layer}]}}"


def z_formula(layer: Layer, prev: Layer, first: str) -> Formula:
    """z[l] = a[l-1] W[l] + b[l]; `first` is what the text adds for the first layer."""
    return Formula(
        _sup("z", layer) + " = " + _sup("a", prev) + _sup("W", layer) + " + " + _sup("b", layer),
        f"z[{layer}] = a[{prev}] W[{layer}] + b[{layer}]" + first,
    )


FIRST_LAYER_NOTE = " (a[0] = X)"


def a_formula(layer: Layer, name: str, g: Formula) -> Formula:
    """a[l] = g(z[l]), with g the right-hand side of the activation's formula."""
    return Formula(
        _sup("a", layer) + " = g(" + _sup("z", layer) + "), \\quad g(z) = " + g.latex,
        f"a[{layer}] = {name}(z[{layer}]), g(z) = {g.text}",
    )


def cost_formula(reg_kind: str | None) -> Formula:
    """J, the mean loss plus the regularization of every layer's W."""
    reg_latex = reg_text = ""
    if reg_kind == "l2":
        reg_latex, reg_text = (
            r" + \frac{\lambda}{2m} \sum_{l} \lVert W^{[l]} \rVert^{2}",
            " + lambda/(2m) sum_l |W[l]|^2",
        )
    elif reg_kind is not None:
        reg_latex, reg_text = (
            r" + \frac{\lambda}{m} \sum_{l} \lvert W^{[l]} \rvert_1",
            " + (lambda/m) sum_l |W[l]|_1",
        )
    return Formula(r"J = \frac{1}{m} \sum_{i=1}^{m} L_i" + reg_latex, "J = (1/m) sum_i L_i" + reg_text)


def output_delta_formula(layer: Layer, dL_dz: Formula) -> Formula:
    """δ[L] = ∂L/∂z of the output's pairing."""
    return Formula(_sup(r"\delta", layer) + r" = " + dL_dz.latex, f"delta[{layer}] = " + dL_dz.text)


def dW_formula(layer: Layer, prev: Layer, reg_kind: str | None) -> Formula:
    """∂J/∂W[l] = (1/m) a[l-1]ᵀ δ[l] (+ ∂R/∂W[l])."""
    reg_l = ("", "")
    if reg_kind is not None:
        dR = (
            (r"\frac{\lambda}{m} W^{[l]}", "(lambda/m) W[l]")
            if reg_kind == "l2"
            else (r"\frac{\lambda}{m} \operatorname{sign}(W^{[l]})", "(lambda/m) sign(W[l])")
        )
        reg_l = (" + " + dR[0].replace("[l]", f"[{layer}]"), " + " + dR[1].replace("[l]", f"[{layer}]"))
    return Formula(
        r"\frac{\partial J}{\partial "
        + _sup("W", layer)
        + r"} = \frac{1}{m} {"
        + _sup("a", prev)
        + r"}^{\top} "
        + _sup(r"\delta", layer)
        + reg_l[0],
        f"dJ/dW[{layer}] = (1/m) a[{prev}]^T delta[{layer}]" + reg_l[1],
    )


def db_formula(layer: Layer) -> Formula:
    """∂J/∂b[l] = (1/m) Σ δ[l] (b is not regularized)."""
    return Formula(
        r"\frac{\partial J}{\partial "
        + _sup("b", layer)
        + r"} = \frac{1}{m} \sum_{i=1}^{m} "
        + _sup(r"\delta", layer)
        + "_i",
        f"dJ/db[{layer}] = (1/m) sum_i delta[{layer}]_i (b is not regularized)",
    )


def g_prime_formula(derivative: Formula, prev: Layer) -> Formula:
    """g′(z) of the layer below, the right-hand side of the activation's derivative; when it is written in
    terms of f, the text says that f is that layer's a."""
    gp = rhs(derivative)
    uses_f = re.search(r"\bf\b", gp.text) is not None
    return Formula(
        gp.latex + (r" \text{ with } f = " + _sup("a", prev) if uses_f else ""),
        gp.text + (f" with f = a[{prev}]" if uses_f else ""),
    )


def hidden_delta_formula(layer: Layer, prev: Layer, g_prime: Formula, name: str) -> Formula:
    """δ[l-1] = (δ[l] W[l]ᵀ) ⊙ g′(z[l-1]), with `g_prime` from `g_prime_formula` and the activation's name."""
    return Formula(
        _sup(r"\delta", prev)
        + r" = \left("
        + _sup(r"\delta", layer)
        + " {"
        + _sup("W", layer)
        + r"}^{\top}\right) \odot g'("
        + _sup("z", prev)
        + r"), \quad g'(z) = "
        + g_prime.latex,
        f"delta[{prev}] = (delta[{layer}] W[{layer}]^T) * g'(z[{prev}]), g'(z) = {g_prime.text} ({name})",
    )

"""Request and response models of POST /derive."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from service.formulas.derive import Rule
from service.http.schemas.gradient import Strict

EXAMPLES: dict[str, dict[str, Any]] = {
    "sigmoid": {
        "summary": "the sigmoid as written: quotient, exp and chain rules",
        "value": {"expression": "1/(1+e^{-z})", "variable": "z"},
    },
    "sigmoid_in_f": {
        "summary": "the sigmoid's derivative written in f: f(1 - f)",
        "value": {"expression": "sigma(z)", "variable": "z", "in_terms_of": "f"},
    },
    "chain": {
        "summary": "e^{-z}: the chain rule",
        "value": {"expression": "e^{-z}", "variable": "z"},
    },
    "latex": {
        "summary": "LaTeX, as pasted from a notebook: the cross-entropy in f",
        "value": {"expression": "-\\left(y \\log(f) + (1 - y)\\log(1 - f)\\right)", "variable": "f"},
    },
    "tanh_in_f": {
        "summary": "tanh in f: 1 - f^2",
        "value": {"expression": "\\tanh(z)", "variable": "z", "in_terms_of": "f", "syntax": "latex"},
    },
}


class DeriveRequest(Strict):
    """A formula of the notation (plain text or LaTeX) and the name to differentiate it by."""

    expression: str = Field(
        max_length=100_000,
        description="The formula, plain text or LaTeX (docs/formulas.md); at most 2,000 characters are read.",
    )
    variable: str = Field(max_length=100, description="The name to differentiate by: z, f, w_j, b, x_j, y, ...")
    syntax: Literal["auto", "text", "latex"] = Field("auto", description="The spelling, or detect it (auto).")
    in_terms_of: Literal["f"] | None = Field(
        None,
        description='"f": f stands for the expression itself (f = g(z)) and the derivative is written in f when it '
        "can be, as a final simplify step (σ′ = f(1 − f), tanh′ = 1 − f², exp′ = f). Omitted: the tracer's form, "
        "in the variable.",
    )


class Spelled(BaseModel):
    latex: str
    text: str = Field(description="Plain spelling: exp(), log(), *, /, ^.")


class DeriveStep(BaseModel):
    rule: Rule
    latex: str
    text: str
    why: str = Field(description="One line, in a learner's words.")


class DeriveResponse(BaseModel):
    expression: Spelled = Field(description="The formula as read.")
    variable: str
    derivative: Spelled
    in_terms_of: str = Field(description="The name the derivative is written in: the variable, or f when asked.")
    steps: list[DeriveStep] = Field(description="Each rule applied, inner derivatives first.")


DERIVE_REQUEST: TypeAdapter[DeriveRequest] = TypeAdapter(DeriveRequest)
DERIVE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/DeriveRequest"}, "examples": EXAMPLES}
        },
    }
}

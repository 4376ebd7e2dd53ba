"""Request and response models of POST /grade/formula (docs/design/formulas.md, "POST /grade/formula")."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from service.http.schemas.gradient import Strict
from service.http.schemas.grading import Version

MAX_STEPS = 20
FORMULA = Annotated[str, Field(max_length=2_000, description="A formula, in plain text or LaTeX.")]


class DerivativeOf(Strict):
    derivative_of: FORMULA
    variable: str = Field(max_length=20, description="The name to differentiate by: z, f, w_j, b, ...")


class FormulaRegularization(Strict):
    kind: Literal["l2", "l1"] = Field(description="λ stays a symbol: lambda or \\lambda in the answer.")


class FormulaQuestion(Strict):
    """What the learner is asked for: a model's quantity, or the derivative of an expression."""

    model: str | None = Field(
        None, description="linear_regression, logistic_regression, poisson_regression or single_layer."
    )
    activation: str | None = Field(None, description="single_layer only: identity, sigmoid, tanh, exp, softplus.")
    loss: str | None = Field(None, description="single_layer only: squared_error, binary_cross_entropy, poisson.")
    regularization: FormulaRegularization | None = None
    target: str | DerivativeOf = Field(
        description="L, J, dL/df, df/dz, dL/dz, dz/dw_j, dz/db, dL/dw_j, dL/db, dJ/dw_j, dJ/db, or "
        '{"derivative_of": "...", "variable": "z"}.'
    )


class FormulaSteps(Strict):
    steps: list[FORMULA] = Field(
        min_length=1, max_length=MAX_STEPS, description="A derivation: each step a formula equal to the target."
    )


class FormulaScoringIn(Strict):
    """The grader's choices, sealed in a signed question (a student key may not set them)."""

    reveal: bool = Field(False, description="Show the counterexample's values and the expected formula.")
    step_credit: float = Field(
        0.5, ge=0, le=1, description="The share of the points earned by the steps before the first wrong one."
    )


FORMULA_SCORING_FIELDS: tuple[str, ...] = tuple(FormulaScoringIn.model_fields)

EXAMPLE_QUESTION: dict[str, Any] = {"model": "logistic_regression", "target": "dL/dw_j"}


class GradeFormulaRequest(FormulaScoringIn):
    model_config = ConfigDict(  # type: ignore[typeddict-item]
        json_schema_extra={
            "examples": [
                {"question": EXAMPLE_QUESTION, "answer": "(f - y) x_j", "format": "native"},
                {
                    "question": EXAMPLE_QUESTION,
                    "answer": {"steps": ["dL/df * df/dz * dz/dw_j", "(f - y)/(f(1-f)) * f(1-f) * x_j", "(f - y) x_j"]},
                },
            ]
        }
    )
    question: FormulaQuestion | None = None
    question_token: str | None = Field(
        None, max_length=100_000, description="A token from POST /problems/sign for a question, in place of question."
    )
    answer: FORMULA | FormulaSteps
    syntax: Literal["auto", "text", "latex"] = "auto"
    format: Literal["native", "gradescope", "prairielearn"] = "native"

    @model_validator(mode="after")
    def _one_of(self) -> GradeFormulaRequest:
        if (self.question is None) == (self.question_token is None):
            raise ValueError("give exactly one of question and question_token")
        return self


MAX_BATCH_ANSWERS = 2_000


class GradeFormulaBatch(FormulaScoringIn):
    """A class's answers to one formula question, each graded on its own, with a class summary."""

    model_config = ConfigDict(  # type: ignore[typeddict-item]
        json_schema_extra={"examples": [{"question": EXAMPLE_QUESTION, "answers": ["(f - y) x_j", "f - y"]}]}
    )
    question: FormulaQuestion | None = None
    question_token: str | None = Field(None, max_length=100_000)
    answers: list[Any] = Field(
        min_length=1,
        max_length=MAX_BATCH_ANSWERS,
        description='Each a formula or {"steps": [...]}; one that does not read gets its own problem object.',
    )
    syntax: Literal["auto", "text", "latex"] = "auto"
    format: Literal["native", "gradescope", "prairielearn"] = "native"

    @model_validator(mode="after")
    def _one_of(self) -> GradeFormulaBatch:
        if (self.question is None) == (self.question_token is None):
            raise ValueError("give exactly one of question and question_token")
        return self


class SignQuestionRequest(FormulaScoringIn):
    question: FormulaQuestion
    expires_in: int | None = Field(None, gt=0, le=366 * 24 * 3600, description="Seconds (default from settings).")


class FormulaRead(BaseModel):
    latex: str
    text: str


class FormulaMistakeOut(BaseModel):
    code: str = Field(description="A code from GET /mistakes.")
    message: str
    also_matches: list[str] | None = None


class FormulaStepOut(BaseModel):
    index: int
    correct: bool
    equivalent: bool | None
    mistake: FormulaMistakeOut | None
    message: str
    latex: str
    text: str


class GradeFormulaResult(BaseModel):
    """The native format."""

    correct: bool
    score: float
    equivalent: bool | None = Field(description="true, false, or null when it cannot be decided.")
    method: str = Field(description="numeric, or numeric+symbolic when symbolic simplification confirmed it.")
    answer: FormulaRead = Field(description="How the service read the (last) formula.")
    mistake: FormulaMistakeOut | None
    counterexample: dict[str, Any] | None = Field(description="A point where it differs (values with reveal only).")
    steps: list[FormulaStepOut]
    first_wrong_step: int | None
    feedback: str
    version: Version
    expected: FormulaRead | None = Field(None, description="With reveal: the correct formula.")


GRADE_FORMULA_REQUEST: TypeAdapter[GradeFormulaRequest] = TypeAdapter(GradeFormulaRequest)
GRADE_FORMULA_BATCH: TypeAdapter[GradeFormulaBatch] = TypeAdapter(GradeFormulaBatch)
FORMULA_ANSWER: TypeAdapter[str | FormulaSteps] = TypeAdapter(FORMULA | FormulaSteps)  # type: ignore[arg-type]
SIGN_QUESTION_REQUEST: TypeAdapter[SignQuestionRequest] = TypeAdapter(SignQuestionRequest)

"""Request models of /grade and /grade/batch.

The problem is exactly /gradient's request (a bad problem is a 422 like /gradient's). The answer
is lenient in its values — a learner's NaN, string or wrong shape is graded wrong, not refused —
but strict in its keys, so a misspelt part is a 422 rather than silently ungraded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, JsonValue, Tag, TypeAdapter, model_validator

from service.compute.model_names import ModelName
from service.grading.answer_key import PART_NAMES
from service.http.schemas.gradient import EXAMPLES, GradientRequest, Strict

# a single-layer model's parts, or a network's gradients.layers.<i>.W / .b
PartName = Annotated[
    str,
    Field(
        pattern=r"^(loss|gradients\.(w|b)|per_sample\.(z|f|dL_df|df_dz|dL_dz)|gradients\.layers\.[0-9]{1,3}\.(W|b))$",
        description="A part's name: " + ", ".join(PART_NAMES) + ", or gradients.layers.<i>.W / .b for a network.",
    ),
]

_LEARNER = "A learner's value: a number or nested lists of numbers; anything else is graded wrong, not refused."


class Lenient(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class AnswerLayer(Lenient):
    W: JsonValue = Field(None, description=_LEARNER + " Shaped as the layer's W.")
    b: JsonValue = Field(None, description=_LEARNER + " Shaped as the layer's b.")


class AnswerGradients(Lenient):
    w: JsonValue = Field(None, description=_LEARNER + " Shaped as parameters.w.")
    b: JsonValue = Field(None, description=_LEARNER + " Shaped as parameters.b.")
    layers: list[AnswerLayer | None] | None = Field(
        None, description="For a neural_network: per layer, as parameters.layers (null for a layer not answered)."
    )


class AnswerPerSample(Lenient):
    """The learner's per-example intermediates (each a list over the examples, as /gradient's per_sample)."""

    z: JsonValue = Field(None, description=_LEARNER)
    f: JsonValue = Field(None, description=_LEARNER)
    dL_df: JsonValue = Field(None, description=_LEARNER)
    df_dz: JsonValue = Field(None, description=_LEARNER + " For softmax, a k×k Jacobian per example.")
    dL_dz: JsonValue = Field(None, description=_LEARNER)


class Answer(Lenient):
    """The parts a learner gives; a part left out is not graded."""

    loss: JsonValue = Field(None, description=_LEARNER + " The cost J.")
    gradients: AnswerGradients | None = None
    per_sample: AnswerPerSample | None = None


class RelativeTolerance(Strict):
    """Every component satisfies |a − e| ≤ atol + rtol·|e| (numpy's allclose rule)."""

    rtol: float = Field(1e-5, ge=0)
    atol: float = Field(1e-8, ge=0)


class SignificantFigures(Strict):
    """Every component agrees to n significant figures: |a − e| ≤ ½·10^(⌊log10 |e|⌋ − n + 1)."""

    sig_figs: int = Field(ge=1, le=17)


class ScoringIn(Strict):
    """How answers are scored: the grader's choice. A signed problem seals it (POST /problems/sign);
    a student key may not set any of it, and a grader key may override it in the clear."""

    tolerance: RelativeTolerance | SignificantFigures | None = Field(None, description="Default rtol 1e-5, atol 1e-8.")
    points: dict[PartName, Annotated[float, Field(ge=0, le=1e6)]] | None = Field(  # type: ignore[valid-type]
        None, description='Points per part (default 1 each), e.g. {"gradients.w": 2}.'
    )
    reveal: bool = Field(False, description="Include the expected values in each check.")
    carry_forward: bool = Field(
        True,
        description="Error carried forward: a later part that follows correctly from the learner's own wrong "
        "per_sample values earns carry_forward_credit of its points, when those values are a catalogued mistake.",
    )
    carry_forward_credit: float = Field(
        0.5, ge=0, le=1, description="The share of a part's points for a part that follows from a real slip."
    )


# the fields that change a score: sealed in a signed problem, refused from a student key
SCORING_FIELDS: tuple[str, ...] = tuple(ScoringIn.model_fields)


class GradeOptionsIn(ScoringIn):
    format: Literal["native", "gradescope", "prairielearn"] = Field(
        "native", description="The result's format (a student key may choose it)."
    )


EXAMPLE_PROBLEM: dict[str, Any] = {
    "model": "logistic_regression",
    "parameters": {"w": [1, 1], "b": -3},
    "data": EXAMPLES[ModelName.LOGISTIC_REGRESSION]["data"],
}
EXAMPLE_ANSWER: dict[str, Any] = {
    "loss": 0.36686678640551745,
    "gradients": {"w": [-0.20687020897043107, -0.14394676417074018], "b": -0.2171984948563006},
}


if TYPE_CHECKING:  # the union of dynamically built request models is beyond mypy
    OptionalProblem = Any
else:
    OptionalProblem = GradientRequest | None

_TOKEN_DOC = "A token from POST /problems/sign, in place of `problem` (the only way a student key may grade)."


class _ProblemOrToken(BaseModel):
    @model_validator(mode="after")
    def _one_of(self) -> Any:
        if (getattr(self, "problem", None) is None) == (getattr(self, "problem_token", None) is None):
            raise ValueError("give exactly one of problem and problem_token")
        return self


class GradeRequest(_ProblemOrToken, GradeOptionsIn):
    """A problem (as /gradient takes it, or signed as a problem_token) and a learner's answer."""

    model_config = ConfigDict(  # type: ignore[typeddict-item]
        json_schema_extra={
            "examples": [
                {
                    "problem": EXAMPLE_PROBLEM,
                    "answer": EXAMPLE_ANSWER,
                    "tolerance": {"rtol": 1e-5, "atol": 1e-8},
                    "format": "native",
                }
            ]
        }
    )
    problem: OptionalProblem = None
    problem_token: str | None = Field(None, max_length=1_000_000, description=_TOKEN_DOC)
    answer: Answer


class GradeItem(_ProblemOrToken, Strict):
    """One problem (or problem_token) and one answer, in a batch."""

    problem: OptionalProblem = None
    problem_token: str | None = Field(None, max_length=1_000_000, description=_TOKEN_DOC)
    answer: Answer


# Validated one by one (a bad item must not fail the batch), documented as lists of these schemas.
DOCUMENTED_ITEMS = {("GradeBatchOne", "answers"): "Answer", ("GradeBatchItems", "items"): "GradeItem"}


class GradeBatchOne(_ProblemOrToken, GradeOptionsIn):
    """One problem (or problem_token) and the answers of a whole class."""

    model_config = ConfigDict(  # type: ignore[typeddict-item]
        json_schema_extra={"examples": [{"problem": EXAMPLE_PROBLEM, "answers": [EXAMPLE_ANSWER, {"loss": 0.3668668}]}]}
    )
    problem: OptionalProblem = None
    problem_token: str | None = Field(None, max_length=1_000_000, description=_TOKEN_DOC)
    answers: Annotated[list[JsonValue], Field(min_length=1)] = Field(
        description="Each graded on its own; a malformed one gets its own problem object in the results."
    )


class GradeBatchItems(GradeOptionsIn):
    """Many problem/answer pairs."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [{"problem": EXAMPLE_PROBLEM, "answer": EXAMPLE_ANSWER}]}]}
    )
    items: Annotated[list[dict[str, JsonValue]], Field(min_length=1)] = Field(
        description="Objects, each graded on its own; a malformed one gets its own problem object in the results."
    )


class SignRequest(ScoringIn):
    """A problem to sign, for graders to hand out to students, and how its answers are scored.

    The scoring options (tolerance, points, reveal, carry-forward) are sealed in the token with their
    defaults filled in: a student grading it cannot change them."""

    model_config = ConfigDict(  # type: ignore[typeddict-item]
        json_schema_extra={
            "examples": [
                {
                    "problem": EXAMPLE_PROBLEM,
                    "tolerance": {"sig_figs": 4},
                    "points": {"loss": 1, "gradients.w": 2, "gradients.b": 1},
                    "carry_forward_credit": 0.5,
                    "expires_in": 604800,
                }
            ]
        }
    )
    problem: GradientRequest
    expires_in: int | None = Field(None, gt=0, le=366 * 24 * 3600, description="Seconds (default from settings).")


class SignResponse(BaseModel):
    problem_token: str = Field(description="Hand it to students: /grade takes it in place of problem.")
    expires_at: int = Field(description="Unix time (seconds) after which the token is refused.")


def _batch_kind(value: Any) -> str:
    return "answers" if isinstance(value, dict) and "answers" in value else "items"


GradeBatchRequest = Annotated[
    Annotated[GradeBatchOne, Tag("answers")] | Annotated[GradeBatchItems, Tag("items")],
    Discriminator(_batch_kind),
]


# --- responses (for the OpenAPI document) --------------------------------------------------------


class MistakeOut(BaseModel):
    code: str = Field(description="A code from GET /mistakes.")
    title: str
    message: str = Field(description="Feedback for the learner, in the chain rule's terms.")
    also_matches: list[str] | None = Field(None, description="Other mistakes the answer also matches.")


class Check(BaseModel):
    name: PartName  # type: ignore[valid-type]
    correct: bool
    points: float
    max_points: float
    message: str
    mistake: MistakeOut | None = Field(description="null when no catalogued mistake explains the part.")
    graded_against: Literal["reference", "own_values"] | None = Field(
        None, description="own_values: graded against what follows from the learner's own earlier values."
    )
    carried_from: list[str] | None = Field(None, description="The learner's wrong earlier values it follows from.")
    graded: bool | None = Field(None, description="false when the part's true value is not representable.")
    expected: Any = Field(None, description="With reveal: the expected value.")


class Version(BaseModel):
    service: str
    grading_rules: str


class GradeResult(BaseModel):
    """The native format."""

    score: float = Field(description="points / max_points, in [0, 1].")
    points: float
    max_points: float
    correct: bool
    checks: list[Check]
    feedback: str
    version: Version


class GradescopeTest(BaseModel):
    name: str
    score: float
    max_score: float
    output: str
    visibility: Literal["visible"]
    tags: list[str] | None = None


class GradescopeResult(BaseModel):
    """Gradescope's results.json."""

    score: float
    output: str
    visibility: Literal["visible"]
    tests: list[GradescopeTest]
    extra_data: dict[str, Any]


class PrairieLearnTest(BaseModel):
    name: str
    description: str
    points: float
    max_points: float
    message: str


class PrairieLearnResult(BaseModel):
    """PrairieLearn's external-grader result."""

    gradable: bool
    score: float = Field(ge=0, le=1)
    message: str
    output: str = Field(description="The service's and the grading rules' versions.")
    tests: list[PrairieLearnTest]


GradeResponse = GradeResult | GradescopeResult | PrairieLearnResult


class BatchResponse(BaseModel):
    results: list[dict[str, Any]] = Field(
        description="In the order given: a result in the requested format, or a problem object for an item "
        "that cannot be graded."
    )


# the request bodies, validated strictly (the routes parse their bodies themselves, in one pass)
GRADE_REQUEST: TypeAdapter[GradeRequest] = TypeAdapter(GradeRequest)
SIGN_REQUEST: TypeAdapter[SignRequest] = TypeAdapter(SignRequest)
BATCH_REQUEST: TypeAdapter[Any] = TypeAdapter(GradeBatchRequest)

"""Request and response models. Requests are a discriminated union keyed by `model`.

Numbers are strict: finite JSON numbers only (NaN, Infinity, 1e999, numeric strings and booleans
are refused). Target constraints of the presets are generated from the loss registry, so the
OpenAPI document shows them; cross-field rules (shapes, single_layer targets) are checked in
`service.http.handlers.objectives`.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, create_model

from service.compute.activations import ActivationName
from service.compute.domains import Interval
from service.compute.losses import LOSSES, LossName
from service.compute.model_names import ModelName
from service.compute.pairings import PRESETS
from service.http.wire.binary import MULTIPART, multipart_content

WORKED_X = [[0.5, 1.5], [1, 1], [1.5, 0.5], [3, 0.5], [2, 2], [1, 2.5]]


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, populate_by_name=True)


def _targets_type(loss: LossName) -> Any:
    """A float constrained to the loss's declared target interval (from the registry)."""
    dom = LOSSES[loss].targets
    assert isinstance(dom, Interval)
    kw: dict[str, float] = {}
    if math.isfinite(dom.lo):
        kw["ge" if dom.lo_closed else "gt"] = dom.lo
    if math.isfinite(dom.hi):
        kw["le" if dom.hi_closed else "lt"] = dom.hi
    return Annotated[float, Field(**kw)]  # type: ignore[call-overload]


Matrix = Annotated[list[list[float]], Field(min_length=1, description="Rows of numbers, all of the same length.")]

# Class indices are bounded so that a 400-digit integer is a validation error, not a float overflow.
MAX_CLASS_INDEX = 2**31 - 1


def _shape_of(value: Any) -> str:
    """Which branch of a numbers-or-rows union a JSON value is meant for: decided by its first item."""
    if isinstance(value, list):
        return "rows" if value and isinstance(value[0], list) else "numbers"
    return "number"


def _by_shape(numbers: Any, rows: Any, description: str) -> Any:
    """A union of a flat list and a list of rows whose errors come from the branch the value chose."""
    return Annotated[
        Annotated[numbers, Tag("numbers")] | Annotated[rows, Tag("rows")],
        Discriminator(_shape_of, custom_error_type="shape", custom_error_message="Input should be a list"),
        Field(description=description),
    ]


def _number_or_list(description: str) -> Any:
    return Annotated[
        Annotated[float, Tag("number")] | Annotated[list[float], Tag("numbers")],
        Discriminator(
            lambda v: "numbers" if isinstance(v, list) else "number",
            custom_error_type="shape",
            custom_error_message="Input should be a number or a list of numbers",
        ),
        Field(description=description),
    ]


class Regularization(Strict):
    """R(w) added to the cost; b is never regularized."""

    kind: Literal["l1", "l2"] = Field(description="l2: λ/(2m) Σ w², l1: (λ/m) Σ |w|.")
    lambda_: float = Field(alias="lambda", ge=0, description="λ ≥ 0.")


ExplainOption = Annotated[
    bool | Literal["factors", "full"],
    Field(
        description='false (default); "factors" or true: the chain-rule breakdown; '
        '"full": also each derivative derived in elementary rule steps.'
    ),
]


class ScalarParameters(Strict):
    w: list[float] = Field(min_length=1, description="n weights, one per column of X.")
    b: float = Field(description="The bias.")


class VectorParameters(Strict):
    w: Annotated[list[list[float]], Field(min_length=1, description="n rows of k weights (n×k).")]
    b: list[float] = Field(min_length=2, description="k biases, one per class.")


class _Options(Strict):
    regularization: Regularization | None = Field(None, description="Optional l1 or l2 regularization of w.")
    explain: ExplainOption = False
    verify: bool = Field(False, description="Add a central finite-difference check of every gradient component.")


def _data_model(name: str, y_type: Any, y_doc: str) -> type[Strict]:
    return create_model(  # type: ignore[call-overload,no-any-return]
        name,
        __base__=Strict,
        X=(Matrix, Field(description="m examples (rows) of n features.")),
        y=(list[y_type], Field(description=y_doc)),
    )


LinearData = _data_model("LinearData", _targets_type(LossName.SQUARED_ERROR), "m real targets.")
BinaryData = _data_model("BinaryData", _targets_type(LossName.BINARY_CROSS_ENTROPY), "m labels in [0, 1].")
CountData = _data_model("CountData", _targets_type(LossName.POISSON), "m counts y ≥ 0.")

ClassTargets = _by_shape(
    list[Annotated[int, Field(ge=0, le=MAX_CLASS_INDEX)]],
    list[list[float]],
    "m class indices in 0..k−1, or m one-hot / probability rows of k entries summing to 1.",
)


class ClassData(Strict):
    X: Matrix = Field(description="m examples (rows) of n features.")
    y: ClassTargets  # type: ignore[valid-type]


class AnyData(Strict):
    X: Matrix = Field(description="m examples (rows) of n features.")
    y: _by_shape(  # type: ignore[valid-type]
        list[float],
        list[list[float]],
        "m targets in the loss's domain; with softmax, class indices or rows of k entries.",
    )


class AnyParameters(Strict):
    w: _by_shape(  # type: ignore[valid-type]
        Annotated[list[float], Field(min_length=1)],
        Annotated[list[list[float]], Field(min_length=1)],
        "n weights; with softmax, n rows of k weights (n×k).",
    )
    b: _number_or_list("The bias; with softmax, k biases.")  # type: ignore[valid-type]


LossParams = create_model(  # type: ignore[call-overload]
    "LossParams",
    __base__=Strict,
    __doc__="Parameters of the loss; each applies only to the loss that declares it.",
    **{
        p.name: (
            float | None,
            Field(None, gt=p.exclusive_minimum, description=f"{cls.name}: {p.description} (default {p.default:g})."),
        )
        for cls in LOSSES.values()
        for p in cls.param_specs
    },
)


class FormulaTargets(Strict):
    """The values y may take in a formula loss: [min, max] (each end optional), integers only if `integer`."""

    min: float | None = Field(None, description="Smallest target (inclusive); none: unbounded below.")
    max: float | None = Field(None, description="Largest target (inclusive); none: unbounded above.")
    integer: bool = Field(False, description="Targets must be whole numbers (counts, labels).")


class ActivationFormula(Strict):
    """A custom activation f = g(z): a formula in z, plain text or LaTeX (docs/custom-formulas.md)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"formula": "tanh(z/2)"}, {"formula": "e^{z}"}]})
    formula: str = Field(description="g(z), e.g. tanh(z/2) or \\frac{1}{1+e^{-z}}; derived and evaluated as written.")


class LossFormula(Strict):
    """A custom loss L(f, y): a formula in f and y, with the targets it accepts (every real by default)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"formula": "log(cosh(f - y))"},
                {"formula": "f - y*log(f)", "targets": {"min": 0, "integer": True}},
            ]
        }
    )
    formula: str = Field(description="L(f, y), e.g. log(cosh(f - y)); derived and evaluated as written.")
    targets: FormulaTargets | None = Field(None, description="The domain of y (default: every real).")


def _name_or_formula(names: Any, formula: Any, description: str) -> Any:
    """A catalogue name or {"formula": ...}; errors come from the branch the value chose (a string: a name)."""
    return Annotated[
        Annotated[names, Tag("name")] | Annotated[formula, Tag("formula")],
        Discriminator(
            lambda v: "name" if isinstance(v, str) else "formula",  # the names are a StrEnum
            custom_error_type="name_or_formula",
            custom_error_message="Input should be a name or an object with a formula",
        ),
        Field(description=description),
    ]


ActivationChoice = _name_or_formula(
    ActivationName, ActivationFormula, 'The activation g: f = g(z), a catalogue name or {"formula": "..."} in z.'
)
LossChoice = _name_or_formula(
    LossName,
    LossFormula,
    'The loss L(f, y), a catalogue name or {"formula": "...", "targets": {...}} in f and y; it must be '
    "compatible with the activation.",
)


def _example(model: ModelName, **fields: Any) -> dict[str, Any]:
    return {"model": str(model), **fields}


_LOGISTIC_EXAMPLE = _example(
    ModelName.LOGISTIC_REGRESSION,
    parameters={"w": [2.0, 3.0], "b": 1.0},
    data={"X": WORKED_X, "y": [0, 0, 0, 1, 1, 1]},
    regularization={"kind": "l2", "lambda": 0.7},
    explain=True,
)
EXAMPLES: dict[ModelName, dict[str, Any]] = {
    ModelName.LINEAR_REGRESSION: _example(
        ModelName.LINEAR_REGRESSION,
        parameters={"w": [1.0, -0.5], "b": 0.25},
        data={"X": WORKED_X, "y": [1.2, 0.8, 2.0, 3.1, 2.2, 0.9]},
        explain="factors",
    ),
    ModelName.LOGISTIC_REGRESSION: _LOGISTIC_EXAMPLE,
    ModelName.SOFTMAX_REGRESSION: _example(
        ModelName.SOFTMAX_REGRESSION,
        parameters={"w": [[0.5, -0.2, 0.1], [-0.3, 0.4, 0.2]], "b": [0.0, 0.1, -0.1]},
        data={"X": WORKED_X, "y": [0, 0, 1, 2, 2, 1]},
        explain="factors",
    ),
    ModelName.POISSON_REGRESSION: _example(
        ModelName.POISSON_REGRESSION,
        parameters={"w": [0.3, 0.2], "b": 0.1},
        data={"X": WORKED_X, "y": [1, 2, 1, 4, 3, 2]},
        verify=True,
    ),
    ModelName.SINGLE_LAYER: _example(
        ModelName.SINGLE_LAYER,
        activation="sigmoid",
        loss="squared_error",
        parameters={"w": [2.0, 3.0], "b": 1.0},
        data={"X": WORKED_X, "y": [0, 0, 0, 1, 1, 1]},
        explain="factors",
    ),
}


def _preset(model: ModelName, params: type[Strict], data: type[Strict]) -> type[Strict]:
    act, loss = PRESETS[model]
    return create_model(  # type: ignore[call-overload,no-any-return]
        "".join(part.title() for part in str(model).split("_")) + "Request",
        __base__=_Options,
        __doc__=f"{model}: activation {act}, loss {loss} (a canonical pairing: dL/dz = f − y).",
        __config__=None,
        model=(Literal[model.value], Field(description="The model.")),  # type: ignore[valid-type,arg-type]
        parameters=(params, ...),
        data=(data, ...),
    )


LinearRegressionRequest = _preset(ModelName.LINEAR_REGRESSION, ScalarParameters, LinearData)
LogisticRegressionRequest = _preset(ModelName.LOGISTIC_REGRESSION, ScalarParameters, BinaryData)
SoftmaxRegressionRequest = _preset(ModelName.SOFTMAX_REGRESSION, VectorParameters, ClassData)
PoissonRegressionRequest = _preset(ModelName.POISSON_REGRESSION, ScalarParameters, CountData)


class SingleLayerRequest(_Options):
    """Any compatible activation + loss pairing, canonical or not (see GET /pairings)."""

    model: Literal["single_layer"] = Field(description="The model.")
    activation: ActivationChoice  # type: ignore[valid-type]
    loss: LossChoice  # type: ignore[valid-type]
    loss_params: LossParams | None = Field(None, description="Parameters of the loss (huber: delta).")  # type: ignore[valid-type]
    parameters: AnyParameters = Field(
        description="w (n numbers) and b (a number); with softmax w is n×k and b has k entries."
    )
    data: AnyData


class LayerSpec(Strict):
    activation: _name_or_formula(  # type: ignore[valid-type]
        ActivationName, ActivationFormula, 'g[l], a name or {"formula": "..."} in z; softmax only in the last layer.'
    )


class LayerParameters(Strict):
    W: Annotated[list[list[float]], Field(min_length=1, description="n_in rows of n_out weights.")]
    b: list[float] = Field(min_length=1, description="n_out biases.")


class NetworkParameters(Strict):
    layers: list[LayerParameters] = Field(min_length=1, description="W[l] and b[l] for each layer, in order.")


class NeuralNetworkRequest(_Options):
    """Several layers: z[l] = a[l−1] W[l] + b[l], a[l] = g[l](z[l]); the last layer's activation pairs with
    the loss (1 unit, or k ≥ 2 with softmax). Regularization applies to the weights, never the biases."""

    model: Literal["neural_network"] = Field(description="The model.")
    layers: list[LayerSpec] = Field(min_length=1, description="The activation of each layer, in order.")
    loss: LossChoice  # type: ignore[valid-type]
    loss_params: LossParams | None = Field(None, description="Parameters of the loss (huber: delta).")  # type: ignore[valid-type]
    parameters: NetworkParameters
    data: AnyData


EXAMPLES[ModelName.NEURAL_NETWORK] = _example(
    ModelName.NEURAL_NETWORK,
    layers=[{"activation": "relu"}, {"activation": "sigmoid"}],
    loss="binary_cross_entropy",
    parameters={
        "layers": [
            {"W": [[0.5, -0.4, 0.3], [0.2, 0.6, -0.5]], "b": [0.1, 0.0, -0.1]},
            {"W": [[0.7], [-0.3], [0.5]], "b": [0.05]},
        ]
    },
    data={"X": WORKED_X, "y": [0, 0, 0, 1, 1, 1]},
    explain="factors",
)

REQUEST_MODELS: dict[ModelName, type[Strict]] = {
    ModelName.LINEAR_REGRESSION: LinearRegressionRequest,
    ModelName.LOGISTIC_REGRESSION: LogisticRegressionRequest,
    ModelName.SOFTMAX_REGRESSION: SoftmaxRegressionRequest,
    ModelName.POISSON_REGRESSION: PoissonRegressionRequest,
    ModelName.SINGLE_LAYER: SingleLayerRequest,
    ModelName.NEURAL_NETWORK: NeuralNetworkRequest,
}
# A custom pairing: formulas in place of the names (docs/custom-formulas.md), a second single_layer example
FORMULA_EXAMPLE = _example(
    ModelName.SINGLE_LAYER,
    activation={"formula": "tanh(z/2)"},
    loss={"formula": "log(cosh(f - y))"},
    parameters={"w": [1.0, -0.5], "b": 0.25},
    data={"X": WORKED_X, "y": [1.2, 0.8, 2.0, 3.1, 2.2, 0.9]},
    explain="full",
)
for _model, _cls in REQUEST_MODELS.items():
    _more = [FORMULA_EXAMPLE] if _model is ModelName.SINGLE_LAYER else []
    _cls.model_config["json_schema_extra"] = {"examples": [EXAMPLES[_model], *_more]}
    _cls.model_rebuild(force=True)

GradientRequest = Annotated[
    LinearRegressionRequest  # type: ignore[valid-type]
    | LogisticRegressionRequest  # type: ignore[valid-type]
    | SoftmaxRegressionRequest  # type: ignore[valid-type]
    | PoissonRegressionRequest  # type: ignore[valid-type]
    | SingleLayerRequest
    | NeuralNetworkRequest,
    Discriminator("model"),
]


# --- responses (for the OpenAPI document; the routes encode plain dicts with orjson) ---------
# a /gradient body, validated strictly (also the problem in /grade, /descent, /graph)
GRADIENT_REQUEST: TypeAdapter[Any] = TypeAdapter(GradientRequest)

# The request body of POST /gradient and POST /graph in the OpenAPI document: JSON, or multipart with X as .npy
GRADIENT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/GradientRequest"},
                "examples": {str(model): {"summary": str(model), "value": ex} for model, ex in EXAMPLES.items()},
            },
            MULTIPART: multipart_content(
                "#/components/schemas/GradientRequest", "data", EXAMPLES[ModelName.LOGISTIC_REGRESSION]
            ),
        },
    }
}


class FormulaOut(BaseModel):
    latex: str
    text: str


class FormulaRead(BaseModel):
    formula: str = Field(description="The formula as the service read it (plain text).")
    latex: str
    targets: dict[str, Any] | None = Field(None, description="A formula loss's targets.")


class PairingOut(BaseModel):
    activation: ActivationName | FormulaRead
    loss: LossName | FormulaRead
    canonical: bool
    loss_params: dict[str, float] | None = Field(None, description="Present for losses with parameters (huber).")


class Gradients(BaseModel):
    w: list[float] | list[list[float]] = Field(description="∂J/∂w, shaped as parameters.w.")
    b: float | list[float] = Field(description="∂J/∂b, shaped as parameters.b.")


class DerivationStepOut(BaseModel):
    rule: str
    latex: str
    text: str
    why: str


class Step(BaseModel):
    factor: str = Field(description="dL/df, df/dz, dz/dw, ... or z, f, L, J for the forward pass.")
    kind: Literal["forward", "local", "chain", "regularization", "aggregate"]
    latex: str
    text: str
    value: Any = Field(None, description="Per-example values (examples first) or the aggregate; absent for dz/dw.")
    value_ref: str | None = Field(None, description="Where the value is, when it is not repeated (dz/dw: data.X).")
    rule: str | None = None
    note: str | None = None
    derivation: list[DerivationStepOut] | None = Field(None, description='With explain "full".')


class Note(BaseModel):
    quantity: str
    examples: list[int] = Field(description="Indices of the examples concerned (the first 50).")
    count: int
    reason: str


class PerSample(BaseModel):
    z: list[float] | list[list[float]]
    f: list[float] | list[list[float]]
    loss: list[float]
    dL_df: list[float | None] | list[list[float | None]] = Field(description="null where not representable: see notes.")
    df_dz: list[float | None] | list[list[list[float | None]]] = Field(
        description="For softmax, a k×k Jacobian per example; null where not representable: see notes."
    )
    dL_dz: list[float] | list[list[float]]


class Simplification(BaseModel):
    dL_dz: FormulaOut
    cancellation: FormulaOut
    distribution: str
    link: str
    log_partition: FormulaOut
    reason: FormulaOut
    explanation: str


class Breakdown(BaseModel):
    per_sample: PerSample
    steps: list[Step]
    simplification: Simplification | None = Field(description="For a canonical pairing; null otherwise.")
    notes: list[Note]


class VerificationComponent(BaseModel):
    parameter: str
    analytic: float
    numeric: float
    relative_error: float


class Verification(BaseModel):
    method: str
    components: list[VerificationComponent]
    max_relative_error: float
    expected_agreement: float
    agrees: bool
    kinks: list[dict[str, Any]]
    skipped: list[dict[str, Any]]


class LayerGradients(BaseModel):
    W: list[list[float]]
    b: list[float]


class NetworkGradients(BaseModel):
    layers: list[LayerGradients] = Field(description="∂J/∂W[l] and ∂J/∂b[l], shaped as parameters.layers.")


class GradientResponse(BaseModel):
    model: ModelName
    pairing: PairingOut
    loss: float = Field(description="The cost J: mean of the per-example losses plus the regularization term.")
    gradients: Gradients | NetworkGradients = Field(description="Exactly the structure of parameters.")
    breakdown: Breakdown | dict[str, Any] | None = Field(
        None, description="Present when explain is on (for a neural_network: layers, per_sample, steps, notes)."
    )
    verification: Verification | None = Field(None, description="Present when verify is true.")

"""Request model of POST /descent."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, TypeAdapter

from service.compute.model_names import ModelName
from service.http.schemas.gradient import EXAMPLES, ActivationChoice, GradientRequest, LossChoice, LossParams, Strict
from service.http.wire.binary import MULTIPART, multipart_content


class Pairing(Strict):
    """The output activation and loss of the second run."""

    activation: ActivationChoice  # type: ignore[valid-type]
    loss: LossChoice  # type: ignore[valid-type]
    loss_params: LossParams | None = None  # type: ignore[valid-type]


EXAMPLE: dict[str, Any] = {
    "problem": {
        "model": "logistic_regression",
        "parameters": {"w": [0.0, 0.0], "b": 0.0},
        "data": EXAMPLES[ModelName.LOGISTIC_REGRESSION]["data"],
    },
    "learning_rate": 1.0,
    "steps": 200,
    "record_every": 50,
    "compare_with": {"activation": "sigmoid", "loss": "squared_error"},
}


class DescentRequest(Strict):
    """k steps of batch gradient descent θ ← θ − α ∂J/∂θ from the problem's parameters."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE]})  # type: ignore[typeddict-item]
    problem: GradientRequest = Field(description="Any model, as /gradient takes it (explain and verify are ignored).")
    learning_rate: float = Field(gt=0, le=1e6, description="α > 0.")
    steps: int = Field(ge=0, description="k: the most steps to take (limited by the settings).")
    record_every: int | None = Field(
        None, ge=1, description="Report the parameters every s steps (default: about 10 snapshots) and at the end."
    )
    patience: int = Field(5, ge=1, le=1000, description="Stop as diverged when J rises this many steps in a row.")
    gradient_tolerance: float = Field(0.0, ge=0, description="Stop as converged when ‖∇J‖ ≤ this.")
    compare_with: Pairing | None = Field(
        None,
        description="Run the same data and starting parameters under another output pairing too, side by side "
        "(e.g. sigmoid + squared_error against logistic regression's sigmoid + binary_cross_entropy).",
    )


DESCENT_REQUEST: TypeAdapter[DescentRequest] = TypeAdapter(DescentRequest)
# The request body of POST /descent and /descent/plot in the OpenAPI document: JSON, or multipart with X as .npy
DESCENT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/DescentRequest"}},
            MULTIPART: multipart_content("#/components/schemas/DescentRequest", "problem.data", EXAMPLE),
        },
    }
}

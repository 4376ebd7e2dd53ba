"""The names of the models a request can ask for, as the API spells them.

Four are presets, each a canonical pairing (`pairings.CANONICAL` says which); `single_layer` takes any
compatible activation and loss; `neural_network` is several layers (`models.py`, where a single-layer
model is a network of depth one). The names live apart from the pairings and the models so that
both, the catalogue and the HTTP schemas can import them without importing one another.
"""

from __future__ import annotations

from enum import StrEnum


class ModelName(StrEnum):
    LINEAR_REGRESSION = "linear_regression"
    LOGISTIC_REGRESSION = "logistic_regression"
    SOFTMAX_REGRESSION = "softmax_regression"
    POISSON_REGRESSION = "poisson_regression"
    SINGLE_LAYER = "single_layer"
    NEURAL_NETWORK = "neural_network"

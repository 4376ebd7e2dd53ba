"""The committed OpenAPI document is generated from the app and kept in sync."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from service.__main__ import OPENAPI_PATH, openapi_text
from service.compute.activations import ActivationName
from service.compute.losses import LossName
from service.compute.model_names import ModelName
from service.http.schemas.gradient import REQUEST_MODELS


def test_committed_openapi_is_current() -> None:
    committed = Path(OPENAPI_PATH).read_text()
    assert committed == openapi_text(), "openapi/openapi.json is stale: run `python -m service export-openapi`"


def test_every_model_has_its_own_schema_with_an_example() -> None:
    doc = json.loads(openapi_text())
    schemas = doc["components"]["schemas"]
    mapping = schemas["GradientRequest"]["discriminator"]["mapping"]
    assert set(mapping) == {m.value for m in ModelName}
    for model, cls in REQUEST_MODELS.items():
        schema = schemas[cls.__name__]
        assert schema["examples"][0]["model"] == model.value
        assert schema["additionalProperties"] is False
    body = doc["paths"]["/gradient"]["post"]["requestBody"]["content"]["application/json"]
    assert set(body["examples"]) == {m.value for m in ModelName}


def test_openapi_lists_every_activation_and_loss_name() -> None:
    schemas = json.loads(openapi_text())["components"]["schemas"]
    assert set(schemas["ActivationName"]["enum"]) == {a.value for a in ActivationName}
    assert set(schemas["LossName"]["enum"]) == {lo.value for lo in LossName}


def test_preset_targets_carry_the_loss_domain() -> None:
    schemas = json.loads(openapi_text())["components"]["schemas"]
    y = schemas["BinaryData"]["properties"]["y"]["items"]
    assert (y["minimum"], y["maximum"]) == (0.0, 1.0)
    assert schemas["CountData"]["properties"]["y"]["items"]["minimum"] == 0.0


def test_every_request_body_has_an_example() -> None:
    """Each operation's body, in each media type it takes, shows an example (its own, or its schema's)."""
    doc = json.loads(Path(OPENAPI_PATH).read_text())
    schemas = doc["components"]["schemas"]

    def has_example(schema: dict[str, Any]) -> bool:
        if "example" in schema or "examples" in schema:
            return True
        return "$ref" in schema and has_example(schemas[schema["$ref"].rsplit("/", 1)[-1]])

    missing = [
        (method, path, media)
        for path, operations in doc["paths"].items()
        for method, op in operations.items()
        for media, content in op.get("requestBody", {}).get("content", {}).items()
        if not ("example" in content or "examples" in content or has_example(content.get("schema", {})))
    ]
    assert missing == []

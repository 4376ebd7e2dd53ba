"""The client's typed responses against openapi/openapi.json: every TypedDict that mirrors a response
schema has exactly its properties, required where the schema requires them, and the TypedDicts of its
fields that name a schema ($ref, in an anyOf, or an array's items) match those schemas in turn."""

from __future__ import annotations

import json
import typing
from typing import Any, NotRequired, get_args, get_origin, get_type_hints, is_typeddict

import pytest

import gradient_service_client as gsc
from tests.system.server import ROOT

SCHEMAS: dict[str, Any] = json.loads((ROOT / "openapi" / "openapi.json").read_text())["components"]["schemas"]

# the TypedDicts of the responses and the schemas they mirror (the fields' types are followed from these)
ROOTS = {
    gsc.GradientResult: "GradientResponse",
    gsc.GradeResult: "GradeResult",
    gsc.GradescopeResult: "GradescopeResult",
    gsc.PrairieLearnResult: "PrairieLearnResult",
    gsc.SignedProblem: "SignResponse",
}
# schemas that the client leaves loosely typed (dict[str, Any]): the network model's gradients, the steps
NOT_MIRRORED = {"NetworkGradients", "Simplification", "Step", "Note"}


def _refs(schema: Any) -> list[str]:
    """The named schemas a property's schema points to: itself, in an anyOf/oneOf, or an array's items."""
    if not isinstance(schema, dict):
        return []
    if "$ref" in schema:
        return [schema["$ref"].rsplit("/", 1)[1]]
    found = [r for option in schema.get("anyOf", []) + schema.get("oneOf", []) for r in _refs(option)]
    return found + _refs(schema.get("items"))


def _typeddicts(hint: Any) -> list[type]:
    """The TypedDicts in a field's type: itself, in a union, or a list's items."""
    if is_typeddict(hint):
        return [hint]
    return [t for arg in get_args(hint) for t in _typeddicts(arg)]


def _pairs() -> list[tuple[type, str]]:
    seen: dict[type, str] = {}
    todo = list(ROOTS.items())
    while todo:
        td, name = todo.pop()
        if td in seen:
            continue
        seen[td] = name
        hints = get_type_hints(td)
        for field, prop in SCHEMAS[name]["properties"].items():
            named = [r for r in _refs(prop) if r in SCHEMAS and "properties" in SCHEMAS[r] and r not in NOT_MIRRORED]
            typed = _typeddicts(hints.get(field))
            assert len(named) == len(typed), f"{td.__name__}.{field}: schemas {named}, TypedDicts {typed}"
            todo += zip(typed, named, strict=True)
    return sorted(seen.items(), key=lambda p: p[0].__name__)


PAIRS = _pairs()


def test_the_walk_reaches_the_nested_schemas() -> None:
    reached = {name for _, name in PAIRS}
    assert {"PairingOut", "Gradients", "Breakdown", "PerSample", "Check", "MistakeOut", "GradescopeTest"} <= reached
    assert {"Verification", "VerificationComponent", "PrairieLearnTest", "Version"} <= reached


@pytest.mark.parametrize(("typed", "schema"), PAIRS, ids=[f"{t.__name__}={s}" for t, s in PAIRS])
def test_typeddict_matches_its_schema(typed: type, schema: str) -> None:
    properties = set(SCHEMAS[schema]["properties"])
    required = set(SCHEMAS[schema].get("required", []))
    assert set(typed.__annotations__) == properties
    # the client's module uses `from __future__ import annotations`: NotRequired is seen through the hints
    hints = get_type_hints(typed, include_extras=True)
    optional = {k for k, hint in hints.items() if get_origin(hint) is NotRequired}
    assert properties - optional == required, "NotRequired exactly where the schema does not require"


def test_a_renamed_field_would_be_caught() -> None:
    """The check itself: a TypedDict with one key off does not match."""

    class Wrong(typing.TypedDict):
        problem_token: str
        expires: NotRequired[int]

    assert set(Wrong.__annotations__) != set(SCHEMAS["SignResponse"]["properties"])
    assert {k for k, h in get_type_hints(Wrong, include_extras=True).items() if get_origin(h) is NotRequired} == {
        "expires"
    }

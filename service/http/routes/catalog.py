"""The catalogue: activations, losses, pairings and models, generated from the registries."""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import APIRouter

from service.compute import catalog
from service.http.deps import STUDENT_OR_OPERATOR
from service.http.schemas.problem import AUTH_RESPONSES
from service.http.wire.encoding import JSONBytes, dumps

router = APIRouter(responses=AUTH_RESPONSES, dependencies=[STUDENT_OR_OPERATOR], tags=["catalogue"])

_LIST = {200: {"content": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}}}}


@cache
def _encoded(name: str) -> bytes:
    builders: dict[str, Any] = {
        "activations": catalog.activations,
        "losses": catalog.losses,
        "pairings": catalog.pairings,
        "models": catalog.models,
    }
    return dumps(builders[name]())


@router.get("/activations", response_class=JSONBytes, responses=_LIST)  # type: ignore[arg-type]
async def activations() -> JSONBytes:
    """Every activation: formula, derivative, range, stable evaluation and its derivation."""
    return JSONBytes(_encoded("activations"))


@router.get("/losses", response_class=JSONBytes, responses=_LIST)  # type: ignore[arg-type]
async def losses() -> JSONBytes:
    """Every loss: formula, derivative with respect to f, targets, parameters and its derivation."""
    return JSONBytes(_encoded("losses"))


@router.get("/pairings", response_class=JSONBytes, responses=_LIST)  # type: ignore[arg-type]
async def pairings() -> JSONBytes:
    """Every activation × loss combination: compatible or why not, canonical, targets, ∂L/∂z."""
    return JSONBytes(_encoded("pairings"))


@router.get("/models", response_class=JSONBytes, responses=_LIST)  # type: ignore[arg-type]
async def models() -> JSONBytes:
    """The presets and single_layer, with their pairings and parameter shapes."""
    return JSONBytes(_encoded("models"))

"""JSON responses encoded by orjson, numpy arrays included (no per-element Python work)."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from starlette.responses import JSONResponse


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):  # 0-d or non-contiguous arrays, which orjson passes here
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot encode {type(obj).__name__}")


_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
_SHARED_MIN_SIZE = 64  # arrays at least this long are encoded once however often they appear


def _share(obj: Any, seen: dict[int, orjson.Fragment]) -> Any:
    """The tree with each big array replaced by its encoded text, encoded once per array object:
    a breakdown lists the same per-example arrays under per_sample and again in its steps."""
    if isinstance(obj, dict):
        return {k: _share(v, seen) for k, v in obj.items()}
    if isinstance(obj, list) and len(obj) < _SHARED_MIN_SIZE:
        return [_share(v, seen) for v in obj]
    if isinstance(obj, np.ndarray) and obj.size >= _SHARED_MIN_SIZE:
        fragment = seen.get(id(obj))
        if fragment is None:
            fragment = seen[id(obj)] = orjson.Fragment(orjson.dumps(obj, default=_default, option=_OPTIONS))
        return fragment
    return obj


def dumps(obj: Any) -> bytes:
    if isinstance(obj, dict) and "breakdown" in obj:
        obj = _share(obj, {})
    return orjson.dumps(obj, default=_default, option=_OPTIONS)


class JSONBytes(JSONResponse):
    """JSON encoded by orjson (a JSONResponse, so the OpenAPI document shows the response model)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else dumps(content)

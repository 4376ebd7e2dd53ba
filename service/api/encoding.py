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


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, default=_default, option=orjson.OPT_SERIALIZE_NUMPY)


class JSONBytes(JSONResponse):
    """JSON encoded by orjson (a JSONResponse, so the OpenAPI document shows the response model)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else dumps(content)

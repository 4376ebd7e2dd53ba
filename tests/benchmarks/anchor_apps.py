"""The two HTTP anchors the service's POST /gradient is compared with, each served by uvicorn:

- `plain_app`: FastAPI's default path — a pydantic body model with `list[list[float]]`, the numpy
  logistic gradient, and a dict returned (FastAPI validates it and encodes it with its JSONResponse).
  The handler is `async def`, as the service's own small-request path is, so the comparison is of
  parsing, validation and encoding rather than of a thread hop.
- `bare_app`: the ceiling — a bare ASGI callable that reads the body, orjson.loads, np.asarray,
  computes, orjson.dumps. No routing, no validation, no middleware.

Both compute with `anchor_numpy.logistic_numpy`, which a test checks against the service.

    uvicorn tests.benchmarks.anchor_apps:plain_app    # or :bare_app
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI
from pydantic import BaseModel

from tests.benchmarks.anchor_numpy import logistic_numpy


class Parameters(BaseModel):
    w: list[float]
    b: float


class Data(BaseModel):
    X: list[list[float]]
    y: list[float]


class GradientBody(BaseModel):
    model: str
    parameters: Parameters
    data: Data


plain_app = FastAPI()


@plain_app.post("/gradient")
async def plain_gradient(body: GradientBody) -> dict[str, Any]:
    X = np.asarray(body.data.X, dtype=np.float64)
    y = np.asarray(body.data.y, dtype=np.float64)
    w = np.asarray(body.parameters.w, dtype=np.float64)
    loss, grad_w, grad_b = logistic_numpy(X, y, w, body.parameters.b)
    return {"model": body.model, "loss": loss, "gradients": {"w": grad_w.tolist(), "b": grad_b}}


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    req = orjson.loads(b"".join(chunks))
    X = np.asarray(req["data"]["X"], dtype=np.float64)
    y = np.asarray(req["data"]["y"], dtype=np.float64)
    w = np.asarray(req["parameters"]["w"], dtype=np.float64)
    loss, grad_w, grad_b = logistic_numpy(X, y, w, float(req["parameters"]["b"]))
    out = orjson.dumps(
        {"model": req["model"], "loss": loss, "gradients": {"w": grad_w, "b": grad_b}},
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": out})

"""Settings from the environment (prefix GRADIENT_SERVICE_), read once per process."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRADIENT_SERVICE_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address `python -m service serve` binds to.")
    port: int = Field(8000, description="Port `python -m service serve` binds to.")
    log_level: str = Field("info", description="Log level of the service and uvicorn.")
    max_body_bytes: int = Field(64 * 1024 * 1024, gt=0, description="Largest request body accepted (413 above).")
    max_explain_values: int = Field(
        1_000_000, gt=0, description="Largest breakdown, counted in numbers (softmax Jacobians count m·k²)."
    )
    max_verify_work: int = Field(
        50_000_000,
        gt=0,
        description="Largest finite-difference check, in multiply-adds: 2·(parameters)·m·n·k.",
    )
    max_layers: int = Field(16, gt=0, description="Most layers in a neural_network.")
    max_units: int = Field(1024, gt=0, description="Most units in one layer of a neural_network.")
    max_parameters: int = Field(1_000_000, gt=0, description="Most weights and biases in a neural_network.")
    max_descent_steps: int = Field(10_000, gt=0, description="Most steps of one /descent run.")
    max_descent_work: int = Field(
        500_000_000, gt=0, description="Largest /descent, in multiply-adds: m·n·k per step × steps × runs."
    )
    max_batch_items: int = Field(10_000, gt=0, description="Most answers (or items) in one /grade/batch request.")
    inline_body_bytes: int = Field(
        65_536,
        ge=0,
        description="Bodies above this size are parsed and computed in a worker thread, off the event loop.",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

"""Settings from the environment (prefix GRADIENT_SERVICE_), read once per process."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, TypeAdapter
from pydantic_settings import BaseSettings, SettingsConfigDict

Role = Literal["grader", "student", "operator"]
_KEYS: TypeAdapter[dict[str, list[Role]]] = TypeAdapter(dict[str, list[Role]])


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRADIENT_SERVICE_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address `python -m service serve` binds to.")
    port: int = Field(8000, description="Port `python -m service serve` binds to.")
    log_level: str = Field("info", description="Log level of the service and uvicorn.")
    max_body_bytes: int = Field(64 * 1024 * 1024, gt=0, description="Largest request body accepted (413 above).")
    student_max_body_bytes: int = Field(
        256 * 1024,
        gt=0,
        description="Largest body from a student-only key, or an invalid or missing one when keys are configured.",
    )
    body_read_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="Time from the request's start to its body's last byte (408 when the client is slower).",
    )
    max_explain_values: int = Field(
        1_000_000, gt=0, description="Largest breakdown, counted in numbers (softmax Jacobians count m·k²)."
    )
    max_verify_work: int = Field(
        50_000_000,
        gt=0,
        description="Largest finite-difference check, in multiply-adds: 2·(parameters)·m·n·k.",
    )
    max_formula_work: int = Field(
        20_000_000,
        gt=0,
        description="Largest evaluation of custom formulas in one request, in node·examples: m × the tree nodes of "
        "each formula and its derivative (× units for a hidden layer) × the passes (1, +1 with explain, + the "
        "finite-difference evaluations with verify); about 10-50 ns each.",
    )
    max_layers: int = Field(16, gt=0, description="Most layers in a neural_network.")
    max_units: int = Field(1024, gt=0, description="Most units in one layer of a neural_network.")
    max_parameters: int = Field(1_000_000, gt=0, description="Most weights and biases in a neural_network.")
    max_network_work: int = Field(
        2_000_000_000,
        gt=0,
        description="Largest neural_network, in multiply-adds of its forward pass: m·Σ weights (backward: twice that).",
    )
    max_network_values: int = Field(
        4_000_000,
        gt=0,
        description="Largest neural_network, in the values backpropagation keeps: m·Σ units over the layers.",
    )
    max_descent_steps: int = Field(10_000, gt=0, description="Most steps of one /descent run.")
    max_descent_work: int = Field(
        750_000_000,
        gt=0,
        description="Largest /descent: (steps + 1) × Σ over runs of m·Σ (fan_in + 64)·units + 32·parameters (≤ 3 s).",
    )
    max_descent_recorded: int = Field(
        2_000_000,
        gt=0,
        description="Most parameter values one /descent records (its snapshots, every record_every steps).",
    )
    max_batch_items: int = Field(10_000, gt=0, description="Most answers (or items) in one /grade/batch request.")
    max_batch_work: int = Field(
        3_000_000_000,
        gt=0,
        description="Largest /grade/batch, counted before grading in units of about 1 ns here: 192 per byte "
        "of the body, 400,000 per answer (or item), 500,000 + 24·m·n·k per distinct problem.",
    )
    inline_body_bytes: int = Field(
        65_536,
        ge=0,
        description="Bodies above this size are parsed and computed in a worker thread, off the event loop.",
    )
    compute_threads: int | None = Field(
        None,
        ge=1,
        description="Threads one big problem's loss and gradients may use (None: the CPUs this process may use).",
    )
    formula_time_limit_seconds: float = Field(
        2.0, gt=0, le=60, description="Time one formula job (/derive) may take in its worker (422 above; killed)."
    )
    formula_memory_limit_bytes: int = Field(
        512 * 1024 * 1024,
        ge=64 * 1024 * 1024,
        description="Memory one formula worker may add to its size at start (422 above; the worker is replaced).",
    )
    formula_workers: int = Field(2, ge=1, le=64, description="Worker processes that run formula jobs (SymPy).")
    formula_start_workers: bool = Field(
        True, description="Start the formula workers with the app (false: each at its first job, about 0.2 s later)."
    )
    formula_max_waiting: int | None = Field(
        None,
        ge=0,
        description="Formula jobs that may wait for a worker (None: 4 per worker); beyond, 503 with Retry-After.",
    )

    api_keys: dict[str, list[Role]] = Field(
        default_factory=dict,
        description='API keys and their roles, as JSON: {"<key>": ["grader"], ...}. None: the service runs open.',
    )
    api_keys_file: Path | None = Field(None, description="A JSON file of API keys and roles, read at start.")
    signing_secret: SecretStr | None = Field(
        None, description="HMAC secret for problem tokens; without it a random one is made per process."
    )
    token_lifetime_seconds: int = Field(7 * 24 * 3600, gt=0, description="Default lifetime of a problem token.")
    max_attempts: int = Field(20, gt=0, description="Gradings a student key may make of one problem token.")
    rate_limit_per_minute: int = Field(600, ge=0, description="Requests per minute per API key (0: no limit).")
    rate_limit_burst: int = Field(60, gt=0, description="Requests a key may make at once above the steady rate.")
    redis_url: str | None = Field(
        None, description="Redis for rate limits and attempt counts shared across workers and replicas."
    )
    data_dir: Path = Field(
        Path("data"),
        description="Directory of the attempts database (SQLite, shared by the workers of one host; "
        "relative to the working directory). Unused when redis_url is set.",
    )
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed by CORS (no wildcard).")
    max_header_bytes: int = Field(
        64 * 1024,
        ge=1024,
        description="Largest request line and headers `python -m service serve` reads (431 or 400 above).",
    )
    auth_failures_per_minute: int = Field(
        10, ge=0, description="Failed authentications per minute per client address (0: not throttled)."
    )
    auth_failure_burst: int = Field(
        10, gt=0, description="Failed authentications a client address may make at once above the steady rate."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Proxy addresses whose X-Forwarded-For names the client (`serve` only; none: the TCP peer).",
    )
    drain_seconds: float = Field(
        0.0, ge=0, description="On SIGTERM, answer 503 on /readyz this long while still serving, then stop."
    )
    max_rows: int = Field(1_000_000, gt=0, description="Most examples m in one problem.")
    max_features: int = Field(100_000, gt=0, description="Most features n in one problem.")
    max_classes: int = Field(1_000, gt=0, description="Most classes k in one problem.")
    max_elements: int = Field(
        5_000_000, gt=0, description="Most numbers m·n in X (the largest request then peaks near 0.2 GB)."
    )

    def keys(self) -> dict[str, list[Role]]:
        """The configured keys: the environment's and the file's."""
        keys = dict(self.api_keys)
        if self.api_keys_file is not None:
            # validated as strictly as the environment's: roles are a list of known names
            keys.update(_KEYS.validate_json(self.api_keys_file.read_bytes()))
        return keys


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

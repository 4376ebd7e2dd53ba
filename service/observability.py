"""Operations: JSON logs with a request id, Prometheus metrics (multiprocess-safe).

The middleware that gives each request its id, times it, counts it and logs it is
service/http/middleware/request_context.py; this module holds what it writes to.

With several uvicorn workers, set PROMETHEUS_MULTIPROC_DIR to an empty writable directory: every
worker then writes its samples there and GET /metrics aggregates them (prometheus_client's
multiprocess mode). `python -m service serve` creates and empties that directory at start.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

REQUESTS = Counter(
    "gradient_http_requests_total", "HTTP requests by route, method and status.", ["route", "method", "status"]
)
LATENCY = Histogram(
    "gradient_http_request_duration_seconds",
    "Time from the request's start to its response's end, by route.",
    ["route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
PROBLEM_SIZE = Histogram(
    "gradient_problem_size_elements",
    "Size m·n of the X of each problem computed, by route.",
    ["route"],
    buckets=(10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000),
)
GRADES = Counter(
    "gradient_grading_outcomes_total", "Graded answers by outcome (correct, incorrect, ungradable).", ["outcome"]
)


# Methods counted by name; any other is counted as "other", so a client cannot add series at will.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
_CHILDREN_MAX = 4096  # routes × methods × statuses seen; past it, children are looked up each time


def request_metrics(route: str, method: str, status: int) -> tuple[Any, Any]:
    """The request counter's and the latency histogram's children for a request (cached: prometheus'
    labels() takes a lock and checks its values, ~1.4 µs a call on the hot path)."""
    method = method if method in _METHODS else "other"
    key = (route, method, status)
    pair = _children.get(key)
    if pair is None:
        pair = (REQUESTS.labels(route, method, str(status)), LATENCY.labels(route))
        if len(_children) < _CHILDREN_MAX:
            _children[key] = pair
    return pair


def metrics_payload() -> tuple[bytes, str]:
    """The metrics in Prometheus text format, aggregated over workers in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and any `extra` fields."""

    _RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        for key, value in vars(record).items():
            if key not in self._RESERVED and key not in out:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        try:  # orjson: a few µs per line, where it is written for every request
            return orjson.dumps(out, default=str).decode()
        except TypeError:  # e.g. an integer beyond 64 bits in an extra field
            return json.dumps(out, default=str, ensure_ascii=False)


def log_config(level: str) -> dict[str, Any]:
    """A logging.config dict: everything (uvicorn's own loggers included) as JSON lines on stderr."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JSONFormatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "loggers": {
            "": {"handlers": ["stderr"], "level": level.upper()},
            "uvicorn": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }

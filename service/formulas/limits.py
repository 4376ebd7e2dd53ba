"""The bounds on a formula, checked before any work on it (a later piece reads them from the settings)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_chars: int = 2_000
    max_nodes: int = 1_000
    max_depth: int = 64  # levels of the tree; redundant parentheses do not count
    max_power_log10: int = 100  # a constant power (or number) whose value would pass 10^100, or fall under 10^-100


DEFAULT_LIMITS = Limits()

"""The answer key a learner's answer is graded against: the expected value of every part, and each
catalogued mistake's variant of it (its values stacked, so one comparison tests them all).

A module of its own, with no knowledge of how the key is computed (reference.py) nor of the
mistakes (mistakes.py), which both use it: so that neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.compute.models import Evaluation, Objective
from service.compute.stable import Array
from service.grading.compare import Tolerance

Variant = dict[str, Array]

PART_NAMES = (
    "loss",
    "gradients.w",
    "gradients.b",
    "per_sample.z",
    "per_sample.f",
    "per_sample.dL_df",
    "per_sample.df_dz",
    "per_sample.dL_dz",
)
PER_SAMPLE = ("z", "f", "dL_df", "df_dz", "dL_dz")


@dataclass
class Reference:
    """The answer key of a model of any kind: the expected value of every part (a single-layer model's
    PART_NAMES, or a network's loss and gradients.layers.<i>.W / .b), and each applicable mistake's
    variant (see mistakes.py)."""

    objective: Objective
    evaluation: Evaluation
    expected: dict[str, Array]
    variants: dict[str, dict[str, Array]] = field(default_factory=dict)
    # per part: the codes (and the learner's feedback) of every variant that changes it, and the
    # variants' values stacked, so one comparison tests an answer against all of them at once
    stacked: dict[str, tuple[list[str], list[str], Array]] = field(default_factory=dict)

    @property
    def m(self) -> int:
        return self.objective.m

    def grad_reg(self) -> Array:
        g = self.evaluation.grad_w_regularization
        return np.zeros_like(self.objective.w) if g is None else g


# A variant is compared with the exact answer key at this tolerance to decide whether a mistake
# changes a part at all: a variant equal to the answer key is never diagnosed.
SAME = Tolerance(rtol=1e-12, atol=1e-300)


def kept_parts(variant: dict[str, Any], expected: dict[str, Array]) -> Variant:
    """The parts of a mistake's variant worth diagnosing: finite, of the expected shape, and not
    (within SAME) the correct value (e.g. ∂f/∂z = 1 for identity changes nothing)."""
    kept: Variant = {}
    for part, value in variant.items():
        value = np.asarray(value, dtype=np.float64)
        exp = expected[part]
        if value.shape != exp.shape or not np.all(np.isfinite(value)):
            continue
        if np.all(np.isfinite(exp)) and SAME.allclose(value, exp):
            continue
        kept[part] = value
    return kept


def stack_variants(ref: Any, entries: list[tuple[str, str, dict[str, Array]]]) -> None:
    """Fill ref.stacked from (code, feedback, variant) entries; one code may appear several times."""
    for part in ref.expected:
        chosen = [(code, msg, v[part]) for code, msg, v in entries if part in v]
        if chosen:
            ref.stacked[part] = (
                [c for c, _, _ in chosen],
                [msg for _, msg, _ in chosen],
                np.stack([v for _, _, v in chosen]),
            )

"""The reference a learner's answer is graded against, computed once per problem."""

from __future__ import annotations

import numpy as np

from service.compute.models import Problem, evaluate
from service.grading.answer_key import PART_NAMES, PER_SAMPLE, Reference, stack_variants
from service.grading.mistakes import BY_CODE, variants_for

__all__ = ["PART_NAMES", "PER_SAMPLE", "Reference", "build_reference", "stack_variants"]


def build_reference(problem: Problem) -> Reference:
    """Evaluate the problem, add the displayed factors, and compute the mistake variants."""
    ev = evaluate(problem)
    dL_df, df_dz = problem.pairing.factors(ev.z, ev.f, problem.y)
    expected = {
        "loss": np.asarray(ev.loss),
        "gradients.w": ev.grad_w,
        "gradients.b": np.asarray(ev.grad_b),
        "per_sample.z": ev.z,
        "per_sample.f": ev.f,
        "per_sample.dL_df": dL_df,
        "per_sample.df_dz": df_dz,
        "per_sample.dL_dz": ev.dL_dz,
    }
    ref = Reference(problem, ev, expected)
    ref.variants = variants_for(ref)
    stack_variants(ref, [(code, BY_CODE[code].feedback(ref), variant) for code, variant in ref.variants.items()])
    return ref

"""The answer key a learner's answer is graded against, computed once per problem: the expected
value of every part, and the variant of every catalogued mistake that applies (mistakes.py)."""

from __future__ import annotations

import numpy as np

from service.compute.models import Objective, evaluate
from service.compute.stable import Array
from service.grading.answer_key import PART_NAMES, PER_SAMPLE, Reference, stack_variants
from service.grading.mistakes import add_network_variants, add_single_layer_variants

__all__ = ["PART_NAMES", "PER_SAMPLE", "Reference", "build_reference", "stack_variants"]


def build_reference(objective: Objective) -> Reference:
    """Evaluate the objective once, of any model kind, and compute the mistake variants: a single-layer
    model's parts are its loss, gradients and the displayed factors per example; a network's, its loss
    and every layer's gradients (the variants by backpropagation with one change, mistakes.py)."""
    ev = evaluate(objective)
    expected: dict[str, Array] = {"loss": np.asarray(ev.loss)}
    if objective.is_network:
        for i, (gW, gb) in enumerate(zip(ev.grad_Ws, ev.grad_bs, strict=True)):
            expected[f"gradients.layers.{i}.W"] = gW
            expected[f"gradients.layers.{i}.b"] = gb
    else:
        dL_df, df_dz = objective.pairing.factors(ev.z, ev.f, objective.y)
        expected |= {
            "gradients.w": ev.grad_w,
            "gradients.b": np.asarray(ev.grad_b),
            "per_sample.z": ev.z,
            "per_sample.f": ev.f,
            "per_sample.dL_df": dL_df,
            "per_sample.df_dz": df_dz,
            "per_sample.dL_dz": ev.dL_dz,
        }
    ref = Reference(objective, ev, expected)
    (add_network_variants if objective.is_network else add_single_layer_variants)(ref)
    return ref

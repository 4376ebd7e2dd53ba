"""The answer key a learner's answer is graded against, computed once per problem: the expected
value of every part, and the variant of every catalogued mistake that applies (mistakes.py)."""

from __future__ import annotations

import numpy as np

from service.compute.models import Objective, evaluate
from service.compute.network import NetworkObjective
from service.compute.network import evaluate as evaluate_network
from service.compute.stable import Array
from service.grading.answer_key import PART_NAMES, PER_SAMPLE, NetworkReference, Reference, stack_variants
from service.grading.mistakes import add_network_variants, add_single_layer_variants

__all__ = [
    "PART_NAMES",
    "PER_SAMPLE",
    "NetworkReference",
    "Reference",
    "build_network_reference",
    "build_reference",
    "stack_variants",
]


def build_reference(objective: Objective) -> Reference:
    """Evaluate the objective, add the displayed factors, and compute the mistake variants."""
    ev = evaluate(objective)
    dL_df, df_dz = objective.pairing.factors(ev.z, ev.f, objective.y)
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
    ref = Reference(objective, ev, expected)
    add_single_layer_variants(ref)
    return ref


def build_network_reference(net: NetworkObjective) -> NetworkReference:
    """Evaluate the network by backpropagation and compute the mistake variants."""
    ev = evaluate_network(net)
    expected: dict[str, Array] = {"loss": np.asarray(ev.loss)}
    for i, (gW, gb) in enumerate(zip(ev.grad_Ws, ev.grad_bs, strict=True)):
        expected[f"gradients.layers.{i}.W"] = gW
        expected[f"gradients.layers.{i}.b"] = gb
    ref = NetworkReference(net, ev, expected)
    add_network_variants(ref)
    return ref

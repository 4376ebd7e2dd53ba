"""Grading one answer against a Reference: checks per part, error carried forward, diagnosis.

An answer is a flat dict from part name ("loss", "gradients.w", "per_sample.f", ...) to the JSON
value the learner gave; parts left out are not graded. Nothing here raises on a bad answer: a
wrong shape, NaN or a string is a wrong answer with a message saying what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service import __version__
from service.compute.stable import Array
from service.grading import GRADING_RULES_VERSION
from service.grading.answer_key import Reference
from service.grading.compare import Parsed, Tolerance, parse_answer
from service.grading.mistakes import ALL_MISTAKES

CHAIN_ORDER = (
    "per_sample.z",
    "per_sample.f",
    "per_sample.dL_df",
    "per_sample.df_dz",
    "per_sample.dL_dz",
    "loss",
    "gradients.w",
    "gradients.b",
)
# the learner's per-example values each part follows from, for error carried forward
UPSTREAM: dict[str, tuple[str, ...]] = {
    "per_sample.z": (),
    "per_sample.f": ("z",),
    "per_sample.dL_df": ("z", "f"),
    "per_sample.df_dz": ("z", "f"),
    "per_sample.dL_dz": ("z", "f", "dL_df", "df_dz"),
    "loss": ("z", "f"),
    "gradients.w": ("z", "f", "dL_df", "df_dz", "dL_dz"),
    "gradients.b": ("z", "f", "dL_df", "df_dz", "dL_dz"),
}
_PRIORITY = {m.code: i for i, m in enumerate(ALL_MISTAKES)}
TITLES = {m.code: m.title for m in ALL_MISTAKES}


def version() -> dict[str, str]:
    return {"service": __version__, "grading_rules": GRADING_RULES_VERSION}


CARRY_FORWARD_CREDIT = 0.5  # the default share of a part's points for a correct step from a real slip


@dataclass(frozen=True)
class GradeOptions:
    """How answers are scored: the grader's choice (sealed in a signed problem for students)."""

    tolerance: Tolerance = field(default_factory=Tolerance)
    points: dict[str, float] = field(default_factory=dict)
    reveal: bool = False
    carry_forward: bool = True
    carry_forward_credit: float = CARRY_FORWARD_CREDIT


class _Chain:
    """The learner's per-example values where given, else what follows from their upstream values."""

    def __init__(self, ref: Reference, own: dict[str, Array]) -> None:
        self.ref = ref
        self.own = own
        p = ref.objective
        self.act, self.loss, self.y = p.pairing.activation, p.pairing.loss, p.y
        self.z = own.get("z", ref.evaluation.z)
        with np.errstate(all="ignore"):
            self.f_from_z = self.act.value(self.z)
            self.f = own.get("f", self.f_from_z)
            self.dL_df_from_f = self.loss.dL_df(self.f, self.y)
            self.df_dz_from_zf = self.act.derivative_as_written(self.z, self.f)
            dL_df = own.get("dL_df", self.dL_df_from_f)
            df_dz = own.get("df_dz", self.df_dz_from_zf)
            if p.pairing.canonical and "dL_df" not in own and "df_dz" not in own:
                self.dL_dz_from_factors = self.f - self.y  # f - y
            elif p.pairing.vector:
                self.dL_dz_from_factors = np.einsum("ik,ikl->il", dL_df, df_dz)
            else:
                self.dL_dz_from_factors = dL_df * df_dz
            self.dL_dz = own.get("dL_dz", self.dL_dz_from_factors)

    def expectation(self, part: str) -> Array | None:
        """What `part` should be given the learner's own upstream values."""
        ref, p = self.ref, self.ref.objective
        with np.errstate(all="ignore"):
            if part == "per_sample.f":
                return self.f_from_z
            if part == "per_sample.dL_df":
                return self.dL_df_from_f
            if part == "per_sample.df_dz":
                return self.df_dz_from_zf
            if part == "per_sample.dL_dz":
                return self.dL_dz_from_factors
            if part == "loss":
                L = self.loss.value(self.f, self.y)
                return np.asarray(float(np.mean(L)) + ref.evaluation.regularization_loss)
            if part == "gradients.w":
                return p.X.T @ self.dL_dz / p.m + ref.grad_reg()
            if part == "gradients.b":
                return np.asarray(np.mean(self.dL_dz, axis=0))
        return None


def grade(ref: Any, answer: dict[str, Any], options: GradeOptions) -> dict[str, Any]:
    """The native result: score, points, checks with messages and diagnosed mistakes, feedback.

    `ref` is a Reference of any model kind (service.grading.answer_key)."""
    tol = options.tolerance
    parsed: dict[str, Parsed] = {
        part: parse_answer(answer[part], ref.expected[part].shape) for part in ref.expected if part in answer
    }
    own: dict[str, Array] = {}
    for part, pa in parsed.items():
        if part.startswith("per_sample.") and pa.defect is None and pa.array is not None:
            own[part.split(".", 1)[1]] = pa.array
    # the learner's per-example values that differ from the reference: what later parts inherit
    off_reference = {name for name, arr in own.items() if not _matches(arr, ref.expected["per_sample." + name], tol)}
    chain = _Chain(ref, own) if off_reference and options.carry_forward else None

    ordered: list[dict[str, Any]] = []
    # the learner's own values graded wrong and explained by a catalogued mistake (or following from
    # such a one): real slips, the only wrong values later parts may be credited for following; a
    # made-up value is no slip, so zeros for dL/dz and zeros for the gradients earn nothing
    slips: set[str] = set()
    for part in [*CHAIN_ORDER, *(p for p in ref.expected if p not in CHAIN_ORDER)]:
        if part in parsed:
            check = _check(part, parsed[part], ref, chain, off_reference, slips, options)
            ordered.append(check)
            explained = check.get("mistake") is not None or check.get("graded_against") == "own_values"
            if part.startswith("per_sample.") and not check["correct"] and explained:
                slips.add(part)
    points = sum(c["points"] for c in ordered)
    max_points = sum(c["max_points"] for c in ordered)
    correct = all(c["correct"] for c in ordered if c.get("graded", True))
    result = {
        "score": points / max_points if max_points > 0 else (1.0 if correct else 0.0),
        "points": points,
        "max_points": max_points,
        "correct": correct,
        "checks": ordered,
        "feedback": _feedback(ordered),
        "version": version(),
    }
    return result


def _matches(a: Array, e: Array, tol: Tolerance) -> bool:
    return a.shape == e.shape and bool(np.all(np.isfinite(e))) and tol.allclose(a, e)


def _check(
    part: str,
    pa: Parsed,
    ref: Reference,
    chain: _Chain | None,
    off_reference: set[str],
    slips: set[str],
    options: GradeOptions,
) -> dict[str, Any]:
    tol = options.tolerance
    expected = ref.expected[part]
    max_points = float(options.points.get(part, 1.0))
    check: dict[str, Any] = {"name": part, "correct": False, "points": 0.0, "max_points": max_points}
    if options.reveal:
        check["expected"] = _jsonable(expected)
    if not np.all(np.isfinite(expected)):
        bad = np.flatnonzero(np.any(~np.isfinite(expected.reshape(expected.shape[0], -1)), axis=1))
        check.update(
            max_points=0.0,
            graded=False,
            message=f"Not graded: its true value is not representable in float64 for examples {bad[:20].tolist()}.",
            mistake=None,
        )
        return check
    if pa.defect is not None:
        check.update(message="Wrong: " + pa.defect + ".", mistake=None, graded_against="reference")
        return check
    assert pa.array is not None
    answer = pa.array
    close = tol.close(answer, expected)  # parse_answer gave the expected shape: compared once, used thrice
    if bool(np.all(close)):
        check.update(correct=True, points=max_points, message="Correct.", mistake=None, graded_against="reference")
        return check
    inherited = [f"per_sample.{n}" for n in UPSTREAM.get(part, ()) if n in off_reference]
    if inherited and chain is not None and all(p in slips for p in inherited):
        carried = chain.expectation(part)
        if (
            carried is not None
            and carried.shape == answer.shape
            and np.all(np.isfinite(carried))
            and tol.allclose(answer, carried)
        ):
            share = options.carry_forward_credit
            check.update(
                points=max_points * share,
                graded_against="own_values",
                carried_from=inherited,
                message=f"Follows correctly from your own {', '.join(inherited)} (error carried forward), whose "
                f"mistake is named where it was made: {share:g} of this part's points.",
                mistake=None,
            )
            return check
    total = close.size
    where = "" if total == 1 else f" {total - int(np.count_nonzero(close))} of {total} components differ."
    if part.startswith("per_sample."):
        bad = np.flatnonzero(~np.all(close.reshape(answer.shape[0], -1), axis=1))
        shown = ", ".join(str(int(i)) for i in bad[:20]) + (", …" if bad.size > 20 else "")
        plural = "s" if bad.size > 1 else ""
        where = f" It differs at example{plural} {shown} (of {answer.shape[0]}, counting from 0)."
    message = f"Not within tolerance ({tol.describe()}).{where}"
    mistake = _diagnose(part, answer, ref, tol)
    if mistake is not None:
        message += " " + mistake["message"]
    check.update(message=message, mistake=mistake, graded_against="reference")
    return check


def _diagnose(part: str, answer: Array, ref: Reference, tol: Tolerance) -> dict[str, Any] | None:
    if part not in ref.stacked:
        return None
    codes, messages, stacked = ref.stacked[part]
    close = tol.close(answer[None], stacked).reshape(len(codes), -1)
    hits = [(code, msg) for code, msg, ok in zip(codes, messages, np.all(close, axis=1), strict=True) if ok]
    if not hits:
        return None
    hits.sort(key=lambda hit: _PRIORITY.get(hit[0], len(_PRIORITY)))
    code, message = hits[0]
    out: dict[str, Any] = {"code": code, "title": TITLES[code], "message": message}
    others = list(dict.fromkeys(c for c, _ in hits[1:] if c != code))
    if others:
        out["also_matches"] = others
    return out


def _feedback(checks: list[dict[str, Any]]) -> str:
    graded = [c for c in checks if c.get("graded", True)]
    right = [c for c in graded if c["correct"]]
    if not graded:
        return "No part could be graded."
    if len(right) == len(graded):
        return f"All {len(graded)} parts are correct." if len(graded) > 1 else "Correct."
    lines = [f"{len(right)} of {len(graded)} parts are correct." if len(graded) > 1 else "Not correct."]
    for c in graded:
        if not c["correct"]:
            detail = c["mistake"]["message"] if c.get("mistake") else c["message"]
            lines.append(f"{c['name']}: {detail}")
    return "\n".join(lines)


def _jsonable(a: Array) -> Any:
    return float(a) if a.ndim == 0 else a.tolist()

"""The catalogue of mistakes (docs/design/math.md), applied by hand to random problems, must be named by the grader.

Problems are random (seeded): every preset and five non-canonical single_layer pairings, each with
no regularization, l1 and l2 (λ > 0), m in 2..8, n in 1..4. The correct answer and every mistake's
variant come from tests/grading/oracle.py (plain numpy, docs/design/math.md's formulas and table), never from
the grader's reference.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from service.grading.compare import Tolerance
from service.grading.grade import GradeOptions, grade
from service.grading.mistakes import MISTAKES
from service.grading.reference import build_reference
from tests.grading import oracle
from tests.grading.oracle import close, jsonable

SEEDS = range(4)
CASES = oracle.all_cases(SEEDS)
MAIN_PARTS = ("loss", "gradients.w", "gradients.b")
RTOL, ATOL = 1e-5, 1e-8


def _case_id(c: tuple[str, str | None, int]) -> str:
    return f"{c[0]}-{c[1] or 'noreg'}-{c[2]}"


def _checks(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in result["checks"]}


def _assert_named(check: dict[str, Any], code: str, part: str, answer: Any, variants: dict[str, Any], correct: Any):
    """The check is wrong and names `code`, alone or among real ambiguities."""
    assert check["correct"] is False and check["points"] == 0.0, check
    mistake = check["mistake"]
    assert mistake is not None, f"{code} on {part} not diagnosed: {check['message']}"
    named = [mistake["code"], *mistake.get("also_matches", [])]
    assert code in named, (code, named)
    assert len(set(named)) == len(named)
    assert mistake["message"] and mistake["message"] in check["message"]
    # Every code named is a real match of this answer by the oracle's own computation, and every
    # real match (that differs from the correct value) is named.
    real = {
        c
        for c, v in variants.items()
        if part in v and close(answer, v[part], RTOL, ATOL) and not close(v[part], correct, RTOL, ATOL)
    }
    assert set(named) == real, (code, named, real)
    if len(named) > 1:
        assert "also_matches" in mistake


def run_case(label: str, reg: str | None, seed: int) -> set[str]:
    """Grade every applicable mistake of one problem; return the codes whose diagnosis was checked."""
    case = oracle.make_case(label, reg, seed)
    sol = oracle.solve(case)
    ref = build_reference(case.objective())
    opts = GradeOptions()
    correct = {p: sol.parts()[p] for p in MAIN_PARTS}
    right = grade(ref, {p: jsonable(v) for p, v in correct.items()}, opts)
    assert right["score"] == 1.0 and right["correct"] is True, right
    assert all(c["mistake"] is None for c in right["checks"])

    variants = oracle.mistake_variants(case, sol)
    exercised: set[str] = set()
    for code, variant in variants.items():
        changed = {p: v for p, v in variant.items() if p in MAIN_PARTS}
        answer = {p: jsonable(changed.get(p, correct[p])) for p in MAIN_PARTS}
        result = grade(ref, answer, opts)
        checks = _checks(result)
        n_right = 0
        for part in MAIN_PARTS:
            check = checks[part]
            if part not in changed or close(changed[part], correct[part], RTOL, ATOL):
                # never diagnosed: the variant is the correct value (within tolerance) for this problem
                assert check["correct"] is True and check["mistake"] is None, (code, part, check)
                n_right += 1
            else:
                _assert_named(check, code, part, changed[part], variants, correct[part])
                exercised.add(code)
        assert result["score"] == pytest.approx(n_right / 3)
        assert result["correct"] is (n_right == 3)
        if code in exercised:
            assert code in result["feedback"] or any(
                c["mistake"] and c["mistake"]["message"] in result["feedback"] for c in result["checks"]
            )
        # the per-example ∂L/∂z the mistake changes, graded on its own
        if "per_sample.dL_dz" in variant:
            r_wrong, r_right = variant["per_sample.dL_dz"], sol.r
            check = _checks(grade(ref, {"per_sample.dL_dz": jsonable(r_wrong)}, opts))["per_sample.dL_dz"]
            if close(r_wrong, r_right, RTOL, ATOL):
                assert check["correct"] is True
            else:
                _assert_named(check, code, "per_sample.dL_dz", r_wrong, variants, r_right)

    # a mistake that does not apply to this problem is never named (docs/design/math.md's "applies when")
    for code, variant in oracle.all_variants(case, sol).items():
        if code in variants:
            continue
        for part, value in variant.items():
            if close(value, sol.parts()[part], RTOL, ATOL):
                continue
            check = _checks(grade(ref, {part: jsonable(value)}, opts))[part]
            assert check["correct"] is False
            named = [check["mistake"]["code"], *check["mistake"].get("also_matches", [])] if check["mistake"] else []
            assert code not in named, (code, part, named)
    return exercised


@pytest.mark.parametrize("label,reg,seed", CASES, ids=[_case_id(c) for c in CASES])
def test_catalogued_mistakes_are_named(label: str, reg: str | None, seed: int) -> None:
    run_case(label, reg, seed)


def test_the_catalogue_is_math_md_s_table() -> None:
    assert tuple(m.code for m in MISTAKES) == oracle.MATH_MD_CODES


def test_every_catalogued_code_is_exercised() -> None:
    exercised: set[str] = set()
    for c in CASES:
        exercised |= run_case(*c)
    assert exercised == {m.code for m in MISTAKES}


def test_variant_equal_to_the_answer_key_is_never_diagnosed() -> None:
    """relu with every z > 0: ∂f/∂z = 1, so dropping it changes nothing; identity: nothing to drop."""
    case = oracle.make_case("relu+huber", None, 0)
    case.w = np.abs(case.w)
    case.X = np.abs(case.X) + 0.1
    case.b = np.asarray(abs(float(case.b)) + 0.1)
    sol = oracle.solve(case)
    assert np.all(sol.z > 0)
    variants = oracle.mistake_variants(case, sol)
    assert close(variants["missing_activation_derivative"]["gradients.w"], sol.gw)
    ref = build_reference(case.objective())
    answer = {"gradients.w": jsonable(sol.gw), "gradients.b": jsonable(sol.gb)}
    result = grade(ref, answer, GradeOptions())
    assert result["score"] == 1.0
    assert all(c["mistake"] is None for c in result["checks"])
    # a wrong answer is never explained by that (non-)mistake
    wrong = grade(ref, {"gradients.w": jsonable(sol.gw * 3 + 1)}, GradeOptions())["checks"][0]
    assert wrong["correct"] is False
    assert wrong["mistake"] is None or "missing_activation_derivative" not in [
        wrong["mistake"]["code"],
        *wrong["mistake"].get("also_matches", []),
    ]


# --- tolerance -----------------------------------------------------------------------------------

TOL_CASES = [("logistic_regression", "l2", 1), ("softmax_regression", None, 2), ("tanh+squared_error", "l1", 3)]


def _setup(label: str, reg: str | None, seed: int):
    case = oracle.make_case(label, reg, seed)
    sol = oracle.solve(case)
    return case, sol, build_reference(case.objective())


@pytest.mark.parametrize("label,reg,seed", TOL_CASES)
def test_every_right_part_scores_full(label: str, reg: str | None, seed: int) -> None:
    _case, sol, ref = _setup(label, reg, seed)
    answer = {p: jsonable(v) for p, v in sol.parts().items()}
    result = grade(ref, answer, GradeOptions())
    assert result["score"] == 1.0 and result["correct"] is True
    assert result["points"] == result["max_points"] == 8.0
    assert {c["name"] for c in result["checks"]} == set(answer)
    for c in result["checks"]:
        assert c["correct"] is True and c["points"] == c["max_points"] == 1.0
        assert c["graded_against"] == "reference" and c["mistake"] is None


@pytest.mark.parametrize("label,reg,seed", TOL_CASES)
@pytest.mark.parametrize("rtol,atol", [(1e-5, 1e-8), (1e-3, 1e-6), (1e-9, 1e-12)])
def test_inside_tolerance_passes_outside_fails(
    label: str, reg: str | None, seed: int, rtol: float, atol: float
) -> None:
    _case, sol, ref = _setup(label, reg, seed)
    opts = GradeOptions(tolerance=Tolerance(rtol=rtol, atol=atol))
    for part, e in sol.parts().items():
        e = np.asarray(e, dtype=np.float64)
        bound = atol + rtol * np.abs(e)
        sign = np.where(np.arange(e.size).reshape(e.shape) % 2 == 0, 1.0, -1.0)
        inside = e + sign * bound / 10  # every component moved by a tenth of its tolerance
        check = grade(ref, {part: jsonable(inside)}, opts)["checks"][0]
        assert check["correct"] is True, (part, check)
        outside = e.copy()
        flat = outside.reshape(-1)
        flat[-1] += 10 * bound.reshape(-1)[-1]  # one component ten tolerances off
        check = grade(ref, {part: jsonable(outside)}, opts)["checks"][0]
        assert check["correct"] is False and check["points"] == 0.0, (part, check)
        assert "Not within tolerance" in check["message"]
        if part.startswith("per_sample."):  # names the example that differs (the last one)
            assert f"example {e.shape[0] - 1} " in check["message"], check["message"]
        elif e.size > 1:
            assert f"1 of {e.size} components differ" in check["message"], check["message"]


@pytest.mark.parametrize("sig_figs", [2, 4, 6])
def test_significant_figures(sig_figs: int) -> None:
    _case, sol, ref = _setup("logistic_regression", "l2", 0)
    opts = GradeOptions(tolerance=Tolerance(sig_figs=sig_figs))
    for part in ("loss", "gradients.w", "gradients.b", "per_sample.f"):
        e = np.asarray(sol.parts()[part], dtype=np.float64)
        rounded = np.vectorize(lambda x: float(f"{x:.{sig_figs - 1}e}"))(e)
        check = grade(ref, {part: jsonable(rounded)}, opts)["checks"][0]
        assert check["correct"] is True, (part, rounded, e, check)
        assert f"{sig_figs} significant figures" not in check["message"]
        # one unit of the last significant figure: 0.4 of it passes, 0.6 fails
        unit = 10.0 ** (np.floor(np.log10(np.abs(e))) - sig_figs + 1)
        assert grade(ref, {part: jsonable(e + 0.4 * unit)}, opts)["checks"][0]["correct"] is True
        wrong = grade(ref, {part: jsonable(e + 0.6 * unit)}, opts)["checks"][0]
        assert wrong["correct"] is False
        assert f"{sig_figs} significant figures" in wrong["message"]


def test_four_significant_figures_of_the_worked_example() -> None:
    from service.compute.model_names import ModelName
    from service.compute.models import build_objective
    from service.compute.pairings import make_pairing

    X = [[0.5, 1.5], [1, 1], [1.5, 0.5], [3, 0.5], [2, 2], [1, 2.5]]
    p = build_objective(
        ModelName.LOGISTIC_REGRESSION,
        make_pairing("sigmoid", "binary_cross_entropy"),
        X,
        [0, 0, 0, 1, 1, 1],
        [1, 1],
        -3,
    )
    ref = build_reference(p)
    opts = GradeOptions(tolerance=Tolerance(sig_figs=4))
    # J = 0.3668667864055175 (docs/design/math.md)
    assert grade(ref, {"loss": 0.3669}, opts)["score"] == 1.0
    assert grade(ref, {"loss": 0.36687}, opts)["score"] == 1.0
    assert grade(ref, {"loss": 0.3668}, opts)["score"] == 0.0
    assert grade(ref, {"loss": 0.36685}, opts)["score"] == 1.0  # |Δ| = 1.7e-5 < 5e-5
    assert grade(ref, {"loss": 0.367}, opts)["score"] == 0.0  # three figures: |Δ| = 1.3e-4
    assert grade(ref, {"loss": 0.3667}, opts)["score"] == 0.0
    assert grade(ref, {"loss": 0.3669}, GradeOptions())["score"] == 0.0  # default rtol 1e-5 is stricter


# --- values that never pass ------------------------------------------------------------------------

BAD_VALUES: list[tuple[str, Any, str | tuple[str, ...]]] = [
    ("nan", math.nan, "NaN"),
    ("inf", math.inf, "infinite"),
    ("-inf", -math.inf, "infinite"),
    ("string NaN", "NaN", "NaN"),
    ("string Infinity", "Infinity", "infinite"),
    ("string -Infinity", "-Infinity", "infinite"),
    ("numeric string", "0.5", "not a number"),
    ("word", "forty-two", "not a number"),
    ("null", None, ("null", "not a number")),
    ("true", True, "not a number"),
    ("object", {"value": 1.0}, "not a number"),
]


@pytest.mark.parametrize("part", ["loss", "gradients.w", "gradients.b", "per_sample.f"])
@pytest.mark.parametrize("what,value,words", BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_non_numbers_never_pass(part: str, what: str, value: Any, words: str | tuple[str, ...]) -> None:
    _case, sol, ref = _setup("logistic_regression", "l2", 0)
    e = np.asarray(sol.parts()[part])
    # the bad value alone (for a scalar part) or in one component of a right answer
    given: Any = value if e.ndim == 0 else [*e.tolist()[:-1], value]
    result = grade(ref, {part: given}, GradeOptions())
    check = result["checks"][0]
    assert check["correct"] is False and check["points"] == 0.0 and result["score"] == 0.0
    assert check["mistake"] is None
    assert any(w in check["message"] for w in ((words,) if isinstance(words, str) else words)), check["message"]
    assert check["message"].startswith("Wrong: ")
    assert part in result["feedback"]


def test_non_finite_message_says_where() -> None:
    _case, sol, ref = _setup("logistic_regression", None, 0)
    w = sol.gw.tolist()
    w[-1] = math.nan
    msg = grade(ref, {"gradients.w": w}, GradeOptions())["checks"][0]["message"]
    assert "NaN" in msg and f"at {len(w) - 1}" in msg
    f = sol.f.tolist()
    f[0], f[1] = math.inf, -math.inf
    msg = grade(ref, {"per_sample.f": f}, GradeOptions())["checks"][0]["message"]
    assert "infinite" in msg and "[0, 1]" in msg


def test_wrong_shapes_never_pass() -> None:
    case, sol, ref = _setup("softmax_regression", "l2", 1)
    n, k = case.w.shape
    gw = sol.gw
    shapes: dict[str, tuple[str, Any]] = {
        "scalar for a matrix": ("gradients.w", float(gw[0, 0])),
        "flattened matrix": ("gradients.w", gw.reshape(-1).tolist()),
        "transposed matrix": ("gradients.w", gw.T.tolist()),
        "ragged rows": ("gradients.w", [gw[0].tolist(), gw[0, :-1].tolist()]),
        "too deep": ("gradients.w", [[[x, x] for x in row] for row in gw.tolist()]),
        "b one short": ("gradients.b", sol.gb[:-1].tolist()),
        "b as a number": ("gradients.b", float(sol.gb[0])),
        "loss as a list of two": ("loss", [float(sol.J), float(sol.J)]),
        "loss as empty list": ("loss", []),
        "f without a row": ("per_sample.f", sol.f[:-1].tolist()),
    }
    if n == k:  # the transposed matrix would have the right shape
        del shapes["transposed matrix"]
    for what, (part, value) in shapes.items():
        result = grade(ref, {part: value}, GradeOptions())
        check = result["checks"][0]
        assert check["correct"] is False and check["points"] == 0.0, what
        assert "expected" in check["message"], (what, check["message"])
        assert check["mistake"] is None


def test_wrong_length_w_message_names_both_shapes() -> None:
    case, sol, ref = _setup("linear_regression", None, 0)
    n = case.w.shape[0]
    check = grade(ref, {"gradients.w": [*sol.gw.tolist(), 0.0]}, GradeOptions())["checks"][0]
    assert check["correct"] is False
    assert f"a list of {n + 1} numbers" in check["message"] and f"expected a list of {n} numbers" in check["message"]


def test_huge_integer_is_graded_wrong_not_raised() -> None:
    """A learner's JSON may hold an integer too large for float64 (JSON parsers read it as an int)."""
    case, _sol, ref = _setup("linear_regression", None, 0)
    for value in (10**400, [10**400] * case.w.shape[0]):
        part = "loss" if isinstance(value, int) else "gradients.w"
        check = grade(ref, {part: value}, GradeOptions())["checks"][0]
        assert check["correct"] is False and check["points"] == 0.0
        assert "finite" in check["message"], check["message"]


# --- a result's fields agree with one another --------------------------------------------------


def test_ungradable_part_does_not_contradict_score() -> None:
    from service.compute.model_names import ModelName
    from service.compute.models import build_objective
    from service.compute.pairings import make_pairing

    p = build_objective(
        ModelName.LOGISTIC_REGRESSION, make_pairing("sigmoid", "binary_cross_entropy"), [[1.0], [1.0]], [0, 1], [800], 0
    )
    ref = build_reference(p)
    # J = mean(softplus(800) − 0, softplus(800) − 800) = (800 + 0)/2, to within e^−800
    result = grade(ref, {"loss": 400.0, "per_sample.dL_df": [1.0, 2.0]}, GradeOptions())
    checks = _checks(result)
    assert checks["per_sample.dL_df"].get("graded") is False and checks["per_sample.dL_df"]["max_points"] == 0.0
    assert checks["loss"]["correct"] is True
    assert result["score"] == 1.0
    assert result["correct"] is (result["score"] == 1.0)


def test_result_fields_agree() -> None:
    case = oracle.make_case("tanh+squared_error", "l2", 7)
    sol = oracle.solve(case)
    ref = build_reference(case.objective())
    answer = {p: jsonable(v) for p, v in sol.parts().items()}
    answer["gradients.b"] = jsonable(2 * sol.gb + 1)
    answer["per_sample.f"] = "NaN"
    result = grade(ref, answer, GradeOptions())
    assert result["points"] == sum(c["points"] for c in result["checks"]) == 6.0
    assert result["max_points"] == sum(c["max_points"] for c in result["checks"]) == 8.0
    assert result["score"] == result["points"] / result["max_points"]
    assert result["correct"] is False
    assert result["feedback"].startswith("6 of 8 parts are correct.")
    assert "gradients.b" in result["feedback"] and "per_sample.f" in result["feedback"]
    from service import __version__
    from service.grading import GRADING_RULES_VERSION

    assert result["version"] == {"service": __version__, "grading_rules": GRADING_RULES_VERSION}

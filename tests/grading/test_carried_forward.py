"""Error carried forward: a learner's later parts are graded against their own earlier values.

The learner's chain after a slip is recomputed here with MATH.md's plain formulas (oracle.py), the
way a learner writes them (∂f/∂z in terms of f where MATH.md's table does: f(1−f), 1−f², e^z = f,
f_k(δ_kl − f_l)).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from service.grading.grade import GradeOptions, grade
from service.grading.reference import build_reference
from tests.grading import oracle
from tests.grading.oracle import Case, close, jsonable

ALL_PARTS = (
    "per_sample.z",
    "per_sample.f",
    "per_sample.dL_df",
    "per_sample.df_dz",
    "per_sample.dL_dz",
    "loss",
    "gradients.w",
    "gradients.b",
)
LATER = ALL_PARTS[1:]


def _checks(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in result["checks"]}


def _df_dz_in_f(case: Case, z: np.ndarray, f: np.ndarray) -> np.ndarray:
    """∂f/∂z as MATH.md's table writes it: in terms of f where it can be."""
    a = case.activation
    if a == "sigmoid":
        return f * (1 - f)
    if a == "tanh":
        return 1 - f**2
    if a == "exp":
        return f.copy()
    if a == "softmax":
        eye = np.eye(f.shape[1])
        return f[:, :, None] * (eye[None, :, :] - f[:, None, :])
    if a == "identity":
        return np.ones_like(z)
    if a == "relu":
        return (z > 0).astype(np.float64)
    if a == "softplus":
        return 1 / (1 + np.exp(-z))
    raise ValueError(a)


def learner_chain(case: Case, z: np.ndarray, f: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every part as a learner computes it from their own z (and f, if they slipped there)."""
    y = oracle.one_hot(case)
    if f is None:
        f = oracle.forward_from(case, z).f
    L, dL_df = oracle._loss(case.loss, f, y, case.loss_params)
    df_dz = _df_dz_in_f(case, z, f)
    r = oracle.chain_rule(case, z, f, dL_df, df_dz, y)
    R, dR = oracle.regularization(case, case.w)
    return {
        "per_sample.z": z,
        "per_sample.f": f,
        "per_sample.dL_df": dL_df,
        "per_sample.df_dz": df_dz,
        "per_sample.dL_dz": r,
        "loss": np.asarray(float(np.mean(L)) + R),
        "gradients.w": case.X.T @ r / case.m + dR,
        "gradients.b": np.asarray(np.mean(r, axis=0)),
    }


def _answer(parts: dict[str, np.ndarray], names: tuple[str, ...] = ALL_PARTS) -> dict[str, Any]:
    return {p: jsonable(parts[p]) for p in names}


SLIP_Z = [
    ("logistic_regression", "l2", 0),
    ("softmax_regression", None, 1),
    ("poisson_regression", "l1", 2),
    ("linear_regression", "l2", 3),
    ("sigmoid+squared_error", None, 0),
    ("tanh+squared_error", "l1", 1),
    ("relu+huber", "l2", 2),
    ("softplus+poisson", None, 3),
    ("identity+absolute_error", "l1", 0),
]


def _slip_z(case: Case) -> tuple[np.ndarray, int]:
    """z with one example wrong: a sign slip in its b (z_i − 2b), or + 0.9 if b is small."""
    z = case.X @ case.w + case.b
    i = case.m // 2
    z_own = z.copy()
    if case.vector:  # one class's score (a shift of the whole row would not change f)
        z_own[i, 0] += 0.9
    else:
        z_own[i] += -2 * case.b if abs(float(case.b)) > 0.2 else 0.9
    if case.activation == "relu":  # make sure the slip reaches f: the slipped example is active
        z_own[i] = abs(z[i]) + 0.5
    return z_own, i


@pytest.mark.parametrize("label,reg,seed", SLIP_Z)
def test_a_slip_in_z_is_carried_forward(label: str, reg: str | None, seed: int) -> None:
    case = oracle.make_case(label, reg, seed)
    ref = build_reference(case.problem())
    right = oracle.solve(case).parts()
    z_own, i = _slip_z(case)
    own = learner_chain(case, z_own)
    result = grade(ref, _answer(own), GradeOptions())
    checks = _checks(result)

    z_check = checks["per_sample.z"]
    assert z_check["correct"] is False and z_check["points"] == 0.0
    assert z_check["graded_against"] == "reference" and "carried_from" not in z_check
    assert f"example {i} " in z_check["message"]
    n_right = 0
    for part in LATER:
        check = checks[part]
        assert check["correct"] is True and check["points"] == 1.0, (part, check)
        assert check["mistake"] is None
        if close(own[part], right[part]):  # the slip does not reach this part
            assert check["graded_against"] == "reference", (part, check)
        else:
            assert check["graded_against"] == "own_values", (part, check)
            assert check["carried_from"] == ["per_sample.z"], (part, check)
            assert "carried forward" in check["message"]
        n_right += 1
    assert result["points"] == n_right == 7 and result["max_points"] == 8
    assert result["score"] == pytest.approx(7 / 8)
    assert result["correct"] is False


@pytest.mark.parametrize("label,reg,seed", SLIP_Z)
def test_later_parts_carried_from_z_alone(label: str, reg: str | None, seed: int) -> None:
    """Only z and the final parts given: the grader follows the learner's z through the chain itself."""
    case = oracle.make_case(label, reg, seed)
    ref = build_reference(case.problem())
    z_own, _ = _slip_z(case)
    own = learner_chain(case, z_own)
    result = grade(ref, _answer(own, ("per_sample.z", "loss", "gradients.w", "gradients.b")), GradeOptions())
    checks = _checks(result)
    assert checks["per_sample.z"]["correct"] is False
    for part in ("loss", "gradients.w", "gradients.b"):
        assert checks[part]["correct"] is True, (part, checks[part])
        assert checks[part]["graded_against"] == "own_values"
        assert checks[part]["carried_from"] == ["per_sample.z"]


SLIP_F = [
    ("logistic_regression", "l2", 0),
    ("sigmoid+squared_error", "l1", 1),
    ("tanh+squared_error", None, 2),
    ("poisson_regression", "l2", 3),
    ("linear_regression", None, 1),
]


def _slip_f(case: Case, f: np.ndarray) -> tuple[np.ndarray, int]:
    """f with one example wrong, staying in the activation's range (so every later part is finite)."""
    i = case.m - 1
    f_own = f.copy()
    if case.activation == "sigmoid":
        f_own[i] = 1 - f[i]  # σ(−z) for σ(z)
    elif case.activation == "tanh":
        f_own[i] = -f[i] if abs(f[i]) > 0.05 else f[i] + 0.3
    else:
        f_own[i] = 2 * f[i] + 0.5 if case.activation == "identity" else 2 * f[i]
    return f_own, i


@pytest.mark.parametrize("label,reg,seed", SLIP_F)
def test_a_slip_in_f_is_carried_forward(label: str, reg: str | None, seed: int) -> None:
    case = oracle.make_case(label, reg, seed)
    ref = build_reference(case.problem())
    right = oracle.solve(case)
    f_own, _i = _slip_f(case, right.f)
    own = learner_chain(case, right.z, f_own)
    result = grade(ref, _answer(own), GradeOptions())
    checks = _checks(result)
    assert checks["per_sample.z"]["correct"] is True and checks["per_sample.z"]["graded_against"] == "reference"
    f_check = checks["per_sample.f"]
    assert f_check["correct"] is False and f_check["graded_against"] == "reference"
    for part in LATER[1:]:
        check = checks[part]
        assert check["correct"] is True, (part, check)
        if close(own[part], right.parts()[part]):
            assert check["graded_against"] == "reference", (part, check)
        else:
            assert check["graded_against"] == "own_values", (part, check)
            assert check["carried_from"] == ["per_sample.f"], (part, check)
    assert result["score"] == pytest.approx(7 / 8)


def test_a_softmax_slip_in_f_is_carried_forward() -> None:
    case = oracle.make_case("softmax_regression", None, 1)
    ref = build_reference(case.problem())
    right = oracle.solve(case)
    f_own = right.f.copy()
    i = case.m - 1
    f_own[i] = np.exp(right.z[i])  # forgot to normalise one example's row
    own = learner_chain(case, right.z, f_own)
    checks = _checks(grade(ref, _answer(own), GradeOptions()))
    assert checks["per_sample.f"]["correct"] is False
    for part in LATER[1:]:
        assert checks[part]["correct"] is True, (part, checks[part]["message"])
        assert checks[part]["graded_against"] == "own_values"
        assert checks[part]["carried_from"] == ["per_sample.f"]


def test_a_slip_in_dL_df_reaches_only_what_follows_from_it() -> None:
    """Non-canonical sigmoid + squared_error: a wrong ∂L/∂f changes ∂L/∂z and the gradients, not J."""
    case = oracle.make_case("sigmoid+squared_error", "l2", 2)
    ref = build_reference(case.problem())
    right = oracle.solve(case)
    own = learner_chain(case, right.z)
    own["per_sample.dL_df"] = own["per_sample.dL_df"].copy()
    own["per_sample.dL_df"][0] = -own["per_sample.dL_df"][0]  # y − f for one example
    r = own["per_sample.dL_df"] * own["per_sample.df_dz"]
    own["per_sample.dL_dz"] = r
    own["gradients.w"] = case.X.T @ r / case.m + right.dR
    own["gradients.b"] = np.asarray(np.mean(r))
    checks = _checks(grade(ref, _answer(own), GradeOptions()))
    assert checks["per_sample.dL_df"]["correct"] is False
    for part in ("per_sample.z", "per_sample.f", "per_sample.df_dz", "loss"):
        assert checks[part]["correct"] is True and checks[part]["graded_against"] == "reference", part
    for part in ("per_sample.dL_dz", "gradients.w", "gradients.b"):
        assert checks[part]["correct"] is True and checks[part]["graded_against"] == "own_values", part
        assert checks[part]["carried_from"] == ["per_sample.dL_df"], part


@pytest.mark.parametrize("label,reg,seed", SLIP_Z[:5])
def test_consistent_with_neither_is_wrong(label: str, reg: str | None, seed: int) -> None:
    case = oracle.make_case(label, reg, seed)
    ref = build_reference(case.problem())
    right = oracle.solve(case).parts()
    z_own, _ = _slip_z(case)
    own = learner_chain(case, z_own)
    answer = _answer(own)
    neither: dict[str, Any] = {}
    for part in ("loss", "gradients.w", "gradients.b"):
        v = (own[part] + right[part]) / 2 + 0.1  # between the two, and then off by 0.1
        assert not close(v, own[part]) and not close(v, right[part])
        neither[part] = v
    answer.update({p: jsonable(v) for p, v in neither.items()})
    result = grade(ref, answer, GradeOptions())
    checks = _checks(result)
    for part in neither:
        check = checks[part]
        assert check["correct"] is False and check["points"] == 0.0, (part, check)
        assert check["graded_against"] == "reference" and "carried_from" not in check
    assert checks["per_sample.z"]["correct"] is False
    assert result["points"] == 4.0 and result["score"] == pytest.approx(4 / 8)


@pytest.mark.parametrize("label", list(oracle.PAIRINGS))
def test_all_intermediates_right_are_graded_against_the_reference(label: str) -> None:
    case = oracle.make_case(label, "l2", 5)
    ref = build_reference(case.problem())
    result = grade(ref, _answer(oracle.solve(case).parts()), GradeOptions())
    assert result["score"] == 1.0 and result["correct"] is True
    for check in result["checks"]:
        assert check["correct"] is True and check["graded_against"] == "reference", check
        assert "carried_from" not in check


def test_a_slip_within_tolerance_is_no_slip() -> None:
    case = oracle.make_case("logistic_regression", None, 0)
    ref = build_reference(case.problem())
    right = oracle.solve(case)
    z = right.z * (1 + 1e-7)
    result = grade(ref, _answer(learner_chain(case, z)), GradeOptions())
    assert result["score"] == 1.0
    assert all(c["graded_against"] == "reference" for c in result["checks"])


def test_gradient_of_the_reference_is_right_even_after_a_slip() -> None:
    """A learner who slipped in z but got the gradients right (e.g. recomputed them) is right."""
    case = oracle.make_case("logistic_regression", "l1", 1)
    ref = build_reference(case.problem())
    right = oracle.solve(case).parts()
    z_own, _ = _slip_z(case)
    answer = _answer(learner_chain(case, z_own))
    answer["gradients.w"] = jsonable(right["gradients.w"])
    checks = _checks(grade(ref, answer, GradeOptions()))
    assert checks["gradients.w"]["correct"] is True and checks["gradients.w"]["graded_against"] == "reference"


# --- points ----------------------------------------------------------------------------------------


def test_points_per_part_add_up() -> None:
    case = oracle.make_case("logistic_regression", "l2", 0)
    ref = build_reference(case.problem())
    right = oracle.solve(case)
    z_own, _ = _slip_z(case)
    own = learner_chain(case, z_own)
    points = {
        "per_sample.z": 1.5,
        "per_sample.f": 0.5,
        "per_sample.dL_df": 0.0,
        "per_sample.df_dz": 0.25,
        "per_sample.dL_dz": 1.0,
        "loss": 2.0,
        "gradients.w": 3.0,
        "gradients.b": 0.75,
    }
    answer = _answer(own)
    answer["gradients.b"] = jsonable(np.sum(right.r) + 5)  # wrong by any account
    result = grade(ref, answer, GradeOptions(points=points))
    checks = _checks(result)
    for part, p in points.items():
        assert checks[part]["max_points"] == p
        assert checks[part]["points"] == (p if checks[part]["correct"] else 0.0)
    assert [p for p in points if not checks[p]["correct"]] == ["per_sample.z", "gradients.b"]
    expected_points = sum(points.values()) - 1.5 - 0.75
    assert result["points"] == pytest.approx(expected_points)
    assert result["max_points"] == pytest.approx(sum(points.values()))
    assert result["score"] == pytest.approx(expected_points / sum(points.values()))


def test_points_only_for_parts_given() -> None:
    case = oracle.make_case("linear_regression", None, 0)
    ref = build_reference(case.problem())
    right = oracle.solve(case)
    opts = GradeOptions(points={"gradients.w": 2, "loss": 5})
    result = grade(ref, {"gradients.w": jsonable(right.gw), "gradients.b": jsonable(right.gb + 1)}, opts)
    assert [c["name"] for c in result["checks"]] == ["gradients.w", "gradients.b"]
    assert result["points"] == 2.0 and result["max_points"] == 3.0
    assert result["score"] == pytest.approx(2 / 3)
    assert result["correct"] is False

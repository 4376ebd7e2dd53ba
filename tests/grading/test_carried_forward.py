"""Error carried forward: a learner's later parts are graded against their own earlier values,
for a share of their points, when those earlier values are a catalogued mistake (a real slip); a
made-up or uncatalogued wrong value earns nothing downstream (else zeros everywhere would score).

The learner's chain after a slip is recomputed here with docs/design/math.md's plain formulas (oracle.py), the
way a learner writes them (∂f/∂z in terms of f where docs/design/math.md's table does: f(1−f), 1−f², e^z = f,
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
    """∂f/∂z as docs/design/math.md's table writes it: in terms of f where it can be."""
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
def test_an_uncatalogued_slip_in_z_earns_nothing_downstream(label: str, reg: str | None, seed: int) -> None:
    """A wrong z that no catalogued mistake explains: what follows from it is graded against the key."""
    case = oracle.make_case(label, reg, seed)
    ref = build_reference(case.objective())
    right = oracle.solve(case).parts()
    z_own, i = _slip_z(case)
    own = learner_chain(case, z_own)
    result = grade(ref, _answer(own), GradeOptions())
    checks = _checks(result)
    z_check = checks["per_sample.z"]
    assert z_check["correct"] is False and z_check["points"] == 0.0 and z_check["mistake"] is None
    assert f"example {i} " in z_check["message"]
    reached = 0
    for part in LATER:
        check = checks[part]
        assert check["graded_against"] == "reference" and "carried_from" not in check, (part, check)
        if close(own[part], right[part]):  # the slip does not reach this part
            assert check["correct"] is True and check["points"] == 1.0, (part, check)
        else:
            assert check["correct"] is False and check["points"] == 0.0, (part, check)
            reached += 1
    assert reached >= 1
    assert result["points"] == 7 - reached and result["correct"] is False


# catalogued mistakes made at dL/dz, each (pairing, code, dL/dz as the learner writes it)
def _catalogued_dL_dz(case: Case, code: str, right: Any) -> np.ndarray:
    if code == "sign_flipped":
        return -right.r
    if code == "missing_activation_derivative":  # dL/df where dL/dz belongs
        y = oracle.one_hot(case)
        return oracle._loss(case.loss, right.f, y, case.loss_params)[1]
    raise ValueError(code)


CATALOGUED = [
    ("logistic_regression", "l2", 0, "sign_flipped"),
    ("softmax_regression", None, 1, "sign_flipped"),
    ("poisson_regression", "l1", 2, "sign_flipped"),
    ("linear_regression", "l2", 3, "sign_flipped"),
    ("sigmoid+squared_error", None, 0, "missing_activation_derivative"),
    ("tanh+squared_error", "l1", 1, "missing_activation_derivative"),
]


def _slipped_at_dL_dz(case: Case, code: str) -> dict[str, np.ndarray]:
    """The whole chain right up to dL/dz, which has the catalogued mistake; the gradients follow from it."""
    right = oracle.solve(case)
    own = dict(right.parts())
    r = _catalogued_dL_dz(case, code, right)
    own["per_sample.dL_dz"] = r
    own["gradients.w"] = case.X.T @ r / case.m + right.dR
    own["gradients.b"] = np.asarray(np.mean(r, axis=0))
    return own


@pytest.mark.parametrize("label,reg,seed,code", CATALOGUED)
def test_a_catalogued_slip_carries_forward_for_half_the_points(
    label: str, reg: str | None, seed: int, code: str
) -> None:
    case = oracle.make_case(label, reg, seed)
    ref = build_reference(case.objective())
    result = grade(ref, _answer(_slipped_at_dL_dz(case, code)), GradeOptions())
    checks = _checks(result)
    slip = checks["per_sample.dL_dz"]
    assert slip["correct"] is False and slip["points"] == 0.0 and slip["mistake"]["code"] == code
    for part in ("gradients.w", "gradients.b"):
        check = checks[part]
        assert check["graded_against"] == "own_values" and check["carried_from"] == ["per_sample.dL_dz"], check
        assert check["correct"] is False and check["points"] == 0.5 and check["max_points"] == 1.0
        assert "carried forward" in check["message"]
    for part in ("per_sample.z", "per_sample.f", "per_sample.dL_df", "per_sample.df_dz", "loss"):
        assert checks[part]["correct"] is True and checks[part]["graded_against"] == "reference", part
    assert result["points"] == pytest.approx(5 + 0.5 + 0.5) and result["correct"] is False


@pytest.mark.parametrize("credit", [0.0, 0.25, 1.0])
def test_the_share_is_the_graders(credit: float) -> None:
    case = oracle.make_case("logistic_regression", None, 0)
    ref = build_reference(case.objective())
    result = grade(ref, _answer(_slipped_at_dL_dz(case, "sign_flipped")), GradeOptions(carry_forward_credit=credit))
    checks = _checks(result)
    assert checks["gradients.w"]["points"] == checks["gradients.b"]["points"] == credit
    assert result["points"] == pytest.approx(5 + 2 * credit)


def test_no_carry_forward_when_the_grader_turns_it_off() -> None:
    case = oracle.make_case("logistic_regression", None, 0)
    ref = build_reference(case.objective())
    result = grade(ref, _answer(_slipped_at_dL_dz(case, "sign_flipped")), GradeOptions(carry_forward=False))
    checks = _checks(result)
    for part in ("gradients.w", "gradients.b"):
        assert checks[part]["graded_against"] == "reference" and checks[part]["points"] == 0.0
        assert checks[part]["mistake"]["code"] == "sign_flipped"


@pytest.mark.parametrize("label", list(oracle.PAIRINGS))
def test_zeros_for_dL_dz_and_the_gradients_score_nothing(label: str) -> None:
    """The exploit: a made-up dL/dz (zeros) and the gradients that follow from it (zeros). No
    catalogued mistake makes dL/dz zero, so nothing is carried forward, at any share."""
    case = oracle.make_case(label, "l2", 4)
    ref = build_reference(case.objective())
    right = oracle.solve(case).parts()
    answer = {
        "per_sample.dL_dz": jsonable(np.zeros_like(right["per_sample.dL_dz"])),
        "gradients.w": jsonable(oracle.regularization(case, case.w)[1] + 0 * right["gradients.w"]),
        "gradients.b": jsonable(np.zeros_like(right["gradients.b"])),
    }
    for credit in (0.5, 1.0):
        result = grade(ref, answer, GradeOptions(carry_forward_credit=credit))
        assert result["points"] == 0.0, [(c["name"], c["message"]) for c in result["checks"]]
        assert all(c["graded_against"] == "reference" for c in result["checks"])


def test_a_slip_within_tolerance_is_no_slip() -> None:
    case = oracle.make_case("logistic_regression", None, 0)
    ref = build_reference(case.objective())
    right = oracle.solve(case)
    z = right.z * (1 + 1e-7)
    result = grade(ref, _answer(learner_chain(case, z)), GradeOptions())
    assert result["score"] == 1.0
    assert all(c["graded_against"] == "reference" for c in result["checks"])


@pytest.mark.parametrize("label", list(oracle.PAIRINGS))
def test_all_intermediates_right_are_graded_against_the_reference(label: str) -> None:
    case = oracle.make_case(label, "l2", 5)
    ref = build_reference(case.objective())
    result = grade(ref, _answer(oracle.solve(case).parts()), GradeOptions())
    assert result["score"] == 1.0 and result["correct"] is True
    for check in result["checks"]:
        assert check["correct"] is True and check["graded_against"] == "reference", check
        assert "carried_from" not in check


def test_gradient_of_the_reference_is_right_even_after_a_slip() -> None:
    """A learner who slipped at dL/dz but got the gradients right (e.g. recomputed them) is right."""
    case = oracle.make_case("logistic_regression", "l1", 1)
    ref = build_reference(case.objective())
    right = oracle.solve(case).parts()
    answer = _answer(_slipped_at_dL_dz(case, "sign_flipped"))
    answer["gradients.w"] = jsonable(right["gradients.w"])
    checks = _checks(grade(ref, answer, GradeOptions()))
    assert checks["gradients.w"]["correct"] is True and checks["gradients.w"]["graded_against"] == "reference"
    assert checks["gradients.w"]["points"] == 1.0


# --- points ----------------------------------------------------------------------------------------


def test_points_per_part_add_up() -> None:
    case = oracle.make_case("logistic_regression", "l2", 0)
    ref = build_reference(case.objective())
    right = oracle.solve(case)
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
    answer = _answer(_slipped_at_dL_dz(case, "sign_flipped"))
    answer["gradients.b"] = jsonable(np.sum(right.r) + 5)  # wrong by any account
    result = grade(ref, answer, GradeOptions(points=points))
    checks = _checks(result)
    for part, p in points.items():
        assert checks[part]["max_points"] == p
    assert [p for p in points if not checks[p]["correct"]] == ["per_sample.dL_dz", "gradients.w", "gradients.b"]
    assert checks["gradients.w"]["points"] == 1.5 and checks["gradients.b"]["points"] == 0.0
    expected_points = 1.5 + 0.5 + 0.0 + 0.25 + 2.0 + 1.5
    assert result["points"] == pytest.approx(expected_points)
    assert result["max_points"] == pytest.approx(sum(points.values()))
    assert result["score"] == pytest.approx(expected_points / sum(points.values()))


def test_points_only_for_parts_given() -> None:
    case = oracle.make_case("linear_regression", None, 0)
    ref = build_reference(case.objective())
    right = oracle.solve(case)
    opts = GradeOptions(points={"gradients.w": 2, "loss": 5})
    result = grade(ref, {"gradients.w": jsonable(right.gw), "gradients.b": jsonable(right.gb + 1)}, opts)
    assert [c["name"] for c in result["checks"]] == ["gradients.w", "gradients.b"]
    assert result["points"] == 2.0 and result["max_points"] == 3.0
    assert result["score"] == pytest.approx(2 / 3)
    assert result["correct"] is False

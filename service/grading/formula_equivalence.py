"""Is a learner's formula the question's quantity? Numeric evaluation at random points of each
quantity's domain, then (when an algebra engine is given) symbolic confirmation.

The points: for each of a few data sets of m examples and n features (m and n vary between them),
w_j, x_j^(i), b drawn at random, z^(i) = Σ_j w_j x_j^(i) + b, f^(i) = g(z^(i)) through the question's
activation, y^(i) in the loss's target domain, λ > 0. A formula is evaluated after it is grounded:
each Σ over i (or j) becomes the sum of its terms, one per example (feature) its bounds count from
the first, so that `\\frac{1}{m}\\sum_{i=1}^{m}` and `\\sum_{i=0}^{m-1}` both run over the m examples,
and `\\sum_{i=1}^{m-1}` leaves one out; a per-example name inside a sum over i stands for example i
(with or without its ^{(i)}), outside any sum for the one example of a per-example quantity; a
Leibniz name stands for its true formula. The values are compared with relative tolerance 1e-8.

Verdicts: `True` (every point agrees: confirmed symbolically when an engine is given and can),
`False` with a counterexample point (two finite values disagree), `None` when it cannot be decided
(too few points where the true value is finite, a formula that cannot be evaluated or grounded).
The points are seeded by the question, so a regrade gives the same verdict.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from service.formulas import Expr, to_text
from service.formulas.numeric import evaluate
from service.formulas.tree import Add, Call, Derivative, Number, Sum, Symbol, children, walk
from service.grading.formula_targets import Question, read, replace

RTOL = 1e-8
ATOL = 1e-12
MIN_POINTS = 20
POINTS_PER_SET = 8
# (m, n, the feature j stands for) of each data set
DATA_SETS: tuple[tuple[int, int, int], ...] = ((3, 2, 0), (4, 3, 1), (5, 2, 1), (2, 3, 2), (3, 1, 0))
MAX_GROUNDED_NODES = 20_000

# an algebra engine's verdict on (answer, truth, question): True (proved equal), None (cannot tell)
Confirm = Callable[[Expr, Expr, Question], bool | None]


class Ungroundable(ValueError):
    """A formula that cannot be evaluated here: `reason` says why, for the learner."""


@dataclass
class Verdict:
    equivalent: bool | None
    points: int  # the points where the true value is finite (compared)
    counterexample: dict[str, Any] | None = None
    method: str = "numeric"  # "numeric", "numeric+symbolic"
    reason: str | None = None  # why None
    values: list[Any] | None = field(default=None, repr=False)  # the formula's values at the points


@dataclass
class _Set:
    m: int
    n: int
    j: int
    values: dict[str, Any] = field(default_factory=dict)


def _key(name: str, feature: int | None, example: int | None) -> str:
    out = name
    if feature is not None:
        out += f"_{feature}"
    if example is not None:
        out += f"^({example})"
    return out


def _draw(question: Question, seed: int) -> list[_Set]:
    rng = np.random.default_rng(seed)
    pairing = question.pairing
    sets: list[_Set] = []
    P = POINTS_PER_SET
    for m, n, j in DATA_SETS:
        s = _Set(m, n, j)
        w = rng.normal(0.0, 0.8, (P, n))
        x = rng.normal(0.0, 1.0, (P, m, n))
        b = rng.normal(0.0, 0.8, P)
        z = np.einsum("pin,pn->pi", x, w) + b[:, None]
        if pairing is None:  # no model: z, f and y are names of their own; z > 0 in every other set (log z)
            if len(sets) % 2 == 0:
                z = rng.uniform(0.05, 3.0, (P, m))
            f = rng.uniform(0.05, 0.95, (P, m))
            y = rng.uniform(0.0, 1.0, (P, m))
        else:
            with np.errstate(all="ignore"):
                f = evaluate(read(pairing.g), {"z": z})
            domain = pairing.y_domain
            if domain == "unit":
                y = rng.uniform(0.0, 1.0, (P, m))
            elif domain == "nonnegative":
                y = rng.uniform(0.0, 4.0, (P, m))
            else:
                y = rng.normal(0.0, 1.5, (P, m))
        v = s.values
        for k in range(n):
            v[_key("w", k, None)] = w[:, k]
            for i in range(m):
                v[_key("x", k, i)] = x[:, i, k]
        for i in range(m):
            v[_key("z", None, i)] = z[:, i]
            v[_key("f", None, i)] = f[:, i]
            v[_key("y", None, i)] = y[:, i]
        v["b"] = b
        v["lambda"] = rng.uniform(0.1, 2.0, P)
        v["delta"] = rng.uniform(0.5, 2.0, P)
        v["m"] = np.full(P, float(m))
        v["n"] = np.full(P, float(n))
        sets.append(s)
    return sets


def _integer(node: Expr, s: _Set) -> int:
    """A sum's bound: a formula in numbers, m and n only, an integer."""
    for sub in walk(node):
        if isinstance(sub, Sum | Derivative | Call) or (isinstance(sub, Symbol) and sub.name not in {"m", "n"}):
            raise Ungroundable(f"a sum's bounds are numbers, m or n, not {to_text(node)}")
    value = evaluate(node, {"m": float(s.m), "n": float(s.n)})
    if not np.isfinite(value) or value != round(float(value)):
        raise Ungroundable(f"a sum's bound {to_text(node)} is not a whole number")
    return round(float(value))


class _Grounder:
    """A formula as a plain tree over one data set's concrete names (sums expanded, Leibniz names replaced)."""

    def __init__(self, question: Question, s: _Set) -> None:
        self.question = question
        self.s = s
        self.nodes = 0

    def ground(self, node: Expr, example: int | None, feature: int, depth: int = 0) -> Expr:
        if depth > 8:
            raise Ungroundable("the formula's Leibniz names refer to each other too deeply")

        def swap(sub: Expr) -> Expr | None:
            self.nodes += 1
            if self.nodes > MAX_GROUNDED_NODES:
                raise Ungroundable("the formula's sums expand to too many terms to evaluate")
            if isinstance(sub, Symbol):
                return self.symbol(sub, example, feature)
            if isinstance(sub, Derivative):
                name = to_text(sub)
                truth = self.question.leibniz.get(name)
                if truth is None:
                    known = ", ".join(self.question.leibniz) or "none (this question has no model)"
                    raise Ungroundable(f"{name} has no meaning in this question; the Leibniz names it knows: {known}")
                return self.ground(truth, example, feature, depth + 1)
            if isinstance(sub, Sum):
                return self.sum(sub, example, feature, depth)
            return None

        return replace(node, swap)

    def symbol(self, sym: Symbol, example: int | None, feature: int) -> Expr:
        name = sym.name
        if name in {"x", "w"}:
            if sym.index not in {None, "j"}:
                raise Ungroundable(f"{to_text(sym)}: the feature index is j")
            idx: int | None = feature
        else:
            idx = None
        if name in {"x", "y", "f", "z"}:
            if sym.example not in {None, "i"}:
                raise Ungroundable(f"{to_text(sym)}: the example index is i")
            ex: int | None = 0 if example is None else example
        else:
            ex = None
        return Symbol(_key(name, idx, ex))

    def sum(self, node: Sum, example: int | None, feature: int, depth: int) -> Expr:
        lo, hi = _integer(node.lower, self.s), _integer(node.upper, self.s)
        count = hi - lo + 1
        size = self.s.m if node.index == "i" else self.s.n
        if count > size:
            what = "examples" if node.index == "i" else "features"
            raise _OutOfRange(f"the sum over {node.index} has {count} terms, but there are {size} {what}")
        if count <= 0:
            return Number(Fraction(0))
        terms = [
            self.ground(node.body, k if node.index == "i" else example, k if node.index == "j" else feature, depth)
            for k in range(count)
        ]
        return terms[0] if len(terms) == 1 else Add(tuple(terms))


class _OutOfRange(Ungroundable):
    """A sum with more terms than the data: the formula is not the quantity (it needs more examples)."""


def _expanded_size(question: Question, node: Expr, terms: int, depth: int = 0) -> int:
    """About how many nodes grounding makes of `node` when each sum has `terms` terms (its bounds unread)."""
    if depth > 64 + 8:
        return MAX_GROUNDED_NODES + 1
    if isinstance(node, Sum):
        return 1 + terms * _expanded_size(question, node.body, terms, depth + 1)
    if isinstance(node, Derivative):
        truth = question.leibniz.get(to_text(node))
        return 1 if truth is None else _expanded_size(question, truth, terms, depth + 1)
    if isinstance(node, Call) and node.function in {"max", "min"}:
        raise Ungroundable(f"{node.function}() is not evaluated when formulas are compared")
    total = 1
    for child in children(node):
        total += _expanded_size(question, child, terms, depth + 1)
        if total > MAX_GROUNDED_NODES:
            break
    return total


def _values(question: Question, expr: Expr, s: _Set) -> Any:
    if _expanded_size(question, expr, max(s.m, s.n)) > MAX_GROUNDED_NODES:
        raise Ungroundable("the formula's sums expand to too many terms to evaluate")
    grounded = _Grounder(question, s).ground(expr, None, s.j)
    with np.errstate(all="ignore"):
        out = evaluate(grounded, s.values)
    return np.broadcast_to(np.asarray(out, dtype=float), (POINTS_PER_SET,))


def seed_of(question: Question) -> int:
    return zlib.crc32(repr((question.pairing, question.regularization, question.target, question.truth)).encode())


class Points:
    """The question's points and its true values there, computed once for many answers."""

    def __init__(self, question: Question) -> None:
        self.question = question
        self.sets = _draw(question, seed_of(question))
        self.truth = [_values(question, question.truth, s) for s in self.sets]

    def values(self, expr: Expr) -> list[Any]:
        return [_values(self.question, expr, s) for s in self.sets]

    def point(self, k: int, p: int) -> dict[str, float]:
        """The named values at point p of data set k (per-example names for example 1)."""
        s = self.sets[k]
        v = s.values
        out = {
            "z": v[_key("z", None, 0)][p],
            "f": v[_key("f", None, 0)][p],
            "y": v[_key("y", None, 0)][p],
            "x_j": v[_key("x", s.j, 0)][p],
            "w_j": v[_key("w", s.j, None)][p],
            "b": v["b"][p],
            "lambda": v["lambda"][p],
            "m": float(s.m),
            "n": float(s.n),
        }
        return {name: float(value) for name, value in out.items()}


def compare(points: Points, expr: Expr, confirm: Confirm | None = None) -> Verdict:
    """The verdict on `expr` against the question's truth at its points (see the module's docstring)."""
    try:
        answers = points.values(expr)
    except _OutOfRange as exc:
        return Verdict(False, 0, {"reason": str(exc)})
    except (Ungroundable, ValueError, OverflowError, ZeroDivisionError) as exc:
        return Verdict(None, 0, reason=str(exc))
    compared = 0
    for k, (a, t) in enumerate(zip(answers, points.truth, strict=True)):
        finite = np.isfinite(t)
        compared += int(np.count_nonzero(finite))
        with np.errstate(all="ignore"):
            close = np.abs(a - t) <= ATOL + RTOL * np.maximum(np.abs(a), np.abs(t))
        bad = finite & ~(np.isfinite(a) & close)
        if np.any(bad):
            p = int(np.flatnonzero(bad)[0])
            answer = float(a[p])
            return Verdict(
                False,
                compared,
                {
                    "point": points.point(k, p),
                    "answer": answer if np.isfinite(answer) else None,
                    "expected": float(t[p]),
                },
                values=answers,
            )
    if compared < MIN_POINTS:
        return Verdict(None, compared, reason=f"the true value is finite at only {compared} of the points drawn")
    if confirm is None:
        return Verdict(True, compared, values=answers)
    proved = confirm(expr, points.question.truth, points.question)
    return Verdict(True, compared, method="numeric+symbolic" if proved else "numeric", values=answers)


def values_or_none(points: Points, expr: Expr) -> list[Any] | None:
    """The formula's values at the points, or None where it cannot be evaluated."""
    try:
        return points.values(expr)
    except (Ungroundable, ValueError, OverflowError, ZeroDivisionError):
        return None


def agree(points: Points, va: list[Any] | None, vb: list[Any] | None) -> bool:
    """Are two formulas' values equal at every point where both and the truth are finite (and one is)?"""
    if va is None or vb is None:
        return False
    for x, y, t in zip(va, vb, points.truth, strict=True):
        finite = np.isfinite(t) & np.isfinite(x) & np.isfinite(y)
        with np.errstate(all="ignore"):
            close = np.abs(x - y) <= ATOL + RTOL * np.maximum(np.abs(x), np.abs(y))
        if not np.all(close[finite]) or not np.any(finite):
            return False
    return True


def equivalent(points: Points, a: Expr, b: Expr) -> bool:
    """Are two formulas equal at every point (both finite where the truth is)? For comparing variants."""
    return agree(points, values_or_none(points, a), values_or_none(points, b))

"""Custom activations and losses: `{"formula": "..."}` wherever a catalogue name is taken.

An activation is a formula in z, a loss a formula in f and y (with an optional targets domain). Each is
read by service.formulas (bounded by its limits, never eval), derived by its tracer (the steps are the
breakdown's derivation), and evaluated on numpy arrays by service.formulas.numeric, a walk of the tree:
as written, without the catalogue's stable kernels (log(1 + e^z) overflows where softplus does not).
They conform to the catalogue's Activation and Loss interfaces, so every pairing kernel, the breakdown,
verification, grading and descent take them unchanged; results are checked finite downstream
(NonFiniteResult, as for the catalogue).

A pairing is canonical when dL/df · df/dz − (f − y) simplifies to 0 with f = g(z): a numeric check at
random points filters (cheap, decides "no" alone), and the verdict "yes" is symbolic, from a `prove`
callable the caller gives (SymPy in the worker pool: service.compute.cancellation).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

import numpy as np

from service.compute.activations import ACTIVATIONS, Activation, ActivationName
from service.compute.derivations import DerivationStep, Rule, activation_derivation, loss_derivation
from service.compute.domains import REALS, Formula, Interval
from service.compute.errors import DomainError, IncompatiblePairing, NonFiniteResult
from service.compute.losses import Loss, LossName, make_loss
from service.compute.model_names import ModelName
from service.compute.pairings import Canonical, Pairing, make_pairing
from service.compute.stable import Array
from service.formulas import Derivation, Expr, FormulaError, derive, parse, to_latex, to_text
from service.formulas.numeric import evaluate
from service.formulas.tree import Add, Call, Div, Mul, Neg, Number, Pow, Symbol, count_nodes, walk

# Not catalogue names: lookups by name (the canonical table, the fused kernels) miss them, as they should.
FORMULA_ACTIVATION = cast(ActivationName, "formula")
FORMULA_LOSS = cast(LossName, "formula")

# Symbolic check of an expression tree: True when it simplifies to 0, False when it does not, None undecided.
Prove = Callable[[Expr], bool | None]
# The tracer, derive(tree, variable): here by default; the service runs it in its worker pool (its time is
# bounded there: a formula within the limits can take a second of pure Python to derive)
Derive = Callable[[Expr, str], Derivation]


def _read(text: str, names: tuple[str, ...], what: str, derive_with: Derive) -> tuple[Expr, Derivation]:
    """The tree of a formula in `names` and its derivative by names[0]; FormulaError when it does not read."""
    tree = parse(text, names=names)
    for node in walk(tree):
        if isinstance(node, Symbol) and (node.index is not None or node.example is not None):
            raise FormulaError(f"{what} is a formula in {' and '.join(names)} alone, not in {to_text(node)}")
        if not isinstance(node, Number | Symbol | Call | Add | Mul | Div | Pow | Neg):
            raise FormulaError(f"{what} cannot hold {to_text(node)}: write it in {' and '.join(names)} alone")
    return tree, derive_with(tree, names[0])


def _values(tree: Expr, values: dict[str, Array], shape: tuple[int, ...]) -> Array:
    """The tree on arrays (numpy's rules: inf on overflow, nan where undefined), as float64 of `shape`."""
    with np.errstate(all="ignore"):
        out = evaluate(tree, values)
    return np.array(np.broadcast_to(np.asarray(out, dtype=np.float64), shape))


def _steps(definition: Formula, derivation: Derivation) -> tuple[DerivationStep, ...]:
    first = DerivationStep(Rule.DEFINITION, definition.latex, definition.text, "The formula as given, read as written.")
    return (first, *(DerivationStep(Rule(s.rule), s.latex, s.text, s.why) for s in derivation.steps))


def _as_written(kind: str) -> str:
    return (
        f"as written: the {kind} is evaluated term by term on float64 (no stable rewriting), so values that "
        "overflow in the formula as given are reported as a non-finite result"
    )


class FormulaActivation(Activation):
    """f = g(z) for a formula g in z."""

    name = FORMULA_ACTIVATION
    output_range = REALS
    stable_evaluation = _as_written("activation")

    def __init__(self, text: str, derive_with: Derive = derive) -> None:
        self.tree, self.derivation = _read(text, ("z",), "an activation", derive_with)
        self.formula = Formula("f = " + to_latex(self.tree), "f = " + to_text(self.tree))
        d = self.derivation.derivative
        self.derivative_formula = Formula(r"\frac{\partial f}{\partial z} = " + to_latex(d), "df/dz = " + to_text(d))

    def value(self, z: Array) -> Array:
        return _values(self.tree, {"z": z}, z.shape)

    def derivative(self, z: Array, f: Array) -> Array:
        return _values(self.derivation.derivative, {"z": z}, z.shape)

    def steps(self) -> tuple[DerivationStep, ...]:
        return _steps(self.formula, self.derivation)


@dataclass(frozen=True)
class TargetDomain(Interval):
    """A custom loss's targets: [min, max] (either end may be open-ended), integers only when `integer`."""

    integer: bool = False

    def contains(self, v: Any) -> Any:
        inside = super().contains(v)
        return inside & (v == np.round(v)) if self.integer else inside

    @property
    def text(self) -> str:
        interval = Interval(self.lo, self.hi, self.lo_closed, self.hi_closed)
        return ("integers in " if self.integer else "") + interval.text

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "text": self.text, "integer": self.integer}


def target_domain(lo: float | None, hi: float | None, integer: bool) -> TargetDomain:
    """The targets [lo, hi] (None: unbounded on that side); ValueError when empty."""
    low = -math.inf if lo is None else float(lo)
    high = math.inf if hi is None else float(hi)
    if low > high or (integer and np.floor(high) < np.ceil(low)):
        raise ValueError(f"the targets' domain is empty (min {lo}, max {hi}{', integers' if integer else ''})")
    return TargetDomain(low, high, lo is not None, hi is not None, integer)


class FormulaLoss(Loss):
    """L(f, y) for a formula in f and y, y in a declared domain (every real by default)."""

    name = FORMULA_LOSS
    f_domain = REALS

    def __init__(self, text: str, targets: TargetDomain | None = None, derive_with: Derive = derive) -> None:
        super().__init__()
        self.tree, self.derivation = _read(text, ("f", "y"), "a loss", derive_with)
        self.targets = targets or TargetDomain(-math.inf, math.inf)
        self.targets_text = f"y in {self.targets.text}"
        self.formula = Formula("L = " + to_latex(self.tree), "L = " + to_text(self.tree))
        d = self.derivation.derivative
        self.derivative_formula = Formula(r"\frac{\partial L}{\partial f} = " + to_latex(d), "dL/df = " + to_text(d))

    def value(self, f: Array, y: Array) -> Array:
        return _values(self.tree, {"f": f, "y": y}, f.shape)

    def dL_df(self, f: Array, y: Array) -> Array:
        return _values(self.derivation.derivative, {"f": f, "y": y}, f.shape)

    def steps(self) -> tuple[DerivationStep, ...]:
        return _steps(self.formula, self.derivation)


def nodes_of(obj: Activation | Loss) -> int:
    """The tree nodes one example's evaluation walks (the formula and its derivative); 0 for the catalogue's."""
    if isinstance(obj, FormulaActivation | FormulaLoss):
        return count_nodes(obj.tree) + count_nodes(obj.derivation.derivative)
    return 0


def activation_steps(act: Activation) -> tuple[DerivationStep, ...]:
    """The derivation of df/dz shown with explain "full": the tracer's for a formula, else the catalogue's."""
    return act.steps() if isinstance(act, FormulaActivation) else activation_derivation(act.name)


def loss_steps(loss: Loss) -> tuple[DerivationStep, ...]:
    """The derivation of dL/df shown with explain "full": the tracer's for a formula, else the catalogue's."""
    return loss.steps() if isinstance(loss, FormulaLoss) else loss_derivation(loss.name)


def spec_json(obj: Activation | Loss) -> Any:
    """How a response names an activation or a loss: the catalogue name, or the formula as the service read it."""
    if isinstance(obj, FormulaActivation | FormulaLoss):
        out: dict[str, Any] = {"formula": to_text(obj.tree), "latex": to_latex(obj.tree)}
        if isinstance(obj, FormulaLoss):
            out["targets"] = obj.targets.describe()
        return out
    return str(obj.name)


# --- canonical detection ---------------------------------------------------------------------

# The catalogue's scalar entries as formulas (the tracer derives them all), for the cancellation check of a
# formula paired with a catalogue entry. relu (max), huber (cases) and the vector ones have none.
CATALOGUE_ACTIVATIONS: dict[ActivationName, str] = {
    ActivationName.IDENTITY: "z",
    ActivationName.SIGMOID: "1/(1 + exp(-z))",
    ActivationName.TANH: "tanh(z)",
    ActivationName.EXP: "exp(z)",
    ActivationName.SOFTPLUS: "log(1 + exp(z))",
}
CATALOGUE_LOSSES: dict[LossName, str] = {
    LossName.SQUARED_ERROR: "(f - y)^2/2",
    LossName.BINARY_CROSS_ENTROPY: "-y*log(f) - (1 - y)*log(1 - f)",
    LossName.POISSON: "f - y*log(f)",
    LossName.ABSOLUTE_ERROR: "abs(f - y)",
}
CHECK_POINTS = 24
CHECK_TOLERANCE = 1e-8


def _substitute(tree: Expr, name: str, by: Expr) -> Expr:
    """`tree` with the symbol `name` replaced by `by` (a walk of the tree, bounded by its limits)."""
    match tree:
        case Symbol(name=n) if n == name:
            return by
        case Number() | Symbol():
            return tree
        case Call(function=fn, args=args):
            return Call(fn, tuple(_substitute(a, name, by) for a in args))
        case Add(terms=terms):
            return Add(tuple(_substitute(t, name, by) for t in terms))
        case Mul(factors=factors):
            return Mul(tuple(_substitute(t, name, by) for t in factors))
        case Div(numerator=a, denominator=b):
            return Div(_substitute(a, name, by), _substitute(b, name, by))
        case Pow(base=a, exponent=b):
            return Pow(_substitute(a, name, by), _substitute(b, name, by))
        case Neg(operand=a):
            return Neg(_substitute(a, name, by))
    raise TypeError(f"cannot substitute in {tree!r}")  # _read admits no other node


def _sample_targets(domain: Interval, rng: np.random.Generator, size: int) -> Array:
    lo = max(domain.lo, -2.0)
    hi = min(domain.hi, 2.0)
    if hi < lo:  # a domain away from [-2, 2]: sample near its nearer end
        lo, hi = (domain.lo, domain.lo + 4.0) if math.isfinite(domain.lo) else (domain.hi - 4.0, domain.hi)
    y = rng.uniform(lo, hi, size)
    if isinstance(domain, TargetDomain) and domain.integer:
        y = np.clip(np.round(y), np.ceil(domain.lo), np.floor(domain.hi))
    return y


def cancellation_residual(act_tree: Expr, dfdz: Expr, dLdf: Expr) -> Expr:
    """dL/df(g(z), y) · df/dz − (g(z) − y): the tree that is 0 exactly for a canonical pairing."""
    return Add((Mul((_substitute(dLdf, "f", act_tree), dfdz)), Neg(Add((act_tree, Neg(Symbol("y")))))))


def numerically_cancels(residual: Expr, targets: Interval, seed: int = 0) -> bool:
    """The residual vanishes (to CHECK_TOLERANCE, relative to f − y) at every finite sample point, and is
    finite at some: necessary for a canonical pairing, never sufficient (the symbolic check decides)."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(-2.0, 2.0, CHECK_POINTS)
    y = _sample_targets(targets, rng, CHECK_POINTS)
    r = _values(residual, {"z": z, "y": y}, z.shape)
    finite = np.isfinite(r)
    if finite.sum() < CHECK_POINTS // 2:
        return False
    return bool(np.all(np.abs(r[finite]) <= CHECK_TOLERANCE * (1.0 + np.abs(y[finite]) + np.abs(z[finite]))))


@cache
def _catalogue_trees(text: str, variable: str) -> tuple[Expr, Expr]:
    tree = parse(text)
    return tree, derive(tree, variable).derivative


def _tree_of(obj: Activation | Loss) -> tuple[Expr, Expr] | None:
    """(formula, its derivative) of a formula, or of a catalogue entry written as one (None: no such tree)."""
    if isinstance(obj, FormulaActivation | FormulaLoss):
        return obj.tree, obj.derivation.derivative
    if isinstance(obj, Activation):
        text = CATALOGUE_ACTIVATIONS.get(obj.name)
        return _catalogue_trees(text, "z") if text else None
    text = CATALOGUE_LOSSES.get(obj.name)
    return _catalogue_trees(text, "f") if text else None


def detect_canonical(act: Activation, loss: Loss, prove: Prove) -> Formula | None:
    """The cancellation dL/df · df/dz = f − y when the pairing is canonical (symbolically), else None."""
    act_trees, loss_trees = _tree_of(act), _tree_of(loss)
    if act_trees is None or loss_trees is None:
        return None
    residual = cancellation_residual(act_trees[0], act_trees[1], loss_trees[1])
    if not numerically_cancels(residual, loss.targets if isinstance(loss.targets, Interval) else REALS):
        return None
    if prove(residual) is not True:
        return None
    a, b = loss_trees[1], act_trees[1]
    return Formula(
        r"\frac{\partial L}{\partial f}\,\frac{\partial f}{\partial z} = "
        rf"\left({to_latex(a)}\right)\cdot\left({to_latex(b)}\right) = f - y",
        f"dL/df * df/dz = ({to_text(a)}) * ({to_text(b)}) = f - y",
    )


# --- the pairing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomPairing(Pairing):
    """A pairing with a formula on at least one side: the plain chain rule (no fused kernel), canonical when
    the cancellation was proven (`cancellation`, the formula shown), f checked against a catalogue loss's domain."""

    cancellation: Formula | None = None

    @property
    def canonical(self) -> bool:
        return self.cancellation is not None

    @property
    def canonical_info(self) -> Canonical | None:
        if self.cancellation is None:
            return None
        return Canonical(
            ModelName.SINGLE_LAYER,
            "exponential-family",
            Formula(r"A'(z) = g(z),\ A(z) = \int g(z)\,dz", "A'(z) = g(z), A(z) = integral of g(z) dz"),
            "inverse of the activation g (whose derivative A'' is the variance)",
            self.cancellation,
        )

    def forward_backward(self, z: Array, y: Array) -> tuple[Array, Array, Array]:
        """(f, L, ∂L/∂z) by the chain rule; a formula's nan or inf is a NonFiniteResult that says so, and a formula
        activation's f outside a catalogue loss's domain a DomainError."""
        act = self.activation
        f, L, dL_dz = super().forward_backward(z, y)  # the plain chain rule, nan and inf left in place
        if isinstance(act, FormulaActivation):
            _require_finite("f", f, f"the activation {to_text(act.tree)}")
            dom = self.loss.f_domain
            if not isinstance(self.loss, FormulaLoss) and isinstance(dom, Interval) and not dom.contains(f).all():
                bad = [int(i) for i in np.flatnonzero(~dom.contains(f))]
                raise DomainError(
                    f"the activation {to_text(act.tree)} gives f outside {dom.text}, where "
                    f"{self.loss.name} is defined, for examples {bad[:20]}",
                    ("activation",),
                    bad,
                )
        formulas = [f"the loss {to_text(self.loss.tree)}"] if isinstance(self.loss, FormulaLoss) else []
        if isinstance(act, FormulaActivation):
            formulas.append(f"the activation {to_text(act.tree)}")
        what = " and ".join(formulas)
        _require_finite("per-sample loss", L, what)
        _require_finite("dL/dz", dL_dz, what)
        return f, L, dL_dz


def _require_finite(quantity: str, values: Array, what: str) -> None:
    """NonFiniteResult for the examples where a formula's value is nan (undefined there) or ±inf (it overflows)."""
    bad = ~np.isfinite(values)
    if np.any(bad):
        examples = np.flatnonzero(bad if bad.ndim == 1 else np.any(bad.reshape(bad.shape[0], -1), axis=1))
        raise NonFiniteResult(
            quantity,
            [int(i) for i in examples],
            f"{what}, evaluated as written, is undefined (nan) or overflows float64 (inf) there",
        )


def resolve_activation(
    name_or_formula: ActivationName | str | dict[str, Any], derive_with: Derive = derive
) -> Activation:
    """The catalogue activation of a name, or the activation of {"formula": "..."} (FormulaError: it does not read)."""
    if isinstance(name_or_formula, dict):
        return _formula_activation(str(name_or_formula["formula"]), derive_with)
    return ACTIVATIONS[ActivationName(name_or_formula)]


_CACHE: dict[Any, Any] = {}
_CACHE_LOCK = threading.Lock()
CACHE_SIZE = 256


def _cached(key: Any, build: Callable[[], Any]) -> Any:
    """A small bounded cache of read formulas and pairings (trees and pairings are immutable), first in first
    out; requests run in threads, so it is locked, but not while `build` runs (it may wait for the prover)."""
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
    value = build()
    with _CACHE_LOCK:
        while len(_CACHE) >= CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = value
    return value


def _formula_activation(text: str, derive_with: Derive) -> FormulaActivation:
    return cast(FormulaActivation, _cached(("activation", text), lambda: FormulaActivation(text, derive_with)))


def _formula_loss(text: str, targets: TargetDomain | None, derive_with: Derive) -> FormulaLoss:
    return cast(FormulaLoss, _cached(("loss", text, targets), lambda: FormulaLoss(text, targets, derive_with)))


def resolve_pairing(
    activation: ActivationName | str | dict[str, Any],
    loss: LossName | str | dict[str, Any],
    loss_params: dict[str, float] | None,
    prove: Prove,
    derive_with: Derive = derive,
) -> Pairing:
    """The pairing of two names or formulas: a catalogue pairing when both are names (make_pairing), else a
    CustomPairing. A formula loss is {"formula": ..., "targets": {"min", "max", "integer"}} (targets optional).
    Raises FormulaError (and FormulaTooComplex) for a formula that does not read, IncompatiblePairing."""
    if not isinstance(activation, dict) and not isinstance(loss, dict):
        return make_pairing(activation, loss, loss_params)
    act = resolve_activation(activation, derive_with)
    if isinstance(loss, dict):
        t = loss.get("targets") or {}
        try:
            targets = target_domain(t.get("min"), t.get("max"), bool(t.get("integer", False))) if t else None
        except ValueError as exc:
            raise IncompatiblePairing(str(exc)) from None
        loss_obj: Loss = _formula_loss(str(loss["formula"]), targets, derive_with)
        loss_key: Any = ("formula", loss_obj.formula.text, targets)
    else:
        loss_obj = make_loss(loss, loss_params)
        loss_key = (LossName(loss), tuple(sorted((loss_params or {}).items())))
    if act.vector:
        raise IncompatiblePairing(
            f"{act.name} gives k outputs per example; a formula loss takes one output f: use a scalar activation"
        )
    if not isinstance(loss_obj.targets, Interval):
        raise IncompatiblePairing(
            f"{loss_obj.name} needs k outputs that form a probability distribution; a formula activation gives "
            "one number per example: use softmax"
        )
    act_key = ("formula", act.formula.text) if isinstance(act, FormulaActivation) else act.name

    def build() -> CustomPairing:
        return CustomPairing(act, loss_obj, detect_canonical(act, loss_obj, prove))

    return cast(CustomPairing, _cached(("pairing", act_key, loss_key, prove), build))


__all__ = [
    "CATALOGUE_ACTIVATIONS",
    "CATALOGUE_LOSSES",
    "CustomPairing",
    "FormulaActivation",
    "FormulaLoss",
    "TargetDomain",
    "activation_steps",
    "detect_canonical",
    "loss_steps",
    "nodes_of",
    "resolve_activation",
    "resolve_pairing",
    "spec_json",
]

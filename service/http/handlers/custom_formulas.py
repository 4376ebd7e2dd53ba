"""`{"formula": ...}` in place of an activation or a loss name: from the validated request to compute objects.

Each formula is read by service.formulas under its limits; a formula that does not read is a 422
`formula-error`, one past a limit (or whose cancellation check overruns the worker's time or memory)
a 422 `formula-too-complex`, with the location of the field. The symbolic half of canonical detection
runs in a worker pool (service.formulas.pool) with SymPy preloaded, started at the first formula pairing.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from service.compute.activations import Activation
from service.compute.custom import nodes_of, resolve_activation, resolve_pairing
from service.compute.errors import IncompatiblePairing
from service.compute.pairings import Pairing
from service.formulas import Derivation, Expr, FormulaError, FormulaTooComplex
from service.formulas.pool import (
    DEFAULT_TIME_LIMIT,
    JobFailed,
    PoolBusy,
    PoolError,
    WorkerPool,
    WorkTooBig,
    WorkTooLong,
)
from service.http.errors import ProblemError
from service.settings import Settings

Loc = list[str | int]
PROVE_JOB = "service.compute.cancellation:simplifies_to_zero"
DERIVE_JOB = "service.formulas.derive:derive"
POOL_SIZE = 2

_pool: WorkerPool | None = None
_pool_lock = threading.Lock()


def _shared_pool() -> WorkerPool:
    """The process's pool for the cancellation check (one worker, SymPy imported before its first job)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool.closed:
            _pool = WorkerPool(
                size=POOL_SIZE,
                time_limit=DEFAULT_TIME_LIMIT,
                imports=("sympy", "service.compute.cancellation", "service.formulas.derive"),
            )
        return _pool


def close_pool() -> None:
    """Stop the worker (tests, shutdown)."""
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.close()
            _pool = None


def derive_in_pool(tree: Expr, variable: str) -> Derivation:
    """The tracer's derivative and steps, computed in a worker (pure Python, up to a second or more for a
    formula within the limits): an overrun is FormulaTooComplex, the tracer's own refusals come back as theirs."""
    try:
        derivation: Derivation = _shared_pool().run_sync(DERIVE_JOB, tree, variable)
    except (WorkTooLong, WorkTooBig) as exc:
        raise FormulaTooComplex("time", 0, None, f"deriving it passed the worker's limits ({exc})") from None
    except PoolBusy:
        raise _busy() from None
    except JobFailed as exc:
        kind = exc.type_name.rsplit(".", 1)[-1]  # the worker names the class with its module
        if kind == "FormulaTooComplex":
            raise FormulaTooComplex("derivative", 0, None, exc.message) from None
        if kind in ("FormulaError", "NotDerivable"):
            raise FormulaError(exc.message) from None
        raise
    except PoolError as exc:  # the worker died (its memory, most likely) or the pool is closing
        raise FormulaTooComplex("worker", 0, None, f"deriving it stopped its worker ({exc})") from None
    return derivation


def _busy() -> ProblemError:
    return ProblemError(
        503, "formulas-busy", "Every formula worker is busy; retry in a few seconds.", headers={"Retry-After": "2"}
    )


def prove_in_pool(tree: Expr) -> bool | None:
    """Whether the tree simplifies to 0, decided by SymPy in a worker; an overrun is 422 formula-too-complex."""
    try:
        return bool(_shared_pool().run_sync(PROVE_JOB, tree))
    except (WorkTooLong, WorkTooBig) as exc:
        raise ProblemError(
            422,
            "formula-too-complex",
            "Deciding whether dL/df · df/dz simplifies to f − y (a canonical pairing) passed the worker's limits "
            f"({exc}). Write the formulas more simply.",
            limit="time" if isinstance(exc, WorkTooLong) else "memory",
        ) from None
    except PoolBusy:
        raise _busy() from None
    except PoolError:
        return None  # a worker crashed or the job failed: undecided, so not reported canonical


def is_formula(value: Any) -> bool:
    return not isinstance(value, str) and hasattr(value, "formula")


def as_json(value: Any) -> Any:
    """A request's name or formula as it is written in JSON."""
    return value.model_dump(exclude_none=True) if is_formula(value) else str(value)


def _spec(value: Any) -> Any:
    """A request's name (an enum, a str) or formula (a model) as resolve_* take it."""
    return value.model_dump(exclude_none=True) if is_formula(value) else value


def _formula_problem(exc: FormulaError, loc: Loc) -> ProblemError:
    slug = "formula-too-complex" if isinstance(exc, FormulaTooComplex) else "formula-error"
    extra: dict[str, Any] = {"column": exc.column}
    if isinstance(exc, FormulaTooComplex):
        extra.update(limit=exc.limit, **({"maximum": exc.maximum} if exc.maximum else {}))
    elif exc.allowed_names:
        extra["allowed"] = list(exc.allowed_names)
    where = ".".join(map(str, loc))
    return ProblemError(422, slug, f"The formula at {where}: {exc}.", [{"loc": loc, "msg": str(exc)}], **extra)


def activation(value: Any, loc: Loc) -> Activation:
    """The activation of a name or a formula (422 formula-error at `loc` when the formula does not read)."""
    try:
        return resolve_activation(_spec(value), derive_in_pool)
    except FormulaError as exc:
        raise _formula_problem(exc, loc) from None


def formula_pairing(act: Any, loss: Any, loss_params: dict[str, float] | None, loc: Loc) -> Pairing:
    """The pairing of an activation and a loss, either of which is a formula. `loc` locates the activation."""
    if is_formula(loss) and loss_params:
        raise ProblemError(
            422,
            "validation-error",
            "A formula loss takes no loss_params: write the constants into the formula.",
            [{"loc": ["loss_params"], "msg": "a formula loss takes no parameters"}],
        )
    activation(act, loc)  # the activation's own errors first, at its own location
    try:
        return resolve_pairing(_spec(act), _spec(loss), loss_params, prove_in_pool, derive_in_pool)
    except FormulaError as exc:
        raise _formula_problem(exc, ["loss"]) from None
    except IncompatiblePairing as exc:
        raise ProblemError(422, "incompatible-pairing", exc.detail) from None


def check_work(per_example_nodes: int, m: int, passes: int, settings: Settings) -> None:
    """Bounded work: m examples × the formulas' nodes per example × the passes over them, at most
    settings.max_formula_work (422 formula-too-complex above; nothing to check without formulas)."""
    work = per_example_nodes * m * passes
    if work > settings.max_formula_work:
        raise ProblemError(
            422,
            "formula-too-complex",
            f"Evaluating these formulas takes about {work} node·examples ({m} examples × {per_example_nodes} tree "
            f"nodes × {passes} passes), above the limit of {settings.max_formula_work}: send fewer examples, "
            "simpler formulas, or leave out explain or verify.",
            [
                {
                    "loc": ["data", "X"],
                    "msg": f"at most {settings.max_formula_work // max(1, per_example_nodes * passes)} "
                    "examples with these formulas",
                }
            ],
            limit="work",
            maximum=settings.max_formula_work,
        )


# A node·example of a formula in /descent's units of work (about 1 ns each; a node·example takes 10-50 ns)
FORMULA_NODE_COST = 32


def pairing_nodes(pairing: Pairing) -> int:
    """Tree nodes per example of a pairing's formulas (0 for two catalogue entries)."""
    return nodes_of(pairing.activation) + nodes_of(pairing.loss)


def network_nodes(hidden: Sequence[Activation], widths: Sequence[int], pairing: Pairing) -> int:
    """Tree nodes per example of a network's formulas: each hidden layer's times its units, and the output's."""
    return sum(nodes_of(g) * units for g, units in zip(hidden, widths, strict=False)) + pairing_nodes(pairing)

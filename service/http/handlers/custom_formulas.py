"""`{"formula": ...}` in place of an activation or a loss name: from the validated request to compute objects.

Each formula is read by service.formulas under its limits; a formula that does not read is a 422
`formula-error`, one past a limit (or whose cancellation check overruns the worker's time or memory)
a 422 `formula-too-complex`, with the location of the field. The symbolic half of canonical detection
runs in a worker pool (service.formulas.pool) with SymPy preloaded, started at the first formula pairing.
"""

from __future__ import annotations

import threading
from typing import Any

from service.compute.activations import Activation
from service.compute.custom import resolve_activation, resolve_pairing
from service.compute.errors import IncompatiblePairing
from service.compute.pairings import Pairing
from service.formulas import Expr, FormulaError, FormulaTooComplex
from service.formulas.pool import DEFAULT_TIME_LIMIT, PoolBusy, PoolError, WorkerPool, WorkTooBig, WorkTooLong
from service.http.errors import ProblemError

Loc = list[str | int]
PROVE_JOB = "service.compute.cancellation:simplifies_to_zero"

_pool: WorkerPool | None = None
_pool_lock = threading.Lock()


def _shared_pool() -> WorkerPool:
    """The process's pool for the cancellation check (one worker, SymPy imported before its first job)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool.closed:
            _pool = WorkerPool(size=1, time_limit=DEFAULT_TIME_LIMIT, imports=("sympy", "service.compute.cancellation"))
        return _pool


def close_pool() -> None:
    """Stop the worker (tests, shutdown)."""
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.close()
            _pool = None


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
        raise ProblemError(
            503, "formulas-busy", "Every formula worker is busy; retry in a few seconds.", headers={"Retry-After": "2"}
        ) from None
    except PoolError:
        return None  # a worker crashed or the job failed: undecided, so not reported canonical


def is_formula(value: Any) -> bool:
    return not isinstance(value, str) and hasattr(value, "formula")


def as_json(value: Any) -> Any:
    """A request's name or formula as it is written in JSON."""
    return value.model_dump(exclude_none=True) if is_formula(value) else str(value)


def label(named: Any) -> str:
    """A response's name of an activation or a loss (spec_json) in a sentence: the name, or the formula."""
    return str(named["formula"]) if isinstance(named, dict) else str(named)


def _spec(value: Any) -> Any:
    """A request's name (an enum, a str) or formula (a model) as resolve_* take it."""
    return value.model_dump(exclude_none=True) if is_formula(value) else value


def _formula_problem(exc: FormulaError, loc: Loc) -> ProblemError:
    slug = "formula-too-complex" if isinstance(exc, FormulaTooComplex) else "formula-error"
    extra: dict[str, Any] = {"column": exc.column}
    if isinstance(exc, FormulaTooComplex):
        extra.update(limit=exc.limit, maximum=exc.maximum)
    elif exc.allowed_names:
        extra["allowed"] = list(exc.allowed_names)
    where = ".".join(map(str, loc))
    return ProblemError(422, slug, f"The formula at {where}: {exc}.", [{"loc": loc, "msg": str(exc)}], **extra)


def activation(value: Any, loc: Loc) -> Activation:
    """The activation of a name or a formula (422 formula-error at `loc` when the formula does not read)."""
    try:
        return resolve_activation(_spec(value))
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
        return resolve_pairing(_spec(act), _spec(loss), loss_params, prove_in_pool)
    except FormulaError as exc:
        raise _formula_problem(exc, ["loss"]) from None
    except IncompatiblePairing as exc:
        raise ProblemError(422, "incompatible-pairing", exc.detail) from None

"""`{"formula": ...}` in place of an activation or a loss name: from the validated request to compute objects.

Each formula is read by service.formulas under its limits; a formula that does not read is a 422
`formula-error`, one past a limit (or whose derivation or cancellation check overruns the worker's time or
memory) a 422 `formula-too-complex`, with the location of the field, in the same shape as POST /derive's
(service/http/handlers/derive.py). The tracer and the symbolic half of canonical detection run in the app's
formula pool (the lifespan registers it with `use_pool`); requests run in threads, so they wait on it with
`run_sync`. Without an app (a script, a compute test) a pool of this module's own is started at the first job.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from service.compute.activations import Activation
from service.compute.custom import nodes_of, resolve_activation, resolve_pairing
from service.compute.errors import IncompatiblePairing
from service.compute.pairings import Pairing
from service.formulas import Derivation, Expr, FormulaError, FormulaTooComplex
from service.formulas.derive import NotDerivable
from service.formulas.pool import JobFailed, PoolError, WorkerPool
from service.http.errors import ProblemError
from service.http.handlers.derive import formula_problem, make_pool, pool_refusal
from service.http.security.access import caller
from service.settings import Settings, get_settings

log = logging.getLogger("service.formulas")
Loc = list[str | int]
PROVE_JOB = "service.compute.cancellation:simplifies_to_zero"
DERIVE_JOB = "service.formulas.derive:derive"

_pool: WorkerPool | None = None
_own = False  # whether _pool was started here (and is closed here), not the app's
_pool_lock = threading.Lock()


def use_pool(pool: WorkerPool | None) -> None:
    """The app's formula pool for formula pairings (None at its shutdown)."""
    global _pool, _own
    with _pool_lock:
        if _own and _pool is not None and _pool is not pool:
            _pool.close()
        _pool, _own = pool, False


def _shared_pool() -> WorkerPool:
    global _pool, _own
    with _pool_lock:
        if _pool is None or _pool.closed:
            _pool, _own = make_pool(get_settings()), True
        return _pool


def run_job(job: str, *args: Any) -> Any:
    """A formula job in the app's pool, for the caller (blocking: from a thread); its refusals as /derive's
    (FormulaTooComplex, located by the caller; 503 busy)."""
    pool = _shared_pool()
    try:
        return pool.run_sync(job, *args, client=caller.get())
    except PoolError as exc:
        answer = pool_refusal(exc, pool)
        if answer is None:
            raise
        raise answer from None


def derive_in_pool(tree: Expr, variable: str) -> Derivation:
    """The tracer's derivative and steps, computed in a worker (pure Python, up to a second or more for a
    formula within the limits); its refusals (NotDerivable, FormulaTooComplex) come back as themselves."""
    try:
        derivation: Derivation = run_job(DERIVE_JOB, tree, variable)
    except JobFailed as exc:
        kind = exc.type_name.rsplit(".", 1)[-1]  # the worker names the class with its module
        if kind == "FormulaTooComplex":
            raise FormulaTooComplex("derivative", 0, None, exc.message) from None
        if kind == "NotDerivable":
            raise NotDerivable("formula", exc.message) from None
        if kind == "FormulaError":
            raise FormulaError(exc.message) from None
        log.error("formula job %s failed: %s\n%s", DERIVE_JOB, exc, exc.remote_traceback)
        raise
    return derivation


def prove_in_pool(tree: Expr) -> bool | None:
    """Whether the tree simplifies to 0, decided by SymPy in a worker (None: the job failed, undecided)."""
    try:
        return bool(run_job(PROVE_JOB, tree))
    except JobFailed as exc:
        log.error("formula job %s failed: %s\n%s", PROVE_JOB, exc, exc.remote_traceback)
        return None


def is_formula(value: Any) -> bool:
    return not isinstance(value, str) and hasattr(value, "formula")


def names_a_formula(req: Any) -> bool:
    """Whether a validated problem takes a formula anywhere (its activation or loss, a layer's activation):
    reading one waits for the formula workers, which the event loop must not do."""
    specs = [getattr(req, "activation", None), getattr(req, "loss", None)]
    specs += [layer.activation for layer in getattr(req, "layers", None) or ()]
    return any(is_formula(spec) for spec in specs)


def as_json(value: Any) -> Any:
    """A request's name or formula as it is written in JSON."""
    return value.model_dump(exclude_none=True) if is_formula(value) else str(value)


def _spec(value: Any) -> Any:
    """A request's name (an enum, a str) or formula (a model) as resolve_* take it."""
    return value.model_dump(exclude_none=True) if is_formula(value) else value


def _formula_problem(exc: FormulaError, loc: Loc) -> ProblemError:
    """/derive's formula-error or formula-too-complex, located at the request's field (a JSON path)."""
    problem = formula_problem(exc, ".".join(map(str, loc)))
    problem.errors = [{"loc": loc, "msg": exc.message}]
    return problem


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

"""POST /derive: the formula read on the event loop (bounded: 2,000 characters), derived in the worker pool.

The tracer is pure Python on a bounded tree, but bounded is not small: a product of 300 sums, or 60 nested
tanh, take it about a second before its output limit refuses them (measured, docs/design/formulas.md), and
SymPy (in_terms_of) can take any time. Both run in a worker process with the time and memory limits, so the
event loop, and other requests, never wait on them. Reading the formula stays inline: at most 2,000
characters, under a few milliseconds, and its errors need no worker.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from service.formulas import FormulaError, FormulaTooComplex, Symbol, parse, to_text
from service.formulas.derive import MAX_OUTPUT
from service.formulas.jobs import error_fields
from service.formulas.pool import (
    JobFailed,
    PoolBusy,
    PoolClosed,
    PoolError,
    WorkerCrashed,
    WorkerPool,
    WorkTooBig,
    WorkTooLong,
)
from service.formulas.vocabulary import ALLOWED_NAMES
from service.http.errors import ProblemError
from service.http.schemas.derive import DeriveRequest
from service.settings import Settings

log = logging.getLogger("service.formulas")

DERIVE_JOB = "service.formulas.jobs:derive_job"
SYMPY_SHARE = 0.5  # of the time limit, for the search of in_terms_of (the tracer has taken at most ~1 s before)
WORKER_IMPORTS = ("service.formulas.jobs", "service.formulas.algebra", "service.formulas.warmup")


def make_pool(settings: Settings) -> WorkerPool:
    """The formula workers (started by the app's lifespan, or at their first job): SymPy loaded once in the fork
    server, so that a worker replaced after a kill starts in milliseconds."""
    return WorkerPool(
        size=settings.formula_workers,
        time_limit=settings.formula_time_limit_seconds,
        memory_limit_bytes=settings.formula_memory_limit_bytes,
        max_waiting=settings.formula_max_waiting,
        preload=("sympy", "service.formulas.warmup"),
        imports=WORKER_IMPORTS,
    )


def formula_problem(exc: FormulaError | dict[str, Any], field: str) -> ProblemError:
    """422 formula-error (where, what was expected, the names allowed) or formula-too-complex (which limit)."""
    fields = error_fields(exc) if isinstance(exc, FormulaError) else exc
    where = {"field": field} | ({"column": fields["column"]} if fields.get("column") is not None else {})
    message = fields["message"]
    extra: dict[str, Any]
    if fields["kind"] == "too_complex":
        slug, detail = "formula-too-complex", f"The {field} is too complex: {message}."
        extra = {"limit": fields["limit"], "maximum": fields["maximum"]}
        if isinstance(fields.get("found"), int):
            extra["found"] = fields["found"]
    else:
        slug = "formula-error"
        extra = {"what": fields["what"]} if fields["kind"] == "not_derivable" else {}
        column = f" at column {fields['column']}" if fields.get("column") is not None else ""
        detail = f"The {field} {'cannot be derived' if extra else f'does not read{column}'}: {message}."
        extra |= {"expected": message, "allowed_names": fields.get("allowed_names") or list(ALLOWED_NAMES)}
    return ProblemError(422, slug, detail, errors=[{"loc": [field], "msg": message}], where=where, **extra)


def pool_refusal(exc: PoolError, pool: WorkerPool) -> FormulaTooComplex | ProblemError | None:
    """How a refusal of the pool is answered: FormulaTooComplex (the caller locates it: formula_problem) for a job
    over its time or memory or one that killed its worker, 503 when the pool is busy or stopping, None for the
    job's own exception (JobFailed). Shared by /derive and formula activations and losses (custom_formulas)."""
    if isinstance(exc, WorkTooLong):
        return FormulaTooComplex("time", exc.limit, None, f"the work took longer than {exc.limit:g} s")  # type: ignore[arg-type]
    if isinstance(exc, WorkTooBig):
        return FormulaTooComplex("memory", exc.limit, None, f"the work needed more than {exc.limit / 2**20:g} MiB")
    if isinstance(exc, WorkerCrashed):
        log.warning("a formula worker died on a job: %s", exc)
        return FormulaTooComplex("worker", 0, None, "the work stopped its worker process")
    if isinstance(exc, PoolBusy):
        retry = max(1, math.ceil(pool.time_limit))
        return ProblemError(
            503,
            "formula-pool-busy",
            f"The formula workers are busy; retry in {retry} s.",
            headers={"Retry-After": str(retry)},
            retry_after=retry,
        )
    if isinstance(exc, PoolClosed):
        return ProblemError(503, "unavailable", "The service is stopping.", headers={"Retry-After": "5"})
    return None


async def run_formula_job(pool: WorkerPool, client_key: str, job: str, *args: Any) -> Any:
    """Run a formula job in the pool and map the pool's refusals to answers. `client_key` (the caller, as the
    rate limiter names it) is the job's client: the pool holds each client to its share of the workers."""
    try:
        return await pool.run(job, *args, client=client_key)
    except PoolError as exc:
        answer = pool_refusal(exc, pool)
        if isinstance(answer, FormulaTooComplex):
            raise formula_problem(answer, "expression") from None
        if answer is not None:
            raise answer from None
        assert isinstance(exc, JobFailed)
        log.error("formula job %s failed: %s\n%s", job, exc, exc.remote_traceback)
        raise ProblemError(500, "internal-error", "An unexpected error occurred; it has been logged.") from None


def read_variable(text: str) -> str:
    """The variable's canonical plain spelling (w_j, x_j^(i)), or 422 formula-error on `variable`."""
    try:
        tree = parse(text)
    except FormulaError as exc:
        raise formula_problem(exc, "variable") from None
    if not isinstance(tree, Symbol):
        raise formula_problem(
            FormulaError(f"the variable must be one name (z, f, w_j, ...), not {to_text(tree)}"), "variable"
        )
    return to_text(tree)


async def derive(req: DeriveRequest, pool: WorkerPool, key: str) -> dict[str, Any]:
    """The /derive answer: parse inline, then the tracer (and SymPy for in_terms_of) in a worker."""
    variable = read_variable(req.variable)
    try:
        tree = parse(req.expression, syntax=req.syntax)
    except FormulaError as exc:
        raise formula_problem(exc, "expression") from None
    budget = SYMPY_SHARE * pool.time_limit  # SymPy's search for the form in f gives up here, the tracer's form stays
    status, result = await run_formula_job(pool, key, DERIVE_JOB, tree, variable, req.in_terms_of, MAX_OUTPUT, budget)
    if status != "ok":
        raise formula_problem(result, "expression")
    answer: dict[str, Any] = result
    return answer

"""From /grade requests to the grading layer and back: options, answers, references, batches."""

from __future__ import annotations

import json
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from service.api.attempts import AttemptStore
from service.api.body import MODEL_TAGS, field_names
from service.api.errors import ProblemError, compute_error_problem, problem_body, validation_errors
from service.api.grading_schemas import Answer, GradeBatchOne, GradeItem, GradeOptionsIn, GradeRequest
from service.api.problems import prepare, prepare_network
from service.api.security import Principal, Signer, token_digest
from service.compute.errors import ComputeError
from service.grading.compare import Tolerance
from service.grading.formats import render
from service.grading.grade import GradeOptions, grade
from service.grading.network import NetworkReference, build_network_reference
from service.grading.reference import Reference, build_reference
from service.observability import GRADES, PROBLEM_SIZE
from service.settings import Settings

_ANSWER: TypeAdapter[Answer] = TypeAdapter(Answer)
_ITEM: TypeAdapter[GradeItem] = TypeAdapter(GradeItem)


def _validate_item(raw: Any) -> GradeItem:
    """Validate one batch item as strict JSON (names must be JSON strings, numbers JSON numbers).

    The item was parsed with the batch; it is written back as JSON (NaN and big integers kept) so
    that the problem is validated exactly as /grade validates it.
    """
    return _ITEM.validate_json(json.dumps(raw, allow_nan=True))


def options_from(req: GradeOptionsIn) -> GradeOptions:
    tol = req.tolerance
    if tol is None:
        tolerance = Tolerance()
    elif hasattr(tol, "sig_figs"):
        tolerance = Tolerance(sig_figs=tol.sig_figs)
    else:
        tolerance = Tolerance(rtol=tol.rtol, atol=tol.atol)
    return GradeOptions(
        tolerance=tolerance, points=dict(req.points or {}), reveal=req.reveal, carry_forward=req.carry_forward
    )


def answer_parts(answer: Answer) -> dict[str, Any]:
    """The parts the learner gave, by name ("loss", "gradients.w", "per_sample.f", ...)."""
    parts: dict[str, Any] = {}
    if "loss" in answer.model_fields_set:
        parts["loss"] = answer.loss
    for group in ("gradients", "per_sample"):
        sub = getattr(answer, group)
        if sub is not None:
            for name in sub.model_fields_set:
                if group == "gradients" and name == "layers":
                    for i, layer in enumerate(sub.layers or []):
                        if layer is not None:
                            for key in layer.model_fields_set:
                                parts[f"gradients.layers.{i}.{key}"] = getattr(layer, key)
                    continue
                parts[f"{group}.{name}"] = getattr(sub, name)
    return parts


def reference_for(problem: Any, settings: Settings, route: str = "/grade") -> Reference | NetworkReference:
    """Check the problem as /gradient does (a bad one is a 422) and compute its reference."""
    problem = problem.model_copy(update={"explain": False, "verify": False})
    try:
        if problem.model == "neural_network":
            net = prepare_network(problem, settings).network
            PROBLEM_SIZE.labels(route).observe(net.X.size)
            return build_network_reference(net)
        prepared = prepare(problem, settings)
        PROBLEM_SIZE.labels(route).observe(prepared.problem.m * prepared.problem.n)
        return build_reference(prepared.problem)
    except ComputeError as exc:
        raise _under_problem(compute_error_problem(exc)) from None
    except ProblemError as exc:
        raise _under_problem(exc) from None


def _under_problem(exc: ProblemError) -> ProblemError:
    """The same problem, its locations moved under the request's "problem" field."""
    errors = None if exc.errors is None else [{"loc": ["problem", *e["loc"]], "msg": e["msg"]} for e in exc.errors]
    return ProblemError(exc.status, exc.slug, exc.detail, errors, exc.headers, **exc.extra)


def _grade(
    ref: Reference | NetworkReference,
    answer: Answer,
    options: GradeOptions,
    fmt: str,
    loc: tuple[str, ...] = ("answer",),
) -> dict[str, Any]:
    parts = answer_parts(answer)
    unknown = [p for p in parts if p not in ref.expected]
    if unknown:
        raise ProblemError(
            422,
            "validation-error",
            "The answer has parts this problem does not have.",
            [
                {"loc": [*loc, *_part_loc(p)], "msg": f"no part {p} in this model: it has {', '.join(ref.expected)}"}
                for p in unknown
            ],
        )
    if not parts:
        raise ProblemError(
            422,
            "validation-error",
            "The answer gives no part to grade.",
            [{"loc": list(loc), "msg": f"give at least one of: {', '.join(ref.expected)}"}],
        )
    native = grade(ref, parts, options)
    GRADES.labels("correct" if native["correct"] else "incorrect").inc()
    return render(native, fmt)


def _part_loc(part: str) -> list[str | int]:
    return [int(x) if x.isdigit() else x for x in part.split(".")]


def problem_of(problem: Any, token: str | None, signer: Signer | None) -> Any:
    """The problem given, or the one a problem_token carries (its signature and expiry checked)."""
    if token is None:
        return problem
    if signer is None:
        raise ProblemError(403, "forbidden", "This service does not accept problem tokens.")
    data, _ = signer.verify(token)
    from service.api.routes.gradient import REQUEST  # strict, as a /gradient body

    return REQUEST.validate_json(orjson.dumps(data))


def grade_request(req: GradeRequest, settings: Settings, signer: Signer | None = None) -> dict[str, Any]:
    ref = reference_for(problem_of(req.problem, req.problem_token, signer), settings)
    return _grade(ref, req.answer, options_from(req), req.format)


async def check_student(
    principal: Principal, req: Any, signer: Signer | None, attempts_store: AttemptStore, settings: Settings
) -> None:
    """A student key grades signed problems only, without reveal, a limited number of times each."""
    if not principal.is_student_only:
        return
    if req.reveal:
        raise ProblemError(403, "forbidden", "A student key may not ask for reveal.")
    if isinstance(req, GradeRequest | GradeBatchOne):
        pairs = [(req.problem_token, 1 if isinstance(req, GradeRequest) else len(req.answers))]
    else:
        pairs = [(item.get("problem_token") if isinstance(item, dict) else None, 1) for item in req.items]
    wanted: dict[str, tuple[int, int]] = {}  # the attempts asked for, per key: all verified before any is taken
    for token, attempts in pairs:
        if token is not None and not isinstance(token, str):
            raise ProblemError(
                422,
                "validation-error",
                "A problem_token must be a string.",
                [{"loc": ["problem_token"], "msg": "not a string"}],
            )
        if token is None:
            raise ProblemError(
                403, "forbidden", "A student key grades signed problems only: send problem_token, not problem."
            )
        if signer is None:
            raise ProblemError(403, "forbidden", "This service does not accept problem tokens.")
        _, expires = signer.verify(token)  # a verified token has one spelling: its digest identifies it
        key = f"attempts:{principal.key_id}:{token_digest(token)}"
        wanted[key] = (wanted.get(key, (0, expires))[0] + attempts, expires)
    for key, (attempts, expires) in wanted.items():
        consumed = await attempts_store.consume(key, attempts, settings.max_attempts, expires)  # all or none
        if not consumed.granted:
            raise ProblemError(
                403,
                "forbidden",
                f"This key has used its {settings.max_attempts} attempts at this problem.",
                attempts=consumed.used,
                max_attempts=settings.max_attempts,
            )


def _item_problem(exc: Exception, index: int, prefix: str) -> dict[str, Any]:
    """A problem object standing in a batch's results for an item that cannot be graded."""
    GRADES.labels("ungradable").inc()
    if isinstance(exc, ValidationError):
        errors = validation_errors(exc, MODEL_TAGS, field_names(_ITEM))
        for e in errors:
            e["loc"] = [prefix, index, *e["loc"]]
        return problem_body(422, "validation-error", f"{prefix}[{index}] does not match the schema.", errors)
    if isinstance(exc, ComputeError):
        exc = compute_error_problem(exc)
    assert isinstance(exc, ProblemError)
    located = None
    if exc.errors is not None:
        located = [{"loc": [prefix, index, *e["loc"]], "msg": e["msg"]} for e in exc.errors]
    return problem_body(exc.status, exc.slug, exc.detail, located, **exc.extra)


def grade_batch(req: Any, settings: Settings, signer: Signer | None = None) -> dict[str, Any]:
    """Grade every answer (or item) on its own, in order; each problem's reference is computed once."""
    options = options_from(req)
    fmt = req.format
    size = len(req.answers) if isinstance(req, GradeBatchOne) else len(req.items)
    if size > settings.max_batch_items:
        raise ProblemError(
            422,
            "validation-error",
            f"A batch holds at most {settings.max_batch_items} items.",
            [{"loc": ["answers" if isinstance(req, GradeBatchOne) else "items"], "msg": "too many items"}],
        )
    results: list[dict[str, Any]] = []
    if isinstance(req, GradeBatchOne):
        shared = problem_of(req.problem, req.problem_token, signer)
        ref = reference_for(shared, settings, "/grade/batch")  # a bad shared problem fails the whole request
        for i, raw in enumerate(req.answers):
            try:
                results.append(_grade(ref, _ANSWER.validate_python(raw, strict=True), options, fmt, ()))
            except (ValidationError, ProblemError) as exc:
                results.append(_item_problem(exc, i, "answers"))
        return {"results": results}
    cache: dict[bytes, Reference | NetworkReference | Exception] = {}
    for i, raw in enumerate(req.items):
        try:
            item = _validate_item(raw)
            problem = problem_of(item.problem, item.problem_token, signer)
            key = orjson.dumps(problem.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
            if key not in cache:
                try:
                    cache[key] = reference_for(problem, settings, "/grade/batch")
                except (ProblemError, ComputeError) as exc:
                    cache[key] = exc
            cached = cache[key]
            if isinstance(cached, Exception):
                raise cached
            results.append(_grade(cached, item.answer, options, fmt))
        except (ValidationError, ProblemError, ComputeError) as exc:
            results.append(_item_problem(exc, i, "items"))
    return {"results": results}

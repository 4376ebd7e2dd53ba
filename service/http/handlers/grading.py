"""From /grade requests to the grading layer and back: options, answers, references, batches."""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from service.compute.errors import ComputeError
from service.grading.compare import Tolerance
from service.grading.formats import render
from service.grading.grade import GradeOptions, grade
from service.grading.reference import Reference, build_reference
from service.http.errors import ProblemError, compute_error_problem, problem_body, validation_errors
from service.http.handlers.objectives import prepare
from service.http.schemas.gradient import GRADIENT_REQUEST
from service.http.schemas.grading import (
    BATCH_REQUEST,
    SCORING_FIELDS,
    Answer,
    GradeBatchOne,
    GradeItem,
    GradeOptionsIn,
    GradeRequest,
    RelativeTolerance,
    ScoringIn,
    SignRequest,
)
from service.http.security.attempts import AttemptStore
from service.http.security.keys import Principal
from service.http.security.signing import MalformedToken, Signer, token_digest
from service.http.wire.json import MODEL_TAGS, field_names, parse
from service.observability import GRADES, PROBLEM_SIZE
from service.settings import Settings

_ANSWER: TypeAdapter[Answer] = TypeAdapter(Answer)
_ITEM: TypeAdapter[GradeItem] = TypeAdapter(GradeItem)


def _validate_item(raw: Any) -> GradeItem:
    """Validate one batch item as strict JSON (names must be JSON strings, numbers JSON numbers).

    The item was parsed with the batch. It is first validated as it stands, strictly (the quick
    way, about 5 times faster on a big problem); whatever that refuses (an enum given by its name,
    say, or a real error) is written back as JSON (NaN and big integers kept) and validated exactly
    as /grade validates it, so every error and its message is /grade's.
    """
    try:
        return _ITEM.validate_python(raw, strict=True)
    except ValidationError:
        return _ITEM.validate_json(json.dumps(raw, allow_nan=True))


_SCORING: TypeAdapter[ScoringIn] = TypeAdapter(ScoringIn)


def options_from(req: ScoringIn) -> GradeOptions:
    tol = req.tolerance
    if tol is None:
        tolerance = Tolerance()
    elif hasattr(tol, "sig_figs"):
        tolerance = Tolerance(sig_figs=tol.sig_figs)
    else:
        tolerance = Tolerance(rtol=tol.rtol, atol=tol.atol)
    return GradeOptions(
        tolerance=tolerance,
        points=dict(req.points or {}),
        reveal=req.reveal,
        carry_forward=req.carry_forward,
        carry_forward_credit=req.carry_forward_credit,
    )


def sealed_scoring(req: SignRequest) -> dict[str, Any]:
    """The scoring options to seal in a token, every default written out: a token grades the same
    way for as long as it lives, whatever later releases choose as defaults."""
    scoring = req.model_dump(mode="json", include=set(SCORING_FIELDS))
    if scoring["tolerance"] is None:
        scoring["tolerance"] = RelativeTolerance().model_dump(mode="json")
    scoring["points"] = scoring["points"] or {}
    return scoring


@dataclass(frozen=True)
class Opened:
    """A verified problem token: its problem (validated as a /gradient body), the grader's scoring
    options, its expiry, and the digest that identifies it when attempts are counted."""

    problem: Any
    scoring: ScoringIn
    expires: int
    digest: str


def open_token(token: str, signer: Signer | None) -> Opened:
    """Verify a token (403 when altered, expired or unreadable) and read what it seals."""
    if signer is None:
        raise ProblemError(403, "forbidden", "This service does not accept problem tokens.")
    sealed = signer.verify(token)

    try:
        problem = GRADIENT_REQUEST.validate_json(orjson.dumps(sealed.problem))
        scoring = _SCORING.validate_json(orjson.dumps(sealed.grading or {}))
    except ValidationError:
        raise MalformedToken() from None
    return Opened(problem, scoring, sealed.expires, token_digest(token))


def options_for(req: GradeOptionsIn, opened: Opened | None) -> GradeOptions:
    """The sealed options of a signed problem, any the request sets in the clear (a grader key's:
    a student key's request never gets here with one) taking their place; the request's alone else."""
    if opened is None:
        return options_from(req)
    clear = {name: getattr(req, name) for name in SCORING_FIELDS if name in req.model_fields_set}
    return options_from(opened.scoring.model_copy(update=clear) if clear else opened.scoring)


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


@dataclass(frozen=True)
class Checked:
    """A problem checked as /gradient checks it, ready to have its reference computed; `work` is
    the size of one evaluation (m·n·k, or m·Σ fan-in·units for a network), which batches budget."""

    prepared: Any
    work: int


def check_problem(problem: Any, settings: Settings) -> Checked:
    """Check the problem as /gradient does (a bad one is a 422 at its place under "problem")."""
    problem = problem.model_copy(update={"explain": False, "verify": False})
    try:
        prepared = prepare(problem, settings)
        return Checked(prepared.model, prepared.work)
    except ComputeError as exc:
        raise _under_problem(compute_error_problem(exc)) from None
    except ProblemError as exc:
        raise _under_problem(exc) from None


def check_signed(problem: Any, opened: Opened | None, settings: Settings) -> Checked:
    """check_problem, where a signed problem that fails its checks (this service signs only problems
    that pass them, so one signed elsewhere with the secret, or under other limits) is a 403."""
    try:
        return check_problem(problem, settings)
    except ProblemError as exc:
        if opened is None or exc.status != 422:
            raise
        raise MalformedToken() from None


def build(checked: Checked, route: str = "/grade") -> Reference:
    """The reference of a checked problem (its expected parts and every mistake's variant)."""
    try:
        PROBLEM_SIZE.labels(route).observe(checked.prepared.X.size)
        return build_reference(checked.prepared)
    except ComputeError as exc:
        raise _under_problem(compute_error_problem(exc)) from None


def reference_for(problem: Any, settings: Settings, route: str = "/grade") -> Reference:
    """Check the problem as /gradient does (a bad one is a 422) and compute its reference."""
    return build(check_problem(problem, settings), route)


def _under_problem(exc: ProblemError) -> ProblemError:
    """The same problem, its locations moved under the request's "problem" field."""
    errors = None if exc.errors is None else [{"loc": ["problem", *e["loc"]], "msg": e["msg"]} for e in exc.errors]
    return ProblemError(exc.status, exc.slug, exc.detail, errors, exc.headers, **exc.extra)


def _grade(
    ref: Reference,
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


def problem_of(
    problem: Any, token: str | None, signer: Signer | None, opened: Mapping[str, Opened] | None = None
) -> tuple[Any, Opened | None]:
    """The problem given, or the one a problem_token carries (its signature and expiry checked, or
    taken from `opened`, the tokens a student's request had checked before its answer was parsed)."""
    if token is None:
        return problem, None
    found = opened.get(token) if opened else None
    if found is None:
        found = open_token(token, signer)
    return found.problem, found


def grade_request(
    req: GradeRequest, settings: Settings, signer: Signer | None = None, opened: Mapping[str, Opened] | None = None
) -> dict[str, Any]:
    problem, token = problem_of(req.problem, req.problem_token, signer, opened)
    ref = build(check_signed(problem, token, settings))
    return _grade(ref, req.answer, options_for(req, token), req.format)


def _forbidden_field(names: list[str]) -> ProblemError:
    return ProblemError(
        403,
        "forbidden",
        f"A student key may not set {', '.join(names)}: the grader chose how this problem is graded, "
        "and sealed it in the signed problem. A student sends the signed problem, the answer(s) and "
        "at most a format.",
        [{"loc": [name], "msg": "a student key may not set this"} for name in names],
        fields=names,
    )


def student_tokens(body: bytes | bytearray, principal: Principal, signer: Signer | None) -> dict[str, Opened]:
    """For a student key, before any answer is parsed: refuse the scoring options, and verify every
    problem token the body holds (a forged or unreadable one is a 403 that costs one JSON decode of
    a body the student's size limit keeps small). Returns the opened tokens; {} for other keys."""
    if not principal.is_student_only:
        return {}
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}  # the strict parse that follows says what is wrong with it
    if not isinstance(raw, dict):
        return {}
    items = raw.get("items")
    holders = [i for i in items if isinstance(i, dict)] if isinstance(items, list) and "answers" not in raw else [raw]
    opened: dict[str, Opened] = {}
    for holder in holders:
        token = holder.get("problem_token")
        if token is None:
            raise ProblemError(
                403, "forbidden", "A student key grades signed problems only: send problem_token, not problem."
            )
        if not isinstance(token, str):
            raise ProblemError(
                422,
                "validation-error",
                "A problem_token must be a string.",
                [{"loc": ["problem_token"], "msg": "not a string"}],
            )
        if token not in opened:
            opened[token] = open_token(token, signer)
    set_fields = [name for name in SCORING_FIELDS if name in raw]
    if set_fields:
        raise _forbidden_field(set_fields)
    return opened


async def check_student(
    principal: Principal, req: Any, opened: Mapping[str, Opened], attempts_store: AttemptStore, settings: Settings
) -> None:
    """A student key grades signed problems only (their tokens opened by student_tokens), a limited
    number of times each: every answer takes one attempt at its problem, all of a request's attempts
    at one problem at once or none (the store checks and counts in one atomic step)."""
    if not principal.is_student_only:
        return
    if isinstance(req, GradeRequest | GradeBatchOne):
        uses = Counter({req.problem_token: 1 if isinstance(req, GradeRequest) else len(req.answers)})
    else:
        uses = Counter(item.get("problem_token") for item in req.items)
    wanted: list[tuple[str, int, int]] = []  # every token checked before any attempt is taken
    for token, n in uses.items():
        if not isinstance(token, str) or token not in opened:  # student_tokens saw the same body
            raise ProblemError(
                403, "forbidden", "A student key grades signed problems only: send problem_token, not problem."
            )
        found = opened[token]
        wanted.append((f"attempts:{principal.key_id}:{found.digest}", n, found.expires))
    for key, n, expires in wanted:
        consumed = await attempts_store.consume(key, n, settings.max_attempts, expires)
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


# What a batch's grading costs, in units of about a nanosecond of one core here (calibrated on the
# largest batches of three shapes: tests/benchmarks/bench_limits.py, README "Security and limits"):
# BYTE_WORK per byte of the request (reading, validating and comparing what it holds), ANSWER_WORK
# per answer or item, and per distinct problem its reference (the answer key and every mistake's
# variant): REFERENCE_WORK + REFERENCE_PASSES per number of one evaluation (m·n·k).
BYTE_WORK = 192
ANSWER_WORK = 400_000
REFERENCE_WORK = 500_000
REFERENCE_PASSES = 24


def _reference_work(checked: Checked) -> int:
    return REFERENCE_WORK + REFERENCE_PASSES * checked.work


def batch_body_work(body_bytes: int, settings: Settings) -> int:
    """The work a batch body's bytes alone cost; a 422 already when that is over the budget."""
    total = BYTE_WORK * body_bytes
    if total > settings.max_batch_work:
        raise _over_budget(total, settings, None)
    return total


def _over_budget(total: int, settings: Settings, loc: str | None) -> ProblemError:
    return ProblemError(
        422,
        "validation-error",
        f"This batch would cost {total} units of work; at most {settings.max_batch_work}: send fewer "
        "answers, fewer distinct problems or smaller ones in one request.",
        [{"loc": [loc] if loc else [], "msg": f"{total} units of work; at most {settings.max_batch_work}"}],
        work=total,
        max_work=settings.max_batch_work,
    )


BatchSteps = Generator[None, None, dict[str, Any]]


class _Results:
    """A batch's results in order, each encoded as it comes when an encoder is given."""

    def __init__(self, encode: Callable[[Any], bytes] | None) -> None:
        self.items: list[Any] = []
        self._encode = encode

    def append(self, result: dict[str, Any]) -> None:
        self.items.append(result if self._encode is None else orjson.Fragment(self._encode(result)))


def batch_steps(
    req: Any,
    settings: Settings,
    signer: Signer | None = None,
    opened: Mapping[str, Opened] | None = None,
    encode: Callable[[Any], bytes] | None = None,
    body_bytes: int | None = None,
) -> BatchSteps:
    """Grade every answer (or item) on its own, in order; each problem's reference is computed once.

    A generator that yields between pieces of work (one answer, one item, one reference) and returns
    the result: the route runs it in slices off the event loop. The whole batch's cost is counted
    before any reference is computed, and a batch over `max_batch_work` is refused (a 422). With
    `encode`, each result is encoded as it is made (so the last step is no long encoding).
    `body_bytes` is the request body's size (the JSON of the answers or items when not given)."""
    fmt = req.format
    loc = "answers" if isinstance(req, GradeBatchOne) else "items"
    size = len(req.answers) if isinstance(req, GradeBatchOne) else len(req.items)
    if size > settings.max_batch_items:
        raise ProblemError(
            422,
            "validation-error",
            f"A batch holds at most {settings.max_batch_items} items.",
            [{"loc": [loc], "msg": "too many items"}],
        )
    results: _Results = _Results(encode)
    values = req.answers if isinstance(req, GradeBatchOne) else req.items
    if body_bytes is None:
        body_bytes = sum(len(orjson.dumps(v)) for v in values)
    total = batch_body_work(body_bytes, settings) + ANSWER_WORK * size
    if total > settings.max_batch_work:
        raise _over_budget(total, settings, loc)
    if isinstance(req, GradeBatchOne):
        shared, token = problem_of(req.problem, req.problem_token, signer, opened)
        checked = check_signed(shared, token, settings)  # a bad shared problem fails the whole request
        total += _reference_work(checked)
        if total > settings.max_batch_work:
            raise _over_budget(total, settings, loc)
        yield
        ref = build(checked, "/grade/batch")
        options = options_for(req, token)
        answers = req.answers
        for i, raw in enumerate(answers):
            yield
            answers[i] = None  # each answer's values are freed once it is graded
            try:
                results.append(_grade(ref, _ANSWER.validate_python(raw, strict=True), options, fmt, ()))
            except (ValidationError, ProblemError) as exc:
                results.append(_item_problem(exc, i, "answers"))
            del raw
        return {"results": results.items}
    # first every item is read and its problem checked, and the whole cost counted; then graded.
    # What is no longer needed is let go as it goes: an item's JSON once it is read, a problem's
    # validated lists once it is checked (its arrays are made), a reference after its last answer.
    planned: list[tuple[Answer, bytes, GradeOptions] | Exception] = []
    checked_by_key: dict[bytes, Checked | Exception] = {}
    uses: Counter[bytes] = Counter()
    items = req.items
    for i, raw in enumerate(items):
        yield
        items[i] = None
        try:
            item = _validate_item(raw)
            del raw
            problem, token = problem_of(item.problem, item.problem_token, signer, opened)
            key = orjson.dumps(problem.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
            if key not in checked_by_key:
                try:
                    checked = check_signed(problem, token, settings)
                    checked_by_key[key] = checked
                    total += _reference_work(checked)
                except ProblemError as exc:
                    checked_by_key[key] = exc
            uses[key] += 1
            planned.append((item.answer, key, options_for(req, token)))
            del item, problem
        except (ValidationError, ProblemError) as exc:
            planned.append(exc)
        if total > settings.max_batch_work:
            raise _over_budget(total, settings, loc)
    refs: dict[bytes, Reference | Exception] = {}
    for i, plan in enumerate(planned):
        yield
        planned[i] = None  # type: ignore[call-overload]
        try:
            if isinstance(plan, Exception):
                raise plan
            answer, key, options = plan
            if key not in refs:
                step = checked_by_key.pop(key)
                try:
                    refs[key] = step if isinstance(step, Exception) else build(step, "/grade/batch")
                except ProblemError as exc:
                    refs[key] = exc
            cached = refs[key]
            uses[key] -= 1
            if not uses[key]:
                del refs[key]
            if isinstance(cached, Exception):
                raise cached
            results.append(_grade(cached, answer, options, fmt))
        except (ValidationError, ProblemError, ComputeError) as exc:
            results.append(_item_problem(exc, i, "items"))
        del plan
    return {"results": results.items}


def run_steps(steps: BatchSteps, seconds: float = math.inf) -> tuple[bool, dict[str, Any] | None]:
    """Run a batch's steps for about `seconds`: (True, result) once done, else (False, None)."""
    deadline = time.perf_counter() + seconds
    try:
        while True:
            next(steps)
            if time.perf_counter() >= deadline:
                return False, None
    except StopIteration as stop:
        return True, stop.value


def grade_batch(
    req: Any, settings: Settings, signer: Signer | None = None, opened: Mapping[str, Opened] | None = None
) -> dict[str, Any]:
    """The whole batch at once (batch_steps run to the end)."""
    done, result = run_steps(batch_steps(req, settings, signer, opened))
    assert done and result is not None
    return result


def sign_problem(req: SignRequest, settings: Settings, signer: Signer) -> dict[str, Any]:
    """POST /problems/sign: the problem checked (a bad one is refused now, not when students use it),
    its token and expiry."""
    ref = reference_for(req.problem, settings)  # a bad problem is refused now, not when students use it
    unknown = [part for part in req.points or {} if part not in ref.expected]
    if unknown:
        raise ProblemError(
            422,
            "validation-error",
            "points names parts this problem does not have.",
            [
                {"loc": ["points", part], "msg": f"no part {part} in this model: it has {', '.join(ref.expected)}"}
                for part in unknown
            ],
        )
    expires = int(time.time()) + (req.expires_in or settings.token_lifetime_seconds)
    problem = req.problem.model_dump(mode="json", by_alias=True, exclude_none=True)
    problem.pop("explain", None)
    problem.pop("verify", None)
    token = signer.sign(problem, expires, sealed_scoring(req))
    return {"problem_token": token, "expires_at": expires}


# a batch's top-level union: the model names, and its two forms
BATCH_TAGS = MODEL_TAGS | {"answers", "items"}
_LONG_NUMBER = re.compile(rb"[0-9]{19}")


def parse_batch(body: bytes | bytearray) -> Any:
    """Parse a batch as `parse` does, without validating its answers (or items) in one long call that
    would hold the interpreter: each is validated on its own when it is graded. The answers stand as
    placeholders while the rest of the request is validated; a body this way cannot read (invalid
    JSON, numbers orjson refuses) is parsed the strict way, which says what is wrong with it."""
    raw = None
    if not _LONG_NUMBER.search(body):  # orjson reads an integer beyond 64 bits as a float; pydantic, as an int
        try:
            raw = orjson.loads(body)
        except orjson.JSONDecodeError:
            raw = None
    field = "answers" if isinstance(raw, dict) and "answers" in raw else "items"
    values = raw.get(field) if isinstance(raw, dict) else None
    if not isinstance(raw, dict) or not isinstance(values, list):
        return parse(BATCH_REQUEST, body, BATCH_TAGS)
    stubs = [0] * len(values) if field == "answers" else [{} if isinstance(v, dict) else v for v in values]
    try:
        req = BATCH_REQUEST.validate_python({**raw, field: stubs}, strict=True)
    except (ValidationError, TypeError, ValueError):
        return parse(BATCH_REQUEST, body, BATCH_TAGS)
    return req.model_copy(update={field: values})

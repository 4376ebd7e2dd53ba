"""A typed Python client of gradient-service (/gradient, /graph, /descent, /descent/plot, /grade,
/grade/batch, /problems/sign and the catalogue).

It needs only httpx and the standard library (it never imports fastapi, pydantic or numpy), so a
course's notebooks and graders can use it without the service's own dependencies::

    from gradient_service_client import GradientClient, ServiceError

    with GradientClient("http://127.0.0.1:8000") as client:
        result = client.gradient(
            "logistic_regression",
            parameters={"w": [2, 3], "b": 1},
            data={"X": [[0.5, 1.5], [1, 1], [1.5, 0.5], [3, 0.5], [2, 2], [1, 2.5]], "y": [0, 0, 0, 1, 1, 1]},
        )
        result["gradients"]["w"]  # [0.49833339327869597, 0.4988394298399668]

Shapes, as in the service's contract (docs/design/http.md): with m examples of n features, ``data["X"]`` is
m rows of n numbers and ``data["y"]`` m targets; ``parameters["w"]`` has n entries and
``parameters["b"]`` is a number. With k outputs (softmax), ``w`` is n rows of k, ``b`` has k entries
and ``y`` holds m class indices or m rows of k probabilities. The gradients have exactly the
structure of the parameters.

Values may be numpy arrays or scalars (or anything else with a ``.tolist()`` method, e.g. a torch
tensor): they are converted to plain lists and numbers before sending. Numbers are sent as they are:
a NaN or an infinity in a problem is refused by the service with a 422 giving its location, and in
a learner's answer it is graded (never correct) rather than refused.

Every non-2xx answer raises `ServiceError`, which carries the RFC 9457 problem details (`status`,
`type`, `slug`, `title`, `detail`, `errors`). Transport failures (connection refused, timeouts) are
httpx's own exceptions (`httpx.TransportError` and its subclasses).
"""

from __future__ import annotations

import array
import json
import sys
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, NamedTuple, NotRequired, Self, TypedDict, overload

import httpx

from gradient_service_client._version import __version__

__all__ = [
    "BINARY_MIN_NUMBERS",
    "DEFAULT_BASE_URL",
    "PROBLEM_URN",
    "Breakdown",
    "Check",
    "Data",
    "DescentResult",
    "DescentRun",
    "FormulaRead",
    "GradeResult",
    "GradeVersion",
    "GradescopeResult",
    "GradescopeTest",
    "GradientClient",
    "GradientResult",
    "Gradients",
    "Health",
    "MistakeInfo",
    "MistakeMatch",
    "Pairing",
    "Parameters",
    "PerSample",
    "PrairieLearnResult",
    "PrairieLearnTest",
    "Regularization",
    "ServiceError",
    "SignedProblem",
    "Tolerance",
    "Verification",
    "VerificationComponent",
    "VersionInfo",
    "build_problem",
    "is_problem",
    "npy_bytes",
    "to_json_value",
]

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
PROBLEM_URN = "urn:gradient-service:problem:"

Explain = bool | Literal["factors", "full"]
GradeFormat = Literal["native", "gradescope", "prairielearn"]


# --- request shapes (documentation for type checkers; plain dicts at run time) -----------------


class Parameters(TypedDict):
    """w: n numbers (softmax: n rows of k); b: a number (softmax: k numbers)."""

    w: Any
    b: Any


class Data(TypedDict):
    """X: m rows of n numbers; y: m targets (softmax: m class indices or m rows of k)."""

    X: Any
    y: Any


# `lambda` is a Python keyword, hence the functional syntax.
Regularization = TypedDict("Regularization", {"kind": Literal["l1", "l2"], "lambda": float})
"""{"kind": "l2" | "l1", "lambda": λ ≥ 0}; b is never regularized."""


class Tolerance(TypedDict, total=False):
    """{"rtol", "atol"} (numpy's allclose rule; defaults 1e-5 and 1e-8) or {"sig_figs": n}."""

    rtol: float
    atol: float
    sig_figs: int


# --- results of POST /gradient ------------------------------------------------------------------


class FormulaRead(TypedDict):
    """A custom activation or loss (`{"formula": ...}` in the request), as the service read it."""

    formula: str
    latex: str
    targets: NotRequired[dict[str, Any] | None]


class Pairing(TypedDict):
    activation: str | FormulaRead
    loss: str | FormulaRead
    canonical: bool
    loss_params: NotRequired[dict[str, float] | None]


class Gradients(TypedDict):
    """∂J/∂w shaped as parameters.w (n, or n×k), ∂J/∂b shaped as parameters.b (a number, or k)."""

    w: list[float] | list[list[float]]
    b: float | list[float]


class PerSample(TypedDict):
    """Per-example factors, each a list over the m examples (rows of k for softmax; df_dz a k×k
    Jacobian per example). A factor that is not representable is None (see Breakdown.notes)."""

    z: list[Any]
    f: list[Any]
    loss: list[float]
    dL_df: list[Any]
    df_dz: list[Any]
    dL_dz: list[Any]


class Breakdown(TypedDict):
    """The chain-rule breakdown (explain="factors" or "full")."""

    per_sample: PerSample
    steps: list[dict[str, Any]]
    simplification: dict[str, Any] | None
    notes: list[dict[str, Any]]


class VerificationComponent(TypedDict):
    parameter: str
    analytic: float
    numeric: float
    relative_error: float


class Verification(TypedDict):
    """A central finite-difference check of every gradient component (verify=True)."""

    method: str
    components: list[VerificationComponent]
    max_relative_error: float
    expected_agreement: float
    agrees: bool
    kinks: list[dict[str, Any]]
    skipped: list[dict[str, Any]]


class GradientResult(TypedDict):
    """POST /gradient: the cost J (mean loss plus regularization) and its gradients."""

    model: str
    pairing: Pairing
    loss: float
    gradients: Gradients
    breakdown: NotRequired[Breakdown]
    verification: NotRequired[Verification]


# --- results of POST /descent -------------------------------------------------------------------


class DescentHistory(TypedDict):
    """J and ‖∇J‖ at every step taken (index 0: the starting parameters)."""

    loss: list[float]
    gradient_norm: list[float]


class DescentSnapshot(TypedDict):
    step: int
    loss: float
    parameters: dict[str, Any]


class DescentFinal(TypedDict):
    step: int
    loss: float
    gradient_norm: float
    parameters: dict[str, Any]


class DescentRun(TypedDict):
    """One run: status is completed, converged, diverged or non-finite, with an explanation."""

    pairing: Pairing
    learning_rate: float
    steps_requested: int
    steps_taken: int
    status: str
    explanation: str
    history: DescentHistory
    snapshots: list[DescentSnapshot]
    final: DescentFinal


class DescentResult(TypedDict):
    """POST /descent: one run, or two side by side (compare_with) with a comparison."""

    runs: list[DescentRun]
    comparison: NotRequired[str]


# --- results of POST /grade ---------------------------------------------------------------------


class MistakeMatch(TypedDict):
    """The catalogued mistake that explains a wrong part (codes: GET /mistakes)."""

    code: str
    title: str
    message: str
    also_matches: NotRequired[list[str] | None]


class Check(TypedDict):
    """One graded part: "loss", "gradients.w", "gradients.b" or "per_sample.<factor>"."""

    name: str
    correct: bool
    points: float
    max_points: float
    message: str
    mistake: MistakeMatch | None
    graded_against: NotRequired[Literal["reference", "own_values"] | None]
    carried_from: NotRequired[list[str] | None]
    graded: NotRequired[bool | None]
    expected: NotRequired[Any]


class GradeVersion(TypedDict):
    service: str
    grading_rules: str


class GradeResult(TypedDict):
    """POST /grade, format "native": score = points / max_points in [0, 1]."""

    score: float
    points: float
    max_points: float
    correct: bool
    checks: list[Check]
    feedback: str
    version: GradeVersion


class GradescopeTest(TypedDict):
    name: str
    score: float
    max_score: float
    output: str
    visibility: str
    tags: NotRequired[list[str]]


class GradescopeResult(TypedDict):
    """POST /grade, format "gradescope": a results.json object (score in points)."""

    score: float
    output: str
    visibility: str
    tests: list[GradescopeTest]
    extra_data: dict[str, Any]


class PrairieLearnTest(TypedDict):
    name: str
    description: str
    points: float
    max_points: float
    message: str


class PrairieLearnResult(TypedDict):
    """POST /grade, format "prairielearn": an external-grader result (score in [0, 1])."""

    gradable: bool
    score: float
    message: str
    output: str  # the service's and the grading rules' versions
    tests: list[PrairieLearnTest]


class SignedProblem(TypedDict):
    """POST /problems/sign: the token (graded in place of the problem) and its expiry (Unix seconds)."""

    problem_token: str
    expires_at: int


def _problem_field(problem: Mapping[str, Any] | str) -> dict[str, Any]:
    """A problem is sent as `problem`, a token from `sign` as `problem_token`."""
    if isinstance(problem, str):
        return {"problem_token": problem}
    return {"problem": to_json_value(problem)}


# --- the catalogue and operations ---------------------------------------------------------------


class MistakeInfo(TypedDict):
    """An entry of GET /mistakes."""

    code: str
    title: str
    explanation: str
    applies_when: str
    parts: list[str]
    models: NotRequired[str]


class VersionInfo(TypedDict):
    """GET /version: the service's and the grading rules' versions (and numpy's, Python's)."""

    service: str
    grading_rules: str
    numpy: NotRequired[str]
    python: NotRequired[str]


class Health(TypedDict):
    status: str


# --- errors -------------------------------------------------------------------------------------


class ServiceError(Exception):
    """A non-2xx answer of the service, with its RFC 9457 problem details.

    `status` is the HTTP status; `type` the problem type (``urn:gradient-service:problem:<slug>``)
    and `slug` its last part (``validation-error``, ``incompatible-pairing``, ...); `errors` the
    located validation errors (``{"loc": [...], "msg": ...}``, at most 20) or None; `body` the whole
    problem object, with any extra members (e.g. ``activation`` and ``loss`` of an incompatible
    pairing). An answer that is not problem+json (a proxy's 502 page) gets type ``about:blank``.
    """

    def __init__(
        self,
        status: int,
        type: str = "about:blank",
        title: str = "",
        detail: str = "",
        errors: list[dict[str, Any]] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.errors = errors
        self.body: dict[str, Any] = dict(body) if body is not None else {}
        super().__init__(status, type, title, detail, errors)

    @property
    def slug(self) -> str:
        """The problem's slug: `type` without ``urn:gradient-service:problem:`` (or `type` itself)."""
        return self.type.removeprefix(PROBLEM_URN)

    @classmethod
    def from_problem(cls, problem: Mapping[str, Any], status: int | None = None) -> ServiceError:
        """From a problem object: a response body, or an item of a batch's results that could not be graded."""
        errors = problem.get("errors")
        return cls(
            status=status if status is not None else int(problem.get("status", 0)),
            type=str(problem.get("type", "about:blank")),
            title=str(problem.get("title", "")),
            detail=str(problem.get("detail", "")),
            errors=list(errors) if isinstance(errors, list) else None,
            body=problem,
        )

    @classmethod
    def from_response(cls, response: httpx.Response) -> ServiceError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and "type" in body:
            return cls.from_problem(body, status=response.status_code)
        text = response.text.strip()
        return cls(
            status=response.status_code,
            title=response.reason_phrase,
            detail=text[:300] or response.reason_phrase,
            body=body if isinstance(body, dict) else None,
        )

    def __str__(self) -> str:
        head = f"{self.status} {self.slug}"
        if self.detail:
            head += f": {self.detail}"
        if self.errors:
            head += "".join(f"\n  at {e.get('loc')}: {e.get('msg')}" for e in self.errors)
        return head

    def __repr__(self) -> str:
        return f"ServiceError(status={self.status!r}, type={self.type!r}, detail={self.detail!r})"


def is_problem(result: Mapping[str, Any]) -> bool:
    """Whether an item of a batch's results is a problem object (an item that could not be graded)."""
    return isinstance(result.get("type"), str) and "status" in result


# --- request building ---------------------------------------------------------------------------


def to_json_value(value: Any) -> Any:
    """`value` as plain JSON data: objects with ``.tolist()`` (numpy arrays and scalars, torch
    tensors) become lists or numbers, tuples become lists, mappings dicts with string keys."""
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and not isinstance(value, str | bytes):
        value = tolist()
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]
    return value


# From this many numbers in X on, `GradientClient.gradient` sends X as a .npy part (binary=None).
BINARY_MIN_NUMBERS = 65_536
_NPY_DESCR = {"f8": "f8", "f4": "f4", "f2": "f2"}


def npy_bytes(X: Any) -> bytes:
    """X (m rows of n numbers, or a 2-D array: numpy, or anything with ``.tolist()``) as a .npy file
    (format 1.0) of float64, written without numpy. A C-ordered numpy array of float64, float32 or
    float16 is sent as its own bytes (the service widens float32 and float16 exactly); anything else
    goes through ``.tolist()`` and float64."""
    interface = getattr(X, "__array_interface__", None)
    shape: tuple[int, ...]
    if (
        isinstance(interface, dict)
        and interface.get("typestr", "")[1:] in _NPY_DESCR
        and interface.get("typestr", "")[:1] in "<>"
        and interface.get("strides") is None  # C-contiguous
        and len(interface.get("shape", ())) == 2
    ):
        descr, shape, payload = interface["typestr"], tuple(interface["shape"]), X.tobytes()
    else:
        rows = to_json_value(X)
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise ValueError("X must be m rows of n numbers (a list of lists or a 2-D array)")
        n = len(rows[0]) if rows else 0
        if any(len(r) != n for r in rows):
            raise ValueError("X's rows must all have the same length")
        values = array.array("d", (float(v) for r in rows for v in r))
        descr = ("<" if sys.byteorder == "little" else ">") + "f8"
        shape, payload = (len(rows), n), values.tobytes()
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': ({shape[0]}, {shape[1]}), }}"
    header += " " * (-(10 + len(header) + 1) % 64) + "\n"  # the data starts on a 64-byte boundary
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode("latin-1") + payload


def _numbers_in(X: Any) -> int:
    size = getattr(X, "size", None)
    if isinstance(size, int):
        return size
    try:
        return len(X) * len(X[0]) if len(X) else 0
    except (TypeError, IndexError, KeyError):
        return 0


def _send_apart(X: Any, binary: bool | None, where: str = "data") -> bool:
    """Whether X goes as a .npy part: `binary` when given, else from BINARY_MIN_NUMBERS numbers on."""
    if binary is None:
        return X is not None and _numbers_in(X) >= BINARY_MIN_NUMBERS
    if binary and X is None:
        raise ValueError(f"binary=True needs {where}['X']")
    return binary


def _with_X_apart(body: Mapping[str, Any], data_path: tuple[str, ...], binary: bool | None) -> tuple[Any, bytes | None]:
    """`body` as JSON data, and its data.X (at `data_path`) as a .npy file when sent apart: when
    `binary` is True, or None and X holds at least BINARY_MIN_NUMBERS numbers."""
    holder: Any = body
    for key in data_path:
        holder = holder.get(key) if isinstance(holder, Mapping) else None
    X = holder.get("X") if isinstance(holder, Mapping) else None
    if not _send_apart(X, binary, ".".join(data_path)):
        return to_json_value(body), None

    def without_X(node: Any, path: tuple[str, ...]) -> Any:
        if not path:
            return {k: v for k, v in node.items() if k != "X"}
        return {k: (without_X(v, path[1:]) if k == path[0] else v) for k, v in node.items()}

    return to_json_value(without_X(body, data_path)), npy_bytes(X)


def build_problem(
    model: str,
    parameters: Mapping[str, Any],
    data: Mapping[str, Any],
    *,
    activation: str | None = None,
    loss: str | None = None,
    loss_params: Mapping[str, float] | None = None,
    regularization: Mapping[str, Any] | None = None,
    explain: Explain = False,
    verify: bool = False,
) -> dict[str, Any]:
    """A /gradient request body (also the ``problem`` of /grade), as plain JSON data.

    Options left at their defaults are left out, so the service applies its own defaults.
    `activation`, `loss` and `loss_params` are only for ``model="single_layer"`` (the service
    refuses them for a preset with a 422).
    """
    body: dict[str, Any] = {
        "model": model,
        "parameters": to_json_value(parameters),
        "data": to_json_value(data),
    }
    if activation is not None:
        body["activation"] = activation
    if loss is not None:
        body["loss"] = loss
    if loss_params is not None:
        body["loss_params"] = to_json_value(loss_params)
    if regularization is not None:
        body["regularization"] = to_json_value(regularization)
    if explain is not False:
        body["explain"] = explain
    if verify:
        body["verify"] = True
    return body


def _grade_options(
    tolerance: Mapping[str, Any] | None, points: Mapping[str, float] | None, reveal: bool, format: str
) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if tolerance is not None:
        options["tolerance"] = to_json_value(tolerance)
    if points is not None:
        options["points"] = to_json_value(points)
    if reveal:
        options["reveal"] = True
    if format != "native":
        options["format"] = format
    return options


def _normalize_base_url(base_url: str) -> str:
    url = httpx.URL(base_url)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"base_url must be an http(s) URL with a host, e.g. {DEFAULT_BASE_URL!r}; got {base_url!r}")
    if url.query or url.fragment:
        raise ValueError(f"base_url must not have a query or a fragment; got {base_url!r}")
    return str(url).rstrip("/")


# --- requests (shared by GradientClient and AsyncGradientClient) ---------------------------------


class _Request(NamedTuple):
    """One HTTP exchange to make: `body` as JSON, or with `X` (a .npy file) as multipart/form-data
    (body as the part ``request``); with `svg`, the answer is an SVG document's text."""

    method: str
    path: str
    body: Any = None
    X: bytes | None = None
    svg: bool = False
    params: Mapping[str, Any] | None = None


def _http_arguments(headers: Mapping[str, str], request: _Request) -> dict[str, Any]:
    """The keyword arguments of ``httpx.Client.request`` (and the async one's) for `request`."""
    all_headers = dict(headers)
    content: bytes | None = None
    files: dict[str, Any] | None = None
    if request.body is not None:
        # allow_nan: a learner's NaN is graded by the service, a problem's NaN refused with its location.
        content = json.dumps(request.body, allow_nan=True, ensure_ascii=False, separators=(",", ":")).encode()
        if request.X is None:
            all_headers["Content-Type"] = "application/json"
        else:  # httpx writes the multipart body and its Content-Type (with the boundary)
            files = {"request": (None, content, "application/json"), "X": ("X.npy", request.X, "application/x-npy")}
            content = None
    return {"content": content, "files": files, "headers": all_headers, "params": request.params}


def _answer(response: httpx.Response, svg: bool) -> Any:
    """The answer's JSON (or with `svg` its text); ServiceError for a non-2xx or unexpected answer."""
    if not response.is_success:
        raise ServiceError.from_response(response)
    if svg:
        if not response.headers.get("content-type", "").startswith("image/svg+xml"):
            raise ServiceError(response.status_code, title="The response is not SVG", detail=response.text[:300])
        return response.text
    try:
        return response.json()
    except ValueError:
        raise ServiceError(
            response.status_code,
            title="The response is not JSON",
            detail=response.text[:300],
        ) from None


def _gradient_request(
    model: str,
    parameters: Mapping[str, Any],
    data: Mapping[str, Any],
    activation: str | None,
    loss: str | None,
    loss_params: Mapping[str, float] | None,
    regularization: Mapping[str, Any] | None,
    explain: Explain,
    verify: bool,
    binary: bool | None,
) -> _Request:
    X = data.get("X")
    binary = _send_apart(X, binary)
    body = build_problem(
        model,
        parameters,
        {k: v for k, v in data.items() if k != "X"} if binary else data,
        activation=activation,
        loss=loss,
        loss_params=loss_params,
        regularization=regularization,
        explain=explain,
        verify=verify,
    )
    return _Request("POST", "/gradient", body, npy_bytes(X) if binary else None)


def _graph_request(problem: Mapping[str, Any], examples: int | None, binary: bool | None) -> _Request:
    body, X = _with_X_apart(problem, ("data",), binary)
    params = {"examples": examples} if examples is not None else None
    return _Request("POST", "/graph", body, X, svg=True, params=params)


def _descent_request(
    path: str,
    problem: Mapping[str, Any],
    learning_rate: float,
    steps: int,
    record_every: int | None,
    patience: int | None,
    gradient_tolerance: float | None,
    compare_with: Mapping[str, Any] | None,
    binary: bool | None,
) -> _Request:
    """POST /descent or /descent/plot, with problem.data.X as .npy when sent apart."""
    body: dict[str, Any] = {"problem": problem, "learning_rate": learning_rate, "steps": steps}
    options = {
        "record_every": record_every,
        "patience": patience,
        "gradient_tolerance": gradient_tolerance,
        "compare_with": compare_with,
    }
    body.update({k: v for k, v in options.items() if v is not None})
    request, X = _with_X_apart(body, ("problem", "data"), binary)
    return _Request("POST", path, request, X, svg=path.endswith("/plot"))


def _grade_request(
    problem: Mapping[str, Any] | str,
    answer: Mapping[str, Any],
    tolerance: Mapping[str, Any] | None,
    points: Mapping[str, float] | None,
    reveal: bool,
    format: GradeFormat,
) -> _Request:
    body = {
        **_problem_field(problem),
        "answer": to_json_value(answer),
        **_grade_options(tolerance, points, reveal, format),
    }
    return _Request("POST", "/grade", body)


def _grade_batch_request(
    problem: Mapping[str, Any] | str | None,
    answers: Sequence[Mapping[str, Any]] | None,
    items: Sequence[Mapping[str, Any]] | None,
    tolerance: Mapping[str, Any] | None,
    points: Mapping[str, float] | None,
    reveal: bool,
    format: GradeFormat,
) -> _Request:
    if items is not None:
        if problem is not None or answers is not None:
            raise ValueError("give either problem and answers, or items, not both")
        body: dict[str, Any] = {"items": to_json_value(items)}
    elif problem is not None and answers is not None:
        body = {**_problem_field(problem), "answers": to_json_value(answers)}
    else:
        raise ValueError("give problem and answers (one problem, many answers), or items")
    body.update(_grade_options(tolerance, points, reveal, format))
    return _Request("POST", "/grade/batch", body)


def _sign_request(
    problem: Mapping[str, Any],
    expires_in: int | None,
    tolerance: Mapping[str, Any] | None,
    points: Mapping[str, float] | None,
    reveal: bool,
    carry_forward: bool | None,
    carry_forward_credit: float | None,
) -> _Request:
    body: dict[str, Any] = {
        "problem": to_json_value(problem),
        **_grade_options(tolerance, points, reveal, "native"),
    }
    if expires_in is not None:
        body["expires_in"] = expires_in
    if carry_forward is not None:
        body["carry_forward"] = carry_forward
    if carry_forward_credit is not None:
        body["carry_forward_credit"] = carry_forward_credit
    return _Request("POST", "/problems/sign", body)


def _default_headers(api_key: str | None) -> dict[str, str]:
    headers = {
        "Accept": "application/json, application/problem+json",
        "User-Agent": f"gradient-service-client/{__version__}",
    }
    if api_key is not None:
        if not api_key:
            raise ValueError("api_key is empty: pass None to send no Authorization header")
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


# --- the client ---------------------------------------------------------------------------------


class GradientClient:
    """A client of one gradient-service instance.

    `base_url` is where requests go (``http://host:port``, optionally with a path prefix such as
    ``https://example.edu/gradient-service``; a trailing slash does not matter). `api_key`, when
    given, is sent as ``Authorization: Bearer <api_key>``. `timeout` (seconds) applies to the
    client created here; a `client` passed in is used as the transport with its own settings (its
    timeout, its proxies; FastAPI's TestClient works) and is not closed by `close()`, while the
    request URLs are still built from `base_url`.

    Use it as a context manager, or call `close()`.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.base_url = _normalize_base_url(base_url)
        self._headers = _default_headers(api_key)
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=timeout)

    # context management

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client if this object created it (a client passed in is left open)."""
        if self._owns_client:
            self._client.close()

    def __repr__(self) -> str:
        return f"GradientClient({self.base_url!r})"

    # transport

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _run(self, request: _Request) -> Any:
        response = self._client.request(
            request.method, self._url(request.path), **_http_arguments(self._headers, request)
        )
        return _answer(response, request.svg)

    def _get(self, path: str) -> Any:
        return self._run(_Request("GET", path))

    # POST /gradient

    def gradient(
        self,
        model: str,
        parameters: Mapping[str, Any],
        data: Mapping[str, Any],
        *,
        activation: str | None = None,
        loss: str | None = None,
        loss_params: Mapping[str, float] | None = None,
        regularization: Mapping[str, Any] | None = None,
        explain: Explain = False,
        verify: bool = False,
        binary: bool | None = None,
    ) -> GradientResult:
        """The cost J and its gradients (POST /gradient).

        model: ``linear_regression``, ``logistic_regression``, ``softmax_regression``,
            ``poisson_regression``, or ``single_layer`` with `activation` and `loss` (any compatible
            pairing; `loss_params` e.g. ``{"delta": 1.0}`` for huber).
        parameters: ``{"w": n numbers, "b": a number}``; softmax: ``{"w": n×k, "b": k numbers}``.
        data: ``{"X": m×n, "y": m targets}``; softmax: y is m class indices or m×k probability rows.
        regularization: ``{"kind": "l2" | "l1", "lambda": λ ≥ 0}`` (b is not regularized).
        explain: ``"factors"`` (or True) adds ``breakdown`` (per-example factors, the derivation
            steps, the canonical simplification); ``"full"`` also derives each derivative.
        verify: adds ``verification``, a central finite-difference check of every component.
        binary: send X as a .npy part of a multipart/form-data body instead of JSON text (the same
            answer, errors included, from a body about 2.5 times smaller that needs no parsing); by
            default (None) when X holds at least BINARY_MIN_NUMBERS numbers.

        Returns ``{"model", "pairing", "loss", "gradients": {"w", "b"}}`` (gradients shaped as
        `parameters`), plus ``breakdown`` / ``verification`` when asked for.
        Raises ServiceError (e.g. 422 ``validation-error``, ``domain-error``, ``incompatible-pairing``,
        ``non-finite-result``, ``explain-too-large``).
        """
        request = _gradient_request(
            model, parameters, data, activation, loss, loss_params, regularization, explain, verify, binary
        )
        result: GradientResult = self._run(request)
        return result

    # POST /graph, /descent, /descent/plot

    def graph(self, problem: Mapping[str, Any], *, examples: int | None = None, binary: bool | None = None) -> str:
        """The computational graph of `problem` (a /gradient body, e.g. from `build_problem`) as an SVG
        document (POST /graph): forward values and gradients on the boxes, local derivatives on the
        edges, for the first `examples` examples (the service's default: 4; at most 20)."""
        svg: str = self._run(_graph_request(problem, examples, binary))
        return svg

    def descent(
        self,
        problem: Mapping[str, Any],
        *,
        learning_rate: float,
        steps: int,
        record_every: int | None = None,
        patience: int | None = None,
        gradient_tolerance: float | None = None,
        compare_with: Mapping[str, Any] | None = None,
        binary: bool | None = None,
    ) -> DescentResult:
        """`steps` steps of batch gradient descent from `problem`'s parameters (POST /descent).

        problem: a /gradient body (e.g. from `build_problem`), any model.
        compare_with: ``{"activation": ..., "loss": ...}`` (and ``loss_params``) to run the same data
            and starting parameters under another output pairing, side by side.
        Returns ``{"runs": [...], "comparison": ...}``: per run its status (completed, converged,
        diverged, non-finite) and explanation, the history of J and ‖∇J‖, snapshots and the final
        parameters.
        """
        request = _descent_request(
            "/descent", problem, learning_rate, steps, record_every, patience, gradient_tolerance, compare_with, binary
        )
        result: DescentResult = self._run(request)
        return result

    def descent_plot(
        self,
        problem: Mapping[str, Any],
        *,
        learning_rate: float,
        steps: int,
        record_every: int | None = None,
        patience: int | None = None,
        gradient_tolerance: float | None = None,
        compare_with: Mapping[str, Any] | None = None,
        binary: bool | None = None,
    ) -> str:
        """The cost curves of the same descent as `descent` takes, as an SVG document (POST /descent/plot)."""
        request = _descent_request(
            "/descent/plot",
            problem,
            learning_rate,
            steps,
            record_every,
            patience,
            gradient_tolerance,
            compare_with,
            binary,
        )
        svg: str = self._run(request)
        return svg

    # POST /grade

    @overload
    def grade(
        self,
        problem: Mapping[str, Any] | str,
        answer: Mapping[str, Any],
        *,
        tolerance: Mapping[str, Any] | None = ...,
        points: Mapping[str, float] | None = ...,
        reveal: bool = ...,
        format: Literal["native"] = ...,
    ) -> GradeResult: ...

    @overload
    def grade(
        self,
        problem: Mapping[str, Any] | str,
        answer: Mapping[str, Any],
        *,
        tolerance: Mapping[str, Any] | None = ...,
        points: Mapping[str, float] | None = ...,
        reveal: bool = ...,
        format: Literal["gradescope"],
    ) -> GradescopeResult: ...

    @overload
    def grade(
        self,
        problem: Mapping[str, Any] | str,
        answer: Mapping[str, Any],
        *,
        tolerance: Mapping[str, Any] | None = ...,
        points: Mapping[str, float] | None = ...,
        reveal: bool = ...,
        format: Literal["prairielearn"],
    ) -> PrairieLearnResult: ...

    def grade(
        self,
        problem: Mapping[str, Any] | str,
        answer: Mapping[str, Any],
        *,
        tolerance: Mapping[str, Any] | None = None,
        points: Mapping[str, float] | None = None,
        reveal: bool = False,
        format: GradeFormat = "native",
    ) -> GradeResult | GradescopeResult | PrairieLearnResult:
        """Grade a learner's answer to a problem (POST /grade).

        problem: a /gradient request (see `build_problem`), or a problem token from `sign` (a
            student key may grade only those).
        answer: the parts the learner gives, each graded if present: ``{"loss": J, "gradients":
            {"w": ..., "b": ...}, "per_sample": {"z", "f", "dL_df", "df_dz", "dL_dz": m values}}``.
        tolerance: ``{"rtol": 1e-5, "atol": 1e-8}`` (the defaults) or ``{"sig_figs": n}``.
        points: points per part (default 1 each), e.g. ``{"gradients.w": 2}``.
        reveal: include the expected value in each check.
        format: ``"native"`` (`GradeResult`), ``"gradescope"`` (a results.json object) or
            ``"prairielearn"``.

        A bad problem raises ServiceError (422); a bad answer *value* (NaN, a wrong shape) is graded
        wrong with a message, but an unknown answer key (a misspelt part) is a 422.
        """
        request = _grade_request(problem, answer, tolerance, points, reveal, format)
        result: GradeResult | GradescopeResult | PrairieLearnResult = self._run(request)
        return result

    # POST /grade/batch

    def grade_batch(
        self,
        problem: Mapping[str, Any] | str | None = None,
        answers: Sequence[Mapping[str, Any]] | None = None,
        *,
        items: Sequence[Mapping[str, Any]] | None = None,
        tolerance: Mapping[str, Any] | None = None,
        points: Mapping[str, float] | None = None,
        reveal: bool = False,
        format: GradeFormat = "native",
    ) -> list[dict[str, Any]]:
        """Grade many answers at once (POST /grade/batch), each on its own.

        Either `problem` and `answers` (one problem, a whole class: m answers) or `items`
        (``[{"problem": ..., "answer": ...}, ...]``). Options as in `grade`.

        Returns one entry per answer, in order: a result in the requested format, or, for an answer
        that cannot be graded (e.g. a misspelt key), its problem object (``{"type", "status",
        "detail", "errors"}`` with ``loc`` starting ``["answers", i]``): test with `is_problem`, or
        turn it into an exception with `ServiceError.from_problem`. A bad shared `problem` fails the
        whole request with a ServiceError.
        """
        response = self._run(_grade_batch_request(problem, answers, items, tolerance, points, reveal, format))
        results: list[dict[str, Any]] = response["results"]
        return results

    # POST /problems/sign

    def sign(
        self,
        problem: Mapping[str, Any],
        *,
        expires_in: int | None = None,
        tolerance: Mapping[str, Any] | None = None,
        points: Mapping[str, float] | None = None,
        reveal: bool = False,
        carry_forward: bool | None = None,
        carry_forward_credit: float | None = None,
    ) -> SignedProblem:
        """A token for `problem` to hand out to students (POST /problems/sign, grader keys only).

        The scoring options (as `grade` takes them, and `carry_forward`, `carry_forward_credit`: the
        share of a part's points for a part that follows from a catalogued slip, default 0.5) are
        sealed in the token: a student grading it cannot change them."""
        request = _sign_request(problem, expires_in, tolerance, points, reveal, carry_forward, carry_forward_credit)
        result: SignedProblem = self._run(request)
        return result

    # catalogue and operations

    def mistakes(self) -> list[MistakeInfo]:
        """The catalogue of mistakes the grader names (GET /mistakes)."""
        result: list[MistakeInfo] = self._get("/mistakes")
        return result

    def version(self) -> VersionInfo:
        """The service's and the grading rules' versions (GET /version): record them with grades."""
        result: VersionInfo = self._get("/version")
        return result

    def health(self) -> Health:
        """``{"status": "ok"}`` when the process is alive (GET /healthz); ServiceError otherwise."""
        result: Health = self._get("/healthz")
        return result

    def ready(self) -> bool:
        """Whether the service takes traffic (GET /readyz answers 200; 503 while starting or draining)."""
        try:
            self._get("/readyz")
        except ServiceError as exc:
            if exc.status == 503:
                return False
            raise
        return True

"""check(): grade a learner's function where the learner works (a Jupyter notebook).

    from gradient_service_client import check

    check(compute_gradient_logistic, token)   # shows the grading: per part, the mistake named

The problem travels in the token (signed by the course's grader key, POST /problems/sign): check
reads its data from the token's readable half, runs the learner's function on the learner's own
machine with the arguments the course's labs use, ``(X, y, w, b)`` (numpy arrays when numpy is
installed, else lists), and posts only the function's *outputs* to POST /grade with the token. The
function's code is never sent.

What the function returns decides what is graded:

- a number: the cost J (``compute_cost_logistic``), graded as ``loss``;
- two values, in either order (``dj_dw, dj_db`` or ``dj_db, dj_dw``): the gradients, told apart by
  shape (a number and a vector of n), or, when the shapes cannot tell (n = 1 and a number for each),
  by the names in the function's ``return`` statement (``dj_db``, ``dw``, ...), or `order`;
- a dict: its keys name the parts (``loss``/``cost``, ``dj_dw``/``dw``, ``dj_db``/``db``, and the
  per-example intermediates ``z``, ``f``, ``dL_df``, ``df_dz``, ``dL_dz``).

The service's URL and the (student) API key default to the environment: ``GRADIENT_SERVICE_URL`` and
``GRADIENT_SERVICE_API_KEY``. No scoring option is ever sent: those are sealed in the token.
"""

from __future__ import annotations

import ast
import base64
import html
import inspect
import json
import os
import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import httpx

from gradient_service_client._client import DEFAULT_BASE_URL, Check, GradeResult, GradientClient, to_json_value

__all__ = ["CheckResult", "answer_from_output", "check", "read_token"]

URL_ENV = "GRADIENT_SERVICE_URL"
API_KEY_ENV = "GRADIENT_SERVICE_API_KEY"

PER_SAMPLE = ("z", "f", "dL_df", "df_dz", "dL_dz")
_LOSS_NAMES = ("loss", "cost", "j", "j_wb", "total_cost")
_W_NAMES = ("dj_dw", "djdw", "dw", "grad_w", "w")
_B_NAMES = ("dj_db", "djdb", "db", "grad_b", "b")


def read_token(token: str) -> dict[str, Any]:
    """The readable half of a problem token: ``{"exp": ..., "problem": {...}}`` (and the sealed
    ``grading`` options). It is base64url JSON before the '.'; the part after it is the service's
    signature, which only the service checks (an altered token is refused when graded)."""
    head, sep, mac = token.strip().partition(".")
    if not sep or not head or not mac or "." in mac:
        raise ValueError("This is not a problem token: a token is two parts joined by a dot. Paste the whole token.")
    try:
        content = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)).decode("utf-8"))
    except ValueError:
        raise ValueError("This problem token cannot be read: it was cut short or altered.") from None
    problem = content.get("problem") if isinstance(content, dict) else None
    if not isinstance(problem, dict) or not isinstance(problem.get("model"), str) or "data" not in problem:
        raise ValueError("This token holds no problem check() can run.")
    return content


# --- the learner's arguments and outputs ----------------------------------------------------------


def _shape(value: Any) -> tuple[int, ...] | None:
    """The shape of a number (()), a vector ((n,)) or a matrix; None for anything else."""
    value = to_json_value(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return ()
    if isinstance(value, list):
        inner = [_shape(v) for v in value]
        if inner and all(s is not None and s == inner[0] for s in inner):
            first = inner[0]
            assert first is not None
            return (len(value), *first)
        return (0,) if not value else None
    return None


def _learner_arguments(problem: Mapping[str, Any], use_numpy: bool | None) -> list[Any]:
    """(X, y, w, b) as the course's labs pass them: numpy arrays when numpy is importable."""
    parameters, data = problem.get("parameters"), problem["data"]
    if not isinstance(parameters, Mapping) or "w" not in parameters or "b" not in parameters:
        raise ValueError(f"check() runs functions of (X, y, w, b); a {problem['model']} problem has other parameters")
    X, y, w, b = data["X"], data["y"], parameters["w"], parameters["b"]
    np: Any = None
    if use_numpy is not False:
        try:
            import numpy as np
        except ImportError:
            if use_numpy:
                raise
    if np is None:
        return [[list(map(float, row)) for row in X], list(y), w, b]
    return [np.array(X, dtype=float), np.array(y), np.array(w, dtype=float), np.array(b, dtype=float)[()]]


def _return_names(function: Callable[..., Any]) -> list[str] | None:
    """The names in the function's last ``return a, b`` (read locally, never sent), if any."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return None
    names = None
    for node in ast.walk(tree):
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple):
            elts = node.value.elts
            if all(isinstance(e, ast.Name) for e in elts):
                names = [e.id for e in elts if isinstance(e, ast.Name)]
    return names


def _which(name: str) -> Literal["w", "b"] | None:
    lowered = name.lower()
    if lowered in _W_NAMES or lowered.endswith("dw"):
        return "w"
    if lowered in _B_NAMES or lowered.endswith("db"):
        return "b"
    return None


def answer_from_output(
    output: Any,
    problem: Mapping[str, Any],
    *,
    order: Sequence[str] | str | None = None,
    return_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The /grade answer for what the learner's function returned (see the module's docstring).

    order: ``("w", "b")`` or ``("b", "w")`` (or ``"w,b"``) when a pair's shapes cannot tell.
    return_names: the names of the function's returned values, used when the shapes cannot tell.
    """
    w_shape = _shape(problem["parameters"]["w"])
    b_shape = _shape(problem["parameters"]["b"])
    if isinstance(output, Mapping):
        answer: dict[str, Any] = {}
        for key, value in output.items():
            k = str(key)
            if k in PER_SAMPLE:
                answer.setdefault("per_sample", {})[k] = to_json_value(value)
            elif k.lower() in _LOSS_NAMES:
                answer["loss"] = to_json_value(value)
            elif k == "gradients" and isinstance(value, Mapping):
                answer.setdefault("gradients", {}).update(to_json_value(value))
            elif (part := _which(k)) is not None:
                answer.setdefault("gradients", {})[part] = to_json_value(value)
            else:
                known = ", ".join(("loss", "dj_dw", "dj_db", *PER_SAMPLE))
                raise ValueError(f"check() does not know the key {k!r} in the returned dict (it knows {known})")
        return answer
    if isinstance(output, tuple | list) and len(output) == 2:
        first, second = output
        shapes = (_shape(first), _shape(second))
        if shapes == (w_shape, b_shape) and w_shape != b_shape:
            w, b = first, second
        elif shapes == (b_shape, w_shape) and w_shape != b_shape:
            b, w = first, second
        else:
            parts = _order(order, return_names)
            if parts is None:
                raise ValueError(
                    f"check() cannot tell which returned value is dj_dw (shape {w_shape}) and which dj_db "
                    f"(shape {b_shape}): the function returned shapes {shapes[0]} and {shapes[1]}. "
                    "Pass order=('w', 'b') or order=('b', 'w')."
                )
            w, b = (first, second) if parts == ("w", "b") else (second, first)
        return {"gradients": {"w": to_json_value(w), "b": to_json_value(b)}}
    if _shape(output) == ():
        return {"loss": to_json_value(output)}
    raise ValueError(
        "check() grades a function that returns the cost (a number), the gradients (dj_dw, dj_db in either "
        f"order) or a dict of named parts; this one returned {type(output).__name__} of shape {_shape(output)}"
    )


def _order(order: Sequence[str] | str | None, names: Sequence[str] | None) -> tuple[str, str] | None:
    if order is not None:
        parts = tuple(p.strip() for p in (order.split(",") if isinstance(order, str) else order))
        if parts not in (("w", "b"), ("b", "w")):
            raise ValueError(f"order must be ('w', 'b') or ('b', 'w'); got {order!r}")
        return (parts[0], parts[1])
    if names is not None and len(names) == 2:
        which = (_which(names[0]), _which(names[1]))
        if which in (("w", "b"), ("b", "w")):
            return (str(which[0]), str(which[1]))
    return None


# --- the result -----------------------------------------------------------------------------------


def _fmt(points: float) -> str:
    return f"{points:g}"


class CheckResult:
    """The grading of one check(): `score`, `correct`, `checks` (one per part) and the whole `result`
    (POST /grade's answer); shown as HTML in a notebook, as Markdown or plain text elsewhere."""

    def __init__(self, result: GradeResult, answer: Mapping[str, Any], name: str, base_url: str) -> None:
        self.result = result
        self.answer = dict(answer)
        self.name = name
        self.base_url = base_url

    @property
    def score(self) -> float:
        return self.result["score"]

    @property
    def correct(self) -> bool:
        return self.result["correct"]

    @property
    def checks(self) -> list[Check]:
        return self.result["checks"]

    @property
    def mistakes(self) -> list[str]:
        """The codes of the mistakes named, in the order of the parts (each once)."""
        codes: list[str] = []
        for c in self.checks:
            if c["mistake"] is not None and c["mistake"]["code"] not in codes:
                codes.append(c["mistake"]["code"])
        return codes

    def headline(self) -> str:
        r = self.result
        if r["correct"]:
            verdict = "correct"
        else:
            right = sum(1 for c in r["checks"] if c["correct"])
            verdict = f"not yet correct, {right} of {len(r['checks'])} parts right"
        return f"{self.name}: {verdict} ({_fmt(r['points'])}/{_fmt(r['max_points'])} points, score {r['score']:.2f})"

    def next_step(self) -> str:
        """What to look at next: the first wrong part, through its mistake when one is named."""
        wrong = [c for c in self.checks if not c["correct"]]
        if not wrong:
            return "nothing to fix, every part is right."
        first = wrong[0]
        parts = ", ".join(c["name"] for c in wrong)
        page = f"{self.base_url}/explain"
        if first["mistake"] is not None:
            return (
                f"Look at {parts}: {first['mistake']['title'].lower()} ({first['mistake']['code']}). "
                f"Fix that step, run the cell again, then check again. The chain rule step by step: paste the "
                f"token at {page}."
            )
        return (
            f"Look at {parts}: no catalogued mistake explains it. Print your intermediate values (z, f, f - y) for "
            f"the first example and compare them with the chain rule step by step: paste the token at {page}."
        )

    def _part_lines(self, c: Check) -> tuple[str, str, str]:
        verdict = "correct" if c["correct"] else "wrong"
        mistake = c["mistake"]
        what = f"{mistake['title']} ({mistake['code']}): {mistake['message']}" if mistake else c["message"]
        return verdict, f"{_fmt(c['points'])}/{_fmt(c['max_points'])}", what

    def __str__(self) -> str:
        lines = [self.headline()]
        for c in self.checks:
            verdict, points, what = self._part_lines(c)
            lines.append(f"  {'✓' if c['correct'] else '✗'} {c['name']}: {verdict} ({points}). {what}")
            formula = None if c["correct"] else part_formula(c["name"])
            if formula is not None:
                lines.append(f"      the rule: {formula[1]}")
        lines.append(f"Next: {self.next_step()}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<CheckResult {self.headline()}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's text/plain (a terminal, a plain-text notebook front end): the whole grading."""
        printer.text(str(self))

    def _repr_markdown_(self) -> str:
        lines = [f"**{self.headline()}**", "", "| part | verdict | points | why |", "|---|---|---|---|"]
        for c in self.checks:
            verdict, points, what = self._part_lines(c)
            cell = what.replace("|", "\\|").replace("\n", " ")
            lines.append(f"| `{c['name']}` | {'✓' if c['correct'] else '✗'} {verdict} | {points} | {cell} |")
        rules = [(c["name"], part_formula(c["name"])) for c in self.checks if not c["correct"]]
        lines += [""] + [f"`{name}` follows $${f[0]}$$" for name, f in rules if f is not None]
        lines += ["", f"**Next:** {self.next_step()}"]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        e = html.escape
        colour = "#1a7f37" if self.correct else "#b35900"
        rows = []
        for c in self.checks:
            verdict, points, _ = self._part_lines(c)
            mistake = c["mistake"]
            if mistake is not None:
                named = f"<strong>{e(mistake['title'])}</strong> <code>{e(mistake['code'])}</code>"
                why = f"{named}<br>{e(mistake['message'])}"
            else:
                why = e(c["message"])
            formula = None if c["correct"] else part_formula(c["name"])
            if formula is not None:
                why += f"<div class='formula'>$${e(formula[0])}$$</div>"
            mark = "✓" if c["correct"] else "✗"
            rows.append(
                f"<tr><td><code>{e(c['name'])}</code></td><td style='color:{'#1a7f37' if c['correct'] else '#b35900'}'>"
                f"{mark} {verdict}</td><td>{points}</td><td style='text-align:left'>{why}</td></tr>"
            )
        return (
            f"<div class='gradient-service-check'><p style='color:{colour}'><strong>{e(self.headline())}</strong></p>"
            "<table><thead><tr><th>part</th><th>verdict</th><th>points</th><th>why</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
            f"<p><strong>Next:</strong> {e(self.next_step())}</p></div>"
        )


# The rule each part follows, in the course's notation (LaTeX, and plain text): shown beside a wrong
# part, typeset by the notebook (Jupyter renders $$ … $$ in HTML and Markdown output).
PART_FORMULAS: dict[str, tuple[str, str]] = {
    "loss": (
        r"J = \frac{1}{m} \sum_{i=1}^{m} L\big(f^{(i)}, y^{(i)}\big) + R(w)",
        "J = (1/m) sum_i L(f_i, y_i) + R(w)",
    ),
    "gradients.w": (
        r"\frac{\partial J}{\partial w_j} = \frac{1}{m} \sum_{i=1}^{m}"
        r" \frac{\partial L}{\partial f}\,\frac{\partial f}{\partial z}\, x_j^{(i)} + \frac{\partial R}{\partial w_j}",
        "dJ/dw_j = (1/m) sum_i dL/df * df/dz * x_ij + dR/dw_j",
    ),
    "gradients.b": (
        r"\frac{\partial J}{\partial b} = \frac{1}{m} \sum_{i=1}^{m}"
        r" \frac{\partial L}{\partial f}\,\frac{\partial f}{\partial z}",
        "dJ/db = (1/m) sum_i dL/df * df/dz",
    ),
    "per_sample.z": (r"z^{(i)} = w \cdot x^{(i)} + b", "z_i = w . x_i + b"),
    "per_sample.f": (r"f^{(i)} = g\big(z^{(i)}\big)", "f_i = g(z_i), the activation of z_i"),
    "per_sample.dL_df": (r"\frac{\partial L}{\partial f}", "dL/df, the loss's derivative in f"),
    "per_sample.df_dz": (r"\frac{\partial f}{\partial z} = g'(z)", "df/dz = g'(z), the activation's derivative"),
    "per_sample.dL_dz": (
        r"\frac{\partial L}{\partial z} = \frac{\partial L}{\partial f}\,\frac{\partial f}{\partial z}",
        "dL/dz = dL/df * df/dz",
    ),
}
_LAYER_FORMULAS: dict[str, tuple[str, str]] = {
    "W": (
        r"\frac{\partial J}{\partial W^{[l]}} = \frac{1}{m}\, a^{[l-1]\top} \delta^{[l]}"
        r" + \frac{\partial R}{\partial W^{[l]}},"
        r"\quad \delta^{[l]} = \big(\delta^{[l+1]} W^{[l+1]\top}\big) \odot g'\big(z^{[l]}\big)",
        "dJ/dW[l] = (1/m) a[l-1]^T delta[l] + dR/dW[l], delta[l] = (delta[l+1] W[l+1]^T) * g'(z[l])",
    ),
    "b": (
        r"\frac{\partial J}{\partial b^{[l]}} = \frac{1}{m} \sum_{i=1}^{m} \delta^{[l]}_i",
        "dJ/db[l] = (1/m) sum_i delta[l]_i",
    ),
}


def part_formula(name: str) -> tuple[str, str] | None:
    """The rule a part follows: (LaTeX, plain text), or None for a part without one."""
    if name.startswith("gradients.layers."):
        return _LAYER_FORMULAS.get(name.rsplit(".", 1)[-1])
    return PART_FORMULAS.get(name)


def _takes(function: Callable[..., Any], count: int) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= count or any(p.kind == p.VAR_POSITIONAL for p in parameters)


# --- check ----------------------------------------------------------------------------------------


def check(
    function: Callable[..., Any],
    token: str,
    *,
    url: str | None = None,
    api_key: str | None = None,
    order: Sequence[str] | str | None = None,
    use_numpy: bool | None = None,
    timeout: float = 30.0,
    client: httpx.Client | None = None,
) -> CheckResult:
    """Run `function` on the token's problem here, send its outputs to POST /grade with `token`, and
    return the grading (a CheckResult: a notebook shows it as a table).

    url: the service (default ``$GRADIENT_SERVICE_URL``, else http://127.0.0.1:8000).
    api_key: a student key (default ``$GRADIENT_SERVICE_API_KEY``, else none).
    order: ``("w", "b")`` or ``("b", "w")``, only for a pair of outputs whose shapes and names cannot tell.
    use_numpy: None (default) passes numpy arrays when numpy is importable, lists otherwise; True or
        False forces one.
    client: an httpx.Client to use as the transport (tests).
    Raises ValueError when the token or the function's output cannot be graded, ServiceError when
    the service refuses the request (an expired token, a wrong key: its problem details).
    """
    content = read_token(token)
    problem = content["problem"]
    arguments = _learner_arguments(problem, use_numpy)
    regularization = problem.get("regularization")
    if regularization and _takes(function, 5):
        arguments.append(regularization["lambda"])  # the labs' compute_gradient_logistic_reg(X, y, w, b, lambda_)
    output = function(*arguments)
    answer = answer_from_output(output, problem, order=order, return_names=_return_names(function))
    base_url = url or os.environ.get(URL_ENV) or DEFAULT_BASE_URL
    key = api_key if api_key is not None else (os.environ.get(API_KEY_ENV) or None)
    with GradientClient(base_url, api_key=key, timeout=timeout, client=client) as service:
        result = service.grade(token, answer)
    return CheckResult(result, answer, getattr(function, "__name__", "function"), service.base_url)

"""The golden requests: a fixed, varied set of requests whose exact answers the golden test keeps.

Every model kind and pairing, explain none/factors/full, verify, regularization none/l2/l1, networks
of 1-4 layers, grading with every catalogued mistake (answers made from the reference's own
variants, so each code is named at least once), signed problems, batches, descent, the drawings,
the catalogue, and errors of every kind. The requests are made once, by `python -m
tests.golden.record`, and stored with their answers: the test replays the stored requests, so it
does not depend on this generator staying the same.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "exp", "softplus", "softmax")
LOSSES = ("squared_error", "binary_cross_entropy", "categorical_cross_entropy", "poisson", "absolute_error", "huber")
PRESETS = {
    "linear_regression": ("identity", "squared_error"),
    "logistic_regression": ("sigmoid", "binary_cross_entropy"),
    "softmax_regression": ("softmax", "categorical_cross_entropy"),
    "poisson_regression": ("exp", "poisson"),
}
HIDDEN = ("identity", "sigmoid", "tanh", "relu", "softplus", "exp")
EXPLAINS: tuple[Any, ...] = (None, "factors", "full")
REGULARIZATIONS: tuple[Any, ...] = (None, {"kind": "l2", "lambda": 0.7}, {"kind": "l1", "lambda": 0.3})
# the secret the golden app signs with, and an expiry far ahead, so that tokens are the same every run
SECRET = "golden-secret-" + "g" * 24
EXPIRES = 4_102_444_800  # 2100-01-01


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    body: bytes | None = None
    content_type: str = "application/json"


def _round(a: Any, digits: int = 3) -> Any:
    return np.round(np.asarray(a, dtype=np.float64), digits).tolist()


def _targets(loss: str, rng: np.random.Generator, m: int, k: int) -> Any:
    if loss in ("squared_error", "absolute_error", "huber"):
        return _round(rng.normal(size=m) * 2)
    if loss == "binary_cross_entropy":
        return [float(v) for v in rng.choice([0.0, 0.25, 1.0], size=m)]
    if loss == "poisson":
        return [float(v) for v in rng.integers(0, 5, size=m)]
    if loss == "categorical_cross_entropy":
        if rng.random() < 0.5:
            return [int(v) for v in rng.integers(0, k, size=m)]
        rows = rng.dirichlet(np.ones(k), size=m)
        rows = np.round(rows, 3)
        rows[:, -1] = 1.0 - rows[:, :-1].sum(axis=1)
        return np.round(rows, 3).tolist()
    raise ValueError(loss)


def _single(model: str, activation: str, loss: str, rng: np.random.Generator, **extra: Any) -> dict[str, Any]:
    m, n = int(rng.integers(1, 7)), int(rng.integers(1, 4))
    k = int(rng.integers(2, 4)) if activation == "softmax" else 1
    X = _round(rng.normal(size=(m, n)))
    if k > 1:
        parameters = {"w": _round(rng.normal(size=(n, k)) * 0.5), "b": _round(rng.normal(size=k) * 0.2)}
    else:
        parameters = {"w": _round(rng.normal(size=n) * 0.5), "b": float(np.round(rng.normal() * 0.3, 3))}
    body: dict[str, Any] = {"model": model, "parameters": parameters, "data": {"X": X, "y": _targets(loss, rng, m, k)}}
    if model == "single_layer":
        body["activation"], body["loss"] = activation, loss
    if loss == "huber" and rng.random() < 0.5:
        body["loss_params"] = {"delta": float(np.round(rng.uniform(0.2, 2.0), 2))}
    for key, value in extra.items():
        if value is not None:
            body[key] = value
    return body


def _network(rng: np.random.Generator, depth: int, out: tuple[str, str], **extra: Any) -> dict[str, Any]:
    m, n = int(rng.integers(1, 6)), int(rng.integers(1, 4))
    activation, loss = out
    k = int(rng.integers(2, 4)) if activation == "softmax" else 1
    widths = [n, *(int(rng.integers(1, 4)) for _ in range(depth - 1)), k]
    layers = [{"activation": str(rng.choice(HIDDEN))} for _ in range(depth - 1)] + [{"activation": activation}]
    params = [
        {
            "W": _round(rng.normal(size=(widths[i], widths[i + 1])) * 0.6),
            "b": _round(rng.normal(size=widths[i + 1]) * 0.2),
        }
        for i in range(depth)
    ]
    body: dict[str, Any] = {
        "model": "neural_network",
        "layers": layers,
        "loss": loss,
        "parameters": {"layers": params},
        "data": {"X": _round(rng.normal(size=(m, n))), "y": _targets(loss, rng, m, k)},
    }
    for key, value in extra.items():
        if value is not None:
            body[key] = value
    return body


def _post(name: str, path: str, body: Any) -> Case:
    return Case(name, "POST", path, json.dumps(body).encode())


OUTPUTS = (
    ("identity", "squared_error"),
    ("sigmoid", "binary_cross_entropy"),
    ("softmax", "categorical_cross_entropy"),
    ("exp", "poisson"),
    ("identity", "huber"),
    ("sigmoid", "squared_error"),
    ("tanh", "absolute_error"),
)


def gradient_cases(rng: np.random.Generator) -> Iterator[Case]:
    for model, (activation, loss) in PRESETS.items():
        for explain in EXPLAINS:
            for reg in REGULARIZATIONS:
                for verify in (False, True):
                    for seed in range(2):
                        body = _single(model, activation, loss, rng, explain=explain, regularization=reg)
                        if verify:
                            body["verify"] = True
                        yield _post(
                            f"gradient/{model}/{explain}/{reg and reg['kind']}/{verify}/{seed}", "/gradient", body
                        )
    for activation in ACTIVATIONS:
        for loss in LOSSES:
            for explain in EXPLAINS:
                for reg in REGULARIZATIONS:
                    for seed in range(2):
                        body = _single("single_layer", activation, loss, rng, explain=explain, regularization=reg)
                        if rng.random() < 0.3:
                            body["verify"] = True
                        label = f"{activation}/{loss}/{explain}/{reg and reg['kind']}/{seed}"
                        yield _post(f"gradient/single_layer/{label}", "/gradient", body)


def network_cases(rng: np.random.Generator) -> Iterator[Case]:
    for depth in (1, 2, 3, 4):
        for out in OUTPUTS:
            for explain in EXPLAINS:
                for reg in REGULARIZATIONS[: 3 if depth < 3 else 2]:
                    body = _network(rng, depth, out, explain=explain, regularization=reg)
                    if rng.random() < 0.3:
                        body["verify"] = True
                    yield _post(f"network/{depth}/{out[0]}+{out[1]}/{explain}/{reg and reg['kind']}", "/gradient", body)


def _answer_from(parts: dict[str, Any]) -> dict[str, Any]:
    """An /grade answer from flat parts ("loss", "gradients.w", "per_sample.z", "gradients.layers.0.W")."""
    answer: dict[str, Any] = {}
    for part, value in parts.items():
        node = answer
        keys = part.split(".")
        if keys[:2] == ["gradients", "layers"]:
            layers = answer.setdefault("gradients", {}).setdefault("layers", [])
            i = int(keys[2])
            while len(layers) <= i:
                layers.append({})
            layers[i][keys[3]] = value
            continue
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return answer


def _jsonable(a: Any) -> Any:
    arr = np.asarray(a, dtype=np.float64)
    return float(arr) if arr.ndim == 0 else arr.tolist()


def grading_cases(rng: np.random.Generator) -> Iterator[Case]:
    """Answers made from each problem's own reference and its mistake variants: every code named."""
    from service.http.handlers.grading import reference_for
    from service.http.schemas.gradient import GRADIENT_REQUEST
    from service.settings import Settings

    settings = Settings()
    problems: list[tuple[str, dict[str, Any]]] = []
    for model, (activation, loss) in PRESETS.items():
        for reg in REGULARIZATIONS:
            problems.append((model, _single(model, activation, loss, rng, regularization=reg)))
    for activation, loss in (
        ("sigmoid", "squared_error"),
        ("tanh", "squared_error"),
        ("relu", "huber"),
        ("softplus", "poisson"),
    ):
        for reg in REGULARIZATIONS:
            problems.append(
                (f"{activation}+{loss}", _single("single_layer", activation, loss, rng, regularization=reg))
            )
    for depth in (2, 3):
        for out in OUTPUTS[:4]:
            for reg in REGULARIZATIONS[:2]:
                problems.append((f"network{depth}/{out[0]}", _network(rng, depth, out, regularization=reg)))
    for label, problem in problems:
        ref = reference_for(GRADIENT_REQUEST.validate_json(json.dumps(problem)), settings)
        right = {part: _jsonable(v) for part, v in ref.expected.items()}
        base = f"grade/{label}/{problem.get('regularization') and problem['regularization']['kind']}"
        yield _post(f"{base}/right", "/grade", {"problem": problem, "answer": _answer_from(right), "reveal": True})
        for code, variant in ref.variants.items():
            wrong = {**right, **{part: _jsonable(v) for part, v in variant.items()}}
            yield _post(f"{base}/{code}", "/grade", {"problem": problem, "answer": _answer_from(wrong)})
            only = {part: _jsonable(v) for part, v in variant.items()}
            fmt = ("native", "gradescope", "prairielearn")[int(rng.integers(0, 3))]
            yield _post(
                f"{base}/{code}/only/{fmt}", "/grade", {"problem": problem, "answer": _answer_from(only), "format": fmt}
            )
        yield _post(
            f"{base}/options",
            "/grade",
            {
                "problem": problem,
                "answer": _answer_from(
                    {
                        p: (np.asarray(v) * 1.001).tolist() if isinstance(v, list) else v * 1.001
                        for p, v in right.items()
                    }
                ),
                "tolerance": {"sig_figs": 2},
                "points": {"loss": 2},
                "carry_forward": bool(rng.random() < 0.5),
            },
        )
        bad = {"loss": "NaN", **({"gradients": {"w": [1]}} if "gradients.w" in right else {})}
        yield _post(f"{base}/malformed-values", "/grade", {"problem": problem, "answer": bad})
        yield _post(
            f"{base}/batch",
            "/grade/batch",
            {"problem": problem, "answers": [_answer_from(right), {"loss": 0.0}, 42, {"nope": 1}]},
        )


def signed_cases() -> Iterator[Case]:
    from service.http.security.signing import Signer

    signer = Signer(SECRET.encode())
    problem = {
        "model": "logistic_regression",
        "parameters": {"w": [1.0, 1.0], "b": -3.0},
        "data": {"X": [[0.5, 1.5], [1, 1], [1.5, 0.5], [3, 0.5], [2, 2], [1, 2.5]], "y": [0, 0, 0, 1, 1, 1]},
    }
    grading = {
        "tolerance": {"rtol": 1e-5, "atol": 1e-8},
        "points": {"loss": 2.0},
        "reveal": False,
        "carry_forward": True,
        "carry_forward_credit": 0.5,
    }
    old = signer.sign(problem, EXPIRES)
    sealed = signer.sign(problem, EXPIRES, grading)
    answer = {
        "loss": 0.36686678640551745,
        "gradients": {"w": [-0.20687020897043107, -0.14394676417074018], "b": -0.2171984948563006},
    }
    for label, token in (("unsealed", old), ("sealed", sealed), ("tampered", sealed[:-2] + "AA")):
        yield _post(f"signed/{label}", "/grade", {"problem_token": token, "answer": answer})
        yield _post(f"signed/{label}/batch", "/grade/batch", {"problem_token": token, "answers": [answer, {"loss": 1}]})
        yield _post(f"signed/{label}/items", "/grade/batch", {"items": [{"problem_token": token, "answer": answer}]})


def descent_cases(rng: np.random.Generator) -> Iterator[Case]:
    for model, (activation, loss) in PRESETS.items():
        for lr in (0.01, 0.5, 50.0):
            problem = _single(model, activation, loss, rng)
            body: dict[str, Any] = {"problem": problem, "learning_rate": lr, "steps": int(rng.integers(0, 40))}
            if rng.random() < 0.5:
                body["record_every"] = int(rng.integers(1, 10))
            if model == "logistic_regression":
                body["compare_with"] = {"activation": "sigmoid", "loss": "squared_error"}
            yield _post(f"descent/{model}/{lr}", "/descent", body)
            yield _post(f"descent-plot/{model}/{lr}", "/descent/plot", body)
    for depth in (1, 2, 3):
        for out in OUTPUTS[:4]:
            body = {"problem": _network(rng, depth, out), "learning_rate": 0.1, "steps": 10, "record_every": 5}
            yield _post(f"descent/network/{depth}/{out[0]}", "/descent", body)


def graph_cases(rng: np.random.Generator) -> Iterator[Case]:
    for model, (activation, loss) in PRESETS.items():
        for reg in REGULARIZATIONS:
            yield _post(
                f"graph/{model}/{reg and reg['kind']}",
                "/graph",
                _single(model, activation, loss, rng, regularization=reg),
            )
    for depth in (1, 2, 3):
        yield _post(f"graph/network/{depth}", "/graph", _network(rng, depth, OUTPUTS[1]))


def error_cases(rng: np.random.Generator) -> Iterator[Case]:
    valid = _single("logistic_regression", "sigmoid", "binary_cross_entropy", rng)
    yield Case("error/invalid-json", "POST", "/gradient", b'{"model": ')
    yield Case("error/empty", "POST", "/gradient", b"")
    yield Case("error/not-object", "POST", "/gradient", b"[1, 2]")
    yield Case("error/media-type", "POST", "/gradient", json.dumps(valid).encode(), "text/plain")
    yield Case("error/grade-media-type", "POST", "/grade", b"{}", "text/plain")
    yield Case("error/unknown-route", "GET", "/nope")
    yield Case("error/method", "GET", "/gradient")
    mutations = [
        ("unknown-model", lambda b: b.update(model="quantum")),
        ("missing-data", lambda b: b.pop("data")),
        ("extra-field", lambda b: b.update(bonus=1)),
        ("ragged-X", lambda b: b["data"]["X"].append([1.0])),
        ("w-length", lambda b: b["parameters"].update(w=[1.0] * 9)),
        ("y-length", lambda b: b["data"]["y"].append(1.0)),
        ("bce-target", lambda b: b["data"].update(y=[2.0] * len(b["data"]["y"]))),
        ("nan-literal", None),
        ("huge-number", lambda b: b["parameters"].update(b=1e308)),
        ("overflow", lambda b: b["parameters"].update(w=[800.0] * len(b["parameters"]["w"]))),
        ("string-number", lambda b: b["parameters"].update(b="1")),
        ("bool-number", lambda b: b["parameters"].update(b=True)),
        ("explain-bad", lambda b: b.update(explain="everything")),
        ("reg-bad", lambda b: b.update(regularization={"kind": "l3", "lambda": 1})),
        ("reg-negative", lambda b: b.update(regularization={"kind": "l2", "lambda": -1})),
        ("empty-X", lambda b: b["data"].update(X=[], y=[])),
    ]
    for label, mutate in mutations:
        body = copy.deepcopy(valid)
        if mutate is None:
            text = json.dumps(body).replace(str(body["parameters"]["b"]), "NaN", 1).encode()
            yield Case(f"error/{label}", "POST", "/gradient", text)
            continue
        mutate(body)
        yield _post(f"error/{label}", "/gradient", body)
    for activation in ACTIVATIONS:
        for loss in LOSSES:
            body = _single("single_layer", activation, loss, rng)
            body["data"]["y"] = [-1.5] * len(body["data"]["y"])
            yield _post(f"error/domain/{activation}/{loss}", "/gradient", body)
    net = _network(rng, 2, OUTPUTS[1])
    for label, mutate in (
        ("softmax-hidden", lambda b: b["layers"][0].update(activation="softmax")),
        ("layer-count", lambda b: b["layers"].append({"activation": "relu"})),
        (
            "W-shape",
            lambda b: b["parameters"]["layers"][0]["W"].append([0.1] * len(b["parameters"]["layers"][0]["W"][0])),
        ),
    ):
        body = copy.deepcopy(net)
        mutate(body)
        yield _post(f"error/network/{label}", "/gradient", body)
    yield _post("error/grade/no-problem", "/grade", {"answer": {"loss": 1}})
    yield _post("error/grade/both", "/grade", {"problem": valid, "problem_token": "a.b", "answer": {"loss": 1}})
    yield _post("error/grade/unknown-part", "/grade", {"problem": valid, "answer": {"per_sample": {"q": [1]}}})
    yield _post("error/grade/empty-answer", "/grade", {"problem": valid, "answer": {}})
    yield _post("error/batch/empty", "/grade/batch", {"problem": valid, "answers": []})
    yield _post("error/batch/items-not-objects", "/grade/batch", {"items": [1, 2]})
    yield _post("error/descent/steps", "/descent", {"problem": valid, "learning_rate": 0.1, "steps": 10**9})
    yield _post("error/descent/lr", "/descent", {"problem": valid, "learning_rate": -1, "steps": 1})


def catalogue_cases() -> Iterator[Case]:
    for path in ("/models", "/activations", "/losses", "/pairings", "/mistakes", "/healthz"):
        yield Case(f"get{path}", "GET", path)


def all_cases() -> list[Case]:
    rng = np.random.default_rng(20261203)
    cases = [
        *gradient_cases(rng),
        *network_cases(rng),
        *grading_cases(rng),
        *signed_cases(),
        *descent_cases(rng),
        *graph_cases(rng),
        *error_cases(rng),
        *catalogue_cases(),
    ]
    names = [c.name for c in cases]
    dupes = {n for n in names if names.count(n) > 1}
    out, seen = [], dict.fromkeys(dupes, 0)
    for c in cases:  # a name repeated (a generated label twice) gets a counter
        if c.name in dupes:
            seen[c.name] += 1
            c = Case(f"{c.name}#{seen[c.name]}", c.method, c.path, c.body, c.content_type)
        out.append(c)
    return out

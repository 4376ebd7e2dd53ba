"""The learner's page grading a signed problem with a student key: its markup, and the symbolic derivation it
builds from the catalogue and the page's #chain data (a student may not call /gradient, so the page shows the
token's derivation as formulas only; these tests check that those formulas are /gradient's, step for step)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.compute import catalog
from service.http.schemas.gradient import EXAMPLES
from service.settings import Settings
from tests.api.helpers import assert_problem

S = {"Authorization": "Bearer s-key"}
G = {"Authorization": "Bearer g-key"}


@pytest.fixture(scope="module")
def keyed() -> Iterator[TestClient]:
    settings = Settings(
        api_keys={"g-key": ["grader"], "s-key": ["student"]}, signing_secret="z" * 32, rate_limit_per_minute=0
    )
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
def page(keyed: TestClient) -> str:
    return keyed.get("/explain").text


def _script_json(page: str, element_id: str) -> Any:
    found = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', page, re.S)
    assert found is not None, element_id
    return json.loads(found.group(1))


def test_the_grading_view_has_a_labelled_token_field_and_live_regions(page: str) -> None:
    assert '<label for="problem-token"' in page and '<textarea id="problem-token"' in page
    assert 'aria-describedby="token-help"' in page and 'id="token-help"' in page
    assert '<p id="grade-status" class="status" role="status" aria-live="polite">' in page
    assert '<div id="grade-error" class="error" role="alert">' in page
    for name in ("problem-token", "answer", "reveal"):  # every field of the grading form has its label
        assert f'<label for="{name}"' in page, name
    # without JavaScript the page says how to grade a token through the API
    noscript = re.findall(r"<noscript>(.*?)</noscript>", page, re.S)
    assert any("problem_token" in n and "POST /grade" in n for n in noscript)


def test_the_page_stays_free_of_inline_script_and_style(page: str) -> None:
    scripts = re.findall(r"<script([^>]*)>", page)
    assert all('type="application/json"' in a or "src=" in a for a in scripts), scripts
    assert " style=" not in page
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", page)  # no inline event handler


def _fill(chain: dict[str, Any], problem: dict[str, Any], cat: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The symbolic steps as page.js builds them (symbolicSteps): the skeleton with the catalogue's formulas."""
    pairing = (
        chain["presets"][problem["model"]]
        if problem["model"] != "single_layer"
        else {"activation": problem["activation"], "loss": problem["loss"]}
    )
    act, loss = cat["activations"][pairing["activation"]], cat["losses"][pairing["loss"]]
    pair = cat["pairings"][f"{pairing['activation']}/{pairing['loss']}"]
    shape = "1" if act["outputs"] == "1" else "k"
    reg = problem.get("regularization", {}).get("kind", "")
    sources = {"activation": act, "loss": loss, "pairing": pair}
    steps = []
    for s in chain["steps"][f"{shape}/{reg}"]:
        step = dict(s)
        if "from" in s:
            step.update(sources[s["from"][0]][s["from"][1]])
            del step["from"]
        if "derivation" in s:
            step["derivation"] = sources[s["derivation"]]["derivation"]
        if s["factor"] == "dL/dz":
            step["rule"] = chain["rules"]["canonical" if pair["canonical"] else "chain"]
        steps.append(step)
    return steps


def _problems() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every preset's example and a small problem for every compatible single-layer pairing, each
    without regularization, with l2 and with l1."""
    X = [[0.5, 1.5], [1.0, 1.0], [1.5, 0.5]]
    base: list[tuple[str, dict[str, Any]]] = []
    for model, example in EXAMPLES.items():
        if model == "neural_network":
            continue
        problem = {k: v for k, v in example.items() if k not in ("explain", "regularization")}
        base.append((str(model), problem))
    for p in catalog.pairings():
        if not p["compatible"]:
            continue
        a, lo = p["activation"], p["loss"]
        if a == "softmax":
            params: dict[str, Any] = {"w": [[0.1, 0.2], [0.3, -0.1]], "b": [0.0, 0.1]}
            y: list[Any] = [0, 1, 1] if lo == "categorical_cross_entropy" else [[1, 0], [0, 1], [0, 1]]
        else:
            params, y = {"w": [0.1, 0.2], "b": 0.1}, [0, 1, 1]
        problem = {"model": "single_layer", "activation": a, "loss": lo, "parameters": params, "data": {"X": X, "y": y}}
        base.append((f"{a}/{lo}", problem))
    for name, problem in base:
        yield name, problem
        for kind in ("l2", "l1"):
            yield f"{name}+{kind}", {**problem, "regularization": {"kind": kind, "lambda": 0.5}}


PROBLEMS = list(_problems())


@pytest.fixture(scope="module")
def student_catalogue(keyed: TestClient) -> dict[str, dict[str, Any]]:
    """What the page fetches with a student's key to build the derivation."""
    out: dict[str, dict[str, Any]] = {}
    for path in ("activations", "losses", "pairings"):
        r = keyed.get(f"/{path}", headers=S)
        assert r.status_code == 200, (path, r.text)
        key = (lambda e: f"{e['activation']}/{e['loss']}") if path == "pairings" else (lambda e: e["name"])
        out[path] = {key(e): e for e in r.json()}
    return out


def _steps_without_values(keyed: TestClient, name: str, problem: dict[str, Any]) -> list[dict[str, Any]]:
    """/gradient's breakdown steps (explain full) for `problem`, each without its value."""
    expected = keyed.post("/gradient", json={**problem, "explain": "full"}, headers=G)
    assert expected.status_code == 200, (name, expected.text[:300])
    return [{k: v for k, v in s.items() if k != "value"} for s in expected.json()["breakdown"]["steps"]]


@pytest.mark.parametrize(("name", "problem"), PROBLEMS, ids=[n for n, _ in PROBLEMS])
def test_the_symbolic_derivation_is_the_breakdowns_without_values(
    keyed: TestClient, page: str, student_catalogue: dict[str, dict[str, Any]], name: str, problem: dict[str, Any]
) -> None:
    steps = _steps_without_values(keyed, name, problem)
    assert _fill(_script_json(page, "chain"), problem, student_catalogue) == steps


SKELETON_KEYS = {"factor", "kind", "latex", "text", "from", "derivation", "note", "value_ref"}


def test_the_chain_data_holds_formulas_only_and_the_presets(keyed: TestClient, page: str) -> None:
    chain = _script_json(page, "chain")
    assert sorted(chain["steps"]) == ["1/", "1/l1", "1/l2", "k/", "k/l1", "k/l2"]
    for steps in chain["steps"].values():
        for s in steps:
            assert set(s) <= SKELETON_KEYS  # no "value": not one number of any problem
    models = keyed.get("/models", headers=S).json()
    presets = {m["name"]: {"activation": m["activation"], "loss": m["loss"]} for m in models if m.get("canonical")}
    assert chain["presets"] == presets


def test_a_student_key_reaches_what_the_page_needs_and_nothing_that_computes(keyed: TestClient) -> None:
    problem = {k: v for k, v in EXAMPLES["logistic_regression"].items() if k != "explain"}  # type: ignore[union-attr]
    token = keyed.post("/problems/sign", json={"problem": problem}, headers=G).json()["problem_token"]
    for path in ("/activations", "/losses", "/pairings"):
        assert keyed.get(path, headers=S).status_code == 200
    assert keyed.post("/grade", json={"problem_token": token, "answer": {"loss": 1.0}}, headers=S).status_code == 200
    for path in ("/gradient", "/graph"):
        assert_problem(keyed.post(path, json=problem, headers=S), 403, "forbidden")


# --- neural networks ------------------------------------------------------------------------------


def _fill_network(
    chain: dict[str, Any], problem: dict[str, Any], cat: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """The symbolic steps of a network as page.js builds them (networkSteps): the templates of #chain's
    "network", their placeholders filled in per layer, with the catalogue's formulas where they say so."""
    net = chain["network"]
    names = [layer["activation"] for layer in problem["layers"]]
    L = len(names)
    out_act, loss = cat["activations"][names[-1]], cat["losses"][problem["loss"]]
    pair = cat["pairings"][f"{names[-1]}/{problem['loss']}"]
    reg = problem.get("regularization", {}).get("kind", "")
    sources = {"activation": out_act, "loss": loss, "pairing": pair}

    def fill(t: dict[str, Any], layer: int) -> dict[str, Any]:
        at = {"l": layer, "p": layer - 1, "L": L}
        name = names[at[t["act"]] - 1] if "act" in t else None
        tokens = {
            "{@l}": str(layer),
            "{@p}": str(layer - 1),
            "{@L}": str(L),
            "{@x}": net["first_layer_note"] if layer == 1 else "",
            "{@name}": name or "",
        }

        def sub(s: str, field: str) -> str:
            for token, (src, key) in t.get("fill", {}).items():
                piece = net["activations"][name] if src == "layer" else sources[src]
                s = s.replace(token, piece[key][field])
            for token, value in tokens.items():
                s = s.replace(token, value)
            return s

        step = {k: v for k, v in t.items() if k not in ("from", "fill", "act", "layer", "rule", "derivation")}
        step["factor"] = sub(t["factor"], "text")
        if "layer" in t:
            step["layer"] = at[t["layer"]]
        if "from" in t:
            step.update(sources[t["from"][0]][t["from"][1]])
        else:
            step["latex"], step["text"] = sub(t["latex"], "latex"), sub(t["text"], "text")
        if "derivation" in t:
            src = cat["activations"][name] if t["derivation"] == "layer" else sources[t["derivation"]]
            step["derivation"] = src["derivation"]
        if t.get("rule") == "pairing":
            step["rule"] = chain["rules"]["canonical" if pair["canonical"] else "chain"]
        return step

    steps = [fill(t, layer) for layer in range(1, L + 1) for t in net["forward"]]
    steps += [fill(t, L) for t in net["output"][reg]]
    for layer in range(L, 0, -1):
        steps += [fill(t, layer) for t in net["backward"][reg]]
        if layer > 1:
            steps.append(fill(net["hidden"], layer))
    return steps


def _network(hidden: list[str], output: str, loss: str, reg: str = "") -> dict[str, Any]:
    """A small network: 3 examples of 2 features, hidden layers of 2 units, the output's shape for its loss."""
    X = [[0.5, 1.5], [1.0, -1.0], [-1.5, 0.5]]
    k = 3 if output == "softmax" else 1
    widths = [2] * (len(hidden) + 1) + [k]
    layers = [
        {
            "W": [
                [round(0.3 * (i + 1) - 0.2 * j + 0.1 * n, 2) for j in range(widths[n + 1])] for i in range(widths[n])
            ],
            "b": [round(0.05 * (j - n), 2) for j in range(widths[n + 1])],
        }
        for n in range(len(widths) - 1)
    ]
    y: list[Any] = {
        "categorical_cross_entropy": [0, 2, 1],
        "binary_cross_entropy": [0, 1, 1],
        "squared_error": [0.5, -1.0, 2.0],
    }.get(loss, [0.2, 0.7, 0.4])
    problem: dict[str, Any] = {
        "model": "neural_network",
        "layers": [{"activation": a} for a in [*hidden, output]],
        "loss": loss,
        "parameters": {"layers": layers},
        "data": {"X": X, "y": y},
    }
    if reg:
        problem["regularization"] = {"kind": reg, "lambda": 0.5}
    return problem


NETWORK_SHAPES: list[tuple[list[str], str, str]] = [
    ([], "sigmoid", "binary_cross_entropy"),
    (["relu"], "sigmoid", "binary_cross_entropy"),
    (["tanh"], "softmax", "categorical_cross_entropy"),
    (["sigmoid"], "identity", "squared_error"),
    (["relu", "tanh"], "identity", "squared_error"),
    (["tanh", "sigmoid"], "softmax", "categorical_cross_entropy"),
    (["sigmoid", "relu"], "sigmoid", "binary_cross_entropy"),
    (["softplus", "identity"], "sigmoid", "squared_error"),  # a non-canonical output pairing
    (["exp"], "exp", "poisson"),
]
NETWORKS = [
    (f"{'-'.join([*h, o])}/{lo}" + (f"+{reg}" if reg else ""), _network(h, o, lo, reg))
    for h, o, lo in NETWORK_SHAPES
    for reg in ("", "l2", "l1")
] + [("example", {k: v for k, v in EXAMPLES["neural_network"].items() if k != "explain"})]


TEMPLATE_KEYS = {"factor", "layer", "kind", "latex", "text", "from", "fill", "act", "derivation", "rule"}


def test_the_network_templates_hold_formulas_only(page: str) -> None:
    net = _script_json(page, "chain")["network"]
    templates = [*net["forward"], net["hidden"]]
    for reg in ("", "l2", "l1"):
        templates += net["output"][reg] + net["backward"][reg]
    for t in templates:
        assert set(t) <= TEMPLATE_KEYS, t  # no "value": not one number of any problem
    assert sorted(net["activations"]) == sorted(a["name"] for a in catalog.activations())
    for entry in net["activations"].values():
        assert set(entry) == {"g", "g_prime"}
        assert all(set(f) == {"latex", "text"} for f in entry.values())


@pytest.mark.parametrize(("name", "problem"), NETWORKS, ids=[n for n, _ in NETWORKS])
def test_the_symbolic_network_derivation_is_the_breakdowns_without_values(
    keyed: TestClient, page: str, student_catalogue: dict[str, dict[str, Any]], name: str, problem: dict[str, Any]
) -> None:
    steps = _steps_without_values(keyed, name, problem)
    assert _fill_network(_script_json(page, "chain"), problem, student_catalogue) == steps

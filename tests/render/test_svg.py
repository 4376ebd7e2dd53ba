"""service.render: the SVG drawings are well-formed, carry exactly the computed numbers, and escape text."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.http.schemas.descent import EXAMPLE as DESCENT_EXAMPLE
from service.http.schemas.gradient import EXAMPLES
from service.render import svg
from service.render.curve import cost_curves
from service.render.derivation import derivation_html, step_id
from service.render.graph import MAX_EXAMPLES_DRAWN, NoBreakdown, gradient_graph
from service.render.svg import attrs, data_json, text

NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app()) as c:
        yield c


def _problem(model: str) -> dict[str, Any]:
    return {k: v for k, v in EXAMPLES[model].items() if k not in ("explain", "verify")}  # type: ignore[index]


def _result(client: TestClient, problem: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/gradient", json={**problem, "explain": "factors"})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _parse(doc: str) -> ET.Element:
    root = ET.fromstring(doc)
    assert root.tag == NS + "svg"
    # the page's CSP (style-src 'self') would block these: the drawings use presentation attributes only
    assert not list(root.iter(NS + "style"))
    assert all("style" not in el.attrib for el in root.iter())
    assert not list(root.iter(NS + "script")) and not list(root.iter(NS + "foreignObject"))
    return root


def _nodes(root: ET.Element) -> dict[tuple[str, str | None], ET.Element]:
    return {
        (g.attrib["data-node"], g.attrib.get("data-example")): g for g in root.iter(NS + "g") if "data-node" in g.attrib
    }


def _edges(root: ET.Element) -> dict[tuple[str, str, str | None], ET.Element]:
    return {
        (g.attrib["data-from"], g.attrib["data-to"], g.attrib.get("data-example")): g
        for g in root.iter(NS + "g")
        if "data-from" in g.attrib
    }


def _json(el: ET.Element, attr: str) -> Any:
    import json

    return json.loads(el.attrib[attr])


@pytest.mark.parametrize("model", [m for m in EXAMPLES if m != "neural_network"])
def test_single_layer_graph_shows_the_computed_values(client: TestClient, model: str) -> None:
    problem = _problem(model)
    result = _result(client, problem)
    ps = result["breakdown"]["per_sample"]
    root = _parse(gradient_graph(problem, result))
    nodes, edges = _nodes(root), _edges(root)
    m = len(problem["data"]["X"])
    shown = min(m, MAX_EXAMPLES_DRAWN)
    assert _json(nodes["w", None], "data-value") == problem["parameters"]["w"]
    assert _json(nodes["w", None], "data-grad") == result["gradients"]["w"]
    assert _json(nodes["b", None], "data-grad") == result["gradients"]["b"]
    assert _json(nodes["J", None], "data-value") == result["loss"]
    for i in range(shown):
        e = str(i)
        assert _json(nodes["x", e], "data-value") == problem["data"]["X"][i]
        assert _json(nodes["z", e], "data-value") == ps["z"][i]
        assert _json(nodes["z", e], "data-grad") == ps["dL_dz"][i]
        assert _json(nodes["f", e], "data-value") == ps["f"][i]
        assert _json(nodes["f", e], "data-grad") == ps["dL_df"][i]
        assert _json(nodes["L", e], "data-value") == ps["loss"][i]
        assert _json(edges["z", "f", e], "data-local") == ps["df_dz"][i]
        assert _json(edges["f", "L", e], "data-local") == ps["dL_df"][i]
        assert _json(edges["w", "z", e], "data-local") == problem["data"]["X"][i]
        assert _json(edges["b", "z", e], "data-local") == 1.0
        assert _json(edges["L", "J", e], "data-local") == 1.0 / m
    assert ("z", str(shown)) not in nodes
    labels = [t.text for t in root.iter(NS + "text")]
    if model == "softmax_regression":  # a k×k Jacobian per example is named, not printed
        assert "∂f/∂z: 3×3 Jacobian" in labels
    assert (
        f"{m - shown} more examples not drawn (only the first {shown} of m = {m}); "
        "J and the gradients are over all of them." in labels
    )


def test_network_graph_is_drawn_layer_by_layer(client: TestClient) -> None:
    problem = _problem("neural_network")
    result = _result(client, problem)
    bd = result["breakdown"]
    root = _parse(gradient_graph(problem, result, max_examples=2))
    nodes, edges = _nodes(root), _edges(root)
    for li, layer in enumerate(bd["layers"], start=1):
        assert _json(nodes[f"W[{li}]", None], "data-value") == problem["parameters"]["layers"][li - 1]["W"]
        assert _json(nodes[f"W[{li}]", None], "data-grad") == result["gradients"]["layers"][li - 1]["W"]
        assert _json(nodes[f"b[{li}]", None], "data-grad") == result["gradients"]["layers"][li - 1]["b"]
        for i in range(2):
            assert _json(nodes[f"z[{li}]", str(i)], "data-value") == layer["z"][i]
            assert _json(nodes[f"z[{li}]", str(i)], "data-grad") == layer["delta"][i]
    for i in range(2):
        assert _json(nodes["a[1]", str(i)], "data-value") == bd["layers"][0]["a"][i]
        assert _json(edges["z[1]", "a[1]", str(i)], "data-local") == bd["layers"][0]["g_prime"][i]
        assert _json(edges["W[2]", "z[2]", str(i)], "data-local") == bd["layers"][0]["a"][i]
        assert _json(edges["z[2]", "f", str(i)], "data-local") == bd["per_sample"]["df_dz"][i]
        assert _json(nodes["f", str(i)], "data-value") == bd["per_sample"]["f"][i]
        assert _json(nodes["L", str(i)], "data-value") == bd["per_sample"]["loss"][i]
    assert ("z[1]", "2") not in nodes


def test_graph_needs_a_breakdown(client: TestClient) -> None:
    problem = _problem("linear_regression")
    result = client.post("/gradient", json=problem).json()
    with pytest.raises(NoBreakdown):
        gradient_graph(problem, result)


def test_text_and_attributes_are_escaped(client: TestClient) -> None:
    hostile = "</text><script>alert(1)</script> & \"quoted\" 'single' <b>"
    el = ET.fromstring(f"<svg xmlns='http://www.w3.org/2000/svg'>{text(1, 2, hostile, data_x=hostile)}</svg>")
    (t,) = list(el)
    assert t.text == hostile and t.attrib["data-x"] == hostile
    assert attrs(class_="a<b", data_v='"') == 'class="a&lt;b" data-v=\'"\''
    problem = _problem("logistic_regression")
    result = copy.deepcopy(_result(client, problem))
    result["model"] = hostile
    result["pairing"]["loss"] = hostile
    root = _parse(gradient_graph(problem, result))
    assert hostile in root.find(NS + "title").text  # type: ignore[operator,union-attr]
    with pytest.raises(ValueError):
        data_json(float("nan"))  # never an invalid JSON number in an attribute


def test_numbers_read_as_a_learner_writes_them() -> None:
    assert svg.num(-0.000123456) == "−0.0001235"
    assert svg.num(None) == "n/a"
    assert svg.short([1.0, 2.0, 3.0, 4.0]) == "[1, 2, 3, … 4 in all]"
    assert svg.short([[1.0, -2.5]]) == "[[1, −2.5]]"


def test_cost_curves_side_by_side(client: TestClient) -> None:
    result = client.post("/descent", json=DESCENT_EXAMPLE).json()
    root = _parse(cost_curves(result))
    runs = [g for g in root.iter(NS + "g") if g.attrib.get("class") == "run"]
    assert len(runs) == 2
    for g, run in zip(runs, result["runs"], strict=True):
        (line,) = list(g.iter(NS + "polyline"))
        assert _json(line, "data-loss") == run["history"]["loss"]
        assert _json(line, "data-steps") == list(range(len(run["history"]["loss"])))
        assert g.attrib["data-status"] == run["status"]
        points = [tuple(map(float, p.split(","))) for p in line.attrib["points"].split()]
        ys = [y for _, y in points]
        # J falls, so the curve rises on the page's y axis (SVG's y grows downwards)
        assert ys[0] < ys[-1]
    assert root.attrib["width"] == "880"


def test_cost_curve_of_one_step_and_of_a_flat_cost(client: TestClient) -> None:
    body = {**DESCENT_EXAMPLE, "steps": 0}
    body.pop("compare_with")
    result = client.post("/descent", json=body).json()
    root = _parse(cost_curves(result))
    assert len(list(root.iter(NS + "circle"))) == 1
    flat = copy.deepcopy(result)
    flat["runs"][0]["history"]["loss"] = [2.0, 2.0, 2.0]
    _parse(cost_curves(flat))


def test_long_histories_are_thinned() -> None:
    losses = [1.0 / (t + 1) for t in range(5001)]
    run = {
        "pairing": {"activation": "sigmoid", "loss": "binary_cross_entropy", "canonical": True},
        "status": "completed",
        "steps_taken": 5000,
        "learning_rate": 0.1,
        "history": {"loss": losses, "gradient_norm": losses},
        "final": {"loss": losses[-1]},
    }
    root = _parse(cost_curves({"runs": [run]}))
    (line,) = list(root.iter(NS + "polyline"))
    steps = _json(line, "data-steps")
    assert len(steps) <= 2000 and steps[0] == 0 and steps[-1] == 5000


def test_derivation_fragment(client: TestClient) -> None:
    problem = _problem("logistic_regression")
    result = client.post("/gradient", json={**problem, "explain": "full"}).json()
    html = derivation_html(problem, result)
    root = ET.fromstring(f"<div>{html}</div>")  # well-formed: every text escaped, every element closed
    steps = [li for li in root.iter("li") if "step" in li.attrib.get("class", "").split()]
    assert [li.attrib["data-factor"] for li in steps] == [s["factor"] for s in result["breakdown"]["steps"]]
    for li, step in zip(steps, result["breakdown"]["steps"], strict=True):
        assert li.attrib["id"] == step_id(step["factor"])
        assert li.find("div").attrib["data-latex"] == step["latex"]  # type: ignore[union-attr]
        assert (li.find("details") is not None) == ("derivation" in step)
    (canonical,) = [li for li in steps if "canonical" in li.attrib["class"]]
    assert canonical.attrib["data-factor"] == "dL/dz" and canonical.find("aside") is not None
    assert step_id("dJ/dW[2]") == "step-dJ-dW-2"


def test_render_imports_no_web_framework() -> None:
    """service.render (and service.web's asset table) draw from JSON alone: no web stack, no compute."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    probe = (
        "import json, sys\n"
        "import service.render.graph, service.render.curve, service.render.derivation, service.web\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", probe], cwd=root, env=env, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    forbidden = {"fastapi", "starlette", "pydantic", "uvicorn", "httpx", "numpy"}
    assert not sorted(m for m in loaded if m.split(".")[0] in forbidden)

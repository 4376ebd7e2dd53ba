"""The learner's page (GET /explain), server-rendered with the course's worked example.

Everything on it is computed through the same parse → prepare → compute path as POST /gradient,
POST /graph and POST /descent/plot, then drawn by `service.render` from the JSON those endpoints
return; the page's script redraws it from the public API when the learner edits the problem.
"""

from __future__ import annotations

import json
from html import escape
from string import Template
from typing import Any

import orjson

from service import __version__
from service.compute import catalog
from service.compute.activations import ACTIVATIONS
from service.compute.breakdown import REGULARIZATION_NOTE, RULE_CANONICAL, RULE_CHAIN
from service.compute.domains import Formula
from service.compute.model_names import ModelName
from service.compute.pairings import PRESETS, rhs
from service.compute.step_formulas import (
    FIRST_LAYER_NOTE,
    a_formula,
    chain_formulas,
    cost_formula,
    db_formula,
    dW_formula,
    g_prime_formula,
    hidden_delta_formula,
    output_delta_formula,
    z_formula,
)
from service.grading.formula_targets import PRESETS as FORMULA_MODELS
from service.grading.formula_targets import TARGETS
from service.grading.mistakes import derivation_steps
from service.http.handlers.descent import run_descent
from service.http.handlers.objectives import prepare
from service.http.handlers.responses import gradient_response
from service.http.schemas.descent import DESCENT_REQUEST
from service.http.schemas.gradient import EXAMPLES, GRADIENT_REQUEST
from service.http.wire.arrays import request_json
from service.http.wire.encoding import dumps
from service.http.wire.json import parse
from service.render.curve import cost_curves
from service.render.derivation import derivation_html
from service.render.graph import gradient_graph
from service.settings import Settings
from service.web import KATEX_VERSION, template, url

WORKED = ModelName.LOGISTIC_REGRESSION
DESCENT_DEFAULTS: dict[str, Any] = {"learning_rate": 1.0, "steps": 200}
COMPARE_DEFAULT = "sigmoid/squared_error"

# Content-Security-Policy of the page: every script, style, font and request stays on this origin.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; font-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def as_json(body: dict[str, Any]) -> dict[str, Any]:
    """A response body exactly as a client receives it (numpy arrays become lists)."""
    result: dict[str, Any] = orjson.loads(dumps(body))
    return result


def evaluate_json(req: Any, settings: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    """The problem and its /gradient response with the breakdown, both as JSON objects."""

    req = req.model_copy(update={"verify": False, "explain": "full" if req.explain == "full" else "factors"})
    body = gradient_response(prepare(req, settings))
    return request_json(req), as_json(body)  # an array X (array path, .npy part) as the lists drawings read


def _problem_only(example: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in example.items() if k not in ("explain", "verify")}


def _options(items: list[tuple[str, str]], selected: str) -> str:
    return "".join(
        f'<option value="{escape(v)}"{" selected" if v == selected else ""}>{escape(label)}</option>'
        for v, label in items
    )


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": "))


def _formula(f: Any) -> dict[str, str]:
    return {"latex": f.latex, "text": f.text}


def symbolic_chain() -> dict[str, Any]:
    """The derivation of a single-layer problem as formulas only, for grading a signed problem.

    A student's key may not call /gradient, so the page cannot ask for the token's breakdown; but the
    steps' formulas are the same for every problem of a kind: those of the activation and the loss come
    from the catalogue (which a student may read; `from` names the entry and its field), the others
    depend only on the output's shape ("1" or "k" outputs) and the regularization, and are given here.
    Filled in, they are exactly the steps of /gradient's breakdown, without a single value.
    """
    skeletons: dict[str, list[dict[str, Any]]] = {}
    for shape, vector in (("1", False), ("k", True)):
        for reg in ("", "l2", "l1"):
            c = chain_formulas(vector, reg or None)
            steps: list[dict[str, Any]] = [
                {"factor": "z", "kind": "forward", **_formula(c.z)},
                {"factor": "f", "kind": "forward", "from": ["activation", "formula"]},
                {"factor": "L", "kind": "forward", "from": ["loss", "formula"]},
                {"factor": "J", "kind": "forward", **_formula(c.J)},
                {"factor": "dL/df", "kind": "local", "from": ["loss", "derivative"], "derivation": "loss"},
                {"factor": "df/dz", "kind": "local", "from": ["activation", "derivative"], "derivation": "activation"},
                {"factor": "dL/dz", "kind": "chain", "from": ["pairing", "dL_dz"]},
                {"factor": "dz/dw", "kind": "local", **_formula(c.dz_dw), "value_ref": "data.X"},
                {"factor": "dz/db", "kind": "local", **_formula(c.dz_db)},
            ]
            if c.dR_dw is not None:
                steps.append(
                    {"factor": "dR/dw", "kind": "regularization", **_formula(c.dR_dw), "note": REGULARIZATION_NOTE}
                )
            steps.append({"factor": "dJ/dw", "kind": "aggregate", **_formula(c.dJ_dw)})
            steps.append({"factor": "dJ/db", "kind": "aggregate", **_formula(c.dJ_db)})
            skeletons[f"{shape}/{reg}"] = steps
    return {
        "steps": skeletons,
        "rules": {"canonical": RULE_CANONICAL, "chain": RULE_CHAIN},
        "presets": {str(m): {"activation": str(a), "loss": str(lo)} for m, (a, lo) in PRESETS.items()},
        "network": symbolic_network(),
    }


# Placeholders of the network's step templates, filled in by the page (page.js, networkSteps).
# Layers: "{@l}" the layer, "{@p}" the one below it (l − 1), "{@L}" the output layer, "{@x}" the
# first layer's note (empty for the others). "{@name}" is the name of the activation of the layer the
# template's "act" names ("l" or "p"); a template's "fill" maps other placeholders to a formula whose
# LaTeX goes into "latex" and whose text into "text": ["pairing", "dL_dz"] from the catalogue's pairing,
# ["layer", "g"] or ["layer", "g_prime"] from "activations" below, for that layer's activation.
_LAYER, _BELOW, _OUTPUT, _FIRST, _NAME = "{@l}", "{@p}", "{@L}", "{@x}", "{@name}"
_G, _G_PRIME, _DL_DZ = "{@g}", "{@gp}", "{@dz}"


def _slot(token: str) -> Formula:
    return Formula(token, token)


def symbolic_network() -> dict[str, Any]:
    """The derivation of a neural network as step templates, for grading a signed network problem.

    Filled in for a problem's layers (their activations), loss and regularization, in the order
    forward (z[l], a[l] for l = 1..L), output (L, J, ∂L/∂f, ∂f/∂z, δ[L]), then backward for l = L..1
    (∂J/∂W[l], ∂J/∂b[l], and δ[l−1] when l > 1), they are exactly the steps of /gradient's network
    breakdown without their values: the templates are written by the functions that write those steps.
    The loss's formulas and the output activation's ∂f/∂z come from the catalogue (`from`, as for a
    single layer); the right-hand sides g(z) and g′(z) a layer needs, which the catalogue gives only
    inside whole equations, are here under "activations".
    """
    output: dict[str, list[dict[str, Any]]] = {}
    backward: dict[str, list[dict[str, Any]]] = {}
    for reg in ("", "l2", "l1"):
        output[reg] = [
            {"factor": "L", "layer": "L", "kind": "forward", "from": ["loss", "formula"]},
            {"factor": "J", "kind": "forward", **_formula(cost_formula(reg or None))},
            {"factor": "dL/df", "layer": "L", "kind": "local", "from": ["loss", "derivative"], "derivation": "loss"},
            {
                "factor": "df/dz",
                "layer": "L",
                "kind": "local",
                "from": ["activation", "derivative"],
                "derivation": "activation",
            },
            {
                "factor": f"delta[{_OUTPUT}]",
                "layer": "L",
                "kind": "chain",
                **_formula(output_delta_formula(_OUTPUT, _slot(_DL_DZ))),
                "fill": {_DL_DZ: ["pairing", "dL_dz"]},
                "rule": "pairing",
            },
        ]
        backward[reg] = [
            {
                "factor": f"dJ/dW[{_LAYER}]",
                "layer": "l",
                "kind": "aggregate",
                **_formula(dW_formula(_LAYER, _BELOW, reg or None)),
            },
            {"factor": f"dJ/db[{_LAYER}]", "layer": "l", "kind": "aggregate", **_formula(db_formula(_LAYER))},
        ]
    return {
        "forward": [
            {
                "factor": f"z[{_LAYER}]",
                "layer": "l",
                "kind": "forward",
                **_formula(z_formula(_LAYER, _BELOW, _FIRST)),
            },
            {
                "factor": f"a[{_LAYER}]",
                "layer": "l",
                "kind": "forward",
                "act": "l",
                **_formula(a_formula(_LAYER, _NAME, _slot(_G))),
                "fill": {_G: ["layer", "g"]},
            },
        ],
        "output": output,
        "backward": backward,
        "hidden": {
            "factor": f"delta[{_BELOW}]",
            "layer": "p",
            "kind": "chain",
            "act": "p",
            **_formula(hidden_delta_formula(_LAYER, _BELOW, _slot(_G_PRIME), _NAME)),
            "fill": {_G_PRIME: ["layer", "g_prime"]},
            "derivation": "layer",
        },
        "first_layer_note": FIRST_LAYER_NOTE,
        "activations": {
            str(name): {
                "g": _formula(rhs(act.formula)),
                "g_prime": _formula(g_prime_formula(act.derivative_formula, _BELOW)),
            }
            for name, act in ACTIVATIONS.items()
        },
    }


def explain_page(settings: Settings) -> str:

    example = EXAMPLES[WORKED]
    problem, result = evaluate_json(parse(GRADIENT_REQUEST, orjson.dumps({**example, "explain": "full"})), settings)
    descent_body = {
        "problem": _problem_only(example),
        **DESCENT_DEFAULTS,
        "compare_with": dict(zip(("activation", "loss"), COMPARE_DEFAULT.split("/"), strict=True)),
    }
    descent = as_json(run_descent(parse(DESCENT_REQUEST, orjson.dumps(descent_body)), settings))
    pairings = [
        (
            f"{p['activation']}/{p['loss']}",
            f"{p['activation']} + {p['loss']}" + (" (canonical)" if p["canonical"] else ""),
        )
        for p in catalog.pairings()
        if p["compatible"]
    ]
    network = EXAMPLES[ModelName.NEURAL_NETWORK]
    examples = {str(model): _problem_only(ex) for model, ex in EXAMPLES.items()}
    reg = example.get("regularization") or {}
    values = {
        "katex_css": url("katex/katex.min.css"),
        "katex_js": url("katex/katex.min.js"),
        "katex_license": url("katex/LICENSE"),
        "page_css": url("page.css"),
        "page_js": url("page.js"),
        "formula_model_options": _options([(m, m) for m in FORMULA_MODELS], "logistic_regression"),
        "formula_target_options": _options([(t, t) for t in TARGETS], "dL/dw_j"),
        "katex_version": KATEX_VERSION,
        "version": escape(__version__),
        "model_options": _options([(str(m), str(m)) for m in EXAMPLES], str(WORKED)),
        "pairing_options": _options(pairings, "sigmoid/squared_error"),
        "pairing_disabled": "" if WORKED == ModelName.SINGLE_LAYER else " disabled",
        "reg_options": _options(
            [("", "none"), ("l2", "l2: λ/(2m) Σ w²"), ("l1", "l1: (λ/m) Σ |w|")], reg.get("kind", "")
        ),
        "reg_lambda": escape(str(reg.get("lambda", 0.0))),
        "architecture": escape(_compact({"layers": network["layers"], "loss": network["loss"]})),
        "data": escape(_compact(example["data"])),
        "parameters": escape(_compact(example["parameters"])),
        "derivation": derivation_html(problem, result),
        "graph": gradient_graph(problem, result),
        "learning_rate": str(DESCENT_DEFAULTS["learning_rate"]),
        "steps": str(DESCENT_DEFAULTS["steps"]),
        "compare_options": _options([("", "nothing (one run)"), *pairings], COMPARE_DEFAULT),
        "descent_summary": escape(descent.get("comparison", "")),
        "curve": cost_curves(descent),
        "answer_placeholder": escape('{"loss": 0.5, "gradients": {"w": [0.1, 0.2], "b": 0.3}}'),
        # JSON inside a script element: "<" is escaped so no value can close the element
        "examples": json.dumps(examples).replace("<", "\\u003c"),
        "chain": json.dumps(symbolic_chain()).replace("<", "\\u003c"),
        "mistake_steps": json.dumps(derivation_steps()).replace("<", "\\u003c"),
    }
    return Template(template("explain.html")).substitute(values)

"""`{"formula": ...}` in place of an activation or a loss, over HTTP: gradients against autograd, canonical
detection, verification, the breakdown's derived formulas and steps (KaTeX-parsed), errors, networks,
/grade and /descent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.app import create_app
from service.settings import Settings
from tests.api.helpers import all_finite, strict_loads
from tests.latex import collect_latex, katex_errors

X = [[0.5, 1.5], [1.0, 1.0], [1.5, 0.5], [3.0, 0.5], [2.0, 2.0], [1.0, 2.5]]
Y = [0.2, -0.4, 1.0, 0.7, -1.2, 0.3]
W, B = [0.3, -0.2], 0.1
FUZZ_FORMULAS = settings(
    max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
EXAMPLE = {"activation": {"formula": "tanh(z/2)"}, "loss": {"formula": "log(cosh(f - y))"}}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    """One app for the module: its formula workers (SymPy imported) start once, not per test."""
    with TestClient(create_app()) as c:
        yield c


def body(activation: Any, loss: Any, **extra: Any) -> dict[str, Any]:
    return {
        "model": "single_layer",
        "activation": activation,
        "loss": loss,
        "parameters": {"w": W, "b": B},
        "data": {"X": X, "y": Y},
        **extra,
    }


def post(client: TestClient, payload: dict[str, Any], status: int = 200) -> dict[str, Any]:
    r = client.post("/gradient", json=payload)
    assert r.status_code == status, r.text[:1000]
    return r.json()  # type: ignore[no-any-return]


def _autograd_J(g: Any, L: Any, y: Any) -> Any:
    Xa, ya = np.asarray(X), np.asarray(y)

    def J(theta: Any) -> Any:
        return anp.mean(L(g(Xa @ theta[:2] + theta[2]), ya))

    return J


def test_the_issues_example_gives_autograds_gradients(client: TestClient) -> None:
    out = post(client, body(**EXAMPLE))
    J = _autograd_J(lambda z: anp.tanh(z / 2), lambda f, y: anp.log(anp.cosh(f - y)), Y)
    theta = np.array([*W, B])
    grad = autograd.grad(J)(theta)
    assert out["loss"] == pytest.approx(float(J(theta)), rel=1e-12)
    np.testing.assert_allclose(out["gradients"]["w"], grad[:2], rtol=1e-10)
    assert out["gradients"]["b"] == pytest.approx(grad[2], rel=1e-10)
    assert out["pairing"]["canonical"] is False
    assert out["pairing"]["activation"]["formula"] == "tanh(z/2)"
    assert out["pairing"]["loss"]["formula"] == "log(cosh(f - y))"


def test_exp_with_the_poisson_formula_is_canonical(client: TestClient) -> None:
    counts = [1, 0, 2, 4, 3, 1]
    out = post(
        client,
        {
            **body({"formula": "exp(z)"}, {"formula": "f - y*log(f)", "targets": {"min": 0, "integer": True}}),
            "data": {"X": X, "y": counts},
            "explain": "factors",
        },
    )
    assert out["pairing"]["canonical"] is True
    steps = {s["factor"]: s for s in out["breakdown"]["steps"]}
    assert steps["dL/dz"]["text"] == "dL/dz = f - y"
    assert out["breakdown"]["simplification"]["cancellation"]["text"].endswith("= f - y")
    z = np.asarray(X) @ np.asarray(W) + B
    np.testing.assert_allclose(out["breakdown"]["per_sample"]["dL_dz"], np.exp(z) - counts, rtol=1e-12)


def test_a_formula_equal_to_a_catalogue_pairing_gives_its_numbers(client: TestClient) -> None:
    labels = [0, 0, 0, 1, 1, 1]
    named = post(client, {**body("sigmoid", "binary_cross_entropy"), "data": {"X": X, "y": labels}})
    written = post(
        client,
        {
            **body(
                {"formula": r"\frac{1}{1 + e^{-z}}"},
                {"formula": "-y log(f) - (1 - y) log(1 - f)", "targets": {"min": 0, "max": 1}},
            ),
            "data": {"X": X, "y": labels},
        },
    )
    assert written["pairing"]["canonical"] is True and named["pairing"]["canonical"] is True
    assert written["loss"] == pytest.approx(named["loss"], rel=1e-12)
    np.testing.assert_allclose(written["gradients"]["w"], named["gradients"]["w"], rtol=1e-12)
    assert written["gradients"]["b"] == pytest.approx(named["gradients"]["b"], rel=1e-12)


def test_verify_agrees_for_formulas(client: TestClient) -> None:
    out = post(client, body(**EXAMPLE, verify=True))
    assert out["verification"]["agrees"] is True


def test_explain_full_shows_the_derived_formulas_and_steps_in_katex(client: TestClient) -> None:
    out = post(client, body(**EXAMPLE, explain="full"))
    steps = {s["factor"]: s for s in out["breakdown"]["steps"]}
    assert steps["f"]["text"] == "f = tanh(z/2)"
    assert steps["df/dz"]["text"].startswith("df/dz = ")
    assert steps["dL/df"]["text"].startswith("dL/df = ")
    rules = {d["rule"] for d in steps["df/dz"]["derivation"]}
    assert {"definition", "function", "chain"} <= rules
    assert {d["rule"] for d in steps["dL/df"]["derivation"]} >= {"log", "chain"}
    assert katex_errors(collect_latex(out)) == []


def test_a_hidden_layer_and_the_output_of_a_network_take_formulas(client: TestClient) -> None:
    W1, b1, W2, b2 = [[0.5, -0.4], [0.2, 0.6]], [0.1, 0.0], [[0.7], [-0.3]], [0.05]
    payload = {
        "model": "neural_network",
        "layers": [{"activation": {"formula": "z/(1 + abs(z))"}}, {"activation": {"formula": "tanh(z/2)"}}],
        "loss": {"formula": "log(cosh(f - y))"},
        "parameters": {"layers": [{"W": W1, "b": b1}, {"W": W2, "b": b2}]},
        "data": {"X": X, "y": Y},
        "explain": "full",
        "verify": True,
    }
    out = post(client, payload)
    Xa, ya = np.asarray(X), np.asarray(Y)

    def J(params: Any) -> Any:
        A, a, Bm, bb = params
        h = Xa @ A + a
        h = h / (1 + anp.abs(h))
        f = anp.tanh((h @ Bm + bb)[:, 0] / 2)
        return anp.mean(anp.log(anp.cosh(f - ya)))

    params = [np.asarray(W1), np.asarray(b1), np.asarray(W2), np.asarray(b2)]
    grads = autograd.grad(J)(params)
    assert out["loss"] == pytest.approx(float(J(params)), rel=1e-12)
    np.testing.assert_allclose(out["gradients"]["layers"][0]["W"], grads[0], rtol=1e-9)
    np.testing.assert_allclose(out["gradients"]["layers"][1]["b"], grads[3], rtol=1e-9)
    assert out["verification"]["agrees"] is True
    assert katex_errors(collect_latex(out["breakdown"])) == []


@pytest.mark.parametrize(
    ("activation", "loss", "slug", "loc"),
    [
        ({"formula": "z^"}, "squared_error", "formula-error", ["activation"]),
        ({"formula": "tanh(x_j)"}, "squared_error", "formula-error", ["activation"]),
        ("identity", {"formula": "log(f"}, "formula-error", ["loss"]),
        ({"formula": "z + z" * 600}, "squared_error", "formula-too-complex", ["activation"]),
        ({"formula": "10^10^10 * z"}, "squared_error", "formula-too-complex", ["activation"]),
        ({"formula": "__import__('os')"}, "squared_error", "formula-error", ["activation"]),
        ({"formula": "max(0, z)"}, "squared_error", "formula-error", ["activation"]),
        ({"formula": "tanh(" * 62 + "z" + ")" * 62}, "squared_error", "formula-too-complex", ["activation"]),
    ],
)
def test_formulas_that_do_not_read_are_clean_422s(
    client: TestClient, activation: Any, loss: Any, slug: str, loc: list[str]
) -> None:
    out = post(client, body(activation, loss), 422)
    assert out["type"].endswith(":" + slug)
    assert out["errors"][0]["loc"] == loc


def test_other_refusals(client: TestClient) -> None:
    assert post(client, body({"formula": "exp(z)"}, "categorical_cross_entropy"), 422)["type"].endswith(
        "incompatible-pairing"
    )
    out = post(client, body({"formula": "2*z"}, "poisson"), 422)
    assert out["type"].endswith("domain-error")
    out = post(client, body("identity", {"formula": "(f - y)^2", "targets": {"min": 0, "max": 1}}), 422)
    assert out["type"].endswith("domain-error") and out["errors"][0]["loc"] == ["data", "y", 1]
    big = {**body({"formula": "exp(z)"}, {"formula": "(f - y)^2"}), "parameters": {"w": [400.0, 0.0], "b": 0.0}}
    assert post(client, big, 422)["type"].endswith("non-finite-result")
    params = body("identity", {"formula": "(f - y)^2"}, loss_params={"delta": 2.0})
    assert post(client, params, 422)["type"].endswith("validation-error")
    assert post(client, body({"formula": 3}, "squared_error"), 422)["type"].endswith("validation-error")


def test_grade_and_descent_take_formula_problems(client: TestClient) -> None:
    problem = body(**EXAMPLE)
    right = post(client, problem)
    r = client.post(
        "/grade", json={"problem": problem, "answer": {"loss": right["loss"], "gradients": right["gradients"]}}
    )
    assert r.status_code == 200, r.text
    assert r.json()["correct"] is True
    r = client.post(
        "/descent",
        json={
            "problem": problem,
            "learning_rate": 0.5,
            "steps": 5,
            "compare_with": {"activation": "identity", "loss": {"formula": "(f - y)^2/2"}},
        },
    )
    assert r.status_code == 200, r.text
    runs = r.json()["runs"]
    assert runs[0]["history"]["loss"][0] == pytest.approx(right["loss"], rel=1e-12)
    assert runs[1]["pairing"]["canonical"] is True


def test_the_openapi_example_of_formulas_answers(client: TestClient) -> None:
    from service.http.schemas.gradient import FORMULA_EXAMPLE

    out = post(client, FORMULA_EXAMPLE)
    assert out["pairing"]["canonical"] is False
    assert katex_errors(collect_latex(out)) == []


def test_the_formulas_work_is_bounded() -> None:
    """m × the nodes of g, g', L, L' × the passes is at most max_formula_work (here set low: 20,000)."""
    problem = body(**EXAMPLE)  # 32 nodes in tanh(z/2), its derivative, log(cosh(f - y)) and its derivative
    rows = 400
    big = {
        **problem,
        "explain": "factors",
        "data": {"X": [[0.1 * (i % 7), 0.2] for i in range(rows)], "y": [0.0] * rows},
    }
    with TestClient(create_app(Settings(max_formula_work=20_000))) as c:
        out = post(c, big, 422)  # 400 × 32 × 2 passes (explain) = 25,600
        assert out["type"].endswith(":formula-too-complex") and out["limit"] == "work"
        assert out["errors"][0]["msg"] == "at most 312 examples with these formulas"
        post(c, {**big, "explain": False})  # 400 × 32 = 12,800
        out = post(c, {**big, "explain": False, "verify": True}, 422)  # + 2·(n + 1) = 6 evaluations
        assert out["type"].endswith(":formula-too-complex")


def test_the_drawings_name_formulas_by_their_text(client: TestClient) -> None:
    problem = body(**EXAMPLE)
    r = client.post("/graph", json=problem)
    assert r.status_code == 200, r.text[:500]
    assert "(tanh(z/2) + log(cosh(f - y)))" in r.text and "{" + "'formula'" not in r.text
    descent = {
        "problem": problem,
        "learning_rate": 0.5,
        "steps": 3,
        "compare_with": {"activation": "identity", "loss": "squared_error"},
    }
    r = client.post("/descent/plot", json=descent)
    assert r.status_code == 200, r.text[:500]
    assert "tanh(z/2) + log(cosh(f - y))" in r.text and "'formula'" not in r.text


ALPHABET = "zfyxw()+-*/^ 0123456789.e_{}\\,|" + "abcdefghijklmnopqrstuvwxyz"
PIECES = [
    "z",
    "f",
    "y",
    "exp(",
    "log(",
    "tanh(",
    "sigma(",
    "sqrt(",
    "abs(",
    "cosh(",
    ")",
    "+",
    "-",
    "*",
    "/",
    "^",
    "2",
    "0.5",
    "e^{",
    "}",
    r"\frac{",
    "}{",
    "(",
    "max(",
    ",",
    "__import__",
    "10^10^10",
]


@FUZZ_FORMULAS
@given(
    st.one_of(st.text(ALPHABET, max_size=40), st.lists(st.sampled_from(PIECES), max_size=14).map("".join)),
    st.one_of(st.text(ALPHABET, max_size=40), st.lists(st.sampled_from(PIECES), max_size=14).map("".join)),
)
def test_random_formulas_answer_cleanly(client: TestClient, act: str, loss: str) -> None:
    """Random and assembled formulas: a 200 with finite numbers, or a 4xx problem, never a 5xx."""
    r = client.post("/gradient", json=body({"formula": act}, {"formula": loss}, explain="full"))
    assert r.status_code < 500, r.text[:500]
    if r.status_code == 200:
        assert all_finite(strict_loads(r.text))
    else:
        assert r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("key", ['"formula"', '"\\u0066ormula"'])
def test_a_small_request_with_a_formula_waits_for_the_workers_off_the_event_loop(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    """Reading a formula waits for the formula workers (up to their time limit): a small /gradient body,
    which is otherwise answered on the event loop, is then answered in a thread; an escaped key too. Its jobs
    name the caller, whose share of the workers they take."""
    import asyncio

    from service.http.handlers import custom_formulas
    from service.http.security.access import caller

    on_loop: list[bool] = []
    callers: list[str | None] = []
    real_run = custom_formulas.run_job

    def spy(job: str, *args: Any) -> Any:
        callers.append(caller.get())
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return real_run(job, *args)

    monkeypatch.setattr(custom_formulas, "run_job", spy)
    scale = 3 if "u0066" in key else 5  # a formula no other test reads: in no cache of formulas read before
    activation = "{" + key + f': "tanh(z/{scale}) + 0.5*z"' + "}"
    payload = (
        '{"model": "single_layer", "activation": ' + activation + ', "loss": "squared_error", '
        '"parameters": {"w": [0.3, -0.2], "b": 0.1}, "data": {"X": [[0.5, 1.5], [1, 1]], "y": [0.2, -0.4]}}'
    )
    r = client.post("/gradient", content=payload, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    assert on_loop and not any(on_loop), on_loop
    assert set(callers) == {"address:testclient"}, callers  # the service runs open here: the caller's address

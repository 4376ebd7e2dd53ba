"""The learner's page in a real browser: Debian's headless Chromium driven by Playwright, against a real server.

Chromium is Debian's /usr/bin/chromium (installed with apt-get when this runs as root and it is missing);
Playwright's own browser download is never used. Without a browser the tests skip with the reason, except
under CI (CI=true), where they fail. Screenshots of the main states go to tests/browser/artifacts/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest

from service.http.schemas.gradient import EXAMPLES
from tests.system.server import Service, running_service

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
WORKED = {k: v for k, v in EXAMPLES["logistic_regression"].items() if k != "explain"}  # type: ignore[index]
KEYS = {"page-grader-key": ["grader"]}


def _unavailable(reason: str) -> None:
    message = f"BROWSER TESTS NOT RUN: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: this is a failure, not a skip)", pytrace=False)
    pytest.skip(message)


def _ensure_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        cmd = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(cmd, env=env, capture_output=True, check=False, timeout=900).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=False, timeout=600)
            subprocess.run(cmd, env=env, capture_output=True, check=False, timeout=900)
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing and could not be installed (apt-get install chromium, as root)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _ensure_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the Python package playwright is not installed (pip install -c constraints.txt -e '.[test]')")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


class Session:
    """A page with every request logged, anything not for the service aborted, and console errors kept."""

    def __init__(self, browser: Any, service: Service, **context: Any) -> None:
        self.base = service.base
        self.origin = urlsplit(service.base).netloc
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, **context)
        self.requests: list[str] = []
        self.outside: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on(
            "console", lambda m: self.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None
        )
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url} {r.failure}"))

    def _route(self, route: Any) -> None:
        url = route.request.url
        self.requests.append(url)
        parts = urlsplit(url)
        if parts.scheme == "data" or (parts.scheme == "http" and parts.netloc == self.origin):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def shot(self, name: str, **kw: Any) -> None:
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), **kw)

    def expect_refused(self, status: int, count: int) -> None:
        """The browser logs each refused request as a console error: those the test provoked are expected."""
        for _ in range(50):  # the page sends its requests in parallel: wait for every one to be logged
            refused = [e for e in self.errors if f"status of {status}" in e]
            if len(refused) >= count:
                break
            self.page.wait_for_timeout(100)
        assert len(refused) == count, (status, self.errors)
        self.errors = [e for e in self.errors if e not in refused]

    def check_clean(self) -> None:
        assert not self.outside, f"requests left 127.0.0.1: {self.outside}"
        assert all(urlsplit(u).hostname in ("127.0.0.1", None) for u in self.requests), self.requests
        assert not self.errors, self.errors


def _gradient(service: Service, problem: dict[str, Any], **headers: str) -> dict[str, Any]:
    r = httpx.post(service.base + "/gradient", json={**problem, "explain": "factors"}, headers=headers, timeout=10)
    r.raise_for_status()
    return r.json()  # type: ignore[no-any-return]


def _attr_json(page: Any, selector: str, attr: str) -> Any:
    return json.loads(page.locator(selector).first.get_attribute(attr))


def _forgot_mean_answer(service: Service, **headers: str) -> dict[str, Any]:
    """The worked example's answer with the data term of both gradients summed instead of averaged."""
    result = _gradient(service, WORKED, **headers)
    steps = {s["factor"]: s.get("value") for s in result["breakdown"]["steps"]}
    X = np.array(WORKED["data"]["X"])
    dL_dz = np.array(result["breakdown"]["per_sample"]["dL_dz"])
    return {
        "loss": result["loss"],
        "gradients": {"w": (X.T @ dL_dz + np.array(steps["dR/dw"])).tolist(), "b": float(dL_dz.sum())},
    }


def test_learner_page_end_to_end(browser: Any) -> None:
    with running_service() as service:
        s = Session(browser, service)
        page = s.page

        # 1. the worked example, server-rendered, typeset by the vendored KaTeX with its own fonts
        page.goto(service.base + "/explain")
        page.wait_for_selector("#derivation-body .katex")
        assert page.locator(".katex").count() > 20
        assert page.locator(".katex-error").count() == 0
        assert page.evaluate("() => document.fonts.ready.then(() => document.fonts.check('20px KaTeX_Main'))")
        assert page.locator("li.canonical .simplification").is_visible()
        assert page.locator("#graph-body svg g[data-node='z']").count() == 4
        assert page.locator("#curve-body svg g.run").count() == 2
        s.shot("01-worked-example", full_page=True)
        page.locator("#step-df-dz").evaluate("e => e.scrollIntoView({block: 'start'})")
        s.shot("learner-page")  # docs/learner-page.png is a copy of this one
        # the elementary derivations are folded under their steps
        details = page.locator("#step-dL-df details")
        assert details.evaluate("d => d.open") is False
        details.locator("summary").click()
        assert details.locator("ol.derivation li .katex").count() >= 2

        # 2. another model, edited, explained from the keyboard
        page.select_option("#model", "linear_regression")
        problem = {k: v for k, v in EXAMPLES["linear_regression"].items() if k != "explain"}  # type: ignore[index]
        problem["parameters"] = {"w": [0.5, -0.25], "b": 0.1}
        problem["data"] = {"X": [[1, 2], [2, 0.5], [3, 1]], "y": [1.0, 2.5, 2.0]}
        page.fill("#parameters", json.dumps(problem["parameters"]))
        page.fill("#data", json.dumps(problem["data"]))
        page.focus("#explain-button")
        page.keyboard.press("Enter")
        page.wait_for_function("() => document.getElementById('status').textContent.startsWith('J =')")
        expected = _gradient(service, problem)
        ps = expected["breakdown"]["per_sample"]
        assert page.locator("#derivation-body li.step").count() == len(expected["breakdown"]["steps"])
        assert page.locator(".katex-error").count() == 0
        assert page.locator("li.canonical").count() == 1  # identity + squared error: canonical too
        for i in range(3):
            node = f"#graph-body svg g[data-node='z'][data-example='{i}']"
            assert _attr_json(page, node, "data-value") == ps["z"][i]
            assert _attr_json(page, node, "data-grad") == ps["dL_dz"][i]
            edge = f"#graph-body svg g[data-from='f'][data-to='L'][data-example='{i}']"
            assert _attr_json(page, edge, "data-local") == ps["dL_df"][i]
        assert _attr_json(page, "#graph-body svg g[data-node='w']", "data-grad") == expected["gradients"]["w"]
        assert _attr_json(page, "#graph-body svg g[data-node='J']", "data-value") == expected["loss"]
        s.shot("02-edited-problem", full_page=True)

        # a bad input is explained, not thrown
        page.fill("#data", '{"X": [[1, 2]], "y": [1, 2]}')
        page.click("#explain-button")
        page.wait_for_function("() => document.getElementById('error').textContent.length > 0")
        assert "data.y" in page.locator("#error").text_content()  # type: ignore[operator]
        s.expect_refused(422, count=2)  # /gradient and /graph

        # 3. back to the worked example; a descent with two pairings side by side
        page.select_option("#model", "logistic_regression")
        page.click("#explain-button")
        page.wait_for_function("() => document.getElementById('status').textContent.startsWith('J =')")
        page.fill("#steps", "100")
        page.select_option("#compare-with", "sigmoid/squared_error")
        page.click("#descent-button")
        page.wait_for_function(
            "() => { const l = document.querySelector('#curve-body svg polyline');"
            " return l && JSON.parse(l.dataset.steps).length === 101; }"
        )
        runs = page.locator("#curve-body svg g.run")
        assert runs.count() == 2
        assert runs.nth(0).get_attribute("data-pairing") == "sigmoid + binary_cross_entropy (canonical)"
        assert runs.nth(1).get_attribute("data-pairing") == "sigmoid + squared_error"
        assert "canonical" in page.locator("#descent-summary").text_content()  # type: ignore[operator]
        page.locator("#descent").screenshot(path=str(ARTIFACTS / "03-descent.png"))

        # 4. grading: a forgot-1/m answer; the verdicts, and the step where it went wrong
        page.fill("#answer", json.dumps(_forgot_mean_answer(service)))
        page.check("#reveal")
        page.click("#grade-button")
        page.wait_for_selector("#grade-result table.verdicts")
        verdicts = {
            row.get_attribute("data-part"): row.get_attribute("data-correct")
            for row in page.locator("#grade-result tr[data-part]").all()
        }
        assert verdicts == {"loss": "true", "gradients.w": "false", "gradients.b": "false"}
        assert "missing_mean" in page.locator("#grade-result").text_content()  # type: ignore[operator]
        marked = page.locator("#derivation-body li.mistake")
        assert sorted(marked.evaluate_all("els => els.map(e => e.dataset.factor)")) == ["dJ/db", "dJ/dw"]
        note = page.locator("#step-dJ-dw .mistake-note")
        assert note.is_visible() and "missing_mean" in note.text_content()  # type: ignore[operator]
        assert page.evaluate("() => document.activeElement.id") in ("step-dJ-dw", "step-dJ-db")
        page.locator("#grade").screenshot(path=str(ARTIFACTS / "04-grading.png"))
        page.locator("#step-dJ-dw").screenshot(path=str(ARTIFACTS / "05-mistake-step.png"))
        s.shot("06-after-grading", full_page=True)

        # a right answer clears the marks
        right = _gradient(service, WORKED)
        page.fill("#answer", json.dumps({"loss": right["loss"], "gradients": right["gradients"]}))
        page.click("#grade-button")
        page.wait_for_function(
            "() => document.querySelector('#grade-result .score').textContent.includes('all correct')"
        )
        assert page.locator("#derivation-body li.mistake").count() == 0
        s.check_clean()
        s.context.close()


def test_network_and_api_key(browser: Any) -> None:
    """With keys configured the page itself is open; its calls carry the key typed into it."""
    env = {"GRADIENT_SERVICE_API_KEYS": json.dumps(KEYS)}
    with running_service(env=env) as service:
        s = Session(browser, service)
        page = s.page
        page.goto(service.base + "/explain")
        page.wait_for_selector("#derivation-body .katex")
        page.select_option("#model", "neural_network")
        assert page.locator("#architecture").is_visible()
        page.click("#explain-button")
        page.wait_for_function("() => document.getElementById('error').textContent.includes('401')")
        s.expect_refused(401, count=2)
        page.locator("details.key summary").click()
        page.fill("#api-key", "page-grader-key")
        page.click("#explain-button")
        page.wait_for_function("() => document.getElementById('status').textContent.startsWith('J =')")
        assert page.locator("#error").text_content() == ""
        assert page.locator("#derivation-body li[data-factor='delta[1]']").count() == 1
        problem = {k: v for k, v in EXAMPLES["neural_network"].items() if k != "explain"}  # type: ignore[index]
        expected = _gradient(service, problem, Authorization="Bearer page-grader-key")
        z2 = expected["breakdown"]["layers"][1]["z"]
        for i in range(4):
            node = f"#graph-body svg g[data-node='z[2]'][data-example='{i}']"
            assert _attr_json(page, node, "data-value") == z2[i]
        page.locator("#graph").screenshot(path=str(ARTIFACTS / "07-network-graph.png"))

        # a network answer without 1/m in layer 1 (the grader names missing_mean, also matching
        # layer_missing_mean): that layer's two gradient steps are marked
        layers = expected["gradients"]["layers"]
        m = len(problem["data"]["X"])
        wrong = [
            {"W": (np.array(layers[0]["W"]) * m).tolist(), "b": (np.array(layers[0]["b"]) * m).tolist()},
            layers[1],
        ]
        page.fill("#answer", json.dumps({"gradients": {"layers": wrong}}))
        page.click("#grade-button")
        page.wait_for_selector("#grade-result table.verdicts")
        assert "missing_mean (also matches layer_missing_mean)" in page.locator("#grade-result").text_content()  # type: ignore[operator]
        marked = page.locator("#derivation-body li.mistake").evaluate_all("els => els.map(e => e.dataset.factor)")
        assert sorted(marked) == ["dJ/dW[1]", "dJ/db[1]"]
        page.locator("#step-dJ-dW-1").screenshot(path=str(ARTIFACTS / "08-network-mistake-step.png"))
        s.check_clean()
        s.context.close()


def test_page_reads_without_javascript(browser: Any) -> None:
    with running_service() as service:
        s = Session(browser, service, java_script_enabled=False)
        page = s.page
        page.goto(service.base + "/explain")
        assert page.locator("#derivation-body li.step").count() == 12
        assert page.locator(".katex").count() == 0  # plain-text formulas instead
        assert "dL/dz = f - y" in page.locator("#step-dL-dz").text_content()  # type: ignore[operator]
        assert page.locator("#graph-body svg g[data-node='J']").count() == 1
        assert page.locator("#curve-body svg polyline").count() == 2
        s.shot("09-without-javascript")
        s.check_clean()
        s.context.close()


STUDENT_KEYS = {"page-grader-key": ["grader"], "page-student-key": ["student"]}
GRADER = {"Authorization": "Bearer page-grader-key"}
STUDENT = {"Authorization": "Bearer page-student-key"}


def _sign(service: Service, problem: dict[str, Any]) -> str:
    r = httpx.post(service.base + "/problems/sign", json={"problem": problem}, headers=GRADER, timeout=10)
    r.raise_for_status()
    return str(r.json()["problem_token"])


def _flip(text: str, i: int) -> str:
    return text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1 :]


def _paths(s: Session) -> list[str]:
    return [urlsplit(u).path for u in s.requests]


def test_a_student_grades_a_signed_problem(browser: Any) -> None:
    """A student key and a problem token: the page grades with {problem_token, answer} only, shows the token's
    problem and the derivation as formulas (from the catalogue, no value), and never calls /gradient or /graph."""
    env = {
        "GRADIENT_SERVICE_API_KEYS": json.dumps(STUDENT_KEYS),
        "GRADIENT_SERVICE_SIGNING_SECRET": "s" * 32,
        "GRADIENT_SERVICE_MAX_ATTEMPTS": "3",
    }
    with running_service(env=env) as service:
        token = _sign(service, WORKED)
        wrong = _forgot_mean_answer(service, **GRADER)
        expected = _gradient(service, WORKED, **GRADER)["breakdown"]["steps"]
        s = Session(browser, service)
        page = s.page
        page.goto(service.base + "/explain")
        page.wait_for_selector("#derivation-body .katex")

        # the token's problem, read from its payload as soon as it is pasted (nothing is sent)
        page.fill("#problem-token", token[:40] + "\n" + token[40:])  # pasted over two lines: whitespace is dropped
        facts = page.locator("#token-problem dl.token-facts").text_content() or ""
        assert "logistic_regression: sigmoid + binary_cross_entropy" in facts
        assert "m = 6 examples, n = 2 features" in facts and "l2, λ = 0.7" in facts
        assert "w = [2, 3], b = 1" in facts
        assert page.locator("#token-problem table.token-data tbody tr").count() == 6
        assert not any(p in ("/grade", "/gradient", "/graph") for p in _paths(s))

        # a wrong key first: 401, said in the grading view, and the key field is where the focus goes
        page.fill("#answer", json.dumps(wrong))
        page.locator("details.key summary").click()
        page.fill("#api-key", "not-a-key")
        page.focus("#grade-button")
        page.keyboard.press("Enter")
        page.wait_for_function("() => document.getElementById('grade-error').textContent.includes('401')")
        assert "API key was not accepted" in (page.locator("#grade-error").text_content() or "")
        assert page.evaluate("() => document.activeElement.id") == "api-key"
        s.expect_refused(401, count=1)

        # the student's key: verdicts, the mistake and its explanation, the step marked in the formulas
        page.fill("#api-key", "page-student-key")
        page.focus("#grade-button")
        page.keyboard.press("Enter")
        page.wait_for_selector("#grade-result table.verdicts")
        page.wait_for_selector("#token-derivation li.mistake")
        assert page.locator("#grade-error").text_content() == ""
        verdicts = {
            row.get_attribute("data-part"): row.get_attribute("data-correct")
            for row in page.locator("#grade-result tr[data-part]").all()
        }
        assert verdicts == {"loss": "true", "gradients.w": "false", "gradients.b": "false"}
        result = page.locator("#grade-result").text_content() or ""
        assert "mistake: missing_mean: Summed instead of averaged" in result
        assert "not the mean" in result and "1/m" in result  # the explanation
        assert "expected" not in result  # no reveal for a student
        status = page.locator("#grade-status").text_content() or ""
        assert "Score 1 / 3" in status and "missing_mean" in status
        marked = page.locator("#token-derivation li.mistake").evaluate_all("els => els.map(e => e.dataset.factor)")
        assert sorted(marked) == ["dJ/db", "dJ/dw"]
        note = page.locator("#token-step-dJ-dw .mistake-note")
        assert note.is_visible() and "missing_mean" in (note.text_content() or "")
        assert page.evaluate("() => document.activeElement.id") in ("token-step-dJ-dw", "token-step-dJ-db")
        # formulas only, and exactly /gradient's: the same steps, the same LaTeX, not one value
        steps = page.locator("#token-derivation li.step")
        assert steps.evaluate_all("els => els.map(e => e.dataset.factor)") == [st["factor"] for st in expected]
        latex = page.locator("#token-derivation li.step > .math").evaluate_all(
            "els => els.map(e => e.getAttribute('data-latex'))"
        )
        assert latex == [st["latex"] for st in expected]
        assert page.locator("#token-derivation .katex").count() >= len(expected)
        assert page.locator("#token-derivation .katex-error").count() == 0
        assert page.locator("#token-derivation table, #token-derivation .num, #token-derivation p.value").count() == 0
        assert not any(p in ("/gradient", "/graph", "/descent", "/descent/plot") for p in _paths(s))
        assert _paths(s).count("/grade") == 2 and "/pairings" in _paths(s)
        page.locator("#grade").screenshot(path=str(ARTIFACTS / "10-token-grading.png"))
        page.locator("#token-step-dJ-dw").screenshot(path=str(ARTIFACTS / "11-token-mistake-step.png"))

        # a tampered token: the service's 403, said plainly, the focus on the token field
        page.fill("#problem-token", _flip(token, len(token) - 10))
        assert page.locator("#grade-result").text_content() == ""  # a new token clears the old verdicts
        page.click("#grade-button")
        page.wait_for_function("() => document.getElementById('grade-error').textContent.includes('403')")
        error = page.locator("#grade-error").text_content() or ""
        assert "refused this problem token" in error and "not valid" in error
        assert page.evaluate("() => document.activeElement.id") == "problem-token"
        s.expect_refused(403, count=1)
        page.locator("#grade").screenshot(path=str(ARTIFACTS / "12-token-refused.png"))

        # the attempts run out (2 more by HTTP, 3 in all): the page says so
        for _ in range(2):
            r = httpx.post(service.base + "/grade", json={"problem_token": token, "answer": wrong}, headers=STUDENT)
            assert r.status_code == 200, r.text
        page.fill("#problem-token", token)
        page.click("#grade-button")
        page.wait_for_function("() => document.getElementById('grade-error').textContent.includes('attempts')")
        assert "used all 3 attempts" in (page.locator("#grade-error").text_content() or "")
        s.expect_refused(403, count=1)
        assert not any(p in ("/gradient", "/graph") for p in _paths(s))

        # with no token the page grades the form's problem (the worked example, already derived on the page),
        # which a student's key may not send: the page says where the token goes
        page.fill("#problem-token", "")
        page.click("#grade-button")
        page.wait_for_function("() => document.getElementById('grade-error').textContent.includes('Problem token')")
        assert "student's key grades signed problems only" in (page.locator("#grade-error").text_content() or "")
        assert page.evaluate("() => document.activeElement.id") == "problem-token"
        s.expect_refused(403, count=1)
        assert not any(p in ("/gradient", "/graph") for p in _paths(s))
        s.check_clean()
        s.context.close()


# three layers (tanh, relu, sigmoid + binary cross-entropy): the grader diagnoses a dropped tanh′ in δ[1]
NETWORK = {
    "model": "neural_network",
    "layers": [{"activation": "tanh"}, {"activation": "relu"}, {"activation": "sigmoid"}],
    "loss": "binary_cross_entropy",
    "parameters": {
        "layers": [
            {"W": [[0.5, -0.4], [0.2, 0.6]], "b": [0.1, 0.0]},
            {"W": [[0.7, 0.3], [-0.3, 0.8]], "b": [0.05, 0.1]},
            {"W": [[0.9], [-0.6]], "b": [0.0]},
        ]
    },
    "data": {"X": [[0.5, 1.5], [1, 1], [1.5, 0.5], [3, 0.5]], "y": [0, 1, 0, 1]},
    "regularization": {"kind": "l2", "lambda": 0.1},
}


def _network_answers(service: Service) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """Two wrong answers to NETWORK (δ[1] without g′(z[1]); layer 2's gradients summed, not averaged) and the
    breakdown's steps, from /gradient with the grader's key."""
    result = _gradient(service, NETWORK, **GRADER)
    right = result["gradients"]["layers"]
    deltas = {layer["layer"]: np.array(layer["delta"]) for layer in result["breakdown"]["layers"]}
    X, m = np.array(NETWORK["data"]["X"]), len(NETWORK["data"]["X"])
    W1, W2 = (np.array(p["W"]) for p in NETWORK["parameters"]["layers"][:2])
    delta1 = deltas[2] @ W2.T  # the factor tanh′(z[1]) left out
    no_g_prime = [
        {"W": (X.T @ delta1 / m + 0.1 / m * W1).tolist(), "b": delta1.mean(axis=0).tolist()},
        *right[1:],
    ]
    layer2 = right[1]
    reg2 = 0.1 / m * W2
    no_mean = [
        right[0],
        {"W": ((np.array(layer2["W"]) - reg2) * m + reg2).tolist(), "b": (np.array(layer2["b"]) * m).tolist()},
        right[2],
    ]
    return {"gradients": {"layers": no_g_prime}}, {"gradients": {"layers": no_mean}}, result["breakdown"]["steps"]


def test_a_student_grades_a_signed_network(browser: Any) -> None:
    """A signed network problem with a student key: the formulas of backpropagation, layer by layer, exactly
    /gradient's without a value, with the mistaken step (δ[1], or layer 2's gradients) marked."""
    env = {"GRADIENT_SERVICE_API_KEYS": json.dumps(STUDENT_KEYS), "GRADIENT_SERVICE_SIGNING_SECRET": "s" * 32}
    with running_service(env=env) as service:
        token = _sign(service, NETWORK)
        no_g_prime, no_mean, expected = _network_answers(service)
        s = Session(browser, service)
        page = s.page
        page.goto(service.base + "/explain")
        page.wait_for_selector("#derivation-body .katex")
        page.locator("details.key summary").click()
        page.fill("#api-key", "page-student-key")
        page.fill("#problem-token", token)
        facts = page.locator("#token-problem dl.token-facts").text_content() or ""
        assert (
            "neural_network: sigmoid + binary_cross_entropy" in facts and "layers 1: tanh, 2: relu, 3: sigmoid" in facts
        )

        # δ[1] without tanh′(z[1]): layer 1's gradients are wrong, and δ[1] is the step marked (not δ[2])
        page.fill("#answer", json.dumps(no_g_prime))
        page.focus("#grade-button")
        page.keyboard.press("Enter")
        page.wait_for_selector("#token-derivation li.mistake")
        assert page.locator("#grade-error").text_content() == ""
        verdicts = {
            row.get_attribute("data-part"): row.get_attribute("data-correct")
            for row in page.locator("#grade-result tr[data-part]").all()
        }
        assert verdicts == {
            "gradients.layers.0.W": "false",
            "gradients.layers.0.b": "false",
            **{f"gradients.layers.{i}.{k}": "true" for i in (1, 2) for k in ("W", "b")},
        }
        assert "missing_hidden_derivative" in (page.locator("#grade-status").text_content() or "")
        steps = page.locator("#token-derivation li.step")
        assert steps.evaluate_all("els => els.map(e => e.dataset.factor)") == [st["factor"] for st in expected]
        latex = page.locator("#token-derivation li.step > .math").evaluate_all(
            "els => els.map(e => e.getAttribute('data-latex'))"
        )
        assert latex == [st["latex"] for st in expected]
        layers = steps.evaluate_all(
            "els => els.map(e => e.dataset.layer === undefined ? null : Number(e.dataset.layer))"
        )
        assert layers == [st.get("layer") for st in expected]
        assert page.locator("#token-derivation .katex").count() >= len(expected)
        assert page.locator("#token-derivation .katex-error").count() == 0
        assert page.locator("#token-derivation table, #token-derivation .num, #token-derivation p.value").count() == 0
        marked = page.locator("#token-derivation li.mistake").evaluate_all("els => els.map(e => e.dataset.factor)")
        assert marked == ["delta[1]"]
        note = page.locator("#token-step-delta-1 .mistake-note")
        assert note.is_visible() and "missing_hidden_derivative" in (note.text_content() or "")
        assert "gradients.layers.0.W, gradients.layers.0.b" in (note.text_content() or "")
        assert page.evaluate("() => document.activeElement.id") == "token-step-delta-1"
        assert page.locator("#token-derivation li.canonical .explanation").count() == 1  # δ[3] = f − y
        page.locator("#grade").screenshot(path=str(ARTIFACTS / "13-token-network-grading.png"))
        page.locator("#token-step-delta-1").screenshot(path=str(ARTIFACTS / "14-token-network-mistake-step.png"))

        # layer 2's gradients summed over the examples: the grader names missing_mean (also matching
        # layer_missing_mean) in layer 2 only, and layer 2's two gradient steps are marked
        page.fill("#answer", json.dumps(no_mean))
        page.click("#grade-button")
        page.wait_for_function(
            "() => [...document.querySelectorAll('#token-derivation li.mistake')].some(e => e.dataset.layer === '2')"
        )
        assert "also matches layer_missing_mean" in (page.locator("#grade-result").text_content() or "")
        marked = page.locator("#token-derivation li.mistake").evaluate_all("els => els.map(e => e.dataset.factor)")
        assert sorted(marked) == ["dJ/dW[2]", "dJ/db[2]"]
        page.locator("#token-step-dJ-dW-2").screenshot(path=str(ARTIFACTS / "15-token-network-layer-mistake.png"))
        assert not any(p in ("/gradient", "/graph", "/descent", "/descent/plot") for p in _paths(s))
        assert _paths(s).count("/grade") == 2 and "/activations" in _paths(s)
        s.check_clean()
        s.context.close()


def test_a_rate_limited_grading_says_when_to_retry(browser: Any) -> None:
    """A 429: the page gives the wait from Retry-After, holds the Grade button that long, then gives it back."""
    env = {
        "GRADIENT_SERVICE_API_KEYS": json.dumps(STUDENT_KEYS),
        "GRADIENT_SERVICE_SIGNING_SECRET": "s" * 32,
        # one request back every 10 s: the page's click comes well within that, even on a slow machine
        "GRADIENT_SERVICE_RATE_LIMIT_PER_MINUTE": "6",
        "GRADIENT_SERVICE_RATE_LIMIT_BURST": "2",
    }
    with running_service(env=env) as service:
        token = _sign(service, WORKED)
        s = Session(browser, service)
        page = s.page
        page.goto(service.base + "/explain")
        page.locator("details.key summary").click()
        page.fill("#api-key", "page-student-key")
        page.fill("#problem-token", token)
        page.fill("#answer", json.dumps({"loss": 1.0}))
        while httpx.get(service.base + "/version", headers=STUDENT, timeout=10).status_code != 429:
            pass  # the student key's bucket is empty
        page.click("#grade-button")
        page.wait_for_function("() => document.getElementById('grade-error').textContent.includes('429')")
        error = page.locator("#grade-error").text_content() or ""
        assert re.search(r"Too many requests with this key: wait ([1-9]|10) s", error), error
        assert page.locator("#grade-button").is_disabled()
        s.expect_refused(429, count=1)
        page.wait_for_function("() => !document.getElementById('grade-button').disabled", timeout=20000)
        assert "grade again now" in (page.locator("#grade-status").text_content() or "")
        assert "/gradient" not in _paths(s) and "/graph" not in _paths(s)
        s.check_clean()
        s.context.close()


def test_derive_box(browser: Any) -> None:
    """Type a function, see its steps typeset by the vendored KaTeX; in f; an error shown where it is."""
    # SymPy's search for the form in f has half the time limit: on a loaded machine the default (2 s) may not
    # be enough, and the page would rightly show the traced form instead; this test checks the page
    with running_service(env={"GRADIENT_SERVICE_FORMULA_TIME_LIMIT_SECONDS": "20"}) as service:
        s = Session(browser, service)
        page = s.page
        page.goto(service.base + "/explain")
        page.wait_for_selector("#derivation-body .katex")
        page.fill("#derive-expression", "1/(1+e^{-z})")
        page.fill("#derive-variable", "z")
        page.click("#derive-button")
        page.wait_for_selector("#derive-result ol.derive-steps li .katex")
        expected = httpx.post(service.base + "/derive", json={"expression": "1/(1+e^{-z})", "variable": "z"}).json()
        items = page.locator("#derive-result li.derive-step")
        assert items.count() == len(expected["steps"])
        assert [items.nth(k).get_attribute("data-rule") for k in range(items.count())] == [
            step["rule"] for step in expected["steps"]
        ]
        assert page.locator("#derive-result .katex").count() == len(expected["steps"]) + 2
        assert page.locator("#derive-result .katex-error").count() == 0
        s.shot("06-derive", full_page=True)

        # written in f: the sigmoid's slope as f(1 - f), the last step a simplify
        page.check("#derive-in-f")
        page.click("#derive-button")
        page.wait_for_function(
            "() => document.querySelector('#derive-result .derive-answer')?.textContent.includes('in f')"
        )
        last = page.locator("#derive-result li.derive-step").last
        assert last.get_attribute("data-rule") == "simplify"
        answer = page.locator("#derive-result > .math").last
        assert answer.get_attribute("data-latex") == "f \\cdot \\left(1 - f\\right)"

        # an error says where
        page.fill("#derive-expression", "1/(1+e^{-z}")
        page.click("#derive-button")
        page.wait_for_function("() => document.getElementById('derive-error').textContent.length > 0")
        assert "column" in page.locator("#derive-error").text_content()  # type: ignore[operator]
        s.expect_refused(422, 1)


def test_a_student_grades_a_derivation_step_by_step(browser: Any) -> None:
    """The derivation box: one step per line, typeset as typed; with a student key and a signed question the
    page posts {question_token, answer: {steps}} only; the first wrong step is marked and its mistake named
    next to it (the forum's ∂f/∂b left out of the first term)."""
    env = {
        "GRADIENT_SERVICE_API_KEYS": json.dumps(STUDENT_KEYS),
        "GRADIENT_SERVICE_SIGNING_SECRET": "s" * 32,
        "GRADIENT_SERVICE_MAX_ATTEMPTS": "3",
    }
    with running_service(env=env) as service:
        r = httpx.post(
            service.base + "/problems/sign",
            json={"question": {"model": "logistic_regression", "target": "dL/db"}},
            headers=GRADER,
            timeout=10,
        )
        r.raise_for_status()
        token = r.json()["problem_token"]
        s = Session(browser, service)
        page = s.page
        sent: list[Any] = []
        page.on("request", lambda req: sent.append(req.post_data_json) if req.url.endswith("/grade/formula") else None)
        page.goto(service.base + "/explain")
        page.wait_for_selector("#steps-preview .katex")  # the default derivation's LaTeX line, typeset as typed
        steps = [
            r"\frac{\partial L}{\partial f}\frac{\partial f}{\partial z}\frac{\partial z}{\partial b}",
            r"-\frac{y}{f} + \frac{1-y}{1-f} \cdot f(1-f)",
        ]
        page.fill("#formula-steps", "\n".join(steps))
        assert page.locator("#steps-preview .math").count() == 2
        page.fill("#question-token", token)
        assert page.locator("#question-fields").is_hidden()
        page.locator("details.key summary").click()
        page.fill("#api-key", "page-student-key")
        page.click("#formula-button")
        page.wait_for_selector("#formula-result li.first-wrong")
        assert sent == [{"question_token": token, "answer": {"steps": steps}}]
        items = page.locator("#formula-result li.step")
        assert items.count() == 2
        assert "right" in (items.nth(0).get_attribute("class") or "")
        wrong = items.nth(1)
        assert "wrong" in (wrong.get_attribute("class") or "")
        assert wrong.locator(".katex").count() == 1  # how the service read the step
        assert "∂f/∂z = f(1 - f)" in (wrong.text_content() or "") and "missing_inner_derivative" in (
            wrong.text_content() or ""
        )
        assert "Step 2 is the first" in (page.locator("#formula-status").text_content() or "")
        assert page.evaluate("() => document.activeElement.getAttribute('data-index')") == "1"
        s.shot("derivation-box")
        assert not any(p in ("/gradient", "/graph", "/grade") for p in _paths(s))
        s.check_clean()

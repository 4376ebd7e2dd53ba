// The learner's page: vanilla JavaScript, no build step. It calls the service's public API
// (POST /gradient, /graph, /descent, /descent/plot, /grade) like any client, and builds the page
// with DOM methods only (text is never parsed as HTML; SVG comes through DOMParser).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const examples = JSON.parse($("examples").textContent);
  let explained = null; // the problem the derivation on the page belongs to (as JSON text)

  // --- numbers and math -------------------------------------------------------------------------

  function num(x) {
    if (x === null || x === undefined) return "n/a";
    if (typeof x !== "number") return String(x);
    if (!Number.isFinite(x)) return String(x);
    if (x === 0) x = 0; // -0 reads as 0
    let s;
    const a = Math.abs(x);
    if (x !== 0 && (a < 1e-4 || a >= 1e4)) {
      s = x.toExponential(3).replace(/\.?0+e/, "e");
    } else {
      s = String(Number(x.toPrecision(4)));
    }
    return s.replace(/-/g, "\u2212");
  }

  function short(v, items) {
    items = items || 3;
    if (Array.isArray(v)) {
      const inner = v.slice(0, items).map((e) => short(e, items));
      if (v.length > items) inner.push("\u2026 " + v.length + " in all");
      return "[" + inner.join(", ") + "]";
    }
    return num(v);
  }

  function renderMath(root) {
    if (!window.katex) return; // the plain-text formula stays readable
    root.querySelectorAll("[data-latex]").forEach((el) => {
      window.katex.render(el.getAttribute("data-latex"), el, {
        displayMode: el.tagName === "DIV",
        throwOnError: false,
        output: "htmlAndMathml",
      });
    });
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of [].concat(children || [])) {
      if (c === null || c === undefined) continue;
      node.append(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return node;
  }

  function math(latex, text, tag) {
    return el(tag || "div", { class: "math", "data-latex": latex }, text);
  }

  // --- the API ----------------------------------------------------------------------------------

  function headers() {
    const h = { "Content-Type": "application/json" };
    const key = $("api-key").value.trim();
    if (key) h.Authorization = "Bearer " + key;
    return h;
  }

  class ApiError extends Error {
    constructor(status, problem) {
      const lines = [(problem.title || "Error") + " (" + status + "): " + (problem.detail || "")];
      for (const e of problem.errors || []) lines.push("\u2022 " + (e.loc || []).join(".") + ": " + e.msg);
      super(lines.join("\n"));
    }
  }

  async function call(path, body, accept) {
    const response = await fetch(path, {
      method: "POST",
      headers: Object.assign({ Accept: accept || "application/json" }, headers()),
      body: JSON.stringify(body),
    });
    if (!response.ok) {
      let problem = {};
      try {
        problem = await response.json();
      } catch (_) {
        problem = { title: response.statusText };
      }
      throw new ApiError(response.status, problem);
    }
    return accept === "image/svg+xml" ? response.text() : response.json();
  }

  // --- the form ---------------------------------------------------------------------------------

  function parseField(id, what) {
    try {
      return JSON.parse($(id).value);
    } catch (e) {
      throw new Error(what + " is not valid JSON: " + e.message);
    }
  }

  function problemFromForm() {
    const model = $("model").value;
    const problem = { model: model };
    if (model === "single_layer") {
      const [activation, loss] = $("pairing").value.split("/");
      problem.activation = activation;
      problem.loss = loss;
    }
    if (model === "neural_network") Object.assign(problem, parseField("architecture", "Layers and loss"));
    problem.parameters = parseField("parameters", "Parameters");
    problem.data = parseField("data", "Data");
    const kind = $("reg-kind").value;
    if (kind) problem.regularization = { kind: kind, lambda: Number($("reg-lambda").value || 0) };
    return problem;
  }

  function fillForm(model) {
    const ex = examples[model];
    $("data").value = JSON.stringify(ex.data);
    $("parameters").value = JSON.stringify(ex.parameters);
    if (ex.activation) $("pairing").value = ex.activation + "/" + ex.loss;
    if (ex.layers) $("architecture").value = JSON.stringify({ layers: ex.layers, loss: ex.loss });
    $("reg-kind").value = ex.regularization ? ex.regularization.kind : "";
    if (ex.regularization) $("reg-lambda").value = ex.regularization.lambda;
    showModelFields();
  }

  function showModelFields() {
    const model = $("model").value;
    $("pairing").disabled = model !== "single_layer";
    $("architecture-field").hidden = model !== "neural_network";
  }

  function setStatus(text) {
    $("status").textContent = text;
  }

  function showError(err) {
    $("error").textContent = err.message;
  }

  async function busy(button, work) {
    button.disabled = true;
    $("error").textContent = "";
    try {
      await work();
    } catch (err) {
      showError(err);
      setStatus("");
    } finally {
      button.disabled = false;
    }
  }

  // --- the derivation (the same structure as service/render/derivation.py) ---------------------

  const FACTOR_NAMES = {
    "dL/df": "\u2202L/\u2202f", "df/dz": "\u2202f/\u2202z", "dL/dz": "\u2202L/\u2202z", "dz/dw": "\u2202z/\u2202w",
    "dz/db": "\u2202z/\u2202b", "dR/dw": "\u2202R/\u2202w", "dJ/dw": "\u2202J/\u2202w", "dJ/db": "\u2202J/\u2202b",
  };
  const factorName = (f) => FACTOR_NAMES[f] || f.replace("dJ/d", "\u2202J/\u2202").replace("delta", "\u03b4");
  const stepId = (f) => "step-" + f.replace(/[^A-Za-z0-9]+/g, "-").replace(/^-+|-+$/g, "");
  const MAX_COLUMNS = 12;

  function valuesOf(value, m) {
    if (Array.isArray(value) && value.length === m && m > 1) {
      const shown = value.slice(0, MAX_COLUMNS);
      const head = el("tr", {}, [el("th", { scope: "row" }, "example")].concat(
        shown.map((_, i) => el("th", { scope: "col" }, String(i + 1)))));
      const row = el("tr", {}, [el("th", { scope: "row" }, "value")].concat(shown.map((v) => el("td", {}, short(v)))));
      const table = el("div", { class: "table-wrap" },
        el("table", { class: "values" }, [el("thead", {}, head), el("tbody", {}, row)]));
      if (m > shown.length) return [table, el("p", { class: "more" }, "\u2026 and " + (m - shown.length) + " more examples.")];
      return [table];
    }
    return [el("p", { class: "value" }, ["= ", el("span", { class: "num" }, short(value, 6))])];
  }

  function simplificationBox(s) {
    return el("aside", { class: "simplification", "aria-label": "Canonical simplification" }, [
      el("h4", {}, "Canonical simplification"),
      math(s.dL_dz.latex, s.dL_dz.text),
      el("p", {}, "The factors cancel:"),
      math(s.cancellation.latex, s.cancellation.text),
      el("p", {}, "Why: " + s.distribution + " distribution, " + s.link + ";"),
      math(s.log_partition.latex, s.log_partition.text),
      math(s.reason.latex, s.reason.text),
      el("p", { class: "explanation" }, s.explanation),
    ]);
  }

  function stepItem(step, m, simp) {
    const canonical = step.rule === "canonical simplification";
    const children = [
      el("h3", {}, [el("span", { class: "factor" }, factorName(step.factor)), " ", el("span", { class: "kind" }, step.kind)]),
      math(step.latex, step.text),
    ];
    if (step.rule) children.push(el("p", { class: "rule" }, step.rule));
    if (step.note) children.push(el("p", { class: "note" }, step.note));
    if ("value_ref" in step) {
      children.push(el("p", { class: "value" }, ["= the inputs ", el("code", {}, step.value_ref), " (not repeated)"]));
    } else {
      children.push(...valuesOf(step.value, m));
    }
    if (canonical && simp) children.push(simplificationBox(simp));
    if (step.derivation) {
      const items = step.derivation.map((d) =>
        el("li", {}, [math(d.latex, d.text, "span"), " ", el("span", { class: "why" }, "(" + d.rule + ": " + d.why + ")")]));
      children.push(el("details", {}, [
        el("summary", {}, "How " + factorName(step.factor) + " is derived, rule by rule"),
        el("ol", { class: "derivation" }, items),
      ]));
    }
    return el("li", {
      class: "step step-" + step.kind + (canonical ? " canonical" : ""),
      id: stepId(step.factor),
      "data-factor": step.factor,
      "data-layer": "layer" in step ? step.layer : null,
      tabindex: "-1",
    }, children);
  }

  const PER_SAMPLE = [["z", "z"], ["f", "f"], ["loss", "L"], ["dL_df", "\u2202L/\u2202f"], ["df_dz", "\u2202f/\u2202z"], ["dL_dz", "\u2202L/\u2202z"]];

  function perSampleTable(problem, ps) {
    const X = problem.data.X, y = problem.data.y;
    const rows = [];
    for (let i = 0; i < Math.min(X.length, 50); i++) {
      rows.push(el("tr", {}, [el("th", { scope: "row" }, String(i + 1)), el("td", {}, short(X[i])), el("td", {}, short(y[i]))]
        .concat(PER_SAMPLE.map(([key]) => el("td", {}, short(ps[key][i]))))));
    }
    const head = el("tr", {}, ["i", "x", "y"].concat(PER_SAMPLE.map(([, n]) => n)).map((n) => el("th", { scope: "col" }, n)));
    const out = [el("div", { class: "table-wrap" }, el("table", { class: "per-sample" }, [
      el("caption", {}, "Each factor, per example"), el("thead", {}, head), el("tbody", {}, rows)]))];
    if (X.length > 50) out.push(el("p", { class: "more" }, "The first 50 of " + X.length + " examples."));
    return out;
  }

  function renderDerivation(problem, result) {
    const bd = result.breakdown, p = result.pairing;
    const m = problem.data.X.length;
    const root = $("derivation-body");
    const children = [
      el("p", { class: "summary" }, [
        result.model + ": " + p.activation + " + " + p.loss + (p.canonical ? " (canonical pairing)" : "") + ". Cost J = ",
        el("span", { class: "num" }, num(Number(result.loss.toPrecision(6)))), ".",
      ]),
      ...perSampleTable(problem, bd.per_sample),
      el("ol", { class: "steps" }, bd.steps.map((s) => stepItem(s, m, bd.simplification))),
    ];
    if (bd.notes && bd.notes.length) {
      children.push(el("section", { class: "notes" }, [el("h3", {}, "Notes"),
        el("ul", {}, bd.notes.map((n) => el("li", {}, [el("strong", {}, n.quantity), ": " + n.reason])))]));
    }
    root.replaceChildren(...children);
    renderMath(root);
  }

  function showSvg(container, text) {
    const doc = new DOMParser().parseFromString(text, "image/svg+xml");
    if (doc.getElementsByTagName("parsererror").length) throw new Error("The drawing could not be read.");
    container.replaceChildren(document.importNode(doc.documentElement, true));
  }

  // --- actions ----------------------------------------------------------------------------------

  async function explain() {
    const problem = problemFromForm();
    setStatus("Computing\u2026");
    const [result, svg] = await Promise.all([
      call("/gradient", Object.assign({}, problem, { explain: "full" })),
      call("/graph", problem, "image/svg+xml"),
    ]);
    renderDerivation(problem, result);
    showSvg($("graph-body"), svg);
    explained = JSON.stringify(problem);
    setStatus("J = " + num(result.loss) + ": the derivation and the graph below are for this problem.");
    return problem;
  }

  async function descent() {
    const problem = problemFromForm();
    const body = {
      problem: problem,
      learning_rate: Number($("learning-rate").value),
      steps: Number.parseInt($("steps").value, 10),
    };
    const other = $("compare-with").value;
    if (other) {
      const [activation, loss] = other.split("/");
      body.compare_with = { activation: activation, loss: loss };
    }
    setStatus("Running gradient descent\u2026");
    const [result, svg] = await Promise.all([call("/descent", body), call("/descent/plot", body, "image/svg+xml")]);
    showSvg($("curve-body"), svg);
    $("descent-summary").textContent = result.comparison ||
      result.runs.map((r) => r.status + " after " + r.steps_taken + " steps: " + r.explanation).join("\n");
    setStatus("Descent done.");
  }

  // which derivation steps a catalogued mistake goes wrong in (codes: GET /mistakes)
  const MISTAKE_STEPS = {
    missing_mean: ["dJ/dw", "dJ/db"],
    sign_flipped: ["dL/dz"],
    missing_input_factor: ["dz/dw"],
    missing_activation_derivative: ["df/dz"],
    extra_activation_derivative: ["dL/dz"],
    used_z_for_f: ["f", "dL/dz"],
    double_factor: ["dL/df"],
    regularized_bias: ["dJ/db"],
    missing_regularization: ["dR/dw"],
    regularization_scale: ["dR/dw"],
    loss_missing_half: ["L"],
    loss_missing_mean: ["J"],
    loss_sign_flipped: ["L"],
    loss_missing_regularization: ["J"],
  };
  const PART_STEPS = {
    loss: "J", "gradients.w": "dJ/dw", "gradients.b": "dJ/db", "per_sample.z": "z", "per_sample.f": "f",
    "per_sample.dL_df": "dL/df", "per_sample.df_dz": "df/dz", "per_sample.dL_dz": "dL/dz",
  };

  function stepsFor(check) {
    const steps = Array.from(document.querySelectorAll("#derivation-body li.step"));
    const byFactor = (names) => steps.filter((s) => names.includes(s.dataset.factor));
    const layer = /^gradients\.layers\.(\d+)\.(W|b)$/.exec(check.name);
    const code = check.mistake ? check.mistake.code : null;
    if (code === "missing_hidden_derivative" || code === "weights_not_transposed") {
      const deltas = steps.filter((s) => /^delta\[\d+\]$/.test(s.dataset.factor));
      const output = Math.max(...deltas.map((s) => Number(s.dataset.layer)));
      return deltas.filter((s) => Number(s.dataset.layer) < output); // the hidden layers' backprop steps
    }
    if (layer) { // a network's ∂J/∂W[l] or ∂J/∂b[l]: its own aggregate step
      return byFactor(["dJ/d" + layer[2] + "[" + (Number(layer[1]) + 1) + "]"]);
    }
    if (code && MISTAKE_STEPS[code]) {
      const found = byFactor(MISTAKE_STEPS[code]);
      const own = found.filter((s) => s.dataset.factor === PART_STEPS[check.name]);
      if (own.length) return own; // missing_mean in gradients.b: the step of dJ/db, not dJ/dw as well
      if (found.length) return found;
    }
    return byFactor([PART_STEPS[check.name]]);
  }

  function clearMistakes() {
    document.querySelectorAll(".mistake-note").forEach((n) => n.remove());
    document.querySelectorAll("li.mistake").forEach((n) => n.classList.remove("mistake"));
  }

  function markMistakes(checks) {
    clearMistakes();
    let first = null;
    const notes = new Map(); // one note per step and cause, naming every part it explains
    for (const check of checks) {
      if (check.correct) continue;
      for (const step of stepsFor(check)) {
        const cause = check.mistake ? check.mistake.code : "";
        const key = step.id + "|" + cause;
        if (notes.has(key)) {
          const entry = notes.get(key);
          entry.parts.push(check.name);
          entry.where.textContent = entry.parts.join(", ");
          continue;
        }
        step.classList.add("mistake");
        const where = el("span", { class: "parts" }, check.name);
        const why = check.mistake ? check.mistake.message : check.message;
        const note = el("div", { class: "mistake-note", role: "note" }, [
          el("strong", {}, ["\u26a0 " + (cause ? "Mistake here (" + cause + ")" : "Wrong here") + ", in ", where, ": "]),
          why,
        ]);
        notes.set(key, { parts: [check.name], where: where });
        step.querySelector("h3").after(note);
        first = first || step;
      }
    }
    if (first) {
      first.scrollIntoView({ block: "center" });
      first.focus({ preventScroll: true });
    }
  }

  function verdictTable(result) {
    const rows = result.checks.map((c) => el("tr", { "data-part": c.name, "data-correct": String(c.correct) }, [
      el("td", {}, c.name),
      el("td", { class: c.correct ? "verdict-right" : "verdict-wrong" }, c.correct ? "\u2713 correct" : "\u2717 wrong"),
      el("td", {}, num(c.points) + " / " + num(c.max_points)),
      el("td", { class: "message" }, [c.message || "", c.mistake ? el("div", { class: "mistake-code" }, "mistake: " + c.mistake.code +
          (c.mistake.also_matches && c.mistake.also_matches.length ? " (also matches " + c.mistake.also_matches.join(", ") + ")" : "")) : null,
        "expected" in c ? el("div", {}, "expected " + short(c.expected)) : null]),
    ]));
    return [
      el("p", { class: "score" }, "Score " + num(result.points) + " / " + num(result.max_points) +
        (result.correct ? ": all correct." : ".")),
      el("div", { class: "table-wrap" }, el("table", { class: "verdicts" }, [
        el("thead", {}, el("tr", {}, ["part", "verdict", "points", "why"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, rows),
      ])),
      result.feedback ? el("p", { class: "feedback" }, result.feedback) : null,
    ].filter(Boolean);
  }

  async function grade() {
    const problem = problemFromForm();
    const answer = parseField("answer", "Your answer");
    if (explained !== JSON.stringify(problem)) await explain();
    setStatus("Grading\u2026");
    const result = await call("/grade", { problem: problem, answer: answer, reveal: $("reveal").checked });
    $("grade-result").replaceChildren(...verdictTable(result));
    markMistakes(result.checks);
    setStatus(result.correct ? "All parts correct." : "Some parts are wrong: the step where it went wrong is marked in the derivation.");
  }

  // --- wiring -----------------------------------------------------------------------------------

  $("model").addEventListener("change", () => fillForm($("model").value));
  $("problem-form").addEventListener("submit", (e) => {
    e.preventDefault();
    busy($("explain-button"), explain);
  });
  $("descent-form").addEventListener("submit", (e) => {
    e.preventDefault();
    busy($("descent-button"), descent);
  });
  $("grade-form").addEventListener("submit", (e) => {
    e.preventDefault();
    busy($("grade-button"), grade);
  });
  showModelFields();
  try {
    explained = JSON.stringify(problemFromForm()); // the server drew the form's own problem
  } catch (_) {
    explained = null;
  }
  renderMath(document.body);
})();

// The learner's page: vanilla JavaScript, no build step. It calls the service's public API
// (POST /gradient, /graph, /descent, /descent/plot, /grade; the catalogue's GETs) like any client, and
// builds the page with DOM methods only (text is never parsed as HTML; SVG comes through DOMParser).
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
    constructor(status, problem, retryAfter) {
      const lines = [(problem.title || "Error") + " (" + status + "): " + (problem.detail || "")];
      for (const e of problem.errors || []) lines.push("\u2022 " + (e.loc || []).join(".") + ": " + e.msg);
      super(lines.join("\n"));
      this.status = status;
      this.problem = problem;
      this.retryAfter = retryAfter; // seconds, from a 429's Retry-After (or its problem's retry_after)
    }
  }

  async function send(path, init, accept) {
    const response = await fetch(path, Object.assign({
      headers: Object.assign({ Accept: accept || "application/json" }, headers()),
    }, init));
    if (!response.ok) {
      let problem = {};
      try {
        problem = await response.json();
      } catch (_) {
        problem = { title: response.statusText };
      }
      const retry = Number.parseInt(response.headers.get("Retry-After") || problem.retry_after, 10);
      throw new ApiError(response.status, problem, Number.isFinite(retry) && retry > 0 ? retry : null);
    }
    return accept === "image/svg+xml" ? response.text() : response.json();
  }

  const call = (path, body, accept) => send(path, { method: "POST", body: JSON.stringify(body) }, accept);
  const get = (path) => send(path, { method: "GET" });

  // --- the form ---------------------------------------------------------------------------------

  class FieldError extends Error {
    constructor(message, field) {
      super(message);
      this.field = field; // the id of the field to fix
    }
  }

  function parseField(id, what) {
    try {
      return JSON.parse($(id).value);
    } catch (e) {
      throw new FieldError(what + " is not valid JSON: " + e.message, id);
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

  // Runs an action with its button disabled; a disabled button loses the keyboard focus, so it gets it
  // back afterwards unless the action moved it somewhere on purpose (a marked step, a field to fix).
  async function busy(button, work, onError) {
    const focused = document.activeElement === button;
    button.disabled = true;
    $("error").textContent = "";
    let hold = 0; // ms to keep the button disabled after a 429
    try {
      await work();
    } catch (err) {
      if (onError) {
        hold = onError(err) || 0;
      } else {
        showError(err);
        setStatus("");
      }
    } finally {
      const release = () => {
        button.disabled = false;
        if (focused && (!document.activeElement || document.activeElement === document.body)) button.focus();
      };
      if (hold > 0) {
        window.setTimeout(() => {
          release();
          setGradeStatus("You may grade again now.");
        }, hold);
      } else {
        release();
      }
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

  // A step of the derivation; `symbolic` ones (a signed problem's, for a student) carry formulas and no value.
  function stepItem(step, m, simp, opts) {
    opts = opts || {};
    const canonical = step.rule === "canonical simplification";
    const children = [
      el("h3", {}, [el("span", { class: "factor" }, factorName(step.factor)), " ", el("span", { class: "kind" }, step.kind)]),
      math(step.latex, step.text),
    ];
    if (step.rule) children.push(el("p", { class: "rule" }, step.rule));
    if (step.note) children.push(el("p", { class: "note" }, step.note));
    if (opts.symbolic) {
      // formulas only: no value of the signed problem is computed on this page
    } else if ("value_ref" in step) {
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
      id: (opts.prefix || "") + stepId(step.factor),
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

  // which derivation steps each catalogued mistake is made in: the catalogue's own (the page carries it)
  const MISTAKE_STEPS = JSON.parse($("mistake-steps").textContent);
  const PART_STEPS = {
    loss: "J", "gradients.w": "dJ/dw", "gradients.b": "dJ/db", "per_sample.z": "z", "per_sample.f": "f",
    "per_sample.dL_df": "dL/df", "per_sample.df_dz": "df/dz", "per_sample.dL_dz": "dL/dz",
  };

  // the layer (1-based, as the steps count them) of a network's part "gradients.layers.<i>.W" or ".b"
  function partLayer(name) {
    const found = /^gradients\.layers\.(\d+)\.(W|b)$/.exec(name);
    return found ? Number(found[1]) + 1 : null;
  }

  function stepsFor(check, root, checks) {
    const steps = Array.from(root.querySelectorAll("li.step"));
    const byFactor = (names) => steps.filter((s) => names.includes(s.dataset.factor));
    const layer = /^gradients\.layers\.(\d+)\.(W|b)$/.exec(check.name);
    const code = check.mistake ? check.mistake.code : null;
    if (code === "missing_hidden_derivative" || code === "weights_not_transposed") {
      const deltas = steps.filter((s) => /^delta\[\d+\]$/.test(s.dataset.factor));
      const output = Math.max(...deltas.map((s) => Number(s.dataset.layer)));
      const hidden = deltas.filter((s) => Number(s.dataset.layer) < output); // the hidden layers' backprop steps
      // A wrong δ[l] makes every layer up to l wrong and none above it: the mistaken step is at or above the
      // highest part with this mistake, and below the lowest part answered right.
      const layers = (keep) => (checks || []).filter(keep).map((c) => partLayer(c.name)).filter((l) => l !== null);
      const low = Math.max(1, ...layers((c) => !c.correct && c.mistake && c.mistake.code === code));
      const high = Math.min(output, ...layers((c) => c.correct));
      const narrowed = hidden.filter((s) => Number(s.dataset.layer) >= low && Number(s.dataset.layer) < high);
      return narrowed.length ? narrowed : hidden;
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

  function markMistakes(checks, root) {
    clearMistakes();
    let first = null;
    const notes = new Map(); // one note per step and cause, naming every part it explains
    for (const check of checks) {
      if (check.correct) continue;
      for (const step of stepsFor(check, root, checks)) {
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
          (c.mistake.also_matches && c.mistake.also_matches.length ? " (also matches " + c.mistake.also_matches.join(", ") + ")" : "") +
          (c.mistake.title ? ": " + c.mistake.title : "")) : null,
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

  function setGradeStatus(text) {
    $("grade-status").textContent = text;
  }

  function gradeSummary(result) {
    const wrong = result.checks.filter((c) => !c.correct).map((c) => c.name + (c.mistake ? " (" + c.mistake.code + ")" : ""));
    return "Score " + num(result.points) + " / " + num(result.max_points) + ": " +
      (wrong.length ? "wrong: " + wrong.join(", ") + "." : "all parts correct.");
  }

  // --- grading a signed problem (a problem token) ------------------------------------------------
  // A student's key may only grade signed problems: /grade with {problem_token, answer}. The page then
  // never calls /gradient or /graph: it shows the problem the token holds (its payload is readable, and
  // the service checks the signature when grading) and the derivation as formulas only, built from the
  // catalogue (GET /activations, /losses, /pairings, which a student may read) and the chain's fixed
  // formulas the page carries (#chain); no number that would give the answer away is ever shown.

  const chain = JSON.parse($("chain").textContent);
  let catalogue = null; // the catalogue's entries by name, fetched once with the key

  function tokenText() {
    return $("problem-token").value.replace(/\s+/g, ""); // a token pasted over several lines
  }

  function readToken(token) {
    const parts = token.split(".");
    if (parts.length !== 2 || !parts[0] || !parts[1]) {
      throw new Error("This is not a problem token: a token is two parts joined by a dot. Paste the whole token.");
    }
    let content;
    try {
      const b64 = parts[0].replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (parts[0].length % 4)) % 4);
      const bytes = Uint8Array.from(window.atob(b64), (c) => c.charCodeAt(0));
      content = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    } catch (_) {
      throw new Error("This problem token cannot be read: it was cut short or altered. Paste the whole token again.");
    }
    const problem = content && content.problem;
    if (!problem || typeof problem !== "object" || typeof problem.model !== "string" || !problem.data) {
      throw new Error("This token holds no problem this page can show.");
    }
    return content;
  }

  function exact(v) {
    return Array.isArray(v) ? "[" + v.map(exact).join(", ") + "]" : String(v).replace(/-/g, "\u2212");
  }

  function pairingOf(problem) {
    if (problem.model === "single_layer") return { activation: problem.activation, loss: problem.loss };
    if (problem.model === "neural_network") {
      const layers = problem.layers || [];
      return { activation: layers.length ? layers[layers.length - 1].activation : "?", loss: problem.loss };
    }
    return chain.presets[problem.model] || { activation: "?", loss: "?" };
  }

  const MAX_SHOWN = { rows: 20, columns: 8, json: 20000 };

  function dataTable(problem) {
    const X = problem.data.X || [], y = problem.data.y || [];
    const n = X.length ? X[0].length : 0;
    if (X.length > MAX_SHOWN.rows || n > MAX_SHOWN.columns) {
      return el("p", {}, "The data (" + X.length + " \u00d7 " + n + ") is too large to show here: it is in the JSON below.");
    }
    const head = el("tr", {}, ["i"].concat(Array.from({ length: n }, (_, j) => "x" + (j + 1)), ["y"])
      .map((h) => el("th", { scope: "col" }, h)));
    const rows = X.map((row, i) => el("tr", {}, [el("th", { scope: "row" }, String(i + 1))]
      .concat(row.map((v) => el("td", {}, exact(v))), [el("td", {}, exact(y[i]))])));
    return el("div", { class: "table-wrap" }, el("table", { class: "token-data" }, [
      el("caption", {}, "The data: X (one example per row) and y"), el("thead", {}, head), el("tbody", {}, rows)]));
  }

  function showTokenProblem() {
    const box = $("token-problem");
    const token = tokenText();
    $("token-derivation").hidden = true;
    $("token-derivation").replaceChildren();
    $("grade-result").replaceChildren();
    clearMistakes();
    if (!token) {
      box.hidden = true;
      box.replaceChildren();
      return;
    }
    box.hidden = false;
    let content;
    try {
      content = readToken(token);
    } catch (err) {
      box.replaceChildren(el("p", { class: "problem" }, err.message + " (You may still press Grade: the service says why it refuses a token.)"));
      return;
    }
    const p = content.problem, pairing = pairingOf(p);
    const X = p.data.X || [];
    const m = X.length, n = m ? X[0].length : 0;
    const items = [
      ["Model", p.model + ": " + pairing.activation + " + " + pairing.loss +
        (p.loss_params ? " (" + Object.entries(p.loss_params).map(([k, v]) => k + " = " + exact(v)).join(", ") + ")" : "")],
      ["Sizes", "m = " + m + " examples, n = " + n + " features" +
        (Array.isArray(p.parameters && p.parameters.b) && p.model !== "neural_network" ? ", k = " + p.parameters.b.length + " outputs" : "") +
        (p.layers ? ", layers " + p.layers.map((l, i) => (i + 1) + ": " + l.activation).join(", ") : "")],
      ["Regularization", p.regularization ? p.regularization.kind + ", \u03bb = " + exact(p.regularization.lambda) : "none"],
    ];
    if (p.parameters && "w" in p.parameters) items.push(["Parameters", "w = " + exact(p.parameters.w) + ", b = " + exact(p.parameters.b)]);
    const expires = new Date(content.exp * 1000);
    const expired = content.exp * 1000 < Date.now();
    items.push(["Expires", expires.toLocaleString() + (expired ? ": this token has expired, ask for a new one" : "")]);
    let json = JSON.stringify(p, null, 1);
    if (json.length > MAX_SHOWN.json) json = json.slice(0, MAX_SHOWN.json) + "\n\u2026 (" + json.length + " characters in all)";
    box.replaceChildren(
      el("h3", {}, "The problem in this token"),
      el("p", { class: "hint" }, "As the token states it; the service checks that it is signed and unaltered when you grade."),
      el("dl", { class: "token-facts" }, items.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { class: k === "Expires" && expired ? "warn" : null }, v)])),
      dataTable(p),
      el("details", {}, [el("summary", {}, "The problem as JSON"), el("pre", { class: "json" }, json)]),
    );
  }

  async function loadCatalogue() {
    if (catalogue) return catalogue;
    const [acts, losses, pairings] = await Promise.all([get("/activations"), get("/losses"), get("/pairings")]);
    const byName = (list) => new Map(list.map((e) => [e.name, e]));
    catalogue = {
      activations: byName(acts),
      losses: byName(losses),
      pairings: new Map(pairings.map((e) => [e.activation + "/" + e.loss, e])),
    };
    return catalogue;
  }

  // The symbolic derivation of a single-layer problem: the same steps as /gradient's breakdown, no values.
  function symbolicSteps(problem, cat) {
    const pairing = pairingOf(problem);
    const act = cat.activations.get(pairing.activation), loss = cat.losses.get(pairing.loss);
    const pair = cat.pairings.get(pairing.activation + "/" + pairing.loss);
    if (!act || !loss || !pair || !pair.compatible) return null;
    const shape = act.outputs === "1" ? "1" : "k";
    const reg = problem.regularization ? problem.regularization.kind : "";
    const skeleton = chain.steps[shape + "/" + reg];
    if (!skeleton) return null;
    const sources = { activation: act, loss: loss, pairing: pair };
    const steps = skeleton.map((s) => {
      const step = Object.assign({}, s);
      if (s.from) Object.assign(step, sources[s.from[0]][s.from[1]]);
      if (s.derivation) step.derivation = sources[s.derivation].derivation;
      if (s.factor === "dL/dz") step.rule = pair.canonical ? chain.rules.canonical : chain.rules.chain;
      delete step.from;
      return step;
    });
    return { steps: steps, pairing: pair };
  }

  // The symbolic derivation of a neural network: #chain's "network" templates filled in for the problem's layers
  // (service/http/handlers/learner.py, symbolic_network, says what each placeholder stands for), in /gradient's order:
  // z[l], a[l] for every layer; L, J, ∂L/∂f, ∂f/∂z, δ[L]; then ∂J/∂W[l], ∂J/∂b[l] and δ[l−1] from the top down.
  function networkSteps(problem, cat) {
    const net = chain.network;
    const names = (problem.layers || []).map((layer) => layer && layer.activation);
    const L = names.length;
    if (!L || names.some((name) => !net.activations[name] || !cat.activations.get(name))) return null;
    const act = cat.activations.get(names[L - 1]), loss = cat.losses.get(problem.loss);
    const pair = cat.pairings.get(names[L - 1] + "/" + problem.loss);
    if (!loss || !pair || !pair.compatible) return null;
    const reg = problem.regularization ? problem.regularization.kind : "";
    if (!net.output[reg] || !net.backward[reg]) return null;
    const sources = { activation: act, loss: loss, pairing: pair };
    const replaceAll = (text, token, value) => text.split(token).join(value);

    function fill(t, l) {
      const at = { l: l, p: l - 1, L: L };
      const name = t.act ? names[at[t.act] - 1] : "";
      const tokens = { "{@l}": String(l), "{@p}": String(l - 1), "{@L}": String(L),
        "{@x}": l === 1 ? net.first_layer_note : "", "{@name}": name };
      const sub = (text, field) => {
        for (const [token, [src, key]] of Object.entries(t.fill || {})) {
          text = replaceAll(text, token, (src === "layer" ? net.activations[name] : sources[src])[key][field]);
        }
        for (const [token, value] of Object.entries(tokens)) text = replaceAll(text, token, value);
        return text;
      };
      const step = { factor: sub(t.factor, "text"), kind: t.kind };
      if (t.layer) step.layer = at[t.layer];
      if (t.from) Object.assign(step, sources[t.from[0]][t.from[1]]);
      else Object.assign(step, { latex: sub(t.latex, "latex"), text: sub(t.text, "text") });
      if (t.derivation) step.derivation = (t.derivation === "layer" ? cat.activations.get(name) : sources[t.derivation]).derivation;
      if (t.rule === "pairing") step.rule = pair.canonical ? chain.rules.canonical : chain.rules.chain;
      return step;
    }

    const steps = [];
    for (let l = 1; l <= L; l++) net.forward.forEach((t) => steps.push(fill(t, l)));
    net.output[reg].forEach((t) => steps.push(fill(t, L)));
    for (let l = L; l >= 1; l--) {
      net.backward[reg].forEach((t) => steps.push(fill(t, l)));
      if (l > 1) steps.push(fill(net.hidden, l));
    }
    return { steps: steps, pairing: pair };
  }

  async function showTokenDerivation(problem) {
    const box = $("token-derivation");
    box.hidden = false;
    const heading = el("h3", { id: "token-derivation-h" }, "The derivation of this problem, formulas only");
    const network = problem.model === "neural_network";
    const cat = await loadCatalogue();
    const built = network ? networkSteps(problem, cat) : symbolicSteps(problem, cat);
    if (!built) {
      box.replaceChildren(heading, el("p", { class: "hint" }, "The catalogue does not describe this problem's " +
        (network ? "layers or output pairing." : "pairing.")));
      return false;
    }
    const items = built.steps.map((s) => stepItem(s, 0, null, { symbolic: true, prefix: "token-" }));
    if (built.pairing.canonical) {
      const item = items.find((li) => li.classList.contains("canonical"));
      item.append(el("p", { class: "explanation" }, "A canonical pairing" +
        (built.pairing.distribution ? " (" + built.pairing.distribution + " distribution)" : "") +
        ": \u2202f/\u2202z cancels against \u2202L/\u2202f, so \u2202L/\u2202z = f \u2212 y" +
        (network ? ", and backpropagation starts from \u03b4[" + problem.layers.length + "] = f \u2212 y." : ".")));
    }
    box.replaceChildren(heading,
      el("p", { class: "hint" }, (network
        ? "The steps of backpropagation through this network, layer by layer, as the service derives them"
        : "The same steps as the worked example's, for this problem's model") +
        "; no value of it is computed here, so nothing gives the answer away."),
      el("ol", { class: "steps", "aria-labelledby": "token-derivation-h" }, items));
    renderMath(box);
    return true;
  }

  // What a refused grading means for the learner, and where the keyboard focus should go to fix it.
  function gradeFailure(err) {
    const lines = [err.message];
    let field = null, hold = 0;
    const detail = (err.problem && err.problem.detail) || "";
    if (err.status === 401) {
      lines.unshift("Your API key was not accepted. Type the key your course gave you into the API key field (above, under \u201cAPI key\u201d).");
      $("api-key").closest("details").open = true;
      field = $("api-key");
    } else if (err.status === 403 && err.problem && "max_attempts" in err.problem) {
      lines.unshift("You have used all " + err.problem.max_attempts + " attempts at this problem: it cannot be graded again with this key.");
    } else if (err.status === 403 && !tokenText() && /\(student\)|send problem_token/.test(detail)) {
      lines.unshift("A student's key grades signed problems only: paste the problem token your course gave you into the Problem token field, then grade.");
      field = $("problem-token");
    } else if (err.status === 403 && /token/.test(detail)) {
      lines.unshift(/expired/.test(detail)
        ? "This problem token has expired: ask for a new one."
        : "The service refused this problem token: it was altered or cut short, or was not signed by this service. Paste the whole token again, or ask for a new one.");
      field = $("problem-token");
    } else if (err.status === 403 && /reveal/.test(detail)) {
      lines.unshift("Only a grader's key may see the expected values: untick \u201cShow the expected values\u201d.");
      field = $("reveal");
    } else if (err.status === 429) {
      const wait = err.retryAfter || 1;
      lines.unshift("Too many requests with this key: wait " + wait + " s, then grade again (the Grade button comes back by itself).");
      hold = Math.min(wait, 600) * 1000;
    } else if (err.status === 422 && (err.problem.errors || []).some((e) => (e.loc || [])[0] === "answer")) {
      field = $("answer");
    } else if (err.field) {
      field = $(err.field);
    }
    $("grade-error").textContent = lines.join("\n");
    setGradeStatus("");
    if (field) field.focus();
    return hold;
  }

  async function gradeToken(token, answer) {
    let content = null;
    try {
      content = readToken(token);
    } catch (_) {
      content = null; // the service says why: it is the judge of a token
    }
    setGradeStatus("Grading against the token\u2026");
    const body = { problem_token: token, answer: answer };
    if ($("reveal").checked) body.reveal = true;
    const result = await call("/grade", body);
    $("grade-result").replaceChildren(...verdictTable(result));
    let marked = false;
    if (content) {
      try {
        marked = (await showTokenDerivation(content.problem)) && !result.correct;
      } catch (err) {
        $("token-derivation").hidden = false;
        $("token-derivation").replaceChildren(el("p", { class: "problem" }, "The formulas could not be loaded: " + err.message));
      }
    }
    if (marked) markMistakes(result.checks, $("token-derivation"));
    setGradeStatus(gradeSummary(result) + (marked ? " The step where it went wrong is marked below." : ""));
  }

  async function grade() {
    $("grade-error").textContent = "";
    const answer = parseField("answer", "Your answer");
    const token = tokenText();
    if (token) return gradeToken(token, answer);
    const problem = problemFromForm();
    if (explained !== JSON.stringify(problem)) await explain();
    setGradeStatus("Grading\u2026");
    const result = await call("/grade", { problem: problem, answer: answer, reveal: $("reveal").checked });
    $("grade-result").replaceChildren(...verdictTable(result));
    markMistakes(result.checks, $("derivation-body"));
    setGradeStatus(gradeSummary(result) + (result.correct ? "" : " The step where it went wrong is marked in the derivation."));
  }

  // --- derive a function (POST /derive) -----------------------------------------------------------

  async function deriveFormula() {
    $("derive-error").textContent = "";
    $("derive-status").textContent = "Deriving\u2026";
    const body = { expression: $("derive-expression").value, variable: $("derive-variable").value.trim() || "z" };
    if ($("derive-in-f").checked) body.in_terms_of = "f";
    const result = await call("/derive", body);
    const steps = result.steps.map((s) => el("li", { class: "derive-step", "data-rule": s.rule }, [
      el("span", { class: "rule" }, s.rule.replace(/_/g, " ")),
      math(s.latex, s.text),
      el("p", { class: "why" }, s.why),
    ]));
    const d = "\\frac{d}{d" + result.variable + "}";
    $("derive-result").replaceChildren(
      math(d + "\\left(" + result.expression.latex + "\\right)", "d/d" + result.variable + " (" + result.expression.text + ")"),
      el("ol", { class: "derive-steps" }, steps),
      el("p", { class: "derive-answer" }, "The derivative" + (result.in_terms_of === "f" ? ", in f:" : ":")),
      math(result.derivative.latex, result.derivative.text),
    );
    renderMath($("derive-result"));
    $("derive-status").textContent = result.steps.length + " steps.";
  }

  function deriveFailure(err) {
    $("derive-status").textContent = "";
    const p = err.problem || {};
    const allowed = p.allowed_names && p.type && p.type.endsWith(":formula-error") && /unknown/.test(p.detail || "")
      ? "\nAllowed: " + p.allowed_names.slice(0, 40).join(" ") : "";
    $("derive-error").textContent = (p.detail || err.message) + allowed;
    return 0;
  }

  // --- a derivation, graded step by step (POST /grade/formula) ---------------------------------------

  function looksLatex(line) {
    return /\\[a-zA-Z]|[{}]/.test(line);
  }

  function stepLines() {
    return $("formula-steps").value.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  }

  // each line as typed, typeset when it is LaTeX (the service's reading comes back with the verdict)
  function previewSteps() {
    const items = stepLines().map((line) =>
      looksLatex(line) && window.katex ? math(line, line, "div") : el("div", { class: "math plain" }, line));
    $("steps-preview").replaceChildren(...items);
    renderMath($("steps-preview"));
  }

  function questionToken() {
    return $("question-token").value.trim();
  }

  async function gradeDerivation() {
    $("formula-error").textContent = "";
    const steps = stepLines();
    if (!steps.length) throw new FieldError("Write at least one step.", "formula-steps");
    const token = questionToken();
    const body = { answer: { steps: steps } };
    if (token) body.question_token = token;
    else body.question = { model: $("formula-model").value, target: $("formula-target").value };
    $("formula-status").textContent = "Grading the derivation\u2026";
    const result = await call("/grade/formula", body);
    const items = result.steps.map((step) => {
      const wrong = !step.correct;
      const first = step.index === result.first_wrong_step;
      const note = el("p", { class: "step-note" }, (step.correct ? "\u2713 " : "\u2717 ") + step.message);
      return el("li", { class: "step" + (wrong ? " wrong" : " right") + (first ? " first-wrong" : ""),
        "data-index": step.index, tabindex: first ? "-1" : null },
      [math(step.latex, step.text, "div"), note, step.mistake ? el("p", { class: "step-code" }, step.mistake.code) : null]);
    });
    $("formula-result").replaceChildren(...items);
    renderMath($("formula-result"));
    const score = "Score " + Math.round(result.score * 100) + "%. ";
    $("formula-status").textContent = score + (result.correct ? "Every step equals the target."
      : "Step " + (result.first_wrong_step + 1) + " is the first that does not equal the target.");
    const marked = $("formula-result").querySelector(".first-wrong");
    if (marked) marked.focus();
  }

  function formulaFailure(err) {
    const lines = [err.message];
    $("formula-error").textContent = lines.join("\n");
    $("formula-status").textContent = "";
    if (err.field) $(err.field).focus();
    return 0;
  }

  $("formula-form").addEventListener("submit", (e) => {
    e.preventDefault();
    busy($("formula-button"), gradeDerivation, formulaFailure);
  });
  $("formula-steps").addEventListener("input", previewSteps);
  $("question-token").addEventListener("input", () => {
    $("question-fields").hidden = questionToken() !== "";
  });
  previewSteps();

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
    busy($("grade-button"), grade, gradeFailure);
  });
  $("derive-form").addEventListener("submit", (e) => {
    e.preventDefault();
    busy($("derive-button"), deriveFormula, deriveFailure);
  });
  $("problem-token").addEventListener("input", showTokenProblem);
  showModelFields();
  showTokenProblem(); // a token the browser kept in the field
  try {
    explained = JSON.stringify(problemFromForm()); // the server drew the form's own problem
  } catch (_) {
    explained = null;
  }
  renderMath(document.body);
})();

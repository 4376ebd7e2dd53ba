"""The computational graph of a /gradient result as SVG, micrograd-style.

Each example i flows left to right, x → z → f → L, into the cost J; the parameters (w, b, or W[l],
b[l] per layer) are shared nodes feeding every example's z. A value node shows its forward value
and its gradient; each edge carries the local derivative backpropagation multiplies by (∂f/∂z,
∂L/∂f, 1/m, ...). Every number is also in a data-* attribute as exact JSON, so what is drawn can be
checked against the /gradient response it came from.

Only the first `max_examples` examples are drawn (a note says how many more there are), and long
vectors are shortened in the text: the drawing stays a few hundred nodes at most.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from service.render.svg import MUTED, attrs, data_json, document, named, num, shape, short, text

MAX_EXAMPLES_DRAWN = 4

NODE_W, NODE_H = 196.0, 58.0
COL_STEP = 380.0
ROW_STEP = 118.0
MARGIN = 24.0
PARAM_ROW = 70.0

FILL = {"data": "#eef3fb", "param": "#fff4d6", "value": "#ffffff", "cost": "#e7f5ea"}
STROKE = {"data": "#3b5b8c", "param": "#8a6100", "value": "#333333", "cost": "#23713a"}
EDGE = "#5b5b5b"
PARAM_EDGE = "#7a5600"  # 6:1 on white: the 11 px labels stay readable (WCAG AA)


class NoBreakdown(ValueError):
    """The result has no breakdown to draw from (explain was off)."""


@dataclass
class Node:
    key: str
    label: str
    value: Any
    grad: Any
    grad_label: str
    kind: str
    x: float = 0.0
    y: float = 0.0
    example: int | None = None


@dataclass
class Edge:
    src: Node
    dst: Node
    label: str
    local: Any
    param: bool = False
    at: float = 0.5
    shown: str | None = None  # the edge's text, when not "label = value"


@dataclass
class Graph:
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, node: Node) -> Node:
        self.nodes.append(node)
        return node

    def link(
        self,
        src: Node,
        dst: Node,
        label: str,
        local: Any,
        *,
        param: bool = False,
        at: float = 0.5,
        shown: str | None = None,
    ) -> None:
        self.edges.append(Edge(src, dst, label, local, param, at, shown))


def clip(s: str, chars: int = 28) -> str:
    """Text that fits its box; the whole value is in the node's title and data attributes."""
    return s if len(s) <= chars else s[: chars - 1] + "…"


def _sup(i: int) -> str:
    return f"⁽{str(i + 1).translate(str.maketrans('0123456789', '⁰¹²³⁴⁵⁶⁷⁸⁹'))}⁾"


def gradient_graph(problem: dict[str, Any], result: dict[str, Any], *, max_examples: int = MAX_EXAMPLES_DRAWN) -> str:
    """The SVG of `result` (a /gradient response with its breakdown) for `problem` (its request)."""
    breakdown = result.get("breakdown")
    if not isinstance(breakdown, dict):
        raise NoBreakdown("the result has no breakdown: compute it with explain on")
    X = problem["data"]["X"]
    m = len(X)
    shown = min(m, max_examples)
    graph = _network(problem, result, shown) if "layers" in breakdown else _single_layer(problem, result, shown)
    if shown < m:
        graph.notes.append(
            f"{m - shown} more example{'s' if m - shown > 1 else ''} not drawn (only the first {shown} of m = {m}); "
            "J and the gradients are over all of them."
        )
    model = result.get("model", problem.get("model", ""))
    pairing = result.get("pairing", {})
    title = f"Computational graph of {model} ({named(pairing.get('activation'))} + {named(pairing.get('loss'))})"
    desc = (
        f"Forward values and gradients for {shown} of {m} examples; J = {num(result.get('loss'))}. "
        "Boxes: value and gradient; edges: the local derivative backpropagation multiplies by."
    )
    return _draw(graph, title, desc)


def _single_layer(problem: dict[str, Any], result: dict[str, Any], shown: int) -> Graph:
    ps = result["breakdown"]["per_sample"]
    params, grads = problem["parameters"], result["gradients"]
    X, y = problem["data"]["X"], problem["data"]["y"]
    m = len(X)
    g = Graph()
    w = g.add(Node("w", "w", params["w"], grads["w"], "∂J/∂w", "param"))
    b = g.add(Node("b", "b", params["b"], grads["b"], "∂J/∂b", "param"))
    J = g.add(Node("J", "J (cost)", result["loss"], 1.0, "∂J/∂J", "cost"))
    stages: list[list[Node]] = []
    for i in range(shown):
        s = _sup(i)
        x = g.add(Node("x", "x" + s, X[i], None, "", "data", example=i))
        z = g.add(Node("z", "z" + s, ps["z"][i], ps["dL_dz"][i], "∂L/∂z", "value", example=i))
        f = g.add(Node("f", "f" + s, ps["f"][i], ps["dL_df"][i], "∂L/∂f", "value", example=i))
        L = g.add(Node("L", f"L{s}  (y = {short(y[i])})", ps["loss"][i], 1.0 / m, "∂J/∂L", "value", example=i))
        stages.append([x, z, f, L])
        g.link(x, z, "∂z/∂x", params["w"], shown="")  # x is data, never learned: no label
        g.link(w, z, "∂z/∂w", X[i], param=True)
        g.link(b, z, "∂z/∂b", 1.0, param=True)
        g.link(z, f, "∂f/∂z", ps["df_dz"][i])
        g.link(f, L, "∂L/∂f", ps["dL_df"][i])
        g.link(L, J, "∂J/∂L", 1.0 / m, shown=f"∂J/∂L = 1/m = {num(1.0 / m)}")
    _place(stages, {1: [w, b]}, J)
    return g


def _network(problem: dict[str, Any], result: dict[str, Any], shown: int) -> Graph:
    bd = result["breakdown"]
    ps, layers = bd["per_sample"], bd["layers"]
    params = problem["parameters"]["layers"]
    grads = result["gradients"]["layers"]
    X, y = problem["data"]["X"], problem["data"]["y"]
    m, depth = len(X), len(layers)
    g = Graph()
    param_nodes: dict[int, list[Node]] = {}
    for li in range(depth):
        W = g.add(Node(f"W[{li + 1}]", f"W[{li + 1}]", params[li]["W"], grads[li]["W"], f"∂J/∂W[{li + 1}]", "param"))
        b = g.add(Node(f"b[{li + 1}]", f"b[{li + 1}]", params[li]["b"], grads[li]["b"], f"∂J/∂b[{li + 1}]", "param"))
        param_nodes[1 + 2 * li] = [W, b]
    J = g.add(Node("J", "J (cost)", result["loss"], 1.0, "∂J/∂J", "cost"))
    stages: list[list[Node]] = []
    for i in range(shown):
        s = _sup(i)
        prev = g.add(Node("a[0]", "x" + s + " = a[0]", X[i], None, "", "data", example=i))
        row = [prev]
        for li, layer in enumerate(layers):
            W, b = param_nodes[1 + 2 * li]
            z = g.add(
                Node(
                    f"z[{li + 1}]",
                    f"z[{li + 1}]{s}",
                    layer["z"][i],
                    layer["delta"][i],
                    f"δ[{li + 1}]",
                    "value",
                    example=i,
                )
            )
            last = li == depth - 1
            if last:
                a = g.add(Node("f", f"f{s} = a[{li + 1}]", ps["f"][i], ps["dL_df"][i], "∂L/∂f", "value", example=i))
            else:
                a = g.add(Node(f"a[{li + 1}]", f"a[{li + 1}]{s}", layer["a"][i], None, "", "value", example=i))
            g.link(prev, z, "∂z/∂a", params[li]["W"], shown="")  # Wᵀ: on the W node already
            g.link(W, z, "∂z/∂W", X[i] if li == 0 else layers[li - 1]["a"][i], param=True)
            g.link(b, z, "∂z/∂b", 1.0, param=True)
            local = ps["df_dz"][i] if last else layer["g_prime"][i]
            g.link(z, a, "∂f/∂z" if last else f"g′(z[{li + 1}])", local)
            row += [z, a]
            prev = a
        L = g.add(Node("L", f"L{s}  (y = {short(y[i])})", ps["loss"][i], 1.0 / m, "∂J/∂L", "value", example=i))
        g.link(prev, L, "∂L/∂f", ps["dL_df"][i])
        g.link(L, J, "∂J/∂L", 1.0 / m, shown=f"∂J/∂L = 1/m = {num(1.0 / m)}")
        stages.append([*row, L])
    _place(stages, param_nodes, J)
    return g


def _place(rows: list[list[Node]], params: dict[int, list[Node]], cost: Node) -> None:
    """Columns left to right; parameters in a band above the column they feed, examples below it."""
    top = MARGIN + (PARAM_ROW + 30.0 if params else 0.0)
    for col, (weights, bias) in params.items():
        # side by side above the z they feed, each with a vertical bus down to every example's z
        target = MARGIN + col * COL_STEP
        weights.x, weights.y = target - 234.0, MARGIN
        bias.x, bias.y = target - 28.0, MARGIN
    for r, row in enumerate(rows):
        for c, node in enumerate(row):
            node.x = MARGIN + c * COL_STEP
            node.y = top + r * ROW_STEP
    cols = max((len(row) for row in rows), default=0)
    cost.x = MARGIN + cols * COL_STEP
    cost.y = top + (len(rows) - 1) * ROW_STEP / 2


def _draw(g: Graph, title: str, desc: str) -> str:
    width = max(n.x for n in g.nodes) + NODE_W + MARGIN
    height = max(n.y for n in g.nodes) + NODE_H + MARGIN + 18.0 * len(g.notes) + 10
    body = [
        "<defs><marker id='graph-arrow' viewBox='0 0 10 10' refX='10' refY='5' markerWidth='7' markerHeight='7' "
        f"orient='auto-start-reverse'><path d='M 0 0 L 10 5 L 0 10 z' fill='{EDGE}'/></marker></defs>",
        f"<rect {attrs(width=width, height=height, fill='#ffffff')}/>",
    ]
    body += [_edge(e) for e in g.edges if e.param]
    body += [_edge(e) for e in g.edges if not e.param]
    body += [_node(n) for n in g.nodes]
    y = height - MARGIN + 4 - 18.0 * (len(g.notes) - 1)
    for note in g.notes:
        body.append(text(MARGIN, y, note, class_="note", fill=MUTED, font_size=13))
        y += 18.0
    return document(width, height, body, ident="graph-svg", title=title, desc=desc)


def _node(n: Node) -> str:
    data = {
        "class_": f"node node-{n.kind}",
        "data_node": n.key,
        "data_example": n.example,
        "data_value": data_json(n.value),
        "data_grad": None if n.grad is None else data_json(n.grad),
    }
    parts = [
        f"<g {attrs(**data)}>",
        f"<rect {attrs(x=n.x, y=n.y, width=NODE_W, height=NODE_H, rx=6, fill=FILL[n.kind], stroke=STROKE[n.kind])}/>",
        text(n.x + 8, n.y + 17, n.label, font_weight="bold", class_="label"),
        text(n.x + 8, n.y + 34, clip("value " + short(n.value)), class_="value"),
    ]
    full = f"{n.label}: value {short(n.value, 12)}"
    if n.grad is not None:
        parts.append(text(n.x + 8, n.y + 50, clip(f"{n.grad_label} {short(n.grad)}"), class_="grad", fill="#8a1c1c"))
        full += f", {n.grad_label} {short(n.grad, 12)}"
    parts.insert(1, f"<title>{escape(full)}</title>")  # the whole value, on hover
    parts.append("</g>")
    return "".join(parts)


def _edge(e: Edge) -> str:
    color = PARAM_EDGE if e.param else EDGE
    x2, y2 = e.dst.x, e.dst.y + NODE_H / 2
    if e.shown is not None:
        label = e.shown
    elif isinstance(e.local, list) and e.local and isinstance(e.local[0], list):  # softmax: one k×k per example
        label = f"{e.label}: {shape(e.local)} Jacobian"
    else:
        label = f"{e.label} = {short(e.local)}"
    label = clip(label, 30)
    anchor = "middle"
    if e.param:
        # w (left) and b (right) come down their own bus and enter z above and below x's edge
        is_weight = e.src.x < e.dst.x - 100
        bus = e.src.x + NODE_W - 10 if is_weight else e.src.x + 12
        y2 += -12 if is_weight else 12
        drawn = f"<path {attrs(d=f'M {bus:.1f} {e.src.y + NODE_H:.1f} V {y2:.1f} H {x2:.1f}', fill='none')} "
        drawn += attrs(stroke=color, stroke_width=1.2, stroke_dasharray="4 3", marker_end="url(#graph-arrow)") + "/>"
        lx, ly = e.dst.x - 58.0, y2 + (-5 if is_weight else 13)
        anchor = "end"
    else:
        x1, y1 = e.src.x + NODE_W, e.src.y + NODE_H / 2
        lx, ly = x1 + (x2 - x1) * e.at, y1 + (y2 - y1) * e.at - 5
        line = attrs(x1=x1, y1=y1, x2=x2, y2=y2, stroke=color, stroke_width=1.2, marker_end="url(#graph-arrow)")
        drawn = f"<line {line}/>"
    data = {
        "class_": "edge edge-param" if e.param else "edge",
        "data_from": e.src.key,
        "data_to": e.dst.key,
        "data_example": e.dst.example if e.dst.example is not None else e.src.example,
        "data_local": data_json(e.local),
    }
    out = f"<g {attrs(**data)}>{drawn}"
    if label:
        w = 6.4 * len(label) + 8
        left = lx - w / 2 if anchor == "middle" else lx - w + 4
        out += f"<rect {attrs(x=left, y=ly - 11, width=w, height=15, rx=3, fill='#ffffff', opacity=0.9)}/>"
        out += text(lx, ly, label, text_anchor=anchor, font_size=11, fill=color, class_="edge-label")
    return out + "</g>"

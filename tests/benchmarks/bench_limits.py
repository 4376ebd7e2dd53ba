"""The largest requests the default limits accept: their time and the server's peak memory.

    python -m tests.benchmarks.bench_limits [--case all] [--rows 250000] [--features 20] [--repeat 3]

Cases (one fresh server each, so that its peak resident memory, VmHWM, is the case's own):

- gradient: with the defaults (body ≤ 64 MiB, m ≤ 10⁶, n ≤ 10⁵, m·n ≤ 5·10⁶), the most numbers a body
  can carry is m·n = 5·10⁶: X of 250,000 × 20 entries written as single digits (about 10 MB), logistic
  regression.
- network: the largest neural_network: m·Σ weights at MAX_NETWORK_WORK under MAX_PARAMETERS (2,000 ×
  1,000 inputs, one sigmoid layer of 998 units), forward and backward, explain off. (m·Σ units is then
  half of MAX_NETWORK_VALUES; descent-network-998 evaluates a network at MAX_NETWORK_VALUES.)
- network-explain: a network whose full breakdown is just under MAX_EXPLAIN_VALUES.
- batch-*: /grade/batch at MAX_BATCH_WORK: many small answers to one problem, answers with every
  per-example part to the biggest problem, and many distinct problems as items.
- descent-*: /descent at MAX_DESCENT_WORK (the most steps it allows): logistic regression on 10⁶ × 1 with
  compare_with (two runs), a network on 10,000 examples with 100 sigmoid units (the most elementwise
  work per unit of the formula), and one on 4,000 examples with 998 units (the most memory per step).

The script starts the service on a free loopback port, posts the request, and reports the wall time
per request and the server process's peak resident memory next to the body's size. A script, not a
test: it does not import pytest.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from service.http.handlers.descent import step_work
from service.settings import Settings
from tests.system.server import running_service


def _body(rows: int, features: int) -> bytes:
    row = "[" + ",".join("1" if j % 2 else "0" for j in range(features)) + "]"
    X = "[" + ",".join([row] * rows) + "]"
    y = "[" + ",".join("1" if i % 2 else "0" for i in range(rows)) + "]"
    w = "[" + ",".join(["0.01"] * features) + "]"
    return (
        '{"model": "logistic_regression", "parameters": {"w": '
        + w
        + ', "b": 0.0}, "data": {"X": '
        + X
        + ', "y": '
        + y
        + "}}"
    ).encode()


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _digits(rows: int, cols: int) -> str:
    row = "[" + ",".join("1" if j % 2 else "0" for j in range(cols)) + "]"
    return "[" + ",".join([row] * rows) + "]"


def _labels(rows: int) -> str:
    return "[" + ",".join("1" if i % 2 else "0" for i in range(rows)) + "]"


def _network(m: int, n: int, units: int, **extra: object) -> dict[str, object]:
    """A sigmoid layer of `units` and a sigmoid output on m × n digits, as a dict with X and y as raw JSON."""
    return {
        "model": "neural_network",
        "layers": [{"activation": "sigmoid"}, {"activation": "sigmoid"}],
        "loss": "binary_cross_entropy",
        "parameters": {
            "layers": [
                {"W": [[0.01] * units] * n, "b": [0.0] * units},
                {"W": [[0.01]] * units, "b": [0.0]},
            ]
        },
        "data": {"X": "@X", "y": "@y"},
        **extra,
    }


def _encode(doc: dict[str, object], m: int, n: int) -> bytes:
    text = json.dumps(doc)
    return text.replace('"@X"', _digits(m, n)).replace('"@y"', _labels(m)).encode()


def _descent(problem: dict[str, object], shapes: list[tuple[int, int]], m: int, runs: int, **extra: object) -> dict:
    per_step = runs * step_work(m, shapes)
    steps = Settings().max_descent_work // per_step - 1
    return {"problem": problem, "learning_rate": 0.01, "steps": steps, "patience": 1000, **extra}


def cases(rows: int, features: int) -> dict[str, tuple[str, str, bytes]]:
    """name: (path, description, body)."""
    s = Settings()
    out: dict[str, tuple[str, str, bytes]] = {
        "gradient": (
            "/gradient",
            f"logistic regression, m = {rows}, n = {features} (m·n = {rows * features})",
            _body(rows, features),
        )
    }
    m, n, units = 2000, 1000, 998
    assert m * n * 1 <= s.max_elements and (n + 1) * units + units + 1 <= s.max_parameters
    assert m * (n * units + units) <= s.max_network_work and m * (units + 1) <= s.max_network_values
    out["network"] = (
        "/gradient",
        f"neural_network m = {m}, n = {n}, sigmoid {units} + sigmoid 1: m·Σ weights = {m * (n * units + units)}, "
        f"m·Σ units = {m * (units + 1)}",
        _encode(_network(m, n, units), m, n),
    )
    m, n, units = 140, 10, 1000
    assert m * (7 * (units + 1) + 12) <= s.max_explain_values
    out["network-explain"] = (
        "/gradient",
        f"neural_network m = {m}, n = {n}, {units} units, explain full ({m * (7 * (units + 1) + 12)} numbers)",
        _encode(_network(m, n, units, explain="full"), m, n),
    )
    m = 1_000_000
    logistic = {"model": "logistic_regression", "parameters": {"w": [0.0], "b": 0.0}, "data": {"X": "@X", "y": "@y"}}
    doc = _descent(logistic, [(1, 1)], m, 2, compare_with={"activation": "sigmoid", "loss": "squared_error"})
    out["descent-logistic"] = (
        "/descent",
        f"/descent logistic m = {m}, n = 1, two runs (compare_with), {doc['steps']} steps",
        _encode(doc, m, 1),
    )
    for m, units in ((10_000, 100), (4000, 998)):
        doc = _descent(_network(m, 1, units), [(1, units), (units, 1)], m, 1)
        out[f"descent-network-{units}"] = (
            "/descent",
            f"/descent neural_network m = {m}, n = 1, {units} sigmoid units, {doc['steps']} steps",
            _encode(doc, m, 1),
        )
    out.update(_batches(s))
    return out


_ANSWER_SMALL = {
    "loss": 0.4,
    "gradients": {"w": [-0.2, -0.3], "b": -0.2},
    "per_sample": {"z": [-1.0, -1.0, -1.0, 0.75, 1.0, 0.5], "f": [0.27, 0.27, 0.27, 0.68, 0.73, 0.62]},
}
_WORKED = {
    "model": "logistic_regression",
    "parameters": {"w": [1, 1], "b": -3},
    "data": {"X": [[0.5, 1.5], [1, 1], [1.5, 0.5], [3, 0.5], [2, 2], [1, 2.5]], "y": [0, 0, 0, 1, 1, 1]},
}


def _fit(make: Callable[[int], bytes], reference: int, s: Settings) -> tuple[int, bytes]:
    """The most answers (or items) whose body `make(count)` the batch budget admits, and that body."""
    from service.http.handlers.grading import ANSWER_WORK, BYTE_WORK

    def work(count: int, body: bytes) -> int:
        return BYTE_WORK * len(body) + ANSWER_WORK * count + abs(reference) * (count if reference < 0 else 1)

    one, two = work(1, make(1)), work(2, make(2))
    count = max(1, int((s.max_batch_work - (one - (two - one))) / max(1, two - one)))
    count = min(count, s.max_batch_items)
    body = make(count)
    while work(count, body) > s.max_batch_work:
        count = int(count * 0.97)
        body = make(count)
    return count, body


def _batches(s: Settings) -> dict[str, tuple[str, str, bytes]]:
    """The largest /grade/batch requests MAX_BATCH_WORK admits, of three shapes: many small answers
    to one problem, a few answers with every per-example part to the biggest problem, and many
    distinct problems as items."""
    from service.http.handlers.grading import REFERENCE_PASSES, REFERENCE_WORK

    out: dict[str, tuple[str, str, bytes]] = {}
    small = json.dumps(_ANSWER_SMALL)
    worked = json.dumps(_WORKED)
    count, body = _fit(
        lambda c: ('{"problem": ' + worked + ', "answers": [' + ", ".join([small] * c) + "]}").encode(),
        REFERENCE_WORK + REFERENCE_PASSES * 12,
        s,
    )
    out["batch-answers"] = ("/grade/batch", f"{count} answers (5 parts each) to the course's worked example", body)
    m, n = 250_000, 20
    z = "[" + ",".join(["0.5"] * m) + "]"
    answer = '{"loss": 0.7, "per_sample": {"z": ' + z + ', "f": ' + z + ', "dL_dz": ' + z + "}}"
    problem = _body(m, n).decode()
    count, body = _fit(
        lambda c: ('{"problem": ' + problem + ', "answers": [' + ",".join([answer] * c) + "]}").encode(),
        REFERENCE_WORK + REFERENCE_PASSES * m * n,
        s,
    )
    out["batch-big"] = (
        "/grade/batch",
        f"{count} answers with z, f and dL/dz (m = {m}) to a logistic regression of m·n = {m * n}",
        body,
    )
    m, n = 1000, 8
    item = '{"problem": ' + _body(m, n).decode() + ', "answer": {"loss": 0.7}}'

    def items(c: int) -> bytes:  # each a distinct problem
        return (
            '{"items": [' + ",".join(item.replace('"b": 0.0', f'"b": {i / 1000}', 1) for i in range(c)) + "]}"
        ).encode()

    count, body = _fit(items, -(REFERENCE_WORK + REFERENCE_PASSES * m * n), s)
    out["batch-items"] = ("/grade/batch", f"{count} items, each its own logistic regression of m = {m}, n = {n}", body)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="all", help="gradient, network, network-explain, descent-…, or all")
    parser.add_argument("--rows", type=int, default=250_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    for name, (path, what, body) in cases(args.rows, args.features).items():
        if args.case not in ("all", name) and not (args.case.endswith("…") and name.startswith(args.case[:-1])):
            continue
        with running_service() as svc:
            baseline = _peak_rss_mb(svc.proc.pid)
            times = []
            with httpx.Client(base_url=svc.base, timeout=600) as client:
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    r = client.post(path, content=body, headers={"content-type": "application/json"})
                    times.append(time.perf_counter() - start)
                    assert r.status_code == 200, r.text[:300]
            peak = _peak_rss_mb(svc.proc.pid)
        print(f"{name}: {what}, body {len(body) / 2**20:.1f} MiB")
        print(f"  time per request: median {statistics.median(times):.2f} s, max {max(times):.2f} s over {args.repeat}")
        print(f"  server peak RSS: {peak:.0f} MiB (idle after start: {baseline:.0f} MiB)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

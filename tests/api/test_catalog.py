"""The catalogue (GET /activations, /losses, /pairings, /models) and operations (/healthz, /readyz, /version)."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import service
from service.app import create_app
from service.compute.activations import ActivationName
from service.compute.losses import LossName
from tests.api.helpers import PRESET_PAIRINGS, assert_problem, single_layer, strict_loads

ACTIVATIONS = [a.value for a in ActivationName]
LOSSES = [lo.value for lo in LossName]
PRESETS = list(PRESET_PAIRINGS)


def get(client: TestClient, path: str) -> Any:
    resp = client.get(path)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].split(";")[0] == "application/json"
    return strict_loads(resp.text)


def _math_md_names(section: str) -> list[str]:
    """The names in the first column of docs/design/math.md's table under `## {section}`."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "design" / "math.md").read_text()
    part = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z_]+)`", part, re.M)


def test_registries_are_what_math_md_lists() -> None:
    """The enums the catalogue is generated from hold docs/design/math.md's names, in its order (the
    tests below compare the catalogue with the enums): a new entry is documented there too."""
    assert _math_md_names("Activations") == ACTIVATIONS
    assert _math_md_names("Losses") == LOSSES


def test_activations(client: TestClient) -> None:
    items = get(client, "/activations")
    assert [a["name"] for a in items] == ACTIVATIONS
    for a in items:
        for key in ("formula", "derivative"):
            assert set(a[key]) >= {"latex", "text"} and a[key]["latex"] and a[key]["text"]
        assert isinstance(a["derivation"], list) and a["derivation"]
    by = {a["name"]: a for a in items}
    assert by["relu"]["kinks"]  # relu'(0) = 0 is a documented choice
    assert by["sigmoid"]["kinks"] is None


def test_losses(client: TestClient) -> None:
    items = get(client, "/losses")
    assert [lo["name"] for lo in items] == LOSSES
    by = {lo["name"]: lo for lo in items}
    for lo in items:
        assert lo["formula"]["latex"] and lo["derivative"]["latex"]
        assert isinstance(lo["params"], list)
    assert by["huber"]["params"] == [
        {"name": "delta", "default": 1.0, "description": by["huber"]["params"][0]["description"]}
    ]
    assert all(lo["params"] == [] for name, lo in by.items() if name != "huber")
    assert by["poisson"]["targets"]["min"] == 0 and by["poisson"]["targets"]["min_inclusive"] is True
    assert by["binary_cross_entropy"]["targets"]["max"] == 1


def test_pairings_cover_every_combination(client: TestClient) -> None:
    items = get(client, "/pairings")
    assert len(items) == len(ACTIVATIONS) * len(LOSSES)
    assert [(p["activation"], p["loss"]) for p in items] == list(itertools.product(ACTIVATIONS, LOSSES))
    for p in items:
        assert isinstance(p["compatible"], bool)
        if p["compatible"]:
            assert "reason" not in p or p["reason"] is None
            assert isinstance(p["canonical"], bool)
            assert p["dL_dz"]["latex"] and p["dL_dz"]["text"]
        else:
            assert isinstance(p["reason"], str) and len(p["reason"]) > 20
    canonical = {(p["activation"], p["loss"]): p["model"] for p in items if p.get("canonical")}
    assert canonical == {pair: model for model, pair in PRESET_PAIRINGS.items()}
    non_canonical_models = {p["model"] for p in items if p["compatible"] and not p["canonical"]}
    assert non_canonical_models == {"single_layer"}


@pytest.mark.parametrize(
    ("activation", "loss"),
    [
        ("identity", "binary_cross_entropy"),
        ("relu", "poisson"),
        ("tanh", "categorical_cross_entropy"),
        ("softmax", "poisson"),
    ],
)
def test_math_md_incompatible_pairings_are_listed(client: TestClient, activation: str, loss: str) -> None:
    by = {(p["activation"], p["loss"]): p for p in get(client, "/pairings")}
    assert by[(activation, loss)]["compatible"] is False
    assert by[(activation, loss)]["reason"]


def test_pairings_agree_with_post_gradient(client: TestClient) -> None:
    """Every compatible pairing is computed; every incompatible one is refused with the catalogue's reason."""
    for p in get(client, "/pairings"):
        act, loss = p["activation"], p["loss"]
        if act == "softmax":
            body = single_layer("softmax", "squared_error")
        else:
            body = single_layer("sigmoid", "binary_cross_entropy")  # targets in [0, 1]: valid for every scalar loss
        body = {**body, "activation": act, "loss": loss}
        resp = client.post("/gradient", json=body)
        if p["compatible"]:
            assert resp.status_code == 200, (act, loss, resp.text)
            assert resp.json()["pairing"]["canonical"] is p["canonical"]
        else:
            problem = assert_problem(resp, 422, "incompatible-pairing")
            assert problem["detail"] == p["reason"]


def test_models(client: TestClient) -> None:
    items = get(client, "/models")
    assert [m["name"] for m in items] == [*PRESETS, "single_layer", "neural_network"]
    for m in items[:4]:
        assert (m["activation"], m["loss"]) == PRESET_PAIRINGS[m["name"]]
        assert m["canonical"] is True
        assert m["description"]
    assert items[4]["description"]


def test_healthz(client: TestClient) -> None:
    assert get(client, "/healthz") == {"status": "ok"}


def test_readyz_inside_the_lifespan(client: TestClient) -> None:
    assert get(client, "/readyz") == {"status": "ready"}


def test_readyz_before_startup() -> None:
    """Without the lifespan (not started), the service says it is not ready."""
    resp = TestClient(create_app()).get("/readyz")  # no `with`: startup never runs
    assert resp.status_code == 503


def test_version(client: TestClient) -> None:
    out = get(client, "/version")
    assert out["service"] == service.__version__
    assert isinstance(out["service"], str) and out["service"]


def test_openapi_lists_every_name(client: TestClient) -> None:
    """The schemas come from the registries too: every activation and loss name is in the OpenAPI document."""
    text = client.get("/openapi.json").text
    for name in ACTIVATIONS + LOSSES + [*PRESETS, "single_layer"]:
        assert f'"{name}"' in text, name

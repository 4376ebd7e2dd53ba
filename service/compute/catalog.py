"""JSON-ready descriptions of the registries, for the catalogue endpoints and the docs."""

from __future__ import annotations

from typing import Any

from service.compute.activations import ACTIVATIONS, ActivationName
from service.compute.derivations import activation_derivation, loss_derivation
from service.compute.domains import Formula, Interval
from service.compute.losses import LOSSES, LossName, make_loss
from service.compute.model_names import ModelName
from service.compute.pairings import CANONICAL, PRESETS, Pairing, compatibility


def _f(f: Formula) -> dict[str, str]:
    return {"latex": f.latex, "text": f.text}


def _steps(steps: Any) -> list[dict[str, str]]:
    return [{"rule": str(s.rule), "latex": s.latex, "text": s.text, "why": s.why} for s in steps]


def activations() -> list[dict[str, Any]]:
    out = []
    for name, act in ACTIVATIONS.items():
        out.append(
            {
                "name": str(name),
                "outputs": "k (one per class)" if act.vector else "1",
                "formula": _f(act.formula),
                "derivative": _f(act.derivative_formula),
                "range": act.output_range.describe(),
                "stable_evaluation": act.stable_evaluation,
                "kinks": act.kinks,
                "derivation": _steps(activation_derivation(name)),
            }
        )
    return out


def losses() -> list[dict[str, Any]]:
    out = []
    for name, cls in LOSSES.items():
        out.append(
            {
                "name": str(name),
                "formula": _f(cls.formula),
                "derivative": _f(cls.derivative_formula),
                "targets": {**cls.targets.describe(), "text": cls.targets_text},
                "needs_f_in": cls.f_domain.describe(),
                "params": [
                    {"name": p.name, "default": p.default, "description": p.description} for p in cls.param_specs
                ],
                "kinks": cls.kinks,
                "derivation": _steps(loss_derivation(name)),
            }
        )
    return out


def pairings() -> list[dict[str, Any]]:
    out = []
    for a in ActivationName:
        for lo in LossName:
            ok, why = compatibility(a, lo)
            entry: dict[str, Any] = {"activation": str(a), "loss": str(lo), "compatible": ok}
            if not ok:
                entry["reason"] = why
                out.append(entry)
                continue
            pairing = Pairing(ACTIVATIONS[a], make_loss(lo))
            info = CANONICAL.get((a, lo))
            entry.update(
                {
                    "canonical": info is not None,
                    "model": str(info.model) if info else str(ModelName.SINGLE_LAYER),
                    "targets": LOSSES[lo].targets_text,
                    "dL_dz": _f(pairing.dL_dz_formula),
                }
            )
            if info is not None:
                entry["distribution"] = info.distribution
            out.append(entry)
    return out


_DESCRIPTIONS = {
    ModelName.LINEAR_REGRESSION: "Real-valued targets; f = z, squared error (J = 1/(2m) Σ (f − y)²).",
    ModelName.LOGISTIC_REGRESSION: "Binary (or soft) labels in [0, 1]; f = σ(z), binary cross-entropy.",
    ModelName.SOFTMAX_REGRESSION: "k classes; f = softmax(z) with w n×k and b of k entries, categorical cross-entropy.",
    ModelName.POISSON_REGRESSION: "Counts y ≥ 0; f = e^z, Poisson negative log-likelihood.",
}


def models() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for model, (a, lo) in PRESETS.items():
        vector = ACTIVATIONS[a].vector
        out.append(
            {
                "name": str(model),
                "activation": str(a),
                "loss": str(lo),
                "canonical": True,
                "description": _DESCRIPTIONS[model],
                "parameters": {"w": "n×k rows" if vector else "n numbers", "b": "k numbers" if vector else "a number"},
                "targets": LOSSES[lo].targets_text if vector else f"y in {LOSSES[lo].targets.text}",
            }
        )
    out.append(
        {
            "name": str(ModelName.SINGLE_LAYER),
            "activation": "any (request field `activation`)",
            "loss": "any compatible (request field `loss`, parameters in `loss_params`)",
            "description": "Any compatible activation + loss pairing, canonical or not (see GET /pairings).",
            "parameters": {"w": "n numbers, or n×k rows with softmax", "b": "a number, or k numbers with softmax"},
            "targets": "as the loss takes them (see GET /losses)",
        }
    )
    out.append(
        {
            "name": str(ModelName.NEURAL_NETWORK),
            "activation": "one per layer (request field `layers`); softmax only in the last",
            "loss": "any loss compatible with the last layer's activation",
            "description": "Several layers trained by backpropagation; the breakdown shows z, a and δ per layer.",
            "parameters": {"layers": "W[l] (n_in × n_out) and b[l] (n_out) per layer"},
            "targets": "as the loss takes them (see GET /losses)",
        }
    )
    return out


def target_interval(loss: LossName) -> Interval | None:
    """The targets' interval for a scalar loss (None for categorical targets)."""
    t = LOSSES[loss].targets
    return t if isinstance(t, Interval) else None

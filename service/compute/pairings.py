"""Pairings of an activation with a loss: compatibility, the canonical flag, stable kernels.

A pairing composes the two objects (as scikit-learn's BaseLoss(closs, link) does). The general
chain rule ∂L/∂z = ∂L/∂f · ∂f/∂z always exists; canonical pairings and the pairings where a
plain product would lose precision carry a fused kernel computed from z instead.

Kernel shapes: z is (m,) for scalar activations, (m, k) for softmax; y has the shape of f
(class indices already one-hot). A kernel returns f (shape of z), the per-example losses L (m,)
and ∂L/∂z (shape of z).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from service.compute import stable
from service.compute.activations import ACTIVATIONS, Activation, ActivationName
from service.compute.domains import Formula, Interval
from service.compute.errors import IncompatiblePairing
from service.compute.losses import LOSSES, Loss, LossName, make_loss
from service.compute.model_names import ModelName
from service.compute.stable import Array

Kernel = Callable[[Activation, Loss, Array, Array], tuple[Array, Array, Array]]
Factors = Callable[[Activation, Loss, Array, Array, Array], tuple[Array, Array]]


@dataclass(frozen=True)
class Canonical:
    """Why a canonical pairing's ∂L/∂z is f − y: the exponential family behind it."""

    model: ModelName
    distribution: str
    log_partition: Formula  # A(z), with L = A(z) − y·z + (terms without z)
    link: str
    cancellation: Formula  # the two chain-rule factors multiplied out to f − y


CANONICAL: dict[tuple[ActivationName, LossName], Canonical] = {
    (ActivationName.IDENTITY, LossName.SQUARED_ERROR): Canonical(
        ModelName.LINEAR_REGRESSION,
        "Gaussian",
        Formula(r"A(z) = \tfrac{1}{2} z^{2}", "A(z) = z^2 / 2"),
        "identity link, whose inverse is the identity",
        Formula(
            r"\frac{\partial L}{\partial f}\,\frac{\partial f}{\partial z} = (f - y)\cdot 1 = f - y",
            "dL/df * df/dz = (f - y) * 1 = f - y",
        ),
    ),
    (ActivationName.SIGMOID, LossName.BINARY_CROSS_ENTROPY): Canonical(
        ModelName.LOGISTIC_REGRESSION,
        "Bernoulli",
        Formula(r"A(z) = \log\left(1 + e^{z}\right)", "A(z) = log(1 + e^z)"),
        "logit link, whose inverse is sigmoid",
        Formula(
            r"\frac{\partial L}{\partial f}\,\frac{\partial f}{\partial z} = "
            r"\frac{f - y}{f\,(1 - f)}\cdot f\,(1 - f) = f - y",
            "dL/df * df/dz = (f - y) / (f (1 - f)) * f (1 - f) = f - y",
        ),
    ),
    (ActivationName.SOFTMAX, LossName.CATEGORICAL_CROSS_ENTROPY): Canonical(
        ModelName.SOFTMAX_REGRESSION,
        "categorical",
        Formula(r"A(z) = \log \sum_{l} e^{z_l}", "A(z) = log sum_l e^(z_l)"),
        "multinomial logit link, whose inverse is softmax",
        Formula(
            r"\frac{\partial L}{\partial z_l} = \sum_{k} \left(-\frac{y_k}{f_k}\right) f_k\,(\delta_{kl} - f_l)"
            r" = -y_l + f_l \sum_{k} y_k = f_l - y_l",
            "dL/dz_l = sum_k (-y_k / f_k) f_k (delta_kl - f_l) = -y_l + f_l sum_k y_k = f_l - y_l  (sum_k y_k = 1)",
        ),
    ),
    (ActivationName.EXP, LossName.POISSON): Canonical(
        ModelName.POISSON_REGRESSION,
        "Poisson",
        Formula(r"A(z) = e^{z}", "A(z) = e^z"),
        "log link, whose inverse is exp",
        Formula(
            r"\frac{\partial L}{\partial f}\,\frac{\partial f}{\partial z} = \left(1 - \frac{y}{f}\right) f = f - y",
            "dL/df * df/dz = (1 - y / f) * f = f - y",
        ),
    ),
}

PRESETS: dict[ModelName, tuple[ActivationName, LossName]] = {c.model: key for key, c in CANONICAL.items()}

# Why a loss refuses values of f outside its domain, in the learner's terms.
_DOMAIN_CONSEQUENCE: dict[LossName, str] = {
    LossName.BINARY_CROSS_ENTROPY: "it takes log f and log(1 − f), which are undefined unless 0 < f < 1",
    LossName.POISSON: "it takes log f, which is undefined for f ≤ 0 (log 0 = −∞)",
}


def compatibility(activation: ActivationName, loss: LossName) -> tuple[bool, str | None]:
    """Whether `activation` can feed `loss`, and if not, why (one sentence for a learner)."""
    act = ACTIVATIONS[activation]
    loss_cls = LOSSES[loss]
    if loss is LossName.CATEGORICAL_CROSS_ENTROPY and not act.vector:
        return False, (
            f"categorical_cross_entropy needs k outputs that form a probability distribution; "
            f"{activation} gives one number per example: use softmax"
        )
    if act.vector:
        if loss in (LossName.CATEGORICAL_CROSS_ENTROPY, LossName.SQUARED_ERROR):
            return True, None
        return False, (
            f"softmax gives k outputs per example; only categorical_cross_entropy (canonical) and "
            f"squared_error take several outputs, {loss} takes one"
        )
    rng = act.output_range
    dom = loss_cls.f_domain
    assert isinstance(rng, Interval) and isinstance(dom, Interval)
    if dom.includes(rng):
        return True, None
    why = _DOMAIN_CONSEQUENCE.get(loss, f"it is defined only for f in {dom.text}")
    return False, f"{activation} gives f in {rng.text}, but {loss} needs f in {dom.text}: {why}"


# --- kernels -------------------------------------------------------------------------------


def _general(act: Activation, loss: Loss, z: Array, y: Array) -> tuple[Array, Array, Array]:
    # The plain chain rule; used where the product of the two factors loses nothing.
    f = act.value(z)
    with np.errstate(over="ignore", invalid="ignore"):
        L = loss.value(f, y)
        dL_dz = loss.dL_df(f, y) * act.derivative(z, f)
    return f, L, dL_dz


def _identity_squared_error(act: Activation, loss: Loss, z: Array, y: Array) -> tuple[Array, Array, Array]:
    with np.errstate(over="ignore"):
        r = z - y  # f - y
        return z.copy(), 0.5 * r * r, r


def _sigmoid_bce(act: Activation, loss: Loss, z: Array, y: Array) -> tuple[Array, Array, Array]:
    # Two transcendentals per example: e = e^(−|z|) and log1p(e). With z⁺ = max(z, 0) and
    # z⁻ = z⁺ − z = max(−z, 0) (both exact), softplus(±z) = z^± + log1p(e), so
    # L = softplus(z) − y z = (1−y) softplus(z) + y softplus(−z) = log1p(e) + (1−y) z⁺ + y z⁻:
    # non-negative terms, exact for 0/1 labels at any z (softplus(z) − z would cancel for large z).
    # In place where possible: each pass over a block is a pass over memory the cache holds.
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.abs(z)
        np.negative(e, out=e)
        np.exp(e, out=e)
        one_plus = e + 1.0
        big = np.reciprocal(one_plus)  # σ(|z|)
        small = np.divide(e, one_plus, out=one_plus)  # σ(−|z|), exact down to subnormals
        pos = z >= 0
        s = np.where(pos, big, small)  # σ(z)
        s_neg = np.where(pos, small, big)  # σ(−z) = 1 − σ(z) without cancelling
        omy = 1.0 - y
        zp = np.maximum(z, 0.0)
        L = np.log1p(e, out=e)
        L += omy * zp
        np.subtract(zp, z, out=zp)  # z⁻
        zp *= y
        L += zp
        r = omy * s  # f − y, with 1 − f taken as σ(−z) so y = 1 does not cancel
        s_neg *= y
        r -= s_neg
    return s, L, r


def _softmax_cce(act: Activation, loss: Loss, z: Array, y: Array) -> tuple[Array, Array, Array]:
    _, arg, shifted = stable.shifted_rows(z)
    e = np.exp(shifted)
    f = e / np.sum(e, axis=1, keepdims=True)
    # L = logsumexp(z) − Σ y_k z_k = Σ_k y_k (max − z_k) + log1p(Σ_{l≠argmax} e^(z_l − max)) when
    # Σ y = 1: non-negative terms, and no cancellation where the true class dominates.
    with np.errstate(over="ignore", invalid="ignore"):
        L = np.sum(np.where(y == 0.0, 0.0, y * -shifted), axis=1) + stable.log1p_others(shifted, arg)
    r = f - y  # f - y
    rows = np.arange(z.shape[0])
    hard = y[rows, arg] == 1.0
    if np.any(hard):  # f_k − 1 = −Σ_{l≠k} f_l at a dominant true class, which f − 1 would cancel
        others = f[hard].copy()
        others[np.arange(others.shape[0]), arg[hard]] = 0.0
        r[rows[hard], arg[hard]] = -np.sum(others, axis=1)
    return f, L, r


def _exp_poisson(act: Activation, loss: Loss, z: Array, y: Array) -> tuple[Array, Array, Array]:
    with np.errstate(over="ignore", invalid="ignore"):
        f = np.exp(z)
        # L = e^z − y z (the constant log y! dropped); −y log f = −y z exactly.
        return f, f - y * z, f - y  # f - y


def _sigmoid_poisson(act: Activation, loss: Loss, z: Array, y: Array) -> tuple[Array, Array, Array]:
    s, s_neg = stable.sigmoid_pair(z)
    # −y log σ(z) = y softplus(−z), finite where σ(z) underflows; ∂L/∂z = (1 − y/f) f (1−f) = (f − y)(1 − f),
    # with f − y = (1 − y) σ(z) − y σ(−z), which does not cancel at y = 1 (f − 1 = −σ(−z)).
    with np.errstate(over="ignore"):
        L = s + y * stable.softplus(-z)
        return s, L, ((1.0 - y) * s - y * s_neg) * s_neg


def _softplus_poisson(act: Activation, loss: Loss, z: Array, y: Array) -> tuple[Array, Array, Array]:
    f = stable.softplus(z)
    # ∂L/∂z = (1 − y/f) σ(z) = σ(z) − y σ(z)/softplus(z); the ratio tends to 1 where both underflow.
    with np.errstate(over="ignore"):
        L = f - y * stable.log_softplus(z)
        return f, L, stable.sigmoid(z) - y * stable.sigmoid_over_softplus(z)


def _softmax_squared_error(act: Activation, loss: Loss, z: Array, y: Array) -> tuple[Array, Array, Array]:
    f = stable.softmax_rows(z)
    with np.errstate(over="ignore", invalid="ignore"):
        d = f - y
        L = 0.5 * np.sum(d * d, axis=1)
        # (diag(f) − f fᵀ)(f − y) = f ⊙ (d − f·d), without building the k×k Jacobian.
        g = f * (d - np.sum(f * d, axis=1, keepdims=True))
    # the entries sum to 0: at the dominant one, where d − f·d cancels, take minus the sum of the others
    rows = np.arange(z.shape[0])
    arg = np.argmax(f, axis=1)
    others = g.copy()
    others[rows, arg] = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        g[rows, arg] = -np.sum(others, axis=1)
    return f, L, g


_KERNELS: dict[tuple[ActivationName, LossName], Kernel] = {
    (ActivationName.IDENTITY, LossName.SQUARED_ERROR): _identity_squared_error,
    (ActivationName.SIGMOID, LossName.BINARY_CROSS_ENTROPY): _sigmoid_bce,
    (ActivationName.SOFTMAX, LossName.CATEGORICAL_CROSS_ENTROPY): _softmax_cce,
    (ActivationName.EXP, LossName.POISSON): _exp_poisson,
    (ActivationName.SIGMOID, LossName.POISSON): _sigmoid_poisson,
    (ActivationName.SOFTPLUS, LossName.POISSON): _softplus_poisson,
    (ActivationName.SOFTMAX, LossName.SQUARED_ERROR): _softmax_squared_error,
}


def _general_factors(act: Activation, loss: Loss, z: Array, f: Array, y: Array) -> tuple[Array, Array]:
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return loss.dL_df(f, y), act.derivative(z, f)


def _sigmoid_bce_factors(act: Activation, loss: Loss, z: Array, f: Array, y: Array) -> tuple[Array, Array]:
    s, s_neg = stable.sigmoid_pair(z)
    # (f − y)/(f(1 − f)) = (1 − y)/(1 − f) − y/f, with 1 − f = σ(−z): finite until e^|z| overflows.
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        dL_df = np.where(y == 1.0, 0.0, (1.0 - y) / s_neg) - np.where(y == 0.0, 0.0, y / s)
    return dL_df, s * s_neg


_FACTORS: dict[tuple[ActivationName, LossName], Factors] = {
    (ActivationName.SIGMOID, LossName.BINARY_CROSS_ENTROPY): _sigmoid_bce_factors,
}


# --- the pairing object ----------------------------------------------------------------------


def rhs(formula: Formula) -> Formula:
    """The right-hand side of 'lhs = … = rhs'."""
    return Formula(formula.latex.rsplit(" = ", 1)[-1], formula.text.rsplit(" = ", 1)[-1])


@dataclass(frozen=True)
class Pairing:
    """An activation feeding a loss. Build it with `make_pairing`, which checks compatibility."""

    activation: Activation
    loss: Loss

    @property
    def key(self) -> tuple[ActivationName, LossName]:
        return (self.activation.name, self.loss.name)

    @property
    def canonical(self) -> bool:
        return self.key in CANONICAL

    @property
    def canonical_info(self) -> Canonical | None:
        return CANONICAL.get(self.key)

    @property
    def vector(self) -> bool:
        return self.activation.vector

    def forward_backward(self, z: Array, y: Array) -> tuple[Array, Array, Array]:
        """(f, L, ∂L/∂z) for z (m,) or (m, k) and y shaped like f, from the stable kernel."""
        kernel = _KERNELS.get(self.key, _general)
        return kernel(self.activation, self.loss, z, y)

    def factors(self, z: Array, f: Array, y: Array) -> tuple[Array, Array]:
        """(∂L/∂f, ∂f/∂z) for display; entries may be ±inf or NaN where not representable."""
        return _FACTORS.get(self.key, _general_factors)(self.activation, self.loss, z, f, y)

    @property
    def dL_dz_formula(self) -> Formula:
        """∂L/∂z for this pairing: f − y when canonical, else the product of the two factors."""
        lhs_latex = r"\frac{\partial L}{\partial z}"
        if self.canonical:
            return Formula(lhs_latex + " = f - y", "dL/dz = f - y")
        a, b = rhs(self.loss.derivative_formula), rhs(self.activation.derivative_formula)
        if self.vector:
            return Formula(
                lhs_latex + r" = \left(\operatorname{diag}(f) - f f^{\top}\right)(f - y)",
                "dL/dz = (diag(f) - f f^T)(f - y)",
            )
        return Formula(
            lhs_latex
            + r" = \frac{\partial L}{\partial f}\,\frac{\partial f}{\partial z} = "
            + rf"\left({a.latex}\right)\cdot\left({b.latex}\right)",
            f"dL/dz = dL/df * df/dz = ({a.text}) * ({b.text})",
        )


def make_pairing(
    activation: ActivationName | str, loss: LossName | str, loss_params: dict[str, float] | None = None
) -> Pairing:
    """The pairing of two registry names; raises IncompatiblePairing with the reason."""
    act_name, loss_name = ActivationName(activation), LossName(loss)
    return _pairing(act_name, loss_name, tuple(sorted((loss_params or {}).items())))


@lru_cache(maxsize=256)
def _pairing(act_name: ActivationName, loss_name: LossName, params: tuple[tuple[str, float], ...]) -> Pairing:
    # Pairings are immutable: one object per (activation, loss, parameters) serves every request.
    ok, why = compatibility(act_name, loss_name)
    if not ok:
        raise IncompatiblePairing(why or "incompatible")
    return Pairing(ACTIVATIONS[act_name], make_loss(loss_name, dict(params) if params else None))


def all_pairings() -> list[tuple[ActivationName, LossName, bool, str | None]]:
    """Every activation × loss combination with its compatibility and reason."""
    return [(a, lo, *compatibility(a, lo)) for a in ActivationName for lo in LossName]

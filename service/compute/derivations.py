"""Each activation's and loss's own derivative, derived in elementary rule steps.

Learners ask one level deeper than the chain rule ("why is d/dz (1 + e^(−z)) = −e^(−z)?"): each
derivation here is a list of steps, each naming the elementary rule it applies (sum, product,
quotient, power, exp, log, chain rule, ...) with the result in LaTeX and in plain text.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from service.compute.activations import ActivationName
from service.compute.losses import LossName


class Rule(StrEnum):
    DEFINITION = "definition"
    CONSTANT = "constant"
    SUM = "sum"
    CONSTANT_MULTIPLE = "constant_multiple"
    PRODUCT = "product"
    QUOTIENT = "quotient"
    POWER = "power"
    EXP = "exp"
    LOG = "log"
    CHAIN = "chain"
    # the tracer's own rules (service.formulas.derive), in a formula activation's or loss's derivation
    IDENTITY = "identity"
    FUNCTION = "function"
    SIMPLIFY = "simplify"
    PIECEWISE = "piecewise"
    ALGEBRA = "algebra"


@dataclass(frozen=True)
class DerivationStep:
    rule: Rule
    latex: str
    text: str
    why: str


_S = DerivationStep

ACTIVATION_DERIVATIONS: dict[ActivationName, tuple[DerivationStep, ...]] = {
    ActivationName.IDENTITY: (
        _S(
            Rule.DEFINITION,
            r"f = z",
            "f = z",
            "The identity activation passes z through unchanged.",
        ),
        _S(
            Rule.POWER,
            r"\frac{\partial f}{\partial z} = \frac{d}{dz}\, z^{1} = 1 \cdot z^{0} = 1",
            "df/dz = d/dz z^1 = 1 · z^0 = 1",
            "z is z^1, and the power rule d/dz z^n = n z^(n-1) gives 1 · z^0 = 1: a slope of 1 everywhere.",
        ),
    ),
    ActivationName.SIGMOID: (
        _S(
            Rule.DEFINITION,
            r"f = \sigma(z) = \frac{1}{1 + e^{-z}} = \left(1 + e^{-z}\right)^{-1}",
            "f = sigmoid(z) = 1 / (1 + e^(-z)) = (1 + e^(-z))^(-1)",
            "Writing the fraction as a power -1 of the inner function u = 1 + e^(-z) lets the power and "
            "chain rules do the work.",
        ),
        _S(
            Rule.CHAIN,
            r"\frac{d}{dz}\, e^{-z} = e^{-z} \cdot \frac{d}{dz}(-z) = e^{-z} \cdot (-1) = -e^{-z}",
            "d/dz e^(-z) = e^(-z) · d/dz(-z) = e^(-z) · (-1) = -e^(-z)",
            "Chain rule on e^v with v = -z: e^v is its own derivative, times dv/dz = -1.",
        ),
        _S(
            Rule.SUM,
            r"\frac{d}{dz}\left(1 + e^{-z}\right) = 0 + \left(-e^{-z}\right) = -e^{-z}",
            "d/dz (1 + e^(-z)) = 0 + (-e^(-z)) = -e^(-z)",
            "The derivative of a sum is the sum of the derivatives, and the constant 1 contributes 0.",
        ),
        _S(
            Rule.CHAIN,
            r"\frac{\partial f}{\partial z} = -\left(1 + e^{-z}\right)^{-2} \cdot \left(-e^{-z}\right)",
            "df/dz = -(1 + e^(-z))^(-2) · (-e^(-z))",
            "Chain rule: the outer power rule gives d/du u^(-1) = -u^(-2), times the inner derivative -e^(-z).",
        ),
        _S(
            Rule.ALGEBRA,
            r"\frac{\partial f}{\partial z} = \frac{e^{-z}}{\left(1 + e^{-z}\right)^{2}}"
            r" = \frac{1}{1 + e^{-z}} \cdot \frac{e^{-z}}{1 + e^{-z}}",
            "df/dz = e^(-z) / (1 + e^(-z))^2 = 1 / (1 + e^(-z)) · e^(-z) / (1 + e^(-z))",
            "The two minus signs cancel, and the squared denominator splits into two factors.",
        ),
        _S(
            Rule.ALGEBRA,
            r"\frac{e^{-z}}{1 + e^{-z}} = \frac{\left(1 + e^{-z}\right) - 1}{1 + e^{-z}} = 1 - \frac{1}{1 + e^{-z}}",
            "e^(-z) / (1 + e^(-z)) = ((1 + e^(-z)) - 1) / (1 + e^(-z)) = 1 - 1 / (1 + e^(-z))",
            "Adding and subtracting 1 in the numerator shows that the second factor is 1 minus the sigmoid.",
        ),
        _S(
            Rule.ALGEBRA,
            r"\frac{\partial f}{\partial z} = \frac{1}{1 + e^{-z}} \cdot \left(1 - \frac{1}{1 + e^{-z}}\right)"
            r" = f\,(1 - f)",
            "df/dz = 1 / (1 + e^(-z)) · (1 - 1 / (1 + e^(-z))) = f (1 - f)",
            "Both factors are written with f itself, so the slope needs no new exponential: f times (1 - f).",
        ),
    ),
    ActivationName.TANH: (
        _S(
            Rule.DEFINITION,
            r"f = \tanh z = \frac{\sinh z}{\cosh z}, \quad \sinh z = \frac{e^{z} - e^{-z}}{2},"
            r" \quad \cosh z = \frac{e^{z} + e^{-z}}{2}",
            "f = tanh z = sinh z / cosh z, with sinh z = (e^z - e^(-z)) / 2 and cosh z = (e^z + e^(-z)) / 2",
            "tanh is the quotient of the hyperbolic sine and cosine, both built from e^z and e^(-z).",
        ),
        _S(
            Rule.CHAIN,
            r"\frac{d}{dz}\, e^{-z} = e^{-z} \cdot \frac{d}{dz}(-z) = -e^{-z}",
            "d/dz e^(-z) = e^(-z) · d/dz(-z) = -e^(-z)",
            "Chain rule on e^v with v = -z: e^v is its own derivative, times dv/dz = -1.",
        ),
        _S(
            Rule.SUM,
            r"\frac{d}{dz} \sinh z = \frac{e^{z} - \left(-e^{-z}\right)}{2} = \frac{e^{z} + e^{-z}}{2} = \cosh z",
            "d/dz sinh z = (e^z - (-e^(-z))) / 2 = (e^z + e^(-z)) / 2 = cosh z",
            "Differentiate term by term (the constant factor 1/2 stays): e^z gives e^z and e^(-z) gives -e^(-z).",
        ),
        _S(
            Rule.SUM,
            r"\frac{d}{dz} \cosh z = \frac{e^{z} + \left(-e^{-z}\right)}{2} = \frac{e^{z} - e^{-z}}{2} = \sinh z",
            "d/dz cosh z = (e^z + (-e^(-z))) / 2 = (e^z - e^(-z)) / 2 = sinh z",
            "The same term-by-term differentiation turns cosh into sinh.",
        ),
        _S(
            Rule.QUOTIENT,
            r"\frac{\partial f}{\partial z} = \frac{\cosh z \cdot \cosh z - \sinh z \cdot \sinh z}{\cosh^{2} z}",
            "df/dz = (cosh z · cosh z - sinh z · sinh z) / cosh^2 z",
            "Quotient rule (u/v)' = (u'v - uv') / v^2 with u = sinh z and v = cosh z.",
        ),
        _S(
            Rule.ALGEBRA,
            r"\frac{\partial f}{\partial z} = \frac{\cosh^{2} z}{\cosh^{2} z} - \frac{\sinh^{2} z}{\cosh^{2} z}"
            r" = 1 - \tanh^{2} z = 1 - f^{2}",
            "df/dz = cosh^2 z / cosh^2 z - sinh^2 z / cosh^2 z = 1 - tanh^2 z = 1 - f^2",
            "Split the fraction: the first part is 1 and the second is tanh^2 z, which is f^2.",
        ),
    ),
    ActivationName.RELU: (
        _S(
            Rule.DEFINITION,
            r"f = \max(0, z) = \begin{cases} z & z > 0 \\ 0 & z \le 0 \end{cases}",
            "f = max(0, z) = z if z > 0 else 0",
            "max(0, z) is piecewise: it is z on the positive side and the constant 0 elsewhere.",
        ),
        _S(
            Rule.PIECEWISE,
            r"z > 0:\ \frac{\partial f}{\partial z} = \frac{d}{dz}\, z = 1, \qquad"
            r" z < 0:\ \frac{\partial f}{\partial z} = \frac{d}{dz}\, 0 = 0",
            "z > 0: df/dz = d/dz z = 1;  z < 0: df/dz = d/dz 0 = 0",
            "Away from 0 each piece is differentiated on its own: z has slope 1 and a constant has slope 0.",
        ),
        _S(
            Rule.PIECEWISE,
            r"\frac{\partial f}{\partial z} = \begin{cases} 1 & z > 0 \\ 0 & z \le 0 \end{cases}",
            "df/dz = 1 if z > 0 else 0",
            "At z = 0 the slopes 0 and 1 meet in a kink with no derivative, so the value 0 is chosen there "
            "(a subgradient, as PyTorch does).",
        ),
    ),
    ActivationName.EXP: (
        _S(
            Rule.DEFINITION,
            r"f = e^{z}",
            "f = e^z",
            "The exponential activation raises e to the power z.",
        ),
        _S(
            Rule.EXP,
            r"\frac{\partial f}{\partial z} = \frac{d}{dz}\, e^{z} = e^{z} = f",
            "df/dz = d/dz e^z = e^z = f",
            "e^z is the function that is its own derivative, so the slope at z is the value f itself.",
        ),
    ),
    ActivationName.SOFTPLUS: (
        _S(
            Rule.DEFINITION,
            r"f = \log\left(1 + e^{z}\right) = \log u, \quad u = 1 + e^{z}",
            "f = log(1 + e^z) = log(u), with u = 1 + e^z",
            "Softplus is the (natural) log of an inner function u, so the chain rule applies.",
        ),
        _S(
            Rule.SUM,
            r"\frac{du}{dz} = \frac{d}{dz}\left(1 + e^{z}\right) = 0 + e^{z} = e^{z}",
            "du/dz = d/dz (1 + e^z) = 0 + e^z = e^z",
            "Sum rule: the constant 1 has derivative 0 and e^z is its own derivative.",
        ),
        _S(
            Rule.LOG,
            r"\frac{d}{du} \log u = \frac{1}{u}",
            "d/du log(u) = 1 / u",
            "The derivative of the natural log is one over its argument.",
        ),
        _S(
            Rule.CHAIN,
            r"\frac{\partial f}{\partial z} = \frac{1}{u} \cdot \frac{du}{dz} = \frac{e^{z}}{1 + e^{z}}",
            "df/dz = 1 / u · du/dz = e^z / (1 + e^z)",
            "Chain rule: the outer derivative 1/u times the inner derivative e^z.",
        ),
        _S(
            Rule.ALGEBRA,
            r"\frac{\partial f}{\partial z} = \frac{e^{z}}{1 + e^{z}} \cdot \frac{e^{-z}}{e^{-z}}"
            r" = \frac{1}{e^{-z} + 1} = \sigma(z) = \frac{1}{1 + e^{-z}}",
            "df/dz = e^z / (1 + e^z) · e^(-z) / e^(-z) = 1 / (e^(-z) + 1) = sigmoid(z) = 1 / (1 + e^(-z))",
            "Multiplying top and bottom by e^(-z) reveals the sigmoid: softplus is a smooth relu whose slope is "
            "the sigmoid.",
        ),
    ),
    ActivationName.SOFTMAX: (
        _S(
            Rule.DEFINITION,
            r"f_k = \frac{e^{z_k}}{S}, \quad S = \sum_{j} e^{z_j}",
            "f_k = e^(z_k) / S, with S = sum_j e^(z_j)",
            "Each output divides one exponential by the sum S of all of them; we differentiate f_k with respect "
            "to any input z_l.",
        ),
        _S(
            Rule.SUM,
            r"\frac{\partial S}{\partial z_l} = \sum_{j} \frac{\partial e^{z_j}}{\partial z_l} = e^{z_l}",
            "dS/dz_l = sum_j d(e^(z_j))/dz_l = e^(z_l)",
            "Sum rule: only the term j = l depends on z_l, and e^(z_l) is its own derivative.",
        ),
        _S(
            Rule.EXP,
            r"\frac{\partial e^{z_k}}{\partial z_l} = \delta_{kl}\, e^{z_k}, \quad"
            r" \delta_{kl} = \begin{cases} 1 & k = l \\ 0 & k \ne l \end{cases}",
            "d(e^(z_k))/dz_l = delta_kl · e^(z_k), with delta_kl = 1 if k = l else 0",
            "The numerator depends on z_l only when k = l (the Kronecker delta records that), and then e^(z_k) "
            "is its own derivative.",
        ),
        _S(
            Rule.QUOTIENT,
            r"\frac{\partial f_k}{\partial z_l} = \frac{\delta_{kl}\, e^{z_k} \cdot S - e^{z_k} \cdot e^{z_l}}{S^{2}}",
            "df_k/dz_l = (delta_kl · e^(z_k) · S - e^(z_k) · e^(z_l)) / S^2",
            "Quotient rule (u/v)' = (u'v - uv') / v^2 with u = e^(z_k) and v = S.",
        ),
        _S(
            Rule.ALGEBRA,
            r"k = l:\ \frac{\partial f_k}{\partial z_k} = \frac{e^{z_k}}{S} - \frac{e^{z_k}}{S} \cdot \frac{e^{z_k}}{S}"
            r" = f_k - f_k^{2} = f_k\,(1 - f_k)",
            "k = l: df_k/dz_k = e^(z_k) / S - e^(z_k) / S · e^(z_k) / S = f_k - f_k^2 = f_k (1 - f_k)",
            "On the diagonal both terms survive; each ratio e^(z_k)/S is f_k, just like the sigmoid's f (1 - f).",
        ),
        _S(
            Rule.ALGEBRA,
            r"k \ne l:\ \frac{\partial f_k}{\partial z_l} = \frac{0 - e^{z_k}\, e^{z_l}}{S^{2}}"
            r" = -\frac{e^{z_k}}{S} \cdot \frac{e^{z_l}}{S} = -f_k\, f_l",
            "k != l: df_k/dz_l = (0 - e^(z_k) · e^(z_l)) / S^2 = -e^(z_k) / S · e^(z_l) / S = -f_k f_l",
            "Off the diagonal only the denominator depends on z_l, so raising z_l lowers every other output.",
        ),
        _S(
            Rule.PIECEWISE,
            r"\frac{\partial f_k}{\partial z_l} = "
            r"\begin{cases} f_k\,(1 - f_l) & k = l \\ -f_k\, f_l & k \ne l \end{cases}"
            r" = f_k\,(\delta_{kl} - f_l)",
            "df_k/dz_l = (f_k (1 - f_l) if k = l else -f_k f_l) = f_k (delta_kl - f_l)",
            "The two cases are one formula, because delta_kl is 1 on the diagonal (k = l) and 0 off it.",
        ),
    ),
}

LOSS_DERIVATIONS: dict[LossName, tuple[DerivationStep, ...]] = {
    LossName.SQUARED_ERROR: (
        _S(
            Rule.DEFINITION,
            r"L = \tfrac{1}{2}\,(f - y)^{2} = \tfrac{1}{2}\,u^{2}, \quad u = f - y",
            "L = 1/2 (f - y)^2 = 1/2 u^2, with u = f - y",
            "The loss is half the square of the residual u = f - y; the target y is a constant here.",
        ),
        _S(
            Rule.SUM,
            r"\frac{du}{df} = \frac{d}{df}(f - y) = 1 - 0 = 1",
            "du/df = d/df (f - y) = 1 - 0 = 1",
            "Sum rule: f has derivative 1 and the constant y has derivative 0.",
        ),
        _S(
            Rule.POWER,
            r"\frac{d}{du}\, \tfrac{1}{2}\,u^{2} = \tfrac{1}{2} \cdot 2u = u",
            "d/du (1/2 u^2) = 1/2 · 2u = u",
            "Power rule d/du u^2 = 2u, and the factor 1/2 cancels the 2: that is why the course puts 1/2 in the loss.",
        ),
        _S(
            Rule.CHAIN,
            r"\frac{\partial L}{\partial f} = u \cdot \frac{du}{df} = (f - y) \cdot 1 = f - y",
            "dL/df = u · du/df = (f - y) · 1 = f - y",
            "Chain rule: the outer derivative u times the inner derivative 1 leaves the residual itself.",
        ),
    ),
    LossName.BINARY_CROSS_ENTROPY: (
        _S(
            Rule.DEFINITION,
            r"L = -y \log f - (1 - y) \log(1 - f)",
            "L = -y log(f) - (1 - y) log(1 - f)",
            "The loss is a sum of two log terms, one weighted by y and one by 1 - y, which are constants here.",
        ),
        _S(
            Rule.LOG,
            r"\frac{d}{df}\left(-y \log f\right) = -y \cdot \frac{1}{f} = -\frac{y}{f}",
            "d/df (-y log(f)) = -y · 1 / f = -y / f",
            "The derivative of log f is 1/f, and the constant factor -y stays in front.",
        ),
        _S(
            Rule.CHAIN,
            r"\frac{d}{df} \log(1 - f) = \frac{1}{1 - f} \cdot \frac{d}{df}(1 - f) = \frac{1}{1 - f} \cdot (-1)"
            r" = -\frac{1}{1 - f}",
            "d/df log(1 - f) = 1 / (1 - f) · d/df (1 - f) = 1 / (1 - f) · (-1) = -1 / (1 - f)",
            "Chain rule on log u with u = 1 - f: the outer derivative 1/u times the inner derivative -1.",
        ),
        _S(
            Rule.SUM,
            r"\frac{\partial L}{\partial f} = -\frac{y}{f} - (1 - y) \cdot \left(-\frac{1}{1 - f}\right)"
            r" = -\frac{y}{f} + \frac{1 - y}{1 - f}",
            "dL/df = -y / f - (1 - y) · (-1 / (1 - f)) = -y / f + (1 - y) / (1 - f)",
            "Sum rule: add the derivatives of the two terms; the two minus signs of the second term cancel.",
        ),
        _S(
            Rule.ALGEBRA,
            r"\frac{\partial L}{\partial f} = \frac{-y\,(1 - f) + (1 - y)\,f}{f\,(1 - f)}"
            r" = \frac{-y + y f + f - y f}{f\,(1 - f)} = \frac{f - y}{f\,(1 - f)}",
            "dL/df = (-y (1 - f) + (1 - y) f) / (f (1 - f)) = (-y + y f + f - y f) / (f (1 - f))"
            " = (f - y) / (f (1 - f))",
            "Over the common denominator f (1 - f) the y f terms cancel, leaving f - y on top.",
        ),
    ),
    LossName.CATEGORICAL_CROSS_ENTROPY: (
        _S(
            Rule.DEFINITION,
            r"L = -\sum_{j} y_j \log f_j",
            "L = -sum_j y_j log(f_j)",
            "The loss sums one log term per class j, weighted by the constant target y_j.",
        ),
        _S(
            Rule.SUM,
            r"\frac{\partial L}{\partial f_k} = -\sum_{j} y_j \frac{\partial \log f_j}{\partial f_k}"
            r" = -y_k \frac{\partial \log f_k}{\partial f_k}",
            "dL/df_k = -sum_j y_j d(log f_j)/df_k = -y_k d(log f_k)/df_k",
            "Sum rule: differentiate term by term; every term with j != k does not involve f_k and gives 0.",
        ),
        _S(
            Rule.LOG,
            r"\frac{\partial L}{\partial f_k} = -y_k \cdot \frac{1}{f_k} = -\frac{y_k}{f_k}",
            "dL/df_k = -y_k · 1 / f_k = -y_k / f_k",
            "The derivative of log f_k is 1/f_k, times the constant -y_k.",
        ),
    ),
    LossName.POISSON: (
        _S(
            Rule.DEFINITION,
            r"L = f - y \log f",
            "L = f - y log(f)",
            "The Poisson loss (its constant log y! dropped) is f minus y times log f; y is a constant here.",
        ),
        _S(
            Rule.SUM,
            r"\frac{\partial L}{\partial f} = \frac{d}{df}\, f - y\, \frac{d}{df} \log f",
            "dL/df = d/df f - y · d/df log(f)",
            "Sum rule: differentiate each term, keeping the constant factor y in front of the second.",
        ),
        _S(
            Rule.POWER,
            r"\frac{d}{df}\, f = \frac{d}{df}\, f^{1} = 1",
            "d/df f = d/df f^1 = 1",
            "Power rule with n = 1: f = f^1 has derivative 1 · f^0 = 1.",
        ),
        _S(
            Rule.LOG,
            r"\frac{d}{df} \log f = \frac{1}{f}",
            "d/df log(f) = 1 / f",
            "The derivative of the natural log is one over its argument.",
        ),
        _S(
            Rule.ALGEBRA,
            r"\frac{\partial L}{\partial f} = 1 - y \cdot \frac{1}{f} = 1 - \frac{y}{f}",
            "dL/df = 1 - y · 1 / f = 1 - y / f",
            "Substituting the two derivatives gives 1 - y/f, which is 0 exactly when the prediction f equals y.",
        ),
    ),
    LossName.ABSOLUTE_ERROR: (
        _S(
            Rule.DEFINITION,
            r"L = \lvert f - y \rvert = \begin{cases} f - y & f > y \\ 0 & f = y \\ -(f - y) & f < y \end{cases}",
            "L = |f - y| = f - y if f > y, 0 if f = y, -(f - y) if f < y",
            "The absolute value is piecewise: it keeps f - y when positive and flips its sign when negative.",
        ),
        _S(
            Rule.PIECEWISE,
            r"f > y:\ \frac{\partial L}{\partial f} = \frac{d}{df}(f - y) = 1, \qquad"
            r" f < y:\ \frac{\partial L}{\partial f} = \frac{d}{df}\left(-(f - y)\right) = -1",
            "f > y: dL/df = d/df (f - y) = 1;  f < y: dL/df = d/df (-(f - y)) = -1",
            "Each piece is differentiated on its own: f - y has slope 1, and its negative has slope -1.",
        ),
        _S(
            Rule.PIECEWISE,
            r"\frac{\partial L}{\partial f} = \begin{cases} 1 & f > y \\ 0 & f = y \\ -1 & f < y \end{cases}"
            r" = \operatorname{sign}(f - y)",
            "dL/df = (1 if f > y, 0 if f = y, -1 if f < y) = sign(f - y)",
            "At f = y the slopes -1 and 1 meet in a kink with no derivative, so the value 0 is chosen there, "
            "as sign(0) = 0.",
        ),
    ),
    LossName.HUBER: (
        _S(
            Rule.DEFINITION,
            r"L = \begin{cases} \tfrac{1}{2}(f - y)^{2} & \lvert f - y \rvert \le \delta \\"
            r" \delta\left(f - y - \tfrac{1}{2}\delta\right) & f - y > \delta \\"
            r" \delta\left(-(f - y) - \tfrac{1}{2}\delta\right) & f - y < -\delta \end{cases}",
            "L = 1/2 (f - y)^2 if |f - y| <= delta; delta (f - y - delta/2) if f - y > delta;"
            " delta (-(f - y) - delta/2) if f - y < -delta",
            "Huber is piecewise: squared error near the target and a straight line (slope ±δ) far from it, "
            "with |f - y| written out on each side.",
        ),
        _S(
            Rule.CHAIN,
            r"\lvert f - y \rvert \le \delta:\ \frac{\partial L}{\partial f} = \frac{1}{2} \cdot 2\,(f - y)"
            r" \cdot \frac{d}{df}(f - y) = f - y",
            "|f - y| <= delta: dL/df = 1/2 · 2 (f - y) · d/df (f - y) = f - y",
            "Inside the quadratic zone this is the squared error: the power rule outside times the inner derivative 1.",
        ),
        _S(
            Rule.CONSTANT_MULTIPLE,
            r"f - y > \delta:\ \frac{\partial L}{\partial f} = \delta \cdot \frac{d}{df}\left(f - y"
            r" - \tfrac{1}{2}\delta\right) = \delta \cdot 1 = \delta",
            "f - y > delta: dL/df = delta · d/df (f - y - delta/2) = delta · 1 = delta",
            "The constant factor δ stays in front, and the bracket has slope 1 because y and δ are constants.",
        ),
        _S(
            Rule.CONSTANT_MULTIPLE,
            r"f - y < -\delta:\ \frac{\partial L}{\partial f} = \delta \cdot \frac{d}{df}\left(-(f - y)"
            r" - \tfrac{1}{2}\delta\right) = \delta \cdot (-1) = -\delta",
            "f - y < -delta: dL/df = delta · d/df (-(f - y) - delta/2) = delta · (-1) = -delta",
            "The same constant factor δ, times the slope -1 of -(f - y).",
        ),
        _S(
            Rule.PIECEWISE,
            r"\frac{\partial L}{\partial f} = \begin{cases} -\delta & f - y < -\delta \\ f - y &"
            r" \lvert f - y \rvert \le \delta \\ \delta & f - y > \delta \end{cases}"
            r" = \operatorname{clip}(f - y, -\delta, \delta)",
            "dL/df = (-delta if f - y < -delta, f - y if |f - y| <= delta, delta if f - y > delta)"
            " = clip(f - y, -delta, delta)",
            "At |f - y| = δ the neighbouring pieces have the same slope ±δ, so the derivative is continuous: it "
            "is f - y clipped to [-δ, δ].",
        ),
    ),
}


def activation_derivation(name: ActivationName) -> tuple[DerivationStep, ...]:
    """The steps from f = g(z) to df/dz."""
    return ACTIVATION_DERIVATIONS[name]


def loss_derivation(name: LossName) -> tuple[DerivationStep, ...]:
    """The steps from L(f, y) to ∂L/∂f."""
    return LOSS_DERIVATIONS[name]

"""The Adam family: Adam (and AMSGrad), Adamax, NAdam and AdaBelief."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from engine.explain.context import StepContext
from engine.explain.tree import Const, Fn, Sym, absval, sqrt
from engine.optimizers.registry import (
    NO_TORCH,
    Array,
    Hyper,
    Optimizer,
    OptimizerSpec,
    TorchMapping,
    beta_hyper,
    eps_hyper,
    lr_hyper,
    register,
    zeros,
)

# ----------------------------------------------------------------------------- states

class AdamState(NamedTuple):
    t: int
    m: Array  # first moment (EMA of gradients)
    v: Array  # second moment (EMA of squared gradients)
    m_hat: Array  # bias-corrected first moment
    v_hat: Array  # bias-corrected second moment (of v_max under amsgrad)
    v_max: Array  # running maximum of v (amsgrad only; zeros otherwise)


class AdamaxState(NamedTuple):
    t: int
    m: Array  # first moment (EMA of gradients)
    u: Array  # exponentially weighted infinity norm (torch's exp_inf)


class NAdamState(NamedTuple):
    t: int
    m: Array  # first moment (EMA of gradients)
    v: Array  # second moment (EMA of squared gradients)
    mu: float  # momentum coefficient μ_t of this step
    mu_product: float  # Π μ_1…μ_t (torch's mu_product)


class AdaBeliefState(NamedTuple):
    t: int
    m: Array  # first moment (EMA of gradients): the "prediction"
    s: Array  # EMA of (g − m)² + ε: the "belief" (variance around the prediction)
    m_hat: Array  # bias-corrected m
    s_hat: Array  # bias-corrected s


# ----------------------------------------------------------------------------- rules

def adam(lr: float, beta1: float, beta2: float, eps: float, amsgrad: bool) -> Optimizer:
    def init(params):
        z = zeros(params)
        return AdamState(t=0, m=z, v=z, m_hat=z, v_hat=z, v_max=z)

    def update(grads, state, params=None, oracle=None):
        # m = β₁·m + (1 − β₁)·g, v = β₂·v + (1 − β₂)·g², …: written with in-place operations
        # on fresh arrays (the same arithmetic, fewer temporaries for batches of runs)
        t = state.t + 1
        m = beta1 * state.m
        m += (1.0 - beta1) * grads
        v = (1.0 - beta2) * grads
        v *= grads
        v += beta2 * state.v
        v_max = np.maximum(state.v_max, v) if amsgrad else state.v_max
        m_hat = m / (1.0 - beta1**t)
        v_hat = (v_max if amsgrad else v) / (1.0 - beta2**t)
        denom = np.sqrt(v_hat)
        denom += eps
        updates = -lr * m_hat
        updates /= denom
        return updates, AdamState(t=t, m=m, v=v, m_hat=m_hat, v_hat=v_hat, v_max=v_max)

    return Optimizer(init, update)


def adamax(lr: float, beta1: float, beta2: float, eps: float) -> Optimizer:
    def init(params):
        z = zeros(params)
        return AdamaxState(t=0, m=z, u=z)

    def update(grads, state, params=None, oracle=None):
        t = state.t + 1
        m = beta1 * state.m + (1.0 - beta1) * grads
        u = np.maximum(beta2 * state.u, np.abs(grads) + eps)  # torch: ε added to |g|
        updates = -(lr / (1.0 - beta1**t)) * m / u
        return updates, AdamaxState(t=t, m=m, u=u)

    return Optimizer(init, update)


def nadam(lr: float, beta1: float, beta2: float, eps: float, momentum_decay: float) -> Optimizer:
    def init(params):
        z = zeros(params)
        return NAdamState(t=0, m=z, v=z, mu=0.0, mu_product=1.0)

    def update(grads, state, params=None, oracle=None):
        t = state.t + 1
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        mu_product = state.mu_product * mu
        mu_product_next = mu_product * mu_next
        m = beta1 * state.m + (1.0 - beta1) * grads
        v = beta2 * state.v + (1.0 - beta2) * grads * grads
        denom = np.sqrt(v / (1.0 - beta2**t)) + eps
        updates = (
            -lr * (1.0 - mu) / (1.0 - mu_product) * grads / denom
            - lr * mu_next / (1.0 - mu_product_next) * m / denom
        )
        return updates, NAdamState(t=t, m=m, v=v, mu=mu, mu_product=mu_product)

    return Optimizer(init, update)


def adabelief(lr: float, beta1: float, beta2: float, eps: float) -> Optimizer:
    def init(params):
        z = zeros(params)
        return AdaBeliefState(t=0, m=z, s=z, m_hat=z, s_hat=z)

    def update(grads, state, params=None, oracle=None):
        t = state.t + 1
        m = beta1 * state.m + (1.0 - beta1) * grads
        r = grads - m
        s = beta2 * state.s + (1.0 - beta2) * r * r + eps
        m_hat = m / (1.0 - beta1**t)
        s_hat = s / (1.0 - beta2**t)
        updates = -lr * m_hat / (np.sqrt(s_hat) + eps)
        return updates, AdaBeliefState(t=t, m=m, s=s, m_hat=m_hat, s_hat=s_hat)

    return Optimizer(init, update)


# ----------------------------------------------------------------------------- explainers

def adam_moments(c: StepContext):
    """Emit Adam's moment lines (m, v, m̂, v̂; v_max under amsgrad); return m̂, v̂ and ε.

    Shared by the explainers of Adam and AdamW, whose moments are the same."""
    b1, b2, eps = c.h("beta1"), c.h("beta2"), c.h("eps")
    t = c.t_line()
    m = c.emit(c.new("m"), b1 * c.prev("m") + (1 - b1) * c.g)
    v = c.emit(c.new("v"), b2 * c.prev("v") + (1 - b2) * c.g ** 2)
    m_hat = c.emit(c.new("m_hat"), m / (1 - b1 ** t))
    if c.values["amsgrad"]:
        vmax = c.emit(c.new("v_max"), Fn("max", (c.prev("v_max"), v)), note="AMSGrad")
        v_hat = c.emit(c.new("v_hat"), vmax / (1 - b2 ** t))
    else:
        v_hat = c.emit(c.new("v_hat"), v / (1 - b2 ** t))
    return m_hat, v_hat, eps


def _adam(c: StepContext) -> None:
    m_hat, v_hat, eps = adam_moments(c)
    c.step_to(c.w - c.h("lr") * m_hat / (sqrt(v_hat) + eps))


def _adamax(c: StepContext) -> None:
    b1, b2 = c.h("beta1"), c.h("beta2")
    t = c.t_line()
    m = c.emit(c.new("m"), b1 * c.prev("m") + (1 - b1) * c.g)
    u = c.emit(c.new("u"), Fn("max", (b2 * c.prev("u"), absval(c.g) + c.h("eps"))))
    c.step_to(c.w - c.h("lr") / (1 - b1 ** t) * (m / u))


def _nadam(c: StepContext) -> None:
    b1, b2, eps, psi = c.h("beta1"), c.h("beta2"), c.h("eps"), c.h("momentum_decay")
    t = c.t_line()
    t1 = t + Const(1)
    half = Const(0.5, "½", r"\tfrac{1}{2}")
    mu = c.emit(c.const("mu", "μₜ", r"\mu_t", c.after.mu),
                b1 * (1 - half * Const(0.96) ** (t * psi)))
    mu_next = c.emit(c.const("mu_next", "μₜ₊₁", r"\mu_{t+1}", None),
                     b1 * (1 - half * Const(0.96) ** (t1 * psi)))
    prod_prev = c.const("mu_product", "Πₜ₋₁", r"\Pi_{t-1}", c.before.mu_product)
    prod = c.emit(c.const("mu_product", "Πₜ", r"\Pi_t", c.after.mu_product), prod_prev * mu,
                  note="Πₜ = μ₁·…·μₜ")
    prod_next = c.emit(c.const("mu_product_next", "Πₜ₊₁", r"\Pi_{t+1}", None), prod * mu_next)
    m = c.emit(c.new("m"), b1 * c.prev("m") + (1 - b1) * c.g)
    v = c.emit(c.new("v"), b2 * c.prev("v") + (1 - b2) * c.g ** 2)
    v_hat = c.emit(Sym("v_hat", "v̂", r"\hat{v}", None, when=0), v / (1 - b2 ** t))
    lr = c.h("lr")
    c.step_to(
        c.w
        - lr * (1 - mu) / (1 - prod) * (c.g / (sqrt(v_hat) + eps))
        - lr * mu_next / (1 - prod_next) * (m / (sqrt(v_hat) + eps))
    )


def _adabelief(c: StepContext) -> None:
    b1, b2, eps = c.h("beta1"), c.h("beta2"), c.h("eps")
    t = c.t_line()
    m = c.emit(c.new("m"), b1 * c.prev("m") + (1 - b1) * c.g)
    s = c.emit(c.new("s"), b2 * c.prev("s") + (1 - b2) * (c.g - m) ** 2 + eps)
    m_hat = c.emit(c.new("m_hat"), m / (1 - b1 ** t))
    s_hat = c.emit(c.new("s_hat"), s / (1 - b2 ** t))
    c.step_to(c.w - c.h("lr") * m_hat / (sqrt(s_hat) + eps))


# ----------------------------------------------------------------------------- specs


def adam_torch_kwargs(v, *extra: str) -> dict:
    """torch's lr, betas and eps from the values `v`, then the hypers named in `extra`."""
    return {"lr": v["lr"], "betas": (v["beta1"], v["beta2"]), "eps": v["eps"],
            **{name: v[name] for name in extra}}


def adam_rule(step: str) -> str:
    """Adam's rule text with `step` as its weight update line (Adam and AdamW)."""
    return (
        "m ← β₁·m + (1 − β₁)·g\n"
        "v ← β₂·v + (1 − β₂)·g²\n"
        "m̂ ← m / (1 − β₁ᵗ)\n"
        "v̂ ← v / (1 − β₂ᵗ)\n"
        f"{step}\n"
        "amsgrad: v̂ ← max(v_max, v) / (1 − β₂ᵗ)"
    )


# β₁, β₂ and ε of Adam and AdamW, and AMSGrad's switch
_BETA1 = beta_hyper("beta1", 0.9, "decay of the first-moment average", "β₁")
ADAM_MOMENT_HYPERS = (
    _BETA1,
    beta_hyper("beta2", 0.999, "decay of the second-moment average", "β₂"),
    eps_hyper(1e-8),
)
ADAM_AMSGRAD_HYPER = Hyper("amsgrad", False, "use the running maximum of v (AMSGrad)", kind="bool")

ADAM_SYMBOLS = {
    "m": ("m", "m"),
    "v": ("v", "v"),
    "m_hat": ("m̂", r"\hat{m}"),
    "v_hat": ("v̂", r"\hat{v}"),
    "v_max": ("v_max", r"v_{\max}"),
}

register(OptimizerSpec(
    name="adam",
    title="Adam",
    family="Adam family",
    summary="momentum plus an adaptive per-coordinate step, with bias correction",
    rule=adam_rule("w ← w − η·m̂ / (√v̂ + ε)"),
    hypers=(lr_hyper(1e-3), *ADAM_MOMENT_HYPERS, ADAM_AMSGRAD_HYPER),
    factory=adam,
    playground={"lr": 0.1},
    state=AdamState,
    symbols=ADAM_SYMBOLS,
    explainer=_adam,
    torch=TorchMapping(
        "Adam",
        lambda v: adam_torch_kwargs(v, "amsgrad"),
        examples=("adam(lr=0.01)", "adam(lr=0.01,beta1=0.8,beta2=0.99,amsgrad=true)"),
    ),
    velocity=("m", "m"),
))

register(OptimizerSpec(
    name="adamax",
    title="Adamax",
    family="Adam family",
    summary="Adam with an infinity norm: divide by a decaying maximum of |g|",
    rule=(
        "m ← β₁·m + (1 − β₁)·g\n"
        "u ← max(β₂·u, |g| + ε)\n"
        "w ← w − η/(1 − β₁ᵗ) · m / u"
    ),
    hypers=(
        lr_hyper(2e-3),
        _BETA1,
        beta_hyper("beta2", 0.999, "decay of the infinity norm", "β₂"),
        eps_hyper(1e-8, "added to |g| inside the maximum (torch's placement)", positive=True),
    ),
    factory=adamax,
    playground={"lr": 0.3},
    state=AdamaxState,
    symbols={"m": ("m", "m"), "u": ("u", "u")},
    explainer=_adamax,
    torch=TorchMapping("Adamax", adam_torch_kwargs, examples=("adamax(lr=0.01)",)),
    velocity=("m", "m"),
))

register(OptimizerSpec(
    name="nadam",
    title="Nadam",
    family="Adam family",
    summary="Adam with Nesterov momentum and torch's momentum-decay schedule",
    rule=(
        "μ_t ← β₁·(1 − ½·0.96^(t·ψ))\n"
        "m ← β₁·m + (1 − β₁)·g\n"
        "v ← β₂·v + (1 − β₂)·g²\n"
        "v̂ ← v / (1 − β₂ᵗ)\n"
        "w ← w − η·(1 − μ_t)/(1 − Πᵢ≤ₜ μᵢ) · g/(√v̂ + ε)\n"
        "      − η·μ_{t+1}/(1 − Πᵢ≤ₜ₊₁ μᵢ) · m/(√v̂ + ε)"
    ),
    hypers=(
        lr_hyper(2e-3),
        *ADAM_MOMENT_HYPERS,
        Hyper("momentum_decay", 4e-3, "momentum decay ψ of the μ_t schedule",
              lo=0.0, hi=10.0, symbol="ψ"),
    ),
    factory=nadam,
    convention="torch.optim.NAdam (Dozat 2016 with the μ_t schedule of Sutskever et al.).",
    playground={"lr": 0.2},
    state=NAdamState,
    symbols={"m": ("m", "m"), "v": ("v", "v"), "mu": ("μₜ", r"\mu_t"),
             "mu_product": ("Πₜ", r"\Pi_t")},
    explainer=_nadam,
    torch=TorchMapping(
        "NAdam",
        lambda v: adam_torch_kwargs(v, "momentum_decay"),
        examples=("nadam(lr=0.01)",),
    ),
    velocity=("m", "m"),
))

register(OptimizerSpec(
    name="adabelief",
    title="AdaBelief",
    family="Adam family",
    summary="Adam that divides by the spread of g around its EMA (its 'belief') instead of g²",
    rule=(
        "m ← β₁·m + (1 − β₁)·g\n"
        "s ← β₂·s + (1 − β₂)·(g − m)² + ε\n"
        "m̂ ← m / (1 − β₁ᵗ);  ŝ ← s / (1 − β₂ᵗ)\n"
        "w ← w − η·m̂ / (√ŝ + ε)"
    ),
    hypers=(
        lr_hyper(1e-3),
        _BETA1,
        beta_hyper("beta2", 0.999, "decay of the belief (variance) average", "β₂"),
        eps_hyper(1e-16, "ε, added to s at every step and to √ŝ; default 1e-16 as in the authors' "
                    "adabelief-pytorch package: since ε also enters s under the square root, "
                    "√1e-16 = 1e-8 matches Adam's usual ε = 1e-8 (the paper's box writes 1e-8)",
             positive=True),
    ),
    factory=adabelief,
    convention="Paper's form (Zhuang et al. 2020), no rectification, no weight decay.",
    playground={"lr": 0.2},
    state=AdaBeliefState,
    symbols={"m": ("m", "m"), "s": ("s", "s"), "m_hat": ("m̂", r"\hat{m}"),
             "s_hat": ("ŝ", r"\hat{s}")},
    explainer=_adabelief,
    torch=NO_TORCH,
    velocity=("m", "m"),
))

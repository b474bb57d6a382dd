"""Lion, "EvoLved Sign Momentum" (Chen et al. 2023, found by program search), as optax's
``scale_by_lion`` plus decoupled weight decay.

Every coordinate moves by exactly η (plus the decay): the step is the *sign* of an
interpolation between the momentum and the gradient, so only the direction of m matters.
The momentum is updated with a second, slower β₂ after the step. This module is the whole
of Lion in the app; torch.optim has no Lion, so networks train it through the adapter.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from engine.explain.context import StepContext
from engine.explain.tree import Call, Sym
from engine.optimizers.registry import (
    NO_TORCH,
    Array,
    Hyper,
    Optimizer,
    OptimizerSpec,
    beta_hyper,
    lr_hyper,
    register,
    zeros,
)


class LionState(NamedTuple):
    t: int
    m: Array  # momentum (EMA of gradients with β₂)
    c: Array  # the interpolation β₁·m + (1 − β₁)·g whose sign is the step


def lion(lr: float, beta1: float, beta2: float, weight_decay: float) -> Optimizer:
    def init(params):
        z = zeros(params)
        return LionState(t=0, m=z, c=z)

    def update(grads, state, params=None, oracle=None):
        c = beta1 * state.m + (1.0 - beta1) * grads
        updates = -lr * (np.sign(c) + weight_decay * params)
        m = beta2 * state.m + (1.0 - beta2) * grads
        return updates, LionState(t=state.t + 1, m=m, c=c)

    return Optimizer(init, update)


def _explain(c: StepContext) -> None:
    b1, b2 = c.h("beta1"), c.h("beta2")
    interp = c.emit(c.new("c"), b1 * c.prev("m") + (1 - b1) * c.g)
    sign = Sym("sign_c", "s", "s", None, when=0)
    s = c.emit(sign, Call("sign", r"\operatorname{sign}", interp, None, np.sign),
               note="±1 per coordinate; 0 where c = 0")
    c.emit(c.new("m"), b2 * c.prev("m") + (1 - b2) * c.g, note="the momentum, after the step")
    c.step_to(c.w - c.h("lr") * (s + c.h("weight_decay") * c.w))


register(OptimizerSpec(
    name="lion",
    title="Lion",
    family="Adam family",
    summary="step by the sign of an interpolation of momentum and gradient (Chen et al. 2023)",
    rule=(
        "c ← β₁·m + (1 − β₁)·g\n"
        "s ← sign(c)\n"
        "m ← β₂·m + (1 − β₂)·g        (after c: the step uses the old m)\n"
        "w ← w − η·(s + λ·w)"
    ),
    hypers=(
        lr_hyper(1e-4),
        beta_hyper("beta1", 0.9, "weight of the momentum in the interpolation whose sign "
                   "is the step", "β₁"),
        beta_hyper("beta2", 0.99, "decay of the momentum average (slower than β₁)", "β₂"),
        Hyper("weight_decay", 0.0, "decoupled weight decay λ: w shrinks by η·λ·w every step",
              lo=0.0, hi=1e3, symbol="λ"),
    ),
    factory=lion,
    state=LionState,
    symbols={"m": ("m", "m"), "c": ("c", "c")},
    explainer=_explain,
    torch=NO_TORCH,
    velocity=("m", "m"),
    convention=(
        "optax's scale_by_lion with the paper's decoupled weight decay; defaults lr = 1e-4, "
        "β₁ = 0.9, β₂ = 0.99, λ = 0. Its steps are ±η per coordinate, so use a learning "
        "rate 3–10× smaller than Adam's."
    ),
    playground={"lr": 0.2},
))

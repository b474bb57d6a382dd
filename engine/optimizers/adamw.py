"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter 2019), as torch.optim.AdamW.

The weights shrink by η·λ·w *before* the Adam step, instead of λ·w being added to the
gradient (which Adam's denominator would then rescale per coordinate). This module is the
whole of AdamW in the app: the registry, the form, the command line, the inspector, the
derivations, torch training and the overlays all read it from here.
"""

from __future__ import annotations

from engine.explain.context import StepContext
from engine.explain.tree import sqrt
from engine.optimizers.adam import (
    ADAM_AMSGRAD_HYPER,
    ADAM_MOMENT_HYPERS,
    ADAM_SYMBOLS,
    AdamState,
    adam,
    adam_moments,
    adam_rule,
    adam_torch_kwargs,
)
from engine.optimizers.registry import (
    Hyper,
    Optimizer,
    OptimizerSpec,
    TorchMapping,
    lr_hyper,
    register,
)


def adamw(lr: float, beta1: float, beta2: float, eps: float, weight_decay: float,
          amsgrad: bool) -> Optimizer:
    inner = adam(lr, beta1, beta2, eps, amsgrad)

    def update(grads, state, params=None, oracle=None):
        updates, new_state = inner.update(grads, state, params, oracle)
        return updates - lr * weight_decay * params, new_state

    return Optimizer(inner.init, update)


def _explain(c: StepContext) -> None:
    m_hat, v_hat, eps = adam_moments(c)
    lr = c.h("lr")
    c.step_to(c.w - lr * c.h("weight_decay") * c.w - lr * m_hat / (sqrt(v_hat) + eps),
              note="decoupled weight decay, then the Adam step")


register(OptimizerSpec(
    name="adamw",
    title="AdamW",
    family="Adam family",
    summary="Adam with decoupled weight decay: shrink the weights, then take the Adam step",
    rule=adam_rule("w ← w − η·λ·w − η·m̂ / (√v̂ + ε)"),
    hypers=(
        lr_hyper(1e-3),
        *ADAM_MOMENT_HYPERS,
        Hyper("weight_decay", 1e-2, "decoupled weight decay λ: the weights shrink by η·λ·w "
              "every step, outside Adam's per-coordinate scaling", lo=0.0, hi=1e3, symbol="λ"),
        ADAM_AMSGRAD_HYPER,
    ),
    factory=adamw,
    state=AdamState,
    symbols=ADAM_SYMBOLS,
    explainer=_explain,
    torch=TorchMapping(
        "AdamW",
        lambda v: adam_torch_kwargs(v, "weight_decay", "amsgrad"),
        examples=("adamw(lr=0.01)", "adamw(lr=0.01,weight_decay=0.1,amsgrad=true)"),
    ),
    velocity=("m", "m"),
    convention="torch.optim.AdamW: the decay η·λ·w uses the current η; λ = 0 is Adam.",
    playground={"lr": 0.1, "weight_decay": 0.1},
))

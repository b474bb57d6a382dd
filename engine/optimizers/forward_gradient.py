"""Gradient estimates: the forward gradient (one JVP along a random direction per step)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from engine.explain.context import StepContext
from engine.explain.format import _freeze
from engine.explain.tree import Call, Fn, Sym
from engine.optimizers.registry import (
    NO_TORCH,
    Array,
    Hyper,
    Optimizer,
    OptimizerSpec,
    lr_hyper,
    register,
    zeros,
)


class ForwardGradientState(NamedTuple):
    t: int
    v: Array  # the random direction v ~ N(0, I) of this step
    d: float | Array  # the directional derivative ∇f·v (one forward-mode JVP), per run
    g_est: Array  # the estimate d·v (unbiased for ∇f); the update is −η·g_est


def forward_direction(seed: int, t: int, shape: tuple[int, ...]) -> Array:
    """The random direction of step ``t``: v ~ N(0, I), a pure function of (seed, t).

    Seeding per step (not one stream per run) keeps ``update`` pure: replaying a recorded
    state reproduces the same direction, and rewinding never desynchronises a generator.
    For a batch (``shape`` ``(N, 2)``) row i is run i's direction: the generator fills rows
    in order, so row i depends only on (seed, t, i), and row 0 is the single run's.
    """
    return np.random.default_rng([int(seed), int(t)]).standard_normal(shape)


def forward_gradient(lr: float, seed: int) -> Optimizer:
    def init(params):
        z = zeros(params)
        return ForwardGradientState(t=0, v=z, d=0.0, g_est=z)

    def update(grads, state, params=None, oracle=None):
        if oracle is None:
            raise ValueError("forward_gradient needs the surface (an oracle) for its JVP")
        t = state.t + 1
        v = forward_direction(seed, t, np.shape(params))
        # the directional derivative, one per run; ``grads`` is unused
        d = np.asarray(oracle.jvp(params, v), dtype=float)
        g_est = d[..., None] * v
        d = d if d.ndim else float(d)
        return -lr * g_est, ForwardGradientState(t=t, v=v, d=d, g_est=g_est)

    return Optimizer(init, update)


def _forward_gradient(c: StepContext) -> None:
    seed = c.values["seed"]
    t = int(c.after.t)
    v = c.emit(c.new("v"), Call("randn", r"\operatorname{randn}",
                                Sym("t", "t", "t", t), _freeze(c.after.v),
                                lambda _t: forward_direction(seed, t, (2,))),
               note=f"v ~ N(0, I), drawn with (seed={seed}, t={t})")
    clean = c.clean_grad()
    noisy = c.values.get("noise", 0) > 0
    grad = Call(c.grad_symbol, c.grad_latex, c.w, _freeze(clean), c.grad_fn())
    d = c.emit(c.new("d"), Fn("dot", (grad, v)), exact=not noisy and clean is not None,
               note="one forward-mode JVP" + ("; plus gradient noise" if noisy else ""))
    g_est = c.emit(c.new("g_est"), d * v, note="unbiased estimate of ∇f")
    c.step_to(c.w - c.h("lr") * g_est)


register(OptimizerSpec(
    name="forward_gradient",
    title="Forward gradient",
    family="Gradient estimates",
    summary="descend along a random direction scaled by the directional derivative (no backprop)",
    rule=(
        "v ~ N(0, I)                   (seeded per step)\n"
        "d ← ∇f·v                      (one forward-mode JVP)\n"
        "g̃ ← d·v                       (unbiased: E[g̃] = ∇f)\n"
        "w ← w − η·g̃"
    ),
    hypers=(
        lr_hyper(1e-3),
        Hyper("seed", 0, "seed of the random directions (and of gradient noise)",
              kind="int", lo=0, hi=2**32 - 1),
    ),
    factory=forward_gradient,
    convention="Baydin et al. 2022: one JVP per step; the gradient itself is never used.",
    playground={"lr": 0.1},
    needs=("jvp",),
    state=ForwardGradientState,
    symbols={"v": ("v", "v"), "d": ("d", "d"), "g_est": ("g̃", r"\tilde{g}")},
    explainer=_forward_gradient,
    torch=NO_TORCH,
    velocity=None,
    estimates_gradient=(
        "The gradient is estimated: a random direction v and one directional derivative "
        "replace the true gradient, which is not used."
    ),
))

"""Gradient descent and momentum: gd, the course's EMA momentum, torch's SGD and Nesterov."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from engine.explain.context import StepContext
from engine.explain.tree import Sym
from engine.optimizers.registry import (
    NO_TORCH,
    Array,
    Hyper,
    Optimizer,
    OptimizerSpec,
    TorchMapping,
    beta_hyper,
    lr_hyper,
    register,
    zeros,
)

# ----------------------------------------------------------------------------- states

class EmptyState(NamedTuple):
    t: int


class VelocityState(NamedTuple):
    t: int
    v: Array  # velocity (EMA of gradients)


class SGDState(NamedTuple):
    t: int
    buf: Array  # momentum buffer b (torch's momentum_buffer)


# ----------------------------------------------------------------------------- rules

def gd(lr: float) -> Optimizer:
    def init(params):
        return EmptyState(t=0)

    def update(grads, state, params=None, oracle=None):
        return -lr * grads, EmptyState(t=state.t + 1)

    return Optimizer(init, update)


def momentum(lr: float, beta: float) -> Optimizer:
    def init(params):
        return VelocityState(t=0, v=zeros(params))

    def update(grads, state, params=None, oracle=None):
        v = beta * state.v + (1.0 - beta) * grads
        return -lr * v, VelocityState(t=state.t + 1, v=v)

    return Optimizer(init, update)


def sgd(lr: float, momentum: float, dampening: float, nesterov: bool) -> Optimizer:
    if nesterov and np.any((np.asarray(momentum) <= 0) | (np.asarray(dampening) != 0)):
        raise ValueError("sgd: nesterov=true requires momentum > 0 and dampening = 0")
    uses = np.asarray(momentum) != 0  # per run when momentum is given per run

    def init(params):
        return SGDState(t=0, buf=zeros(params))

    def update(grads, state, params=None, oracle=None):
        d = grads
        buf = state.buf
        if np.any(uses):
            new = grads.copy() if state.t == 0 else momentum * buf + (1.0 - dampening) * grads
            step = grads + momentum * new if nesterov else new
            if np.all(uses):
                buf, d = new, step
            else:  # runs with μ = 0 are plain SGD and keep an unused zero buffer
                buf, d = np.where(uses, new, buf), np.where(uses, step, grads)
        return -lr * d, SGDState(t=state.t + 1, buf=buf)

    return Optimizer(init, update)


def nesterov(lr: float, momentum: float, dampening: float) -> Optimizer:
    """torch's SGD with nesterov=True: a preset, so the picker can list it on its own."""
    return sgd(lr, momentum, dampening, True)


# ----------------------------------------------------------------------------- explainers

def _gd(c: StepContext) -> None:
    c.step_to(c.w - c.h("lr") * c.g)


def _momentum(c: StepContext) -> None:
    beta = c.h("beta")
    v = c.emit(c.new("v"), beta * c.prev("v") + (1 - beta) * c.g)
    c.step_to(c.w - c.h("lr") * v)


def _sgd(c: StepContext, nesterov: bool | None = None) -> None:
    vals = c.values
    mu_value = vals["momentum"]
    nesterov = vals.get("nesterov", False) if nesterov is None else nesterov
    lr = c.h("lr")
    if mu_value == 0:
        c.step_to(c.w - lr * c.g)
        return
    mu = c.h("momentum")
    if c.before.t == 0:
        b = c.emit(c.new("buf"), c.g, note="first step: the buffer starts as the gradient")
    elif vals["dampening"] == 0:
        b = c.emit(c.new("buf"), mu * c.prev("buf") + c.g)
    else:
        b = c.emit(c.new("buf"), mu * c.prev("buf") + (1 - c.h("dampening")) * c.g)
    if nesterov:
        d = c.emit(Sym("d", "d", "d", None, when=0), c.g + mu * b, note="Nesterov look-ahead")
        c.step_to(c.w - lr * d)
    else:
        c.step_to(c.w - lr * b)


# ----------------------------------------------------------------------------- specs

_SGD_SYMBOLS = {"buf": ("b", "b")}


def _sgd_kwargs(v, nesterov=None):
    return {"lr": v["lr"], "momentum": v["momentum"], "dampening": v["dampening"],
            "nesterov": v["nesterov"] if nesterov is None else nesterov}


register(OptimizerSpec(
    name="gd",
    title="Gradient descent",
    family="Gradient descent",
    summary="step against the gradient with a fixed learning rate",
    rule="w ← w − η·g",
    hypers=(lr_hyper(1e-3),),
    factory=gd,
    playground={"lr": 0.1},
    state=EmptyState,
    symbols={},
    explainer=_gd,
    torch=TorchMapping("SGD", lambda v: {"lr": v["lr"]}, examples=("gd(lr=0.1)",)),
    velocity=None,
))

register(OptimizerSpec(
    name="momentum",
    title="Momentum (course EMA form)",
    family="Momentum",
    summary="gradient descent on an exponential moving average of gradients",
    rule="v ← β·v + (1 − β)·g\nw ← w − η·v",
    hypers=(
        lr_hyper(1e-3),
        beta_hyper("beta", 0.9, "decay of the velocity average", "β"),
    ),
    factory=momentum,
    convention=(
        "Course convention: v = β·v + (1−β)·g. torch's SGD momentum is b = μ·b + g "
        "(use sgd(momentum=…)); at a steady gradient torch's step is 1/(1−β) times larger."
    ),
    playground={"lr": 0.1},
    state=VelocityState,
    symbols={"v": ("v", "v")},
    explainer=_momentum,
    torch=NO_TORCH,
    velocity=("v", "v"),
))

register(OptimizerSpec(
    name="sgd",
    title="SGD (torch.optim.SGD)",
    family="Gradient descent",
    summary="torch's SGD, with optional heavy-ball or Nesterov momentum",
    rule=(
        "if μ ≠ 0:\n"
        "    b ← g                        (first step)\n"
        "    b ← μ·b + (1 − τ)·g          (later steps)\n"
        "    d ← g + μ·b if nesterov else b\n"
        "else: d ← g\n"
        "w ← w − η·d"
    ),
    hypers=(
        lr_hyper(1e-3),
        Hyper("momentum", 0.0, "momentum factor μ (torch convention b = μ·b + g)",
              lo=0.0, hi=1.0, hi_open=True, symbol="μ"),
        Hyper("dampening", 0.0, "dampening τ for momentum", lo=0.0, hi=1.0, symbol="τ"),
        Hyper("nesterov", False, "use Nesterov momentum", kind="bool"),
    ),
    factory=sgd,
    convention="torch convention: b = μ·b + g (b₁ = g₁), w −= η·b.",
    playground={"lr": 0.1},
    state=SGDState,
    symbols=_SGD_SYMBOLS,
    explainer=_sgd,
    torch=TorchMapping("SGD", _sgd_kwargs, examples=(
        "sgd(lr=0.1)", "sgd(lr=0.1,momentum=0.9)", "sgd(lr=0.1,momentum=0.9,dampening=0.5)",
        "sgd(lr=0.1,momentum=0.9,nesterov=true)")),
    velocity=("buf", "b"),
))

register(OptimizerSpec(
    name="nesterov",
    title="Nesterov momentum (torch.optim.SGD, nesterov=True)",
    family="Momentum",
    summary="momentum that looks ahead: the step uses g + μ·b instead of b",
    rule=(
        "b ← g                        (first step)\n"
        "b ← μ·b + g                  (later steps)\n"
        "w ← w − η·(g + μ·b)"
    ),
    hypers=(
        lr_hyper(1e-3),
        Hyper("momentum", 0.9, "momentum factor μ (torch convention b = μ·b + g)",
              lo=0.0, hi=1.0, lo_open=True, hi_open=True, symbol="μ"),
        Hyper("dampening", 0.0, "dampening τ; torch's Nesterov momentum requires τ = 0",
              lo=0.0, hi=0.0, symbol="τ"),
    ),
    factory=nesterov,
    convention="torch convention: sgd(momentum=μ, nesterov=true); b = μ·b + g, "
               "w −= η·(g + μ·b).",
    playground={"lr": 0.05, "momentum": 0.9},
    state=SGDState,
    symbols=_SGD_SYMBOLS,
    explainer=lambda c: _sgd(c, nesterov=True),
    torch=TorchMapping("SGD", lambda v: _sgd_kwargs(v, nesterov=True),
                       examples=("nesterov(lr=0.1)",)),
    velocity=("buf", "b"),
))

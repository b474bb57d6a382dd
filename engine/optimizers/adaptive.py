"""Adaptive learning rates: RMSprop, Adagrad, Adadelta and AdaSmooth."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from engine.explain.context import StepContext
from engine.explain.format import _freeze, _sub
from engine.explain.tree import Const, Fn, SafeRatio, Sym, absval, sqrt
from engine.optimizers.registry import (
    NO_TORCH,
    Array,
    Hyper,
    Optimizer,
    OptimizerSpec,
    TorchMapping,
    _fmt_num,
    eps_hyper,
    lr_hyper,
    register,
    zeros,
)

# ----------------------------------------------------------------------------- states

class RMSpropState(NamedTuple):
    t: int
    s: Array  # running average of squared gradients


class AdagradState(NamedTuple):
    t: int
    s: Array  # sum of squared gradients (starts at initial_accumulator_value)
    lr_t: float  # the decayed learning rate η/(1 + (t − 1)·lr_decay) used at step t


class AdadeltaState(NamedTuple):
    t: int
    v: Array  # running average of squared gradients (torch's square_avg)
    u: Array  # running average of squared updates (torch's acc_delta)
    delta: Array  # this step's rescaled gradient Δ (the update is −η·Δ)


class AdaSmoothState(NamedTuple):
    t: int
    window: Array  # the last ≤ M displacements Δx, oldest first, shape (k, n), read-only
    e: Array  # effective ratio |ΣΔx| / Σ|Δx| per coordinate used at this step
    c: Array  # smoothing constant c = (ρ₂ − ρ₁)·e + (1 − ρ₂)
    eg2: Array  # running average E[g²]


# ----------------------------------------------------------------------------- rules

def rmsprop(lr: float, alpha: float, eps: float, eps_in_sqrt: bool) -> Optimizer:
    def init(params):
        return RMSpropState(t=0, s=zeros(params))

    def update(grads, state, params=None, oracle=None):
        s = alpha * state.s + (1.0 - alpha) * grads * grads
        denom = np.sqrt(s + eps) if eps_in_sqrt else np.sqrt(s) + eps
        return -lr * grads / denom, RMSpropState(t=state.t + 1, s=s)

    return Optimizer(init, update)


def adagrad(lr: float, lr_decay: float, initial_accumulator_value: float, eps: float) -> Optimizer:
    def init(params):
        s = np.full_like(np.asarray(params, dtype=float), initial_accumulator_value)
        return AdagradState(t=0, s=s, lr_t=lr)

    def update(grads, state, params=None, oracle=None):
        t = state.t + 1
        clr = lr / (1.0 + (t - 1) * lr_decay)
        s = state.s + grads * grads
        return -clr * grads / (np.sqrt(s) + eps), AdagradState(t=t, s=s, lr_t=clr)

    return Optimizer(init, update)


def adadelta(lr: float, rho: float, eps: float) -> Optimizer:
    def init(params):
        z = zeros(params)
        return AdadeltaState(t=0, v=z, u=z, delta=z)

    def update(grads, state, params=None, oracle=None):
        v = rho * state.v + (1.0 - rho) * grads * grads
        delta = np.sqrt(state.u + eps) / np.sqrt(v + eps) * grads
        u = rho * state.u + (1.0 - rho) * delta * delta
        return -lr * delta, AdadeltaState(t=state.t + 1, v=v, u=u, delta=delta)

    return Optimizer(init, update)


def effective_ratio(window: Array) -> Array:
    """|ΣΔx| / Σ|Δx| per coordinate over the rows of ``window``, in [0, 1].

    A coordinate that has not moved (an empty window at the first step, or only zero
    steps) has 0/0. It gets e = 1: a path without any reversal counts as straight, so the
    fast average (c = 1 − ρ₁) applies. With E[g²] starting at 0 this keeps the first step
    at η·g/√((1 − ρ₁)²·g² + ε) ≈ η/(1 − ρ₁) per coordinate; e = 0 would make it
    η/(1 − ρ₂) = 100·η for the default ρ₂, a wild first jump.
    """
    net = np.abs(window.sum(axis=0))
    path = np.abs(window).sum(axis=0)
    moved = path > 0
    return np.where(moved, np.minimum(net / np.where(moved, path, 1.0), 1.0), 1.0)


def _text(value) -> str:
    return _fmt_num(float(value)) if np.ndim(value) == 0 else "given per run"


def adasmooth(lr: float, rho1: float, rho2: float, eps: float, window: int) -> Optimizer:
    if np.any(np.asarray(rho1) >= np.asarray(rho2)):
        raise ValueError(
            f"adasmooth: rho1 ({_text(rho1)}, the fast decay) must be smaller than "
            f"rho2 ({_text(rho2)}, the slow decay)"
        )

    def init(params):
        z = zeros(params)
        empty = np.zeros((0,) + z.shape)
        empty.flags.writeable = False
        return AdaSmoothState(t=0, window=empty, e=z, c=z, eg2=z)

    def update(grads, state, params=None, oracle=None):
        e = effective_ratio(state.window)  # over the displacements before this step
        c = (rho2 - rho1) * e + (1.0 - rho2)
        eg2 = c * c * grads * grads + (1.0 - c * c) * state.eg2
        updates = -lr * grads / np.sqrt(eg2 + eps)
        win = np.concatenate([state.window, np.asarray(updates, dtype=float)[None]])[-window:]
        win.flags.writeable = False
        return updates, AdaSmoothState(t=state.t + 1, window=win, e=e, c=c, eg2=eg2)

    return Optimizer(init, update)


# ----------------------------------------------------------------------------- explainers

def _rmsprop(c: StepContext) -> None:
    alpha, eps = c.h("alpha"), c.h("eps")
    s = c.emit(c.new("s"), alpha * c.prev("s") + (1 - alpha) * c.g ** 2)
    if c.values["eps_in_sqrt"]:
        c.step_to(c.w - c.h("lr") * c.g / sqrt(s + eps), note="course form: ε inside the root")
    else:
        c.step_to(c.w - c.h("lr") * c.g / (sqrt(s) + eps), note="torch form: ε outside the root")


def _adagrad(c: StepContext) -> None:
    t = c.t_line()
    s = c.emit(c.new("s"), c.prev("s") + c.g ** 2)
    lr_t = c.emit(c.const("lr_t", "ηₜ", r"\eta_t", c.after.lr_t),
                  c.h("lr") / (1 + (t - 1) * c.h("lr_decay")))
    c.step_to(c.w - lr_t * c.g / (sqrt(s) + c.h("eps")))


def _adadelta(c: StepContext) -> None:
    rho, eps = c.h("rho"), c.h("eps")
    v = c.emit(c.new("v"), rho * c.prev("v") + (1 - rho) * c.g ** 2)
    delta = c.emit(c.new("delta"), sqrt(c.prev("u") + eps) / sqrt(v + eps) * c.g)
    c.emit(c.new("u"), rho * c.prev("u") + (1 - rho) * delta ** 2)
    c.step_to(c.w - c.h("lr") * delta)


def _adasmooth(c: StepContext) -> None:
    rho1, rho2 = c.h("rho1"), c.h("rho2")
    window = np.asarray(c.before.window, dtype=float)
    n = len(window)
    first = c.k - n  # step number of the oldest displacement in the window
    dx = [Sym(f"dx{first + i}", f"Δx{_sub(first + i)}", rf"\Delta x_{{{first + i}}}",
              _freeze(row)) for i, row in enumerate(window)]
    if n == 0:
        e = c.emit(c.new("e"), Const(np.ones(2), "(1, 1)", r"\begin{pmatrix}1 \\ 1\end{pmatrix}"),
                   note="nothing has moved yet: 0/0 counts as e = 1 (a straight path)")
    else:
        net = c.emit(Sym("net", "ΣΔx", r"\Sigma\Delta x", None), Fn("sum", tuple(dx)),
                     indexed=False, note=f"the last {n} displacement(s)")
        path = c.emit(Sym("path", "Σ|Δx|", r"\Sigma\left|\Delta x\right|", None),
                      Fn("sum", tuple(absval(x) for x in dx)), indexed=False)
        unmoved = not np.all(np.asarray(path.value) > 0)
        e = c.emit(c.new("e"), SafeRatio(absval(net), path),
                   note="0/0 counts as e = 1" if unmoved else "effective ratio, in [0, 1]")
    cc = c.emit(c.new("c"), (rho2 - rho1) * e + (1 - rho2))
    eg2 = c.emit(c.new("eg2"), cc ** 2 * c.g ** 2 + (1 - cc ** 2) * c.prev("eg2"))
    c.step_to(c.w - c.h("lr") * c.g / sqrt(eg2 + c.h("eps")))


# ----------------------------------------------------------------------------- specs

register(OptimizerSpec(
    name="rmsprop",
    title="RMSprop",
    family="Adaptive learning rate",
    summary="divide the step by a running RMS of recent gradients",
    rule=(
        "s ← α·s + (1 − α)·g²\n"
        "w ← w − η·g / (√s + ε)    torch (eps_in_sqrt=false)\n"
        "w ← w − η·g / √(s + ε)    course (eps_in_sqrt=true)"
    ),
    hypers=(
        lr_hyper(1e-2),
        Hyper("alpha", 0.99, "smoothing constant of the squared-gradient average (course: γ)",
              lo=0.0, hi=1.0, hi_open=True, symbol="α"),
        eps_hyper(1e-8),
        Hyper("eps_in_sqrt", False,
              "put ε inside the square root (course form) instead of outside (torch form)",
              kind="bool"),
    ),
    factory=rmsprop,
    convention=(
        "torch puts ε outside the square root (α = 0.99, ε = 1e-8); the course puts it inside "
        "(γ = 0.9, ε = 1e-6): set eps_in_sqrt=true for the course's form."
    ),
    playground={"lr": 0.1},
    state=RMSpropState,
    symbols={"s": ("s", "s")},
    explainer=_rmsprop,
    torch=TorchMapping(
        "RMSprop",
        lambda v: None if v["eps_in_sqrt"] else {"lr": v["lr"], "alpha": v["alpha"],
                                                 "eps": v["eps"]},
        examples=("rmsprop(lr=0.01)", "rmsprop(lr=0.01,alpha=0.9,eps=1e-6)"),
    ),
    velocity=None,
))

register(OptimizerSpec(
    name="adagrad",
    title="Adagrad",
    family="Adaptive learning rate",
    summary="per-coordinate step shrinking with the sum of all past squared gradients",
    rule=(
        "s ← s + g²                   (s₀ = initial_accumulator_value)\n"
        "η_t ← η / (1 + (t − 1)·λ)\n"
        "w ← w − η_t·g / (√s + ε)"
    ),
    hypers=(
        lr_hyper(1e-2),
        Hyper("lr_decay", 0.0, "learning-rate decay λ: η_t = η / (1 + (t − 1)·λ)",
              lo=0.0, hi=1e3, symbol="λ"),
        Hyper("initial_accumulator_value", 0.0, "starting value s₀ of the squared-gradient sum",
              lo=0.0, hi=1e6, symbol="s₀"),
        eps_hyper(1e-10, positive=True),
    ),
    factory=adagrad,
    playground={"lr": 1.0},
    state=AdagradState,
    symbols={"s": ("s", "s"), "lr_t": ("ηₜ", r"\eta_t")},
    explainer=_adagrad,
    torch=TorchMapping(
        "Adagrad",
        lambda v: {"lr": v["lr"], "lr_decay": v["lr_decay"],
                   "initial_accumulator_value": v["initial_accumulator_value"], "eps": v["eps"]},
        examples=("adagrad(lr=0.1,lr_decay=0.01,initial_accumulator_value=0.1)",),
    ),
    velocity=None,
))

register(OptimizerSpec(
    name="adadelta",
    title="Adadelta",
    family="Adaptive learning rate",
    summary="RMSprop whose step size is the RMS of its own recent updates (units match)",
    rule=(
        "v ← ρ·v + (1 − ρ)·g²\n"
        "Δ ← √(u + ε) / √(v + ε) · g\n"
        "u ← ρ·u + (1 − ρ)·Δ²\n"
        "w ← w − η·Δ"
    ),
    hypers=(
        lr_hyper(1.0),
        Hyper("rho", 0.9, "decay ρ of the squared-gradient and squared-update averages",
              lo=0.0, hi=1.0, symbol="ρ"),
        eps_hyper(1e-6, "term inside both square roots; also sets the size of the first steps",
             positive=True),
    ),
    factory=adadelta,
    convention="torch's form: η multiplies Δ (the paper has no η, i.e. η = 1).",
    playground={"lr": 1.0, "eps": 0.01},
    state=AdadeltaState,
    symbols={"v": ("v", "v"), "u": ("u", "u"), "delta": ("Δ", r"\Delta")},
    explainer=_adadelta,
    torch=TorchMapping("Adadelta", lambda v: {"lr": v["lr"], "rho": v["rho"], "eps": v["eps"]},
                       examples=("adadelta(lr=1)",)),
    velocity=None,
))

register(OptimizerSpec(
    name="adasmooth",
    title="AdaSmooth",
    family="Adaptive learning rate",
    summary="RMSprop whose averaging window adapts to how straight the recent path was",
    rule=(
        "e ← |Σ Δx| / Σ |Δx|  per coordinate, over the last M steps (1 if nothing moved)\n"
        "c ← (ρ₂ − ρ₁)·e + (1 − ρ₂)\n"
        "E[g²] ← c²·g² + (1 − c²)·E[g²]\n"
        "Δx ← −η·g / √(E[g²] + ε);  w ← w + Δx"
    ),
    hypers=(
        lr_hyper(1e-3),
        Hyper("rho1", 0.5, "fast decay ρ₁ (used when the path is straight, e = 1)",
              lo=0.0, hi=1.0, hi_open=True, symbol="ρ₁"),
        Hyper("rho2", 0.99, "slow decay ρ₂ (used when the path zig-zags, e = 0)",
              lo=0.0, hi=1.0, hi_open=True, symbol="ρ₂"),
        eps_hyper(1e-6, positive=True),
        Hyper("window", 10, "number M of recent steps the effective ratio looks at",
              kind="int", lo=1, hi=1000, symbol="M"),
    ),
    factory=adasmooth,
    convention="Jun Lu 2022; an unmoved coordinate (0/0, e.g. the first step) counts as e = 1.",
    playground={"lr": 0.1},
    state=AdaSmoothState,
    symbols={"window": ("Δx[]", r"\Delta x_{\mathrm{recent}}"), "e": ("e", "e"),
             "c": ("c", "c"), "eg2": ("E[g²]", r"E[g^2]")},
    explainer=_adasmooth,
    torch=NO_TORCH,
    velocity=None,
))

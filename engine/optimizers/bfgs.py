"""Second order: BFGS with a strong-Wolfe line search (Nocedal & Wright, Algorithm 6.1)."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from engine.explain.context import StepContext
from engine.explain.format import _freeze
from engine.explain.tree import Call
from engine.optimizers.linesearch import GRAD_TOL, NO_TRIALS, initial_step, pack, strong_wolfe
from engine.optimizers.registry import (
    NO_TORCH,
    Array,
    Hyper,
    Optimizer,
    OptimizerSpec,
    register,
    run_by_run,
    zeros,
)


class BFGSState(NamedTuple):
    t: int
    H: Array  # inverse-Hessian approximation the step's direction used: d = −H·g
    direction: Array  # d = −H·g
    step: float  # accepted step length α along d (0: the search found nothing)
    trials: Array  # (n, 5): t, φ(t), φ'(t), Armijo, curvature of this step's line search, in order
    evals: int  # surface evaluations (f and ∇f together) used by this step
    f: float  # f at the point the step reached
    f_prev: float  # f at the point the step started from
    g: Array  # ∇f at the point the step started from (y is formed from it next step)
    s: Array  # the step taken, α·d
    updates: int  # BFGS updates of H so far (H₀ is scaled by N&W (6.20) before the first)


def bfgs_update(H: Array, s: Array, y: Array, first: bool) -> Array:
    """H⁺ = (I − ρ·s·yᵀ)·H·(I − ρ·y·sᵀ) + ρ·s·sᵀ with ρ = 1/(yᵀs) (N&W 6.17); before the
    first update H is replaced by (yᵀs / yᵀy)·I (N&W 6.20)."""
    ys = float(y @ s)
    n = len(s)
    if first:
        H = (ys / float(y @ y)) * np.eye(n)
    rho = 1.0 / ys
    V = np.eye(n) - rho * np.outer(s, y)
    return V @ H @ V.T + rho * np.outer(s, s)


def curvature_ok(s: Array, y: Array) -> bool:
    """yᵀs > 0 (with a relative margin): the update keeps H positive definite."""
    return float(y @ s) > 1e-10 * float(np.linalg.norm(y) * np.linalg.norm(s))


def bfgs(c1: float, c2: float, max_ls: int) -> Optimizer:
    if not c1 < c2:
        raise ValueError(f"bfgs: the Wolfe constants need 0 < c1 < c2 < 1, got c1={c1:g}, "
                         f"c2={c2:g}")

    def init(params):
        z = zeros(params)
        return BFGSState(t=0, H=np.eye(z.size), direction=z, step=0.0, trials=NO_TRIALS, evals=0,
                         f=math.nan, f_prev=math.nan, g=z, s=z, updates=0)

    def update(grads, state, params=None, oracle=None):
        if oracle is None:
            raise ValueError("bfgs needs the surface (an oracle) for its line search")
        g = np.asarray(grads, dtype=float)
        t = state.t + 1
        H, updates, evals = state.H, state.updates, 0
        if t == 1:
            f = float(oracle.value(params))
            evals = 1
            f_before = f + 0.5 * float(np.linalg.norm(g))  # so that α₁ ≈ 1/‖g‖ (as scipy)
        else:
            f, f_before = state.f, state.f_prev
            y = g - state.g
            if curvature_ok(state.s, y):
                H = bfgs_update(H, state.s, y, first=updates == 0)
                updates += 1
        z = np.zeros_like(g)
        d = -H @ g
        slope = float(g @ d)
        if float(np.max(np.abs(g))) <= GRAD_TOL or not math.isfinite(slope):
            return z, BFGSState(t, H, z, 0.0, NO_TRIALS, evals, f, f, g, z, updates)
        if slope >= 0:  # H lost positive definiteness (noisy gradients): start again from I
            H = np.eye(len(g))
            d = -g
            slope = float(g @ d)
        # quasi-Newton steps try α = 1 first (N&W §3.5); the first, on H = I, ≈ 1/‖g‖
        t1 = 1.0 if updates else initial_step(f, f_before, slope)
        ls = strong_wolfe(oracle, params, d, f, g, t1, c1, c2, max_ls)
        s = ls.t * d
        return s, BFGSState(t, H, d, ls.t, pack(ls.trials), evals + len(ls.trials), ls.f, f, g, s,
                            updates)

    return Optimizer(init, update)


def _bfgs(c: StepContext) -> None:
    before, after = c.before, c.after
    H_prev = c.prev("H")
    if after.updates > before.updates:
        y = np.asarray(after.g) - np.asarray(before.g)
        s = np.asarray(before.s)
        first = before.updates == 0
        c.emit(c.new("H"), Call(
            "BFGS", r"\mathrm{BFGS}", H_prev, _freeze(after.H),
            lambda h, s=s, y=y, first=first: bfgs_update(np.asarray(h), s, y, first)),
            note="H ← (I − ρ·s·yᵀ)·H·(I − ρ·y·sᵀ) + ρ·s·sᵀ, ρ = 1/yᵀs, with s = the last "
                 "step and y = the change of ∇f" + (
                     "; first update: H is first set to (yᵀs/yᵀy)·I (N&W 6.20)" if first
                     else ""))
    else:
        c.emit(c.new("H"), H_prev, note="no update (first step, or yᵀs ≤ 0)")
    h_new = np.asarray(after.H)
    d = c.emit(c.new("direction"),
               Call("−H·", r"-H\cdot", c.g, _freeze(after.direction),
                    lambda g: -(h_new @ np.asarray(g))),
               note="the quasi-Newton direction d = −H·g")
    n = len(after.trials)
    alpha = c.emit(c.new("step"), Call("wolfe", r"\mathrm{wolfe}", d, after.step),
                   note=f"strong Wolfe line search: {n} trial(s), see the line-search table")
    c.step_to(c.w + alpha * d)


register(OptimizerSpec(
    name="bfgs",
    title="BFGS (quasi-Newton, strong Wolfe)",
    family="Second order",
    summary="learn the inverse Hessian from gradient changes; step along −H·g by a line search",
    rule=(
        "s ← w − w_prev;  y ← g − g_prev\n"
        "H ← (I − ρ·s·yᵀ)·H·(I − ρ·y·sᵀ) + ρ·s·sᵀ,  ρ = 1/yᵀs   (H₀ = yᵀs/yᵀy·I)\n"
        "d ← −H·g\n"
        "α ← strong Wolfe line search along d   (c₁, c₂)\n"
        "w ← w + α·d"
    ),
    hypers=(
        Hyper("c1", 1e-4, "sufficient-decrease (Armijo) constant c₁ of the line search",
              lo=0.0, hi=1.0, lo_open=True, hi_open=True, symbol="c₁"),
        Hyper("c2", 0.9, "curvature constant c₂ of the strong Wolfe condition "
              "(0.9 for quasi-Newton methods)", lo=0.0, hi=1.0, lo_open=True, hi_open=True,
              symbol="c₂"),
        Hyper("max_ls", 25, "most function-and-gradient evaluations one line search may use",
              kind="int", lo=1, hi=1000),
    ),
    factory=run_by_run(bfgs),
    convention=(
        "Nocedal & Wright, Algorithm 6.1 with the line search of Algorithms 3.5/3.6 "
        "(cubic interpolation); H₀ = I for the first step, rescaled by (6.20) before the "
        "first update; an update with yᵀs ≤ 0 is skipped. The first trial step is 1, except "
        "on the first iteration (≈ 1/‖g‖, as scipy does)."
    ),
    needs=("value", "grad", "dense_matrix"),
    step_source="its line search",
    state=BFGSState,
    symbols={
        "H": ("H", "H"), "direction": ("d", "d"), "step": ("α", r"\alpha"),
        "trials": ("trials", r"\mathrm{trials}"), "evals": ("evals", r"\mathrm{evals}"),
        "f": ("f", "f"), "f_prev": ("f_prev", r"f_{\mathrm{prev}}"), "g": ("g", "g"),
        "s": ("s", "s"), "updates": ("updates", r"\mathrm{updates}"),
    },
    explainer=_bfgs,
    torch=NO_TORCH,
    velocity=None,
))

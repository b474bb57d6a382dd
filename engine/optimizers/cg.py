"""Second order: nonlinear conjugate gradient (Fletcher–Reeves or Polak–Ribière+)."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from engine.explain.context import StepContext
from engine.explain.tree import Call, Const, Fn
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

VARIANTS = ("fletcher_reeves", "polak_ribiere")
POWELL_NU = 0.1  # restart when |gₖ·gₖ₋₁| ≥ ν·‖gₖ‖² (N&W 5.52)


class CGState(NamedTuple):
    t: int
    direction: Array  # d = −g + β·d_prev
    beta: float  # β of this step (0 on a restart)
    restarted: bool  # this step went back to steepest descent
    step: float  # accepted α
    trials: Array  # (n, 5): t, φ(t), φ'(t), Armijo, curvature of this step's line search
    evals: int  # surface evaluations used by this step
    f: float  # f at the point reached
    f_prev: float  # f where the step started
    g: Array  # ∇f where the step started


def cg_beta(variant: str, g: Array, g_prev: Array) -> float:
    """β_FR = gᵀg / g_prevᵀg_prev, or β_PR+ = max(0, gᵀ(g − g_prev) / g_prevᵀg_prev)."""
    gg_prev = float(g_prev @ g_prev)
    if variant == "fletcher_reeves":
        return float(g @ g) / gg_prev
    return max(0.0, float(g @ (g - g_prev)) / gg_prev)


def cg(variant: str, c1: float, c2: float, max_ls: int) -> Optimizer:
    if variant not in VARIANTS:
        raise ValueError(f"cg: variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    if not c1 < c2:
        raise ValueError(f"cg: the Wolfe constants need 0 < c1 < c2 < 1, got c1={c1:g}, "
                         f"c2={c2:g}")

    def init(params):
        z = zeros(params)
        return CGState(0, z, 0.0, True, 0.0, NO_TRIALS, 0, math.nan, math.nan, z)

    def update(grads, state, params=None, oracle=None):
        if oracle is None:
            raise ValueError("cg needs the surface (an oracle) for its line search")
        g = np.asarray(grads, dtype=float)
        t = state.t + 1
        evals = 0
        beta, restart = 0.0, True
        if t == 1:
            f = float(oracle.value(params))
            evals = 1
            f_before = f + 0.5 * float(np.linalg.norm(g))  # α₁ ≈ 1/‖g‖, as scipy
        else:
            f, f_before = state.f, state.f_prev
            gp = state.g
            if float(gp @ gp) > 0 and abs(float(g @ gp)) < POWELL_NU * float(g @ g):
                beta = cg_beta(variant, g, gp)
                restart = beta == 0.0
        z = np.zeros_like(g)
        d = -g + beta * state.direction
        slope = float(g @ d)
        if float(np.max(np.abs(g))) <= GRAD_TOL or not math.isfinite(slope):
            return z, CGState(t, z, 0.0, True, 0.0, NO_TRIALS, evals, f, f, g)
        if slope >= 0:  # not a descent direction: restart
            d, beta, restart = -g, 0.0, True
            slope = float(g @ d)
        ls = strong_wolfe(oracle, params, d, f, g, initial_step(f, f_before, slope), c1, c2,
                          max_ls)
        return ls.t * d, CGState(t, d, beta, restart, ls.t, pack(ls.trials),
                                 evals + len(ls.trials), ls.f, f, g)

    return Optimizer(init, update)


def _cg(c: StepContext) -> None:
    after = c.after
    if after.restarted:
        why = "first step" if after.t == 1 else (
            "restart: Powell's test |gₖ·gₖ₋₁| ≥ 0.1·‖gₖ‖², β_PR < 0 or no descent")
        beta = c.emit(c.new("beta"), Const(0.0), note=why)
    else:
        g_prev = c.prev("g")
        den = Fn("dot", (g_prev, g_prev))
        if c.values["variant"] == "fletcher_reeves":
            expr = Fn("dot", (c.g, c.g)) / den
            note = "Fletcher–Reeves"
        else:
            expr = Fn("max", (Const(0.0), Fn("dot", (c.g, c.g - g_prev)) / den))
            note = "Polak–Ribière+"
        beta = c.emit(c.new("beta"), expr, note=note)
    d = c.emit(c.new("direction"), -c.g + beta * c.prev("direction"),
               note="conjugate to the previous directions (for a quadratic)")
    alpha = c.emit(c.new("step"), Call("wolfe", r"\mathrm{wolfe}", d, after.step),
                   note=f"strong Wolfe line search: {len(after.trials)} trial(s), see the "
                        f"line-search table")
    c.step_to(c.w + alpha * d)


register(OptimizerSpec(
    name="cg",
    title="Nonlinear conjugate gradient",
    family="Second order",
    summary="each direction conjugate to the last: −g plus β times the previous direction",
    rule=(
        "β ← gᵀg / g_prevᵀg_prev                    (fletcher_reeves)\n"
        "β ← max(0, gᵀ(g − g_prev) / g_prevᵀg_prev)  (polak_ribiere, PR+)\n"
        "β ← 0 when |gᵀg_prev| ≥ 0.1·gᵀg             (Powell's restart)\n"
        "d ← −g + β·d_prev\n"
        "α ← strong Wolfe line search along d\n"
        "w ← w + α·d"
    ),
    hypers=(
        Hyper("variant", "polak_ribiere", "β formula: fletcher_reeves or polak_ribiere (PR+, "
              "β clipped at 0, which restarts)", kind="choice", choices=VARIANTS),
        Hyper("c1", 1e-4, "sufficient-decrease (Armijo) constant c₁ of the line search",
              lo=0.0, hi=1.0, lo_open=True, hi_open=True, symbol="c₁"),
        Hyper("c2", 0.1, "curvature constant c₂ of the strong Wolfe condition (0.1 for "
              "conjugate gradients, N&W §5.2; Fletcher–Reeves needs c₂ < ½)", lo=0.0, hi=1.0,
              lo_open=True, hi_open=True, symbol="c₂"),
        Hyper("max_ls", 25, "most function-and-gradient evaluations one line search may use",
              kind="int", lo=1, hi=1000),
    ),
    factory=run_by_run(cg),
    convention=(
        "Nocedal & Wright §5.2: FR (5.41a) or PR+ (5.45), restarted by Powell's test (5.52) "
        "and whenever d is not a descent direction; line search of Algorithms 3.5/3.6 with "
        "the first trial from the last decrease (3.60, as scipy)."
    ),
    needs=("value", "grad"),
    step_source="its line search",
    state=CGState,
    symbols={
        "direction": ("d", "d"), "beta": ("β", r"\beta"), "restarted": ("restart", "restart"),
        "step": ("α", r"\alpha"), "trials": ("trials", r"\mathrm{trials}"),
        "evals": ("evals", r"\mathrm{evals}"), "f": ("f", "f"),
        "f_prev": ("f_prev", r"f_{\mathrm{prev}}"), "g": ("g", "g"),
    },
    explainer=_cg,
    torch=NO_TORCH,
    velocity=None,
))

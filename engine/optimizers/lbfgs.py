"""Second order: L-BFGS with torch.optim.LBFGS's semantics, one torch iteration per step.

Each step is exactly what ``torch.optim.LBFGS(params, max_iter=1, …).step(closure)`` does:
evaluate f and ∇f at w (one closure call), stop if max|g| ≤ tolerance_grad, update the
memory of (s, y) pairs (skipping pairs with yᵀs ≤ 1e-10), form d = −H·g by the two-loop
recursion with H₀ = γ·I (γ = sᵀy/yᵀy of the newest pair), take t = min(1, 1/Σ|g|)·lr on the
first step and t = lr afterwards, stop if ∇f·d > −tolerance_change, and either step by t·d
(line_search_fn=none) or run torch's strong Wolfe search (a port of minFunc's, with its own
cubic interpolation and bracketing; c₁ = 1e-4, c₂ = 0.9 as torch calls it) with at most
max_eval − 1 evaluations. tests/test_second_order.py runs torch's class beside it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from engine.explain.context import StepContext
from engine.explain.format import _freeze
from engine.explain.tree import Call
from engine.optimizers.linesearch import NO_TRIALS, Trial, make_trial, pack
from engine.optimizers.registry import (
    NO_TORCH,
    Array,
    Hyper,
    Optimizer,
    OptimizerSpec,
    lr_hyper,
    register,
    run_by_run,
    zeros,
)

LINE_SEARCHES = ("none", "strong_wolfe")
# torch's _strong_wolfe is always called with its defaults for these
TORCH_C1, TORCH_C2, TORCH_LS_TOLERANCE = 1e-4, 0.9, 1e-9
STOPS = ("", "max |g| ≤ tolerance_grad", "∇f·d > −tolerance_change")


class LBFGSState(NamedTuple):
    t: int  # steps taken (torch's state["n_iter"])
    direction: Array  # d (torch's state["d"])
    step: float  # step length along d (torch's state["t"])
    old_dirs: Array  # the y's kept, one per row (newest last)
    old_stps: Array  # the s's kept, one per row
    ro: Array  # 1/(yᵀs) of each pair
    H_diag: float  # γ = sᵀy/yᵀy of the newest pair: the initial inverse Hessian γ·I
    prev_flat_grad: Array  # ∇f where this step started
    prev_loss: float  # f where this step started
    trials: Array  # this step's line search (strong_wolfe only), see linesearch.pack
    evals: int  # closure calls this step (1 + line-search evaluations)
    func_evals: int  # closure calls so far (torch's state["func_evals"])
    stopped: int  # why the step did not move: an index into STOPS (0: it moved)


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """torch's _cubic_interpolate (from minFunc's polyinterp), transcribed."""
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        xmin_bound, xmax_bound = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    if d2_square >= 0:
        d2 = math.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def torch_strong_wolfe(obj, t, d, f, g, gtd, max_ls, c1=TORCH_C1, c2=TORCH_C2,
                       tolerance_change=TORCH_LS_TOLERANCE):
    """torch.optim.lbfgs._strong_wolfe, step for step; returns (f, g, t, trials)."""
    trials: list[Trial] = []

    def evaluate(step):
        f_new, g_new = obj(step)
        gtd_new = float(g_new @ d)
        trials.append(make_trial(step, f_new, gtd_new, f, gtd, c1, c2))
        return f_new, g_new, gtd_new

    d_norm = float(np.max(np.abs(d)))
    f_new, g_new, gtd_new = evaluate(t)
    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                               bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new, gtd_new
        f_new, g_new, gtd_new = evaluate(t)
        ls_iter += 1
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]

    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0],
                               bracket[1], bracket_f[1], bracket_gtd[1])
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                if abs(t - max(bracket)) < abs(t - min(bracket)):
                    t = max(bracket) - eps
                else:
                    t = min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new, gtd_new = evaluate(t)
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new, gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos] = bracket_g[low_pos]
                bracket_gtd[high_pos] = bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new, gtd_new
    t = bracket[low_pos]
    return bracket_f[low_pos], bracket_g[low_pos], t, tuple(trials)


def lbfgs(lr: float, history_size: int, line_search_fn: str, max_eval: int,
          tolerance_grad: float, tolerance_change: float) -> Optimizer:
    if line_search_fn not in LINE_SEARCHES:
        raise ValueError(f"lbfgs: line_search_fn must be none or strong_wolfe, "
                         f"got {line_search_fn!r}")

    def init(params):
        z = zeros(params)
        none = np.zeros((0, z.size))
        return LBFGSState(0, z, 0.0, none, none, np.zeros(0), 1.0, z, math.nan, NO_TRIALS, 0,
                          0, 0)

    def update(grads, state, params=None, oracle=None):
        flat_grad = np.asarray(grads, dtype=float)
        z = np.zeros_like(flat_grad)
        # the closure at x: torch's step evaluates f and ∇f once before anything else
        if oracle is None:
            raise ValueError("lbfgs needs the surface (an oracle) for f")
        loss = float(oracle.value(params))
        evals = 1
        func_evals = state.func_evals + 1
        if float(np.max(np.abs(flat_grad))) <= tolerance_grad:
            return z, state._replace(trials=NO_TRIALS, evals=evals, func_evals=func_evals,
                                     stopped=1)
        n_iter = state.t + 1
        old_dirs, old_stps = list(state.old_dirs), list(state.old_stps)
        ro = [float(x) for x in state.ro]
        H_diag = state.H_diag
        if n_iter == 1:
            d = -flat_grad
            old_dirs, old_stps, ro, H_diag = [], [], [], 1.0
        else:
            y = flat_grad - state.prev_flat_grad
            s = state.direction * state.step
            ys = float(y @ s)
            if ys > 1e-10:
                if len(old_dirs) == history_size:
                    old_dirs.pop(0)
                    old_stps.pop(0)
                    ro.pop(0)
                old_dirs.append(y)
                old_stps.append(s)
                ro.append(1.0 / ys)
                H_diag = ys / float(y @ y)
            num_old = len(old_dirs)
            al = [0.0] * num_old
            q = -flat_grad
            for i in range(num_old - 1, -1, -1):
                al[i] = float(old_stps[i] @ q) * ro[i]
                q = q - al[i] * old_dirs[i]
            r = q * H_diag
            for i in range(num_old):
                be_i = float(old_dirs[i] @ r) * ro[i]
                r = r + (al[i] - be_i) * old_stps[i]
            d = r
        prev_flat_grad, prev_loss = flat_grad.copy(), loss
        if n_iter == 1:
            total = float(np.sum(np.abs(flat_grad)))
            t = min(1.0, 1.0 / total if total > 0 else math.inf) * lr
        else:
            t = lr
        gtd = float(flat_grad @ d)
        n = flat_grad.size
        new = LBFGSState(n_iter, d, t, np.array(old_dirs).reshape(-1, n),
                         np.array(old_stps).reshape(-1, n), np.array(ro, dtype=float), H_diag,
                         prev_flat_grad, prev_loss, NO_TRIALS, evals, func_evals, 0)
        if gtd > -tolerance_change:
            return z, new._replace(stopped=2)
        if line_search_fn == "strong_wolfe":
            def obj(step):
                p = params + step * d
                return float(oracle.value(p)), np.asarray(oracle.grad(p), dtype=float)

            _, _, t, trials = torch_strong_wolfe(obj, t, d, loss, flat_grad, gtd,
                                                 max_ls=max_eval - evals)
            new = new._replace(step=t, trials=pack(trials), evals=evals + len(trials),
                               func_evals=func_evals + len(trials))
        return t * d, new

    return Optimizer(init, update)


def _lbfgs(c: StepContext) -> None:
    after = c.after
    if after.stopped:
        c.step_to(c.w, note=f"no step: {STOPS[after.stopped]} (torch returns at once)")
        return
    m = len(after.old_dirs)
    d = c.emit(c.new("direction"), Call("twoloop", r"\mathrm{twoloop}", c.g,
                                        _freeze(after.direction)) if after.t > 1 else -c.g,
               note=(f"two-loop recursion over the last {m} pair(s) (s, y), H₀ = γ·I with "
                     f"γ = {after.H_diag:.6g}" if after.t > 1 else "first step: d = −g"))
    if c.values["line_search_fn"] == "strong_wolfe":
        note = (f"torch's strong Wolfe search from t = {_first_t(c):.6g}: {len(after.trials)} "
                "evaluation(s), see the line-search table")
    else:
        note = ("t = min(1, 1/Σ|g|)·lr on the first step" if after.t == 1 else "t = lr")
    if c.values["line_search_fn"] == "strong_wolfe":
        t = c.emit(c.new("step"), Call("wolfe", r"\mathrm{wolfe}", d, after.step), note=note)
    else:
        t = c.emit(c.new("step"), c.const("t", "t", "t", after.step), note=note)
    c.step_to(c.w + t * d)


def _first_t(c: StepContext) -> float:
    lr = c.values["lr"]
    if c.after.t == 1:
        return min(1.0, 1.0 / float(np.sum(np.abs(c.g.eval())))) * lr
    return lr


register(OptimizerSpec(
    name="lbfgs",
    title="L-BFGS (torch.optim.LBFGS, one iteration per step)",
    family="Second order",
    summary="BFGS from the last few (s, y) pairs only: torch's L-BFGS, one iteration a step",
    rule=(
        "s ← t_prev·d_prev;  y ← g − g_prev;  keep (s, y) if yᵀs > 1e-10\n"
        "d ← −H·g by the two-loop recursion, H₀ = (sᵀy/yᵀy)·I\n"
        "t ← min(1, 1/Σ|g|)·η on the first step, η afterwards\n"
        "strong_wolfe: t ← torch's line search from t\n"
        "w ← w + t·d"
    ),
    hypers=(
        lr_hyper(1.0),
        Hyper("history_size", 100, "number m of (s, y) pairs kept", kind="int", lo=1,
              hi=10_000, symbol="m"),
        Hyper("line_search_fn", "none", "none (a fixed step t = lr) or strong_wolfe (torch's "
              "line search)", kind="choice", choices=LINE_SEARCHES),
        Hyper("max_eval", 25, "most closure calls per step, the first included (torch's "
              "default max_iter·5/4 = 1 would leave the line search none)", kind="int",
              lo=1, hi=10_000),
        Hyper("tolerance_grad", 1e-7, "no step where max|g| ≤ tolerance_grad", lo=0.0, hi=1e6),
        Hyper("tolerance_change", 1e-9, "no step where ∇f·d > −tolerance_change", lo=0.0,
              hi=1e6),
    ),
    factory=run_by_run(lbfgs),
    convention=(
        "torch.optim.LBFGS(params, max_iter=1, …).step(closure) once per step, the same "
        "names and arithmetic (tests compare paths with torch's to 1e-6). Not mapped to "
        "torch's class in the lab: LBFGS's step needs a closure, so the lab runs this rule."
    ),
    playground={"lr": 1.0, "line_search_fn": "strong_wolfe"},
    needs=("value", "grad"),
    step_source="its line search (line_search_fn=strong_wolfe) or a fixed t",
    state=LBFGSState,
    symbols={
        "direction": ("d", "d"), "step": ("t", "t"), "old_dirs": ("Y", "Y"),
        "old_stps": ("S", "S"), "ro": ("ρ", r"\rho"), "H_diag": ("γ", r"\gamma"),
        "prev_flat_grad": ("g_prev", r"g_{\mathrm{prev}}"), "prev_loss": ("f_prev",
                                                                         r"f_{\mathrm{prev}}"),
        "trials": ("trials", r"\mathrm{trials}"), "evals": ("evals", r"\mathrm{evals}"),
        "func_evals": ("func_evals", r"\mathrm{func\_evals}"),
        "stopped": ("stopped", r"\mathrm{stopped}"),
    },
    explainer=_lbfgs,
    torch=NO_TORCH,
    velocity=None,
))

"""Second order: Møller's scaled conjugate gradient (Neural Networks 6:525–533, 1993).

One iteration of the paper's algorithm (its steps 2–8) per step, failed iterations included
(they leave w where it is and raise λ). The curvature along p is estimated from one extra
gradient, s = (E'(w + σₖ·p) − E'(w))/σₖ with σₖ = σ/‖p‖, and λ regularises it like
Levenberg–Marquardt's μ, so no line search is needed. The direction restarts every N = 2
iterations (N = the number of weights). tests/test_second_order.py compares the path with a
plain transcription of the paper.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from engine.explain.context import StepContext
from engine.explain.tree import Fn
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


class SCGState(NamedTuple):
    t: int  # k, the iteration counter (failed iterations count, as in the paper)
    p: Array  # search direction p_k
    r: Array  # steepest-descent direction r_k = −E'(w_k)
    success: bool  # the last iteration reduced the error (so s_k is computed afresh)
    lam: float  # scale λ_k (Levenberg–Marquardt-like, regulates the indefinite Hessian)
    lam_bar: float  # λ̄_k, the part of λ already added to δ
    delta: float  # δ_k = p_kᵀ·s_k (scaled)
    mu: float  # μ_k = p_kᵀ·r_k
    alpha: float  # step size α_k = μ_k/δ_k
    Delta: float  # comparison parameter Δ_k (> 0: the step reduced E)
    E: float  # E(w) at the point after the step
    evals: int  # surface evaluations this step


def scg(sigma: float, lambda1: float) -> Optimizer:
    def init(params):
        z = zeros(params)
        return SCGState(0, z, z, True, lambda1, 0.0, 0.0, 0.0, 0.0, math.nan, math.nan, 0)

    def update(grads, state, params=None, oracle=None):
        if oracle is None:
            raise ValueError("scg needs the surface (an oracle) for its curvature estimate")
        w = np.asarray(params, dtype=float)
        g = np.asarray(grads, dtype=float)
        k = state.t + 1
        n = w.size
        lam, lam_bar, delta = state.lam, state.lam_bar, state.delta
        evals = 0
        if k == 1:  # step 1: p₁ = r₁ = −E'(w₁)
            r = -g
            p = r
            E = float(oracle.value(w))
            evals = 1
            success = True
        elif state.success:  # the end of step 7, now that E'(w_{k+1}) is known
            r = -g
            evals = 1
            if (k - 1) % n == 0:
                p = r
            else:
                beta = (float(r @ r) - float(r @ state.r)) / state.mu
                p = r + beta * state.p
            E, success = state.E, True
        else:
            r, p, E, success = state.r, state.p, state.E, False
        z = np.zeros_like(w)
        p2 = float(p @ p)
        if not np.any(r) or p2 == 0:
            return z, state._replace(t=k, r=r, p=p, evals=evals, E=E)
        if success:  # step 2: second-order information
            sig = sigma / math.sqrt(p2)
            s = (np.asarray(oracle.grad(w + sig * p), dtype=float) - g) / sig
            evals += 1
            delta = float(p @ s)
        delta = delta + (lam - lam_bar) * p2  # step 3: scale δ
        if delta <= 0:  # step 4: make the Hessian positive definite
            lam_bar = 2.0 * (lam - delta / p2)
            delta = -delta + lam * p2
            lam = lam_bar
        mu = float(p @ r)  # step 5
        if mu * mu == 0 or not delta > 0:  # converged to rounding: nothing left to do
            return z, state._replace(t=k, r=r, p=p, evals=evals, E=E, success=success)
        alpha = mu / delta
        E_new = float(oracle.value(w + alpha * p))  # step 6
        evals += 1
        Delta = 2.0 * delta * (E - E_new) / (mu * mu)
        if math.isfinite(Delta) and Delta >= 0:  # step 7: a successful reduction
            step, E, lam_bar, success = alpha * p, E_new, 0.0, True
            if Delta >= 0.75:
                lam = 0.25 * lam
        else:
            step, lam_bar, success = z, lam, False
        if not math.isfinite(Delta) or Delta < 0.25:  # step 8: increase the scale
            lam = lam + delta * (1.0 - (Delta if math.isfinite(Delta) else 0.0)) / p2
        return step, SCGState(k, p, r, success, lam, lam_bar, delta, mu, alpha, Delta, E,
                              evals)

    return Optimizer(init, update)


def _scg(c: StepContext) -> None:
    after = c.after
    p = c.emit(c.new("p"), c.const("p", "p", "p", after.p),
               note="r + β·p_prev, β = (‖r‖² − rᵀr_prev)/μ_prev (r = −∇E; restart every "
                    "N = 2 iterations)" if after.t > 1 else "first step: p = r = −∇E")
    delta = c.emit(c.new("delta"), c.const("delta", "δ", r"\delta", after.delta),
                   note="pᵀs + (λ − λ̄)·‖p‖², s ≈ ∇²E·p from one extra gradient (made "
                        "positive when it is not)")
    mu = c.emit(c.new("mu"), Fn("dot", (p, c.const("r", "r", "r", after.r))),
                note="μ = pᵀr")
    alpha = c.emit(c.new("alpha"), mu / delta, note="the step size α = μ/δ")
    ok = after.Delta >= 0
    c.emit(c.new("Delta"), c.const("Delta", "Δ", r"\Delta", after.Delta),
           note="comparison Δ = 2δ·(E(w) − E(w + α·p))/μ²: " + (
               "≥ 0, the error fell: step taken" if ok else "< 0: no step, λ grows"))
    if ok:
        c.step_to(c.w + alpha * p)
    else:
        c.step_to(c.w, note="step rejected")


register(OptimizerSpec(
    name="scg",
    title="Scaled conjugate gradient (Møller)",
    family="Second order",
    summary="conjugate gradient whose step size comes from a curvature estimate, no line search",
    rule=(
        "s ← (∇E(w + σₖ·p) − ∇E(w))/σₖ,  σₖ = σ/‖p‖     (after a success)\n"
        "δ ← pᵀs + (λ − λ̄)·‖p‖²;  if δ ≤ 0: make it positive\n"
        "μ ← pᵀr;  α ← μ/δ                             (r = −∇E)\n"
        "Δ ← 2δ·(E(w) − E(w + α·p))/μ²\n"
        "Δ ≥ 0: w ← w + α·p;  p ← r + β·p;  Δ ≥ ¾: λ ← λ/4\n"
        "Δ < ¼: λ ← λ + δ·(1 − Δ)/‖p‖²"
    ),
    hypers=(
        Hyper("sigma", 1e-4, "σ: the finite-difference step σₖ = σ/‖p‖ of the curvature "
              "estimate (Møller: 0 < σ ≤ 1e-4)", lo=0.0, lo_open=True, hi=1.0, symbol="σ"),
        Hyper("lambda1", 1e-6, "λ₁: the first scale (Møller: 0 < λ₁ ≤ 1e-6)", lo=0.0,
              lo_open=True, hi=1e6, symbol="λ₁"),
    ),
    factory=run_by_run(scg),
    convention=(
        "Transcribed from Møller (1993), section 2.3, one iteration (failed ones included) "
        "per step; restart every N = 2 iterations."
    ),
    needs=("value", "grad"),
    step_source="its curvature estimate",
    state=SCGState,
    symbols={
        "p": ("p", "p"), "r": ("r", "r"), "success": ("success", r"\mathrm{success}"),
        "lam": ("λ", r"\lambda"), "lam_bar": ("λ̄", r"\bar\lambda"), "delta": ("δ", r"\delta"),
        "mu": ("μ", r"\mu"), "alpha": ("α", r"\alpha"), "Delta": ("Δ", r"\Delta"),
        "E": ("E", "E"), "evals": ("evals", r"\mathrm{evals}"),
    },
    explainer=_scg,
    torch=NO_TORCH,
    velocity=None,
))

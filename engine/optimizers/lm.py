"""Second order: Levenberg–Marquardt for surfaces that are sums of squares f = Σ rᵢ².

The damping update is Nielsen's (Madsen, Nielsen & Tingleff, *Methods for non-linear least
squares problems*, 2004, Algorithm 3.16) by default: with the gain ratio
ϱ = (F(w) − F(w + h)) / (L(0) − L(h)), F = ½‖r‖² and L the linearised model, an accepted step
(ϱ > 0) sets μ ← μ·max(1/3, 1 − (2ϱ − 1)³), ν ← 2, and a rejected one μ ← μ·ν, ν ← 2ν.
``damping_update=marquardt`` uses Marquardt's original rule instead: μ ← μ/10 after an
accepted step, μ ← 10·μ after a rejected one (Marquardt 1963; Wilamowski & Yu 2010 use the
same factor 10). μ₀ = τ·max diag(JᵀJ). A rejected step is still a step of the race: the point
stays, μ grows.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from engine.explain.context import StepContext
from engine.explain.tree import Const, Fn, Sym
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

DAMPING_UPDATES = ("nielsen", "marquardt")
RESIDUAL_SURFACES = "quadratic, booth, rosenbrock, beale, himmelblau, linear_regression"


class LMState(NamedTuple):
    t: int
    r: Array  # residuals at the step's point
    J: Array  # their Jacobian there, shape (m, 2)
    mu: float  # damping μ this step used
    h: Array  # the step solved for: (JᵀJ + μI)·h = −Jᵀr
    rho: float  # gain ratio ϱ (actual / predicted decrease of ½‖r‖²)
    accepted: bool  # ϱ > 0: the point moved by h
    mu_next: float  # μ for the next step
    nu: float  # Nielsen's factor ν for the next rejection
    evals: int  # surface evaluations this step (r at the trial; r and J at a new point)


def check_residuals(oracle, what: str = "lm") -> None:
    """A ValueError unless the surface is a sum of squares with a known Jacobian."""
    if not getattr(oracle, "has_residuals", False):
        name = getattr(oracle, "name", "this surface")
        raise ValueError(
            f"{what} needs f written as a sum of squares Σ rᵢ² with the residuals' Jacobian; "
            f"{name} is not (surfaces that are: {RESIDUAL_SURFACES}; a custom expression "
            f"is not recognised as one)")


def lm(tau: float, damping_update: str) -> Optimizer:
    if damping_update not in DAMPING_UPDATES:
        raise ValueError(f"lm: damping_update must be nielsen or marquardt, "
                         f"got {damping_update!r}")

    def init(params):
        z = zeros(params)
        return LMState(0, np.zeros(0), np.zeros((0, z.size)), math.nan, z, math.nan, True,
                       math.nan, 2.0, 0)

    def update(grads, state, params=None, oracle=None):
        check_residuals(oracle)
        w = np.asarray(params, dtype=float)
        r = np.asarray(oracle.residuals(w), dtype=float)
        J = np.asarray(oracle.residual_jacobian(w), dtype=float)
        A = J.T @ J
        g = J.T @ r  # ∇(½‖r‖²)
        t = state.t + 1
        evals = 1 if (t == 1 or state.accepted) else 0  # r and J at a point not seen before
        mu = tau * float(np.max(np.diag(A))) if t == 1 else state.mu_next
        if not mu > 0:
            mu = tau
        nu = state.nu
        z = np.zeros_like(w)
        if not np.any(g):
            return z, LMState(t, r, J, mu, z, math.nan, False, mu, nu, evals)
        h = np.linalg.solve(A + mu * np.eye(len(w)), -g)
        r_new = np.asarray(oracle.residuals(w + h), dtype=float)
        evals += 1
        F, F_new = 0.5 * float(r @ r), 0.5 * float(r_new @ r_new)
        predicted = 0.5 * float(h @ (mu * h - g))
        rho = (F - F_new) / predicted if predicted > 0 else -math.inf
        accepted = bool(math.isfinite(F_new) and rho > 0)
        if damping_update == "nielsen":
            if accepted:
                mu_next, nu_next = mu * max(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3), 2.0
            else:
                mu_next, nu_next = mu * nu, 2.0 * nu
        else:
            mu_next, nu_next = (mu / 10.0 if accepted else mu * 10.0), nu
        return (h if accepted else z), LMState(t, r, J, mu, h, rho, accepted, mu_next,
                                               nu_next, evals)

    return Optimizer(init, update)


def _lm(c: StepContext) -> None:
    after = c.after
    J = np.asarray(after.J)
    r = np.asarray(after.r)
    A = c.emit(Sym("JtJ", "JᵀJ", r"J^{\top}J", None), c.const("JtJ", "JᵀJ", r"J^{\top}J",
                                                             J.T @ J),
               indexed=False, note=f"J: the {len(r)} residuals' Jacobian at the point")
    b = c.emit(Sym("Jtr", "Jᵀr", r"J^{\top}r", None), c.const("Jtr", "Jᵀr", r"J^{\top}r",
                                                             J.T @ r),
               indexed=False, note="= ½∇f")
    mu = c.const("mu", "μ", r"\mu", after.mu)
    h = c.emit(c.new("h"), -Fn("solve", (A + mu * Const(np.eye(2), "I", "I"), b)),
               note="the damped Gauss–Newton step")
    verdict = "accepted" if after.accepted else "rejected: the point stays, μ grows"
    c.emit(c.new("rho"), c.const("rho", "ϱ", r"\varrho", after.rho),
           note=f"actual / predicted decrease of ½‖r‖²: {verdict}")
    if after.accepted:
        c.step_to(c.w + h)
    else:
        c.step_to(c.w, note="step rejected")


register(OptimizerSpec(
    name="lm",
    title="Levenberg–Marquardt",
    family="Second order",
    summary="Gauss–Newton for sums of squares, damped by μ: between Newton and gradient descent",
    rule=(
        "r, J ← residuals and Jacobian at w        (f = Σ rᵢ²)\n"
        "h ← −(JᵀJ + μI)⁻¹·Jᵀr\n"
        "ϱ ← (F(w) − F(w + h)) / (L(0) − L(h)),  F = ½‖r‖²\n"
        "ϱ > 0: w ← w + h;  μ ← μ·max(⅓, 1 − (2ϱ − 1)³), ν ← 2     (nielsen)\n"
        "else:  μ ← μ·ν,  ν ← 2ν"
    ),
    hypers=(
        Hyper("tau", 1e-3, "τ: the first damping is μ₀ = τ·max diag(JᵀJ)", lo=0.0,
              lo_open=True, hi=1e6, symbol="τ"),
        Hyper("damping_update", "nielsen", "how μ changes: nielsen (smooth, by the gain ratio) "
              "or marquardt (÷10 after a good step, ×10 after a bad one)", kind="choice",
              choices=DAMPING_UPDATES),
    ),
    factory=run_by_run(lm),
    convention=(
        "Nielsen's damping update (Madsen, Nielsen & Tingleff 2004, Alg. 3.16) by default; "
        "Marquardt's ×10/÷10 with damping_update=marquardt. Needs a surface that is a sum "
        f"of squares ({RESIDUAL_SURFACES})."
    ),
    needs=("residuals",),
    step_source="its damped Gauss–Newton solve",
    state=LMState,
    symbols={
        "r": ("r", "r"), "J": ("J", "J"), "mu": ("μ", r"\mu"), "h": ("h", "h"),
        "rho": ("ϱ", r"\varrho"), "accepted": ("accepted", r"\mathrm{accepted}"),
        "mu_next": ("μ_next", r"\mu_{\mathrm{next}}"), "nu": ("ν", r"\nu"),
        "evals": ("evals", r"\mathrm{evals}"),
    },
    explainer=_lm,
    torch=NO_TORCH,
    velocity=None,
))

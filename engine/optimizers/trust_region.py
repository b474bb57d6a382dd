"""Second order: a dogleg trust region with the exact Hessian (Nocedal & Wright, §4.1).

Each step minimises the quadratic model m(p) = f + gᵀp + ½pᵀBp (B = ∇²f) over the ball
‖p‖ ≤ Δ by the dogleg path, then compares the actual with the predicted decrease:
ρ = (f(w) − f(w + p))/(m(0) − m(p)). Algorithm 4.1: ρ < ¼ shrinks Δ to Δ/4; ρ > ¾ with the
step on the boundary doubles it (up to max_radius); the step is taken when ρ > η.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from engine.explain.context import StepContext
from engine.explain.format import _freeze
from engine.explain.tree import Call
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

# the pieces of the dogleg path a step can end on (TrustRegionState.kind indexes this)
PIECES = ("", "newton", "cauchy", "dogleg", "cauchy (B not positive definite)")


class TrustRegionState(NamedTuple):
    t: int
    radius: float  # Δ used by this step
    next_radius: float  # Δ for the next step, from ρ
    g: Array  # ∇f at the step's point (the model's linear term)
    B: Array  # the exact Hessian there (the model's quadratic term)
    p: Array  # the dogleg step (taken only when ρ > η)
    kind: int  # which piece of the dogleg: an index into PIECES
    rho: float  # ρ = (f(w) − f(w + p)) / (m(0) − m(p))
    accepted: bool
    f: float  # f at the point after the step
    evals: int


def dogleg(g: Array, B: Array, radius: float) -> tuple[Array, str]:
    """The dogleg minimizer of m(p) = gᵀp + ½pᵀBp within ‖p‖ ≤ Δ (N&W §4.1).

    With B positive definite the path runs from 0 to the Cauchy point p_U = −(gᵀg/gᵀBg)·g
    and on to the Newton point p_B = −B⁻¹g; the step is where it leaves the ball (or p_B
    inside it). Where B is not positive definite the dogleg is undefined, so the step is the
    Cauchy point (N&W 4.12): −τ·Δ·g/‖g‖ with τ = 1 if gᵀBg ≤ 0, else min(‖g‖³/(Δ·gᵀBg), 1).
    """
    gnorm = float(np.linalg.norm(g))
    gBg = float(g @ B @ g)
    try:
        np.linalg.cholesky(B)
        pd = True
    except np.linalg.LinAlgError:
        pd = False
    if not pd:
        tau = 1.0 if gBg <= 0 else min(gnorm**3 / (radius * gBg), 1.0)
        return -tau * radius * g / gnorm, "cauchy (B not positive definite)"
    pB = -np.linalg.solve(B, g)
    if np.linalg.norm(pB) <= radius:
        return pB, "newton"
    pU = -(gnorm * gnorm / gBg) * g
    if np.linalg.norm(pU) >= radius:
        return -radius * g / gnorm, "cauchy"
    # ‖p_U + s·(p_B − p_U)‖ = Δ for s = τ − 1 ∈ [0, 1]
    d = pB - pU
    a, b, c = float(d @ d), 2.0 * float(pU @ d), float(pU @ pU) - radius * radius
    s = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    return pU + s * d, "dogleg"


def trust_region(radius: float, max_radius: float, eta: float) -> Optimizer:
    if radius > max_radius:
        raise ValueError(f"trust_region: radius={radius:g} must not exceed "
                         f"max_radius={max_radius:g}")

    def init(params):
        z = zeros(params)
        n = z.size
        return TrustRegionState(0, radius, radius, z, np.zeros((n, n)), z, 0, math.nan,
                                True, math.nan, 0)

    def update(grads, state, params=None, oracle=None):
        if oracle is None:
            raise ValueError("trust_region needs the surface's Hessian (an oracle)")
        w = np.asarray(params, dtype=float)
        g = np.asarray(grads, dtype=float)
        t = state.t + 1
        delta = state.next_radius
        B = np.asarray(oracle.hessian(w), dtype=float)
        evals = 1 if (t == 1 or state.accepted) else 0  # g and H at a new point
        f = float(oracle.value(w)) if t == 1 else state.f
        z = np.zeros_like(w)
        if not np.any(g):
            return z, TrustRegionState(t, delta, delta, g, B, z, 0, math.nan, False, f,
                                       evals)
        p, kind = dogleg(g, B, delta)
        f_new = float(oracle.value(w + p))
        evals += 1
        predicted = -(float(g @ p) + 0.5 * float(p @ B @ p))
        rho = (f - f_new) / predicted if predicted > 0 else -math.inf
        if not math.isfinite(rho) or rho < 0.25:
            nxt = 0.25 * delta
        elif rho > 0.75 and abs(float(np.linalg.norm(p)) - delta) <= 1e-12 * delta:
            nxt = min(2.0 * delta, max_radius)
        else:
            nxt = delta
        accepted = bool(math.isfinite(rho) and rho > eta)
        return (p if accepted else z), TrustRegionState(
            t, delta, nxt, g, B, p, PIECES.index(kind), rho, accepted,
            f_new if accepted else f, evals)

    return Optimizer(init, update)


def _trust_region(c: StepContext) -> None:
    after = c.after
    surface = c.surface
    c.emit(c.new("B"), Call("∇²f", r"\nabla^2 f", c.w, _freeze(after.B),
                           surface.hessian if surface is not None else None),
           note="the model's curvature: the exact Hessian")
    c.emit(c.new("radius"), c.const("radius", "Δ", r"\Delta", after.radius),
           note="the trust radius of this step")
    kinds = {"": "",
             "newton": "the Newton step −B⁻¹g lies inside the region",
             "cauchy": "the Cauchy point is outside: steepest descent to the boundary",
             "dogleg": "the dogleg path leaves the region between Cauchy and Newton points",
             "cauchy (B not positive definite)":
                 "B is not positive definite: the Cauchy point (N&W 4.12)"}
    radius = c.new("radius")
    p = c.emit(c.new("p"), Call("dogleg", r"\mathrm{dogleg}", radius, _freeze(after.p)),
               note=kinds[PIECES[after.kind]])
    verdict = "step taken" if after.accepted else "step rejected (ρ ≤ η)"
    c.emit(c.new("rho"), c.const("rho", "ρ", r"\rho", after.rho),
           note=f"(f(w) − f(w + p))/(m(0) − m(p)): {verdict}; next Δ = "
                f"{after.next_radius:.6g}")
    if after.accepted:
        c.step_to(c.w + p)
    else:
        c.step_to(c.w, note="step rejected")


register(OptimizerSpec(
    name="trust_region",
    title="Trust region (dogleg, exact Hessian)",
    family="Second order",
    summary="minimise the quadratic model inside a ball; grow or shrink the ball by how well "
            "the model predicted",
    rule=(
        "m(p) = f + gᵀp + ½pᵀBp,  B = ∇²f(w)\n"
        "p ← dogleg minimiser of m in ‖p‖ ≤ Δ\n"
        "ρ ← (f(w) − f(w + p)) / (m(0) − m(p))\n"
        "ρ < ¼: Δ ← Δ/4;  ρ > ¾ and ‖p‖ = Δ: Δ ← min(2Δ, Δ_max)\n"
        "ρ > η: w ← w + p"
    ),
    hypers=(
        Hyper("radius", 1.0, "the first trust radius Δ₀", lo=0.0, lo_open=True, hi=1e6,
              symbol="Δ₀"),
        Hyper("max_radius", 100.0, "the largest trust radius Δ_max", lo=0.0, lo_open=True,
              hi=1e6, symbol="Δ_max"),
        Hyper("eta", 0.15, "η: the step is taken when ρ > η (N&W: η ∈ [0, ¼))", lo=0.0,
              hi=0.25, hi_open=True, symbol="η"),
    ),
    factory=run_by_run(trust_region),
    convention=(
        "Nocedal & Wright, Algorithm 4.1 with the dogleg step (§4.1); where ∇²f is not "
        "positive definite the dogleg is undefined and the Cauchy point (4.12) is used."
    ),
    needs=("hessian",),
    step_source="its trust region",
    state=TrustRegionState,
    symbols={
        "radius": ("Δ", r"\Delta"), "next_radius": ("Δ_next", r"\Delta_{\mathrm{next}}"),
        "g": ("g", "g"), "B": ("B", "B"), "p": ("p", "p"), "kind": ("kind", r"\mathrm{kind}"),
        "rho": ("ρ", r"\rho"), "accepted": ("accepted", r"\mathrm{accepted}"),
        "f": ("f", "f"), "evals": ("evals", r"\mathrm{evals}"),
    },
    explainer=_trust_region,
    torch=NO_TORCH,
    velocity=None,
))

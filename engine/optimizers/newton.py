"""Second order: damped, saddle-free Newton."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from engine.explain.context import StepContext
from engine.explain.format import _freeze
from engine.explain.tree import Call, Const, Fn, Sym
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


class NewtonState(NamedTuple):
    t: int
    hessian: Array  # H at the point the step was taken from
    eigvals: Array  # eigenvalues of H (ascending)
    direction: Array  # (|H| + λI)⁻¹·g; the update is −η·direction


def newton(lr: float, damping: float) -> Optimizer:
    """Saddle-free damped Newton: (|H| + λI)⁻¹g, with |H| = Q·|Λ|·Qᵀ.

    For a convex quadratic |H| = H, so this is the textbook damped step (H + λI)⁻¹g and
    lr = 1 lands (up to λ) on the minimum. On an indefinite Hessian plain Newton heads for
    the saddle point (uphill along negative curvature); flipping the negative eigenvalues
    turns those directions into descent directions (Dauphin et al. 2014). λ > 0 keeps the
    matrix invertible where an eigenvalue is (near) zero.
    """

    def init(params):
        z = zeros(params)
        return NewtonState(t=0, hessian=np.zeros(z.shape + z.shape[-1:]), eigvals=z.copy(),
                           direction=z)

    def update(grads, state, params=None, oracle=None):
        if oracle is None:
            raise ValueError("newton needs the surface's Hessian (an oracle)")
        h = np.asarray(oracle.hessian(params), dtype=float)  # (..., 2, 2): one per run
        lam, q = np.linalg.eigh(h)  # batched over the leading axes
        qtg = (np.swapaxes(q, -1, -2) @ grads[..., None])[..., 0]  # Qᵀ·g per run
        direction = (q @ (qtg / (np.abs(lam) + damping))[..., None])[..., 0]
        return -lr * direction, NewtonState(
            t=state.t + 1, hessian=h, eigvals=lam, direction=direction
        )

    return Optimizer(init, update)


def _newton(c: StepContext) -> None:
    surface = c.surface
    hess = Call("∇²f", r"\nabla^2 f", c.w, _freeze(c.after.hessian),
                surface.hessian if surface is not None else None)
    h = c.emit(c.new("hessian"), hess, note="the Hessian at the point")
    lam = c.emit(c.new("eigvals"), Call("eig", r"\operatorname{eig}", h,
                                        _freeze(c.after.eigvals), np.linalg.eigvalsh),
                 note="eigenvalues of H")
    damping = c.h("damping")
    eye = Const(np.eye(2), "I", "I")
    if np.all(np.asarray(lam.value) > 0):
        d = c.emit(c.new("direction"), Fn("solve", (h + damping * eye, c.g)),
                   note="H is positive definite, so |H| = H")
    else:
        abs_h = c.emit(
            Sym("abs_hessian", "|H|", r"\left|H\right|", None),
            Call("Q·|Λ|·Qᵀ", r"Q\left|\Lambda\right|Q^{\top}", h, None, _abs_matrix),
            indexed=False, note="negative curvature flipped (saddle-free Newton)",
        )
        d = c.emit(c.new("direction"), Fn("solve", (abs_h + damping * eye, c.g)))
    c.step_to(c.w - c.h("lr") * d)


def _abs_matrix(h: Any) -> np.ndarray:
    lam, q = np.linalg.eigh(np.asarray(h, dtype=float))
    return q @ np.diag(np.abs(lam)) @ q.T


register(OptimizerSpec(
    name="newton",
    title="Damped Newton (saddle-free)",
    family="Second order",
    summary="step by the inverse curvature: one step to the minimum of a quadratic",
    rule=(
        "H = Q·Λ·Qᵀ                   (Hessian at w)\n"
        "d ← Q·(|Λ| + λI)⁻¹·Qᵀ·g       (= (H + λI)⁻¹·g when H is positive definite)\n"
        "w ← w − η·d"
    ),
    hypers=(
        lr_hyper(1.0),
        Hyper("damping", 1e-3, "damping λ added to the absolute eigenvalues; keeps the step "
              "finite where the curvature is (near) zero", lo=0.0, lo_open=True, hi=1e6,
              symbol="λ"),
    ),
    factory=newton,
    convention=(
        "Saddle-free: negative eigenvalues of H are replaced by their absolute values, so an "
        "indefinite Hessian still gives a descent direction instead of jumping to the saddle."
    ),
    playground={"lr": 0.2},
    needs=("hessian",),
    state=NewtonState,
    symbols={"hessian": ("H", "H"), "eigvals": ("Λ", r"\Lambda"), "direction": ("d", "d")},
    explainer=_newton,
    torch=NO_TORCH,
    velocity=None,
))

"""Sharpness-aware minimization: SAM and ASAM, wrappers around any base optimizer."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from engine.explain.context import StepContext
from engine.explain.format import _freeze, tex_value
from engine.explain.tree import Call, Const, Fn, absval
from engine.optimizers.registry import (
    CLIP_HYPERS,
    FROM_BASE,
    NO_TORCH,
    SCHEDULE_HYPERS,
    Array,
    Hyper,
    Optimizer,
    OptimizerSpec,
    build_optimizer,
    register,
    run_norms,
    zeros,
)


class SAMState(NamedTuple):
    t: int
    base_state: Any  # the base optimizer's own state
    eps: Array  # the ascent perturbation ε = ρ·g/‖g‖
    perturbed_point: Array  # w + ε, where g_sam was taken
    g_sam: Array  # ∇f(w + ε), the gradient handed to the base optimizer


class ASAMState(NamedTuple):
    t: int
    base_state: Any  # the base optimizer's own state
    eps: Array  # the ascent perturbation ε = ρ·T²·g/‖T·g‖
    perturbed_point: Array  # w + ε, where g_sam was taken
    g_sam: Array  # ∇f(w + ε), the gradient handed to the base optimizer
    scale: Array  # T = |w| + η, the per-coordinate scale of the neighbourhood


def _base_optimizer(owner: str, base) -> Optimizer:
    """Build a wrapper's base rule; noise, seed and batch belong to the outer spec.

    ``base`` is the base's spec, or its rule already built (with per-run hyperparameters,
    see :func:`engine.optimizers.registry.build_optimizer`)."""
    if isinstance(base, Optimizer):
        return base
    stray = [k for k in ("noise", "seed", "batch") if k in base.given]
    if stray:
        raise ValueError(
            f"{owner}: set {', '.join(stray)} on {owner}(...) itself, not on its base "
            f"(the whole run shares one gradient oracle)"
        )
    extra = [h.name for h in SCHEDULE_HYPERS + CLIP_HYPERS if h.name in base.given]
    if extra:
        raise ValueError(
            f"{owner}: {', '.join(extra)} cannot be set on its base: {owner} takes a second, "
            f"perturbed gradient, so schedules and clipping are not offered for it")
    return build_optimizer(base)


def _sharpness_aware_step(owner: str, inner: Optimizer, rho: float, scale, grads, base_state,
                          params, oracle):
    """One SAM/ASAM step: ascend to w + ε with ε = ρ·T²·g/‖T·g‖₂ (T = 1 for SAM; ε = 0 when
    T·g = 0), take the gradient there, and let the base rule step from w with it.

    Returns ``(updates, base_state, ε, w + ε, g_sam)``.
    """
    if oracle is None:
        raise ValueError(f"{owner} needs the surface (an oracle) to take the perturbed gradient")
    norm = run_norms(scale * grads)  # one norm per run
    if (norm > 0).all():
        eps = rho * scale * scale * grads / norm
    else:  # ε = 0 for the runs whose T·g is 0
        with np.errstate(invalid="ignore", divide="ignore"):
            eps = np.where(norm > 0, rho * scale * scale * grads / norm, 0.0)
    point = params + eps
    g_sam = np.asarray(oracle.grad(point), dtype=float)
    updates, base_state = inner.update(g_sam, base_state, params, oracle)
    return updates, base_state, eps, point, g_sam


def sam(base, rho: float) -> Optimizer:
    inner = _base_optimizer("sam", base)

    def init(params):
        z = zeros(params)
        p = np.array(params, dtype=float)
        return SAMState(t=0, base_state=inner.init(params), eps=z, perturbed_point=p, g_sam=z)

    def update(grads, state, params=None, oracle=None):
        updates, base_state, eps, point, g_sam = _sharpness_aware_step(
            "sam", inner, rho, 1.0, grads, state.base_state, params, oracle)
        return updates, SAMState(
            t=state.t + 1, base_state=base_state, eps=eps, perturbed_point=point, g_sam=g_sam
        )

    return Optimizer(init, update)


def asam(base, rho: float, eta: float) -> Optimizer:
    inner = _base_optimizer("asam", base)

    def init(params):
        z = zeros(params)
        p = np.array(params, dtype=float)
        return ASAMState(t=0, base_state=inner.init(params), eps=z, perturbed_point=p,
                         g_sam=z, scale=np.abs(p) + eta)

    def update(grads, state, params=None, oracle=None):
        scale = np.abs(params) + eta
        updates, base_state, eps, point, g_sam = _sharpness_aware_step(
            "asam", inner, rho, scale, grads, state.base_state, params, oracle)
        return updates, ASAMState(
            t=state.t + 1, base_state=base_state, eps=eps, perturbed_point=point,
            g_sam=g_sam, scale=scale,
        )

    return Optimizer(init, update)


def _sharpness(c: StepContext, adaptive: bool) -> None:
    """SAM/ASAM: the ascent step to w̃ = w + ε̂, the gradient there, then the base rule."""
    rho = c.h("rho")
    if adaptive:
        scale = c.emit(c.new("scale"), absval(c.w) + c.h("eta"), indexed=True)
        norm = float(np.linalg.norm(np.asarray(scale.value) * np.asarray(c.g.eval())))
        ascent = rho * scale ** 2 * c.g / Fn("norm", (scale * c.g,))
    else:
        norm = float(np.linalg.norm(np.asarray(c.g.eval())))
        ascent = rho * c.g / Fn("norm", (c.g,))
    if norm > 0:
        eps = c.emit(c.new("eps"), ascent, note="ascent to the worst point within radius ρ")
    else:
        eps = c.emit(c.new("eps"), Const(np.zeros(2), "(0, 0)", tex_value((0.0, 0.0))),
                     note="zero gradient: no ascent")
    point = c.emit(c.new("perturbed_point"), c.w + eps)
    fn = c.grad_fn()
    exact = c.values.get("noise", 0) == 0
    g_sam = c.emit(
        c.new("g_sam"),
        Call(c.grad_symbol, c.grad_latex, point, _freeze(c.after.g_sam),
             fn if exact else None),
        exact=exact and fn is not None,
        note="" if exact else "noisy: a fresh draw of the gradient noise",
    )
    base_run = c.values["base"]
    c.explain_base(base_run, c.before.base_state, c.after.base_state, g_sam)


_SYMBOLS = {
    "eps": ("ε̂", r"\hat{\epsilon}"),
    "perturbed_point": ("w̃", r"\tilde{w}"),
    "g_sam": ("g_SAM", r"g_{\mathrm{SAM}}"),
    "scale": ("T", "T"),
}

_BASE_HELP = "the optimizer that takes the step with the perturbed gradient, e.g. gd(lr=0.1)"

register(OptimizerSpec(
    name="sam",
    title="SAM (sharpness-aware minimization)",
    family="Sharpness-aware",
    summary="take the gradient at the worst nearby point (radius ρ), step from the original",
    rule=(
        "ε̂ ← ρ·g / ‖g‖₂                (ε̂ = 0 if g = 0)\n"
        "w̃ ← w + ε̂\n"
        "g_SAM ← ∇f(w̃)\n"
        "w ← base step with g_SAM"
    ),
    hypers=(
        Hyper("base", None, _BASE_HELP, kind="spec"),
        Hyper("rho", 0.05, "radius ρ of the neighbourhood", lo=0.0, hi=100.0, symbol="ρ"),
    ),
    factory=sam,
    convention="Foret et al. 2020; both gradients of a step see the same mini-batch.",
    playground={"base": "gd(lr=0.3)", "rho": 0.1},
    needs=("grad",),
    state=SAMState,
    symbols=_SYMBOLS,
    explainer=lambda c: _sharpness(c, adaptive=False),
    torch=NO_TORCH,
    velocity=FROM_BASE,
))

register(OptimizerSpec(
    name="asam",
    title="ASAM (adaptive SAM)",
    family="Sharpness-aware",
    summary="SAM with a neighbourhood stretched by |w|, so it is scale-invariant",
    rule=(
        "T ← |w| + η_a                 (per coordinate)\n"
        "ε̂ ← ρ·T²·g / ‖T·g‖₂           (ε̂ = 0 if T·g = 0)\n"
        "w̃ ← w + ε̂\n"
        "g_SAM ← ∇f(w̃)\n"
        "w ← base step with g_SAM"
    ),
    hypers=(
        Hyper("base", None, _BASE_HELP, kind="spec"),
        Hyper("rho", 0.5, "radius ρ of the scaled neighbourhood", lo=0.0, hi=100.0, symbol="ρ"),
        Hyper("eta", 0.01, "offset η_a in T = |w| + η_a (keeps a zero weight perturbable)",
              lo=0.0, hi=100.0, symbol="η_a"),
    ),
    factory=asam,
    convention="Kwon et al. 2021, element-wise T (their 'adaptive' option).",
    playground={"base": "gd(lr=0.3)", "rho": 0.1, "eta": 0.01},
    needs=("grad",),
    state=ASAMState,
    symbols=_SYMBOLS,
    explainer=lambda c: _sharpness(c, adaptive=True),
    torch=NO_TORCH,
    velocity=FROM_BASE,
))

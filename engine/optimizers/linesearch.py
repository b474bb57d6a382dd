"""Line searches shared by the quasi-Newton and conjugate-gradient rules.

A search looks along a direction d from a point w at φ(t) = f(w + t·d), whose slope is
φ'(t) = ∇f(w + t·d)·d, and records every trial as a :class:`Trial`: the step t, φ(t), φ'(t)
and whether it passed the sufficient-decrease (Armijo) and the strong curvature condition.
The playground draws the trials along the direction and the inspector prints them as a
table, so the student sees the search, not only where it ended.

* :func:`strong_wolfe` is Nocedal & Wright's Algorithm 3.5 (bracketing) with 3.6 (zoom),
  trial steps by safeguarded cubic interpolation (N&W 3.59); bfgs and cg use it.
* lbfgs uses torch's own search (:mod:`engine.optimizers.lbfgs`), so that it takes exactly
  torch's steps; it records the same :class:`Trial` rows.

This module registers no optimizer.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

Array = np.ndarray


# bfgs and cg take no step (and spend no evaluations) once max|∇f| ≤ GRAD_TOL: there the line
# search can no longer tell f's changes from rounding, and would spend its whole budget.
GRAD_TOL = 1e-12


class Trial(NamedTuple):
    """One evaluation of φ(t) = f(w + t·d) during a line search."""

    t: float
    f: float  # φ(t)
    slope: float  # φ'(t) = ∇f(w + t·d)·d
    armijo: bool  # φ(t) ≤ φ(0) + c₁·t·φ'(0)
    curvature: bool  # |φ'(t)| ≤ c₂·|φ'(0)|  (the strong Wolfe condition)


class LineSearch(NamedTuple):
    """The outcome of a search: the accepted step and everything tried on the way."""

    t: float  # accepted step (0 when nothing acceptable was found)
    f: float  # φ(t)
    g: Array | None  # ∇f(w + t·d) (None when t = 0: the caller knows ∇f(w))
    trials: tuple[Trial, ...]
    converged: bool  # the accepted step satisfies both strong Wolfe conditions


NO_TRIALS = np.zeros((0, 5))


def pack(trials) -> Array:
    """Trials as a read-only (n, 5) array of t, φ(t), φ'(t), Armijo, curvature (1/0): how
    the rules' states keep them (a state holds numbers and arrays only)."""
    arr = np.array([tuple(tr) for tr in trials], dtype=float).reshape(-1, 5)
    arr.flags.writeable = False
    return arr


def trials_of(state) -> list[Trial]:
    """The line-search trials a state recorded (none for rules without a line search)."""
    arr = getattr(state, "trials", None)
    if arr is None:
        return []
    return [Trial(float(r[0]), float(r[1]), float(r[2]), bool(r[3]), bool(r[4]))
            for r in np.asarray(arr, dtype=float).reshape(-1, 5)]


def make_trial(t: float, f: float, slope: float, f0: float, slope0: float, c1: float,
               c2: float) -> Trial:
    """A trial with its two conditions checked (NaN/inf fails both)."""
    armijo = math.isfinite(f) and f <= f0 + c1 * t * slope0
    curvature = math.isfinite(slope) and abs(slope) <= -c2 * slope0
    return Trial(float(t), float(f), float(slope), bool(armijo), bool(curvature))


def cubic_minimizer(a: float, fa: float, da: float, b: float, fb: float, db: float,
                    ) -> float | None:
    """Minimizer of the cubic interpolating (a, fa, da) and (b, fb, db) (N&W 3.59);
    None when the cubic has no minimizer or the numbers are not finite."""
    if a == b:
        return None
    d1 = da + db - 3.0 * (fa - fb) / (a - b)
    rad = d1 * d1 - da * db
    if not math.isfinite(rad) or rad < 0:
        return None
    d2 = math.copysign(math.sqrt(rad), b - a)
    denom = db - da + 2.0 * d2
    if denom == 0 or not math.isfinite(denom):
        return None
    t = b - (b - a) * (db + d2 - d1) / denom
    return t if math.isfinite(t) else None


def strong_wolfe(oracle, w: Array, d: Array, f0: float, g0: Array, t1: float = 1.0,
                 c1: float = 1e-4, c2: float = 0.9, max_evals: int = 25,
                 t_max: float = 1e10) -> LineSearch:
    """A step t along ``d`` from ``w`` with φ(t) ≤ φ(0) + c₁·t·φ'(0) and
    |φ'(t)| ≤ c₂·|φ'(0)|: Nocedal & Wright, Algorithm 3.5 with zoom (Algorithm 3.6).

    ``oracle`` offers ``value`` and ``grad``; ``f0``/``g0`` are f and ∇f at ``w`` and ``d``
    must be a descent direction (∇f·d < 0). The first trial is ``t1``; while trials keep
    going downhill with a negative slope, the step doubles (up to ``t_max``); once a trial
    brackets an acceptable step, zoom narrows the bracket [t_lo, t_hi] by cubic
    interpolation, kept at least 10 % of the bracket away from its ends (bisection when the
    cubic fails). At most ``max_evals`` evaluations (each one f and ∇f) are spent; when
    none satisfies both conditions the lowest trial that satisfied the Armijo condition is
    returned (t = 0 if none did) with ``converged=False``.
    """
    slope0 = float(np.dot(g0, d))
    if not slope0 < 0:
        raise ValueError(f"not a descent direction: ∇f·d = {slope0:g} must be negative")
    trials: list[Trial] = []
    grads: dict[float, Array] = {}

    def phi(t: float) -> tuple[float, float]:
        p = w + t * d
        f = float(oracle.value(p))
        g = np.asarray(oracle.grad(p), dtype=float)
        s = float(np.dot(g, d))
        grads[t] = g
        trials.append(make_trial(t, f, s, f0, slope0, c1, c2))
        return f, s

    def finish(t_star: float | None) -> LineSearch:
        if t_star is not None:
            tr = next(x for x in reversed(trials) if x.t == t_star)
            return LineSearch(t_star, tr.f, grads[t_star], tuple(trials), True)
        ok = [x for x in trials if x.armijo and x.f < f0]
        if not ok:
            return LineSearch(0.0, f0, None, tuple(trials), False)
        best = min(ok, key=lambda x: x.f)
        return LineSearch(best.t, best.f, grads[best.t], tuple(trials), False)

    def zoom(lo: float, f_lo: float, s_lo: float, hi: float, f_hi: float,
             s_hi: float) -> float | None:
        while len(trials) < max_evals:
            a, b = min(lo, hi), max(lo, hi)
            width = b - a
            if width <= 1e-14 * max(1.0, b):
                return None
            t = cubic_minimizer(lo, f_lo, s_lo, hi, f_hi, s_hi) if math.isfinite(f_hi) \
                else None
            if t is None or not (a + 0.1 * width <= t <= b - 0.1 * width):
                t = 0.5 * (a + b)
            f, s = phi(t)
            if not math.isfinite(f) or f > f0 + c1 * t * slope0 or f >= f_lo:
                hi, f_hi, s_hi = t, f, s
            else:
                if abs(s) <= -c2 * slope0:
                    return t
                if s * (hi - lo) >= 0:
                    hi, f_hi, s_hi = lo, f_lo, s_lo
                lo, f_lo, s_lo = t, f, s
        return None

    t_prev, f_prev, s_prev = 0.0, f0, slope0
    t = min(float(t1), t_max)
    while len(trials) < max_evals:
        f, s = phi(t)
        if not math.isfinite(f) or f > f0 + c1 * t * slope0 or (t_prev > 0 and f >= f_prev):
            return finish(zoom(t_prev, f_prev, s_prev, t, f, s))
        if abs(s) <= -c2 * slope0:
            return finish(t)
        if s >= 0:
            return finish(zoom(t, f, s, t_prev, f_prev, s_prev))
        if t >= t_max:
            break
        t_prev, f_prev, s_prev = t, f, s
        t = min(2.0 * t, t_max)
    return finish(None)


def initial_step(f: float, f_prev: float | None, slope0: float, cap: float = 1.0) -> float:
    """First trial step from the last decrease (N&W 3.60, as scipy does it):
    t₁ = min(cap, 1.01·2·(f_k − f_{k−1})/φ'(0)); on the first iteration f_{k−1} is taken as
    f + ‖∇f‖/2, which gives t₁ ≈ 1/‖∇f‖."""
    if f_prev is None or not math.isfinite(f_prev):
        return cap
    t = 1.01 * 2.0 * (f - f_prev) / slope0
    return min(cap, t) if math.isfinite(t) and t > 0 else cap


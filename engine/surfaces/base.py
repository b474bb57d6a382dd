"""The :class:`Surface` every part of the app works with: f(w1, w2), its gradient and Hessian.

Every function is vectorized over points: ``p`` is an array of shape ``(..., 2)``;
``value`` returns shape ``(...)``, ``grad`` shape ``(..., 2)`` and ``hessian`` shape
``(..., 2, 2)``. A surface also knows its default view box, a default start point and its
known minima, which the GUI marks on the contour plot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

Array = np.ndarray


@dataclass(frozen=True)
class Surface:
    """A differentiable function f(w1, w2) with everything the app needs to draw it."""

    name: str
    title: str
    formula: str  # human-readable, e.g. "0.1·w1² + 2·w2²"
    latex: str  # LaTeX for derivations, e.g. r"0.1 w_1^2 + 2 w_2^2"
    _value: Callable[[Array, Array], Array] = field(repr=False)
    _grad: Callable[[Array, Array], tuple[Array, Array]] = field(repr=False)
    _hess: Callable[[Array, Array], tuple[Array, Array, Array]] = field(repr=False)
    view: tuple[float, float, float, float] = (-5.0, 5.0, -5.0, 5.0)  # xmin, xmax, ymin, ymax
    start: tuple[float, float] = (-4.0, 4.0)
    minima: tuple[tuple[float, float], ...] = ()
    gradient_formula: str = ""  # human-readable ∇f, e.g. "(0.2·w1, 4·w2)"
    gradient_latex: str = ""
    log_levels: bool = False  # contour levels on a log scale (steep valleys like Rosenbrock)
    # Added fields (all optional, so code built against the original API keeps working):
    expression: str = ""  # the same f in engine.expression syntax (editable as a custom surface)
    local_minima: tuple[tuple[float, float], ...] = ()  # notable non-global minima (sharp_flat)
    description: str = ""  # one or two sentences on what the surface demonstrates
    # For sums of squares f = Σᵢ rᵢ² (what Levenberg–Marquardt needs): (x, y) -> (residuals
    # rᵢ, their gradients (∂rᵢ/∂w1, ∂rᵢ/∂w2)); None where f is not written that way.
    _residual_fn: Callable[[float, float], tuple[tuple, tuple]] | None = field(
        default=None, repr=False)

    def value(self, p: Array) -> Array:
        p = np.asarray(p, dtype=float)
        with np.errstate(all="ignore"):
            return np.asarray(self._value(p[..., 0], p[..., 1]), dtype=float) + 0.0 * p[..., 0]

    def grad(self, p: Array) -> Array:
        p = np.asarray(p, dtype=float)
        with np.errstate(all="ignore"):
            g1, g2 = self._grad(p[..., 0], p[..., 1])
        zero = 0.0 * p[..., 0]
        if p.ndim == 1:  # one point: the same numbers, without np.stack's overhead
            return np.array([g1 + zero, g2 + zero], dtype=float)
        out = np.empty(zero.shape + (2,))  # written in place: no temporaries to stack
        np.add(g1, zero, out=out[..., 0])
        np.add(g2, zero, out=out[..., 1])
        return out

    def hessian(self, p: Array) -> Array:
        p = np.asarray(p, dtype=float)
        with np.errstate(all="ignore"):
            h11, h12, h22 = self._hess(p[..., 0], p[..., 1])
        zero = 0.0 * p[..., 0]
        h11, h12, h22 = h11 + zero, h12 + zero, h22 + zero
        return np.stack([np.stack([h11, h12], -1), np.stack([h12, h22], -1)], -2)

    @property
    def has_residuals(self) -> bool:
        """Whether f = Σᵢ rᵢ(w)² with known residuals and Jacobian (see :meth:`residuals`)."""
        return self._residual_fn is not None

    def residuals(self, p: Array) -> Array:
        """The residuals r(w) with f(w) = Σᵢ rᵢ(w)², at one point: shape (m,)."""
        return self._residual_parts(p)[0]

    def residual_jacobian(self, p: Array) -> Array:
        """J(w) = ∂r/∂w at one point, shape (m, 2); ∇f = 2·Jᵀr."""
        return self._residual_parts(p)[1]

    def _residual_parts(self, p: Array) -> tuple[Array, Array]:
        if self._residual_fn is None:
            raise ValueError(f"{self.name} is not written as a sum of squares Σ rᵢ²")
        x, y = (float(v) for v in np.asarray(p, dtype=float).reshape(2))
        with np.errstate(all="ignore"):
            r, jac = self._residual_fn(x, y)
        return (np.asarray(r, dtype=float),
                np.asarray([[float(a), float(b)] for a, b in jac], dtype=float).reshape(-1, 2))

    def jvp(self, p: Array, v: Array) -> Array:
        """Directional derivative ∇f(p)·v (what a forward-mode pass computes), per point:
        shape ``(...)`` for points of shape ``(..., 2)``."""
        gv = self.grad(p) * v
        return gv[..., 0] + gv[..., 1]  # (numpy reduces a last axis of length 2 slowly)

    def grid(self, view=None, n: int = 200) -> tuple[Array, Array, Array]:
        """Values on an ``n × n`` grid over ``view``: returns (xs, ys, Z) with Z[iy, ix]."""
        x0, x1, y0, y1 = view or self.view
        xs = np.linspace(x0, x1, n)
        ys = np.linspace(y0, y1, n)
        X, Y = np.meshgrid(xs, ys)
        return xs, ys, self.value(np.stack([X, Y], axis=-1))

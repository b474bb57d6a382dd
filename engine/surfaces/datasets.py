"""Surfaces built from a data set: the loss of a small model as a function of two weights.

:func:`make_linear_regression` builds a surface from a data set: besides the full-data loss
it offers mini-batch gradients (``batch_grad(p, idx)``, ``n_samples``), which the trajectory
runner uses for SGD-style runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.surfaces.base import Surface

Array = np.ndarray


@dataclass(frozen=True, eq=False)
class LinearRegressionSurface(Surface):
    """Mean-squared-error loss of the line y ≈ w·x + b on a fixed data set, as a surface.

    ``w1`` is the slope w and ``w2`` the intercept b::

        L(w, b) = (1/n) Σᵢ (w·xᵢ + b − yᵢ)²

    The full-data value, gradient and Hessian are closed forms in the data's moments and are
    vectorized over points like every surface's. Mini-batch API (what the trajectory runner
    uses for SGD-style runs; plain surfaces lack it):

    * ``n_samples`` – the number of samples n; valid sample indices are ``0 … n−1``.
    * ``batch_grad(p, idx)`` – the gradient of the mean loss over the samples ``idx``
      (any integer index array, repeats allowed; ``idx = arange(n)`` gives ``grad(p)``);
      ``p`` has shape ``(..., 2)``, the result ``(..., 2)``.
    * ``batch_value(p, idx)`` – the mean loss over ``idx``, shape ``(...)``.
    * ``x``, ``y`` – the data (read-only arrays); ``fit`` – the least-squares solution.

    The mean over a uniformly drawn batch is an unbiased estimate of the full gradient.
    """

    x: Array = field(default_factory=lambda: np.zeros(1), repr=False)
    y: Array = field(default_factory=lambda: np.zeros(1), repr=False)

    @property
    def n_samples(self) -> int:
        return int(self.x.shape[0])

    @property
    def fit(self) -> tuple[float, float]:
        return self.minima[0]

    def _batch(self, idx) -> tuple[Array, Array]:
        idx = np.asarray(idx)
        if idx.ndim < 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError("idx must be a non-empty array of integer sample indices "
                             "(1-D, or one row per point for a batch of runs)")
        if idx.min() < -self.n_samples or idx.max() >= self.n_samples:
            raise ValueError(f"sample indices must be in [0, {self.n_samples - 1}]")
        return self.x[idx], self.y[idx]

    def _residuals(self, p: Array, idx) -> tuple[Array, Array]:
        xb, yb = self._batch(idx)
        p = np.asarray(p, dtype=float)
        r = p[..., 0, None] * xb + p[..., 1, None] - yb  # shape (..., k)
        return r, xb

    # f = (1/n)·Σ (w·xᵢ + b − yᵢ)² = Σ rᵢ² with rᵢ = (w·xᵢ + b − yᵢ)/√n
    @property
    def has_residuals(self) -> bool:
        return True

    def _residual_parts(self, p: Array) -> tuple[Array, Array]:
        w, b = (float(v) for v in np.asarray(p, dtype=float).reshape(2))
        scale = 1.0 / np.sqrt(self.n_samples)
        r = (w * self.x + b - self.y) * scale
        jac = np.stack([self.x * scale, np.full(self.n_samples, scale)], axis=1)
        return r, jac

    def batch_value(self, p: Array, idx) -> Array:
        r, _ = self._residuals(p, idx)
        return np.mean(r * r, axis=-1)

    def batch_grad(self, p: Array, idx) -> Array:
        r, xb = self._residuals(p, idx)
        return np.stack([2 * np.mean(r * xb, axis=-1), 2 * np.mean(r, axis=-1)], axis=-1)


def make_linear_regression(
    n: int = 64,
    noise: float = 0.5,
    seed: int = 0,
    slope: float = 2.0,
    intercept: float = -1.0,
    x_range: tuple[float, float] = (0.0, 2.0),
) -> LinearRegressionSurface:
    """A seeded synthetic data set y = slope·x + intercept + noise·N(0, 1), x ~ U(x_range),
    and its MSE loss surface.

    x is drawn from (0, 2) rather than around 0 on purpose: the correlation between the
    slope and the intercept tilts and stretches the loss bowl (condition number ≈ 14),
    which is what makes optimizers differ on this problem.
    """
    if not 1 <= int(n) <= 1_000_000:
        raise ValueError(f"n must be between 1 and 1000000, got {n}")
    if not (noise >= 0 and np.isfinite(noise)):
        raise ValueError(f"noise must be a finite number ≥ 0, got {noise}")
    n = int(n)
    rng = np.random.default_rng(seed)
    x = rng.uniform(x_range[0], x_range[1], n)
    y = slope * x + intercept + noise * rng.standard_normal(n)
    x.setflags(write=False)
    y.setflags(write=False)
    # L = sxx·w² + 2·sx·w·b + b² − 2·sxy·w − 2·sy·b + syy  (moments are means over the data)
    sx, sy, sxx, sxy, syy = x.mean(), y.mean(), (x * x).mean(), (x * y).mean(), (y * y).mean()
    det = sxx - sx * sx
    if det <= 1e-12 * max(sxx, 1.0):
        raise ValueError("the samples' x values must not all be equal (no unique fit)")
    w_fit = (sxy - sx * sy) / det
    b_fit = sy - w_fit * sx

    def value(w, b):
        return sxx * w * w + 2 * sx * w * b + b * b - 2 * sxy * w - 2 * sy * b + syy

    def grad(w, b):
        return 2 * (sxx * w + sx * b - sxy), 2 * (sx * w + b - sy)

    def hess(w, b):
        return 2 * sxx, 2 * sx, 2.0

    def num(v: float) -> str:
        return repr(float(v))

    expr = (f"{num(sxx)}*w1^2 + {num(2 * sx)}*w1*w2 + w2^2 - {num(2 * sxy)}*w1"
            f" - {num(2 * sy)}*w2 + {num(syy)}")
    return LinearRegressionSurface(
        name="linear_regression",
        title=f"Linear regression (MSE, {n} samples)",
        formula=f"(1/{n})·Σᵢ (w1·xᵢ + w2 − yᵢ)²  (w1 = slope w, w2 = intercept b) = "
        f"{sxx:.4g}·w1² + {2 * sx:.4g}·w1·w2 + w2² − {2 * sxy:.4g}·w1 − {2 * sy:.4g}·w2"
        f" + {syy:.4g}",
        latex=rf"\frac{{1}}{{{n}}} \sum_{{i=1}}^{{{n}}} (w_1 x_i + w_2 - y_i)^2",
        _value=value,
        _grad=grad,
        _hess=hess,
        view=(slope - 3.0, slope + 3.0, intercept - 3.0, intercept + 3.0),
        start=(slope - 2.5, intercept + 2.5),
        minima=((float(w_fit), float(b_fit)),),
        gradient_formula=f"((2/{n})·Σᵢ (w1·xᵢ + w2 − yᵢ)·xᵢ, (2/{n})·Σᵢ (w1·xᵢ + w2 − yᵢ))",
        gradient_latex=rf"\frac{{2}}{{{n}}} \sum_{{i=1}}^{{{n}}} (w_1 x_i + w_2 - y_i)"
        r"\left(x_i,\; 1\right)",
        expression=expr,
        description=f"Fitting a line to {n} noisy points (noise σ = {noise:g}, seed {seed}); "
        "the only surface with real data, so mini-batch SGD (batch=…) works here.",
        x=x,
        y=y,
    )

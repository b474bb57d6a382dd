"""A tiny data-set surface shared by the optimizer and explanation tests."""

from __future__ import annotations

import numpy as np


class TinyRegression:
    """A stand-in for the linear_regression surface: mean squared error of y ≈ w·x + b.

    Offers what the trajectory's mini-batch hook uses: ``n_samples`` and
    ``batch_grad(p, idx)``, the gradient of the mean loss over the samples ``idx``. The
    noise on y is seeded, so every instance with the same ``n`` and ``seed`` is the same.
    """

    name = "tiny_regression"
    view = (-4.0, 4.0, -4.0, 4.0)

    def __init__(self, n: int = 10, seed: int = 123):
        rng = np.random.default_rng(seed)
        self.x = np.linspace(-1.0, 1.0, n)
        self.y = 2.0 * self.x - 1.0 + 0.3 * rng.standard_normal(n)
        self.n_samples = n

    def _residual(self, p, idx):
        return p[0] * self.x[idx] + p[1] - self.y[idx]

    def value(self, p):
        r = self._residual(np.asarray(p, float), slice(None))
        return float(np.mean(r * r))

    def batch_grad(self, p, idx):
        idx = np.asarray(idx)
        r = self._residual(np.asarray(p, float), idx)
        return np.array([2.0 * np.mean(r * self.x[idx]), 2.0 * np.mean(r)])

    def grad(self, p):
        return self.batch_grad(p, np.arange(self.n_samples))

    def hessian(self, p):
        return 2.0 * np.array([[np.mean(self.x**2), np.mean(self.x)], [np.mean(self.x), 1.0]])

    def jvp(self, p, v):
        return float(self.grad(p) @ v)

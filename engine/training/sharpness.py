"""Sharpness of a trained network, measured as the papers measure it.

Two numbers, both on a fixed subset of the training set (the first ``samples`` training
images in file order, pixels in [0, 1] as in training), so they are reproducible and
comparable between optimizers:

* :func:`lambda_max` — the largest eigenvalue of the Hessian of the mean cross-entropy
  training loss with respect to all the network's parameters, by power iteration on
  Hessian-vector products (double backward; the Hessian itself is never formed). The
  iteration stops when two successive Rayleigh quotients agree to a relative tolerance
  ``tol`` (default 1e-3). Power iteration finds the eigenvalue of largest *magnitude*; at
  the end of training that is the largest positive one (the negative eigenvalues of a
  trained network are tiny in comparison), which is what the edge-of-stability picture
  compares with 2/η (Cohen et al. 2021).
* :func:`eps_sharpness` — Keskar et al. (2017)'s ε-sharpness: the largest loss increase in
  the box |δᵢ| ≤ ε(|wᵢ| + 1) around the weights, found by a few steps of projected
  (sign-)gradient ascent, reported as 100·(max L(w+δ) − L(w)) / (1 + L(w)).

torch is imported inside the functions: this module is importable without it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_SAMPLES = 2048
DEFAULT_TOL = 1e-3
DEFAULT_MAX_ITER = 100
DEFAULT_EPS = 1e-3
DEFAULT_ASCENT_STEPS = 10


@dataclass(frozen=True)
class Eigen:
    """The result of :func:`lambda_max`: the eigenvalue, iterations used, converged or not."""

    value: float
    iterations: int
    converged: bool


def sharpness_subset(train_x, train_y, samples: int = DEFAULT_SAMPLES,
                     train_limit: int | None = None, device=None):
    """The first ``samples`` training images in file order (after ``train_limit``), as
    float32 in [0, 1] and their labels: the fixed set every sharpness number is measured on."""
    n = int(train_x.shape[0]) if train_limit is None else min(train_limit, int(train_x.shape[0]))
    n = min(n, samples)
    x = train_x[:n]
    y = train_y[:n]
    if device is not None:
        x, y = x.to(device), y.to(device)
    import torch

    x = x.reshape(n, -1).to(torch.float32)
    if train_x.dtype == torch.uint8:
        x = x / 255.0
    return x, y


def _mean_loss(model, x, y, batch: int = 8192):
    import torch.nn.functional as F

    n = int(x.shape[0])
    total = None
    for start in range(0, n, batch):
        part = F.cross_entropy(model(x[start:start + batch]), y[start:start + batch],
                               reduction="sum")
        total = part if total is None else total + part
    return total / n


def lambda_max(model, x, y, *, tol: float = DEFAULT_TOL, max_iter: int = DEFAULT_MAX_ITER,
               seed: int = 0, should_stop=None) -> Eigen:
    """The Hessian's largest eigenvalue of the mean cross-entropy of ``model`` on (x, y).

    Power iteration from a seeded Gaussian vector: vₖ₊₁ = H vₖ / ‖H vₖ‖, λₖ = vₖ·H vₖ, until
    |λₖ − λₖ₋₁| ≤ tol·|λₖ| (or ``max_iter``). One gradient with a graph is built once; each
    iteration is one Hessian-vector product by double backward. ``model`` is not changed.
    """
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    loss = _mean_loss(model, x, y)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    v = [torch.randn(p.shape, generator=gen, dtype=p.dtype).to(p.device) for p in params]
    norm = torch.sqrt(sum((t * t).sum() for t in v))
    v = [t / norm for t in v]
    lam_prev = math.nan
    lam = math.nan
    for k in range(1, max_iter + 1):
        if should_stop is not None and should_stop():
            break
        hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True)
        lam = float(sum((a * b).sum() for a, b in zip(v, hv, strict=True)))
        norm = float(torch.sqrt(sum((t * t).sum() for t in hv)))
        if not math.isfinite(lam) or norm == 0.0:
            return Eigen(lam if math.isfinite(lam) else math.nan, k, norm == 0.0)
        v = [t / norm for t in hv]
        if math.isfinite(lam_prev) and abs(lam - lam_prev) <= tol * abs(lam):
            return Eigen(lam, k, True)
        lam_prev = lam
    return Eigen(lam, max_iter, False)


def eps_sharpness(model, x, y, *, eps: float = DEFAULT_EPS,
                  steps: int = DEFAULT_ASCENT_STEPS) -> float:
    """Keskar et al.'s ε-sharpness in percent: 100·(max_{δ∈C} L(w+δ) − L(w)) / (1 + L(w)),
    with C the box |δᵢ| ≤ ε(|wᵢ| + 1), maximised by ``steps`` steps of projected
    sign-gradient ascent (each step moves a quarter of the box, then clips to it).

    The model's weights are restored before returning.
    """
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    originals = [p.detach().clone() for p in params]
    boxes = [eps * (w.abs() + 1.0) for w in originals]
    with torch.no_grad():
        base = float(_mean_loss(model, x, y))
    best = base
    try:
        deltas = [torch.zeros_like(w) for w in originals]
        for _ in range(steps):
            loss = _mean_loss(model, x, y)
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for p, w, d, g, box in zip(params, originals, deltas, grads, boxes,
                                           strict=True):
                    d.add_(0.25 * box * torch.sign(g))
                    torch.maximum(torch.minimum(d, box), -box, out=d)
                    p.copy_(w + d)
                value = float(_mean_loss(model, x, y))
            if math.isfinite(value):
                best = max(best, value)
    finally:
        with torch.no_grad():
            for p, w in zip(params, originals, strict=True):
                p.copy_(w)
    return 100.0 * (best - base) / (1.0 + base)

"""Loss landscapes around trained weights (Li et al. 2018, "Visualizing the Loss Landscape
of Neural Nets"), and the optimizer's path on them.

A slice is the training loss at w + α·d₁ + β·d₂ for (α, β) on an N × N grid over
[−span, span]², around an optimizer's final weights w. Two kinds of plane:

* ``random``: d₁, d₂ are Gaussian and **filter-normalized**: for every Linear layer, each
  neuron's incoming weights (a row of the weight matrix) in the direction are scaled to the
  norm of the same row in the model, so the picture's scale means the same thing for every
  layer and every optimizer (a sharp minimum cannot hide behind large weights). **Biases
  get no direction** (their entries are zero), as in Li et al.'s own code with
  ``ignore='biasbn'``: the slice moves the weights only.
* ``pca``: d₁, d₂ are the first two principal directions of (w_t − w_final) over the weights
  kept during training, so the path lies as close to the plane as two directions allow.
  Both are unit vectors; the grid spans ``span`` × the path's extent. Each kept point is
  drawn at its projection, with its distance from the plane (the path is not in the
  plane: the contours under it are those of the plane, not of the path).

Evaluation is batched: a whole row of the grid is one pass. The first layer's
pre-activations are X·(W + α D₁ + β D₂)ᵀ = X·Wᵀ + α X·D₁ᵀ + β X·D₂ᵀ, so X is multiplied
only three times for the whole slice; the later (small) layers take a batch of weight
matrices per row (``torch.bmm``).

torch is imported inside the functions.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

PLANES = ("random", "pca")
DEFAULT_GRID = 21
DEFAULT_SPAN = 1.0
CHUNK_ELEMENTS = 1 << 19  # activations per batched pass (2 MB of float32)


@dataclass(frozen=True)
class Plane:
    """Two directions in parameter space (lists of tensors shaped like the parameters)."""

    kind: str
    d1: list
    d2: list
    scale: float = 1.0  # the grid spans [−span·scale, span·scale]
    explained: tuple[float, float] = (math.nan, math.nan)  # PCA: variance ratios


@dataclass(frozen=True)
class PathPoint:
    """A kept weight vector seen on a PCA plane: its coordinates and distance from it."""

    alpha: float
    beta: float
    distance: float
    epoch: float


def _linears(model):
    import torch

    return [m for m in model if isinstance(m, torch.nn.Linear)]


def filter_normalized_direction(model, generator) -> list:
    """A Gaussian direction, one tensor per parameter: each Linear weight row scaled to the
    norm of the model's same row; biases zero (see the module docstring)."""
    import torch

    out = []
    for p in model.parameters():
        if p.dim() >= 2:
            d = torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device)
            row_d = d.norm(dim=1, keepdim=True)
            row_w = p.detach().norm(dim=1, keepdim=True)
            d = d * (row_w / row_d.clamp_min(1e-12))
        else:
            d = torch.zeros_like(p)
        out.append(d)
    return out


def random_plane(model, seed: int = 0) -> Plane:
    import torch

    gen = torch.Generator(device="cpu").manual_seed(seed)
    return Plane("random", filter_normalized_direction(model, gen),
                 filter_normalized_direction(model, gen))


def _flat(tensors) -> np.ndarray:
    return np.concatenate([t.detach().cpu().double().numpy().ravel() for t in tensors])


def _unflat(vec: np.ndarray, like) -> list:
    import torch

    out, at = [], 0
    for p in like:
        n = p.numel()
        out.append(torch.as_tensor(vec[at:at + n].reshape(tuple(p.shape)),
                                   dtype=p.dtype, device=p.device))
        at += n
    return out


def pca_plane(model, snapshots: list[np.ndarray], epochs: list[float] | None = None
              ) -> tuple[Plane, list[PathPoint]]:
    """The plane of the first two principal directions of (w_t − w_final) over
    ``snapshots`` (flattened parameter vectors, in ``model.parameters()`` order), and the
    path's points on it. The grid scale is the path's extent (so span 1 just holds it)."""
    params = list(model.parameters())
    final = _flat(params)
    if len(snapshots) < 2:
        raise ValueError("a PCA plane needs at least two kept weight vectors; "
                         "train for longer or use the random plane")
    M = np.stack([s - final for s in snapshots])
    _, s, vt = np.linalg.svd(M, full_matrices=False)
    d1 = vt[0]
    d2 = vt[1] if vt.shape[0] > 1 else np.zeros_like(d1)
    var = s ** 2
    total = float(var.sum()) or 1.0
    explained = (float(var[0] / total), float(var[1] / total) if len(var) > 1 else 0.0)
    points = []
    epochs = list(epochs) if epochs is not None else [float(i) for i in range(len(snapshots))]
    for row, ep in zip(M, epochs, strict=True):
        a, b = float(row @ d1), float(row @ d2)
        rest = row - a * d1 - b * d2
        points.append(PathPoint(a, b, float(np.linalg.norm(rest)), float(ep)))
    extent = max((max(abs(p.alpha), abs(p.beta)) for p in points), default=1.0)
    scale = 1.1 * extent if extent > 0 else 1.0
    plane = Plane("pca", _unflat(d1, params), _unflat(d2, params), scale, explained)
    return plane, points


def grid_axis(n: int, span: float, scale: float = 1.0) -> np.ndarray:
    return np.linspace(-span * scale, span * scale, n)


def slice_rows(model, x, y, plane: Plane, alphas, betas, should_stop=None
               ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(j, losses, accuracies)`` for each β = betas[j]: the mean cross-entropy and
    accuracy on (x, y) at w + α d₁ + β d₂ for every α in ``alphas`` (one batched pass).

    ``model`` must be an ``nn.Sequential`` of Linear layers and element-wise activations.
    """
    import torch
    import torch.nn.functional as F

    layers = list(model)
    params = {id(p): i for i, p in enumerate(model.parameters())}
    lin = _linears(model)
    if not lin or not isinstance(layers[0], torch.nn.Linear):
        raise ValueError("a landscape needs an nn.Sequential that starts with a Linear layer")
    a = torch.as_tensor(np.asarray(alphas, dtype=np.float64), dtype=torch.float32,
                        device=x.device)
    n_a = int(a.shape[0])
    width = max(int(m.weight.shape[0]) for m in lin)
    chunk = max(1, min(n_a, CHUNK_ELEMENTS // max(1, int(x.shape[0]) * width)))

    def dirs(module):
        wi, bi = params[id(module.weight)], params[id(module.bias)]
        return (plane.d1[wi], plane.d2[wi], plane.d1[bi], plane.d2[bi])

    first = layers[0]
    with torch.no_grad():
        f_w1, f_w2, f_b1, f_b2 = dirs(first)
        xw = x @ first.weight.T + first.bias       # (n, h)
        xd1 = x @ f_w1.T + f_b1
        xd2 = x @ f_w2.T + f_b2
        for j, beta in enumerate(betas):
            if should_stop is not None and should_stop():
                return
            beta = float(beta)
            base = xw + beta * xd2
            losses, accs = [], []
            # a few α at a time: the activations of a whole row (n_α × samples × width)
            # would not fit in the cache, and allocating them costs more than it saves
            for start in range(0, n_a, chunk):
                ac = a[start:start + chunk]
                m = int(ac.shape[0])
                h = base.unsqueeze(0) + ac.view(-1, 1, 1) * xd1.unsqueeze(0)
                for layer in layers[1:]:
                    if isinstance(layer, torch.nn.Linear):
                        w1, w2, b1, b2 = dirs(layer)
                        W = (layer.weight.unsqueeze(0) + ac.view(-1, 1, 1) * w1.unsqueeze(0)
                             + beta * w2.unsqueeze(0))                  # (m, out, in)
                        B = (layer.bias.unsqueeze(0) + ac.view(-1, 1) * b1.unsqueeze(0)
                             + beta * b2)
                        h = torch.baddbmm(B.unsqueeze(1), h, W.transpose(1, 2))
                    else:
                        h = layer(h)
                logits = h.reshape(m * h.shape[1], -1)
                target = y.repeat(m)
                losses.append(F.cross_entropy(logits, target, reduction="none")
                              .view(m, -1).mean(1))
                accs.append((h.argmax(-1) == y.unsqueeze(0)).float().mean(1))
            yield (j, torch.cat(losses).double().cpu().numpy(),
                   torch.cat(accs).double().cpu().numpy())


def slice_1d(model, x, y, plane: Plane, alphas) -> tuple[np.ndarray, np.ndarray]:
    """The loss and accuracy along d₁ alone (β = 0)."""
    for _, losses, acc in slice_rows(model, x, y, plane, alphas, [0.0]):
        return losses, acc
    raise RuntimeError("unreachable")

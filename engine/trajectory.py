"""Run an optimizer on a surface and record every step.

Divergence is a result, not an exception: a step that produces NaN/inf or leaves a huge box
around the surface's view ends the run, marked *diverged* at that step; everything before it
is kept, and every recorded number is finite, so plots are never poisoned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.optimizers import build_optimizer
from engine.spec import RunSpec
from engine.surfaces import Surface

MAX_STEPS = 100_000
DIVERGENCE_FACTOR = 1e3  # a run diverges past this many view widths from the view's centre
DIVERGENCE_FLOOR = 1e6


class NoisyOracle:
    """The surface as an optimizer sees it: optionally mini-batched, optionally noisy.

    * ``sigma > 0`` adds seeded Gaussian noise to every gradient (and JVP) handed out, so
      SAM's second, perturbed gradient is noisy too.
    * ``batch > 0`` on a surface built from a data set (it offers ``n_samples`` and
      ``batch_grad(p, idx)``, the gradient of the mean loss over samples ``idx``) replaces
      the full gradient by a mini-batch gradient. :meth:`next_batch` draws the batch of the
      next step: the samples are shuffled once per epoch (seeded) and dealt out without
      replacement, the last batch of an epoch holding the remainder, as torch's DataLoader
      with ``shuffle=True`` does. Every gradient requested during one step uses that step's
      batch (SAM takes both of its gradients on the same batch, as in the paper).

    Noise and batches draw from separate generators derived from ``seed``, so a run is
    reproducible and changing σ does not change which samples are drawn.
    """

    def __init__(self, surface: Surface, sigma: float, seed: int, batch: int = 0):
        self.surface = surface
        self.sigma = float(sigma)
        self.rng = np.random.default_rng(seed)
        self.batch = int(batch)
        self.idx: np.ndarray | None = None  # the current step's mini-batch (None: full)
        if self.batch:
            batch_grad = getattr(surface, "batch_grad", None)
            n = getattr(surface, "n_samples", None)
            if batch_grad is None or not n:
                raise ValueError(
                    f"batch={self.batch} needs a surface built from a data set "
                    f"(such as linear_regression); {surface.name} has no samples to draw "
                    f"from, so use batch=0 (full gradient) or noise=σ for stochastic gradients"
                )
            self.n_samples = int(n)
            if self.batch > self.n_samples:
                raise ValueError(
                    f"batch={self.batch} is larger than the data set of {surface.name} "
                    f"({self.n_samples} samples); batch must be in [0, {self.n_samples}]"
                )
            self.batch_rng = np.random.default_rng([int(seed), 0xBA7C])
            self._order = np.empty(0, dtype=int)
            self._pos = 0
            self.epoch = 0

    @property
    def exact(self) -> bool:
        """True when the gradients handed out are the surface's own (no noise, full batch)."""
        return self.sigma == 0 and not self.batch

    def next_batch(self) -> np.ndarray | None:
        """Draw the mini-batch for the next step (``None`` when running full batch)."""
        if not self.batch:
            return None
        if self._pos >= len(self._order):
            self._order = self.batch_rng.permutation(self.n_samples)
            self._pos = 0
            self.epoch += 1
        self.idx = self._order[self._pos : self._pos + self.batch]
        self._pos += self.batch
        return self.idx

    def _grad(self, p):
        if self.idx is None:
            return self.surface.grad(p)
        return np.asarray(self.surface.batch_grad(p, self.idx), dtype=float)

    def value(self, p):
        return self.surface.value(p)

    def grad(self, p):
        g = self._grad(p)
        if self.sigma > 0:
            g = g + self.sigma * self.rng.standard_normal(np.shape(g))
        return g

    def hessian(self, p):
        return self.surface.hessian(p)

    def jvp(self, p, v):
        if self.idx is None:
            d = self.surface.jvp(p, v)
        else:
            d = float(np.dot(self._grad(p), v))
        if self.sigma > 0:
            d += self.sigma * float(self.rng.standard_normal())
        return d

    def __getattr__(self, name):  # anything else a surface offers (view, minima, …)
        return getattr(self.surface, name)


@dataclass(frozen=True)
class Trajectory:
    """Everything recorded for one run; index ``k`` is the state after ``k`` steps.

    ``points[k]``, ``losses[k]`` and ``grads[k]`` (the true gradient) describe w_k;
    ``used_grads[k]`` is the gradient fed to step k (evaluated at w_{k-1}, noisy if the run
    has noise; NaN at k = 0); ``updates[k] = w_k − w_{k-1}``; ``states[k]`` is the optimizer
    state after step k (``states[0]`` is the initial state).
    """

    spec: RunSpec
    surface: str
    points: np.ndarray
    losses: np.ndarray
    grads: np.ndarray
    used_grads: np.ndarray
    updates: np.ndarray
    states: tuple[Any, ...] = field(repr=False)
    requested_steps: int = 0
    diverged_at: int | None = None  # the step that produced NaN/inf or left the box
    diverged_reason: str = ""
    # batches[k - 1]: the sample indices of step k's mini-batch (empty when full batch)
    batches: tuple[np.ndarray, ...] = field(default=(), repr=False)

    @property
    def steps(self) -> int:
        """Number of steps actually recorded (fewer than requested if it diverged)."""
        return len(self.points) - 1

    @property
    def diverged(self) -> bool:
        return self.diverged_at is not None

    def at(self, k: int) -> int:
        """Clamp a global step index to this run's recorded range."""
        return max(0, min(int(k), self.steps))


def divergence_limit(surface: Surface) -> tuple[np.ndarray, float]:
    x0, x1, y0, y1 = surface.view
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    radius = max(DIVERGENCE_FLOOR, DIVERGENCE_FACTOR * max(x1 - x0, y1 - y0))
    return centre, radius


def run_trajectory(
    surface: Surface, spec: RunSpec, start: Sequence[float], steps: int
) -> Trajectory:
    """Run ``spec`` on ``surface`` from ``start`` for ``steps`` steps and record everything."""
    steps = int(steps)
    if not 0 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be between 0 and {MAX_STEPS}, got {steps}")
    w = np.asarray(start, dtype=float).reshape(2)
    if not np.all(np.isfinite(w)):
        raise ValueError(f"start point must be finite, got {tuple(w)}")
    values = spec.resolved()
    oracle = NoisyOracle(
        surface, values.get("noise", 0.0), values.get("seed", 0), values.get("batch", 0)
    )
    opt = build_optimizer(spec)
    centre, radius = divergence_limit(surface)

    state = opt.init(w)
    nan2 = np.full(2, np.nan)
    points, losses, grads = [w], [float(surface.value(w))], [surface.grad(w)]
    used, updates, states = [nan2], [np.zeros(2)], [state]
    batches: list[np.ndarray] = []
    diverged_at, reason = None, ""
    if not (np.isfinite(losses[0]) and np.all(np.isfinite(grads[0]))):
        raise ValueError(f"the surface is not defined at the start point {tuple(w)}")

    with np.errstate(all="ignore"):
        for k in range(1, steps + 1):
            idx = oracle.next_batch()
            # an exact oracle's gradient at w is the one recorded for w a step ago
            g = grads[-1] if oracle.exact else oracle.grad(w)
            try:
                upd, new_state = opt.update(g, state, w, oracle)
            except (FloatingPointError, np.linalg.LinAlgError, OverflowError) as exc:
                diverged_at, reason = k, f"the update failed: {exc}"
                break
            w_new = w + upd
            loss = float(surface.value(w_new))
            true_grad = surface.grad(w_new)
            if not np.all(np.isfinite(w_new)):
                diverged_at, reason = k, "the point became NaN/inf"
                break
            if np.max(np.abs(w_new - centre)) > radius:
                diverged_at, reason = k, f"the point left the box of radius {radius:g}"
                break
            if not (np.isfinite(loss) and np.all(np.isfinite(true_grad))):
                diverged_at, reason = k, "the loss or gradient became NaN/inf"
                break
            w, state = w_new, new_state
            points.append(w)
            losses.append(loss)
            grads.append(true_grad)
            used.append(np.asarray(g, dtype=float))
            updates.append(np.asarray(upd, dtype=float))
            states.append(state)
            if idx is not None:
                batches.append(idx)

    return Trajectory(
        spec=spec,
        surface=surface.name,
        points=np.array(points),
        losses=np.array(losses),
        grads=np.array(grads),
        used_grads=np.array(used),
        updates=np.array(updates),
        states=tuple(states),
        requested_steps=steps,
        diverged_at=diverged_at,
        diverged_reason=reason,
        batches=tuple(batches),
    )

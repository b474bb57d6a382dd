"""Run an optimizer on a surface and record every step.

Divergence is a result, not an exception: a step that produces NaN/inf or leaves a huge box
around the surface's view ends the run, marked *diverged* at that step; everything before it
is kept, and every recorded number is finite, so plots are never poisoned.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine import schedules
from engine.optimizers import build_optimizer
from engine.optimizers.registry import per_run_values, run_norms
from engine.spec import RunSpec
from engine.surfaces import Surface

MAX_STEPS = 100_000
# One process records at most this many runs, and this many steps in all (runs × steps):
# a recorded step costs about 0.7 kB (point, loss, gradients, update, optimizer state), so
# 1,000,000 steps are about 1 GB; 30 × 100,000 took 3.5 GB before this limit.
MAX_RUNS = 30
MAX_TOTAL_STEPS = 1_000_000
STEP_BYTES = 700  # measured with tracemalloc for adam (20,000 steps: 720 bytes a step)
DIVERGENCE_FACTOR = 1e3  # a run diverges past this many view widths from the view's centre
DIVERGENCE_FLOOR = 1e6


def run_generator(seed: int, run: int, salt: tuple[int, ...] = ()) -> np.random.Generator:
    """The random generator of run ``run`` of a batch: run 0's is the single run's
    (``default_rng(seed)``, or ``default_rng([seed, *salt])``); run i > 0 gets an independent
    stream spawned from the same seed (``SeedSequence(..., spawn_key=(i,))``), so every run of
    a batch is reproducible from the seed and its index alone."""
    entropy = [int(seed), *salt] if salt else int(seed)
    if run == 0:
        return np.random.default_rng(entropy)
    return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(int(run),)))


class _NormalStreams:
    """Standard normal draws, each run from its own generator (:func:`run_generator`).

    Draws are buffered a block at a time per run; a generator fills arrays in order, so the
    values are exactly those of drawing one at a time (run 0 reproduces the single run)."""

    def __init__(self, seed: int, runs: range | None):
        self.single = runs is None
        self.gens = [run_generator(seed, i) for i in (range(1) if runs is None else runs)]
        n = len(self.gens)
        self.block = max(4, min(256, (1 << 20) // n))
        self.buf = np.empty((n, 0))
        self.pos = 0

    def take(self, size: int) -> np.ndarray:
        """The next ``size`` draws of every run: shape ``(N, size)`` (``(size,)`` if single)."""
        if self.pos + size > self.buf.shape[1]:
            fresh = np.stack([g.standard_normal(max(self.block, size)) for g in self.gens])
            self.buf = np.concatenate([self.buf[:, self.pos:], fresh], axis=1)
            self.pos = 0
        out = self.buf[:, self.pos:self.pos + size]
        self.pos += size
        return out[0] if self.single else out


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
    reproducible and changing σ does not change which samples are drawn. For a batch of
    runs (``runs``, the range of their indices; points of shape ``(len(runs), 2)``) every
    run has its own generators, derived from the seed and the run's index
    (:func:`run_generator`); run 0 draws exactly what a single run (``runs=None``) draws.
    """

    def __init__(self, surface: Surface, sigma: float, seed: int, batch: int = 0,
                 runs: range | None = None):
        self.surface = surface
        self.sigma = float(sigma)
        self.noise = _NormalStreams(seed, runs) if self.sigma > 0 else None
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
            self.single = runs is None
            self.batch_rngs = [run_generator(seed, i, (0xBA7C,))
                               for i in (range(1) if runs is None else runs)]
            self._order = np.empty((len(self.batch_rngs), 0), dtype=int)
            self._pos = 0
            self.epoch = 0

    @property
    def exact(self) -> bool:
        """True when the gradients handed out are the surface's own (no noise, full batch)."""
        return self.sigma == 0 and not self.batch

    def next_batch(self) -> np.ndarray | None:
        """Draw the mini-batch for the next step (``None`` when running full batch): sample
        indices of shape ``(B,)``, or ``(runs, B)`` for a batch of runs."""
        if not self.batch:
            return None
        if self._pos >= self._order.shape[1]:
            self._order = np.stack([r.permutation(self.n_samples) for r in self.batch_rngs])
            self._pos = 0
            self.epoch += 1
        idx = self._order[:, self._pos : self._pos + self.batch]
        self.idx = idx[0] if self.single else idx
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
        if self.noise is not None:
            g = g + self.sigma * self.noise.take(np.shape(g)[-1])
        return g

    def hessian(self, p):
        return self.surface.hessian(p)

    def jvp(self, p, v):
        if self.idx is None:
            d = self.surface.jvp(p, v)
        else:
            gv = self._grad(p) * v
            d = gv[..., 0] + gv[..., 1]
        if self.noise is not None:
            d = d + self.sigma * self.noise.take(1)[..., 0]
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
    # evals[k]: surface evaluations used by step k (line-search trials included; 0 at k = 0)
    evals: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=int), repr=False)
    # lrs[k]: the learning rate step k ran with (its schedule's η_k; NaN at k = 0 and for
    # rules without a learning rate); clipped[k]: clip_norm/clip_value changed g_k
    lrs: np.ndarray = field(default_factory=lambda: np.full(1, np.nan), repr=False)
    clipped: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=bool), repr=False)

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


def check_load(runs: int, steps: int) -> None:
    """ValueError saying so if ``runs`` trajectories of ``steps`` steps are more than one
    process should record (see :data:`MAX_RUNS` and :data:`MAX_TOTAL_STEPS`)."""
    if runs > MAX_RUNS:
        raise ValueError(f"at most {MAX_RUNS} optimizers at once, got {runs}")
    if runs * steps > MAX_TOTAL_STEPS:
        raise ValueError(
            f"{runs} optimizers × {steps:,} steps = {runs * steps:,} steps is more than the "
            f"{MAX_TOTAL_STEPS:,} steps in all one run of optgui records (about "
            f"{MAX_TOTAL_STEPS * STEP_BYTES / 1e9:.1g} GB); use fewer steps or optimizers")


def divergence_limit(surface: Surface) -> tuple[np.ndarray, float]:
    x0, x1, y0, y1 = surface.view
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    radius = max(DIVERGENCE_FLOOR, DIVERGENCE_FACTOR * max(x1 - x0, y1 - y0))
    return centre, radius


# Why a run stopped, by code (0: it did not).
REASONS = (
    "",
    "the point became NaN/inf",
    "the point left the box of radius {radius:g}",
    "the loss or gradient became NaN/inf",
    "the surface is not defined at the start point",
    "the update failed: {error}",
)
OK, NAN_POINT, LEFT_BOX, NAN_LOSS, BAD_START, UPDATE_FAILED = range(6)


@dataclass
class _Runs:
    """What stepping one run or a batch of runs needs; :meth:`advance` is the one step both
    :func:`run_trajectory` and :func:`run_batch` take."""

    surface: Surface
    opt: Any
    oracle: NoisyOracle
    centre: np.ndarray
    radius: float
    spec: RunSpec | None = None
    overrides: dict[str, Any] = field(default_factory=dict)  # per-run hyperparameters
    steps: int = 0  # the run's length (T_max = 0 / total_steps = 0 mean it)

    def __post_init__(self) -> None:
        self._cx, self._cy = (float(c) for c in self.centre)
        values = self.spec.resolved() if self.spec is not None else {}
        self.values = values
        self.own = {h.name for h in self.spec.spec.hypers} if self.spec is not None else set()
        self.scheduled = values.get("schedule", "none") != "none"
        self.clip_norm = values.get("clip_norm", 0.0)
        self.clip_value = values.get("clip_value", 0.0)
        lr = self.overrides.get("lr", values.get("lr")) if "lr" in self.own else np.nan
        self.base_lr = lr
        self.lr = lr  # the learning rate of the last step taken
        self.fired: Any = False  # whether clipping changed the last step's gradient

    def rule(self, k: int):
        """The rule of step k: a schedule sets η_k (and OneCycleLR's momentum) before it,
        as torch's schedulers rewrite the optimizer's lr; otherwise the one rule."""
        if not self.scheduled:
            return self.opt
        values = dict(self.values)
        if "lr" in self.overrides:
            values["lr"] = self.overrides["lr"]
        sched = schedules.overrides_at(values, self.own, k - 1, self.steps)
        self.lr = sched.get("lr", self.base_lr)
        return build_optimizer(self.spec, {**self.overrides, **sched})

    def evaluate(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Loss and true gradient at ``w``, and a code per run (None when all are fine)."""
        loss = self.surface.value(w)
        grad = self.surface.grad(w)
        if w.ndim == 1:  # one run: the same checks on Python floats, which is faster
            x, y = w.tolist()
            gx, gy = grad.tolist()
            if not (math.isfinite(x) and math.isfinite(y)):
                return loss, grad, NAN_POINT
            if max(abs(x - self._cx), abs(y - self._cy)) > self.radius:
                return loss, grad, LEFT_BOX
            if not (math.isfinite(loss) and math.isfinite(gx) and math.isfinite(gy)):
                return loss, grad, NAN_LOSS
            return loss, grad, None
        # (by hand over the two coordinates: numpy reduces a last axis of length 2 slowly)
        far = np.maximum(np.abs(w[..., 0] - self.centre[0]), np.abs(w[..., 1] - self.centre[1]))
        fine = (far <= self.radius) & np.isfinite(loss)
        fine &= np.isfinite(grad[..., 0]) & np.isfinite(grad[..., 1])
        if fine.all():
            return loss, grad, None
        codes = np.where(
            ~(np.isfinite(w[..., 0]) & np.isfinite(w[..., 1])), NAN_POINT,
            np.where(far > self.radius, LEFT_BOX, np.where(fine, OK, NAN_LOSS)),
        )
        return loss, grad, codes

    def advance(self, w, state, true_grad, k: int = 1):
        """Step k from ``w`` (true gradient ``true_grad``): returns the mini-batch, the
        gradient fed to the rule, its update and new state, the new point, its loss and
        gradient and the codes of :meth:`evaluate`. An exception from the rule propagates.
        Clipping (clip_value, then clip_norm) acts on the gradient before the rule sees it;
        :attr:`lr` and :attr:`fired` tell the step's learning rate and whether it clipped."""
        idx = self.oracle.next_batch()
        # an exact oracle's gradient at w is the one recorded for w a step ago
        g = true_grad if self.oracle.exact else self.oracle.grad(w)
        if self.clip_norm or self.clip_value:
            g, self.fired = schedules.clip(g, self.clip_norm, self.clip_value)
        upd, new_state = self.rule(k).update(g, state, w, self.oracle)
        w_new = w + upd
        loss, grad, codes = self.evaluate(w_new)
        return idx, g, upd, new_state, w_new, loss, grad, codes


def _point_text(w: np.ndarray) -> str:
    """``(-2.76, 1)`` for messages: plain numbers, never numpy's ``np.float64(...)`` repr."""
    return "(" + ", ".join(f"{float(v):.6g}" for v in w) + ")"


def _check_steps(steps: int) -> int:
    steps = int(steps)
    if not 0 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be between 0 and {MAX_STEPS}, got {steps}")
    return steps


def _setup(surface: Surface, spec: RunSpec, overrides: dict[str, Any] | None = None,
           runs: range | None = None, steps: int = 0) -> _Runs:
    values = spec.resolved()
    oracle = NoisyOracle(surface, values.get("noise", 0.0), values.get("seed", 0),
                         values.get("batch", 0), runs)
    centre, radius = divergence_limit(surface)
    return _Runs(surface, build_optimizer(spec, overrides), oracle, centre, radius, spec,
                 dict(overrides or {}), steps)


def _reason(code: int, radius: float, error: str = "") -> str:
    return REASONS[code].format(radius=radius, error=error)


def run_trajectory(
    surface: Surface, spec: RunSpec, start: Sequence[float], steps: int
) -> Trajectory:
    """Run ``spec`` on ``surface`` from ``start`` for ``steps`` steps and record everything.

    A single run is a batch with no leading axis: the same rules and the same step
    (:meth:`_Runs.advance`) as :func:`run_batch`, on a point of shape ``(2,)``.
    """
    steps = _check_steps(steps)
    w = np.asarray(start, dtype=float).reshape(2)
    if not np.all(np.isfinite(w)):
        raise ValueError(f"start point must be finite, got {_point_text(w)}")
    runs = _setup(surface, spec, steps=steps)

    state = runs.opt.init(w)
    nan2 = np.full(2, np.nan)
    points, losses, grads = [w], [float(surface.value(w))], [surface.grad(w)]
    used, updates, states = [nan2], [np.zeros(2)], [state]
    batches: list[np.ndarray] = []
    evals, lrs, clipped = [0], [np.nan], [False]
    diverged_at, reason = None, ""
    if not (np.isfinite(losses[0]) and np.all(np.isfinite(grads[0]))):
        raise ValueError(f"the surface is not defined at the start point {_point_text(w)}")

    with np.errstate(all="ignore"):
        for k in range(1, steps + 1):
            try:
                idx, g, upd, new_state, w_new, loss, true_grad, codes = runs.advance(
                    w, state, grads[-1], k)
            except (FloatingPointError, np.linalg.LinAlgError, OverflowError) as exc:
                diverged_at, reason = k, _reason(UPDATE_FAILED, runs.radius, str(exc))
                break
            if codes is not None:
                diverged_at, reason = k, _reason(int(codes), runs.radius)
                break
            w, state = w_new, new_state
            points.append(w)
            losses.append(float(loss))
            grads.append(true_grad)
            used.append(np.asarray(g, dtype=float))
            updates.append(np.asarray(upd, dtype=float))
            states.append(state)
            evals.append(int(getattr(state, "evals", 1)))
            lrs.append(float(runs.lr))
            clipped.append(bool(runs.fired))
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
        evals=np.array(evals, dtype=int),
        lrs=np.array(lrs, dtype=float),
        clipped=np.array(clipped, dtype=bool),
    )


# ----------------------------------------------------------------------------- batches


@dataclass(frozen=True)
class BatchResult:
    """The outcome of every run of :func:`run_batch`; index ``i`` is run ``i``.

    ``points[i]``, ``losses[i]`` and ``grad_norms[i]`` describe the run's last point (for a
    diverged run, the last point before it diverged: every number here is finite unless
    the run diverged at its start). ``steps[i]`` counts the steps it took (the requested
    number unless it diverged), ``steps_to_tol[i]`` is the first step k ≥ 0 whose true
    gradient norm ‖∇f(w_k)‖₂ was below ``tol`` (−1 if never, or if no ``tol`` was given),
    ``diverged_at[i]`` the step that diverged (−1 if none; 0: the surface is undefined at
    the start) and ``codes[i]`` why (an index into :data:`REASONS`). ``hypers`` holds the
    per-run hyperparameter values given, and ``paths`` (only with ``keep_path=True``) every
    point, shape ``(steps + 1, N, 2)``, frozen after a run diverged.
    """

    spec: RunSpec
    surface: str
    starts: np.ndarray
    points: np.ndarray
    losses: np.ndarray
    grad_norms: np.ndarray
    steps: np.ndarray
    steps_to_tol: np.ndarray
    diverged_at: np.ndarray
    codes: np.ndarray
    requested_steps: int
    tol: float | None = None
    hypers: dict[str, np.ndarray] = field(default_factory=dict)
    paths: np.ndarray | None = field(default=None, repr=False)
    radius: float = DIVERGENCE_FLOOR

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def diverged(self) -> np.ndarray:
        return self.diverged_at >= 0

    def reason(self, i: int) -> str:
        """Why run ``i`` diverged, in words ("" if it did not)."""
        return _reason(int(self.codes[i]), self.radius)


CHUNK = 8192  # runs stepped together: their arrays stay in the CPU's cache


class BatchCancelled(Exception):
    """:func:`run_batch` was stopped by its ``progress`` callback."""


def default_workers() -> int:
    """Threads for :func:`run_batch`: the machine's cores, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def run_batch(
    surface: Surface,
    spec: RunSpec,
    starts: Any,
    steps: int,
    *,
    tol: float | None = None,
    keep_path: bool = False,
    hyper_overrides: dict[str, Any] | None = None,
    chunk: int = CHUNK,
    workers: int | None = None,
    progress: Callable[[int, int], bool | None] | None = None,
    first: int = 0,
) -> BatchResult:
    """Run ``spec`` from every start at once, vectorized over the runs.

    ``starts`` has shape ``(N, 2)``; a single start ``(2,)`` or ``(x, y)`` is broadcast to
    every run when ``hyper_overrides`` sets ``N``. ``hyper_overrides`` maps a float
    hyperparameter of ``spec`` (``"lr"``, ``"momentum"``, ``"beta1"``, …; ``"base.lr"`` for
    SAM/ASAM's base) to one value per run, shape ``(N,)``, for hyperparameter sweeps; the
    spec's own value is used for the others. Each run is what :func:`run_trajectory` gives
    from that start with those values, bit for bit: the same rule and the same step. Run 0
    draws the same noise, mini-batches and random directions as the single run; run i > 0
    draws from its own generators, derived from the seed and i (:func:`run_generator`).
    A run that diverges stops there (its last finite point is kept); the others go on.

    Memory stays O(N) unless ``keep_path`` asks for every point (O(steps·N)). ``tol`` fills
    :attr:`BatchResult.steps_to_tol`. The runs are stepped ``chunk`` at a time, the chunks
    on ``workers`` threads (default :func:`default_workers`); neither changes any number,
    they only keep the arrays in cache and the cores busy. ``progress(done, total)`` is
    called (in the calling thread) each time a chunk of runs is finished; returning
    ``False`` stops the batch: :class:`BatchCancelled` is raised once the chunks already
    under way are done (pass a smaller ``chunk`` for finer progress and quicker stops).
    ``first`` numbers the runs from ``first`` on (their generators are those of runs
    ``first …`` of one larger batch), so a caller computing a big batch piece by piece
    (:mod:`engine.maps`) keeps every run's streams distinct. Example, a basin map::

        xs, ys = np.meshgrid(np.linspace(-5, 5, 256), np.linspace(-5, 5, 256))
        res = run_batch(get_surface("himmelblau"), parse_spec("adam(lr=0.05)"),
                        np.stack([xs.ravel(), ys.ravel()], -1), 500, tol=1e-6)
        res.points.reshape(256, 256, 2)  # where each start ended
    """
    steps = _check_steps(steps)
    overrides = {}
    n = None
    for name, values in (hyper_overrides or {}).items():
        arr = per_run_values(spec, name, values)
        if n is not None and len(arr) != n:
            raise ValueError(f"every hyper_overrides array needs the same length ({n}), "
                             f"{name} has {len(arr)}")
        n = len(arr)
        overrides[name] = arr
    w = np.asarray(starts, dtype=float)
    if w.ndim == 1 and w.size == 2 and n is not None:
        w = np.broadcast_to(w, (n, 2))
    if w.ndim != 2 or w.shape[1] != 2 or len(w) == 0:
        raise ValueError(f"starts must have shape (N, 2), got {np.shape(starts)}")
    if n is not None and len(w) != n:
        raise ValueError(f"{len(w)} starts but {n} values per hyperparameter")
    if not np.all(np.isfinite(w)):
        raise ValueError("every start point must be finite")
    n = len(w)
    # a rule drawing random directions draws one array per step for all runs (run i's is
    # row i), so it runs in one piece to keep run i's numbers independent of the chunking
    chunk = n if _draws_directions(spec) else max(1, int(chunk))
    def part(i: int) -> dict[str, Any]:
        return _run_chunk(surface, spec, np.array(w[i:i + chunk]), steps, tol, keep_path,
                          {k: v[i:i + chunk] for k, v in overrides.items()}, first=first + i)

    firsts = range(0, n, chunk)
    workers = min(len(firsts), max(1, int(workers if workers is not None else default_workers())))
    parts: list[dict[str, Any]] = []

    def report(done: dict[str, Any]) -> None:
        parts.append(done)
        if progress is not None and progress(min(n, len(parts) * chunk), n) is False:
            raise BatchCancelled(f"cancelled after {len(parts) * chunk} of {n} runs")

    if workers == 1:
        for i in firsts:
            report(part(i))
    else:  # numpy releases the GIL inside its loops: chunks run in parallel on the cores
        pool = ThreadPoolExecutor(max_workers=workers)
        try:
            for done in pool.map(part, firsts):
                report(done)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    joined = {key: np.concatenate([p[key] for p in parts]) for key in parts[0] if key != "paths"}
    return BatchResult(
        spec=spec, surface=surface.name, starts=np.array(w), requested_steps=steps, tol=tol,
        hypers={k: v.reshape(-1) for k, v in overrides.items()},
        paths=np.concatenate([p["paths"] for p in parts], axis=1) if keep_path else None,
        radius=divergence_limit(surface)[1], **joined,
    )


def _draws_directions(spec: RunSpec) -> bool:
    values = spec.resolved()
    return bool(spec.spec.estimates_gradient) or any(
        isinstance(v, RunSpec) and _draws_directions(v) for v in values.values())


def _run_chunk(surface, spec, w, steps, tol, keep_path, overrides, first):
    """Runs ``first … first + len(w) − 1`` of a batch; the arrays of a BatchResult."""
    n = len(w)
    runs = _setup(surface, spec, overrides, runs=range(first, first + n), steps=steps)
    state = runs.opt.init(w)
    with np.errstate(all="ignore"):
        loss, grad, codes = runs.evaluate(w)
    diverged_at = np.full(n, -1)
    reason = np.zeros(n, dtype=np.int8)
    taken = np.zeros(n, dtype=int)
    if codes is not None:  # undefined at the start: diverged at step 0
        bad = codes != OK
        diverged_at[bad], reason[bad] = 0, BAD_START
    alive = diverged_at < 0
    steps_to_tol = np.full(n, -1)
    def below_tol(g):
        return run_norms(g)[:, 0] < tol

    if tol is not None:
        steps_to_tol[alive & below_tol(grad)] = 0
    paths = np.empty((steps + 1, n, 2)) if keep_path else None
    if paths is not None:
        paths[0] = w

    with np.errstate(all="ignore"):
        for k in range(1, steps + 1):
            if not alive.any():
                if paths is not None:
                    paths[k:] = w
                break
            try:
                _, _, _, state, w_new, loss_new, grad_new, codes = runs.advance(
                    w, state, grad, k)
            except (FloatingPointError, np.linalg.LinAlgError, OverflowError):
                diverged_at[alive], reason[alive] = k, UPDATE_FAILED
                alive = np.zeros(n, dtype=bool)
                continue
            if codes is None and alive.all():
                w, loss, grad = w_new, loss_new, grad_new
            else:
                ok = alive if codes is None else alive & (codes == OK)
                if codes is not None:
                    newly = alive & ~ok
                    diverged_at[newly], reason[newly] = k, codes[newly]
                alive = ok
                w = np.where(ok[:, None], w_new, w)
                loss = np.where(ok, loss_new, loss)
                grad = np.where(ok[:, None], grad_new, grad)
            taken[alive] = k
            if tol is not None:
                hit = alive & (steps_to_tol < 0)
                if hit.any():
                    hit &= below_tol(grad)
                    steps_to_tol[hit] = k
            if paths is not None:
                paths[k] = w

    return {
        "points": w, "losses": np.asarray(loss, dtype=float),
        "grad_norms": run_norms(grad)[:, 0], "steps": taken, "steps_to_tol": steps_to_tol,
        "diverged_at": diverged_at, "codes": reason, "paths": paths,
    }

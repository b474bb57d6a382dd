"""Basin maps and hyperparameter phase diagrams: thousands of runs, one picture.

* A **basin map** runs one optimizer from every cell centre of an ``N × N`` grid over a
  view and records where each run ends: which known minimum (if any), how many steps it
  took to converge, whether it diverged.
* A **phase diagram** runs it from one start with one or two hyperparameters swept over a
  grid of values (linear, or log-spaced with ``:log``) and records the final loss.

Both are :func:`compute_map` on a :class:`MapRequest`. Runs are stepped together with
:func:`engine.run_batch` (vectorized over runs), a piece of runs at a time, so a caller can
show progress and cancel between pieces, and memory stays O(N): only the final state of
each run is kept, never its path. :func:`coarse_to_fine` computes a small map first (32²)
and then the requested one, for a window that wants something on screen at once.

Where theory gives one, :func:`stability` returns the analytic stability boundary of the
sweep (gradient descent: η·λ_max < 2; heavy ball: η·λ < 2(1+β) for every Hessian eigenvalue
λ of a quadratic) and :func:`boundary_lines` the curve to draw on the phase diagram.

Pure numpy, no Qt::

    >>> from engine import get_surface, parse_spec
    >>> req = MapRequest(get_surface("himmelblau"), parse_spec("adam(lr=0.05)"), steps=200,
    ...                  grid=16)
    >>> res = compute_map(req)
    >>> res.shape, sorted(set(res.minimum.tolist()))
    ((16, 16), [0, 1, 2, 3])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.optimizers.registry import per_run_values
from engine.spec import RunSpec
from engine.surfaces import Surface
from engine.trajectory import MAX_STEPS, default_workers, run_batch

BASIN, PHASE = "basin", "phase"
MAX_GRID = 1024  # cells per side of a basin map
MAX_SWEEP = 1024  # values per swept hyperparameter
MAX_CELLS = 1 << 20  # runs in one map (1024²): about 80 MB of results
COARSE = 32  # cells per side of the first, quick map of coarse_to_fine
PIECE = 4096  # runs per piece (between two progress reports) and per thread
MINIMUM_RADIUS = 0.01  # a run ends "at" a minimum within this fraction of the view's size

Progress = Callable[[int, int], bool]  # (runs done, runs in all) -> False to cancel


# ----------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class Sweep:
    """One swept hyperparameter: ``n`` values from ``lo`` to ``hi`` (both included),
    evenly spaced, or evenly spaced in log10 when ``log``."""

    name: str
    lo: float
    hi: float
    n: int
    log: bool = False

    def values(self) -> np.ndarray:
        if self.log:
            return np.geomspace(self.lo, self.hi, self.n)
        return np.linspace(self.lo, self.hi, self.n)

    def __str__(self) -> str:
        return f"{self.name}={self.lo:g}:{self.hi:g}:{self.n}" + (":log" if self.log else "")


def parse_sweep(text: str) -> Sweep:
    """``"lr=0.02:1.0:50"`` or ``"lr=1e-3:1:40:log"`` → :class:`Sweep` (ValueError if not)."""
    form = "name=lo:hi:n or name=lo:hi:n:log (e.g. lr=0.02:1.0:50)"
    name, eq, rest = text.partition("=")
    name = name.strip()
    if not eq or not name:
        raise ValueError(f"--sweep must be {form}, got {text!r}")
    parts = [p.strip() for p in rest.split(":")]
    log = len(parts) == 4 and parts[3].lower() == "log"
    if len(parts) not in (3, 4) or (len(parts) == 4 and not log):
        raise ValueError(f"--sweep must be {form}, got {text!r}")
    try:
        lo, hi = float(parts[0]), float(parts[1])
        n = int(parts[2])
    except ValueError:
        raise ValueError(f"--sweep must be {form}, got {text!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"--sweep {name}: the bounds must be finite numbers, got {text!r}")
    if not 2 <= n <= MAX_SWEEP:
        raise ValueError(f"--sweep {name}: the number of values must be between 2 and "
                         f"{MAX_SWEEP}, got {n}")
    if lo == hi:
        raise ValueError(f"--sweep {name}: lo and hi must differ, got {text!r}")
    if log and (lo <= 0 or hi <= 0):
        raise ValueError(f"--sweep {name}: a log sweep needs positive bounds, got {text!r}")
    return Sweep(name, lo, hi, n, log)


@dataclass(frozen=True)
class MapRequest:
    """What to compute. ``sweeps`` empty: a basin map on a ``grid × grid`` lattice of starts
    over ``view`` (default: the surface's); one or two sweeps: a phase diagram from
    ``start`` (default: the surface's), the first sweep along x, the second along y.
    ``tol`` is the gradient norm below which a run counts as converged."""

    surface: Surface
    spec: RunSpec
    steps: int = 500
    grid: int = 256
    view: tuple[float, float, float, float] | None = None
    start: tuple[float, float] | None = None
    sweeps: tuple[Sweep, ...] = ()
    tol: float = 1e-6

    @property
    def kind(self) -> str:
        return PHASE if self.sweeps else BASIN

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of the map: rows along y, columns along x."""
        if not self.sweeps:
            return (self.grid, self.grid)
        if len(self.sweeps) == 1:
            return (1, self.sweeps[0].n)
        return (self.sweeps[1].n, self.sweeps[0].n)

    def cells(self) -> int:
        rows, cols = self.shape
        return rows * cols

    def at_size(self, n: int) -> MapRequest:
        """The same map with ``n`` cells per side (every sweep resampled to ``n`` values)."""
        from dataclasses import replace

        if not self.sweeps:
            return replace(self, grid=n)
        return replace(self, sweeps=tuple(replace(s, n=n) for s in self.sweeps))


def check_request(req: MapRequest) -> MapRequest:
    """ValueError with a one-line reason if ``req`` cannot be computed; else ``req``."""
    if not 0 <= int(req.steps) <= MAX_STEPS:
        raise ValueError(f"steps must be between 0 and {MAX_STEPS}, got {req.steps}")
    if not (req.tol > 0 and math.isfinite(req.tol)):
        raise ValueError(f"tol must be a positive number, got {req.tol}")
    if len(req.sweeps) > 2:
        raise ValueError(f"at most two swept hyperparameters, got {len(req.sweeps)}")
    if not req.sweeps:
        if not 2 <= req.grid <= MAX_GRID:
            raise ValueError(f"grid must be between 2 and {MAX_GRID}, got {req.grid}")
        x0, x1, y0, y1 = view_of(req)
        if not all(math.isfinite(v) for v in (x0, x1, y0, y1)) or x0 >= x1 or y0 >= y1:
            raise ValueError(f"view must be x0,x1,y0,y1 with x0 < x1 and y0 < y1, "
                             f"got {x0:g},{x1:g},{y0:g},{y1:g}")
    else:
        names = [s.name for s in req.sweeps]
        if len(set(names)) != len(names):
            raise ValueError(f"{names[0]} is swept twice")
        for s in req.sweeps:
            try:
                per_run_values(req.spec, s.name, s.values())  # names and ranges
            except ValueError as exc:
                raise ValueError(f"sweep {s}: {exc}") from None
        start = start_of(req)
        if not all(math.isfinite(v) for v in start):
            raise ValueError(f"start must be finite, got {start}")
    if req.cells() > MAX_CELLS:
        raise ValueError(f"{req.cells():,} runs is more than the {MAX_CELLS:,} one map holds")
    return req


def view_of(req: MapRequest) -> tuple[float, float, float, float]:
    return tuple(float(v) for v in (req.view or req.surface.view))


def start_of(req: MapRequest) -> tuple[float, float]:
    return tuple(float(v) for v in (req.start or req.surface.start))


def cell_centres(lo: float, hi: float, n: int) -> np.ndarray:
    """The centres of ``n`` equal cells covering [lo, hi]."""
    return lo + (np.arange(n) + 0.5) * ((hi - lo) / n)


def axes_of(req: MapRequest) -> tuple[np.ndarray, np.ndarray]:
    """The map's x values (one per column) and y values (one per row)."""
    if not req.sweeps:
        x0, x1, y0, y1 = view_of(req)
        return cell_centres(x0, x1, req.grid), cell_centres(y0, y1, req.grid)
    xs = req.sweeps[0].values()
    ys = req.sweeps[1].values() if len(req.sweeps) == 2 else np.zeros(1)
    return xs, ys


def known_minima(surface: Surface) -> np.ndarray:
    """The minima a map tells apart, shape (M, 2): the global ones, then the local ones
    (``minimum`` indexes into this)."""
    pts = [*surface.minima, *getattr(surface, "local_minima", ())]
    return np.array(pts, dtype=float).reshape(-1, 2)


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class MapResult:
    """One run per cell, flattened row by row (row = y, column = x); ``shape`` un-flattens.

    ``starts`` (N, 2) and ``hypers`` (name → (N,)) say what each run was; ``points`` (N, 2)
    and ``losses`` (N,) where it ended (the last finite point if it diverged);
    ``steps_to_tol`` the first step whose gradient norm was below ``tol`` (−1: never);
    ``minimum`` the index into :func:`known_minima` of the minimum it ended at (−1: none);
    ``diverged`` whether it diverged."""

    request: MapRequest
    xs: np.ndarray
    ys: np.ndarray
    starts: np.ndarray
    hypers: dict[str, np.ndarray]
    points: np.ndarray
    losses: np.ndarray
    steps_to_tol: np.ndarray
    minimum: np.ndarray
    diverged: np.ndarray
    minima: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 2)))

    @property
    def kind(self) -> str:
        return self.request.kind

    @property
    def shape(self) -> tuple[int, int]:
        return self.request.shape

    def grid(self, values: np.ndarray) -> np.ndarray:
        """A per-run array as an image: shape (rows, columns)."""
        return np.asarray(values).reshape(self.shape)

    def cell(self, row: int, col: int) -> int:
        return int(row) * self.shape[1] + int(col)

    def cell_at(self, x: float, y: float) -> tuple[int, int] | None:
        """The (row, column) of the cell nearest to (x, y) in the map's axes (log10 of a
        log sweep's values), or None outside the map."""
        xs, ys = plot_axes(self.request)
        col = _nearest(xs, x)
        row = _nearest(ys, y) if len(ys) > 1 else 0
        if col is None or row is None:
            return None
        return row, col

    def setting(self, row: int, col: int) -> dict:
        """What one cell's run was: ``{"start": (x, y)}`` for a basin map, the swept
        hyperparameters' values (``{"lr": 0.3, "momentum": 0.5}``) for a phase diagram."""
        i = self.cell(row, col)
        if self.kind == BASIN:
            return {"start": (float(self.starts[i, 0]), float(self.starts[i, 1]))}
        return {name: float(v[i]) for name, v in self.hypers.items()}


def _nearest(axis: np.ndarray, v: float) -> int | None:
    if len(axis) == 1:
        return 0
    step = abs(axis[1] - axis[0])
    lo, hi = min(axis[0], axis[-1]) - step / 2, max(axis[0], axis[-1]) + step / 2
    if not lo <= v <= hi:
        return None
    return int(np.argmin(np.abs(axis - v)))


def plot_axes(req: MapRequest) -> tuple[np.ndarray, np.ndarray]:
    """The axes as drawn: a log sweep's values as log10."""
    xs, ys = axes_of(req)
    if req.sweeps and req.sweeps[0].log:
        xs = np.log10(xs)
    if len(req.sweeps) == 2 and req.sweeps[1].log:
        ys = np.log10(ys)
    return xs, ys


def _runs_of(req: MapRequest) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    xs, ys = axes_of(req)
    X, Y = np.meshgrid(xs, ys)
    if not req.sweeps:
        return np.stack([X.ravel(), Y.ravel()], -1), {}
    hypers = {req.sweeps[0].name: X.ravel()}
    if len(req.sweeps) == 2:
        hypers[req.sweeps[1].name] = Y.ravel()
    n = X.size
    return np.broadcast_to(np.array(start_of(req)), (n, 2)).copy(), hypers


def classify(points: np.ndarray, minima: np.ndarray, view, diverged=None) -> np.ndarray:
    """Index of the known minimum each point is within :data:`MINIMUM_RADIUS` × the view's
    size of (the nearest one), −1 if none (or if diverged)."""
    out = np.full(len(points), -1)
    if len(minima) == 0:
        return out
    x0, x1, y0, y1 = view
    radius = MINIMUM_RADIUS * max(x1 - x0, y1 - y0)
    d = np.hypot(points[:, None, 0] - minima[None, :, 0], points[:, None, 1] - minima[None, :, 1])
    nearest = np.argmin(d, axis=1)
    close = d[np.arange(len(points)), nearest] <= radius
    if diverged is not None:
        close &= ~diverged
    out[close] = nearest[close]
    return out


def compute_map(req: MapRequest, progress: Progress | None = None, *,
                piece: int = PIECE, workers: int | None = None) -> MapResult | None:
    """Compute the map of ``req``; ``None`` if ``progress`` returned False (cancelled).

    Runs are stepped ``workers × piece`` at a time (``workers`` threads, default
    :func:`engine.trajectory.default_workers`); ``progress(done, total)`` is called after
    every such piece, and before the first. Each run is :func:`engine.run_trajectory`'s
    run from that start with those hyperparameters; run i draws its own noise (run index
    i of the whole map). Memory: O(cells), never O(cells × steps)."""
    check_request(req)
    starts, hypers = _runs_of(req)
    n = len(starts)
    workers = max(1, int(workers if workers is not None else default_workers()))
    per_call = max(1, int(piece)) * workers
    points = np.empty((n, 2))
    losses = np.empty(n)
    to_tol = np.empty(n, dtype=int)
    diverged = np.empty(n, dtype=bool)
    if progress is not None and progress(0, n) is False:
        return None
    for i in range(0, n, per_call):
        j = min(n, i + per_call)
        res = run_batch(req.surface, req.spec, starts[i:j], req.steps, tol=req.tol,
                        hyper_overrides={k: v[i:j] for k, v in hypers.items()} or None,
                        chunk=piece, workers=workers, first=i)
        points[i:j], losses[i:j] = res.points, res.losses
        to_tol[i:j], diverged[i:j] = res.steps_to_tol, res.diverged
        if progress is not None and progress(j, n) is False:
            return None
    minima = known_minima(req.surface)
    xs, ys = axes_of(req)
    return MapResult(req, xs, ys, starts, hypers, points, losses, to_tol,
                     classify(points, minima, req.surface.view, diverged), diverged, minima)


def coarse_to_fine(req: MapRequest, progress: Progress | None = None,
                   coarse: int = COARSE) -> Iterator[MapResult]:
    """Yield a quick ``coarse``-per-side map first (when ``req`` is larger), then ``req``'s;
    stops early when ``progress`` cancels. The coarse map's progress is not reported."""
    rows, cols = req.shape
    if max(rows, cols) > coarse:
        first = compute_map(req.at_size(coarse))
        if first is None:
            return
        yield first
        if progress is not None and progress(0, req.cells()) is False:
            return
    res = compute_map(req, progress)
    if res is not None:
        yield res


# ----------------------------------------------------------------------------- CSV


def map_csv(res: MapResult) -> str:
    """One row per run: start_w1, start_w2, the swept hyperparameters, w1, w2, loss,
    steps_to_tol (empty if never), minimum (empty if none), diverged (true/false)."""
    names = list(res.hypers)
    lines = [",".join(["start_w1", "start_w2", *names, "w1", "w2", "loss", "steps_to_tol",
                       "minimum", "diverged"])]
    cols = [res.hypers[k] for k in names]
    for i in range(len(res.starts)):
        row = [repr(float(res.starts[i, 0])), repr(float(res.starts[i, 1]))]
        row += [repr(float(c[i])) for c in cols]
        row += [repr(float(res.points[i, 0])), repr(float(res.points[i, 1])),
                repr(float(res.losses[i])),
                str(int(res.steps_to_tol[i])) if res.steps_to_tol[i] >= 0 else "",
                str(int(res.minimum[i])) if res.minimum[i] >= 0 else "",
                "true" if res.diverged[i] else "false"]
        lines.append(",".join(row))
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- colours

# one hue per minimum (the playground's path colours' family), then grey and black
MINIMUM_COLORS = np.array([
    (0x4c, 0x9a, 0xff), (0xff, 0x9f, 0x40), (0x4c, 0xd9, 0x7b), (0xf2, 0x5c, 0x8c),
    (0xb3, 0x8c, 0xff), (0xff, 0xd9, 0x4c), (0x40, 0xd0, 0xe0), (0xd9, 0x8c, 0x5c),
], dtype=float)
NONE_COLOR = (0x8a, 0x8a, 0x8a)  # ended at no known minimum
DIVERGED_COLOR = (0x12, 0x12, 0x12)  # diverged
# viridis, sampled at 9 points (for the phase diagram's log10 loss)
_VIRIDIS = np.array([
    (68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141),
    (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37)], dtype=float)


def colormap(t: np.ndarray) -> np.ndarray:
    """Viridis at ``t`` in [0, 1]: uint8 RGB, shape t.shape + (3,)."""
    t = np.clip(np.nan_to_num(np.asarray(t, dtype=float)), 0, 1) * (len(_VIRIDIS) - 1)
    i = np.minimum(t.astype(int), len(_VIRIDIS) - 2)
    f = (t - i)[..., None]
    return np.round(_VIRIDIS[i] * (1 - f) + _VIRIDIS[i + 1] * f).astype(np.uint8)


def basin_rgb(res: MapResult) -> np.ndarray:
    """The basin map's picture, (rows, columns, 3) uint8: the colour of the minimum each
    start reaches, brighter the sooner it converged (to ``tol``), darkest if it never did;
    grey for no known minimum, near-black for diverged."""
    steps = max(1, res.request.steps)
    k = res.steps_to_tol
    shade = np.where(k >= 0, 1.0 - 0.55 * np.sqrt(np.clip(k, 0, steps) / steps), 0.35)
    base = MINIMUM_COLORS[np.maximum(res.minimum, 0) % len(MINIMUM_COLORS)]
    rgb = base * shade[:, None]
    rgb[res.minimum < 0] = NONE_COLOR
    rgb[res.diverged] = DIVERGED_COLOR
    return np.round(rgb).astype(np.uint8).reshape(*res.shape, 3)


def phase_values(res: MapResult, quantity: str = "loss") -> tuple[np.ndarray, str]:
    """The phase diagram's numbers per run and their label: log10 of the final loss
    (``"loss"``) or steps to tolerance (``"steps"``; NaN if never); NaN where diverged."""
    if quantity == "steps":
        v = np.where(res.steps_to_tol >= 0, res.steps_to_tol, np.nan).astype(float)
        label = f"steps to ‖∇f‖ < {res.request.tol:g}"
    else:
        f_min = min((float(res.request.surface.value(m)) for m in res.minima), default=0.0)
        with np.errstate(all="ignore"):
            v = np.log10(np.maximum(res.losses - min(f_min, 0.0), 1e-300))
        v = np.maximum(v, -16.0)
        label = "log₁₀ final loss"
    return np.where(res.diverged, np.nan, v), label


def phase_rgb(res: MapResult, quantity: str = "loss") -> tuple[np.ndarray, tuple[float, float]]:
    """The phase diagram's picture (rows, columns, 3) and the value range of its colours:
    viridis over :func:`phase_values` (low = dark), near-black where a run diverged or
    (steps) never converged."""
    v, _ = phase_values(res, quantity)
    finite = v[np.isfinite(v)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi - lo < 1e-12:
        hi = lo + 1.0
    rgb = colormap((v - lo) / (hi - lo)).reshape(-1, 3)
    rgb[~np.isfinite(v)] = DIVERGED_COLOR
    return rgb.reshape(*res.shape, 3), (lo, hi)


# ----------------------------------------------------------------------------- theory


@dataclass(frozen=True)
class Stability:
    """The analytic stability region of a linear rule on a quadratic: the run converges
    iff ``lr < lr_max(values)`` (for every Hessian eigenvalue; λ_max decides)."""

    rule: str  # "gd", "heavy ball", "ema momentum"
    lam_max: float
    condition: str  # in words, for the picture's legend

    def lr_max(self, values: dict) -> np.ndarray:
        """The largest stable learning rate for these (other) hyperparameter values."""
        lam = self.lam_max
        if self.rule == "gd":
            return np.asarray(2.0 / lam)
        if self.rule == "nesterov":
            mu = np.asarray(values["momentum"], dtype=float)
            return 2.0 * (1.0 + mu) / (lam * (1.0 + 2.0 * mu))
        if self.rule == "heavy ball":
            mu = np.asarray(values["momentum"], dtype=float)
            damp = np.asarray(values.get("dampening", 0.0), dtype=float)
            with np.errstate(divide="ignore"):
                return 2.0 * (1.0 + mu) / (lam * (1.0 - damp))
        beta = np.asarray(values["beta"], dtype=float)  # course EMA momentum
        with np.errstate(divide="ignore"):
            return 2.0 * (1.0 + beta) / (lam * (1.0 - beta))

    def stable(self, values: dict) -> np.ndarray:
        return np.asarray(values["lr"]) < self.lr_max(values)


def constant_hessian(surface: Surface) -> np.ndarray | None:
    """The Hessian if ``surface`` is a quadratic (the same at a few points of its view)."""
    x0, x1, y0, y1 = surface.view
    pts = np.array([[x0, y0], [x1, y1], [(x0 + x1) / 2, (y0 + y1) / 2], [x0, y1],
                    [0.3 * x0 + 0.7 * x1, 0.8 * y0 + 0.2 * y1]])
    try:
        H = np.asarray(surface.hessian(pts), dtype=float)
    except Exception:  # noqa: BLE001 - a surface without a Hessian has no theory here
        return None
    if H.shape != (5, 2, 2) or not np.all(np.isfinite(H)):
        return None
    if not np.allclose(H, H[0], rtol=1e-9, atol=1e-12):
        return None
    return H[0]


def stability(surface: Surface, spec: RunSpec) -> Stability | None:
    """The stability boundary theory gives for ``spec`` on ``surface``, or None: gradient
    descent (``gd``, ``sgd`` without momentum) η·λ_max < 2; heavy ball (``sgd`` with
    momentum μ, dampening τ, no Nesterov) η·(1−τ)·λ < 2(1+μ); the course's EMA momentum
    η·(1−β)·λ < 2(1+β); Nesterov (``nesterov``, ``sgd(nesterov=true)``, torch's form)
    η·λ < 2(1+μ)/(1+2μ) — on a quadratic with a positive-definite Hessian."""
    if spec.name not in ("gd", "sgd", "momentum", "nesterov"):
        return None
    values = spec.resolved()
    nesterov = spec.name == "nesterov" or bool(values.get("nesterov"))
    if any(values.get(k) for k in ("weight_decay", "noise", "batch", "clip_norm", "clip_value")):
        return None  # the theory is for the plain rule on exact gradients
    if values.get("schedule", "none") not in ("none", None, ""):
        return None
    H = constant_hessian(surface)
    if H is None:
        return None
    lam = np.linalg.eigvalsh(0.5 * (H + H.T))
    if lam.min() <= 0:
        return None
    lam_max = float(lam.max())
    if spec.name == "gd":
        return Stability("gd", lam_max, f"η < 2/λ_max = {2 / lam_max:.3g}")
    if nesterov:
        return Stability("nesterov", lam_max,
                         f"η·λ_max < 2(1+μ)/(1+2μ), λ_max = {lam_max:.3g}")
    if spec.name == "sgd":
        return Stability("heavy ball", lam_max, f"η·(1−τ)·λ_max < 2(1+μ), λ_max = {lam_max:.3g}")
    return Stability("ema momentum", lam_max, f"η·(1−β)·λ_max < 2(1+β), λ_max = {lam_max:.3g}")


def boundary_lines(res: MapResult, samples: int = 400) -> tuple[list[np.ndarray], str]:
    """The stability boundary in the phase diagram's plot axes (a log sweep's axis in
    log10): a list of polylines, each shape (K, 2), and the condition in words; ([], "")
    where theory gives none (not a quadratic, another optimizer, a basin map)."""
    req = res.request
    theory = stability(req.surface, req.spec) if req.sweeps else None
    if theory is None:
        return [], ""
    names = [s.name for s in req.sweeps]
    fixed = req.spec.resolved()

    def axis(s: Sweep, v):
        return np.log10(v) if s.log else v

    lines: list[np.ndarray] = []
    if "lr" in names:
        i = names.index("lr")
        lr_sweep = req.sweeps[i]
        if len(names) == 1:
            lr = float(theory.lr_max(fixed))
            if min(lr_sweep.lo, lr_sweep.hi) <= lr <= max(lr_sweep.lo, lr_sweep.hi):
                x = axis(lr_sweep, lr)
                lines.append(np.array([[x, -0.5], [x, 0.5]]))
        else:
            other = req.sweeps[1 - i]
            vals = other.values() if other.n >= samples else (
                np.geomspace(other.lo, other.hi, samples) if other.log
                else np.linspace(other.lo, other.hi, samples))
            lr = theory.lr_max({**fixed, other.name: vals})
            lr = np.broadcast_to(lr, vals.shape)
            lo, hi = min(lr_sweep.lo, lr_sweep.hi), max(lr_sweep.lo, lr_sweep.hi)
            inside = np.isfinite(lr) & (lr >= lo) & (lr <= hi)
            if inside.any():
                a, b = axis(lr_sweep, np.where(inside, lr, lo)), axis(other, vals)
                pts = np.stack([a, b] if i == 0 else [b, a], -1)
                # split where the curve leaves the plotted range
                for seg in np.split(np.arange(len(vals)), np.flatnonzero(np.diff(inside)) + 1):
                    if inside[seg[0]] and len(seg) > 1:
                        lines.append(pts[seg])
    elif len(names) == 1:  # lr fixed, one other hyperparameter swept: where it crosses
        s = req.sweeps[0]
        vals = np.geomspace(s.lo, s.hi, samples) if s.log else np.linspace(s.lo, s.hi, samples)
        ok = theory.stable({**fixed, s.name: vals}) & np.ones(len(vals), dtype=bool)
        for j in np.flatnonzero(np.diff(ok.astype(int))):
            x = axis(s, 0.5 * (vals[j] + vals[j + 1]))
            lines.append(np.array([[x, -0.5], [x, 0.5]]))
    return lines, theory.condition


def describe(res: MapResult) -> str:
    """A one-line summary: how many runs reached each minimum, none, diverged."""
    n = len(res.minimum)
    parts = []
    if res.kind == BASIN:
        for k in range(len(res.minima)):
            c = int(np.sum(res.minimum == k))
            if c:
                parts.append(f"minimum {k}: {c / n:.0%}")
        none = int(np.sum((res.minimum < 0) & ~res.diverged))
        if none:
            parts.append(f"none: {none / n:.0%}")
    conv = int(np.sum(res.steps_to_tol >= 0))
    parts.append(f"converged: {conv / n:.0%}")
    parts.append(f"diverged: {int(res.diverged.sum()) / n:.0%}")
    return f"{n:,} runs · " + " · ".join(parts)


def sweepable(spec: RunSpec) -> list[str]:
    """The hyperparameters of ``spec`` a phase diagram can sweep (its own float ones)."""
    from engine.optimizers.registry import COMMON_HYPERS

    out = []
    for h in spec.spec.hypers:
        if h.kind == "float" and h not in COMMON_HYPERS:
            out.append(h.name)
    return out


__all__: Sequence[str] = (
    "BASIN", "PHASE", "MapRequest", "MapResult", "Stability", "Sweep", "basin_rgb",
    "boundary_lines", "check_request", "classify", "coarse_to_fine", "compute_map",
    "describe", "known_minima", "map_csv", "parse_sweep", "phase_rgb", "phase_values",
    "stability", "sweepable",
)

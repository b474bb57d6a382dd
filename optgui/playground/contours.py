"""Contour levels and isolines, computed with numpy only (no Qt), once per surface/view.

pyqtgraph's IsocurveItem walks the grid in Python for every level; a vectorized marching
squares that returns all levels as one array of segment pairs lets the contour plot draw
every isoline with a single ``PlotDataItem(connect="pairs")``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

GRID_N = 240
N_LEVELS = 14
CACHE_SIZE = 24  # surfaces whose contours are kept (every built-in, and the latest custom)

# marching squares: corner bits a=1 (x0,y0), b=2 (x1,y0), c=4 (x1,y1), d=8 (x0,y1);
# edges 0 bottom (a-b), 1 right (b-c), 2 top (d-c), 3 left (a-d)
_CASES: dict[int, tuple[tuple[int, int], ...]] = {
    1: ((3, 0),), 2: ((0, 1),), 3: ((3, 1),), 4: ((1, 2),), 5: ((3, 0), (1, 2)),
    6: ((0, 2),), 7: ((3, 2),), 8: ((2, 3),), 9: ((0, 2),), 10: ((0, 1), (2, 3)),
    11: ((1, 2),), 12: ((1, 3),), 13: ((0, 1),), 14: ((3, 0),),
}


@dataclass(frozen=True)
class ContourData:
    """What the contour plot draws for one surface and view."""

    xs: np.ndarray
    ys: np.ndarray
    image: np.ndarray  # Z, or log10(Z − zmin + δ) when ``log`` (row-major: [iy, ix])
    levels: np.ndarray  # in the same units as ``image``
    segments: np.ndarray  # (2·n, 2) endpoints of isoline segments, pairs
    log: bool
    zmin: float
    offset: float  # δ added before the log


def use_log_levels(Z: np.ndarray, hint: bool = False) -> bool:
    """Log-spaced levels for steep valleys: flagged by the surface, or a large dynamic range
    (the highest value dwarfs the typical one, so linear levels would all crowd the walls)."""
    if hint:
        return True
    z = Z[np.isfinite(Z)]
    if z.size == 0:
        return False
    z = z - z.min()
    typical = float(np.median(z))
    return typical > 0 and float(z.max()) / typical > 50.0


def contour_levels(Z: np.ndarray, log: bool, n: int = N_LEVELS) -> tuple[np.ndarray, float]:
    """Well-spaced levels in display units, and the offset δ used in log mode.

    Linear mode spaces levels evenly in sqrt(f − min), which draws evenly spaced rings on a
    quadratic bowl instead of crowding them at the rim.
    """
    z = Z[np.isfinite(Z)]
    if z.size == 0:
        return np.zeros(0), 0.0
    lo, hi = float(z.min()), float(z.max())
    if hi <= lo:
        return np.zeros(0), 0.0
    if log:
        span = hi - lo
        positive = z[z > lo] - lo
        floor = float(np.percentile(positive, 0.5)) if positive.size else span * 1e-6
        offset = max(floor, span * 1e-9)
        levels = np.linspace(np.log10(offset), np.log10(span + offset), n + 2)[1:-1]
        return levels, offset
    t = np.linspace(0.0, 1.0, n + 2)[1:-1]
    return lo + (hi - lo) * t**2, 0.0


def marching_squares(xs: np.ndarray, ys: np.ndarray, Z: np.ndarray, levels) -> np.ndarray:
    """Isoline segments of ``Z[iy, ix]`` for every level, as (2·n, 2) endpoint pairs."""
    X0, X1 = xs[:-1][None, :], xs[1:][None, :]
    Y0, Y1 = ys[:-1][:, None], ys[1:][:, None]
    a, b = Z[:-1, :-1], Z[:-1, 1:]
    c, d = Z[1:, 1:], Z[1:, :-1]
    out = []
    with np.errstate(all="ignore"):
        for level in levels:
            case = (
                (a > level).astype(np.uint8)
                | ((b > level).astype(np.uint8) << 1)
                | ((c > level).astype(np.uint8) << 2)
                | ((d > level).astype(np.uint8) << 3)
            )
            active = (case != 0) & (case != 15)
            if not active.any():
                continue
            iy, ix = np.nonzero(active)
            cs = case[iy, ix]
            x0, x1 = X0[0, ix], X1[0, ix]
            y0, y1 = Y0[iy, 0], Y1[iy, 0]
            za, zb, zc, zd = a[iy, ix], b[iy, ix], c[iy, ix], d[iy, ix]
            edges = (
                np.stack([x0 + (level - za) / (zb - za) * (x1 - x0), y0 + 0 * x0], -1),
                np.stack([x1 + 0 * y0, y0 + (level - zb) / (zc - zb) * (y1 - y0)], -1),
                np.stack([x0 + (level - zd) / (zc - zd) * (x1 - x0), y1 + 0 * x0], -1),
                np.stack([x0 + 0 * y0, y0 + (level - za) / (zd - za) * (y1 - y0)], -1),
            )
            for code, pairs in _CASES.items():
                sel = cs == code
                if not sel.any():
                    continue
                for e1, e2 in pairs:
                    seg = np.empty((int(sel.sum()), 2, 2))
                    seg[:, 0] = edges[e1][sel]
                    seg[:, 1] = edges[e2][sel]
                    out.append(seg)
    if not out:
        return np.zeros((0, 2))
    segs = np.concatenate(out)
    segs = segs[np.all(np.isfinite(segs), axis=(1, 2))]
    return segs.reshape(-1, 2)


def display_values(surface, Z: np.ndarray):
    """``Z`` in display units, as the contour colours and the 3-D heights show it.

    Returns (image, levels, log, zmin, offset): image is Z (non-finite → NaN), or
    log10(Z − zmin + offset) when the surface calls for log levels.
    """
    Z = np.where(np.isfinite(Z), Z, np.nan)
    log = use_log_levels(Z, getattr(surface, "log_levels", False))
    levels, offset = contour_levels(Z, log)
    finite = Z[np.isfinite(Z)]
    zmin = float(finite.min()) if finite.size else 0.0
    if log:
        with np.errstate(all="ignore"):
            image = np.log10(Z - zmin + offset)
    else:
        image = Z
    return image, levels, log, zmin, offset


def compute_contours(surface, view=None, n: int = GRID_N) -> ContourData:
    """Grid, colour image, levels and isolines for ``surface`` over ``view``."""
    xs, ys, Z = surface.grid(view, n)
    image, levels, log, zmin, offset = display_values(surface, Z)
    segments = marching_squares(xs, ys, image, levels)
    return ContourData(xs, ys, image, levels, segments, log, zmin, offset)


_cache: OrderedDict[int, tuple[object, ContourData]] = OrderedDict()
_cache_lock = threading.Lock()


def contours_for(surface) -> ContourData:
    """:func:`compute_contours` of ``surface`` in its own view, computed once per surface
    object (surfaces are immutable, and the playground builds one object per surface key).

    Thread-safe: the worker thread computes them ahead (every built-in surface after start-up,
    a custom one as it is compiled), so switching surfaces costs the window no 10-25 ms of
    grid and marching squares."""
    key = id(surface)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] is surface:
            _cache.move_to_end(key)
            return hit[1]
    data = compute_contours(surface)
    with _cache_lock:
        _cache[key] = (surface, data)  # the surface is kept alive: its id stays its own
        _cache.move_to_end(key)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return data

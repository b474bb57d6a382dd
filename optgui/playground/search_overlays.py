"""Overlays of the second-order family: line searches, trust regions and BFGS's curvature.

At the current step k the selected run sits at w_k; like the step arrows
(:mod:`optgui.playground.overlays`) these overlays draw step k + 1, the one about to be taken:

* **line search** (bfgs, lbfgs with strong_wolfe, cg): the search direction as a dashed
  line through every trial point w_k + t·d; each trial is a marker, green when it passed both
  strong Wolfe conditions, amber when it passed Armijo (sufficient decrease) but not the
  curvature condition, red when it failed Armijo; the accepted point is ringed in white and
  labelled with its t;
* **trust region** (trust_region): the circle ‖p‖ = Δ around w_k, the quadratic model
  m(p) = f + gᵀp + ½pᵀBp's contours inside it, the dogleg step, and ρ (actual / predicted
  decrease) at the circle's edge;
* **curvature** (bfgs): BFGS's inverse-Hessian approximation H as the ellipse
  {w_k + p : pᵀH⁻¹p = c} beside the true Hessian's {pᵀ∇²f p = c}, both to one scale, so the
  student sees the approximation learn the curvature (where ∇²f is indefinite only H's
  ellipse is drawn and the label says so).

:func:`search_geometry` computes all of it without Qt (tests read it); :class:`SearchOverlays`
draws it with items created once and fed with ``setData``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QFont

from engine.optimizers.linesearch import trials_of
from optgui.playground.overlays import Z_OVERLAY, has_points

PASS, ARMIJO_ONLY, FAIL = "#4cd964", "#ffb020", "#ff5252"
TR_COLOR = "#7fdcff"
H_COLOR, TRUE_H_COLOR = "#ffd166", "#ffffff"
ELLIPSE_FRACTION = 0.12  # the larger drawn ellipse's semi-axis, as a fraction of the view
CIRCLE_POINTS = 97
MODEL_GRID = 41
MODEL_LEVELS = 6


@dataclass
class Geometry:
    """What the overlays draw for one step (any part may be missing)."""

    # line search: the direction's segment, the trials (x, y, colour, text) and the accepted
    direction: tuple[np.ndarray, np.ndarray] | None = None
    trials: list[tuple[float, float, str, str]] = field(default_factory=list)
    accepted: tuple[float, float, str] | None = None
    # trust region: circle (xs, ys), the model's contour polylines, ρ's label position
    circle: tuple[np.ndarray, np.ndarray] | None = None
    model: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    rho: tuple[float, float, str] | None = None
    # curvature: H's ellipse and the true Hessian's (xs, ys), and their labels
    h_ellipse: tuple[np.ndarray, np.ndarray] | None = None
    true_ellipse: tuple[np.ndarray, np.ndarray] | None = None
    curvature_note: str = ""


def trial_color(armijo: bool, curvature: bool) -> str:
    if armijo and curvature:
        return PASS
    return ARMIJO_ONLY if armijo else FAIL


def _finite(*xs) -> bool:
    return all(x is not None and np.all(np.isfinite(np.asarray(x, dtype=float))) for x in xs)


def _ellipse(w: np.ndarray, m: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """{w + p : pᵀM⁻¹p = scale²} for a symmetric positive definite M (M = H, or (∇²f)⁻¹)."""
    lam, q = np.linalg.eigh(m)
    a = np.linspace(0, 2 * math.pi, CIRCLE_POINTS)
    unit = np.stack([np.cos(a), np.sin(a)])
    pts = q @ (np.sqrt(lam)[:, None] * unit) * scale
    return w[0] + pts[0], w[1] + pts[1]


def _contours(w, g, B, radius) -> list[tuple[np.ndarray, np.ndarray]]:
    """Level lines of m(p) = gᵀp + ½pᵀBp inside ‖p‖ ≤ Δ, as polylines around w."""
    s = np.linspace(-radius, radius, MODEL_GRID)
    P1, P2 = np.meshgrid(s, s)  # row-major: [iy, ix]
    m = g[0] * P1 + g[1] * P2 + 0.5 * (B[0, 0] * P1 * P1 + 2 * B[0, 1] * P1 * P2
                                       + B[1, 1] * P2 * P2)
    inside = P1 * P1 + P2 * P2 <= radius * radius
    lo, hi = float(m[inside].min()), float(m[inside].max())
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return []
    out = []
    step = s[1] - s[0]
    for level in np.linspace(lo, hi, MODEL_LEVELS + 2)[1:-1]:
        for line in pg.functions.isocurve(m, level, connected=True):
            # (n, 2) in (row, col) index units, pyqtgraph's pixel centres at +0.5
            arr = np.asarray(line, dtype=float) - 0.5
            px = -radius + arr[:, 1] * step
            py = -radius + arr[:, 0] * step
            outside = px * px + py * py > radius * radius * 1.0001
            px, py = px.copy(), py.copy()
            px[outside] = np.nan
            py[outside] = np.nan
            if np.any(~outside):
                out.append((w[0] + px, w[1] + py))
    return out


def search_geometry(traj, k: int, view, surface=None) -> Geometry:
    """The overlays of ``traj`` for the step leaving global step ``k``."""
    geo = Geometry()
    n = traj.at(k)
    if n + 1 > traj.steps:
        return geo
    w = np.asarray(traj.points[n], dtype=float)
    state = traj.states[n + 1]
    x0, x1, y0, y1 = view
    span = max(x1 - x0, y1 - y0)

    trials = trials_of(state)
    d = getattr(state, "direction", None)
    if trials and d is not None and _finite(d):
        d = np.asarray(d, dtype=float)
        ts = [tr.t for tr in trials if math.isfinite(tr.t)]
        t_hi = max(ts + [0.0])
        if t_hi > 0:
            end = w + t_hi * d
            geo.direction = (np.array([w[0], end[0]]), np.array([w[1], end[1]]))
        for i, tr in enumerate(trials, start=1):
            p = w + tr.t * d
            if _finite(p):
                geo.trials.append((float(p[0]), float(p[1]),
                                   trial_color(tr.armijo, tr.curvature), str(i)))
        t_acc = getattr(state, "step", None)
        if t_acc:
            p = w + t_acc * d
            if _finite(p):
                geo.accepted = (float(p[0]), float(p[1]), f"t = {t_acc:.3g}")

    radius = getattr(state, "radius", None)
    B = getattr(state, "B", None)
    g = getattr(state, "g", None)
    if radius and B is not None and g is not None and _finite(radius, B, g):
        a = np.linspace(0, 2 * math.pi, CIRCLE_POINTS)
        geo.circle = (w[0] + radius * np.cos(a), w[1] + radius * np.sin(a))
        geo.model = _contours(w, np.asarray(g, float), np.asarray(B, float), float(radius))
        rho = getattr(state, "rho", math.nan)
        verdict = "accepted" if getattr(state, "accepted", False) else "rejected"
        text = f"ρ = {rho:.3g}  ({verdict})" if math.isfinite(rho) else f"ρ = –  ({verdict})"
        geo.rho = (float(w[0] + radius * 0.71), float(w[1] + radius * 0.71), text)

    H = getattr(state, "H", None)
    if H is not None and _finite(H) and np.ndim(H) == 2:
        H = np.asarray(H, dtype=float)
        true_inv = None
        note = ""
        if surface is not None:
            hess = np.asarray(surface.hessian(w), dtype=float)
            lam = np.linalg.eigvalsh(hess) if _finite(hess) else np.array([-1.0])
            if np.all(lam > 0):
                true_inv = np.linalg.inv(hess)
            else:
                note = "∇²f is not positive definite here: no true ellipse"
        lam_h = np.linalg.eigvalsh(H)
        if np.all(lam_h > 0):
            biggest = max(np.sqrt(lam_h.max()),
                          np.sqrt(np.linalg.eigvalsh(true_inv).max()) if true_inv is not None
                          else 0.0)
            scale = ELLIPSE_FRACTION * span / biggest
            geo.h_ellipse = _ellipse(w, H, scale)
            if true_inv is not None:
                geo.true_ellipse = _ellipse(w, true_inv, scale)
        geo.curvature_note = note
    return geo


class SearchOverlays(QObject):
    """Draws :func:`search_geometry` of the selected run at the current step."""

    KEYS = ("linesearch", "trust_region", "curvature")

    def __init__(self, contour, ctrl, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ctrl = ctrl
        plot = contour.getPlotItem()
        self.plot = plot
        self.enabled = dict.fromkeys(self.KEYS, True)
        font = QFont()
        font.setPointSizeF(8.5)
        font.setBold(True)

        def add(item, z):
            item.setZValue(Z_OVERLAY + z)
            plot.addItem(item, ignoreBounds=True)
            return item

        self.direction = add(pg.PlotDataItem(pen=pg.mkPen("#dddddd", width=1.6,
                                                          style=Qt.PenStyle.DashLine)), 20)
        self.trials = add(pg.ScatterPlotItem(size=10, pen=pg.mkPen("#000000", width=1.2)), 21)
        self.accepted = add(pg.ScatterPlotItem(size=18, brush=pg.mkBrush(0, 0, 0, 0),
                                               pen=pg.mkPen("#ffffff", width=2.2)), 22)
        self.accepted_label = add(pg.TextItem("", color="#ffffff", anchor=(-0.1, 1.2),
                                              fill=pg.mkBrush(16, 16, 22, 200)), 23)
        self.accepted_label.setFont(font)
        self.trial_labels: list[pg.TextItem] = []
        self.circle = add(pg.PlotDataItem(pen=pg.mkPen(TR_COLOR, width=2.0)), 20)
        self.model = add(pg.PlotDataItem(pen=pg.mkPen(TR_COLOR, width=1.4,
                                                      style=Qt.PenStyle.DashLine),
                                         connect="finite"), 19)
        self.rho = add(pg.TextItem("", color=TR_COLOR, anchor=(0, 1),
                                   fill=pg.mkBrush(16, 16, 22, 200)), 23)
        self.rho.setFont(font)
        self.h_ellipse = add(pg.PlotDataItem(pen=pg.mkPen(H_COLOR, width=2.0)), 20)
        self.true_ellipse = add(pg.PlotDataItem(pen=pg.mkPen(TRUE_H_COLOR, width=1.6,
                                                             style=Qt.PenStyle.DashLine)), 20)
        self.curv_label = add(pg.TextItem("", color=H_COLOR, anchor=(0.5, -0.1),
                                          fill=pg.mkBrush(16, 16, 22, 200)), 23)
        self.curv_label.setFont(font)
        self.geometry = Geometry()
        for sig in (ctrl.stepChanged, ctrl.selectionChanged, ctrl.trajectoriesChanged,
                    ctrl.configChanged):
            sig.connect(self.refresh)
        self.refresh()

    def set_enabled(self, key: str, on: bool) -> None:
        if key not in self.enabled:
            raise KeyError(key)
        self.enabled[key] = bool(on)
        self.refresh()

    def _shown(self):
        rid = self.ctrl.selected_run
        entry = None if rid is None else self.ctrl.config.run(rid)
        if entry is None or not entry.enabled:
            return None
        return self.ctrl.trajectory(rid)

    def refresh(self, *_) -> None:
        traj = self._shown()
        geo = Geometry()
        if traj is not None and any(self.enabled.values()):
            surface = self.ctrl.surface
            geo = search_geometry(traj, self.ctrl.step, tuple(surface.view), surface)
        self.geometry = geo
        ls = self.enabled["linesearch"]
        self._line(self.direction, geo.direction if ls else None)
        spots = [{"pos": (x, y), "brush": pg.mkBrush(c)} for x, y, c, _ in geo.trials] \
            if ls else []
        if spots or has_points(self.trials):
            self.trials.setData(spots)
        for label in self.trial_labels:
            label.setVisible(False)
        if ls:
            while len(self.trial_labels) < len(geo.trials):
                item = pg.TextItem("", color="#eeeeee", anchor=(1.2, 1.2))
                item.setZValue(Z_OVERLAY + 23)
                self.plot.addItem(item, ignoreBounds=True)
                self.trial_labels.append(item)
            for item, (x, y, c, text) in zip(self.trial_labels, geo.trials, strict=False):
                item.setText(text)
                item.setColor(c)
                item.setPos(x, y)
                item.setVisible(True)
        acc = geo.accepted if ls else None
        if acc or has_points(self.accepted):
            self.accepted.setData([{"pos": acc[:2]}] if acc else [])
        self.accepted_label.setVisible(acc is not None)
        if acc:
            self.accepted_label.setText(acc[2])
            self.accepted_label.setPos(acc[0], acc[1])
        tr = self.enabled["trust_region"]
        self._line(self.circle, geo.circle if tr else None)
        if tr and geo.model:
            xs = np.concatenate([np.append(x, np.nan) for x, _ in geo.model])
            ys = np.concatenate([np.append(y, np.nan) for _, y in geo.model])
            self.model.setData(xs, ys, connect="finite")
            self.model.setVisible(True)
        else:
            self._line(self.model, None)
        self.rho.setVisible(bool(tr and geo.rho))
        if tr and geo.rho:
            self.rho.setText(geo.rho[2])
            self.rho.setPos(geo.rho[0], geo.rho[1])
        cv = self.enabled["curvature"]
        self._line(self.h_ellipse, geo.h_ellipse if cv else None)
        self._line(self.true_ellipse, geo.true_ellipse if cv else None)
        show_label = cv and geo.h_ellipse is not None
        self.curv_label.setVisible(show_label)
        if show_label:
            text = "— H (BFGS)   - - (∇²f)⁻¹ (true)"
            if geo.curvature_note:
                text = f"— H (BFGS); {geo.curvature_note}"
            self.curv_label.setText(text)
            # under the ellipse, clear of the search direction's trial points
            x = float(np.nanmean(geo.h_ellipse[0]))
            y = float(np.nanmin(geo.h_ellipse[1]))
            self.curv_label.setPos(x, y)

    @staticmethod
    def _line(item, xy) -> None:
        if xy is None:
            if item.isVisible() or has_points(item):
                item.setData([], [])
                item.setVisible(False)
        else:
            item.setData(xy[0], xy[1])
            item.setVisible(True)

"""Step overlays on the contour plot: what one optimizer step is made of.

At the current step k the selected run sits at w_k; the overlays draw the step it is about
to take (step k + 1), as the course's slides do:

* **gradient**: −η·∇f(w_k), the step plain gradient descent with the run's learning rate η
  would take (the true gradient, even for noisy or mini-batch runs);
* **update**: the step the optimizer really takes, w_k → w_{k+1};
* **momentum**: the velocity the optimizer carries into the step (momentum's v, torch SGD's
  buffer, the Adam family's first moment m), drawn as −η·v so it compares with the
  gradient step;
* **SAM**: for SAM/ASAM the ascent ε from w_k to the perturbed point w_k + ε, and the
  gradient step −η·∇f(w_k + ε) computed there, which SAM then applies at w_k.

Vectors in gradient units are drawn times −η (η of the run, or of SAM's base optimizer), so
for gradient descent the gradient arrow and the update arrow coincide. A vector longer than
60 % of the surface's view is shortened to that length and its label says so.

:func:`step_vectors` computes the segments without Qt (tests read them, and the items'
data); :class:`StepOverlays` draws them with items created once and fed with ``setData``.
Nothing is drawn for missing or non-finite numbers (the last step, a diverged run).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QPointF, QRectF, Qt
from PySide6.QtGui import QAction, QColor, QFont, QKeySequence

from engine import RunSpec, Trajectory
from engine.optimizers import velocity
from optgui.playground.plots import Legend

MAX_FRACTION = 0.6  # longest drawn vector, as a fraction of the surface view's larger side
Z_OVERLAY = 400  # above every path (paths use 10 … ~150)


@dataclass(frozen=True)
class OverlayKind:
    key: str
    title: str
    shortcut: str
    help: str


KINDS = (
    OverlayKind("gradient", "Gradient arrow", "Ctrl+Shift+G",
                "White: −η·∇f(w), the plain gradient step from the current point "
                "(η: the run's learning rate)"),
    OverlayKind("update", "Update arrow", "Ctrl+Shift+U",
                "Magenta: the step the optimizer actually takes, w_k → w_(k+1)"),
    OverlayKind("velocity", "Momentum vector", "Ctrl+Shift+M",
                "Aqua: the momentum carried into the step (v, the SGD buffer, Adam's m), "
                "drawn as −η·v"),
    OverlayKind("sam", "SAM perturbation", "Ctrl+Shift+S",
                "SAM/ASAM: red dashed: the ascent from w to w + ε; orange: the gradient "
                "step −η·∇f(w + ε) taken there, which SAM applies at w"),
)
# Drawn by optgui.playground.search_overlays (line searches, trust regions, BFGS's H).
SEARCH_KINDS = (
    OverlayKind("linesearch", "Line search", "Ctrl+Shift+L",
                "bfgs, lbfgs (strong_wolfe), cg: every trial point along the search direction "
                "(green: passes both strong Wolfe conditions, amber: Armijo only, red: fails "
                "Armijo), the accepted step ringed"),
    OverlayKind("trust_region", "Trust region", "Ctrl+Shift+T",
                "trust_region: the circle ‖p‖ = Δ, the quadratic model's contours inside it "
                "and ρ, actual over predicted decrease"),
    OverlayKind("curvature", "BFGS curvature", "Ctrl+Shift+H",
                "bfgs: the inverse-Hessian approximation H as an ellipse (gold) beside the true "
                "(∇²f)⁻¹ (white, dashed), to one scale"),
)
KINDS = KINDS + SEARCH_KINDS
DEFAULT_ON = {"gradient": True, "update": True, "velocity": True, "sam": True,
              "linesearch": True, "trust_region": True, "curvature": True}

# segment key -> (colour, label, overlay it belongs to, dashed)
SEGMENTS = {
    "gradient": ("#ffffff", "−η∇f(w)", "gradient", False),
    "update": ("#ff4fd8", "Δw", "update", False),
    "velocity": ("#3cf0c8", "−η·v", "velocity", False),
    "ascent": ("#ff5252", "ε", "sam", True),
    "sam_gradient": ("#ffb020", "−η∇f(w+ε)", "sam", False),
}
LABEL_ORDER = ("update", "gradient", "sam_gradient", "velocity", "ascent")
LEGEND = {
    "gradient": "−η∇f(w)  gradient step",
    "update": "Δw  actual update",
    "velocity": "−η·v  momentum",
    "ascent": "w → w+ε  SAM ascent",
    "sam_gradient": "−η∇f(w+ε)  SAM gradient",
}


def step_size(spec: RunSpec) -> float:
    """η used to draw gradient-like vectors: the run's lr, or its base optimizer's."""
    values = spec.resolved()
    lr = values.get("lr")
    if lr is not None:
        return float(lr)
    base = values.get("base")
    if isinstance(base, RunSpec):
        return step_size(base)
    return 1.0


@dataclass(frozen=True)
class Segment:
    start: np.ndarray
    end: np.ndarray
    label: str
    shortened: bool = False


def _finite(*arrays) -> bool:
    return all(a is not None and np.all(np.isfinite(a)) for a in arrays)


def step_vectors(
    traj: Trajectory, k: int, view: tuple[float, float, float, float] | None = None
) -> dict[str, Segment]:
    """The overlay segments of ``traj`` at step ``k`` (keys of :data:`SEGMENTS`), plus
    ``"perturbed"`` (start = end = w + ε) for SAM/ASAM. Missing or non-finite parts are
    left out; vectors longer than MAX_FRACTION of ``view`` are shortened."""
    n = traj.at(k)
    w = np.asarray(traj.points[n], dtype=float)
    eta = step_size(traj.spec)
    limit = math.inf
    if view is not None:
        limit = MAX_FRACTION * max(view[1] - view[0], view[3] - view[2])
    out: dict[str, Segment] = {}

    def vector(key: str, origin, delta, label: str) -> None:
        if not _finite(origin, delta):
            return
        length = float(np.linalg.norm(delta))
        if length == 0.0:
            return
        shortened = length > limit
        if shortened:
            delta = delta * (limit / length)
            label += " (shortened)"
        out[key] = Segment(np.asarray(origin, float), np.asarray(origin + delta, float), label,
                           shortened)

    vector("gradient", w, -eta * np.asarray(traj.grads[n], dtype=float), "−η∇f(w)")
    nxt = n + 1 if n + 1 <= traj.steps else None
    if nxt is not None:
        vector("update", w, np.asarray(traj.points[nxt], dtype=float) - w, "Δw")
    found = velocity(traj.spec, traj.states[n])  # as the spec declares it
    if found is not None:
        vel, name = found
        vector("velocity", w, -eta * vel, f"−η·{name}")
    if nxt is not None:
        state = traj.states[nxt]
        point = getattr(state, "perturbed_point", None)
        g_sam = getattr(state, "g_sam", None)
        if point is not None and _finite(point):
            point = np.asarray(point, dtype=float)
            out["perturbed"] = Segment(point, point, "w+ε")
            vector("ascent", w, point - w, "")  # the point's own label says w+ε
            if g_sam is not None:
                vector("sam_gradient", point, -eta * np.asarray(g_sam, dtype=float),
                       "−η∇f(w+ε)")
    return out


def has_points(item) -> bool:
    """Whether a PlotDataItem or ScatterPlotItem holds any point. Emptying an empty item
    costs as much as feeding it: the overlays clear a hidden item once, not at every step
    of an animation."""
    data = item.data if isinstance(item, pg.ScatterPlotItem) else item.xData
    return data is not None and len(data) > 0


class Arrow:
    """A line with a pixel-sized arrow head and a label at its tip.

    The head's angle is computed in screen space (the plot's axes are not equally scaled),
    so it is refreshed whenever the view's transform changes.
    """

    def __init__(self, plot: pg.PlotItem, color: str, dashed: bool = False) -> None:
        self.plot = plot
        self.color = color
        style = Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine
        shadow_pen = pg.mkPen(QColor(0, 0, 0, 190), width=5.0)
        shadow_pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        pen = pg.mkPen(color, width=2.4, style=style)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        self.shadow = pg.PlotDataItem(pen=shadow_pen)
        self.line = pg.PlotDataItem(pen=pen)
        self.head = pg.ArrowItem(pxMode=True, headLen=14, tipAngle=34, tailLen=None,
                                 pen=pg.mkPen(QColor(0, 0, 0, 200), width=1.2),
                                 brush=pg.mkBrush(color))
        self.label = pg.TextItem("", color=color, anchor=(0, 0.5),
                                 fill=pg.mkBrush(16, 16, 22, 200))
        font = QFont()
        font.setPointSizeF(9.0)
        font.setBold(True)
        self.label.setFont(font)
        for z, item in enumerate((self.shadow, self.line, self.head, self.label)):
            item.setZValue(Z_OVERLAY + z)
            plot.addItem(item, ignoreBounds=True)
        self.segment: Segment | None = None
        self.label_at: QPointF | None = None  # device position of the label's anchor
        self.hide()

    @property
    def items(self):
        return (self.shadow, self.line, self.head, self.label)

    def set(self, segment: Segment | None) -> None:
        self.segment = segment
        if segment is None:
            self.hide()
            return
        (x0, y0), (x1, y1) = segment.start, segment.end
        self.shadow.setData([x0, x1], [y0, y1])
        self.line.setData([x0, x1], [y0, y1])
        self.head.setPos(x1, y1)
        self.label.setText(segment.label)
        for item in self.items:
            item.setVisible(True)
        self.label.setVisible(bool(segment.label))
        self.refresh()

    def hide(self) -> None:
        self.segment = None
        self.label_at = None
        if not has_points(self.line) and not any(item.isVisible() for item in self.items):
            return  # hidden and emptied already
        for item in self.items:
            item.setVisible(False)
        self.shadow.setData([], [])
        self.line.setData([], [])

    def refresh(self) -> None:
        """Point the head along the line as drawn on screen; put the label past the tip."""
        seg = self.segment
        if seg is None:
            return
        vb = self.plot.vb
        a = vb.mapViewToDevice(QPointF(*map(float, seg.start)))
        b = vb.mapViewToDevice(QPointF(*map(float, seg.end)))
        if a is None or b is None:
            return
        dx, dy = b.x() - a.x(), b.y() - a.y()
        length = math.hypot(dx, dy)
        ux, uy = (dx / length, dy / length) if length > 1e-9 else (1.0, 0.0)
        self.head.setStyle(angle=math.degrees(math.atan2(-uy, -ux)))
        # the label's near side touches a point just past the tip
        self.label.setAnchor((0.5 - 0.5 * ux, 0.5 - 0.5 * uy))
        self.label_at = QPointF(b.x() + 7 * ux, b.y() + 7 * uy)

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """The drawn line as (x, y) arrays (what tests compare with the trajectory)."""
        x, y = self.line.getData()
        return (np.asarray(x if x is not None else []), np.asarray(y if y is not None else []))


class StepOverlays(QObject):
    """The overlays of the selected run at the current step, drawn on a ContourPlot."""

    def __init__(self, contour, ctrl, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.contour = contour
        self.ctrl = ctrl
        plot = contour.getPlotItem()
        self.plot = plot
        self.enabled = {kind.key: DEFAULT_ON[kind.key] for kind in KINDS}
        self.arrows = {key: Arrow(plot, color, dashed)
                       for key, (color, _label, _kind, dashed) in SEGMENTS.items()}
        self.perturbed = pg.ScatterPlotItem(
            symbol="o", size=12, brush=pg.mkBrush(255, 82, 82, 90),
            pen=pg.mkPen("#ff5252", width=2.2))
        self.perturbed.setZValue(Z_OVERLAY + 10)
        plot.addItem(self.perturbed, ignoreBounds=True)
        self.perturbed_label = pg.TextItem("w+ε", color="#ff8080", anchor=(-0.15, 1.1),
                                           fill=pg.mkBrush(16, 16, 22, 200))
        self.perturbed_label.setZValue(Z_OVERLAY + 11)
        plot.addItem(self.perturbed_label, ignoreBounds=True)
        self.legend = Legend(
            offset=(8, -8), labelTextColor="#eeeeee", labelTextSize="8.5pt",
            brush=pg.mkBrush(20, 20, 28, 210), pen=pg.mkPen(255, 255, 255, 60),
            verSpacing=-6,
        )
        self.legend.setParentItem(plot.vb)
        self.legend.setToolTip("\n".join(kind.help for kind in KINDS))
        self.legend.setVisible(False)  # shown with its first entry (an empty box otherwise)
        self._legend_keys: tuple[str, ...] = ()
        self.segments: dict[str, Segment] = {}

        ctrl.stepChanged.connect(self.refresh)
        ctrl.selectionChanged.connect(self.refresh)
        ctrl.trajectoriesChanged.connect(self.refresh)
        ctrl.configChanged.connect(self.refresh)
        plot.vb.sigTransformChanged.connect(self._transform_changed)
        from optgui.playground.search_overlays import SearchOverlays

        self.search = SearchOverlays(contour, ctrl, self)
        self.refresh()

    # ------------------------------------------------------------------ state
    def set_enabled(self, key: str, on: bool) -> None:
        if key not in self.enabled:
            raise KeyError(key)
        self.enabled[key] = bool(on)
        if key in self.search.enabled:
            self.search.set_enabled(key, on)
            return
        self.refresh()

    def shown_run(self) -> int | None:
        """The run the overlays describe: the selected one, if it is shown and computed."""
        rid = self.ctrl.selected_run
        entry = None if rid is None else self.ctrl.config.run(rid)
        if entry is None or not entry.enabled or self.ctrl.trajectory(rid) is None:
            return None
        return rid

    # ------------------------------------------------------------------ drawing
    def refresh(self, *_):
        rid = self.shown_run()
        segments: dict[str, Segment] = {}
        if rid is not None and any(self.enabled.values()):
            traj = self.ctrl.trajectory(rid)
            segments = step_vectors(traj, self.ctrl.step, tuple(self.ctrl.surface.view))
        self.segments = {
            key: seg for key, seg in segments.items()
            if self.enabled[SEGMENTS[key][2] if key in SEGMENTS else "sam"]
        }
        for key, arrow in self.arrows.items():
            arrow.set(self.segments.get(key))
        point = self.segments.get("perturbed")
        if point is not None:
            self.perturbed.setData([point.start[0]], [point.start[1]])
            self.perturbed_label.setPos(float(point.start[0]), float(point.start[1]))
        elif has_points(self.perturbed):
            self.perturbed.setData([], [])
        self.perturbed.setVisible(point is not None)
        self.perturbed_label.setVisible(point is not None)
        self._place_labels()
        self._update_legend()
        self._place_legend()

    def _transform_changed(self, *_):
        for arrow in self.arrows.values():
            arrow.refresh()
        self._place_labels()
        self._place_legend()

    # (parent/item anchor, offset) per corner; Qt's y grows downwards
    CORNERS = {"bottom-left": ((0, 1), (8, -8)), "top-left": ((0, 0), (8, 8)),
               "top-right": ((1, 0), (-8, 8)), "bottom-right": ((1, 1), (-8, -8))}

    def legend_corner(self) -> str:
        """The corner of the view whose quarter holds the fewest points of the shown paths
        up to the current step (and of the overlays): the overlay legend goes there, so it
        covers as little of the race as it can. Ties keep the first corner of CORNERS."""
        (x0, x1), (y0, y1) = self.plot.vb.viewRange()
        points = [p for seg in self.segments.values() for p in (seg.start, seg.end)]
        k = self.ctrl.step
        for run in self.ctrl.config.runs:  # through trajectory(): figures feed a scene
            traj = self.ctrl.trajectory(run.run_id) if run.enabled else None
            if traj is not None:
                points.extend(traj.points[:k + 1:max(1, (k + 1) // 200)])
        if not points:
            return next(iter(self.CORNERS))
        pts = np.asarray(points, dtype=float).reshape(-1, 2)
        fx = (pts[:, 0] - x0) / ((x1 - x0) or 1.0)
        fy = (pts[:, 1] - y0) / ((y1 - y0) or 1.0)
        counts = {
            "bottom-left": np.count_nonzero((fx < 0.45) & (fy < 0.35) & (fx >= 0) & (fy >= 0)),
            "top-left": np.count_nonzero((fx < 0.45) & (fy > 0.65) & (fx >= 0) & (fy <= 1)),
            "top-right": np.count_nonzero((fx > 0.55) & (fy > 0.65) & (fx <= 1) & (fy <= 1)),
            "bottom-right": np.count_nonzero((fx > 0.55) & (fy < 0.35) & (fx <= 1) & (fy >= 0)),
        }
        return min(self.CORNERS, key=lambda c: counts[c])

    def _place_legend(self) -> None:
        if not self.legend.isVisible():
            return
        corner = self.legend_corner()
        if corner != getattr(self, "_legend_corner", None):
            self._legend_corner = corner
            anchor, offset = self.CORNERS[corner]
            self.legend.anchor(itemPos=anchor, parentPos=anchor, offset=offset)

    def _place_labels(self) -> None:
        """Put each label past its arrow's tip, moved down while it would cover one placed
        before (short or parallel arrows otherwise stack their labels on top of each other)."""
        vb = self.plot.vb
        placed: list[QRectF] = []
        point = self.segments.get("perturbed")
        if point is not None:
            at = vb.mapViewToDevice(QPointF(float(point.start[0]), float(point.start[1])))
            if at is not None:
                size = self.perturbed_label.textItem.boundingRect()
                placed.append(QRectF(at.x() + 4, at.y() - size.height() - 4,
                                     size.width(), size.height()))
                placed.append(QRectF(at.x() - 8, at.y() - 8, 16, 16))  # the marker itself
        for key in LABEL_ORDER:
            arrow = self.arrows[key]
            if arrow.segment is None or arrow.label_at is None or not arrow.segment.label:
                continue
            size = arrow.label.textItem.boundingRect()
            ax, ay = arrow.label.anchor.x(), arrow.label.anchor.y()
            x, y = arrow.label_at.x(), arrow.label_at.y()
            for _ in range(8):
                rect = QRectF(x - ax * size.width(), y - ay * size.height(),
                              size.width(), size.height())
                if not any(rect.intersects(other) for other in placed):
                    break
                y += size.height() * 0.55 + 2
            placed.append(rect)
            pos = vb.mapDeviceToView(QPointF(x, y))
            if pos is not None:
                arrow.label.setPos(pos)

    def _update_legend(self) -> None:
        keys = tuple(key for key in SEGMENTS if key in self.segments)
        # No overlay (a surface switch, runs not yet computed): hide the legend but keep
        # its rows. Emptying a LegendItem closes each row's widgets (23 ms for the course's
        # rows, under cProfile), and the same rows come back with the next result.
        self.legend.setVisible(bool(keys))
        if not keys or keys == self._legend_keys:
            return
        self._legend_keys = keys
        self.legend.set_rows([(key, self.arrows[key].line, LEGEND[key]) for key in keys])


def make_overlay_actions(parent, overlays: StepOverlays, settings=None) -> list[QAction]:
    """Checkable View-menu actions, one per overlay kind; ``settings()`` (a QSettings or
    None) remembers each choice under ``overlays/<key>``."""
    actions = []
    for kind in KINDS:
        action = QAction(kind.title, parent)
        action.setObjectName(f"overlay-{kind.key}")
        action.setCheckable(True)
        action.setShortcut(QKeySequence(kind.shortcut))
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.setToolTip(f"{kind.help} ({kind.shortcut})")
        action.setStatusTip(kind.help)
        store = settings() if settings else None
        on = overlays.enabled[kind.key]
        if store is not None:
            on = str(store.value(f"overlays/{kind.key}", on)).lower() in ("true", "1")
        action.setChecked(on)
        overlays.set_enabled(kind.key, on)

        def toggled(checked: bool, key: str = kind.key) -> None:
            overlays.set_enabled(key, checked)
            s = settings() if settings else None
            if s is not None:
                s.setValue(f"overlays/{key}", "true" if checked else "false")

        action.toggled.connect(toggled)
        parent.addAction(action)  # window-level shortcut
        actions.append(action)
    return actions

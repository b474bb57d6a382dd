"""The two plots: the contour view with optimizer paths, and loss versus step.

Both follow pyqtgraph's performance habits: every graphics item is created once (per surface
or per run) and later only fed with ``setData``; the contour grid, colour image and isolines
are computed once per surface. Views are passive: they are told what to draw by
:class:`optgui.mainwindow.MainWindow` from the controller's snapshots, and report user
gestures (a click that moves the start point) as signals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters  # noqa: F401  (registers pg.exporters)
from PySide6.QtCore import QBuffer, QIODevice, QPointF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPen
from PySide6.QtWidgets import QGraphicsItem

from engine import Surface, Trajectory
from optgui.playground.config import RunConfig
from optgui.playground.contours import ContourData, compute_contours

BACKGROUND = "#17171f"
AXIS_COLOR = "#b8b8c8"
ISOLINE_COLOR = (255, 255, 255, 80)
MAX_MARKERS = 400  # beyond this many visible points a path is drawn as a plain line
MAX_PATH_POINTS = 800  # longer paths are thinned evenly before drawing


def legend_text(spec_text: str, traj: Trajectory | None, error: str = "") -> str:
    """The legend label of a run: its spec string, plus how it ended if not normally."""
    if error:
        return f"{spec_text} (error)"
    if traj is not None and traj.diverged_at is not None:
        return f"{spec_text} (diverged at step {traj.diverged_at})"
    return spec_text


def decimate(points: np.ndarray, limit: int = MAX_PATH_POINTS) -> np.ndarray:
    """At most ``limit`` points of a long path, always keeping the first and the last.

    Paths are parametric (x is not monotonic), so pyqtgraph's x-based downsampling does not
    apply; thinning evenly is invisible at screen resolution for long converging runs and
    keeps each animation frame cheap.
    """
    n = len(points)
    if n <= limit:
        return points
    idx = np.linspace(0, n - 1, limit).round().astype(int)
    return points[idx]


def png_bytes(image: QImage) -> bytes:
    """Encode a QImage as PNG in memory, so the file itself can be written atomically."""
    buf = QBuffer()
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buf, "PNG"):
        raise OSError("could not encode the image as PNG")
    return bytes(buf.data())


def _style_axes(plot: pg.PlotItem, bottom: str, left: str) -> None:
    font = QFont()
    font.setPointSizeF(9.0)
    for name, text in (("bottom", bottom), ("left", left)):
        axis = plot.getAxis(name)
        axis.setPen(pg.mkPen(AXIS_COLOR))
        axis.setTextPen(pg.mkPen(AXIS_COLOR))
        axis.setTickFont(font)
        axis.setLabel(text, color=AXIS_COLOR, **{"font-size": "10pt"})


def _line_pen(color: str | QColor, width: float) -> QPen:
    pen = pg.mkPen(color, width=width)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    return pen


def _shadow_pen(width: float) -> QPen:
    return _line_pen(QColor(0, 0, 0, 170), width)


@dataclass
class _PathItems:
    shadow: pg.PlotDataItem
    line: pg.PlotDataItem
    head: pg.ScatterPlotItem
    color: str = ""


class _PlotWidget(pg.PlotWidget):
    """What both plots share: rendering the plot (not the widget) as an image for export."""

    def render_image(self, width: int | None = None) -> QImage:
        exporter = pg.exporters.ImageExporter(self.getPlotItem())
        if width:
            exporter.parameters()["width"] = int(width)
        return exporter.export(toBytes=True)


class ContourPlot(_PlotWidget):
    """Filled colour map + isolines + colour bar + minima, and one path per run.

    Used by the window and, unchanged, by :func:`optgui.playground.render.save_contour_png`, so the
    exported picture is the one on screen.
    """

    startPicked = Signal(float, float)
    hovered = Signal(float, float)

    def __init__(self, parent=None) -> None:
        super().__init__(parent, background=BACKGROUND)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # a click takes focus off spin boxes
        self.setToolTip("Click to move the start point · scroll to zoom · drag to pan")
        plot = self.getPlotItem()
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.vb.setDefaultPadding(0.0)
        plot.layout.setContentsMargins(4, 12, 8, 4)  # room for the top tick label
        _style_axes(plot, "w1", "w2")
        self._plot = plot
        self._surface_key: tuple | None = None
        self.contours: ContourData | None = None

        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setZValue(-20)
        plot.addItem(self.image)
        self.colorbar = pg.ColorBarItem(
            colorMap="viridis", interactive=False, width=14, colorMapMenu=False,
        )
        self.colorbar.setImageItem(self.image, insert_in=plot)
        cb_axis = self.colorbar.axis
        cb_axis.setPen(pg.mkPen(AXIS_COLOR))
        cb_axis.setTextPen(pg.mkPen(AXIS_COLOR))

        self.isolines = pg.PlotDataItem(connect="pairs", pen=pg.mkPen(ISOLINE_COLOR, width=1))
        self.isolines.setZValue(-10)
        plot.addItem(self.isolines)
        # the colour map and isolines only change with the surface or the zoom: cache their
        # rendering so an animation frame repaints just the paths (3x faster on software GL)
        for static in (self.image, self.isolines.curve):
            static.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)

        self.minima = pg.ScatterPlotItem(
            symbol="star", size=17, brush=pg.mkBrush("#ffffff"), pen=pg.mkPen("#000000", width=1)
        )
        self.minima.setZValue(5)
        plot.addItem(self.minima)
        self.local_minima = pg.ScatterPlotItem(
            symbol="star", size=15, brush=pg.mkBrush(0, 0, 0, 0), pen=pg.mkPen("#ffffff", width=1.5)
        )
        self.local_minima.setZValue(5)
        plot.addItem(self.local_minima)
        self.start_marker = pg.ScatterPlotItem(
            symbol="s", size=11, brush=pg.mkBrush(0, 0, 0, 0), pen=pg.mkPen("#ffffff", width=2)
        )
        self.start_marker.setZValue(6)
        plot.addItem(self.start_marker)

        self.legend = pg.LegendItem(
            offset=(-8, 8), labelTextColor="#eeeeee", labelTextSize="9pt",
            brush=pg.mkBrush(20, 20, 28, 200), pen=pg.mkPen(255, 255, 255, 60),
            verSpacing=-4,
        )
        self.legend.setParentItem(plot.vb)

        self._paths: dict[int, _PathItems] = {}
        self._trajs: dict[int, Trajectory] = {}
        self._selected: int | None = None
        self._step = 0

        self.scene().sigMouseClicked.connect(self._on_click)
        self.scene().sigMouseMoved.connect(self._on_move)

    # ------------------------------------------------------------------ surface
    def set_surface(self, surface: Surface, force: bool = False) -> None:
        key = (surface.name, tuple(surface.view), id(surface))
        if key == self._surface_key and not force:
            return
        self._surface_key = key
        data = compute_contours(surface)
        self.contours = data
        x0, x1 = float(data.xs[0]), float(data.xs[-1])
        y0, y1 = float(data.ys[0]), float(data.ys[-1])
        finite = data.image[np.isfinite(data.image)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if hi <= lo:
            hi = lo + 1.0
        self.image.setImage(np.nan_to_num(data.image, nan=hi), autoLevels=False)
        self.image.setRect(x0, y0, x1 - x0, y1 - y0)
        self.colorbar.setLevels((lo, hi))
        self.colorbar.axis.setLogMode(False, data.log)
        self.colorbar.axis.setLabel(
            "f − min f  (log scale)" if data.log else "f(w1, w2)", color=AXIS_COLOR
        )
        segs = data.segments
        if len(segs):
            self.isolines.setData(segs[:, 0], segs[:, 1])
        else:
            self.isolines.setData([], [])
        if surface.minima:
            m = np.asarray(surface.minima, dtype=float)
            self.minima.setData(m[:, 0], m[:, 1])
            self.minima.setToolTip(
                "Known minima: " + ", ".join(f"({a:g}, {b:g})" for a, b in surface.minima)
            )
        else:
            self.minima.setData([], [])
        local = getattr(surface, "local_minima", ())
        if local:  # hollow stars: minima worth seeing that are not global (sharp_flat's hole)
            m = np.asarray(local, dtype=float)
            self.local_minima.setData(m[:, 0], m[:, 1])
            self.local_minima.setToolTip(
                "Local minima: " + ", ".join(f"({a:.3g}, {b:.3g})" for a, b in local)
            )
        else:
            self.local_minima.setData([], [])
        self.reset_view()

    def reset_view(self) -> None:
        if self.contours is None:
            return
        xs, ys = self.contours.xs, self.contours.ys
        self._plot.vb.setRange(
            xRange=(xs[0], xs[-1]), yRange=(ys[0], ys[-1]), padding=0.0
        )

    def set_start(self, start) -> None:
        self.start_marker.setData([start[0]], [start[1]])

    # ------------------------------------------------------------------ runs
    def update_runs(
        self,
        config: RunConfig,
        trajectories: Mapping[int, Trajectory],
        errors: Mapping[int, str] | None = None,
        selected: int | None = None,
    ) -> None:
        """Sync path items with the configured runs (create once, then only setData)."""
        errors = errors or {}
        self._selected = selected
        ids = {r.run_id for r in config.runs}
        for rid in list(self._paths):
            if rid not in ids:
                items = self._paths.pop(rid)
                for item in (items.shadow, items.line, items.head):
                    self._plot.removeItem(item)
        self._trajs = {}
        self.legend.clear()
        for z, entry in enumerate(config.runs):
            items = self._paths.get(entry.run_id)
            if items is None:
                items = _PathItems(
                    shadow=pg.PlotDataItem(connect="finite"),
                    line=pg.PlotDataItem(connect="finite"),
                    head=pg.ScatterPlotItem(size=13),
                )
                for item in (items.shadow, items.line, items.head):
                    self._plot.addItem(item)
                self._paths[entry.run_id] = items
            emphasis = entry.run_id == selected
            width = 3.0 if emphasis else 2.0
            base = 10 + 3 * z + (100 if emphasis else 0)
            items.shadow.setZValue(base)
            items.line.setZValue(base + 1)
            items.head.setZValue(base + 2)
            items.shadow.setPen(_shadow_pen(width + 2.5))
            items.line.setPen(_line_pen(entry.color, width))
            items.line.setSymbolBrush(pg.mkBrush(entry.color))
            items.line.setSymbolPen(pg.mkPen(0, 0, 0, 160, width=0.8))
            items.head.setBrush(pg.mkBrush(entry.color))
            items.head.setPen(pg.mkPen("#ffffff", width=2))
            items.color = entry.color
            traj = trajectories.get(entry.run_id)
            visible = entry.enabled and traj is not None
            for item in (items.shadow, items.line, items.head):
                item.setVisible(visible)
            if visible:
                self._trajs[entry.run_id] = traj
            if entry.enabled:
                self.legend.addItem(
                    items.line, legend_text(entry.label, traj, errors.get(entry.run_id, ""))
                )
        self.set_step(self._step)

    def set_step(self, k: int) -> None:
        self._step = int(k)
        for rid, traj in self._trajs.items():
            items = self._paths[rid]
            n = traj.at(self._step)
            pts = decimate(traj.points[: n + 1])
            symbol = "o" if n + 1 <= MAX_MARKERS else None
            items.shadow.setData(pts[:, 0], pts[:, 1])
            items.line.setData(pts[:, 0], pts[:, 1], symbol=symbol, symbolSize=6)
            head = traj.points[n]
            items.head.setData([head[0]], [head[1]])

    # ------------------------------------------------------------------ interaction
    def _view_point(self, scene_pos) -> QPointF | None:
        vb = self._plot.vb
        if not vb.sceneBoundingRect().contains(scene_pos):
            return None
        return vb.mapSceneToView(scene_pos)

    def _on_click(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton or ev.double():
            return
        p = self._view_point(ev.scenePos())
        if p is not None:
            ev.accept()
            self.startPicked.emit(float(p.x()), float(p.y()))

    def _on_move(self, scene_pos) -> None:
        p = self._view_point(scene_pos)
        if p is not None:
            self.hovered.emit(float(p.x()), float(p.y()))

    def view_to_widget(self, x: float, y: float):
        """Widget (viewport) coordinates of the view point (x, y); used by tests."""
        scene = self._plot.vb.mapViewToScene(QPointF(x, y))
        return self.mapFromScene(scene)


class LossPlot(_PlotWidget):
    """Loss against step for every run, with the current step marked."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent, background=BACKGROUND)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        plot = self.getPlotItem()
        plot.setMenuEnabled(False)
        plot.hideButtons()
        # no grid: pyqtgraph draws it as part of the axes, which would then be repainted on
        # every animation frame (the moving step line crosses them)
        _style_axes(plot, "step", "loss f(w)")
        self._plot = plot
        self.step_line = pg.InfiniteLine(
            angle=90, movable=False, pen=pg.mkPen(255, 255, 255, 140, width=1,
                                                   style=Qt.PenStyle.DashLine)
        )
        self.step_line.setZValue(50)
        plot.addItem(self.step_line)
        self._curves: dict[int, tuple[pg.PlotDataItem, pg.PlotDataItem]] = {}
        self._trajs: dict[int, Trajectory] = {}
        self._log = False
        self._step = 0
        self._steps = 0

    def set_log(self, log: bool) -> None:
        self._log = bool(log)
        self._refresh_curves()
        self._plot.setLogMode(x=False, y=self._log)
        self._plot.enableAutoRange()

    @property
    def log(self) -> bool:
        return self._log

    def update_runs(
        self, config: RunConfig, trajectories: Mapping[int, Trajectory], selected=None
    ) -> None:
        ids = {r.run_id for r in config.runs}
        for rid in list(self._curves):
            if rid not in ids:
                for item in self._curves.pop(rid):
                    self._plot.removeItem(item)
        self._trajs = {}
        for z, entry in enumerate(config.runs):
            pair = self._curves.get(entry.run_id)
            if pair is None:
                pair = (pg.PlotDataItem(connect="finite"), pg.PlotDataItem(pen=None))
                pair[0].setClipToView(True)
                pair[0].setDownsampling(auto=True, method="peak")  # x (step) is monotonic
                for item in pair:
                    self._plot.addItem(item)
                self._curves[entry.run_id] = pair
            curve, head = pair
            emphasis = entry.run_id == selected
            curve.setPen(_line_pen(entry.color, 2.5 if emphasis else 1.6))
            curve.setZValue(10 + z + (100 if emphasis else 0))
            head.setZValue(200)
            head.setSymbol("o")
            head.setSymbolSize(9)
            head.setSymbolBrush(pg.mkBrush(entry.color))
            head.setSymbolPen(pg.mkPen("#ffffff", width=1.5))
            traj = trajectories.get(entry.run_id)
            visible = entry.enabled and traj is not None
            curve.setVisible(visible)
            head.setVisible(visible)
            if visible:
                self._trajs[entry.run_id] = traj
        self._steps = config.steps
        self._plot.setXRange(0, max(1, config.steps), padding=0.02)
        self._refresh_curves()
        self.set_step(self._step)
        self._plot.enableAutoRange(axis="y")

    def _y(self, losses: np.ndarray) -> np.ndarray:
        if not self._log:
            return losses
        # log axes cannot show f ≤ 0 (saddles, negative minima): leave gaps instead
        return np.where(losses > 0, losses, np.nan)

    def _refresh_curves(self) -> None:
        for rid, traj in self._trajs.items():
            curve, _ = self._curves[rid]
            steps = np.arange(len(traj.losses))
            curve.setData(steps, self._y(traj.losses))

    def set_step(self, k: int) -> None:
        self._step = int(k)
        self.step_line.setValue(self._step)
        for rid, traj in self._trajs.items():
            _, head = self._curves[rid]
            n = traj.at(self._step)
            y = self._y(traj.losses[n : n + 1])
            if np.isfinite(y[0]):
                head.setData([n], y)
            else:  # f ≤ 0 on a log axis: nothing to mark
                head.setData([], [])

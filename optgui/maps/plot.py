"""One map drawn with pyqtgraph: a basin map (colour = the minimum reached, shade = how
fast) or a phase diagram (log₁₀ final loss or steps to tolerance, with the analytic
stability boundary where theory gives one).

The window's Maps view and ``python main.py map --png`` draw with this very widget, so the
PNG is the picture on screen. A click on a cell emits :attr:`MapPlot.cellClicked` with what
that cell's run was: ``{"start": (x, y)}`` or ``{"lr": …, "momentum": …}``.
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal

from engine.maps import (
    BASIN,
    DIVERGED_COLOR,
    MINIMUM_COLORS,
    NONE_COLOR,
    MapResult,
    basin_rgb,
    boundary_lines,
    describe,
    phase_rgb,
    phase_values,
    plot_axes,
)
from optgui.playground.plots import AXIS_COLOR, BACKGROUND, _PlotWidget, _style_axes

BOUNDARY_COLOR = "#ff5a5a"


def _hex(rgb) -> str:
    r, g, b = (int(c) for c in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


class MapPlot(_PlotWidget):
    """A map as an image over its axes, with minima, boundary and a legend."""

    cellClicked = Signal(dict)
    hovered = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent, background=BACKGROUND)
        plot = self.getPlotItem()
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.vb.setDefaultPadding(0.0)
        plot.layout.setContentsMargins(4, 12, 8, 4)
        _style_axes(plot, "w1", "w2")
        self._plot = plot
        self.result: MapResult | None = None
        self.quantity = "loss"
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setZValue(-20)
        plot.addItem(self.image)
        self.minima = pg.ScatterPlotItem(symbol="star", size=16, brush=pg.mkBrush("#ffffff"),
                                         pen=pg.mkPen("#000000", width=1))
        self.minima.setZValue(5)
        plot.addItem(self.minima)
        self.marker = pg.ScatterPlotItem(symbol="s", size=11, brush=pg.mkBrush(0, 0, 0, 0),
                                         pen=pg.mkPen("#ffffff", width=2))
        self.marker.setZValue(6)
        plot.addItem(self.marker)
        self.boundary = pg.PlotDataItem(pen=pg.mkPen(BOUNDARY_COLOR, width=2.5,
                                                     style=Qt.PenStyle.DashLine),
                                        connect="finite")
        self.boundary.setZValue(4)
        plot.addItem(self.boundary)
        for name in ("bottom", "left"):
            plot.getAxis(name).enableAutoSIPrefix(False)
        self.legend = pg.LegendItem(offset=(-8, 8), labelTextColor="#eeeeee",
                                    labelTextSize="9pt", brush=pg.mkBrush(20, 20, 28, 200),
                                    pen=pg.mkPen(255, 255, 255, 60), verSpacing=-4)
        self.legend.setParentItem(plot.vb)
        self.title = ""
        self.scene().sigMouseClicked.connect(self._on_click)
        self.scene().sigMouseMoved.connect(self._on_move)
        self.setToolTip("Click a cell to send its start point (basin map) or its "
                        "hyperparameters (phase diagram) to the selected run")

    # ------------------------------------------------------------------ drawing
    def set_result(self, res: MapResult, quantity: str | None = None) -> None:
        """Draw ``res`` (``quantity``: "loss" or "steps" for a phase diagram)."""
        if quantity is not None:
            self.quantity = quantity
        first = self.result is None or self.result.request.kind != res.request.kind or (
            plot_axes(self.result.request)[0][[0, -1]].tolist()
            != plot_axes(res.request)[0][[0, -1]].tolist())
        self.result = res
        req = res.request
        xs, ys = plot_axes(req)
        if res.kind == BASIN:
            rgb = basin_rgb(res)
            _style_axes(self._plot, "w1 (start)", "w2 (start)")
        else:
            rgb, _ = phase_rgb(res, self.quantity)
            names = [(f"log₁₀ {s.name}" if s.log else s.name) for s in req.sweeps]
            _style_axes(self._plot, names[0], names[1] if len(names) > 1 else "")
        self.image.setImage(rgb, levels=(0, 255), autoLevels=False)
        dx = (xs[-1] - xs[0]) / max(1, len(xs) - 1) if len(xs) > 1 else 1.0
        dy = (ys[-1] - ys[0]) / max(1, len(ys) - 1) if len(ys) > 1 else 1.0
        self.image.setRect(QRectF(xs[0] - dx / 2, ys[0] - dy / 2, dx * len(xs), dy * len(ys)))
        self._plot.getAxis("left").setStyle(showValues=len(ys) > 1)
        if res.kind == BASIN and len(res.minima):
            self.minima.setData(pos=res.minima)
        else:
            self.minima.setData([])
        lines, condition = boundary_lines(res)
        if lines:
            pts = np.concatenate([np.vstack([ln, [np.nan, np.nan]]) for ln in lines])
            self.boundary.setData(pts[:, 0], pts[:, 1])
        else:
            self.boundary.setData([], [])
        self._legend(res, condition)
        if first:
            self.reset_view()

    def _legend(self, res: MapResult, condition: str) -> None:
        self.legend.clear()

        def swatch(color, text, symbol="s"):
            item = pg.ScatterPlotItem(symbol=symbol, size=10, brush=pg.mkBrush(color),
                                      pen=pg.mkPen("#000000"))
            self.legend.addItem(item, html.escape(text))

        if res.kind == BASIN:
            for k in range(len(res.minima)):
                if np.any(res.minimum == k):
                    m = res.minima[k]
                    swatch(_hex(MINIMUM_COLORS[k % len(MINIMUM_COLORS)]),
                           f"→ ({m[0]:.3g}, {m[1]:.3g})")
            if np.any((res.minimum < 0) & ~res.diverged):
                swatch(_hex(NONE_COLOR), "no known minimum")
            if np.any(res.diverged):
                swatch(_hex(DIVERGED_COLOR), "diverged")
        else:
            v, label = phase_values(res, self.quantity)
            finite = v[np.isfinite(v)]
            if finite.size:
                swatch("#fde725", f"{label}: {finite.max():.3g}")
                swatch("#440154", f"{label}: {finite.min():.3g}")
            if np.any(~np.isfinite(v)):
                swatch(_hex(DIVERGED_COLOR),
                       "diverged" if self.quantity == "loss" else "diverged / never")
            if condition:
                item = pg.PlotDataItem(pen=pg.mkPen(BOUNDARY_COLOR, width=2.5,
                                                    style=Qt.PenStyle.DashLine))
                self.legend.addItem(item, html.escape(f"stable: {condition}"))

    def reset_view(self) -> None:
        rect = self.image.mapRectToParent(self.image.boundingRect())
        self._plot.vb.setRange(rect, padding=0.0)

    def set_marker(self, x: float | None, y: float | None) -> None:
        """Mark the cell of the run in the race (None: no mark)."""
        if x is None or y is None:
            self.marker.setData([])
        else:
            self.marker.setData([x], [y])

    # ------------------------------------------------------------------ mouse
    def _cell(self, scene_pos):
        if self.result is None:
            return None
        vb = self._plot.vb
        if not vb.sceneBoundingRect().contains(scene_pos):
            return None
        p = vb.mapSceneToView(scene_pos)
        y = p.y() if len(self.result.ys) > 1 else 0.0
        return self.result.cell_at(p.x(), y)

    def _on_click(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton or ev.double():
            return
        cell = self._cell(ev.scenePos())
        if cell is not None:
            ev.accept()
            self.cellClicked.emit(self.result.setting(*cell))

    def _on_move(self, scene_pos) -> None:
        cell = self._cell(scene_pos)
        if cell is None:
            return
        res = self.result
        i = res.cell(*cell)
        what = ", ".join(f"{k}={v:.4g}" if not isinstance(v, tuple)
                         else f"start=({v[0]:.3g}, {v[1]:.3g})"
                         for k, v in res.setting(*cell).items())
        if res.diverged[i]:
            end = "diverged"
        else:
            k = res.steps_to_tol[i]
            end = (f"ends at ({res.points[i, 0]:.3g}, {res.points[i, 1]:.3g}), loss "
                   f"{res.losses[i]:.3g}, " + (f"converged in {k} steps" if k >= 0
                                               else "not converged"))
        self.hovered.emit(f"{what}: {end}")

    def cell_to_widget(self, row: int, col: int):
        """Widget coordinates of a cell's centre; used by tests."""
        xs, ys = plot_axes(self.result.request)
        scene = self._plot.vb.mapViewToScene(QPointF(float(xs[col]), float(ys[row])))
        return self.mapFromScene(scene)

    def summary(self) -> str:
        return describe(self.result) if self.result is not None else ""


def render_map_image(res: MapResult, size: tuple[int, int] = (900, 700), title: str = "",
                     quantity: str = "loss"):
    """The map as a QImage of ``size`` pixels (headless; see :mod:`optgui.playground.render`)."""
    from optgui.playground.render import _ensure_app

    _app = _ensure_app()
    plot = MapPlot()
    try:
        plot.resize(int(size[0]), int(size[1]))
        if title:
            plot.getPlotItem().setTitle(title, color=AXIS_COLOR, size="11pt")
        plot.set_result(res, quantity)
        plot.reset_view()
        return plot.grab().toImage()
    finally:
        plot.deleteLater()


def save_map_png(res: MapResult, path, size: tuple[int, int] = (900, 700), title: str = "",
                 quantity: str = "loss") -> None:
    """Write the map's picture to ``path`` (PNG), atomically."""
    from engine.export import atomic_write
    from optgui.playground.plots import png_bytes

    atomic_write(path, png_bytes(render_map_image(res, size, title, quantity)))

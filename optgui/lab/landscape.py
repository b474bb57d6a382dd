"""Loss-landscape panels: one per optimizer, all on ONE colour scale, filled row by row as
the child streams :class:`engine.training.LandscapeRow` events.

Built from the playground's pieces: the viridis colour map and colour bar of its contour
plot, its level choice (:func:`optgui.playground.contours.use_log_levels`,
:func:`~optgui.playground.contours.contour_levels`) and its vectorized marching squares for
the isolines. The scale is shared: the levels come from every optimizer's losses together,
so a sharper minimum shows as tighter rings, not as a different colour legend. On a PCA
plane the training path is drawn over the slice (white, start hollow, end filled), and its
points' distances from the plane are in the panel title and in each point's tooltip: the
path is not in the plane, so the contours under it are the plane's, not the path's.

Imports Qt; :func:`save_landscape_png` renders offscreen for the command line.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from engine.export import atomic_write
from engine.training import TrainingHistory
from optgui.lab.plots import AXIS_COLOR, BACKGROUND, TITLE_SIZE, color, render_offscreen
from optgui.playground.contours import contour_levels, marching_squares, use_log_levels
from optgui.playground.plots import png_bytes

ISOLINE_COLOR = (255, 255, 255, 70)
PNG_SIZE = (1600, 800)


def shared_scale(grids: list[np.ndarray]):
    """(log, zmin, offset, levels, lo, hi) in display units for all ``grids`` together."""
    finite = [g[np.isfinite(g)] for g in grids]
    z = np.concatenate(finite) if finite else np.zeros(0)
    if z.size == 0:
        return False, 0.0, 0.0, np.zeros(0), 0.0, 1.0
    log = use_log_levels(z)
    levels, offset = contour_levels(z, log)
    zmin = float(z.min())
    shown = np.log10(z - zmin + offset) if log else z
    lo, hi = float(shown.min()), float(shown.max())
    return log, zmin, offset, levels, lo, hi if hi > lo else lo + 1.0


def to_display(Z: np.ndarray, log: bool, zmin: float, offset: float) -> np.ndarray:
    Z = np.where(np.isfinite(Z), Z, np.nan)
    if not log:
        return Z
    with np.errstate(all="ignore"):
        return np.log10(Z - zmin + offset)


class _Panel:
    def __init__(self, plot: pg.PlotItem, index: int) -> None:
        self.plot = plot
        self.index = index
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.colormap.get("viridis"))
        plot.addItem(self.image)
        self.isolines = pg.PlotDataItem(connect="pairs", pen=pg.mkPen(ISOLINE_COLOR, width=1))
        plot.addItem(self.isolines)
        self.path = pg.PlotDataItem(pen=pg.mkPen("#ffffff", width=1.5))
        plot.addItem(self.path)
        self.points = pg.ScatterPlotItem(size=7, pen=pg.mkPen("#000000"), hoverable=True,
                                         tip=self._tip)
        plot.addItem(self.points)
        self.minimum = pg.ScatterPlotItem(symbol="star", size=15, brush=pg.mkBrush("#ffffff"),
                                          pen=pg.mkPen("#000000"))
        plot.addItem(self.minimum)
        self.rect: tuple | None = None

    @staticmethod
    def _tip(x, y, data):
        epoch, distance = data
        return (f"kept at epoch {epoch:.2f}\nα {x:.4g}, β {y:.4g}\n"
                f"distance from the plane {distance:.4g}")


class LandscapePanels:
    """The panels of one run inside ``layout`` (a ``pg.GraphicsLayout``); :meth:`update`
    redraws them from a :class:`TrainingHistory` (cheap: one image and one marching-squares
    pass per panel, on grids of at most a few hundred points a side)."""

    def __init__(self, layout: pg.GraphicsLayout) -> None:
        self.layout = layout
        self.panels: dict[str, _Panel] = {}
        self.colorbar: pg.ColorBarItem | None = None
        self.scale = None

    def clear(self) -> None:
        self.layout.clear()
        self.panels = {}
        self.colorbar = None

    def _panel(self, name: str, index: int) -> _Panel:
        panel = self.panels.get(name)
        if panel is None:
            plot = self.layout.addPlot(row=0, col=len(self.panels))
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.vb.setDefaultPadding(0.0)
            for side in ("left", "bottom"):
                axis = plot.getAxis(side)
                axis.setPen(pg.mkPen(AXIS_COLOR))
                axis.setTextPen(pg.mkPen(AXIS_COLOR))
            plot.setLabel("bottom", "α", color=AXIS_COLOR)
            plot.setLabel("left", "β", color=AXIS_COLOR)
            panel = self.panels[name] = _Panel(plot, index)
            # the panels share the width equally; the colour bar takes only what it needs
            self.layout.layout.setColumnStretchFactor(len(self.panels) - 1, 1)
            if self.colorbar is None:
                self.colorbar = pg.ColorBarItem(colorMap="viridis", interactive=False,
                                                width=14, colorMapMenu=False)
                self.colorbar.axis.setPen(pg.mkPen(AXIS_COLOR))
                self.colorbar.axis.setTextPen(pg.mkPen(AXIS_COLOR))
                self.layout.addItem(self.colorbar, row=0, col=99)
                self.layout.layout.setColumnStretchFactor(99, 0)
        return panel

    def update(self, history: TrainingHistory) -> None:
        grids = {}
        indices = {r.optimizer: r.index for r in history.landscape_rows}
        for name in indices:
            got = history.landscape(name)
            if got is not None:
                grids[name] = got
        if not grids:
            return
        scale = shared_scale([g[2] for g in grids.values()])
        log, zmin, offset, levels, lo, hi = scale
        self.scale = scale
        paths = {p.optimizer: p for p in history.landscape_paths}
        for name, (alphas, betas, losses, _accs) in grids.items():
            index = indices[name]
            panel = self._panel(name, index)
            axis = alphas  # the grid is square: β takes the same values as α
            shown = to_display(losses, log, zmin, offset)
            panel.image.setImage(shown, autoLevels=False, levels=(lo, hi))
            x0, x1 = float(axis[0]), float(axis[-1])
            step = (x1 - x0) / max(1, len(axis) - 1)
            rect = (x0 - step / 2, x0 - step / 2, x1 - x0 + step, x1 - x0 + step)
            if panel.rect != rect:
                panel.image.setRect(*rect)
                panel.plot.setRange(xRange=(rect[0], rect[0] + rect[2]),
                                    yRange=(rect[1], rect[1] + rect[3]), padding=0)
                panel.rect = rect
            segs = marching_squares(axis, axis, shown, levels)
            if len(segs):
                panel.isolines.setData(segs[:, 0], segs[:, 1])
            else:
                panel.isolines.setData([], [])
            done = int(np.isfinite(betas).sum())
            panel.minimum.setData([0.0], [0.0])
            title = f'<span style="color:{color(index)}">━</span> {html.escape(name)}'
            path = paths.get(name)
            if path is not None:
                panel.path.setData(path.alphas, path.betas)
                brushes = [pg.mkBrush("#ffffff") if k else pg.mkBrush(0, 0, 0, 0)
                           for k in range(len(path.alphas))]
                panel.points.setData(path.alphas, path.betas, brush=brushes,
                                     pen=pg.mkPen("#ffffff"),
                                     data=list(zip(path.epochs, path.distances, strict=True)))
                title += (f"<br>PCA plane ({100 * path.explained[0]:.0f}% + "
                          f"{100 * path.explained[1]:.0f}% of the path's variance); path "
                          f"off the plane by ≤ {max(path.distances):.3g}")
            if done < len(betas):
                title += f"  ·  row {done}/{len(betas)}"
            panel.plot.setTitle(f'<span style="color:#e4e4ee">{title}</span>',
                                size=TITLE_SIZE)
        if self.colorbar is not None:
            self.colorbar.setLevels((lo, hi))
            self.colorbar.axis.setLogMode(False, log)
            self.colorbar.axis.setLabel("loss − min loss (log)" if log else "training loss",
                                        color=AXIS_COLOR)


def render_landscapes(history: TrainingHistory, size: tuple[int, int] = PNG_SIZE):
    """The landscape panels of ``history`` as a QImage of ``size`` pixels (offscreen)."""
    QApplication.instance() or QApplication([])
    widget = pg.GraphicsLayoutWidget()
    widget.setBackground(BACKGROUND)
    try:
        panels = LandscapePanels(widget.ci)
        panels.update(history)
        return render_offscreen(widget, size)
    finally:
        widget.close()
        widget.deleteLater()


def save_landscape_png(history: TrainingHistory, path: str | os.PathLike,
                       size: tuple[int, int] = PNG_SIZE) -> None:
    """Write the landscape panels as a PNG, atomically."""
    if not history.landscape_rows:
        raise OSError(f"no landscape was computed for {Path(path).name}")
    image = render_landscapes(history, size)
    if image.isNull():
        raise OSError(f"could not render the landscape for {Path(path).name}")
    atomic_write(path, png_bytes(image))


class SharpnessPlots:
    """The generalization gap (train − validation accuracy, percentage points) and λ_max
    per epoch, one line per optimizer, with each optimizer's edge-of-stability line 2/η
    dashed in its colour (Cohen et al. 2021: full-batch GD's λ_max rises to 2/η and hovers
    there; above it, plain GD is unstable along the top eigenvector). Row 1 of ``layout``
    holds the landscape panels."""

    def __init__(self, layout: pg.GraphicsLayout) -> None:
        self.layout = layout
        top = layout.addLayout(row=0, col=0)
        self.gap = top.addPlot(row=0, col=0, title="Generalization gap")
        self.lam = top.addPlot(row=0, col=1, title="Sharpness λ_max (dashed: 2/η)")
        for plot, left in ((self.gap, "train − val accuracy (%)"), (self.lam, "λ_max")):
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.setTitle(plot.titleLabel.text, size=TITLE_SIZE, color="#e4e4ee")
            for side in ("left", "bottom"):
                axis = plot.getAxis(side)
                axis.setPen(pg.mkPen(AXIS_COLOR))
                axis.setTextPen(pg.mkPen(AXIS_COLOR))
            plot.setLabel("bottom", "epoch", color=AXIS_COLOR)
            plot.setLabel("left", left, color=AXIS_COLOR)
        self.gap.titleLabel.setToolTip("Training accuracy (on the labels trained on, noisy "
                                       "ones included) minus validation accuracy")
        self.lam.titleLabel.setToolTip("The Hessian's largest eigenvalue on the first "
                                       "sharpness samples, after each epoch")
        self.lam.setLogMode(False, True)
        self.landscape_layout = layout.addLayout(row=1, col=0)
        self.landscapes = LandscapePanels(self.landscape_layout)
        layout.layout.setRowStretchFactor(0, 2)
        layout.layout.setRowStretchFactor(1, 3)
        self.curves: dict[str, tuple] = {}

    def reset(self) -> None:
        for plot in (self.gap, self.lam):
            plot.clear()
        self.curves = {}
        self.landscapes.clear()

    def _items(self, name: str, index: int):
        items = self.curves.get(name)
        if items is None:
            pen = pg.mkPen(color(index), width=1.6)
            gap = self.gap.plot([], [], pen=pen, symbol="o", symbolSize=5,
                                symbolBrush=color(index), symbolPen=None)
            lam = self.lam.plot([], [], pen=pen, symbol="o", symbolSize=5,
                                symbolBrush=color(index), symbolPen=None)
            edge = pg.InfiniteLine(angle=0, movable=False,
                                   pen=pg.mkPen(color(index), width=1,
                                                style=Qt.PenStyle.DashLine))
            edge.setVisible(False)
            self.lam.addItem(edge, ignoreBounds=False)
            items = self.curves[name] = (gap, lam, edge)
        return items

    def update(self, history: TrainingHistory) -> None:
        shown: list[float] = []
        for index, name in enumerate(history.optimizers):
            rows = [r for r in history.results if r.optimizer == name]
            if not rows:
                continue
            gap, lam, edge = self._items(name, index)
            gap.setData([r.epoch for r in rows], [100 * r.gap for r in rows])
            measured = [r for r in rows if np.isfinite(r.lambda_max) and r.lambda_max > 0]
            lam.setData([r.epoch for r in measured], [r.lambda_max for r in measured])
            shown += [r.lambda_max for r in measured]
            lr = rows[-1].lr
            if measured and np.isfinite(lr) and lr > 0:
                edge.setPos(np.log10(2.0 / lr))  # the axis is log10 in log mode
                edge.setToolTip(f"{name}: 2/η = {2 / lr:.4g}")
                edge.setVisible(True)
                shown.append(2.0 / lr)
        if shown:  # the 2/η lines are always in view, however far from λ_max
            lo, hi = np.log10(min(shown)), np.log10(max(shown))
            self.lam.setYRange(lo - 0.1, hi + 0.1, padding=0)

    def update_landscape(self, history: TrainingHistory) -> None:
        self.landscapes.update(history)

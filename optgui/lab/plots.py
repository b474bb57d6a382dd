"""The lab's curves: the course's four plots plus the gradient norm by layer.

:class:`TrainingPlots` builds the plot items once into any ``pg.GraphicsLayout`` (the lab
tab embeds one in its window; :func:`save_curves_png` uses an offscreen
``GraphicsLayoutWidget``) and :meth:`TrainingPlots.update` only calls ``setData`` from a
:class:`engine.training.TrainingHistory`, following pyqtgraph's habit of creating items
once. The gradient-norm view puts the layers on the x axis (first to last) and the norm on
a log axis, one line per optimizer at its latest epoch: with plain SGD on a deep sigmoid
net the line climbs several decades from the first layer to the last, which is the
vanishing gradient at a glance.

Importing this module imports Qt; the command line does so only for ``--png``.
"""

from __future__ import annotations

import html
import os
import sys

if sys.platform.startswith("linux") and not (
    os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # headless: render without a screen

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402
import pyqtgraph.exporters  # noqa: E402,F401  (registers pg.exporters)
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from engine.export import atomic_write  # noqa: E402
from engine.training import TrainingHistory  # noqa: E402
from optgui.playground.plots import png_bytes  # noqa: E402

BACKGROUND = "#17171f"
AXIS_COLOR = "#b8b8c8"
# distinct on a dark background; the course's four get red, orange, blue, lime
COLORS = ("#ff5c5c", "#ffa630", "#4dd2ff", "#a6e22e", "#ff7ce0", "#f5f5f5", "#b39dff",
          "#ffd92f")
PANELS = (
    ("train_loss", "Train loss", "loss"),
    ("val_loss", "Validation loss", "loss"),
    ("train_acc", "Train accuracy", "accuracy (%)"),
    ("val_acc", "Validation accuracy", "accuracy (%)"),
)
PNG_SIZE = (1600, 900)
TITLE_SIZE = "10pt"


def color(i: int) -> str:
    return COLORS[i % len(COLORS)]


class TrainingPlots:
    """Four metric plots (row 0) and the gradient-norm-by-layer plot (row 1) of one run."""

    def __init__(self, layout: pg.GraphicsLayout, optimizers: tuple[str, ...], n_linear: int):
        self.optimizers: tuple[str, ...] = ()
        self.n_linear = 0
        self.plots: dict[str, pg.PlotItem] = {}
        self.curves: dict[str, list[pg.PlotDataItem]] = {}
        # four plots in a row fit beside the settings in a 1024-pixel window: titles a
        # little smaller than pyqtgraph's 11 pt (a title sets its plot's least width)
        layout.layout.setContentsMargins(2, 2, 2, 2)
        for col, (key, title, unit) in enumerate(PANELS):
            plot = layout.addPlot(row=0, col=col)
            plot.setTitle(title, size=TITLE_SIZE)
            _style(plot, "epoch", unit)
            self.plots[key] = plot
            self.curves[key] = []
        grad = layout.addPlot(row=1, col=0, colspan=len(PANELS))
        grad.setTitle("Gradient norm by layer (latest epoch; log scale)", size=TITLE_SIZE)
        _style(grad, "linear layer (input → output)", "‖∂loss/∂W‖ (mean over the epoch)")
        grad.setLogMode(x=False, y=True)
        grad.getAxis("left").enableAutoSIPrefix(False)
        # bottom right stays free: there the first layers' norms are tiny only on the left
        self.legend = grad.addLegend(offset=(-10, -10), labelTextSize="9pt")
        self.plots["grad_norms"] = grad
        self.curves["grad_norms"] = []
        self.set_runs(optimizers, n_linear)

    def set_runs(self, optimizers: tuple[str, ...], n_linear: int) -> None:
        """Show no data, for these optimizers and this depth: the items of the optimizers
        that remain are kept (creating a plot item costs milliseconds; a new run must not
        stall the window), only missing ones are created and extra ones removed."""
        optimizers = tuple(optimizers)
        for key, curves in self.curves.items():
            plot = self.plots[key]
            grad = key == "grad_norms"
            while len(curves) > len(optimizers):
                plot.removeItem(curves.pop())
            for i in range(len(curves), len(optimizers)):
                curves.append(plot.plot(
                    [], [], pen=pg.mkPen(color(i), width=2), symbol="s" if grad else "o",
                    symbolSize=7 if grad else 5, symbolBrush=color(i), symbolPen=None,
                    name=optimizers[i]))
            for curve, name in zip(curves, optimizers, strict=True):
                curve.setData([], [])
                curve.opts["name"] = name
        if optimizers != self.optimizers:
            self.legend.clear()
            for curve, name in zip(self.curves["grad_norms"], optimizers, strict=True):
                self.legend.addItem(curve, name)
        else:  # a new run of the same optimizers: none has diverged yet
            for (_, label), name in zip(self.legend.items, optimizers, strict=False):
                label.setText(name)
        if n_linear != self.n_linear:
            grad = self.plots["grad_norms"]
            grad.getAxis("bottom").setTicks([[(k, str(k)) for k in range(1, n_linear + 1)]])
            grad.setXRange(0.8, n_linear + 0.2, padding=0)
        self.optimizers = optimizers
        self.n_linear = n_linear

    def mark_diverged(self, index: int) -> None:
        """Say so in the legend: a diverged optimizer's curves stop (its sample greys out)."""
        curve = self.curves["grad_norms"][index]
        label = self.legend.getLabel(curve)
        if label is not None:
            label.setText(f"{self.optimizers[index]} (diverged)")

    def update(self, history: TrainingHistory) -> None:
        """Show everything ``history`` holds (cheap: only setData on existing items)."""
        for key in self.curves:
            self.update_plot(history, key)

    def update_plot(self, history: TrainingHistory, key: str) -> None:
        """Show what ``history`` holds in the plot ``key`` (a PANELS key or "grad_norms")."""
        for i, name in enumerate(self.optimizers):
            curve = self.curves[key][i]
            if key == "grad_norms":
                last = history.last(name)
                norms = np.asarray(last.grad_norms if last else (), float)
                keep = np.isfinite(norms) & (norms > 0)  # a log axis cannot show 0
                curve.setData(np.arange(1, len(norms) + 1)[keep], norms[keep])
            else:
                epochs, values = history.series(name, key)
                scale = 100.0 if key.endswith("acc") else 1.0
                curve.setData(np.asarray(epochs, float), scale * np.asarray(values, float))


def _style(plot: pg.PlotItem, bottom: str, left: str) -> None:
    plot.showGrid(x=True, y=True, alpha=0.2)
    for name, text in (("bottom", bottom), ("left", left)):
        axis = plot.getAxis(name)
        axis.setPen(pg.mkPen(AXIS_COLOR))
        axis.setTextPen(pg.mkPen(AXIS_COLOR))
        axis.setLabel(text, color=AXIS_COLOR)


def build_curves_widget(history: TrainingHistory) -> tuple[pg.GraphicsLayoutWidget,
                                                           TrainingPlots]:
    """A standalone widget showing ``history`` (needs a QApplication)."""
    widget = pg.GraphicsLayoutWidget()
    widget.setBackground(BACKGROUND)
    plots = TrainingPlots(widget.ci, history.optimizers, history.n_linear)
    plots.update(history)
    return widget, plots


ONE_PLOT_SIZE = (1280, 720)


def _legend_html(names) -> str:
    """The optimizers' colours and names on one line (wrapping), for above the plots."""
    items = [f'<span style="color:{color(i)}; font-size:15pt">━●</span>'
             f'<span style="color:#e4e4ee; font-size:11pt">&nbsp;{html.escape(name)}</span>'
             for i, name in enumerate(names)]
    return "&nbsp;&nbsp;&nbsp;&nbsp; ".join(items)


def render_curves(history: TrainingHistory, key: str | None = None,
                  size: tuple[int, int] | None = None):
    """All five plots (``key`` None; 1600 × 900) or the plot ``key`` alone (1280 × 720),
    as a QImage of exactly ``size`` pixels, with the optimizers' legend above the plots
    (never over a curve). Needs no window: drawn offscreen."""
    QApplication.instance() or QApplication([])
    size = size or (PNG_SIZE if key is None else ONE_PLOT_SIZE)
    widget = pg.GraphicsLayoutWidget()
    widget.setBackground(BACKGROUND)
    try:
        widget.ci.setContentsMargins(12, 10, 12, 10)
        legend = widget.ci.addLabel(_legend_html(history.optimizers), row=0, col=0,
                                    justify="left")
        legend.setMaximumHeight(40)
        body = widget.ci.addLayout(row=1, col=0)
        plots = TrainingPlots(body, history.optimizers, history.n_linear)
        plots.update(history)
        grad_legend = plots.plots["grad_norms"].legend
        if grad_legend is not None:  # the legend above names the colours for every plot
            grad_legend.setVisible(False)
        if key is not None:
            if key not in plots.plots:
                raise ValueError(f"unknown plot {key!r} (choose from {', '.join(plots.plots)})")
            for other, plot in plots.plots.items():
                if other != key:
                    body.removeItem(plot)
                    plot.hide()
        return render_offscreen(widget, size)
    finally:
        widget.close()
        widget.deleteLater()


def render_offscreen(widget, size: tuple[int, int]):
    """``widget`` laid out at ``size`` without ever being on screen, painted into a QImage
    on the lab's background (the lab's PNG exports: curves and landscape panels)."""
    from PySide6.QtGui import QColor, QImage, QPainter

    widget.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)
    widget.resize(*size)
    widget.show()  # lays out; never on screen
    QApplication.instance().processEvents()
    image = QImage(*size, QImage.Format.Format_RGB32)
    image.fill(QColor(BACKGROUND))
    painter = QPainter(image)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        widget.render(painter)
    finally:
        painter.end()
    return image


def save_curves_png(history: TrainingHistory, path: str | os.PathLike,
                    size: tuple[int, int] = PNG_SIZE) -> None:
    """Write :func:`curves_png` to ``path`` atomically."""
    atomic_write(path, curves_png(history, size))


def curves_png(history: TrainingHistory, size: tuple[int, int] = PNG_SIZE) -> bytes:
    """Render the five plots offscreen as PNG bytes.

    Creates a QApplication if there is none (the command line has none) and uses the
    offscreen platform when no display is available.
    """
    image = render_curves(history, None, size)
    if image.isNull():
        raise OSError("could not render the training curves")
    return png_bytes(image)

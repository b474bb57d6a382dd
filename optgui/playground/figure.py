"""Slide-ready figures and animation frames, drawn with the window's own plot classes.

A :class:`Figure` lays out a title (surface, formula, step k / n), the contour plot with
the paths and the step overlays, the loss plot with its step marker, and a legend placed
*beside* the plots (never over a path), in a light or dark :class:`FigureTheme`. It is
built once; :meth:`Figure.set_step` then only moves the items that change, so an
animation costs one repaint per frame, not a new scene. Pictures come out at an exact pixel
size as PNG, or as vector SVG / PDF.

Text keeps its size relative to the picture: the figure is laid out at a logical size of
about 1280 × 720 and painted scaled to the pixels asked for, so a 1920 × 1080 export looks
like a sharper 1280 × 720 one rather than one with tiny letters.
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QPoint, QRectF, QSize, QSizeF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter
from PySide6.QtWidgets import (
    QGraphicsItem,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from engine import Surface, Trajectory
from optgui.playground.config import RunConfig
from optgui.playground.overlays import LEGEND as OVERLAY_LEGEND
from optgui.playground.overlays import SEGMENTS, StepOverlays
from optgui.playground.plots import BACKGROUND, ContourPlot, LossPlot, legend_text

REFERENCE = (1280, 720)  # logical layout size: text is sized for this and scaled with it
CONTENTS = ("figure", "contour", "loss")
SIZE_PRESETS = {  # the export dialog's choices (and what --size accepts by name)
    "1280×720 (16:9, HD)": (1280, 720),
    "1920×1080 (16:9, full HD)": (1920, 1080),
    "1024×768 (4:3)": (1024, 768),
    "1600×1200 (4:3)": (1600, 1200),
}
MIN_SIZE, MAX_SIZE = 200, 8192


@dataclass(frozen=True)
class FigureTheme:
    name: str
    background: str
    text: str
    muted: str
    axis: str
    isolines: tuple[int, int, int, int]
    step_line: tuple[int, int, int, int]
    legend_border: str


DARK = FigureTheme("dark", BACKGROUND, "#ececf4", "#a8a8bc", "#b8b8c8",
                   (255, 255, 255, 80), (255, 255, 255, 140), "#3a3a4a")
LIGHT = FigureTheme("light", "#ffffff", "#1c1c24", "#55556a", "#3a3a48",
                    (255, 255, 255, 95), (30, 30, 40, 170), "#d0d0da")
THEMES = {t.name: t for t in (DARK, LIGHT)}


def parse_size(text: str) -> tuple[int, int]:
    """``"1280x720"`` (or ``1280×720``) as (width, height); ValueError with the reason."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        w, h = (int(p.strip()) for p in parts)
    except ValueError:
        raise ValueError(f"--size must be WIDTHxHEIGHT in pixels (e.g. 1280x720), "
                         f"got {text!r}") from None
    if not (MIN_SIZE <= w <= MAX_SIZE and MIN_SIZE <= h <= MAX_SIZE):
        raise ValueError(f"--size must be between {MIN_SIZE} and {MAX_SIZE} pixels a side, "
                         f"got {w}x{h}")
    return w, h


@dataclass(frozen=True)
class FigureScene:
    """Everything a figure shows (the window's state, or the command line's run)."""

    surface: Surface
    config: RunConfig
    trajectories: Mapping[int, Trajectory]
    errors: Mapping[int, str] = field(default_factory=dict)
    selected: int | None = None
    overlays: Mapping[str, bool] = field(default_factory=dict)  # overlay kind -> shown
    log_loss: bool = True
    view: tuple[float, float, float, float] | None = None  # contour range; None: surface's
    title: str = ""  # replaces the surface's title when given

    @property
    def last_step(self) -> int:
        return int(self.config.steps)


class _SceneState(QObject):
    """The slice of the controller's interface that :class:`StepOverlays` reads, fed from
    a :class:`FigureScene` so the overlays are drawn by the window's own code."""

    configChanged = Signal(object)
    trajectoriesChanged = Signal()
    stepChanged = Signal(int)
    selectionChanged = Signal(object)

    def __init__(self, scene: FigureScene, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.scene = scene
        self.step = 0

    @property
    def config(self) -> RunConfig:
        return self.scene.config

    @property
    def surface(self) -> Surface:
        return self.scene.surface

    @property
    def selected_run(self) -> int | None:
        return self.scene.selected

    def trajectory(self, run_id: int) -> Trajectory | None:
        return self.scene.trajectories.get(run_id)


def theme_plot(plot: pg.PlotWidget, theme: FigureTheme) -> None:
    """Recolour a plot's background, axes and labels (used by figures and the plots'
    right-click export)."""
    plot.setBackground(theme.background)
    item = plot.getPlotItem()
    axes = [item.getAxis(name) for name in ("bottom", "left")]
    colorbar = getattr(plot, "colorbar", None)
    if colorbar is not None:
        axes.append(colorbar.axis)
    for axis in axes:
        axis.setPen(pg.mkPen(theme.axis))
        axis.setTextPen(pg.mkPen(theme.axis))
        if axis.labelText:
            axis.setLabel(axis.labelText, units=axis.labelUnits or None, color=theme.axis,
                          **{"font-size": "10pt"})
    if isinstance(plot, ContourPlot):
        plot.isolines.setPen(pg.mkPen(theme.isolines, width=1))
    if isinstance(plot, LossPlot):
        plot.step_line.setPen(pg.mkPen(theme.step_line, width=1, style=Qt.PenStyle.DashLine))


def paper_color(color: str, theme: FigureTheme) -> str:
    """``color`` as drawn on the theme's background: near-white run colours (fine on the
    dark plots and on the colour map) become a dark grey on white paper."""
    if theme.name != "light":
        return color
    c = QColor(color)
    luminance = 0.2126 * c.redF() + 0.7152 * c.greenF() + 0.0722 * c.blueF()
    return "#5a5a66" if luminance > 0.8 else color


def _on_paper(config: RunConfig, theme: FigureTheme) -> RunConfig:
    from dataclasses import replace

    return replace(config, runs=tuple(replace(r, color=paper_color(r.color, theme))
                                      for r in config.runs))


def _breakable(text: str) -> str:
    """Escaped ``text`` that may wrap after its commas (long spec strings have no spaces)."""
    return html.escape(text).replace(",", ",\u200b")


def _legend_html(scene: FigureScene, theme: FigureTheme, overlay_keys: Sequence[str],
                 columns: int = 1) -> str:
    cells = []
    for entry in scene.config.runs:
        if not entry.enabled:
            continue
        traj = scene.trajectories.get(entry.run_id)
        text = legend_text(entry.label, traj, scene.errors.get(entry.run_id, ""))
        weight = "bold" if entry.run_id == scene.selected and overlay_keys else "normal"
        color = paper_color(entry.color, theme)
        cells.append(f'<td style="color:{color}; font-size:15pt">━●</td>'
                     f'<td style="font-weight:{weight}">&nbsp;{_breakable(text)}&nbsp;&nbsp;</td>')
    for key in overlay_keys:
        color = SEGMENTS[key][0]
        if theme.name == "light" and color.lower() == "#ffffff":
            color = "#707080"  # the white gradient arrow, shown on white paper
        cells.append(f'<td style="color:{color}; font-size:15pt">→</td>'
                     f'<td>&nbsp;{html.escape(OVERLAY_LEGEND[key])}&nbsp;&nbsp;</td>')
    rows = ["".join(cells[i: i + columns]) for i in range(0, len(cells), columns)]
    body = "".join(f"<tr>{row}</tr>" for row in rows)
    return f'<table cellspacing="0" cellpadding="1">{body}</table>'


class Figure(QWidget):
    """Title, contour (+ overlays), loss plot and legend, laid out for a slide.

    ``contents``: ``"figure"`` (all of it), ``"contour"`` or ``"loss"`` (that plot with
    the legend beside it, no title). Never shown on screen; render with :meth:`image`,
    :meth:`svg_bytes`, :meth:`pdf_bytes` or :meth:`frames`.
    """

    def __init__(self, scene: FigureScene, size: tuple[int, int] = REFERENCE,
                 theme: FigureTheme | str = DARK, contents: str = "figure") -> None:
        super().__init__()
        if contents not in CONTENTS:
            raise ValueError(f"unknown figure contents {contents!r}")
        self.theme = THEMES[theme] if isinstance(theme, str) else theme
        self.scene = scene
        self.contents = contents
        self.pixel_size = (int(size[0]), int(size[1]))
        self.scale = max(1.0, min(self.pixel_size[0] / REFERENCE[0],
                                  self.pixel_size[1] / REFERENCE[1]))
        self.setAutoFillBackground(True)
        pal = self.palette()
        for role in (pal.ColorRole.Window, pal.ColorRole.Base):
            pal.setColor(role, QColor(self.theme.background))
        pal.setColor(pal.ColorRole.WindowText, QColor(self.theme.text))
        self.setPalette(pal)
        self._state = _SceneState(scene, self)
        self._build()
        self.resize(round(self.pixel_size[0] / self.scale),
                    round(self.pixel_size[1] / self.scale))
        self.layout().activate()  # lay out without ever being shown (render() does the rest)
        self.set_step(scene.last_step)

    # ------------------------------------------------------------------ building
    def _label(self, size_pt: float, color: str, bold: bool = False) -> QLabel:
        label = QLabel()
        font = QFont()
        font.setPointSizeF(size_pt)
        font.setBold(bold)
        label.setFont(font)
        label.setStyleSheet(f"color: {color}; background: transparent;")
        return label

    def _build(self) -> None:
        scene, theme = self.scene, self.theme
        outer = QVBoxLayout(self)
        outer.setContentsMargins(18, 12, 18, 14)
        outer.setSpacing(6)
        self.title = self._label(17, theme.text, bold=True)
        self.subtitle = self._label(11.5, theme.muted)
        self.counter = self._label(15, theme.text, bold=True)
        self.counter.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        digits = len(str(scene.last_step))
        self.counter.setMinimumWidth(self.counter.fontMetrics().horizontalAdvance(
            f"step {'8' * digits} / {'8' * digits}") + 4)
        if self.contents == "figure":
            head = QHBoxLayout()
            texts = QVBoxLayout()
            texts.setSpacing(0)
            texts.addWidget(self.title)
            texts.addWidget(self.subtitle)
            head.addLayout(texts, 1)
            head.addWidget(self.counter)
            outer.addLayout(head)
            self.title.setText(scene.title or scene.surface.title)
            self.subtitle.setText(f"f(w1, w2) = {scene.surface.formula}")
            self.subtitle.setWordWrap(True)

        self.contour = self.loss = None
        self.overlays: StepOverlays | None = None
        body = QHBoxLayout()
        body.setSpacing(12)
        side = QVBoxLayout()
        side.setSpacing(6)
        self.legend = QLabel()
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        font = QFont()
        font.setPointSizeF(10.5)
        self.legend.setFont(font)
        self.legend.setStyleSheet(
            f"color: {theme.text}; background: transparent; "
            f"border: 1px solid {theme.legend_border}; border-radius: 4px; padding: 6px;")
        self.legend.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.legend.setWordWrap(True)  # long specs wrap instead of squeezing the plots
        if self.contents == "figure":  # plots side by side, the legend over the loss plot
            self.contour = self._contour_plot()
            self.loss = self._loss_plot()
            caption = self._label(10.5, theme.muted)
            caption.setText("loss f(w) per step" + (" (log scale)" if scene.log_loss else ""))
            side.addWidget(self.legend, 0, Qt.AlignmentFlag.AlignTop)
            side.addWidget(caption)
            side.addWidget(self.loss, 1)
            body.addWidget(self.contour, 3)
            body.addLayout(side, 2)
        else:  # one plot, the legend in columns below it
            plot = self._contour_plot() if self.contents == "contour" else self._loss_plot()
            self.contour, self.loss = (plot, None) if self.contents == "contour" else (None, plot)
            side.addWidget(plot, 1)
            side.addWidget(self.legend, 0, Qt.AlignmentFlag.AlignLeft)
            body.addLayout(side, 1)
        outer.addLayout(body, 1)
        self.legend.setText(_legend_html(scene, theme, self._overlay_keys(),
                                         columns=1 if self.contents == "figure" else 2))

    def _contour_plot(self) -> ContourPlot:
        scene = self.scene
        plot = ContourPlot()
        plot.set_fine(self.scale)
        plot.setToolTip("")
        plot.set_surface(scene.surface)
        theme_plot(plot, self.theme)  # after the surface: that sets the colour bar's label
        plot.set_start(scene.config.start)
        plot.update_runs(scene.config, scene.trajectories, scene.errors, scene.selected)
        plot.legend.setVisible(False)  # the figure's legend sits beside the plot instead
        if scene.view is not None:
            x0, x1, y0, y1 = scene.view
            plot.getPlotItem().vb.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0.0)
        if any(scene.overlays.values()):
            self.overlays = StepOverlays(plot, self._state, self)
            for key, on in scene.overlays.items():
                self.overlays.set_enabled(key, on)
            # its legend lives in the figure's legend (it would cover paths in the plot)
            self.overlays.legend.setOpacity(0.0)
        return plot

    def _loss_plot(self) -> LossPlot:
        plot = LossPlot()
        theme_plot(plot, self.theme)
        plot.set_log(self.scene.log_loss)
        plot.update_runs(_on_paper(self.scene.config, self.theme), self.scene.trajectories,
                         self.scene.selected)
        return plot

    def _overlay_keys(self) -> list[str]:
        """Overlay arrows drawn at some step of the selected run (for the legend)."""
        if self.overlays is None or self.scene.selected is None:
            return []
        on = {key for key, (_c, _l, kind, _d) in SEGMENTS.items()
              if self.overlays.enabled.get(kind)}
        return [key for key in SEGMENTS if key in on and self._state.trajectory(
            self.scene.selected) is not None and self._has_segment(key)]

    def _has_segment(self, key: str) -> bool:
        from optgui.playground.overlays import step_vectors

        traj = self._state.trajectory(self.scene.selected)
        last = max(0, traj.steps - 1)
        return any(key in step_vectors(traj, k) for k in {0, last // 2, last})

    def key_colors(self) -> list[str]:
        """The colours that must stay exact in a GIF's palette: runs (as on the contour and
        on paper), arrows, text and background."""
        runs = [r.color for r in self.scene.config.runs if r.enabled]
        theme = self.theme
        return [*runs, *(paper_color(c, theme) for c in runs),
                *(color for color, *_ in SEGMENTS.values()), theme.background, theme.text,
                theme.muted, theme.axis, "#ffffff", "#000000"]

    # ------------------------------------------------------------------ drawing
    def set_step(self, k: int) -> None:
        k = max(0, min(int(k), self.scene.last_step))
        self._state.step = k
        if self.contour is not None:
            self.contour.set_step(k)
        if self.loss is not None:
            self.loss.set_step(k)
        self._state.stepChanged.emit(k)
        self.counter.setText(f"step {k} / {self.scene.last_step}")

    def _paint(self, painter: QPainter) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        painter.scale(self.scale, self.scale)
        self.render(painter, QPoint(0, 0))

    def image(self, step: int | None = None) -> QImage:
        """The figure at ``step`` (default: the current one) as a QImage of the pixel size."""
        if step is not None:
            self.set_step(step)
        image = QImage(*self.pixel_size, QImage.Format.Format_RGB32)
        image.fill(QColor(self.theme.background))
        painter = QPainter(image)
        try:
            self._paint(painter)
        finally:
            painter.end()
        return image

    def rgb(self, step: int | None = None) -> np.ndarray:
        """The figure as a ``(height, width, 3)`` uint8 RGB array (an animation frame)."""
        return qimage_rgb(self.image(step))

    def frames(self, steps: Sequence[int]) -> Iterator[np.ndarray]:
        for k in steps:
            yield self.rgb(k)

    def _vector(self, painter_device_factory) -> bytes:
        """Paint once on a vector device (caches off, so the items are drawn as vectors)."""
        cached = [item for item in self._cached_items()]
        for item in cached:
            item.setCacheMode(QGraphicsItem.CacheMode.NoCache)
        try:
            return painter_device_factory()
        finally:
            for item in cached:
                item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)

    def _cached_items(self) -> list[QGraphicsItem]:
        items: list[QGraphicsItem] = []
        for plot in (self.contour, self.loss):
            if plot is not None:
                items += [item for item in plot.scene().items()
                          if item.cacheMode() != QGraphicsItem.CacheMode.NoCache]
        return items

    def _paint_to_buffer(self, make_device) -> bytes:
        """Paint the figure on the device ``make_device(buffer)`` writes to; the buffer's bytes."""
        from PySide6.QtCore import QBuffer, QIODevice

        buf = QBuffer()
        buf.open(QIODevice.OpenModeFlag.WriteOnly)
        device = make_device(buf)
        painter = QPainter(device)
        try:
            painter.fillRect(QRectF(0, 0, *self.pixel_size), QColor(self.theme.background))
            self._paint(painter)
        finally:
            painter.end()
        return bytes(buf.data())

    def svg_bytes(self) -> bytes:
        from PySide6.QtSvg import QSvgGenerator

        def svg(buf) -> QSvgGenerator:
            gen = QSvgGenerator()
            gen.setOutputDevice(buf)
            gen.setSize(QSize(*self.pixel_size))
            gen.setViewBox(QRectF(0, 0, *self.pixel_size))
            gen.setTitle(self.title.text() or "optgui figure")
            gen.setDescription("Exported by optgui")
            return gen

        return self._vector(lambda: self._paint_to_buffer(svg))

    def pdf_bytes(self) -> bytes:
        from PySide6.QtCore import QMarginsF
        from PySide6.QtGui import QPageLayout, QPageSize, QPdfWriter

        def pdf(buf) -> QPdfWriter:
            writer = QPdfWriter(buf)
            writer.setResolution(96)
            # one pixel of the figure is one pixel at 96 dpi on the page (0.75 pt)
            page = QPageSize(QSizeF(self.pixel_size[0] * 0.75, self.pixel_size[1] * 0.75),
                             QPageSize.Unit.Point, "optgui figure")
            writer.setPageLayout(QPageLayout(page, QPageLayout.Orientation.Portrait,
                                             QMarginsF(0, 0, 0, 0)))
            writer.setTitle(self.title.text() or "optgui figure")
            writer.setCreator("optgui")
            return writer

        return self._vector(lambda: self._paint_to_buffer(pdf))

    def encode(self, fmt: str) -> bytes:
        """The figure as ``png``, ``svg`` or ``pdf`` bytes."""
        from optgui.playground.plots import png_bytes

        if fmt == "png":
            return png_bytes(self.image())
        if fmt == "svg":
            return self.svg_bytes()
        if fmt == "pdf":
            return self.pdf_bytes()
        raise ValueError(f"unknown figure format {fmt!r} (png, svg or pdf)")

    def dispose(self) -> None:
        self.deleteLater()


def qimage_rgb(image: QImage) -> np.ndarray:
    """A QImage as a fresh ``(height, width, 3)`` uint8 RGB array."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h, stride = image.width(), image.height(), image.bytesPerLine()
    data = np.frombuffer(image.constBits(), dtype=np.uint8, count=stride * h)
    return data.reshape(h, stride)[:, : w * 3].reshape(h, w, 3).copy()

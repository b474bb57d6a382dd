"""The two plots: the contour view with optimizer paths, and loss versus step.

Both follow pyqtgraph's performance habits: every graphics item is created once (per surface
or per run) and later only fed with ``setData``; the contour grid, colour image and isolines
are computed once per surface. Views are passive: they are told what to draw by
:class:`optgui.mainwindow.MainWindow` from the controller's snapshots, and report user
gestures (a click that moves the start point) as signals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters  # noqa: F401  (registers pg.exporters)
from PySide6.QtCore import QBuffer, QIODevice, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QImage,
    QPainter,
    QPainterPath,
    QPen,
    QPicture,
    QPixmap,
    QTextOption,
)
from PySide6.QtWidgets import QGraphicsItem, QGraphicsRectItem

from engine import Surface, Trajectory
from optgui.playground.config import RunConfig
from optgui.playground.contours import ContourData, contours_for

BACKGROUND = "#17171f"
AXIS_COLOR = "#b8b8c8"
ISOLINE_COLOR = (255, 255, 255, 80)
MAX_MARKERS = 400  # beyond this many visible points a path is drawn as a plain line
MAX_PATH_POINTS = 800  # paths longer after kept_points are thinned evenly before drawing
# a path drops the points that stay within this fraction of a screen pixel (kept_points)
PATH_CELL_PX = 0.5
MAX_LEGEND_ENTRIES = 12  # the contour legend lists at most this many runs
# the legend below the contour is left out when it would leave the view less than this
# (a 1024 × 700 window): the Optimizers list beside it names every colour anyway
MIN_VIEW_HEIGHT = 320
AXES_HEIGHT = 60  # the w1 axis, its label and the margins
LOSS_LABEL = "loss f(w)"
# a longer loss curve is drawn as its min/max envelope over about one bucket per pixel of
# the plot's width (a power of two, so a small resize keeps the curves): at most this many
LOSS_BUCKETS = 2048
MIN_LOSS_BUCKETS = 256
Z_HEADS = 300  # every run's current point: above the paths, below the overlays (400)


def legend_text(spec_text: str, traj: Trajectory | None, error: str = "") -> str:
    """The legend label of a run: its spec string, plus how it ended if not normally."""
    if error:
        return f"{spec_text} (error)"
    if traj is not None and traj.diverged_at is not None:
        return f"{spec_text} (diverged at step {traj.diverged_at})"
    return spec_text


def kept_points(points: np.ndarray, cell: tuple[float, float] | None,
                limit: int = MAX_PATH_POINTS) -> np.ndarray:
    """The indices of the points of a path worth drawing: a point is left out when it lies
    in the same ``cell`` (width, height in data units: a fraction of a screen pixel) as the
    point before it. Breaks (non-finite points) are kept. Whether a point is kept depends
    only on the points, so the indices below ``n`` are those of the path cut at step ``n``
    (which also keeps its own last point).

    A run that converges spends most of its steps within a pixel of its minimum. Thinning
    those evenly (as before) kept hundreds of points on top of each other and too few
    elsewhere: momentum's first loop in a 10,000-step run was drawn as a triangle. A path that
    keeps more than ``limit`` points (one that jitters across pixels for thousands of steps)
    is simplified again with cells twice, then four times as large; :func:`path_to` thins
    what is still left. ``cell=None``: every point.
    """
    n = len(points)
    if cell is None or n < 2:
        return np.arange(n)
    size = np.asarray(cell, dtype=float)
    # the cells are centred on where the run ends: a run converging to a minimum at 0
    # would otherwise jitter across the cell border at 0 with each tiny step (a diverged
    # run ends far away, where a centre would cost the path its precision: 0 then)
    finite = np.flatnonzero(np.isfinite(points).all(axis=1))
    centre = points[finite[-1]] if len(finite) else np.zeros(2)
    if not (np.abs(centre) < 1e12 * size).all():
        centre = np.zeros(2)
    for _ in range(3):
        with np.errstate(over="ignore", invalid="ignore"):  # a diverged run's huge points
            q = np.floor((points - centre) / size + 0.5)
            keep = np.empty(n, dtype=bool)
            keep[0] = True
            keep[1:] = (q[1:] != q[:-1]).any(axis=1)  # NaN != NaN: breaks stay
        kept = np.flatnonzero(keep)
        if len(kept) <= limit:
            break
        size = size * 2
    return kept


def path_to(points: np.ndarray, kept: np.ndarray, n: int,
            limit: int = MAX_PATH_POINTS) -> np.ndarray:
    """The points drawn for a path up to step ``n``: its ``kept`` points (see
    :func:`kept_points`) before ``n``, point ``n`` itself, thinned to ``limit`` points."""
    idx = kept[: int(np.searchsorted(kept, n))]
    return decimate(points[np.append(idx, n)], limit)


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


def _line_pen(color: str | QColor, width: float, fine: bool = False) -> QPen:
    """A path's pen, with round caps. On screen its joins are bevelled: at 2-5 px they look
    the same as round ones, and 8 paths and their shadows paint in about 30% less time
    (10.9 against 7.7 ms at step 300 here). ``fine`` (figures, which may be enlarged):
    round joins."""
    pen = pg.mkPen(color, width=width)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin if fine else Qt.PenJoinStyle.BevelJoin)
    return pen


def _curve_pen(color: str | QColor, width: float) -> QPen:
    """A loss curve's pen. Its envelope has a point per pixel, where round joins cannot be
    seen but cost 2.5 times as much to stroke (1.0 against 0.4 ms per 1,000 points)."""
    pen = pg.mkPen(color, width=width)
    pen.setCapStyle(Qt.PenCapStyle.FlatCap)
    pen.setJoinStyle(Qt.PenJoinStyle.BevelJoin)
    return pen


def _shadow_pen(width: float, fine: bool = False) -> QPen:
    return _line_pen(QColor(0, 0, 0, 170), width, fine)


class _PixelReach(pg.GraphicsObject):
    """An item whose points are in data coordinates but whose drawing reaches some screen
    pixels beyond them (a pen's half width, a dot's size): its bounds in data units change
    with the view's transform. Subclasses give the points' bounds and the reach."""

    def _points_rect(self) -> QRectF | None:
        raise NotImplementedError

    def _reach_px(self) -> float:
        raise NotImplementedError

    def viewTransformChanged(self) -> None:  # noqa: N802 (pyqtgraph API)
        self.prepareGeometryChange()
        super().viewTransformChanged()

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt API)
        rect = self._points_rect()
        if rect is None:
            return QRectF()
        px, py = self.pixelVectors()
        if px is None:
            return QRectF(rect)
        reach = self._reach_px()
        dx, dy = px.length() * reach, py.length() * reach
        return rect.adjusted(-dx, -dy, dx, dy)


class _Polyline(_PixelReach):
    """A stroked polyline in view coordinates: a run's path, or the runs' shadows (paths
    separated by NaN rows). pyqtgraph's PlotDataItem does much on every setData (display
    datasets, bounds, its curve's own copy, then the same at the next paint): with it, a
    step's handlers took 5.9 ms for 8 runs, with this item 3.3. It keeps the points, their
    bounds and the path it draws. Interface: PlotDataItem's setData/getData/setPen,
    opts["pen"] and sigPlotChanged, so a legend row can sample it."""

    sigPlotChanged = Signal(object)

    def __init__(self, pen: QPen | None = None) -> None:
        super().__init__()
        # not antialiased on screen, as pyqtgraph draws lines by default (a third of the
        # paint time of 8 paths and their shadows); exports and figures are
        self.opts = {"pen": QPen(pen) if pen is not None else pg.mkPen(None),
                     "antialias": False, "symbol": None, "fillLevel": None}
        self._x = self._y = np.empty(0)
        self._rect: QRectF | None = None  # the finite points' bounds (None: none)
        self._finite = True  # every point finite (else the path breaks at the others)
        self._path: QPainterPath | None = None  # built at the first paint after setData

    def setData(self, x, y) -> None:  # noqa: N802 (PlotDataItem's interface)
        self.prepareGeometryChange()
        self._x, self._y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        self._path = None
        self._rect = None
        self._finite = True
        if len(self._x):
            with np.errstate(invalid="ignore"):
                ok = np.isfinite(self._x) & np.isfinite(self._y)
            self._finite = bool(ok.all())
            if ok.any():
                x, y = self._x[ok], self._y[ok]
                x0, x1, y0, y1 = x.min(), x.max(), y.min(), y.max()
                self._rect = QRectF(float(x0), float(y0), float(x1 - x0), float(y1 - y0))
        self.update()
        self.sigPlotChanged.emit(self)

    def getData(self) -> tuple[np.ndarray, np.ndarray]:  # noqa: N802
        return self._x, self._y

    def setPen(self, pen: QPen) -> None:  # noqa: N802
        self.opts["pen"] = QPen(pen)
        self.prepareGeometryChange()  # a wider pen reaches further
        self.update()

    def dataBounds(self, ax: int, frac: float = 1.0, orthoRange=None):  # noqa: N802, ARG002
        r = self._rect
        if r is None:
            return (None, None)
        return (r.left(), r.right()) if ax == 0 else (r.top(), r.bottom())

    def _points_rect(self) -> QRectF | None:
        return self._rect

    def _reach_px(self) -> float:
        return self.opts["pen"].widthF() / 2 + 1

    def paint(self, painter, option, widget=None) -> None:  # noqa: ARG002 (Qt API)
        if len(self._x) < 2:
            return
        if self._path is None:
            self._path = pg.arrayToQPath(self._x, self._y,
                                         connect="all" if self._finite else "finite")
        smooth = self.opts["antialias"] or bool(self._exportOpts)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, smooth)
        painter.setPen(self.opts["pen"])
        painter.drawPath(self._path)


class _Dots(_PixelReach):
    """A run's markers (one per step while a path is short): round dots of ``size`` pixels
    with a thin dark rim. A child of the run's line, it shares its visibility and z.

    pyqtgraph's ScatterPlotItem rebuilds a record per point on every setData (~2 ms per
    run for 400 points, every animation frame); this item keeps only the points, and paints
    one pre-drawn dot per point with QPainter.drawPixmapFragments (as pyqtgraph's own atlas
    does): 30 runs of 400 dots cost ~7 ms to paint, where drawing each as an antialiased
    round point cost ~46 ms. An exported image draws them as vector points instead."""

    def __init__(self, parent: pg.GraphicsObject, size: float = 6.0) -> None:
        super().__init__(parent)
        self._size = float(size)
        self._pts = np.empty((0, 2))
        self._data_rect = QRectF()
        self._color = QColor("#ffffff")
        self._sprite: QPixmap | None = None  # the dot, drawn for the current device ratio
        self._fragments = None  # pyqtgraph's PixmapFragment array, reused between paints

    def _pens(self, scale: float = 1.0) -> tuple[QPen, QPen]:
        rim = QPen(QColor(0, 0, 0, 160), (self._size + 1.6) * scale)
        fill = QPen(self._color, self._size * scale)
        for pen in (rim, fill):
            pen.setCosmetic(True)
            pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        return rim, fill

    def set_color(self, color: str) -> None:
        self._color = QColor(color)
        self._sprite = None
        self.update()

    def color(self) -> QColor:
        return QColor(self._color)

    def set_points(self, pts: np.ndarray | None) -> None:
        self.prepareGeometryChange()
        if pts is None or not len(pts):
            self._pts = np.empty((0, 2))
            self._data_rect = QRectF()
        else:
            self._pts = np.asarray(pts, dtype=float)
            lo, hi = np.nanmin(self._pts, axis=0), np.nanmax(self._pts, axis=0)
            self._data_rect = QRectF(float(lo[0]), float(lo[1]),
                                     float(hi[0] - lo[0]), float(hi[1] - lo[1]))
        self.update()

    def count(self) -> int:
        return len(self._pts)

    def _points_rect(self) -> QRectF | None:
        return self._data_rect if len(self._pts) else None

    def _reach_px(self) -> float:
        return self._size

    def _dot(self, ratio: float) -> QPixmap:
        if self._sprite is None or self._sprite.devicePixelRatio() != ratio:
            side = int(math.ceil(self._size + 4))
            sprite = QPixmap(int(math.ceil(side * ratio)), int(math.ceil(side * ratio)))
            sprite.setDevicePixelRatio(ratio)
            sprite.fill(Qt.GlobalColor.transparent)
            painter = QPainter(sprite)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            for pen in self._pens():
                painter.setPen(pen)
                painter.drawPoint(QPointF(side / 2, side / 2))
            painter.end()
            self._sprite = sprite
        return self._sprite

    def paint(self, painter, option, widget=None) -> None:  # noqa: ARG002 (Qt API)
        pts = self._pts[np.isfinite(self._pts).all(axis=1)]
        if not len(pts):
            return
        if self._exportOpts:
            # an image exported larger than the view scales pixel sizes (as pyqtgraph's own
            # markers do), so a figure at twice the width has dots twice as large
            scale = self._exportOpts.get("resolutionScale", 1.0)
            poly = pg.functions.create_qpolygonf(len(pts))
            pg.functions.ndarray_from_qpolygonf(poly)[:] = pts
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            for pen in self._pens(scale):
                painter.setPen(pen)
                painter.drawPoints(poly)
            return
        ratio = widget.devicePixelRatioF() if widget is not None else 1.0
        sprite = self._dot(ratio)
        xy = pg.functions.transformCoordinates(painter.transform(), pts.T).T
        painter.resetTransform()
        if self._fragments is None:
            from pyqtgraph.Qt.internals import PrimitiveArray

            self._fragments = PrimitiveArray(QPainter.PixmapFragment, 10)
        self._fragments.resize(len(xy))
        frags = self._fragments.ndarray()
        frags[:, 0:2] = xy  # the centre of each dot on the device
        frags[:, 2:6] = (0, 0, sprite.width(), sprite.height())  # the whole sprite
        frags[:, 6:10] = (1 / ratio, 1 / ratio, 0.0, 1.0)  # scale, rotation, opacity
        painter.drawPixmapFragments(*self._fragments.drawargs(), sprite)


@dataclass
class _PathItems:
    """A run's own plot item on the contour. Its shadow and its head (the current point)
    are drawn by items shared by all runs: one item per run each made 30 runs cost 90 items
    to feed and paint on every animation frame."""

    line: _Polyline
    dots: _Dots  # the markers, while the path is short (a child of line)
    brush: QBrush | None = None  # the head's fill
    style: tuple = ()  # (colour, emphasis, z) the item was last styled with
    traj: Trajectory | None = None  # the trajectory the item was last fed
    shown: int = -1  # the step it shows (-1: nothing drawn yet)
    kept: np.ndarray | None = None  # kept_points of traj for kept_cell (None: to do)
    kept_cell: tuple | None = None
    pts: np.ndarray | None = None  # the points drawn (thinned) up to that step


def _restroke(line: pg.PlotDataItem, pen: QPen) -> None:
    """Give ``line`` a new pen. PlotDataItem.setPen re-feeds the points to its curve, whose
    path is then rebuilt at the next paint; the curve's own setPen only repaints. The
    item's options keep the pen for later setData calls."""
    line.opts["pen"] = pen
    line.curve.setPen(pen)


def _joined(paths: list[np.ndarray]) -> np.ndarray:
    """Several paths as one array of points, separated by NaN rows (connect="finite")."""
    if not paths:
        return np.empty((0, 2))
    gap = np.full((1, 2), np.nan)
    return np.concatenate([part for p in paths for part in (p, gap)][:-1])


class _Hatching(QGraphicsRectItem):
    """A rectangle filled with a hatch pattern of fixed screen size (a plain brush pattern
    would be scaled with the view, into stripes as wide as the plot)."""

    def paint(self, painter, option, widget=None) -> None:  # noqa: ARG002 (Qt API)
        brush = QBrush(self.brush())
        brush.setTransform(painter.worldTransform().inverted()[0])
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(brush)
        painter.drawRect(self.rect())


def draw_axis_now(axis: pg.AxisItem) -> None:
    """Draw ``axis``'s ticks and labels now instead of at the next paint, as pyqtgraph's
    paint does. Wider (or narrower) labels resize the axis as they are measured; measured
    now, the new width is laid out before the plot first paints. Measured while painting,
    the plot paints, lays out and paints again: 10-20 ms more for the first picture of a
    surface. A picture drawn now is reused by the next paint if the size stays."""
    if axis.picture is not None or not axis.isVisible():
        return
    picture = QPicture()
    painter = QPainter(picture)
    try:
        if axis.style["tickFont"]:
            painter.setFont(axis.style["tickFont"])
        specs = axis.generateDrawSpecs(painter)
        if specs is not None:
            axis.drawPicture(painter, *specs)
    finally:
        painter.end()
    axis.picture = picture


class Legend(pg.LegendItem):
    """pyqtgraph's legend, with rows that are kept while they stay (:meth:`set_rows`)."""

    row_keys: tuple = ()  # one key per row of self.items (set_rows)

    def set_rows(self, rows) -> None:
        """Show ``rows`` — (key, sample item, text) — in this order. A row whose key was
        shown before is kept and relabelled; only new rows are made and only rows that go
        are closed. (Emptying a LegendItem and filling it again closes and remakes every
        row's widgets, about 2 ms per row under cProfile, each time one more run arrives.)"""
        if len(self.row_keys) != len(self.items):  # rows added with addItem: start over
            self.clear()
            self.row_keys = ()
        old = dict(zip(self.row_keys, self.items, strict=True))
        for key, item, _ in rows:  # a kept key with another sample item is a new row
            if key in old and old[key][0].item is not item:
                self._removeItemFromLayout(*old.pop(key))
        kept = {key for key, _, _ in rows}
        for key in [k for k in old if k not in kept]:
            self._removeItemFromLayout(*old.pop(key))
        items = []
        for key, item, text in rows:
            row = old.get(key)
            if row is None:
                self.addItem(item, text)  # pyqtgraph makes the sample and the label
                row = self.items.pop()
            elif row[1].text != text:
                row[1].setText(text)
            items.append(row)
        for i in range(self.layout.count() - 1, -1, -1):  # lay the rows out in order
            self.layout.removeAt(i)
        self.items = items
        self.row_keys = tuple(key for key, _, _ in rows)
        self.rowCount = math.ceil(len(items) / max(1, self.columnCount))
        for sample, label in items:
            self._addItemToLayout(sample, label)
        self.updateSize()


class _RowLegend(Legend):
    """A legend laid out by the plot's layout (below the view) instead of floating over it.
    Its height becomes the layout's size hint; its width never does: it takes the view's
    width, in as many columns as fit, and a label too long for a column wraps. (Asking for
    its labels' width, one long label pushed the colour bar out of the window, and each
    arriving result that changed a label's width laid out and repainted the whole plot.)"""

    shown = True  # False: no room below the plot (the Optimizers list names the colours)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.setMinimumWidth(0)
        self.setPreferredWidth(0)

    def needed_height(self) -> float:
        if not self.items:
            return 0.0
        per_row = max(1, self.columnCount)
        heights = [max(sample.boundingRect().height(), label.itemRect().height())
                   for sample, label in self.items]
        rows = [max(heights[i:i + per_row]) for i in range(0, len(heights), per_row)]
        return sum(rows) + max(0, len(rows) - 1) * self.layout.verticalSpacing() + 8

    def updateSize(self) -> None:  # noqa: N802 (pyqtgraph API)
        height = self.needed_height() if self.shown and self.items else 0.0
        self.setMinimumHeight(height)
        self.setMaximumHeight(height)
        self.setVisible(height > 0)
        self.updateGeometry()

    def fit(self, width: float, height: float) -> None:
        """As many columns as the widest entry allows in ``width`` pixels, and shown only if
        the plot keeps MIN_VIEW_HEIGHT pixels of its ``height`` for the view."""
        if not self.items:
            self.updateSize()
            return
        for _, label in self.items:  # measured unwrapped
            if label.item.textWidth() >= 0:
                label.item.setTextWidth(-1)
                label.updateMin()
        widest = max(sample.boundingRect().width() + label.itemRect().width() + 26
                     for sample, label in self.items)
        columns = max(1, min(len(self.items), int(width // widest)))
        if columns != self.columnCount:
            self.setColumnCount(columns)
        room = width / columns - 26
        for sample, label in self.items:
            if sample.boundingRect().width() + label.itemRect().width() > room:
                document = label.item.document()
                option = document.defaultTextOption()  # specs have no spaces to break at
                option.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
                document.setDefaultTextOption(option)
                label.item.setTextWidth(max(40.0, room - sample.boundingRect().width()))
                label.updateMin()
        self.shown = height - self.needed_height() - AXES_HEIGHT >= MIN_VIEW_HEIGHT
        self.updateSize()


class _PlotWidget(pg.PlotWidget):
    """What both plots share: rendering the plot (not the widget) as an image for export."""

    def flush(self) -> None:
        """Draw now what is waiting for the next pass of the event loop."""

    def render_image(self, width: int | None = None) -> QImage:
        self.flush()
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
        self._next_surface: tuple[Surface, tuple] | None = None  # show_surface_soon
        self._surface_timer = QTimer(self)
        self._surface_timer.setSingleShot(True)
        self._surface_timer.timeout.connect(self._show_next_surface)

        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setZValue(-20)
        plot.addItem(self.image)
        self.undefined = _Hatching()  # hatching: where the surface is not defined
        self.undefined.setPen(QPen(Qt.PenStyle.NoPen))
        hatch = QBrush(QColor(150, 150, 165, 110), Qt.BrushStyle.BDiagPattern)
        self.undefined.setBrush(hatch)
        self.undefined.setZValue(-30)
        self.undefined.setToolTip("Hatched: the surface is not defined here")
        self.undefined.setVisible(False)
        plot.addItem(self.undefined, ignoreBounds=True)
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

        # the legend sits below the plot, in the plot's own layout: it never covers a path
        # or an overlay label, and exported pictures include it
        self.legend = _RowLegend(
            labelTextColor="#eeeeee", labelTextSize="9pt",
            brush=pg.mkBrush(20, 20, 28, 200), pen=pg.mkPen(255, 255, 255, 60),
            verSpacing=-6, horSpacing=18,
        )
        plot.layout.addItem(self.legend, 4, 1)

        # the runs' shadows (the selected run's apart, over the others' lines) and heads
        self.shadows = _Polyline(_shadow_pen(4.5))
        self.shadows.setZValue(9)
        self.selected_shadow = _Polyline(_shadow_pen(5.5))
        self.heads = pg.ScatterPlotItem(size=13, pen=pg.mkPen("#ffffff", width=2))
        self.heads.setZValue(Z_HEADS)
        for item in (self.shadows, self.selected_shadow, self.heads):
            plot.addItem(item)
        self._head_ids: list[int] = []  # the run of each point in self.heads

        self._legend_keys: tuple = ()
        self._legend_fitted: tuple = ()
        self._more_sample = pg.PlotDataItem(pen=None)  # the "… and N more" row's sample
        self._paths: dict[int, _PathItems] = {}
        self._trajs: dict[int, Trajectory] = {}
        self._selected: int | None = None
        self._step = 0
        # paths keep a point per PATH_CELL_PX of the view (None: thinned evenly only); a
        # figure drawn larger than its layout asks for a finer cell
        self.path_cell_px: float | None = PATH_CELL_PX
        self._fine = False  # set_fine: round joins, finer cells
        self._cell: tuple[float, float] | None = None  # the cell the paths were drawn with
        plot.vb.sigRangeChanged.connect(self._check_cell)
        plot.vb.sigResized.connect(self._check_cell)

        self.scene().sigMouseClicked.connect(self._on_click)
        self.scene().sigMouseMoved.connect(self._on_move)

    # ------------------------------------------------------------------ surface
    def show_surface_soon(self, surface: Surface, start) -> None:
        """Show ``surface`` (and the start marker at ``start``) in the next pass of the event
        loop. A surface switch changes every view at once; drawing the new surface and its
        first paint (17-32 ms here) after the others' updates and repaints lets the window
        serve input and timers in between instead of freezing for all of it."""
        if self._surface_key == self._key(surface) and self._next_surface is None:
            self.set_start(start)
            return
        self._next_surface = (surface, tuple(start))
        self._surface_timer.start(0)

    def _show_next_surface(self) -> None:
        if self._next_surface is not None:
            surface, start = self._next_surface
            self.set_surface(surface)
            self.set_start(start)

    def flush(self) -> None:
        """Draw a surface given to :meth:`show_surface_soon` now (before an export, …)."""
        self._surface_timer.stop()
        self._show_next_surface()

    @staticmethod
    def _key(surface: Surface) -> tuple:
        return (surface.name, tuple(surface.view), id(surface))

    def set_surface(self, surface: Surface, force: bool = False) -> None:
        self._next_surface = None
        self._surface_timer.stop()
        key = self._key(surface)
        if key == self._surface_key and not force:
            return
        self._surface_key = key
        data = contours_for(surface)
        self.contours = data
        x0, x1 = float(data.xs[0]), float(data.xs[-1])
        y0, y1 = float(data.ys[0]), float(data.ys[-1])
        finite = data.image[np.isfinite(data.image)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if hi <= lo:
            hi = lo + 1.0
        # where f is undefined (log(w1) for w1 ≤ 0, …) the image stays NaN, which pyqtgraph
        # draws transparent: the hatching behind it shows through instead of a colour
        self.image.setImage(data.image, autoLevels=False)
        self.image.setRect(x0, y0, x1 - x0, y1 - y0)
        self.undefined.setRect(x0, y0, x1 - x0, y1 - y0)
        self.undefined.setVisible(bool(np.isnan(data.image).any()))
        self.colorbar.setLevels((lo, hi))
        cb_axis = self.colorbar.axis
        label = "f − min f  (log scale)" if data.log else "f(w1, w2)"
        if cb_axis.logMode != data.log or cb_axis.labelText != label:  # else: kept as is
            cb_axis.setLogMode(False, data.log)  # (each call redraws the axis and its
            cb_axis.setLabel(label, color=AXIS_COLOR)  # label: ~2 ms per surface)
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
        self.flush()
        if self.contours is None:
            return
        xs, ys = self.contours.xs, self.contours.ys
        self._plot.vb.setRange(
            xRange=(xs[0], xs[-1]), yRange=(ys[0], ys[-1]), padding=0.0
        )
        # every axis with new labels (the colour bar's too): a new width is laid out
        # before the first paint, instead of a paint, a layout and a second paint
        # (the bottom axis keeps its height: drawn once, after any new layout)
        bottom = self._plot.getAxis("bottom")
        sides = (self._plot.getAxis("left"), self.colorbar.axis)
        widths = [axis.maximumWidth() for axis in sides]
        for axis in sides:
            draw_axis_now(axis)
        if widths != [axis.maximumWidth() for axis in sides]:
            self._plot.layout.activate()
        for axis in (*sides, bottom):  # (a resized axis dropped its picture)
            draw_axis_now(axis)
        # the view's new transform now, not in the paint (pyqtgraph's prepareForPaint):
        # changed there, it marked the whole view dirty again and a second paint followed
        self._plot.vb.updateMatrix()

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
        """Sync path items with the configured runs: items are created once per run and then
        only restyled (when their colour, emphasis or order changed) or fed new data (when
        their trajectory changed); the legend is rebuilt only when the shown runs change,
        otherwise its labels are renamed in place."""
        errors = errors or {}
        self._selected = selected
        ids = {r.run_id for r in config.runs}
        for rid in list(self._paths):
            if rid not in ids:
                self._plot.removeItem(self._paths.pop(rid).line)
        self._trajs = {}
        for z, entry in enumerate(config.runs):
            traj = trajectories.get(entry.run_id)
            visible = entry.enabled and traj is not None
            items = self._paths.get(entry.run_id)
            if items is None:
                if not visible and not (entry.enabled and errors.get(entry.run_id)):
                    continue  # made when its first result (or error, for the legend) arrives:
                    # loading 30 runs then does not build 30 items in one go
                line = _Polyline()
                line.opts["antialias"] = self._fine
                items = _PathItems(line=line, dots=_Dots(line))
                self._plot.addItem(items.line)
                self._paths[entry.run_id] = items
            emphasis = entry.run_id == selected
            style = (entry.color, emphasis, z)
            if style != items.style:
                if not items.style or entry.color != items.style[0]:
                    items.dots.set_color(entry.color)
                    items.brush = pg.mkBrush(entry.color)
                items.style = style
                items.line.setZValue(10 + 2 * z + (100 if emphasis else 0) + 1)
                items.line.setPen(_line_pen(entry.color, 3.0 if emphasis else 2.0, self._fine))
                if emphasis:
                    self.selected_shadow.setZValue(items.line.zValue() - 1)
            if items.line.isVisible() != visible:
                items.line.setVisible(visible)
            if visible:
                self._trajs[entry.run_id] = traj
                if items.traj is not traj:
                    items.traj = traj
                    items.shown, items.kept = -1, None
        self._update_legend(config, trajectories, errors)
        self._draw_step(force=True)

    def _update_legend(self, config: RunConfig, trajectories, errors) -> None:
        entries = [
            (r.run_id, legend_text(r.label, trajectories.get(r.run_id), errors.get(r.run_id, "")))
            for r in config.runs if r.enabled and r.run_id in self._paths
        ]
        shown = entries[:MAX_LEGEND_ENTRIES]
        keys = tuple(rid for rid, _ in shown) + (len(entries),)
        if keys != self._legend_keys:  # other runs, or their order: new rows
            self._legend_keys = keys
            rows = [(rid, self._paths[rid].line, text) for rid, text in shown]
            if len(entries) > len(shown):
                rows.append(("more", self._more_sample, f"… and {len(entries) - len(shown)} "
                                                        "more (see the Optimizers list)"))
            self.legend.set_rows(rows)
        renamed = False
        for (_, label), (_, text) in zip(self.legend.items, shown, strict=False):
            if label.text != text:
                label.setText(text)
                renamed = True
        if renamed or keys != self._legend_fitted:
            self._legend_fitted = keys
            self._fit_legend()

    def _fit_legend(self) -> None:
        self.legend.fit(self._plot.vb.width() or self.width(), self.height())

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        if self.__dict__.get("legend") is not None:  # resized once before __init__ built it
            self._fit_legend()

    def set_step(self, k: int) -> None:
        self._step = int(k)
        self._draw_step()

    def set_fine(self, scale: float) -> None:
        """Draw the paths for a picture ``scale`` times as large as this plot's layout, and
        maybe enlarged further (a figure): antialiased, with round joins, and cells of a
        quarter of the picture's pixel."""
        self._fine = True
        self.path_cell_px = PATH_CELL_PX / 2 / max(1.0, scale)
        for shadow, width in ((self.shadows, 4.5), (self.selected_shadow, 5.5)):
            shadow.setPen(_shadow_pen(width, fine=True))
            shadow.opts["antialias"] = True
        for items in self._paths.values():
            items.style = ()  # restroked (and antialiased) by the next update_runs
        self._check_cell()

    def _path_cell(self) -> tuple[float, float] | None:
        """PATH_CELL_PX of the view in data units (None before the view has a size)."""
        vb = self._plot.vb
        width, height = vb.width(), vb.height()
        if self.path_cell_px is None or width < 1 or height < 1:
            return None
        (x0, x1), (y0, y1) = vb.viewRange()
        cell = ((x1 - x0) / width * self.path_cell_px, (y1 - y0) / height * self.path_cell_px)
        return cell if all(math.isfinite(c) and c > 0 for c in cell) else None

    def _check_cell(self, *_) -> None:
        """After a zoom or a resize, draw the paths again if a pixel is now another size:
        a path simplified for the old zoom would show its corners when zoomed in."""
        cell, old = self._path_cell(), self._cell
        if cell == old:
            return
        if cell is None or old is None or any(
                not 0.9 < a / b < 1.1 for a, b in zip(cell, old, strict=True)):
            self._cell = cell
            for items in self._paths.values():
                items.shown = -1
            if self._trajs:
                self._draw_step(force=True)

    def _draw_step(self, force: bool = False) -> None:
        """Show every run at the current step; a run already drawn at its step (a finished
        run past its end, or one whose trajectory did not change) costs nothing."""
        changed = force
        if self._cell is None:
            self._cell = self._path_cell()
        for rid, traj in self._trajs.items():
            items = self._paths[rid]
            n = traj.at(self._step)
            if n == items.shown:
                continue
            items.shown = n
            if items.kept is None or items.kept_cell != self._cell:
                items.kept, items.kept_cell = kept_points(traj.points, self._cell), self._cell
            items.pts = pts = path_to(traj.points, items.kept, n)
            items.line.setData(pts[:, 0], pts[:, 1])
            items.dots.set_points(traj.points[: n + 1] if n + 1 <= MAX_MARKERS else None)
            changed = True
        if changed:
            self._draw_shared()

    def _draw_shared(self) -> None:
        """The shadows and heads of all shown runs, from what their lines show."""
        shown = [(rid, self._paths[rid]) for rid in self._trajs]
        others = [items.pts for rid, items in shown if rid != self._selected]
        own = [items.pts for rid, items in shown if rid == self._selected]
        for item, paths in ((self.shadows, others), (self.selected_shadow, own)):
            pts = _joined(paths)
            item.setData(pts[:, 0], pts[:, 1])
        self._head_ids = [rid for rid, _ in shown]
        heads = np.array([self._trajs[rid].points[items.shown] for rid, items in shown])
        self.heads.setData(pos=heads.reshape(-1, 2), brush=[items.brush for _, items in shown])

    def head_of(self, run_id: int) -> tuple[float, float] | None:
        """Where the run's current point is drawn (None if it is not shown)."""
        if run_id not in self._head_ids:
            return None
        x, y = self.heads.getData()
        i = self._head_ids.index(run_id)
        return float(x[i]), float(y[i])

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


_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def plain_number(value: float, spacing: float = 0.0) -> str:
    """A tick label as a plain number: fixed decimals where they stay short ("0.05", "250"),
    otherwise the shortest exponent form that keeps the value ("2.5e+11", "1e-06")."""
    if value == 0:
        return "0"
    tolerance = abs(spacing) * 1e-3 if spacing else abs(value) * 1e-9
    if 1e-3 <= abs(value) < 1e5 and (not spacing or abs(spacing) >= 1e-4):
        places = max(0, math.ceil(-math.log10(abs(spacing)))) if spacing else 0
        while places < 6 and abs(float(f"{value:.{places}f}") - value) > tolerance:
            places += 1
        return f"{value:.{places}f}"
    digits = 1
    while digits < 12 and abs(float(f"{value:.{digits}g}") - value) > tolerance:
        digits += 1
    return f"{value:.{digits}g}"


def decade_label(exponent: float) -> str:
    """The label of the log-axis tick at 10**exponent: "0.01", "1", "1000" near 1, "10⁻⁶"
    for whole decades beyond, and a plain number ("2", "5e-05") in between."""
    e = round(exponent)
    if abs(exponent - e) < 1e-9:
        return f"{10.0 ** e:g}" if -3 <= e <= 4 else "10" + str(e).translate(_SUPERSCRIPT)
    return f"{10.0 ** exponent:.2g}"


class PlainAxis(pg.AxisItem):
    """An axis that labels ticks with plain numbers (never an SI multiplier like "×1e+09" or
    "(x0.001)" in the axis label) and, on a log scale, labels only as many ticks as fit: whole
    decades, with 2 and 5 in between when few decades are shown, never minor ticks 2…9."""

    MIN_LABEL_SPACING = 26  # pixels between two labels on a vertical axis

    def __init__(self, orientation: str, **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self.enableAutoSIPrefix(False)

    def tickValues(self, minVal, maxVal, size):  # noqa: N802, N803 (pyqtgraph API)
        if not self.logMode:
            return super().tickValues(minVal, maxVal, size)
        lo, hi = sorted((float(minVal), float(maxVal)))
        room = max(2, int(size // self.MIN_LABEL_SPACING))
        decades = np.arange(math.ceil(lo - 1e-9), math.floor(hi + 1e-9) + 1)
        if len(decades) > room:  # every k-th decade
            k = math.ceil(len(decades) / room)
            decades = decades[(decades % k) == 0]
            return [(float(k), decades.tolist())]
        values = decades.tolist()
        for factor in (2.0, 5.0):  # 1-2-5 while there is room
            extra = [d + math.log10(factor) for d in range(math.floor(lo), math.ceil(hi) + 1)]
            extra = [v for v in extra if lo <= v <= hi]
            if len(values) + len(extra) > room:
                break
            values += extra
        if len(values) < 2:  # less than a decade: plain linear ticks between the ends
            ticks = super().tickSpacing(10 ** lo, 10 ** hi, size)
            spacing = ticks[0][0] if ticks else (10 ** hi - 10 ** lo) / 2
            first = math.ceil(10 ** lo / spacing) * spacing
            linear = np.arange(first, 10 ** hi + spacing * 1e-9, spacing)
            values = [math.log10(v) for v in linear if v > 0][:room]
        return [(None, sorted(values))]

    def tickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph API)
        if self.logMode:
            return [decade_label(v) for v in values]
        return [plain_number(v * scale, (spacing or 0) * scale) for v in values]


def envelope(y: np.ndarray, buckets: int = LOSS_BUCKETS) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of a long curve thinned to its min and max in each of ``buckets``
    equal slices, in step order: at screen resolution it draws exactly like the full curve
    (every peak and dip kept) at a fraction of the line segments."""
    y = np.asarray(y, dtype=float)
    n = len(y)
    x = np.arange(n)
    if n <= 2 * buckets:
        return x, y
    edges = np.linspace(0, n, buckets + 1).astype(int)
    size = int(np.max(np.diff(edges)))
    idx = np.minimum(edges[:-1, None] + np.arange(size)[None, :], edges[1:, None] - 1)
    block = y[idx]
    lo = idx[np.arange(buckets), np.argmin(block, axis=1)]
    hi = idx[np.arange(buckets), np.argmax(block, axis=1)]
    keep = np.unique(np.concatenate([lo, hi, [0, n - 1]]))
    return x[keep], y[keep]


@dataclass
class _LossItems:
    curve: pg.PlotDataItem
    brush: QBrush | None = None  # its head's fill (the heads share one item)
    style: tuple = ()
    key: tuple = ()  # (trajectory, shift, log, buckets) the curve was drawn for
    values: np.ndarray | None = None  # the displayed values of the drawn envelope


class LossPlot(_PlotWidget):
    """Loss against step for every run, with the current step marked.

    ``updated`` is emitted when an :meth:`update_runs_soon` has been applied.

    The axis range comes from the runs that did not diverge (a run that exploded leaves the
    plot at the top instead of squashing the others into a line), and a log scale with
    losses ≤ 0 plots f − min f, says so in the title and labels the axis accordingly.
    """

    updated = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent, background=BACKGROUND, axisItems={"left": PlainAxis("left")})
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        plot = self.getPlotItem()
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.layout.setContentsMargins(4, 10, 8, 4)  # room for the top tick label
        # no grid: pyqtgraph draws it as part of the axes, which would then be repainted on
        # every animation frame (the moving step line crosses them)
        _style_axes(plot, "step", LOSS_LABEL)
        self._plot = plot
        self.step_line = pg.InfiniteLine(
            angle=90, movable=False, pen=pg.mkPen(255, 255, 255, 140, width=1,
                                                   style=Qt.PenStyle.DashLine)
        )
        self.step_line.setZValue(50)
        plot.addItem(self.step_line)
        self._curves: dict[int, _LossItems] = {}
        self._trajs: dict[int, Trajectory] = {}
        self.heads = pg.PlotDataItem(pen=None, symbol="o", symbolSize=9,
                                     symbolPen=pg.mkPen("#ffffff", width=1.5))
        self.heads.setZValue(200)
        plot.addItem(self.heads)
        self._head_ids: list[int] = []
        self._log = False
        self._step = 0
        self._steps = 0
        self.shift: float | None = None  # min f subtracted on a log scale with f ≤ 0
        self._waiting = False  # every shown run is being recomputed (update_runs)
        self.note = ""  # what the title says about the shift ("" when none)
        self._floor = 1.0  # where a shifted loss of 0 is drawn (a tenth of the smallest > 0)
        self._buckets = self.buckets()
        self._pending: tuple | None = None  # update_runs_soon's arguments
        self._pending_timer = QTimer(self)
        self._pending_timer.setSingleShot(True)
        self._pending_timer.timeout.connect(self.flush)

    def buckets(self) -> int:
        """Envelope buckets for the plot's width: about one per pixel, as a power of two."""
        width = max(1.0, self._plot.vb.width() or self.width())
        return int(min(LOSS_BUCKETS, max(MIN_LOSS_BUCKETS, 2 ** math.ceil(math.log2(width)))))

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        if self.__dict__.get("_trajs") is not None and self.buckets() != self._buckets:
            self._refresh_curves()

    def set_log(self, log: bool) -> None:
        self.flush()  # the runs as they are now, not as they were (their losses may be ≤ 0)
        self._log = bool(log)
        self._plot.setLogMode(x=False, y=self._log)  # this switches autorange back on
        self._fit_x()
        self._refresh_curves()
        self.set_step(self._step)

    @property
    def log(self) -> bool:
        return self._log

    def update_runs_soon(
        self, config: RunConfig, trajectories: Mapping[int, Trajectory], selected=None,
        computing: bool = False,
    ) -> None:
        """:meth:`update_runs` in the next pass of the event loop. The window changes the
        contour first; this plot's update and repaint (10-25 ms with 8 long runs) then come
        in a pass of their own, so input and timers are served in between."""
        self._pending = (config, dict(trajectories), selected, computing)
        self._pending_timer.start(0)

    @property
    def pending(self) -> bool:
        """Whether an :meth:`update_runs_soon` is still to be applied."""
        return self._pending is not None

    def flush(self) -> None:
        """Apply an :meth:`update_runs_soon` now (before an export, a test's check, …)."""
        self._pending_timer.stop()
        pending, self._pending = self._pending, None
        if pending is not None:
            self.update_runs(*pending)
            self.set_step(self._step)
            self.updated.emit()

    def update_runs(
        self, config: RunConfig, trajectories: Mapping[int, Trajectory], selected=None,
        computing: bool = False,
    ) -> None:
        """Sync the curves with the runs; ``computing``: results are still to arrive."""
        self._pending_timer.stop()
        self._pending = None
        ids = {r.run_id for r in config.runs}
        for rid in list(self._curves):
            if rid not in ids:
                self._plot.removeItem(self._curves.pop(rid).curve)
        self._trajs = {}
        for z, entry in enumerate(config.runs):
            traj = trajectories.get(entry.run_id)
            visible = entry.enabled and traj is not None
            items = self._curves.get(entry.run_id)
            if items is None:
                if not visible:
                    continue  # made when its first result arrives
                items = _LossItems(pg.PlotDataItem(connect="finite"))
                # a curve changes only when its run is recomputed, while the step line and
                # the heads move every frame: draw each curve once into a pixmap and blit it
                items.curve.curve.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
                self._plot.addItem(items.curve)
                self._curves[entry.run_id] = items
            emphasis = entry.run_id == selected
            style = (entry.color, emphasis, z)
            if style != items.style:
                items.style = style
                _restroke(items.curve, _curve_pen(entry.color, 2.5 if emphasis else 1.6))
                items.curve.setZValue(10 + z + (100 if emphasis else 0))
                items.brush = pg.mkBrush(entry.color)
            if items.curve.isVisible() != visible:
                items.curve.setVisible(visible)
            if visible:
                self._trajs[entry.run_id] = traj
        # every shown run recomputing (a new surface): keep the title line until their
        # results say otherwise, instead of the plot losing it and getting it back, laid
        # out and painted twice, a moment later
        self._waiting = computing and not self._trajs
        if config.steps != self._steps:
            self._steps = config.steps
            self._fit_x()
        self._refresh_curves()
        self.set_step(self._step)

    def _fit_x(self) -> None:
        self._plot.setXRange(0, max(1, self._steps), padding=0.02)

    def _display(self, losses: np.ndarray) -> np.ndarray:
        """Losses as plotted: f, or on a log scale with a shift f − min f (the minimum itself,
        0 after the shift, sits at the bottom of the axis instead of vanishing)."""
        if self.shift is None:
            return losses
        y = losses - self.shift
        return np.where(y > 0, np.maximum(y, self._floor), self._floor)

    def _refresh_curves(self) -> None:
        lows = [float(t.losses.min()) for t in self._trajs.values() if len(t.losses)]
        shift = min(lows) if self._log and lows and min(lows) <= 0 else None
        if self._waiting and self._log:
            shift = self.shift
        if shift is not None and lows:
            positive = [t.losses[t.losses > shift] - shift for t in self._trajs.values()]
            smallest = min((float(p.min()) for p in positive if p.size), default=1.0)
            self._floor = max(smallest / 10.0, 1e-300)  # log10 of denormals is not drawn
        if shift != self.shift:
            self.shift = shift
            for items in self._curves.values():
                items.key = ()
            self._show_shift()
        self._buckets = self.buckets()
        for rid, traj in self._trajs.items():
            items = self._curves[rid]
            key = (traj, self.shift, self._log, self._buckets)
            if items.key and items.key[0] is traj and items.key[1:] == key[1:]:
                continue
            items.key = key
            x, y = envelope(self._display(traj.losses), self._buckets)
            items.values = y
            items.curve.setData(x, y)
        self._fit_y()

    def _show_shift(self) -> None:
        if self.shift is None:
            self.note = ""
            self._plot.setTitle(None)
            self._plot.getAxis("left").setLabel(LOSS_LABEL, color=AXIS_COLOR)
            return
        if self.shift == 0:  # f ≥ 0 and some runs reach 0 exactly: nothing to subtract
            self.note = "Losses of exactly 0 are drawn at the bottom of the log scale"
            label = LOSS_LABEL
        else:
            self.note = (f"Some losses are ≤ 0, so the log scale shows f − min f "
                         f"(min f = {self.shift:.4g}, the lowest loss reached)")
            label = "f − min f"
        self._plot.setTitle(self.note, color="#ffd27f", size="9pt")
        self._plot.getAxis("left").setLabel(label, color=AXIS_COLOR)

    def y_range(self) -> tuple[float, float] | None:
        """The displayed loss range: every run that did not diverge, and the others only
        within it (when every run diverged, all of them)."""
        calm = [self._curves[rid].values for rid, t in self._trajs.items() if not t.diverged]
        wild = [self._curves[rid].values for rid, t in self._trajs.items() if t.diverged]
        values = [v[np.isfinite(v)] for v in (calm or wild) if v is not None]
        values = [v for v in values if v.size]
        if not values:
            return None
        lo = min(float(v.min()) for v in values)
        hi = max(float(v.max()) for v in values)
        if calm:
            others = [v[np.isfinite(v)] for v in wild if v is not None]
            lows = [float(v.min()) for v in others if v.size]
            lo = min([lo, *lows])
        return lo, hi

    def _fit_y(self) -> None:
        span = self.y_range()
        if span is None:
            return
        lo, hi = span
        if self._log:
            lo, hi = math.log10(max(lo, 1e-300)), math.log10(max(hi, 1e-300))
        if hi - lo < 1e-12:
            lo, hi = lo - 0.5, hi + 0.5
        self._plot.setYRange(lo, hi, padding=0.05)

    def set_step(self, k: int) -> None:
        self._step = int(k)
        self.step_line.setValue(self._step)
        # every run's current point, in one item (a PlotDataItem: it follows the log scale)
        ns = np.array([t.at(self._step) for t in self._trajs.values()], dtype=int)
        ys = np.array([self._display(t.losses[n : n + 1])[0]
                       for t, n in zip(self._trajs.values(), ns, strict=True)], dtype=float)
        brushes = [self._curves[rid].brush for rid in self._trajs]
        drawn = np.isfinite(ys)  # a diverged run's inf has no place on the axis
        self._head_ids = [rid for rid, ok in zip(self._trajs, drawn, strict=True) if ok]
        self.heads.setData(ns[drawn], ys[drawn],
                           symbolBrush=[b for b, ok in zip(brushes, drawn, strict=True) if ok])

    def head_of(self, run_id: int) -> tuple[float, float] | None:
        """The run's current (step, loss) as plotted (before the log scale), or None."""
        if run_id not in self._head_ids:
            return None
        x, y = self.heads.getOriginalDataset()
        i = self._head_ids.index(run_id)
        return float(x[i]), float(y[i])

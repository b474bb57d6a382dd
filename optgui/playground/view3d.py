"""The 3-D view: the surface as a shaded mesh with every run's path drawn on it.

OpenGL is optional. This module imports nothing of pyqtgraph.opengl (nor PyOpenGL) until the
view is first shown, so start-up stays fast; then it checks that PyOpenGL imports and that Qt
can create and use an OpenGL context. If either fails (PyOpenGL missing, a remote or
offscreen display, a broken driver) the pane says why and the rest of the window works as
before. Creating a QOpenGLWidget without a working context is avoided on purpose: it can
turn the whole top-level window black, not just the pane.

World coordinates: the surface's default view is mapped to a 10 × 10 square and its height
(log-scaled exactly like the contour colours when the contour is) to 0…4, so every surface
reads well whatever its units. Paths are lifted slightly above the mesh so they stay
visible; points far outside the view are clipped to its box (a diverging run would otherwise
fly off to infinity).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QVector3D
from PySide6.QtWidgets import QLabel, QStackedLayout, QWidget

from engine import Surface, Trajectory
from optgui.playground.config import RunConfig
from optgui.playground.contours import display_values

BACKGROUND = "#17171f"
GRID_N = 90  # mesh resolution: smooth enough, cheap to build on a software renderer
HALF = 5.0  # the view maps to [-HALF, HALF]²
HEIGHT = 4.0  # and the surface's height to [0, HEIGHT]
LIFT = 0.06  # paths float this far above the mesh
PLAY_INTERVAL_MS = 33
MAX_DOTS = 400  # like the contour: past this many points a path is a plain line


def opengl_unavailable_reason() -> str:
    """Why the 3-D view cannot run here, or "" if it can (PyOpenGL + a usable GL context)."""
    try:
        import OpenGL.GL  # noqa: F401  (PyOpenGL: pyqtgraph.opengl needs it)
    except Exception as exc:  # noqa: BLE001 - ImportError, or a missing libGL at import
        return f"PyOpenGL is not available ({exc}). Install it with: pip install PyOpenGL"
    from PySide6.QtGui import QGuiApplication, QOffscreenSurface, QOpenGLContext

    platform = QGuiApplication.platformName()
    ctx = QOpenGLContext()
    if not ctx.create():
        return f"no OpenGL context can be created on this display (Qt platform '{platform}')"
    surface = QOffscreenSurface()
    surface.setFormat(ctx.format())
    surface.create()
    try:
        if not surface.isValid() or not ctx.makeCurrent(surface):
            return f"the OpenGL context cannot be used (Qt platform '{platform}')"
        major, minor = ctx.format().majorVersion(), ctx.format().minorVersion()
        ctx.doneCurrent()
    finally:
        surface.destroy()
    if (major, minor) < (2, 0):
        return f"OpenGL {major}.{minor} is too old (2.0 or newer is needed)"
    return ""


@dataclass
class _Mapping:
    """Surface coordinates → world coordinates of the 3-D scene."""

    x0: float
    x1: float
    y0: float
    y1: float
    h0: float
    h1: float
    log: bool
    zmin: float
    offset: float

    def xy(self, pts: np.ndarray) -> np.ndarray:
        x = (pts[:, 0] - self.x0) / (self.x1 - self.x0) * 2 * HALF - HALF
        y = (pts[:, 1] - self.y0) / (self.y1 - self.y0) * 2 * HALF - HALF
        return np.stack([x, y], axis=-1)

    def height(self, f: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            h = np.log10(np.maximum(f - self.zmin, 0) + self.offset) if self.log else f
            z = (h - self.h0) / (self.h1 - self.h0) * HEIGHT
        return np.where(np.isfinite(z), z, HEIGHT)


def surface_mesh(surface: Surface, n: int = GRID_N) -> tuple[np.ndarray, ...]:
    """World x, y, heights z[ix, iy], vertex colours (viridis, shaded) and the mapping."""
    import pyqtgraph as pg

    xs, ys, Z = surface.grid(None, n)
    H, _, log, zmin, offset = display_values(surface, Z)
    h = H[np.isfinite(H)]
    h0, h1 = (float(h.min()), float(h.max())) if h.size else (0.0, 1.0)
    if h1 <= h0:
        h1 = h0 + 1.0
    m = _Mapping(float(xs[0]), float(xs[-1]), float(ys[0]), float(ys[-1]), h0, h1, log,
                 zmin, offset)
    wx = np.linspace(-HALF, HALF, n)
    wy = np.linspace(-HALF, HALF, n)
    z = np.nan_to_num((H - h0) / (h1 - h0) * HEIGHT, nan=HEIGHT).T  # → z[ix, iy]
    colors = pg.colormap.get("viridis").map(np.clip(z / HEIGHT, 0, 1), mode="float")
    # Lambert shading from the mesh normals: the colours alone hide the shape
    dzdx, dzdy = np.gradient(z, wx, wy)
    normal = np.stack([-dzdx, -dzdy, np.ones_like(z)], axis=-1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    light = np.array([-0.45, -0.55, 0.7])
    light /= np.linalg.norm(light)
    shade = 0.5 + 0.5 * np.clip(normal @ light, 0, 1)
    colors = np.asarray(colors, dtype=float).reshape(n, n, 4)
    colors[..., :3] *= shade[..., None]
    colors[..., 3] = 1.0
    return wx, wy, z, colors, m


def _rgba(color: str, alpha: float = 1.0) -> tuple[float, float, float, float]:
    c = QColor(color)
    return (c.redF(), c.greenF(), c.blueF(), alpha)


@dataclass
class _RunItems:
    line: Any
    dots: Any
    head: Any
    world: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))


class Surface3DView(QWidget):
    """A placeholder until first shown; then the GL scene or a message saying why not."""

    ready = Signal(bool)  # True: the scene is up; False: the message is shown instead

    def __init__(self, ctrl, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("surface3d")
        self.ctrl = ctrl
        self.state = "idle"  # → "ready" | "unavailable"
        self.reason = ""
        self.gl_view = None
        self._gl = None  # the pyqtgraph.opengl module, once imported
        self._mesh_item = None
        self._marks = None
        self._runs: dict[int, _RunItems] = {}
        self._mapping: _Mapping | None = None
        self._surface_key: tuple | None = None
        self._dirty_runs = True

        self.message = QLabel("The 3-D view is built when it is first shown.")
        self.message.setObjectName("surface3dMessage")
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.message.setProperty("role", "hint")
        self.message.setMargin(16)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._stack = QStackedLayout(self)
        self._stack.addWidget(self.message)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.refresh)
        ctrl.configChanged.connect(self._runs_changed)
        ctrl.trajectoriesChanged.connect(self._runs_changed)
        ctrl.selectionChanged.connect(self._runs_changed)
        ctrl.stepChanged.connect(self._schedule)

    # -------------------------------------------------------------- lifecycle
    def showEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().showEvent(event)
        if self.state == "idle":
            self.initialize()
        elif self.state == "ready":
            self._schedule()

    def initialize(self) -> bool:
        """Import the GL stack and build the scene (once); False if OpenGL is unavailable."""
        if self.state != "idle":
            return self.state == "ready"
        reason = opengl_unavailable_reason()
        if not reason:
            try:
                self._build_scene()
            except Exception as exc:  # noqa: BLE001 - any GL failure: say so, keep the app
                reason = f"the 3-D scene could not be created ({exc})"
        if reason:
            self.state = "unavailable"
            self.reason = reason
            self.message.setText(f"3-D view needs OpenGL: {reason}.\n\n"
                                 "Everything else works without it.")
            self._stack.setCurrentWidget(self.message)
            self.ready.emit(False)
            return False
        self.state = "ready"
        self._stack.setCurrentWidget(self.gl_view)
        self.refresh()
        self.ready.emit(True)
        return True

    def _build_scene(self) -> None:
        import pyqtgraph.opengl as gl

        self._gl = gl
        view = gl.GLViewWidget()
        view.setObjectName("surface3dGL")
        view.setBackgroundColor(BACKGROUND)
        view.setCameraPosition(pos=QVector3D(0, 0, HEIGHT * 0.25), distance=17, elevation=34,
                               azimuth=-60)
        view.setToolTip("Drag to rotate · right-drag or scroll to zoom · middle-drag to pan")
        self._mesh_item = gl.GLSurfacePlotItem(computeNormals=False, smooth=True,
                                               glOptions="opaque")
        view.addItem(self._mesh_item)
        self._marks = gl.GLScatterPlotItem(pos=np.zeros((0, 3)), size=12, pxMode=True,
                                           color=(1, 1, 1, 1), glOptions="translucent")
        view.addItem(self._marks)
        self.gl_view = view
        self._stack.addWidget(view)

    # -------------------------------------------------------------- updating
    def _runs_changed(self, *_) -> None:
        self._dirty_runs = True
        self._schedule()

    def _schedule(self, *_) -> None:
        if self.state != "ready" or not self.isVisible() or self._timer.isActive():
            return
        self._timer.start(PLAY_INTERVAL_MS if self.ctrl.is_playing() else 0)

    def refresh(self) -> None:
        """Bring the scene in line with the controller (surface, runs, current step)."""
        self._timer.stop()
        if self.state != "ready":
            return
        ctrl = self.ctrl
        self._sync_surface(ctrl.surface, ctrl.config.start)
        if self._dirty_runs:
            self._sync_runs(ctrl.config, ctrl.trajectories, ctrl.selected_run)
            self._dirty_runs = False
        self._set_step(ctrl.step)

    def _sync_surface(self, surface: Surface, start) -> None:
        key = (surface.name, tuple(surface.view), id(surface), tuple(start))
        if key == self._surface_key:
            return
        surface_changed = self._surface_key is None or key[:3] != self._surface_key[:3]
        self._surface_key = key
        if surface_changed:
            wx, wy, z, colors, mapping = surface_mesh(surface)
            self._mapping = mapping
            self._mesh_item.setData(x=wx, y=wy, z=z, colors=colors)
            self._dirty_runs = True
        pts = [tuple(start)] + [tuple(p) for p in (surface.minima or ())]
        world = self._world(np.asarray(pts, dtype=float), surface)
        colors = np.array([(1, 1, 1, 0.9)] + [(1, 0.85, 0.3, 1)] * (len(pts) - 1))
        self._marks.setData(pos=world, color=colors, size=10)

    def _world(self, pts: np.ndarray, surface: Surface | None = None) -> np.ndarray:
        """Points (n, 2) → world (n, 3) on the mesh, lifted and clipped to the box."""
        m = self._mapping
        surface = surface or self.ctrl.surface
        if m is None or len(pts) == 0:
            return np.zeros((0, 3))
        xy = np.clip(self._finite(m.xy(pts)), -HALF * 1.1, HALF * 1.1)
        with np.errstate(all="ignore"):
            f = np.asarray(surface.value(pts), dtype=float)
        z = np.clip(m.height(f), 0, HEIGHT * 1.1) + LIFT
        return np.column_stack([xy, z]).astype(np.float32)

    @staticmethod
    def _finite(a: np.ndarray) -> np.ndarray:
        return np.nan_to_num(a, nan=0.0, posinf=HALF * 1.1, neginf=-HALF * 1.1)

    def _sync_runs(self, config: RunConfig, trajectories: Mapping[int, Trajectory],
                   selected: int | None) -> None:
        gl = self._gl
        ids = {r.run_id for r in config.runs}
        for rid in list(self._runs):
            if rid not in ids:
                items = self._runs.pop(rid)
                for item in (items.line, items.dots, items.head):
                    self.gl_view.removeItem(item)
        for entry in config.runs:
            items = self._runs.get(entry.run_id)
            if items is None:
                items = _RunItems(
                    line=gl.GLLinePlotItem(mode="line_strip", antialias=True,
                                           glOptions="translucent"),
                    dots=gl.GLScatterPlotItem(pxMode=True, glOptions="translucent"),
                    head=gl.GLScatterPlotItem(pxMode=True, glOptions="translucent"),
                )
                for item in (items.line, items.dots, items.head):
                    self.gl_view.addItem(item)
                self._runs[entry.run_id] = items
            traj = trajectories.get(entry.run_id)
            visible = entry.enabled and traj is not None
            items.world = self._world(traj.points) if visible else np.zeros((0, 3))
            emphasis = entry.run_id == selected
            items.line.setData(color=_rgba(entry.color), width=3.5 if emphasis else 2.0)
            items.dots.setData(color=_rgba(entry.color, 0.9), size=6 if emphasis else 4)
            items.head.setData(color=_rgba(entry.color), size=16 if emphasis else 12)
            for item in (items.line, items.dots, items.head):
                item.setVisible(visible)

    def _set_step(self, k: int) -> None:
        for items in self._runs.values():
            if not items.line.visible() or len(items.world) == 0:
                continue
            n = max(0, min(int(k), len(items.world) - 1))
            path = items.world[: n + 1]
            if len(path) == 1:
                path = np.vstack([path, path])  # a strip needs two vertices
            items.line.setData(pos=path)
            # every point as a dot (like the contour's markers) while there are few of them
            items.dots.setData(pos=items.world[: n + 1] if n < MAX_DOTS else np.zeros((0, 3)))
            items.head.setData(pos=items.world[n : n + 1])

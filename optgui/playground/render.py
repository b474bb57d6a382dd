"""Headless rendering of the contour picture, for the command line (``export --png``).

It draws with the very :class:`~optgui.playground.plots.ContourPlot` the window uses, so the
PNG is the picture on screen. Without a display it switches Qt to the ``offscreen``
platform before any QApplication exists.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from engine import Surface, Trajectory
from engine.export import atomic_write
from optgui.playground.config import PATH_COLORS, RunConfig, RunEntry


def _ensure_app():
    """A QApplication to draw with; offscreen when there is no display to talk to."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is not None:
        if not isinstance(app, QApplication):
            raise RuntimeError("a QCoreApplication is running; rendering needs QApplication")
        return app
    from optgui.app import display_problem

    if display_problem():  # no display to talk to (and no platform chosen): draw offscreen
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    return QApplication([sys.argv[0] if sys.argv else "optgui"])


def render_contour_image(
    surface: Surface,
    trajectories: Sequence[Trajectory],
    colors: Sequence[str] | None = None,
    size: tuple[int, int] = (900, 600),
    step: int | None = None,
):
    """The contour picture as a QImage of exactly ``size`` pixels (all steps unless ``step``)."""
    _app = _ensure_app()
    from optgui.playground.plots import ContourPlot

    colors = list(colors) if colors else [PATH_COLORS[i % len(PATH_COLORS)]
                                          for i in range(len(trajectories))]
    if len(colors) < len(trajectories):
        raise ValueError(f"{len(trajectories)} trajectories but only {len(colors)} colours")
    runs = tuple(RunEntry(i + 1, t.spec, colors[i]) for i, t in enumerate(trajectories))
    steps = max((t.steps for t in trajectories), default=0)
    config = RunConfig(surface.name, (0.0, 0.0), steps, runs)
    plot = ContourPlot()
    try:
        plot.resize(int(size[0]), int(size[1]))
        plot.set_surface(surface)
        if trajectories:
            plot.set_start(trajectories[0].points[0])
        plot.update_runs(config, {i + 1: t for i, t in enumerate(trajectories)})
        plot.set_step(steps if step is None else step)
        plot.reset_view()
        return plot.grab().toImage()
    finally:
        plot.deleteLater()


def save_contour_png(
    surface: Surface,
    trajectories: Sequence[Trajectory],
    path,
    colors: Sequence[str] | None = None,
    size: tuple[int, int] = (900, 600),
) -> None:
    """Write the contour picture with every trajectory drawn to its last step, atomically.

    Raises ``OSError`` if the file cannot be written (nothing is left behind).
    """
    from optgui.playground.plots import png_bytes

    image = render_contour_image(surface, trajectories, colors, size)
    atomic_write(path, png_bytes(image))


def figure_scene(
    surface: Surface,
    trajectories: Sequence[Trajectory],
    start,
    steps: int,
    colors: Sequence[str] | None = None,
    overlays: Sequence[str] = (),
    selected: int = 1,
    log_loss: bool = True,
    title: str = "",
    view: tuple[float, float, float, float] | None = None,
):
    """A :class:`~optgui.playground.figure.FigureScene` for runs computed outside the window
    (the command line): run i + 1 gets ``colors[i]`` (the window's colours by default)."""
    from optgui.playground.figure import FigureScene

    colors = list(colors) if colors else [PATH_COLORS[i % len(PATH_COLORS)]
                                          for i in range(len(trajectories))]
    runs = tuple(RunEntry(i + 1, t.spec, colors[i]) for i, t in enumerate(trajectories))
    config = RunConfig(surface.name, (float(start[0]), float(start[1])), int(steps), runs)
    return FigureScene(
        surface, config, {i + 1: t for i, t in enumerate(trajectories)},
        selected=selected if trajectories else None,
        overlays={key: True for key in overlays}, log_loss=log_loss, view=view, title=title,
    )


def save_figure(scene, path, fmt: str = "png", size: tuple[int, int] = (1280, 720),
                theme: str = "dark", contents: str = "figure") -> None:
    """Write the figure of ``scene`` at its last step as PNG, SVG or PDF, atomically."""
    atomic_write(path, figure_bytes(scene, fmt, size, theme, contents))


def figure_bytes(scene, fmt: str = "png", size: tuple[int, int] = (1280, 720),
                 theme: str = "dark", contents: str = "figure") -> bytes:
    """The figure of ``scene`` at its last step, encoded as PNG, SVG or PDF."""
    _app = _ensure_app()
    from optgui.playground.figure import Figure

    figure = Figure(scene, size, theme, contents)
    try:
        return figure.encode(fmt)
    finally:
        figure.dispose()


def save_animation(scene, kind: str, path, size: tuple[int, int] = (1280, 720),
                   theme: str = "dark", fps: float = 8.0, every: int | None = None,
                   progress=None) -> int:
    """Write the race of ``scene`` as ``kind`` (gif, mp4 or frames) and return the number
    of frames; ``progress(done, total)`` returning False cancels (nothing is written)."""
    _app = _ensure_app()
    from engine.animation import frame_steps, write_animation
    from optgui.playground.figure import Figure

    steps = frame_steps(scene.last_step, every)
    figure = Figure(scene, size, theme)
    try:
        palette = [figure.rgb(steps[0]), figure.rgb(steps[-1])] if kind == "gif" else None
        report = None if progress is None else (lambda done: progress(done, len(steps)))
        return write_animation(kind, path, figure.frames(steps), fps, report, palette,
                               figure.key_colors())
    finally:
        figure.dispose()

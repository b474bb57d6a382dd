"""The effective-learning-rate strip under the loss plot.

For every shown run with a learning-rate schedule or gradient clipping it draws η_k, the
learning rate step k ran with (``Trajectory.lrs``), as a step line in the run's colour, and
marks with a small triangle every step where clip_norm/clip_value changed the gradient
(``Trajectory.clipped``). The strip shares the loss plot's step axis and hides itself when no
shown run schedules or clips, so the common case costs no space.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal

from engine import Trajectory, schedules
from optgui.playground.config import RunConfig
from optgui.playground.plots import AXIS_COLOR, BACKGROUND, _PlotWidget

STRIP_HEIGHT = 84
CLIP_COLOR = "#ff5252"


def strip_data(traj: Trajectory) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(steps, η per step, the steps where clipping fired) of one run; η is NaN where the rule
    has no learning rate."""
    steps = np.arange(1, len(traj.lrs))
    lrs = np.asarray(traj.lrs[1:], dtype=float)
    fired = steps[np.asarray(traj.clipped[1:], dtype=bool)]
    return steps, lrs, fired


def wants_strip(traj: Trajectory) -> bool:
    return schedules.is_active(traj.spec.resolved())


class LrStrip(_PlotWidget):
    """η_k per run and clipping markers; call :meth:`update_runs` and :meth:`set_step`."""

    shownChanged = Signal(bool)

    def __init__(self, loss_plot=None, parent=None) -> None:
        super().__init__(parent, background=BACKGROUND)
        plot = self.getPlotItem()
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.layout.setContentsMargins(4, 2, 8, 2)
        for side in ("left", "bottom"):
            axis = plot.getAxis(side)
            axis.setPen(pg.mkPen(AXIS_COLOR))
            axis.setTextPen(pg.mkPen(AXIS_COLOR))
        plot.getAxis("bottom").setStyle(showValues=False)
        plot.setLabel("left", "η", color=AXIS_COLOR)
        if loss_plot is not None:
            self.setXLink(loss_plot)
        self.setFixedHeight(STRIP_HEIGHT)
        self.setToolTip("Effective learning rate η_k of each step (its schedule) per run; "
                        "red triangles: steps where gradient clipping fired")
        self._plot = plot
        self.step_line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(
            255, 255, 255, 140, width=1, style=Qt.PenStyle.DashLine))
        plot.addItem(self.step_line)
        self._items: dict[int, tuple[pg.PlotDataItem, pg.ScatterPlotItem]] = {}
        self.shown_runs: dict[int, Trajectory] = {}
        self.hide()

    def update_runs(self, config: RunConfig, trajectories: Mapping[int, Trajectory],
                    selected=None) -> None:
        ids = {r.run_id for r in config.runs}
        for rid in list(self._items):
            if rid not in ids:
                for item in self._items.pop(rid):
                    self._plot.removeItem(item)
        self.shown_runs = {}
        for entry in config.runs:
            traj = trajectories.get(entry.run_id)
            show = bool(entry.enabled and traj is not None and wants_strip(traj))
            items = self._items.get(entry.run_id)
            if items is None:
                if not show:
                    continue  # made for the first run that schedules or clips: most never do
                curve = pg.PlotDataItem(stepMode="right", connect="finite")
                marks = pg.ScatterPlotItem(symbol="t", size=9, brush=pg.mkBrush(CLIP_COLOR),
                                           pen=pg.mkPen("#000000", width=1))
                marks.setZValue(50)
                for item in (curve, marks):
                    self._plot.addItem(item)
                items = self._items[entry.run_id] = (curve, marks)
            curve, marks = items
            curve.setVisible(show)
            marks.setVisible(show)
            if not show:
                continue
            self.shown_runs[entry.run_id] = traj
            steps, lrs, fired = strip_data(traj)
            width = 2.4 if entry.run_id == selected else 1.4
            curve.setPen(pg.mkPen(entry.color, width=width))
            # stepMode="right": η_k is held over [k − 1, k], the step it was used for
            curve.setData(steps - 1, lrs)
            top = np.nanmax(lrs) if np.any(np.isfinite(lrs)) else 1.0
            marks.setData(fired, np.full(fired.shape, top))
        visible = bool(self.shown_runs)
        if visible != self.isVisible():
            self.setVisible(visible)
            self.shownChanged.emit(visible)

    def set_step(self, k: int) -> None:
        self.step_line.setValue(int(k))

"""The Maps dock: a basin map or a phase diagram of the selected run, computed in a worker.

The map follows the playground: the selected run's optimizer, the surface, the start point
(phase diagram) and the settings in the dock. A new map is computed coarse first
(:data:`engine.maps.COARSE`² cells, on screen in a fraction of a second) and then at the
chosen size, in a worker thread with a progress bar and a Cancel button; any change cancels
the map under way. Clicking a cell sets that start point (basin map) or those
hyperparameters (phase diagram) on the run in the race, so "where does it fail" becomes
"watch it fail" in one click. The map exports as CSV or PNG.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.maps import (
    COARSE,
    MapRequest,
    MapResult,
    Sweep,
    check_request,
    coarse_to_fine,
    map_csv,
    sweepable,
)
from optgui.maps.plot import MapPlot

DEBOUNCE_MS = 150
BASIN_TEXT, PHASE_TEXT = "Basin map (starts)", "Phase diagram (hyperparameters)"
NO_SECOND = "—"


@dataclass(frozen=True)
class _Job:
    generation: int
    request: MapRequest
    cancel: threading.Event


class _MapWorker(QObject):
    """Computes maps in its own thread; every signal carries the job's generation."""

    result = Signal(int, object, bool)  # generation, MapResult, final
    progress = Signal(int, int, int)  # generation, done, total
    finished = Signal(int, bool)  # generation, cancelled
    failed = Signal(int, str)

    @Slot(object)
    def run(self, job: _Job) -> None:
        if job.cancel.is_set():
            self.finished.emit(job.generation, True)
            return

        def report(done: int, total: int) -> bool:
            self.progress.emit(job.generation, done, total)
            return not job.cancel.is_set()

        try:
            count = 0
            for res in coarse_to_fine(job.request, report):
                count += 1
                final = res.request is job.request or res.shape == job.request.shape
                self.result.emit(job.generation, res, final)
                if job.cancel.is_set():
                    break
        except (ValueError, FloatingPointError, MemoryError) as exc:
            self.failed.emit(job.generation, str(exc))
            return
        self.finished.emit(job.generation, job.cancel.is_set())


class MapsView(QWidget):
    """The dock's contents: settings, the map, progress, export."""

    mapShown = Signal(object)  # every MapResult drawn, coarse ones too (GUI thread)
    mapReady = Signal(object)  # the final MapResult of a computation (GUI thread)
    settingsChanged = Signal()  # a setting worth saving changed (see state())
    requestJob = Signal(object)

    def __init__(self, ctrl, parent=None) -> None:
        super().__init__(parent)
        self.ctrl = ctrl
        self.result: MapResult | None = None
        self._generation = 0
        self._job: _Job | None = None
        self._active = False  # compute automatically (the dock is shown)
        self._last_key: tuple | None = None  # what the last map computed depends on

        self.mode = QComboBox()
        self.mode.addItems([BASIN_TEXT, PHASE_TEXT])
        self.mode.setToolTip("Basin map: one run per start on a grid over the view, coloured "
                             "by the minimum it reaches.\nPhase diagram: one start, one or two "
                             "hyperparameters swept, coloured by the final loss.")
        self.size = QSpinBox()
        self.size.setRange(8, 512)
        self.size.setValue(128)
        self.size.setToolTip("Cells per side (basin map) or values per swept hyperparameter; "
                             f"a {COARSE}² map is shown first")
        self.steps = QSpinBox()
        self.steps.setRange(1, 5000)
        self.steps.setValue(200)
        self.steps.setToolTip("Steps of every run of the map")
        self.sweep1 = QComboBox()
        self.sweep2 = QComboBox()
        self.lo1, self.hi1, self.lo2, self.hi2 = (self._number() for _ in range(4))
        self.log1, self.log2 = QCheckBox("log"), QCheckBox("log")
        self.color_by = QComboBox()
        self.color_by.addItems(["log₁₀ final loss", "steps to converge"])
        self.color_by.setToolTip("What the phase diagram's colours show")

        form = QFormLayout()
        form.addRow("Map", self.mode)
        row = QHBoxLayout()
        row.addWidget(QLabel("Size"))
        row.addWidget(self.size)
        row.addWidget(QLabel("Steps"))
        row.addWidget(self.steps)
        form.addRow(row)
        self.sweep_rows = []
        for label, combo, lo, hi, log in (("x", self.sweep1, self.lo1, self.hi1, self.log1),
                                          ("y", self.sweep2, self.lo2, self.hi2, self.log2)):
            line = QHBoxLayout()
            line.addWidget(combo, 2)
            line.addWidget(lo, 2)
            line.addWidget(QLabel("…"))
            line.addWidget(hi, 2)
            line.addWidget(log)
            holder = QWidget()
            holder.setLayout(line)
            line.setContentsMargins(0, 0, 0, 0)
            form.addRow(f"Sweep {label}", holder)
            self.sweep_rows.append(holder)
        form.addRow("Colour", self.color_by)
        self._form = form

        self.plot = MapPlot()
        self.plot.setMinimumHeight(220)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setMaximumHeight(16)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop computing this map (Esc)")
        self.cancel_button.setShortcut("Esc")
        self.compute_button = QPushButton("Compute")
        self.compute_button.setToolTip("Compute the map again")
        self.csv_button = QPushButton("CSV…")
        self.csv_button.setToolTip("Save one row per run of the map as CSV")
        self.png_button = QPushButton("PNG…")
        self.png_button.setToolTip("Save the map's picture as PNG")
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bar = QHBoxLayout()
        bar.addWidget(self.progress, 1)
        bar.addWidget(self.cancel_button)
        bar.addWidget(self.compute_button)
        bar.addWidget(self.csv_button)
        bar.addWidget(self.png_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(form)
        layout.addWidget(self.plot, 1)
        layout.addLayout(bar)
        layout.addWidget(self.summary)

        # the worker's thread starts with the first map (a window that never shows Maps
        # runs no extra thread); parentless, as the playground's worker, and stopped by
        # shutdown() when the window closes
        self._thread = QThread()
        self._thread.setObjectName("maps-worker")
        self._worker = _MapWorker()
        self._worker.moveToThread(self._thread)
        self._thread.finished.connect(self._worker.deleteLater)
        self.requestJob.connect(self._worker.run)
        self._worker.result.connect(self._on_result)
        self._worker.progress.connect(self._on_progress)
        self._worker.finished.connect(self._on_finished)
        self._worker.failed.connect(self._on_failed)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self.compute)

        self.mode.currentIndexChanged.connect(self._mode_changed)
        for w in (self.size, self.steps, self.lo1, self.hi1, self.lo2, self.hi2):
            w.valueChanged.connect(self._changed)
        for w in (self.log1, self.log2):
            w.toggled.connect(self._changed)
        self.sweep1.currentIndexChanged.connect(lambda _: self._sweep_changed(1))
        self.sweep2.currentIndexChanged.connect(lambda _: self._sweep_changed(2))
        self.color_by.currentIndexChanged.connect(self._recolour)
        for sig in (self.mode.currentIndexChanged, self.size.valueChanged,
                    self.steps.valueChanged, self.color_by.currentIndexChanged):
            sig.connect(self.settingsChanged)
        self.cancel_button.clicked.connect(self.cancel)
        self.compute_button.clicked.connect(self.compute)
        self.csv_button.clicked.connect(lambda: self.export_csv())
        self.png_button.clicked.connect(lambda: self.export_png())
        self.plot.cellClicked.connect(self.apply_cell)
        self.plot.hovered.connect(self.summary.setText)
        ctrl.configChanged.connect(self._changed)
        ctrl.selectionChanged.connect(self._selection_changed)
        self._selection_changed()
        self._mode_changed()
        self._set_busy(False)

    # ------------------------------------------------------------------ settings
    def state(self) -> dict:
        """The settings kept between sessions (the window saves them as they change)."""
        return {"mode": "phase" if self.is_phase() else "basin", "size": self.size.value(),
                "steps": self.steps.value(), "color": self.color_by.currentIndex()}

    def set_state(self, state: dict) -> None:
        """Restore :meth:`state`; unknown or out-of-range values keep the defaults."""
        if not isinstance(state, dict):
            return
        if state.get("mode") in ("basin", "phase"):
            self.mode.setCurrentText(PHASE_TEXT if state["mode"] == "phase" else BASIN_TEXT)
        for box, key in ((self.size, "size"), (self.steps, "steps")):
            value = state.get(key)
            if isinstance(value, int) and box.minimum() <= value <= box.maximum():
                box.setValue(value)
        if state.get("color") in (0, 1):
            self.color_by.setCurrentIndex(state["color"])

    def _number(self) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setDecimals(4)
        box.setRange(-1e6, 1e6)
        box.setKeyboardTracking(False)
        return box

    def _spec(self):
        run = self.ctrl.config.run(self.ctrl.selected_run) if self.ctrl.selected_run else None
        if run is None:
            runs = self.ctrl.config.runs
            run = runs[0] if runs else None
        return run.spec if run is not None else None

    def _selection_changed(self, *_) -> None:
        """Offer the selected run's sweepable hyperparameters (lr first)."""
        spec = self._spec()
        names = sweepable(spec) if spec is not None else []
        for combo, extra in ((self.sweep1, []), (self.sweep2, [NO_SECOND])):
            current = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(extra + names)
            if current in names or current in extra:
                combo.setCurrentText(current)
            elif combo is self.sweep2 and len(names) > 1:
                combo.setCurrentText(NO_SECOND)
            combo.blockSignals(False)
        self._sweep_changed(1, compute=False)
        self._sweep_changed(2, compute=False)
        self._changed()

    def _sweep_changed(self, which: int, compute: bool = True) -> None:
        """A newly chosen hyperparameter's range: around the run's value, in its bounds."""
        spec = self._spec()
        combo, lo, hi, log = ((self.sweep1, self.lo1, self.hi1, self.log1) if which == 1
                              else (self.sweep2, self.lo2, self.hi2, self.log2))
        name = combo.currentText()
        on = bool(name) and name != NO_SECOND and spec is not None
        for w in (lo, hi, log):
            w.setEnabled(on)
        if on:
            hyper = spec.spec.hyper(name)
            value = float(spec.resolved()[name])
            if name == "lr" or hyper.lo == 0 and hyper.hi == float("inf"):
                a, b, is_log = value / 10, min(value * 10, hyper.hi), name == "lr"
            else:
                a, b, is_log = max(hyper.lo, 0.0), min(hyper.hi, 0.99), False
            for box in (lo, hi):
                box.blockSignals(True)
            lo.setValue(a)
            hi.setValue(b)
            log.blockSignals(True)
            log.setChecked(is_log)
            log.blockSignals(False)
            for box in (lo, hi):
                box.blockSignals(False)
        if compute:
            self._changed()

    def _mode_changed(self, *_) -> None:
        phase = self.is_phase()
        for w in (*self.sweep_rows, self.color_by):
            self._form.setRowVisible(w, phase)
        self._changed()

    def is_phase(self) -> bool:
        return self.mode.currentText() == PHASE_TEXT

    def request(self) -> MapRequest:
        """The map the settings describe (ValueError if they describe none)."""
        spec = self._spec()
        if spec is None:
            raise ValueError("add a run to map")
        cfg = self.ctrl.config
        surface = self.ctrl.surface
        n = self.size.value()
        if not self.is_phase():
            view = cfg.view if cfg.view is not None else None
            return check_request(MapRequest(surface, spec, steps=self.steps.value(), grid=n,
                                            view=view))
        sweeps = []
        for combo, lo, hi, log in ((self.sweep1, self.lo1, self.hi1, self.log1),
                                   (self.sweep2, self.lo2, self.hi2, self.log2)):
            name = combo.currentText()
            if name and name != NO_SECOND:
                if log.isChecked() and (lo.value() <= 0 or hi.value() <= 0):
                    raise ValueError(f"a log sweep of {name} needs positive bounds")
                if lo.value() == hi.value():
                    raise ValueError(f"the sweep of {name} needs two different bounds")
                sweeps.append(Sweep(name, lo.value(), hi.value(), n, log.isChecked()))
        if not sweeps:
            raise ValueError(f"{spec.name} has no hyperparameter to sweep")
        return check_request(MapRequest(surface, spec, steps=self.steps.value(),
                                        start=tuple(cfg.start), sweeps=tuple(sweeps)))

    # ------------------------------------------------------------------ computing
    def set_active(self, active: bool) -> None:
        """Compute automatically while shown; stop when hidden."""
        self._active = bool(active)
        if active:
            self._changed()
        else:
            self.cancel()

    def _changed(self, *_) -> None:
        """Recompute (debounced) if the map would differ; a click that only moved the start
        of a basin map or the swept values of a phase diagram just moves the mark."""
        if not self._active:
            return
        try:
            key = self._key(self.request())
        except ValueError:
            key = None
        if key is not None and key == self._last_key:
            self._timer.stop()
            self._mark()
            return
        self._timer.start()

    def _key(self, req: MapRequest) -> tuple:
        """What the map depends on: not the start of a basin map, nor the values of the
        swept hyperparameters in the run's spec."""
        spec = req.spec
        for s in req.sweeps:
            if s.name in spec.given:
                spec = spec.without(s.name)
        return (self.ctrl.config.surface_key, str(spec), req.steps, req.grid, req.view,
                req.start if req.sweeps else None, req.sweeps, req.tol)

    def compute(self) -> None:
        """Start a new map (cancelling the one under way)."""
        self._timer.stop()
        try:
            req = self.request()
        except ValueError as exc:
            self.summary.setText(f"Cannot map: {exc}")
            return
        if self._job is not None:
            self._job.cancel.set()
        self._last_key = self._key(req)
        self._generation += 1
        self._job = _Job(self._generation, req, threading.Event())
        self._set_busy(True)
        self.progress.setRange(0, req.cells())
        self.progress.setValue(0)
        self.progress.setFormat(f"coarse {COARSE}²…")
        if not self._thread.isRunning():
            self._thread.start()
        self.requestJob.emit(self._job)

    def cancel(self) -> None:
        self._timer.stop()
        if self._job is not None:
            self._job.cancel.set()

    def is_busy(self) -> bool:
        return self._job is not None

    def _set_busy(self, busy: bool) -> None:
        self.cancel_button.setEnabled(busy)
        self.progress.setVisible(busy)

    def _current(self, generation: int) -> bool:
        return self._job is not None and generation == self._job.generation

    def _on_progress(self, generation: int, done: int, total: int) -> None:
        if self._current(generation):
            self.progress.setRange(0, total)
            self.progress.setValue(done)
            self.progress.setFormat(f"{done:,} / {total:,} runs")

    def _on_result(self, generation: int, res: MapResult, final: bool) -> None:
        if not self._current(generation):
            return
        self.result = res
        self.plot.set_result(res, "steps" if self.color_by.currentIndex() == 1 else "loss")
        self._mark()
        self.summary.setText(self.plot.summary() + ("" if final else " (coarse; refining…)"))
        self.mapShown.emit(res)
        if final:
            self.mapReady.emit(res)

    def _on_finished(self, generation: int, cancelled: bool) -> None:
        if self._current(generation):
            self._job = None
            self._set_busy(False)
            if cancelled:
                self._last_key = None  # the map shown is not that of the settings
                self.summary.setText("Cancelled" + (f": showing the {self.result.shape[1]}-"
                                                    "wide map" if self.result else ""))

    def _on_failed(self, generation: int, message: str) -> None:
        if self._current(generation):
            self._job = None
            self._last_key = None
            self._set_busy(False)
            self.summary.setText(f"Cannot map: {message}")

    def _recolour(self, *_) -> None:
        if self.result is not None and self.result.kind == "phase":
            self.plot.set_result(self.result, "steps" if self.color_by.currentIndex() == 1
                                 else "loss")

    def _mark(self) -> None:
        """Mark the run in the race on the map: its start, or its hyperparameters."""
        res = self.result
        if res is None:
            return
        if res.kind == "basin":
            x, y = self.ctrl.config.start
            self.plot.set_marker(x, y)
            return
        spec = self._spec()
        if spec is None:
            return
        import math

        values = spec.resolved()
        coords = []
        for s in res.request.sweeps:
            v = float(values.get(s.name, float("nan")))
            coords.append(math.log10(v) if s.log and v > 0 else v)
        self.plot.set_marker(coords[0], coords[1] if len(coords) > 1 else 0.0)

    # ------------------------------------------------------------------ clicks
    def apply_cell(self, setting: dict) -> None:
        """Send a clicked cell to the race: its start (basin) or hyperparameters (phase)."""
        if "start" in setting:
            x, y = setting["start"]
            self.ctrl.set_start(float(f"{x:.6g}"), float(f"{y:.6g}"))
            self._status(f"Start moved to ({x:.4g}, {y:.4g}) from the basin map")
            return
        rid = self.ctrl.selected_run
        entry = self.ctrl.config.run(rid) if rid is not None else None
        if entry is None:
            return
        values = {k: float(f"{v:.6g}") for k, v in setting.items()}
        try:
            spec = entry.spec.with_values(**values)
        except ValueError as exc:
            self._status(str(exc))
            return
        self.ctrl.set_run_spec(rid, spec)
        self._status(f"{spec} from the phase diagram")

    def _status(self, text: str) -> None:
        window = self.window()
        bar = getattr(window, "statusBar", None)
        if callable(bar):
            bar().showMessage(text, 5000)

    # ------------------------------------------------------------------ export
    def _ask(self, title: str, name: str, filters: str) -> str | None:
        path, _ = QFileDialog.getSaveFileName(self, title, name, filters)
        return path or None

    def export_csv(self, path: str | None = None) -> bool:
        if self.result is None:
            return False
        path = path or self._ask("Save the map as CSV", "map.csv", "CSV (*.csv)")
        if not path:
            return False
        from engine.export import atomic_write

        try:
            atomic_write(path, map_csv(self.result))
        except OSError as exc:
            self.summary.setText(f"Could not save {path}: {exc}")
            return False
        self._status(f"Saved {path}")
        return True

    def export_png(self, path: str | None = None) -> bool:
        if self.result is None:
            return False
        path = path or self._ask("Save the map as PNG", "map.png", "PNG (*.png)")
        if not path:
            return False
        from engine.export import atomic_write
        from optgui.playground.plots import png_bytes

        try:
            atomic_write(path, png_bytes(self.plot.grab().toImage()))
        except OSError as exc:
            self.summary.setText(f"Could not save {path}: {exc}")
            return False
        self._status(f"Saved {path}")
        return True

    def shutdown(self) -> bool:
        """Cancel the map under way and stop the worker thread (the window calls this when
        it closes); True if the thread ended."""
        self._active = False
        self.cancel()
        if not self._thread.isRunning():
            return True
        self._thread.quit()
        return bool(self._thread.wait(10_000))

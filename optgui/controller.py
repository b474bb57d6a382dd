"""The playground controller: the single owner of configuration, results, step and selection.

Every view (contour, loss plot, panel, transport bar, and later the step inspector, 3-D view
and overlays) subscribes to its signals and calls its methods; views never talk to each
other or to the worker. A new dock only needs::

    ctrl.stepChanged.connect(dock.show_step)            # int: the current step k
    ctrl.selectionChanged.connect(dock.show_run)        # run id (int) or None
    ctrl.trajectoriesChanged.connect(dock.refresh)      # read ctrl.trajectory(run_id)

Signals:

``configChanged(object)``     a new :class:`RunConfig` (surface, start, steps, runs)
``trajectoriesChanged()``     one or more trajectories arrived or were dropped
``stepChanged(int)``          the current step
``selectionChanged(object)``  the selected run id, or None
``playingChanged(bool)``      animation started / stopped
``busyChanged(bool)``         the worker has (no) pending runs
``computed()``                every requested run has arrived (handy for tests and status)
``errorOccurred(str)``        a readable message for the status bar / a dialog
"""

from __future__ import annotations

import time
from dataclasses import replace
from types import MappingProxyType

from PySide6.QtCore import QObject, QTimer, Signal

from engine import RunSpec, Trajectory, get_surface
from optgui.config import MAX_GUI_STEPS, RunConfig, RunEntry
from optgui.worker import RunRequest, RunResult, WorkerThread

DEBOUNCE_MS = 150
MAX_FRAME_RATE = 60


class PlaygroundController(QObject):
    configChanged = Signal(object)
    trajectoriesChanged = Signal()
    stepChanged = Signal(int)
    selectionChanged = Signal(object)
    playingChanged = Signal(bool)
    busyChanged = Signal(bool)
    computed = Signal()
    errorOccurred = Signal(str)

    def __init__(self, config: RunConfig | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._config = config or RunConfig.from_preset()
        self._trajectories: dict[int, Trajectory] = {}
        self._errors: dict[int, str] = {}
        self._step = 0
        self._selected: int | None = self._config.runs[0].run_id if self._config.runs else None
        self._generation = 0
        self._expected: dict[int, int] = {}  # run id -> generation whose result we accept
        self._dirty: set[int] = set()  # runs waiting for the debounce timer
        self._speed = 8.0  # steps per second
        self._frame_budget = 0.0
        self._last_tick = 0.0

        self._workers = WorkerThread(self)
        self._workers.worker.resultsReady.connect(self._on_results)

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self._flush)

        self._player = QTimer(self)
        self._player.timeout.connect(self._tick)
        self._apply_speed()

        self._schedule_all(immediate=True)

    # ------------------------------------------------------------------ read access
    @property
    def config(self) -> RunConfig:
        return self._config

    @property
    def surface(self):
        return get_surface(self._config.surface)

    @property
    def step(self) -> int:
        return self._step

    @property
    def max_step(self) -> int:
        return self._config.steps

    @property
    def selected_run(self) -> int | None:
        return self._selected

    @property
    def trajectories(self) -> MappingProxyType:
        """Run id -> :class:`Trajectory` for every run computed with the current config."""
        return MappingProxyType(self._trajectories)

    def trajectory(self, run_id: int) -> Trajectory | None:
        return self._trajectories.get(run_id)

    def error(self, run_id: int) -> str:
        return self._errors.get(run_id, "")

    def is_busy(self) -> bool:
        return bool(self._expected) or bool(self._dirty)

    def is_playing(self) -> bool:
        return self._player.isActive()

    @property
    def speed(self) -> float:
        return self._speed

    # ------------------------------------------------------------------ configuration
    def set_config(self, config: RunConfig) -> None:
        """Replace everything (a preset, restored settings); every run is recomputed."""
        surface_changed = config.surface != self._config.surface
        self._config = config
        if surface_changed:
            self._trajectories.clear()
            self.trajectoriesChanged.emit()
        ids = {r.run_id for r in config.runs}
        if self._selected not in ids:
            self._select(config.runs[0].run_id if config.runs else None)
        self.configChanged.emit(config)
        self._clamp_step()
        self._schedule_all(immediate=True)

    def set_surface(self, name: str) -> None:
        if name == self._config.surface:
            return
        surface = get_surface(name)
        self._config = replace(self._config, surface=name, start=tuple(surface.start))
        self._trajectories.clear()
        self.trajectoriesChanged.emit()
        self.configChanged.emit(self._config)
        self._schedule_all(immediate=True)

    def set_start(self, x: float, y: float) -> None:
        start = (float(x), float(y))
        if start == self._config.start:
            return
        self._config = replace(self._config, start=start)
        self.configChanged.emit(self._config)
        self._schedule_all()

    def set_steps(self, steps: int) -> None:
        steps = max(0, min(int(steps), MAX_GUI_STEPS))
        if steps == self._config.steps:
            return
        self._config = replace(self._config, steps=steps)
        self.configChanged.emit(self._config)
        self._clamp_step()
        self._schedule_all()

    def add_run(self, spec: RunSpec, color: str | None = None, enabled: bool = True) -> int:
        run_id = self._config.next_id()
        entry = RunEntry(run_id, spec, color or self._config.next_color(), enabled)
        self._config = self._config.with_run(entry)
        self.configChanged.emit(self._config)
        self._select(run_id)
        self._schedule([run_id], immediate=True)
        return run_id

    def remove_run(self, run_id: int) -> None:
        if self._config.run(run_id) is None:
            return
        index = [r.run_id for r in self._config.runs].index(run_id)
        self._config = self._config.without_run(run_id)
        self._trajectories.pop(run_id, None)
        self._errors.pop(run_id, None)
        self._expected.pop(run_id, None)
        self._dirty.discard(run_id)
        self._workers.worker.forget(run_id)
        self.configChanged.emit(self._config)
        self.trajectoriesChanged.emit()
        if self._selected == run_id:
            runs = self._config.runs
            self._select(runs[min(index, len(runs) - 1)].run_id if runs else None)
        self._check_idle()

    def set_run_spec(self, run_id: int, spec: RunSpec) -> None:
        """Change one run's optimizer or hyperparameters; only that run is recomputed."""
        entry = self._config.run(run_id)
        if entry is None or entry.spec == spec and str(entry.spec) == str(spec):
            return
        self._config = self._config.with_run(replace(entry, spec=spec))
        self.configChanged.emit(self._config)
        self._schedule([run_id])

    def set_run_enabled(self, run_id: int, enabled: bool) -> None:
        entry = self._config.run(run_id)
        if entry is None or entry.enabled == enabled:
            return
        self._config = self._config.with_run(replace(entry, enabled=bool(enabled)))
        self.configChanged.emit(self._config)

    def set_run_color(self, run_id: int, color: str) -> None:
        entry = self._config.run(run_id)
        if entry is None or entry.color == color:
            return
        self._config = self._config.with_run(replace(entry, color=color))
        self.configChanged.emit(self._config)

    def select_run(self, run_id: int | None) -> None:
        if run_id is not None and self._config.run(run_id) is None:
            return
        self._select(run_id)

    def _select(self, run_id: int | None) -> None:
        if run_id != self._selected:
            self._selected = run_id
            self.selectionChanged.emit(run_id)

    # ------------------------------------------------------------------ step and playback
    def set_step(self, k: int) -> None:
        k = max(0, min(int(k), self.max_step))
        if k != self._step:
            self._step = k
            self.stepChanged.emit(k)

    def step_by(self, delta: int) -> None:
        self.pause()
        self.set_step(self._step + delta)

    def rewind(self) -> None:
        self.pause()
        self.set_step(0)

    def to_end(self) -> None:
        self.pause()
        self.set_step(self.max_step)

    def play(self) -> None:
        if self.is_playing() or self.max_step == 0:
            return
        if self._step >= self.max_step:
            self.set_step(0)
        self._frame_budget = 0.0
        self._last_tick = 0.0
        self._player.start()
        self.playingChanged.emit(True)

    def pause(self) -> None:
        if self._player.isActive():
            self._player.stop()
            self.playingChanged.emit(False)

    def toggle_play(self) -> None:
        if self.is_playing():
            self.pause()
        else:
            self.play()

    def set_speed(self, steps_per_second: float) -> None:
        self._speed = max(0.1, float(steps_per_second))
        self._apply_speed()

    def _apply_speed(self) -> None:
        # never more than MAX_FRAME_RATE ticks a second; fast speeds advance several steps
        rate = min(self._speed, MAX_FRAME_RATE)
        self._player.setInterval(max(1, round(1000 / rate)))

    def _tick(self) -> None:
        # advance by the time that really passed, so slow frames do not slow the animation
        now = time.monotonic()
        elapsed = min(now - self._last_tick, 0.25) if self._last_tick else 0.0
        self._last_tick = now
        self._frame_budget += self._speed * max(elapsed, self._player.interval() / 1000.0)
        advance = int(self._frame_budget)
        if advance <= 0:
            return
        self._frame_budget -= advance
        self.set_step(self._step + advance)
        if self._step >= self.max_step:
            self.pause()

    def _clamp_step(self) -> None:
        if self._step > self.max_step:
            self.set_step(self.max_step)

    # ------------------------------------------------------------------ computing
    def _schedule_all(self, immediate: bool = False) -> None:
        self._schedule([r.run_id for r in self._config.runs], immediate)

    def _schedule(self, run_ids, immediate: bool = False) -> None:
        was_busy = self.is_busy()
        self._dirty.update(run_ids)
        if not was_busy and self.is_busy():
            self.busyChanged.emit(True)
        if immediate:
            self._debounce.stop()
            self._flush()
        else:
            self._debounce.start()

    def _flush(self) -> None:
        ids = [r.run_id for r in self._config.runs if r.run_id in self._dirty]
        self._dirty.clear()
        if not ids:
            self._check_idle()
            return
        self._generation += 1
        gen = self._generation
        for rid in ids:
            self._expected[rid] = gen
        cfg = self._config
        request = RunRequest(
            generation=gen,
            surface=get_surface(cfg.surface),
            start=cfg.start,
            steps=cfg.steps,
            runs=tuple((rid, cfg.run(rid).spec) for rid in ids),
        )
        self._workers.request(request)

    def _on_results(self, results: tuple[RunResult, ...]) -> None:
        changed = False
        for res in results:
            if self._expected.get(res.run_id) != res.generation:
                continue  # stale: the user changed something since this was requested
            del self._expected[res.run_id]
            if res.trajectory is not None:
                self._trajectories[res.run_id] = res.trajectory
                self._errors.pop(res.run_id, None)
            else:
                self._trajectories.pop(res.run_id, None)
                self._errors[res.run_id] = res.error
                self.errorOccurred.emit(res.error)
            changed = True
        if changed:
            self.trajectoriesChanged.emit()
        self._check_idle()

    def _check_idle(self) -> None:
        if not self.is_busy():
            self.busyChanged.emit(False)
            self.computed.emit()

    # ------------------------------------------------------------------ shutdown
    def shutdown(self) -> bool:
        """Stop playback and the worker thread; True if the thread ended."""
        self._player.stop()
        self._debounce.stop()
        return self._workers.stop()

    @property
    def worker_thread(self):
        return self._workers.thread

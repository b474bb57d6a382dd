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
``expressionRejected(str, str, int)``  a custom expression (text, message, 0-based position
                              or -1) was refused; the previous surface and runs stay
``documentChanged()``         the document (setup, title, notes), its file or saved state changed

Every setup edit is recorded in :attr:`document` (engine.document, Qt-free) and pushed as
one command onto :attr:`undo_stack`; a preset or a lesson loaded with :meth:`load_setup`
is one undo step.

The surface is part of the configuration (a built-in name, a custom expression with its view
box, or linear_regression's data set); :attr:`surface` is the one object built for it.
Custom expressions are compiled by sympy in the worker thread (bounded by the engine, but up
to about a second), so typing never freezes the window.
"""

from __future__ import annotations

import gc
import sys
import time
from dataclasses import replace
from types import MappingProxyType

import numpy as np
from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QUndoStack

from engine import SURFACES, RunSpec, Surface, Trajectory
from engine.document import Document, Edit
from engine.trajectory import MAX_RUNS
from optgui.playground.compute import is_large
from optgui.playground.config import (
    CUSTOM,
    DATA_SURFACE,
    DEFAULT_VIEW,
    MAX_GUI_STEPS,
    RunConfig,
    RunEntry,
    check_data,
    check_view,
    surface_for,
)
from optgui.playground.contours import contours_for
from optgui.playground.undo import EditCommand, Setup
from optgui.playground.worker import RunRequest, RunResult, WorkerThread

DEBOUNCE_MS = 150
MAX_FRAME_RATE = 60
# Frame pacing: a frame (the step, the views' updates and their repaint) may keep the GUI
# thread busy for at most this share of the time between two frames; costlier frames come
# less often (down to MIN_FRAME_RATE), so clicks and keys are served between them. The
# animation's speed does not change: each frame advances by the time that really passed.
MAX_FRAME_SHARE = 0.5
MIN_FRAME_RATE = 10
# Results of a large request (computed run by run in the child process) that arrive within
# this long of each other are drawn together; drawing always waits for a timer: Qt serves
# timers once the queue of posted events is empty, so the window handles what is already
# waiting (input, a repaint) before it redraws for new results.
DELIVERY_MS = 40
PREFETCH_DELAY_MS = 1000  # after start-up, the worker computes every built-in's contours,
PREFETCH_INTERVAL_MS = 100  # one every this long


def load_sympy() -> None:
    """Import sympy (for the first formula) without a garbage collection in the middle.

    The import makes about 100,000 objects that live as long as the app. Imported plainly,
    they set off a full collection: 20-25 ms in which this (worker) thread held the GIL and
    the window waited (with the window's collector, optgui.app.collect_in_gui_thread,
    automatic collection is off anyway). Collections are paused during the import, and its
    objects are then moved out of the collector's sight, as those of start-up are, so no
    later full collection walks them either."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        import engine.surfaces.expression  # noqa: F401 - imports sympy
    finally:
        if enabled:
            gc.enable()
        gc.freeze()


class SurfaceBuilder(QObject):
    """Compiles custom expressions off the GUI thread (it lives in the worker's thread).

    Results carry the request's generation; the controller ignores all but the newest, so a
    slow formula finishing after a faster, later one never replaces it.
    """

    built = Signal(object)  # (generation, text, view, Surface | None, message, position)

    @Slot(object)
    def build(self, job) -> None:
        generation, text, view = job
        if "sympy" not in sys.modules:
            load_sympy()
        try:
            config = RunConfig(CUSTOM, (0.0, 0.0), 0, expression=text, view=view)
            surface = surface_for(config)
            contours_for(surface)  # here, not in the window when it draws the surface
            result = (generation, text, view, surface, "", -1)
        except ValueError as exc:  # ExpressionError included; it knows the position
            result = (generation, text, view, None, str(exc), getattr(exc, "position", -1))
        except Exception as exc:  # noqa: BLE001 - never let a formula kill the worker thread
            result = (generation, text, view, None,
                      f"could not build the surface: {type(exc).__name__}: {exc}", -1)
        self.built.emit(result)

    @Slot(str)
    def prefetch(self, name: str) -> None:
        """Compute the contours of built-in surface ``name`` ahead of the user's switching."""
        if QThread.currentThread().isInterruptionRequested():
            return
        try:
            contours_for(SURFACES[name])
        except Exception:  # noqa: BLE001 - the window computes (and reports) it itself
            pass


def defined_at(surface: Surface, point) -> bool:
    """f and ∇f are finite at ``point`` (log(w1) is not defined for w1 < 0, …)."""
    p = np.asarray(point, dtype=float)
    with np.errstate(all="ignore"):
        return bool(np.isfinite(surface.value(p)) and np.all(np.isfinite(surface.grad(p))))


def _fits(traj: Trajectory, entry: RunEntry | None, config: RunConfig) -> bool:
    """Whether ``traj`` is the run ``entry`` of ``config`` (spec, start and length)."""
    return (entry is not None and str(traj.spec) == str(entry.spec)
            and traj.requested_steps == config.steps
            and tuple(map(float, traj.points[0])) == tuple(map(float, config.start)))


class PlaygroundController(QObject):
    _buildRequested = Signal(object)
    _prefetchRequested = Signal(str)
    configChanged = Signal(object)
    trajectoriesChanged = Signal()
    stepChanged = Signal(int)
    selectionChanged = Signal(object)
    playingChanged = Signal(bool)
    busyChanged = Signal(bool)
    computed = Signal()
    errorOccurred = Signal(str)
    expressionRejected = Signal(str, str, int)
    documentChanged = Signal()

    def __init__(self, config: RunConfig | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._config = config or RunConfig.from_preset()
        self._surface = surface_for(self._config)
        self._expr_generation = 0
        self._expr_pending = False
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
        self._last_cpu = 0.0

        self._workers = WorkerThread(self)
        self._workers.worker.resultsReady.connect(self._on_results)
        self._builder = SurfaceBuilder()  # parentless: it moves to the worker's thread
        self._builder.moveToThread(self._workers.thread)
        self._workers.thread.finished.connect(self._builder.deleteLater)
        self._buildRequested.connect(self._builder.build)
        self._builder.built.connect(self._on_surface_built)
        self._prefetchRequested.connect(self._builder.prefetch)
        # one surface at a time, so the worker never keeps the GIL from the window for long
        self._to_prefetch = list(SURFACES)
        self._prefetch = QTimer(self)
        self._prefetch.setInterval(PREFETCH_INTERVAL_MS)
        self._prefetch.timeout.connect(self._prefetch_next)
        QTimer.singleShot(PREFETCH_DELAY_MS, self, self._prefetch.start)

        self._arrived: list[RunResult] = []
        self._delivery = QTimer(self)
        self._delivery.setSingleShot(True)
        self._delivery.setInterval(DELIVERY_MS)
        self._delivery.timeout.connect(self._deliver)

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self._flush)

        self._player = QTimer(self)
        self._player.timeout.connect(self._tick)
        self._apply_speed()

        self._init_document()
        self._schedule_all(immediate=True)

    # ------------------------------------------------------------------ read access
    @property
    def config(self) -> RunConfig:
        return self._config

    @property
    def surface(self) -> Surface:
        return self._surface

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
        return bool(self._expected) or bool(self._dirty) or self._expr_pending

    def is_playing(self) -> bool:
        return self._player.isActive()

    @property
    def speed(self) -> float:
        return self._speed

    # ------------------------------------------------------------------ configuration
    def set_config(self, config: RunConfig, label: str = "Replace the setup") -> None:
        """Replace everything (restored settings, an undo); every run is recomputed.

        The configuration's surface must be buildable (ValueError otherwise, nothing changed).
        """
        surface = surface_for(config)
        self._cancel_expression()
        surface_changed = surface is not self._surface
        self._config = config
        self._surface = surface
        ids = {r.run_id for r in config.runs}
        stale = {*self._trajectories, *self._expected, *self._errors} - ids
        for rid in stale:  # runs that are gone (an undo, a preset with fewer runs)
            self._forget_run(rid)
        if surface_changed:
            self._trajectories.clear()
        # a kept run id with another optimizer, start or length: its old path must not be
        # shown under the new spec while the new one computes (a lesson that puts momentum
        # where gd was showed gd's path as momentum's for half a second)
        outdated = {rid for rid, traj in self._trajectories.items()
                    if not _fits(traj, config.run(rid), config)}
        for rid in outdated:
            del self._trajectories[rid]
        if surface_changed or stale or outdated:
            self.trajectoriesChanged.emit()
        if self._selected not in ids:
            self._select(config.runs[0].run_id if config.runs else None)
        self.configChanged.emit(config)
        self._clamp_step()
        self._schedule_all(immediate=True)
        self._record(label)

    def set_surface(self, name: str) -> None:
        """Switch to a built-in surface, or to CUSTOM (the last typed expression, or the
        current surface's formula as a starting point, in the current surface's view)."""
        if name == CUSTOM:
            if self._config.surface == CUSTOM:
                return
            cfg, current = self._config, self._surface
            text = cfg.expression.strip() or current.expression or "w1^2 + w2^2"
            view = cfg.view if cfg.expression.strip() and cfg.view else tuple(current.view)
            self.set_expression(text, view)
            return
        if name == self._config.surface:
            return
        config = replace(self._config, surface=name)
        surface = surface_for(config)
        self._cancel_expression()
        self._install(replace(config, start=tuple(surface.start)), surface)
        self._record(f"Surface {name}")

    def set_expression(self, text: str, view=None) -> None:
        """Use the custom surface ``text`` (in ``view``, default: the current custom view).

        Asynchronous: the result arrives as a configChanged (accepted) or an
        expressionRejected (refused; the current surface and runs are kept).
        """
        text = str(text).strip()
        view = tuple(view) if view is not None else (self._config.view or DEFAULT_VIEW)
        self._expr_generation += 1
        if not text:
            self._cancel_expression()
            self.expressionRejected.emit(
                text, "type a formula in w1 and w2 (or x and y), e.g. w1^2 + 3*w2^2", 0)
            return
        try:
            view = check_view(view)
        except ValueError as exc:
            self._cancel_expression()
            self.expressionRejected.emit(text, str(exc), -1)
            return
        cfg = self._config
        if cfg.surface == CUSTOM and cfg.surface_key == (CUSTOM, text, view):
            self._cancel_expression()
            self.configChanged.emit(cfg)  # back to the current formula: views clear errors
            return
        was_busy = self.is_busy()
        self._expr_pending = True
        if not was_busy:
            self.busyChanged.emit(True)
        self._buildRequested.emit((self._expr_generation, text, view))

    def set_view(self, view) -> None:
        """A new view box for the custom surface (ValueError if it is not a valid box)."""
        view = check_view(view)
        if self._config.surface != CUSTOM:
            raise ValueError("only a custom surface has an editable view")
        if tuple(self._config.view or DEFAULT_VIEW) != view:
            self.set_expression(self._config.expression, view)

    def set_data(self, n: int, noise: float, seed: int) -> None:
        """Rebuild linear_regression's data set (ValueError if out of range)."""
        check_data(n, noise, seed)
        data = (int(n), float(noise), int(seed))
        if data == tuple(self._config.data):
            return
        config = replace(self._config, data=data)
        if config.surface != DATA_SURFACE:
            self._config = config
            self.configChanged.emit(config)
        else:
            self._install(config, surface_for(config))
        self._record("Data set", ("data",))

    def _install(self, config: RunConfig, surface: Surface) -> None:
        """Make ``surface`` (built for ``config``) current and recompute every run."""
        if not defined_at(surface, config.start):
            config = replace(config, start=tuple(surface.start))
        self._config = config
        self._surface = surface
        self._trajectories.clear()
        self._errors.clear()
        self.trajectoriesChanged.emit()
        self.configChanged.emit(self._config)
        self._schedule_all(immediate=True)

    def _cancel_expression(self) -> None:
        """Forget any expression being compiled (its result will be ignored)."""
        self._expr_generation += 1
        if self._expr_pending:
            self._expr_pending = False
            self._check_idle()

    def _on_surface_built(self, result) -> None:
        generation, text, view, surface, message, position = result
        if generation != self._expr_generation:
            return  # the user typed on, or chose another surface, meanwhile
        self._expr_pending = False
        if surface is None:
            self.expressionRejected.emit(text, message, int(position))
            self._check_idle()
            return
        was_custom = self._config.surface == CUSTOM
        self._install(
            replace(self._config, surface=CUSTOM, expression=text, view=tuple(view)), surface
        )
        self._record("Formula", ("expression",)) if was_custom else self._record("Surface custom")

    def set_start(self, x: float, y: float) -> None:
        start = (float(x), float(y))
        if start == self._config.start:
            return
        self._config = replace(self._config, start=start)
        self.configChanged.emit(self._config)
        self._schedule_all()
        self._record("Move the start", ("start",))

    def set_steps(self, steps: int) -> None:
        steps = max(0, min(int(steps), MAX_GUI_STEPS))
        if steps == self._config.steps:
            return
        self._config = replace(self._config, steps=steps)
        self.configChanged.emit(self._config)
        self._clamp_step()
        self._schedule_all()
        self._record("Steps", ("steps",))

    def add_run(
        self, spec: RunSpec, color: str | None = None, enabled: bool = True
    ) -> int | None:
        """Add a run and select it; None (and a message) if the window holds MAX_RUNS."""
        if len(self._config.runs) >= MAX_RUNS:
            self.errorOccurred.emit(
                f"At most {MAX_RUNS} runs at once (each records up to {MAX_GUI_STEPS:,} "
                "steps): remove one before adding another")
            return None
        run_id = self._config.next_id()
        entry = RunEntry(run_id, spec, color or self._config.next_color(), enabled)
        self._config = self._config.with_run(entry)
        self.configChanged.emit(self._config)
        self._select(run_id)
        self._schedule([run_id], immediate=True)
        self._record(f"Add {spec}")
        return run_id

    def remove_run(self, run_id: int) -> None:
        if self._config.run(run_id) is None:
            return
        index = [r.run_id for r in self._config.runs].index(run_id)
        self._config = self._config.without_run(run_id)
        self._forget_run(run_id)
        self.configChanged.emit(self._config)
        self.trajectoriesChanged.emit()
        if self._selected == run_id:
            runs = self._config.runs
            self._select(runs[min(index, len(runs) - 1)].run_id if runs else None)
        self._check_idle()
        self._record("Remove a run")

    def _forget_run(self, run_id: int) -> None:
        """Drop a removed run's results, pending work and worker state."""
        self._trajectories.pop(run_id, None)
        self._errors.pop(run_id, None)
        self._expected.pop(run_id, None)
        self._dirty.discard(run_id)
        self._workers.worker.forget(run_id)

    def set_run_spec(self, run_id: int, spec: RunSpec) -> None:
        """Change one run's optimizer or hyperparameters; only that run is recomputed."""
        entry = self._config.run(run_id)
        if entry is None or entry.spec == spec and str(entry.spec) == str(spec):
            return
        self._config = self._config.with_run(replace(entry, spec=spec))
        self.configChanged.emit(self._config)
        self._schedule([run_id])
        self._record(f"Edit {spec}", ("spec", run_id))

    def set_run_enabled(self, run_id: int, enabled: bool) -> None:
        entry = self._config.run(run_id)
        if entry is None or entry.enabled == enabled:
            return
        self._config = self._config.with_run(replace(entry, enabled=bool(enabled)))
        self.configChanged.emit(self._config)
        self._record(f"{'Show' if enabled else 'Hide'} {entry.spec}")

    def set_run_color(self, run_id: int, color: str) -> None:
        entry = self._config.run(run_id)
        if entry is None or entry.color == color:
            return
        self._config = self._config.with_run(replace(entry, color=color))
        self.configChanged.emit(self._config)
        self._record(f"Colour of {entry.spec}")

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
        self._last_tick, self._last_cpu = time.monotonic(), time.thread_time()
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
        self._player.setInterval(self._base_interval())

    def _base_interval(self) -> int:
        return max(1, round(1000 / min(self._speed, MAX_FRAME_RATE)))

    def _pace(self, busy_s: float) -> None:
        """Space frames so that the window's work for one (``busy_s`` of GUI-thread CPU since
        the previous frame) fills at most MAX_FRAME_SHARE of the interval."""
        base = self._base_interval()
        wanted = max(base, min(round(busy_s * 1000 / MAX_FRAME_SHARE), 1000 // MIN_FRAME_RATE))
        current = self._player.interval()
        if wanted > current or wanted < current * 0.8:  # grow at once, shrink with hysteresis
            self._player.setInterval(max(base, round((current + wanted) / 2))
                                     if wanted < current else wanted)

    @property
    def frame_interval_ms(self) -> int:
        """The animation's current time between frames (paced to what a frame costs)."""
        return self._player.interval()

    def _tick(self) -> None:
        # advance by the time that really passed, so slow frames do not slow the animation
        # (since the previous frame, or since Play); then space the next frame by its cost
        now, cpu = time.monotonic(), time.thread_time()
        elapsed = min(now - self._last_tick, 0.25)
        self._pace(cpu - self._last_cpu)
        self._last_tick, self._last_cpu = now, cpu
        self._frame_budget += self._speed * elapsed
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
            surface=self._surface,
            start=cfg.start,
            steps=cfg.steps,
            runs=tuple((rid, cfg.run(rid).spec) for rid in ids),
            surface_key=cfg.surface_key,
        )
        self._workers.request(request)

    def _prefetch_next(self) -> None:
        if not self._to_prefetch:
            self._prefetch.stop()
            return
        self._prefetchRequested.emit(self._to_prefetch.pop(0))

    def _on_results(self, results: tuple[RunResult, ...]) -> None:
        self._arrived.extend(results)
        if not self._delivery.isActive():  # a small request arrives all at once: no wait
            large = is_large(len(self._config.runs), self._config.steps)
            self._delivery.start(DELIVERY_MS if large else 0)

    def _deliver(self) -> None:
        """Take in every result that arrived since the last delivery: one redraw for all."""
        results, self._arrived = self._arrived, []
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

    # ------------------------------------------------------------------ document and undo
    def _init_document(self) -> None:
        self.document = Document(Setup(self._config))
        self.undo_stack = QUndoStack(self)
        self._restoring = False  # applying an undo/redo or a load: record nothing
        self.document.subscribe(lambda edit: self.undo_stack.push(EditCommand(self, edit)))

    @property
    def setup(self) -> Setup:
        return self.document.state

    def _record(self, label: str, key=None) -> None:
        """Record the setup edit just made (merged with the previous one of the same key)."""
        if self._restoring:
            return
        if self.document.change(replace(self.setup, config=self._config), label, key):
            self.documentChanged.emit()

    def load_setup(self, setup: Setup, label: str, path=False) -> None:
        """Replace the whole document (a preset, a lesson, New) as ONE undo step.

        ``path`` (a file, or None for an untitled document) also switches the file. The
        surface is built first, so a ValueError leaves everything as it was.
        """
        surface_for(setup.config)
        self.pause()
        self._restoring = True
        try:
            self.set_config(setup.config)
        finally:
            self._restoring = False
        self.document.change(setup, label, path=path)
        self.documentChanged.emit()

    def set_notes(self, title: str, notes: str) -> None:
        """The lesson's title and Markdown notes (one undo step per edit)."""
        state = replace(self.setup, title=str(title), notes=str(notes))
        if self.document.change(state, "Edit the notes", ("notes",)):
            self.documentChanged.emit()

    def apply_edit(self, edit: Edit, undo: bool) -> None:
        """Undo or redo ``edit`` (the undo stack's commands call this)."""
        (self.document.undo if undo else self.document.redo)(edit)
        config = self.setup.config
        if config != self._config:
            self._restoring = True
            try:
                self.set_config(config)
            finally:
                self._restoring = False
        self.documentChanged.emit()

    def reset_document(self, setup: Setup) -> None:
        """Start a fresh, untitled, unmodified document showing the current configuration
        with ``setup``'s title and notes (the window's first lesson); no undo history."""
        self.document.reset(replace(setup, config=self._config))
        self.undo_stack.clear()
        self.documentChanged.emit()

    def mark_saved(self, path) -> None:
        self.document.mark_saved(path)
        self.documentChanged.emit()

    # ------------------------------------------------------------------ shutdown
    def shutdown(self) -> bool:
        """Stop playback and the worker thread; True if the thread ended."""
        self._player.stop()
        self._debounce.stop()
        return self._workers.stop()

    @property
    def worker_thread(self):
        return self._workers.thread

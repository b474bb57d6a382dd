"""Background computation of trajectories: a parentless QObject living in its own QThread.

The recipe is napari/superqt's: the worker has no parent, is moved to a QThread, and is
deleted when the thread finishes. Requests arrive as queued signal calls carrying an
immutable :class:`RunRequest`; results leave as signals carrying frozen
:class:`RunResult` tuples whose numpy arrays are made read-only, so the GUI thread can keep
them without copying and nobody can mutate them behind its back.

Staleness: every request has a generation number. The controller tells the worker (under a
lock, from the GUI thread) which generation it currently wants for each run; the worker
skips runs whose wanted generation has moved on, and the controller drops any result whose
generation is not the one it expects. Results are batched so that at most ~60 signals a
second cross the thread boundary, however many runs a request holds.

Large requests (more than :data:`~optgui.playground.compute.PROCESS_THRESHOLD` steps in
all) are computed in a child process (:mod:`optgui.playground.compute`): the worker thread
then only waits for it, so the GUI thread never waits for the GIL.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine import RunSpec, Surface, Trajectory
from optgui.playground.compute import ComputeProcess, compute_one, is_large

MIN_EMIT_INTERVAL = 1.0 / 60.0
# While the worker computes it holds the GIL; the GUI thread gets it back only when the
# worker is asked to drop it, after the interpreter's switch interval (5 ms by default). A
# repaint re-acquires the GIL hundreds of times (every Qt call into pyqtgraph's Python paint
# code), so 5 ms waits added up to stalls of seconds. 0.5 ms keeps the window fluid and costs
# the computation a few percent.
GIL_SWITCH_INTERVAL = 0.0005


@dataclass(frozen=True)
class RunRequest:
    generation: int
    surface: Surface
    start: tuple[float, float]
    steps: int
    runs: tuple[tuple[int, RunSpec], ...]
    # what rebuilds the surface in the compute process (RunConfig.surface_key); None: the
    # request is always computed in the worker thread
    surface_key: tuple | None = None


@dataclass(frozen=True)
class RunResult:
    generation: int
    run_id: int
    trajectory: Trajectory | None
    error: str = ""


def freeze(traj: Trajectory) -> Trajectory:
    """Make the trajectory's arrays read-only: it becomes a true immutable snapshot."""
    for name in ("points", "losses", "grads", "used_grads", "updates"):
        getattr(traj, name).setflags(write=False)
    return traj


class TrajectoryWorker(QObject):
    """Computes trajectories on request. Lives in a worker thread; never touches widgets."""

    resultsReady = Signal(object)  # tuple[RunResult, ...]
    requestDone = Signal(int)  # generation

    def __init__(self) -> None:
        super().__init__()  # parentless, so it can be moved to another thread
        self._lock = threading.Lock()
        self._wanted: dict[int, int] = {}
        self._abort = False
        self.process = ComputeProcess()  # large requests: started on the first one

    # -- called from the GUI thread ------------------------------------------------------
    def want(self, generation: int, run_ids) -> None:
        with self._lock:
            for rid in run_ids:
                self._wanted[rid] = generation

    def forget(self, run_id: int) -> None:
        with self._lock:
            self._wanted.pop(run_id, None)

    def abort(self) -> None:
        self._abort = True
        self.process.stop()  # a computation in the child is not waited for

    # -- runs in the worker thread -------------------------------------------------------
    def _still_wanted(self, generation: int, run_id: int) -> bool:
        with self._lock:
            return not self._abort and self._wanted.get(run_id) == generation

    @Slot(object)
    def compute(self, request: RunRequest) -> None:
        batch: list[RunResult] = []
        last_emit = 0.0
        in_child = request.surface_key is not None and is_large(len(request.runs),
                                                                request.steps)
        for run_id, spec in request.runs:
            if not self._still_wanted(request.generation, run_id):
                continue
            answer = None
            if in_child:
                answer = self.process.compute(request.surface_key, spec, request.start,
                                              request.steps)
            if answer is None:  # small, or no child process could be started
                answer = compute_one(request.surface, spec, request.start, request.steps)
            status, value = answer
            if self._abort:
                return
            if status == "ok":
                batch.append(RunResult(request.generation, run_id, freeze(value)))
            else:
                if status == "failed":
                    print(value, file=sys.stderr)
                batch.append(RunResult(request.generation, run_id, None, value))
            now = time.monotonic()
            if now - last_emit >= MIN_EMIT_INTERVAL:
                self.resultsReady.emit(tuple(batch))
                batch, last_emit = [], now
        if batch and not self._abort:
            self.resultsReady.emit(tuple(batch))
        self.requestDone.emit(request.generation)


class WorkerThread(QObject):
    """Owns the QThread and its worker; :meth:`stop` ends both cleanly."""

    submit = Signal(object)  # queued into the worker thread

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thread = QThread()
        self.thread.setObjectName("optgui-trajectories")
        self.worker = TrajectoryWorker()
        self.worker.moveToThread(self.thread)
        self.thread.finished.connect(self.worker.deleteLater)
        self.submit.connect(self.worker.compute)
        if sys.getswitchinterval() > GIL_SWITCH_INTERVAL:
            sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        self.thread.start()

    def request(self, request: RunRequest) -> None:
        self.worker.want(request.generation, [rid for rid, _ in request.runs])
        self.submit.emit(request)

    def stop(self, timeout_ms: int = 10_000) -> bool:
        """Abort pending work and wait for the thread; True if it ended."""
        if not self.thread.isRunning():
            return True
        self.worker.abort()
        self.thread.requestInterruption()  # a prefetch of contours stops between surfaces
        self.thread.quit()
        return bool(self.thread.wait(timeout_ms))

    def is_running(self) -> bool:
        return self.thread.isRunning()

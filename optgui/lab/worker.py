"""The lab's background work, seen from the GUI thread: a child process per job.

Training and downloading run in a child process (:mod:`engine.process`): torch and its
native libraries never load into the window's process, so a crash there ends the child and
the window says so. :class:`ProcessJob` starts one child for one job and turns what the
child streams into Qt signals in the GUI thread:

* **A reader thread** (plain Python, no Qt) blocks on the child's pipe and queues the lists
  of events it receives. It wakes the GUI thread with one queued signal per non-empty
  queue, never one per message.
* **Delivery in slices.** The GUI thread takes at most :data:`MAX_EVENTS_PER_SLICE` events per
  turn of the event loop and comes back for the rest on the next turn, so a backlog (after
  the window was busy, say) never stalls it; the child itself sends ≤ 30 lists a second.
* **Commands** (Pause, Resume, Stop) are messages to the child; the child acknowledges a
  pause with a ``JobPaused`` event when it really is blocked.
* **The end** is always one ``ended(generation, status)`` signal, after every event:
  ``status`` is "" when the child ended normally, else what happened to it in words
  ("was killed (SIGKILL): perhaps the system ran out of memory").
* Every job has a ``generation`` number, carried by its signals, so the tab can drop
  anything a previous job still had in flight.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from engine.process import ChildJob, JobPaused, Pause, Prelude, Resume, Stop, launch

MAX_EVENTS_PER_SLICE = 400  # events handed to the tab per turn of the event loop
STOP_TIMEOUT_MS = 3000  # a stopped child that has not ended by then is terminated
_END = object()


class ProcessJob(QObject):
    """One job (``engine.process.Train`` or ``Download``) in a child process.

    ``events(generation, tuple_of_events)`` in the GUI thread as they arrive;
    ``pausedChanged(generation, paused)`` when the child acknowledges a pause or resume;
    ``ended(generation, status)`` last.
    """

    events = Signal(int, object)
    pausedChanged = Signal(int, bool)
    ended = Signal(int, str)
    _wake = Signal()

    def __init__(self, generation: int, command: Any, prelude: Prelude | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.generation = generation
        self.command = command
        self.prelude = prelude
        self.child: ChildJob | None = None
        self._queue: deque[Any] = deque()
        self._lock = threading.Lock()
        self._wake_pending = False
        self._reader: threading.Thread | None = None
        self._waiting = False
        self._done = False
        self._stop_sent = False
        self._wake.connect(self._drain)

    # -- control (GUI thread) --------------------------------------------------------------
    def start(self, spare: ChildJob | None = None) -> None:
        """Give the job to ``spare`` (a child started ahead, see ``engine.process.spawn``)
        or, without one or if it is gone, to a new child (OSError if none can start)."""
        if spare is not None and spare.start(self.command, self.prelude):
            self.child = spare
        else:
            if spare is not None:
                spare.shutdown(grace=0.0)
            self.child = launch(self.command, self.prelude)
        self._reader = threading.Thread(target=self._read, name="optgui-job-reader",
                                        daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int | None:
        return self.child.pid if self.child is not None else None

    def pause(self) -> None:
        self._send(Pause())

    def resume(self) -> None:
        self._send(Resume())

    def stop(self) -> None:
        """Ask the job to end; a child that does not end in time is terminated."""
        if self._stop_sent or self._done:
            return
        self._stop_sent = True
        self._send(Stop())
        QTimer.singleShot(STOP_TIMEOUT_MS, self._terminate_if_alive)

    def is_waiting(self) -> bool:
        """True while the child has acknowledged a pause (the job is blocked)."""
        return self._waiting

    def is_running(self) -> bool:
        """True until ``ended`` has been emitted."""
        return self.child is not None and not self._done

    def shutdown(self, timeout_ms: int = 1000) -> bool:
        """End the child now (Stop, then SIGTERM, then SIGKILL) and wait for it; the window
        is closing. True once the process is gone."""
        if self.child is None:
            return True
        self._stop_sent = True
        self.child.shutdown(grace=max(0.0, timeout_ms / 1000.0 - 0.4))
        if self._reader is not None:
            self._reader.join(1.0)
        self._drain_all()
        return not self.child.is_alive()

    def _send(self, command: Any) -> None:
        if self.child is not None and not self._done:
            self.child.send(command)

    @Slot()
    def _terminate_if_alive(self) -> None:
        if self.child is not None and self.child.is_alive():
            self.child.proc.terminate()

    # -- the reader thread -----------------------------------------------------------------
    def _read(self) -> None:
        assert self.child is not None
        for batch in self.child.batches():
            self._put(batch)
        self._put([_END])

    def _put(self, items: list) -> None:
        with self._lock:
            self._queue.extend(items)
            wake = not self._wake_pending
            self._wake_pending = True
        if wake:
            self._wake.emit()  # queued to the GUI thread

    # -- delivery (GUI thread) -------------------------------------------------------------
    @Slot()
    def _drain(self) -> None:
        with self._lock:
            n = min(len(self._queue), MAX_EVENTS_PER_SLICE)
            items = [self._queue.popleft() for _ in range(n)]
            more = bool(self._queue)
            self._wake_pending = more
        if more:
            QTimer.singleShot(0, self._drain)
        self._deliver(items)

    def _drain_all(self) -> None:
        with self._lock:
            items = list(self._queue)
            self._queue.clear()
        self._deliver(items)

    def _deliver(self, items: list) -> None:
        end = False
        events = []
        for item in items:
            if item is _END:
                end = True
                continue
            events.append(item)
            if isinstance(item, JobPaused):
                self._waiting = item.paused
        if events and not self._done:
            self.events.emit(self.generation, tuple(events))
            for ev in events:
                if isinstance(ev, JobPaused):
                    self.pausedChanged.emit(self.generation, ev.paused)
        if end and not self._done:
            self._done = True
            self._waiting = False
            assert self.child is not None
            self.child.wait()
            self.child.close()
            status = "" if self._stop_sent and self.child.proc.returncode == -15 \
                and not self.child.ended_cleanly else self.child.exit_status()
            self.ended.emit(self.generation, status)

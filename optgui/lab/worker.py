"""The lab's background work: training and downloading, each in its own QThread.

The recipe is superqt's generator worker: a parentless QObject moved to a QThread; its
``run`` slot advances an ``engine`` iterator, checks the abort and pause flags between
events, and emits what the iterator yielded. Why this shape:

* **Batched emits.** With a tiny data set the training iterator yields thousands of events a
  second; one signal each would flood the GUI's event queue. Events are collected and sent
  as a tuple at most every :data:`EMIT_INTERVAL` seconds (the last batch always goes out),
  so the window receives ≤ ~30 signals a second whatever the speed of training.
* **Stop within a second.** ``engine.training.train`` checks ``should_stop`` before every
  batch round and between evaluations; the worker passes its abort flag, so a Stop is seen
  after at most one batch round of every optimizer.
* **Pause** is the worker's business (the engine stays a plain iterator): between two events
  it waits on a condition that Resume or Stop wakes, without burning CPU.
* **Errors become a signal** carrying a readable one-line message (a missing or corrupt file
  names the file; an out-of-memory error says what to try); the thread then ends normally.
* Every run has a ``generation`` number, carried by its signals, so the tab can drop
  anything a previous run still had in flight.

torch is imported only inside :meth:`TrainingWorker.run` (through ``engine.training.train``),
i.e. in the worker thread when the user presses Start, never at app start-up.
"""

from __future__ import annotations

import threading
import time
import traceback
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from engine.data import DataError

EMIT_INTERVAL = 1.0 / 30.0  # seconds between event batches (≤ 30 signals a second)
PROGRESS_INTERVAL = 0.1  # seconds between download progress signals


def training_error_message(exc: BaseException) -> str:
    """One readable line (plus advice) for an exception raised while training."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, DataError):
        return f"Data problem: {text}"
    if isinstance(exc, MemoryError) or "out of memory" in text.lower():
        return (f"Training ran out of memory ({text}). Try a smaller batch size, a narrower "
                f"or shallower network, fewer optimizers, or a training subset.")
    if isinstance(exc, ValueError):
        return f"Invalid setting: {text}"
    return f"Training failed: {type(exc).__name__}: {text}"


class TrainingWorker(QObject):
    """Runs one training (``engine.training.train``) in a worker thread.

    Signals carry the generation number first: ``events(gen, tuple_of_events)``,
    ``failed(gen, message)``, ``finished(gen)`` (always the last signal, after success,
    stop or failure).
    """

    events = Signal(int, object)
    pausedChanged = Signal(int, bool)  # the worker really is (no longer) waiting
    failed = Signal(int, str)
    finished = Signal(int)

    def __init__(self, generation: int, config: Any, data: Any = None) -> None:
        super().__init__()  # parentless, so it can be moved to another thread
        self.generation = generation
        self.config = config
        self.data = data
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._paused = False
        self._waiting = False

    # -- called from the GUI thread ------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def pause(self) -> None:
        with self._cond:
            self._paused = True

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def is_paused(self) -> bool:
        return self._paused

    def is_waiting(self) -> bool:
        """True while the worker is blocked in a pause (the generator is not advanced)."""
        return self._waiting

    def stop_requested(self) -> bool:
        return self._stop.is_set()

    # -- runs in the worker thread -------------------------------------------------------
    def _wait_while_paused(self) -> None:
        with self._cond:
            if not self._paused or self._stop.is_set():
                return
            self._waiting = True
        self.pausedChanged.emit(self.generation, True)
        with self._cond:
            while self._paused and not self._stop.is_set():
                self._cond.wait(0.25)
            self._waiting = False
        self.pausedChanged.emit(self.generation, False)

    @Slot()
    def run(self) -> None:
        gen = self.generation
        pending: list[Any] = []
        events = None
        try:
            from engine.training import Finished, train

            events = train(self.config, self.data, should_stop=self._stop.is_set)
            last_emit = time.monotonic()
            for event in events:
                pending.append(event)
                now = time.monotonic()
                if isinstance(event, Finished) or now - last_emit >= EMIT_INTERVAL:
                    self.events.emit(gen, tuple(pending))
                    pending, last_emit = [], now
                if self._paused:
                    if pending:
                        self.events.emit(gen, tuple(pending))
                        pending = []
                    self._wait_while_paused()
                    last_emit = time.monotonic()
            if pending:
                self.events.emit(gen, tuple(pending))
        except Exception as exc:  # noqa: BLE001 - any failure becomes a message, not a crash
            if not isinstance(exc, (ValueError, MemoryError, DataError)):
                traceback.print_exc()  # a bug, not a user error: keep the trace for reports
            if pending:
                self.events.emit(gen, tuple(pending))
            self.failed.emit(gen, training_error_message(exc))
        finally:
            if events is not None:
                events.close()  # restores torch's thread count if the run set it
            self.finished.emit(gen)


class DownloadWorker(QObject):
    """Downloads Fashion-MNIST (``engine.data.download_fashion_mnist``) in a worker thread.

    ``progress(done_bytes, total_bytes, file_name)`` at most every 0.1 s; then either
    ``succeeded(folder_text)`` or ``failed(message)``; ``finished()`` last.
    """

    progress = Signal(int, int, str)
    succeeded = Signal(str)
    failed = Signal(str)
    finished = Signal()

    def __init__(self, root: str | None = None) -> None:
        super().__init__()
        self.root = root
        self._stop = threading.Event()
        self._last = 0.0

    def stop(self) -> None:
        self._stop.set()

    def _progress(self, done: int, total: int, name: str) -> None:
        now = time.monotonic()
        if now - self._last >= PROGRESS_INTERVAL or (total and done >= total):
            self._last = now
            self.progress.emit(int(done), int(total), name)

    @Slot()
    def run(self) -> None:
        from engine import data as D

        try:
            location = D.download_fashion_mnist(self.root, self._progress, self._stop.is_set)
            self.succeeded.emit(location.describe())
        except D.DownloadCancelled:
            self.failed.emit("Download cancelled; nothing was kept.")
        except D.DataError as exc:
            self.failed.emit(f"Download failed: {exc}")
        except Exception as exc:  # noqa: BLE001 - e.g. torchvision missing, disk full
            self.failed.emit(f"Download failed: {type(exc).__name__}: {exc}")
        finally:
            self.finished.emit()


class WorkerHandle(QObject):
    """Owns a QThread and the parentless worker moved into it (the standard recipe).

    ``worker.finished -> thread.quit``, ``thread.finished -> worker.deleteLater``. The
    handle keeps Python references to both until the thread has ended, and :meth:`shutdown`
    asks the worker to stop and waits for the thread, so closing the window never leaves
    a QThread running.
    """

    def __init__(self, worker: QObject, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker = worker
        self.thread = QThread()
        self.thread.setObjectName(name)
        worker.moveToThread(self.thread)
        self.thread.started.connect(worker.run)
        # direct: quit() is thread-safe, and a queued call would never run while the GUI
        # thread is blocked in shutdown()'s wait()
        worker.finished.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)
        self.thread.finished.connect(worker.deleteLater)

    def start(self) -> None:
        self.thread.start()

    def is_running(self) -> bool:
        return self.thread.isRunning()

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Stop the worker and wait for its thread; True if it has ended."""
        if not self.thread.isRunning():
            return True
        self.worker.stop()
        if hasattr(self.worker, "resume"):
            self.worker.resume()
        return bool(self.thread.wait(timeout_ms))

"""Engine jobs in a child process: typed commands in, plain events out.

The lab's training (and the Fashion-MNIST download, which needs torchvision) runs here, in a
separate Python process, so that torch and its native libraries (triton, LLVM, CUDA) never
load into the window's process: a crash there (a segfault, the out-of-memory killer) ends
the child, never the window, and torch's C initialisation never holds the window's GIL.

    job = launch(Train(config))          # a child process starts the job
    job.send(Pause()); job.send(Resume())
    for events in job.batches():         # lists of events, until the child ends
        ...
    job.exit_status()                    # "" after a clean end, else what happened

The parent (the window) runs :func:`launch` and reads with :meth:`ChildJob.batches` in a
thread of its own; ``python -m engine.process FD`` is the child (:func:`serve`). Neither
side imports Qt, and the parent side imports no torch: everything that crosses the pipe is
a plain frozen dataclass of numbers, strings and tuples (the training events of
:mod:`engine.training` and the ones below), pickled by ``multiprocessing.connection``.

The protocol
------------
* Parent → child, first message: a :class:`Launch` holding one *job command* (:class:`Train`
  or :class:`Download`) and an optional :class:`Prelude` (a function the child calls before
  the job; tests use it to inject failures into the child). A *spare* child
  (:func:`spawn`) may get a :class:`Warm` first and prepare (import torch, load the data)
  while it waits for its Launch: the lab keeps one ready, so Start trains at once.
* Then any number of *control commands*: :class:`Pause`, :class:`Resume`, :class:`Stop`.
  Any other command that arrives while a job runs is a *request* for that job: it is queued
  in :attr:`Control.inbox`, and the job answers it with events when it next looks
  (:meth:`Control.take`).
* Child → parent: lists of events (at most every :data:`EMIT_INTERVAL` seconds, so even a
  tiny data set that yields thousands of events a second sends ≤ 30 messages a second; a
  list is sent at once when an event in :data:`URGENT` is due). The job's own events, plus
  :class:`JobPaused` (the job really is blocked in a pause, or no longer), :class:`JobFailed`
  (a readable one-line message) and :class:`JobEnded`, always the last event of a child that
  ended normally. A child that ends without :class:`JobEnded` died: :meth:`ChildJob.exit_status`
  names the exit signal ("was killed (SIGKILL)").
* The child ends its job when the parent goes away (the pipe closes), and asks the kernel
  to kill it if the parent dies (Linux), so no training is ever left behind.

Adding an event or a job (e.g. sharpness per epoch, loss-landscape rows on demand)
------------------------------------------------------------------------------------
1. **A new event** is a ``@dataclass(frozen=True, slots=True)`` with a ``kind: ClassVar[str]``,
   holding only numbers, strings, tuples (or numpy arrays, which pickle without torch), in
   a module the window can import without torch. Yield it from the job's generator
   (e.g. from :func:`engine.training.train`); it reaches the window as it is. The lab tab
   dispatches events by type (``optgui/lab/tab.py``, ``_on_events``): add a branch there.
2. **A request answered during a job** (e.g. "compute the landscape along this direction"):
   a frozen dataclass sent with :meth:`ChildJob.send`. The child queues it in
   ``control.inbox``; the job generator calls ``control.take(MyRequest)`` between batches
   and yields the answer events (streamed in rows: one event per row keeps every message
   small).
3. **A new job**: a command dataclass and a generator function ``run(command, control)``
   registered with ``@job(Command)``; it yields events and checks ``control.stop_requested``
   (and lets the server handle pauses between events).
"""

from __future__ import annotations

import faulthandler
import importlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, ClassVar

EMIT_INTERVAL = 1.0 / 30.0  # seconds between event lists (≤ 30 messages a second)
STOP_GRACE = 0.5  # seconds a stopped child gets to end by itself before it is terminated


# ----------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class Prelude:
    """``module.function(*args)`` called in the child before its job (``path`` is put on
    ``sys.path`` first). For tests, to change the child as ``monkeypatch`` would."""

    module: str
    function: str
    args: tuple = ()
    path: str | None = None


@dataclass(frozen=True)
class Train:
    """Job: ``engine.training.train(config)`` (the data is loaded in the child)."""

    config: Any  # engine.training.TrainConfig


@dataclass(frozen=True)
class Download:
    """Job: ``engine.training.data.download_fashion_mnist(root)`` with progress events."""

    root: str | None = None


@dataclass(frozen=True)
class Warm:
    """Sent to a spare child before its job is known: import torch and the training code,
    create one optimizer (torch's first one imports ``torch._dynamo``, seconds of work) and
    load the data of ``data_dir`` (cached; ``load_data`` False: the parent found none), so
    that a later :class:`Launch` starts at once."""

    data_dir: str | None = None
    load_data: bool = True


@dataclass(frozen=True)
class Launch:
    """The first message to a child: its job, and what to call before it."""

    job: Any
    prelude: Prelude | None = None


@dataclass(frozen=True)
class Pause:
    """Block the job between two events (it stays in memory and resumes where it was)."""


@dataclass(frozen=True)
class Resume:
    """Go on after a :class:`Pause`."""


@dataclass(frozen=True)
class Stop:
    """End the job soon (training stops before its next batch round); the child then exits."""


CONTROLS = (Pause, Resume, Stop)


# ----------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class JobPaused:
    """The job is (no longer) blocked in a pause: sent when the pause really takes effect."""

    kind: ClassVar[str] = "paused"
    paused: bool


@dataclass(frozen=True, slots=True)
class JobFailed:
    """The job raised: ``message`` is one readable line (plus advice), ``category`` one of
    "data", "memory", "setting", "cancelled", "error"."""

    kind: ClassVar[str] = "failed"
    message: str
    category: str = "error"


@dataclass(frozen=True, slots=True)
class DownloadProgress:
    kind: ClassVar[str] = "download-progress"
    done: int
    total: int
    name: str


@dataclass(frozen=True, slots=True)
class DownloadDone:
    kind: ClassVar[str] = "download-done"
    where: str  # the data's location, described for people


@dataclass(frozen=True, slots=True)
class JobEnded:
    """The last event of a child that ended normally (after success, stop or failure)."""

    kind: ClassVar[str] = "ended"


# events sent at once instead of waiting for the next list (kinds)
URGENT = frozenset({"started", "done", "diverged", "paused", "failed", "download-done",
                    "ended"})


# ----------------------------------------------------------------------------- messages


def error_message(exc: BaseException) -> JobFailed:
    """A readable one-line :class:`JobFailed` for an exception raised by a job."""
    from engine.training.data import DataError, DownloadCancelled

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, DownloadCancelled):
        return JobFailed("Download cancelled; nothing was kept.", "cancelled")
    if isinstance(exc, DataError):
        return JobFailed(f"Data problem: {text}", "data")
    if isinstance(exc, MemoryError) or "out of memory" in text.lower():
        return JobFailed(f"Training ran out of memory ({text}). Try a smaller batch size, a "
                         f"narrower or shallower network, fewer optimizers, or a training "
                         f"subset.", "memory")
    if isinstance(exc, ValueError):
        return JobFailed(f"Invalid setting: {text}", "setting")
    return JobFailed(f"Training failed: {type(exc).__name__}: {text}", "error")


SIGNAL_NAMES = {
    signal.SIGKILL: "was killed (SIGKILL): perhaps the system ran out of memory",
    signal.SIGSEGV: "crashed (SIGSEGV, a segmentation fault in native code)",
    signal.SIGABRT: "was aborted (SIGABRT)",
    signal.SIGBUS: "crashed (SIGBUS)",
    signal.SIGFPE: "crashed (SIGFPE)",
    signal.SIGILL: "crashed (SIGILL)",
    signal.SIGTERM: "was terminated (SIGTERM)",
}


def describe_exit(returncode: int | None) -> str:
    """What happened to a child, to follow "The training process": ``"was killed (SIGKILL):
    …"``, ``"crashed (SIGSEGV, …)"``."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            sig = signal.Signals(-returncode)
        except ValueError:
            return f"was ended by signal {-returncode}"
        return SIGNAL_NAMES.get(sig, f"was ended by {sig.name}")
    return f"ended unexpectedly (exit code {returncode})"


# ----------------------------------------------------------------------------- child side


@dataclass
class Control:
    """What a running job sees of the parent's commands (set by the child's reader thread)."""

    stop: threading.Event = field(default_factory=threading.Event)
    resumed: threading.Event = field(default_factory=threading.Event)
    inbox: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.resumed.set()

    def stop_requested(self) -> bool:
        return self.stop.is_set()

    @property
    def paused(self) -> bool:
        return not self.resumed.is_set()

    def take(self, kind: type) -> list:
        """Remove and return the queued requests of type ``kind`` (oldest first)."""
        with self.lock:
            mine = [r for r in self.inbox if isinstance(r, kind)]
            self.inbox[:] = [r for r in self.inbox if not isinstance(r, kind)]
        return mine

    def handle(self, command: Any) -> None:
        if isinstance(command, Stop):
            self.stop.set()
            self.resumed.set()
        elif isinstance(command, Pause):
            self.resumed.clear()
        elif isinstance(command, Resume):
            self.resumed.set()
        else:
            with self.lock:
                self.inbox.append(command)


JOBS: dict[type, Callable[[Any, Control], Iterator[Any]]] = {}


def job(command_type: type):
    """Register a generator function ``run(command, control)`` as the job for a command."""

    def register(fn):
        JOBS[command_type] = fn
        return fn

    return register


@job(Train)
def _train(command: Train, control: Control) -> Iterator[Any]:
    from engine.training import train

    events = train(command.config, should_stop=control.stop_requested)
    try:
        yield from events
    finally:
        events.close()


@job(Download)
def _download(command: Download, control: Control) -> Iterator[Any]:
    """The download calls back with progress; a thread turns the callbacks into events."""
    from engine.training import data as D

    progress: list[DownloadProgress] = []
    outcome: list[Any] = []
    last = [0.0]

    def report(done: int, total: int, name: str) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.1 or (total and done >= total):
            last[0] = now
            progress.append(DownloadProgress(int(done), int(total), name))

    def run() -> None:
        try:
            where = D.download_fashion_mnist(command.root, report, control.stop_requested)
            outcome.append(DownloadDone(where.describe()))
        except BaseException as exc:  # noqa: BLE001 - handed to the job below
            outcome.append(exc)

    worker = threading.Thread(target=run, name="optgui-download", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.05)
        while progress:
            yield progress.pop(0)
    while progress:
        yield progress.pop(0)
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    yield outcome[0]


def _warm_up(warm: Warm) -> None:
    """What the first training would spend its first seconds on, done ahead (best effort:
    any failure here is met again, and reported, by the job itself)."""
    try:
        import torch

        from engine.training import data as D
        from engine.training import loop  # noqa: F401

        weight = torch.zeros(2, requires_grad=True)
        weight.sum().backward()
        torch.optim.Adam([weight]).step()  # imports torch._dynamo once
        if warm.load_data:
            D.load_fashion_mnist(warm.data_dir)  # kept in the data module's cache
    except Exception:  # noqa: BLE001, S110 - the job reports its own errors
        pass


def _die_with_parent() -> None:
    """Linux: ask the kernel to SIGKILL this process when its parent dies (best effort)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class _Sender:
    """Sends events as lists: at once if urgent or EMIT_INTERVAL has passed since the last
    list, else within EMIT_INTERVAL from a flusher thread (so a crash right after an event
    loses at most EMIT_INTERVAL's worth of what was computed, not a whole backlog)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.pending: list[Any] = []
        self.last = time.monotonic()
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._flusher, name="optgui-flusher", daemon=True).start()

    def add(self, event: Any) -> None:
        with self.lock:
            self.pending.append(event)
            due = time.monotonic() - self.last >= EMIT_INTERVAL
            if due or getattr(event, "kind", "") in URGENT:
                self._flush()

    def flush(self) -> None:
        with self.lock:
            self._flush()

    def close(self) -> None:
        with self.lock:
            self._flush()
            self.closed = True

    def _flush(self) -> None:
        if self.pending and not self.closed:
            self.conn.send(self.pending)
            self.pending = []
        self.last = time.monotonic()

    def _flusher(self) -> None:
        while not self.closed:
            time.sleep(EMIT_INTERVAL / 2)
            with self.lock:
                if self.pending and time.monotonic() - self.last >= EMIT_INTERVAL:
                    try:
                        self._flush()
                    except OSError:
                        return  # the parent went away; the main thread will notice


def serve(conn: Connection, parent_pid: int | None = None) -> None:
    """The child's main loop: receive a :class:`Launch`, run its job, stream its events."""
    control = Control()
    launch_msg = conn.recv()
    warming = None
    while isinstance(launch_msg, Warm):
        warming = threading.Thread(target=_warm_up, args=(launch_msg,), name="optgui-warm-up",
                                   daemon=True)
        warming.start()
        launch_msg = conn.recv()

    def read_commands() -> None:
        while True:
            try:
                command = conn.recv()
            except (EOFError, OSError):
                control.handle(Stop())  # the parent went away: end the job
                return
            control.handle(command)

    threading.Thread(target=read_commands, name="optgui-commands", daemon=True).start()
    sender = _Sender(conn)
    if warming is not None:
        warming.join()  # the job would redo (not share) a data load in progress
    try:
        if launch_msg.prelude is not None:
            p = launch_msg.prelude
            if p.path and p.path not in sys.path:
                sys.path.insert(0, p.path)
            getattr(importlib.import_module(p.module), p.function)(*p.args)
        run = JOBS[type(launch_msg.job)]
        events = run(launch_msg.job, control)
        try:
            for event in events:
                sender.add(event)
                if control.paused and not control.stop_requested():
                    sender.add(JobPaused(True))
                    while not control.resumed.wait(0.25):
                        if parent_pid is not None and os.getppid() != parent_pid:
                            control.handle(Stop())
                    sender.add(JobPaused(False))
        finally:
            events.close()
    except Exception as exc:  # noqa: BLE001 - any failure becomes a message, not a crash
        failed = error_message(exc)
        if failed.category == "error":
            traceback.print_exc()  # a bug, not a user error: keep the trace for reports
        sender.add(failed)
    sender.add(JobEnded())
    sender.close()


def main(argv: list[str] | None = None) -> None:
    """``python -m engine.process FD PARENT_PID``: serve one job on the socket ``FD``."""
    args = sys.argv[1:] if argv is None else argv
    fd, parent_pid = int(args[0]), int(args[1])
    os.set_inheritable(fd, False)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C in a terminal is the parent's
    _die_with_parent()
    if os.getppid() != parent_pid:
        os._exit(0)  # the parent died before we could ask to die with it
    faulthandler.enable()  # a native crash prints where it happened on stderr
    conn = Connection(fd)
    code = 0
    try:
        serve(conn, parent_pid)
    except (EOFError, OSError, BrokenPipeError):
        code = 0  # the parent went away; nothing to report to
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
        code = 1
    finally:
        try:
            conn.close()
        except OSError:
            pass
        sys.stdout.flush()
        sys.stderr.flush()
        # no interpreter teardown: torch's can take a second, and nothing is left to save
        os._exit(code)


# ----------------------------------------------------------------------------- parent side


def project_root() -> Path:
    """The folder holding the ``engine`` package (put on the child's ``sys.path``)."""
    return Path(__file__).resolve().parent.parent


class ChildJob:
    """One child process running one job (the parent's handle). Qt-free.

    :meth:`batches` yields the lists of events until the child ends; call it from one
    thread only (the lab reads in a thread of its own). :meth:`send` and :meth:`shutdown`
    may be called from any thread.
    """

    def __init__(self, proc: subprocess.Popen, conn: Connection) -> None:
        self.proc = proc
        self.conn = conn
        self.pid = proc.pid
        self.ended_cleanly = False
        self._send_lock = threading.Lock()

    def start(self, command: Any, prelude: Prelude | None = None) -> bool:
        """Give this (spare) child its job; False if it is gone."""
        if type(command) not in JOBS:
            raise ValueError(f"no job for {type(command).__name__}")
        return self.is_alive() and self.send(Launch(command, prelude))

    def send(self, command: Any) -> bool:
        """Send a command; False if the child is gone already."""
        with self._send_lock:
            try:
                self.conn.send(command)
                return True
            except (OSError, ValueError):
                return False

    def batches(self) -> Iterator[list[Any]]:
        """Lists of events as the child sends them; ends when the child has exited."""
        while True:
            try:
                batch = self.conn.recv()
            except (EOFError, OSError):
                break
            if any(isinstance(e, JobEnded) for e in batch):
                self.ended_cleanly = True
            yield batch
        self.wait()

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def is_alive(self) -> bool:
        return self.proc.poll() is None

    def exit_status(self) -> str:
        """"" after a normal end, else the exit described in words."""
        rc = self.proc.poll()
        if rc is None:
            return "still running"
        if self.ended_cleanly and rc == 0:
            return ""
        return describe_exit(rc)

    def shutdown(self, grace: float = STOP_GRACE) -> int:
        """Stop the job and make sure the process is gone: Stop, then SIGTERM, then SIGKILL.

        Returns the exit code. Waits at most ``grace`` + 0.3 s (+ SIGKILL's reaping)."""
        if self.proc.poll() is None:
            self.send(Stop())
            if self.wait(grace) is None:
                self.proc.terminate()
                if self.wait(0.3) is None:
                    self.proc.kill()
        rc = self.proc.wait()
        self.close()
        return rc

    def close(self) -> None:
        try:
            self.conn.close()
        except OSError:
            pass


def spawn(warm: Warm | None = None) -> ChildJob:
    """Start a child process that waits for its job (:meth:`ChildJob.start`); with ``warm``,
    it prepares for a training meanwhile (a spare: the lab keeps one while it is shown)."""
    ours, theirs = socket.socketpair()
    env = dict(os.environ)
    root = str(project_root())
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine.process", str(theirs.fileno()), str(os.getpid())],
            pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL, close_fds=True,
        )
    finally:
        theirs.close()
    child = ChildJob(proc, Connection(ours.detach()))
    if warm is not None:
        child.send(warm)
    return child


def launch(command: Any, prelude: Prelude | None = None) -> ChildJob:
    """Start a child process running the job ``command`` (:class:`Train`, :class:`Download`,
    or any command registered with :func:`job`)."""
    if type(command) not in JOBS:
        raise ValueError(f"no job for {type(command).__name__}")
    child = spawn()
    if not child.start(command, prelude):
        child.shutdown()
        raise OSError("the training process could not be started")
    return child


if __name__ == "__main__":
    # run the module's own copy, so pickled events name engine.process, not __main__
    from engine.process import main as _main

    _main()

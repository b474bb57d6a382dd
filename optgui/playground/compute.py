"""Long trajectories computed in a child process, so the window keeps the GIL to itself.

A thread computing 8 × 10,000 steps of pure-Python update rules holds the GIL almost all
the time; the GUI thread then waits for it at every call into Qt and the window stalls for
seconds. Large requests therefore go to one child process (``spawn``, started on the first
large request and kept for the next ones); the worker thread only sends a job and waits for
its answer, which releases the GIL. Small requests (the course's 4 × 30 steps) stay in the
worker thread: starting a process would cost more than they do.

Qt-free: the child imports this module, the engine and :mod:`optgui.playground.config`
(to rebuild the surface from its key; custom surfaces cannot be pickled), nothing else.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import operator
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from engine import RunSpec, Trajectory, run_trajectory

# A request with more steps than this in total (runs × steps) is computed in the child.
PROCESS_THRESHOLD = 20_000
STOP_TIMEOUT_S = 1.0
# The child runs at this niceness (Unix): when it and the window want the same core, the
# window gets it. On 2 cores, the window's own threads (GUI, the worker reading results)
# and the child at full speed otherwise took turns, and a repaint took 13-30 ms.
CHILD_NICENESS = 10


def compute_one(surface, spec: RunSpec, start, steps: int) -> tuple[str, Any]:
    """("ok", trajectory), ("error", message) for a ValueError (a surface undefined at the
    start, …), or ("failed", message) for a bug in an update rule."""
    try:
        return "ok", run_trajectory(surface, spec, start, steps)
    except ValueError as exc:
        return "error", str(exc)
    except Exception as exc:  # noqa: BLE001 - reported to the window, never kills the child
        return "failed", f"{spec} failed: {type(exc).__name__}: {exc}"


def pack(values) -> tuple:
    """A sequence of equal-shaped arrays, or of dataclasses of one type whose fields pack
    that way too, as a few stacked arrays: unpickling 10,000 optimizer states one object at a
    time is a single C call that holds the GIL for 100+ ms; stacked columns take
    microseconds, and :func:`unpack` rebuilds an object only when it is read."""
    values = list(values)
    first = values[0] if values else None
    if isinstance(first, np.ndarray) and all(
        type(v) is np.ndarray and v.shape == first.shape and v.dtype == first.dtype
        for v in values
    ):
        return "array", np.stack(values)
    if isinstance(first, tuple) and hasattr(first, "_fields") and all(
        type(v) is type(first) for v in values
    ):  # the optimizers' states are NamedTuples
        return "namedtuple", type(first), [
            pack([v[i] for v in values]) for i in range(len(first._fields))
        ], len(values)
    if (dataclasses.is_dataclass(first) and not isinstance(first, type)
            and hasattr(first, "__dict__") and all(type(v) is type(first) for v in values)):
        names = [f.name for f in dataclasses.fields(first)]
        if all(set(vars(v)) == set(names) for v in values):
            return "dataclass", type(first), {
                name: pack([getattr(v, name) for v in values]) for name in names
            }
    return "list", values


def _item(packed: tuple, i: int):
    """Element ``i`` of what :func:`pack` was given, rebuilt from its columns."""
    kind = packed[0]
    if kind in ("array", "list"):
        return packed[1][i]
    if kind == "namedtuple":
        return packed[1](*(_item(column, i) for column in packed[2]))
    obj = object.__new__(packed[1])  # a dataclass, as pickle rebuilds it: no __init__ again
    for name, column in packed[2].items():
        object.__setattr__(obj, name, _item(column, i))
    return obj


def _length(packed: tuple) -> int:
    kind = packed[0]
    if kind in ("array", "list"):
        return len(packed[1])
    if kind == "namedtuple":
        return packed[3]
    return _length(next(iter(packed[2].values()))) if packed[2] else 0


def _freeze_columns(packed: tuple) -> None:
    kind = packed[0]
    if kind == "array":
        packed[1].setflags(write=False)
    elif kind == "namedtuple":
        for column in packed[2]:
            _freeze_columns(column)
    elif kind == "dataclass":
        for column in packed[2].values():
            _freeze_columns(column)


class Unpacked(Sequence):
    """The sequence :func:`pack` was given, rebuilt one element at a time when it is read.

    Rebuilding 10,000 optimizer states in a Python loop as each result arrived competed with
    the GUI thread for the GIL (the window stalled 40-70 ms with 1-4 ms of its own work);
    the window reads a handful of states (the inspector's step, the overlays' arrows), so
    each is built when asked for. Read-only: the columns are frozen, and every element is a
    fresh object over views of them."""

    __slots__ = ("_packed", "_n")

    def __init__(self, packed: tuple) -> None:
        _freeze_columns(packed)
        self._packed = packed
        self._n = _length(packed)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index):
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(self._n)))
        i = operator.index(index)
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError("index out of range")
        return _item(self._packed, i)

    def __repr__(self) -> str:
        return repr(tuple(self))

    def __reduce__(self):  # pickles as the plain tuple it stands for
        return tuple, (tuple(self),)


def unpack(packed: tuple) -> Unpacked:
    """The sequence :func:`pack` was given (its elements are rebuilt when read)."""
    return Unpacked(packed)


def to_wire(answer: tuple[str, Any]) -> tuple[str, Any]:
    """compute_one's answer, with a trajectory's states and batches packed."""
    status, value = answer
    if status != "ok":
        return answer
    bare = dataclasses.replace(value, states=(), batches=())
    return "packed", (bare, pack(value.states), pack(value.batches) if value.batches else None)


def from_wire(answer: tuple[str, Any]) -> tuple[str, Any]:
    status, value = answer
    if status != "packed":
        return answer
    bare, states, batches = value
    return "ok", dataclasses.replace(
        bare, states=unpack(states), batches=unpack(batches) if batches else ()
    )


def _serve(conn) -> None:
    """The child's loop: (surface key, spec, start, steps) in, compute_one's answer out."""
    from optgui.playground.config import _surface_for_key

    if hasattr(os, "nice"):
        try:
            os.nice(CHILD_NICENESS)
        except OSError:  # not allowed here: computed at the window's priority
            pass

    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        key, spec, start, steps = job
        try:
            surface = _surface_for_key(key)
        except Exception as exc:  # noqa: BLE001
            conn.send(("error", f"could not build the surface: {exc}"))
            continue
        conn.send(to_wire(compute_one(surface, spec, start, steps)))


class ComputeProcess:
    """One child process that computes trajectories on request (thread-safe, lazy)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc = None
        self._conn = None
        self.started = 0  # how many child processes were started (tests, diagnostics)
        self.unavailable = ""  # why no child could be started ("" while none failed)

    def _ensure(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            return
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_serve, args=(child,), name="optgui-compute", daemon=True)
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent
        self.started += 1

    def compute(self, key: tuple, spec: RunSpec, start, steps: int) -> tuple[str, Any] | None:
        """Run one trajectory in the child; blocks (without the GIL) until it is done.

        None if no child process can be started (:attr:`unavailable` says why)."""
        with self._lock:
            if self.unavailable:
                return None
            try:
                self._ensure()
            except Exception as exc:  # noqa: BLE001 - no process (limits, an unguarded
                # __main__ under spawn, …): the caller computes in its own thread instead
                self.unavailable = f"{type(exc).__name__}: {exc}".splitlines()[0]
                self._proc, self._conn = None, None
                return None
            try:
                self._conn.send((key, spec, tuple(start), int(steps)))
                answer = self._conn.recv()
            except (EOFError, OSError, BrokenPipeError) as exc:
                code = self._proc.exitcode if self._proc is not None else None
                self._drop()
                return "error", (f"the computation process ended unexpectedly "
                                 f"(exit code {code}): {exc or 'no answer'}")
        return from_wire(answer)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.is_alive() else None

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._proc, self._conn = None, None

    def stop(self) -> None:
        """End the child (politely, then by force); safe to call from any thread, any time.

        A computation in progress is not waited for: the child is terminated."""
        proc, conn = self._proc, self._conn
        if proc is None:
            return
        if proc.is_alive():
            proc.terminate()
        proc.join(STOP_TIMEOUT_S)
        if proc.is_alive():
            proc.kill()
            proc.join(STOP_TIMEOUT_S)
        if conn is not None:
            conn.close()
        self._proc, self._conn = None, None


def is_large(runs: int, steps: int) -> bool:
    return runs * max(1, steps) > PROCESS_THRESHOLD


__all__ = ["ComputeProcess", "PROCESS_THRESHOLD", "Trajectory", "compute_one", "is_large"]

"""Writers for the files the app exports, all written atomically and none destructive.

A regular file (or a new one) is written to a temporary ``.part`` file in the target's
folder and renamed over the target only when complete, so a failed or killed write never
leaves a partial file in place. Around that:

* ``~`` is expanded; a symbolic link is written *through* (its target is replaced, the link
  stays); a character device or a FIFO (``/dev/null``, ``/dev/stdout``, a shell's
  ``>(...)``) is written to directly, never replaced by a regular file; a folder, block
  device or socket is refused.
* A new file gets the permissions the umask allows (0644 under umask 022), like any file a
  program creates; an existing file keeps its permissions.
* Temporary files are named ``.<name>.optgui-<pid>-<random>.part``; one left behind by a
  killed process is removed by the next write to the same path.
* Every error is an ``OSError`` whose message names the user's path, never the temporary
  (``cannot write /data/out.csv: No space left on device``).
* :func:`atomic_write_many` and :class:`AtomicBatch` write several files all or nothing (a
  full disk leaves none of them changed), refusing two that are the same file.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PART_SUFFIX = ".part"
_TAG = "optgui"
# a .part of the older mkstemp naming (.name.XXXXXXXX.part) is only removed when this old,
# since its writer's process cannot be known
_LEGACY_PART_AGE = 3600.0

_active: set[Path] = set()  # temporaries being written by this process
_active_lock = threading.Lock()


def _reason(exc: BaseException) -> str:
    if getattr(exc, "reason", None):  # one of ours: its reason without the path it named
        return exc.reason
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def write_error(path, exc: BaseException | str) -> OSError:
    """An ``OSError`` saying ``cannot write <path>: <reason>``, keeping ``errno``."""
    reason = exc if isinstance(exc, str) else _reason(exc)
    err = OSError(f"cannot write {os.fspath(path)}: {reason}")
    err.reason = reason  # type: ignore[attr-defined]
    if isinstance(exc, OSError):
        err.errno = exc.errno
    return err


@dataclass(frozen=True)
class Target:
    """Where writing ``given`` lands: ``path`` (``~`` expanded, symlinks followed) and
    whether it is written directly (a device or FIFO) rather than replaced atomically."""

    given: str
    path: Path
    direct: bool


def resolve_target(path: str | os.PathLike) -> Target:
    """Check ``path`` for writing without touching anything; ``OSError`` if it cannot be.

    Refuses an empty name, an unknown ``~user``, a missing folder, a folder, a block device,
    a socket and a symlink loop.
    """
    given = os.fspath(path)
    if not isinstance(given, str):
        given = os.fsdecode(given)
    if not given.strip():
        raise OSError("no file name given (the path is empty)")
    expanded = os.path.expanduser(given)
    if expanded.startswith("~"):
        user = expanded[1:].split(os.sep, 1)[0]
        raise write_error(given, f"there is no user {user!r} for '~{user}'")
    if expanded.endswith(os.sep) or os.path.basename(expanded) in ("", ".", ".."):
        raise write_error(given, "this names a folder; give a file name")
    try:
        st = os.stat(expanded)  # follows symlinks
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise write_error(given, exc) from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        if stat.S_ISDIR(st.st_mode):
            raise write_error(given, "it is a folder; give a file name")
        if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
            return Target(given, Path(expanded), True)
        kind = "block device" if stat.S_ISBLK(st.st_mode) else "special file"
        raise write_error(given, f"it is a {kind}; refusing to write over it")
    real = Path(os.path.realpath(expanded))
    if real.is_symlink():
        raise write_error(given, "too many levels of symbolic links")
    folder = real.parent
    if not folder.is_dir():
        raise write_error(given, f"folder {folder} does not exist")
    return Target(given, real, False)


def same_target(a: Target, b: Target) -> bool:
    """Whether two targets name one file (through links, ``..`` or hard links)."""
    if a.path == b.path:
        return True
    with contextlib.suppress(OSError):
        return os.path.samefile(a.path, b.path)
    return False


def check_distinct(targets: Sequence[tuple[str, Target]]) -> None:
    """``OSError`` if two of the (label, target) pairs are the same file."""
    for i, (label_a, a) in enumerate(targets):
        for label_b, b in targets[i + 1:]:
            if same_target(a, b):
                where = a.given if a.given == b.given else f"{a.given} and {b.given}"
                raise OSError(f"{label_a} and {label_b} name the same file ({where}); "
                              f"give each output its own file")


# ----------------------------------------------------------------------------- temporaries

_PART = re.compile(rf"^\.(?P<name>.+)\.{_TAG}-(?P<pid>[0-9]+)-[0-9a-f]+{re.escape(PART_SUFFIX)}$")
_LEGACY = re.compile(rf"^\.(?P<name>.+)\.[a-z0-9_]{{8}}{re.escape(PART_SUFFIX)}$")


def _alive(pid: int) -> bool:
    if pid == os.getpid() or sys.platform == "win32":  # (os.kill(pid, 0) is Ctrl+C there)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process: it exists
        return True
    return True


def remove_stale_parts(target: Path) -> list[Path]:
    """Remove temporaries of ours for ``target`` left behind by a process that is gone
    (killed mid-write); returns what was removed. Never raises."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    with _active_lock:
        active = set(_active)
    now = time.time()
    for entry in entries:
        m = _PART.match(entry.name)
        if m and m.group("name") == target.name:
            stale = (int(m.group("pid")) != os.getpid() and not _alive(int(m.group("pid")))) \
                or (int(m.group("pid")) == os.getpid() and Path(entry.path) not in active)
        else:
            m = _LEGACY.match(entry.name)
            if not (m and m.group("name") == target.name):
                continue
            try:
                stale = now - entry.stat(follow_symlinks=False).st_mtime > _LEGACY_PART_AGE
            except OSError:
                continue
        if stale and entry.is_file(follow_symlinks=False):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def remove_partial_files() -> None:
    """Delete every temporary this process is writing (for a SIGTERM handler)."""
    with _active_lock:
        paths = list(_active)
    for p in paths:
        with contextlib.suppress(OSError):
            p.unlink()


def _new_part(target: Path) -> tuple[Path, int]:
    """Create and open an empty temporary next to ``target`` (mode 0666 minus the umask)."""
    for _ in range(100):
        tmp = target.with_name(
            f".{target.name}.{_TAG}-{os.getpid()}-{secrets.token_hex(4)}{PART_SUFFIX}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o666)
        except FileExistsError:
            continue
        with _active_lock:
            _active.add(tmp)
        return tmp, fd
    raise FileExistsError(f"no free temporary name next to {target}")


def _forget(tmp: Path, *, unlink: bool) -> None:
    if unlink:
        with contextlib.suppress(OSError):
            tmp.unlink()
    with _active_lock:
        _active.discard(tmp)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _keep_mode(fd: int, target: Path) -> None:
    """An existing file keeps its permission bits (a new one has the umask's)."""
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        return
    with contextlib.suppress(OSError, AttributeError):
        os.fchmod(fd, mode)


def _prepare(target: Target, data: bytes) -> Path:
    """Write ``data`` to a complete, synced temporary for ``target``; return its path."""
    remove_stale_parts(target.path)
    try:
        tmp, fd = _new_part(target.path)
    except OSError as exc:
        raise write_error(target.given, exc) from None
    try:
        try:
            _write_all(fd, data)
            _keep_mode(fd, target.path)
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException as exc:
        _forget(tmp, unlink=True)
        if isinstance(exc, OSError):
            raise write_error(target.given, exc) from None
        raise
    return tmp


def _write_direct(target: Target, data: bytes) -> None:
    try:
        fd = os.open(target.path, os.O_WRONLY | getattr(os, "O_BINARY", 0))
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
    except OSError as exc:
        raise write_error(target.given, exc) from None


def _as_bytes(data: str | bytes) -> bytes:
    return data if isinstance(data, bytes) else data.encode("utf-8")


class AtomicBatch:
    """Several files written all or nothing: each is prepared as a complete temporary, and
    only when all are ready are they renamed into place. Use it as a context manager: a
    normal exit commits, an exception discards every temporary.

    A full disk or a bad path therefore leaves every target as it was. (The renames
    themselves cannot fail for lack of space; devices and pipes are written directly, at
    commit, after every temporary is complete.)
    """

    def __init__(self) -> None:
        self._items: list[tuple[str, Target, Path | None, bytes]] = []

    def _target(self, path, label: str | None) -> Target:
        target = resolve_target(path)
        check_distinct([(lbl, t) for lbl, t, _, _ in self._items]
                       + [(label or target.given, target)])
        return target

    def add(self, path: str | os.PathLike, data: str | bytes, label: str | None = None) -> None:
        """Prepare ``data`` (text is UTF-8) for ``path``; ``label`` names it in errors."""
        target = self._target(path, label)
        payload = _as_bytes(data)
        tmp = None if target.direct else _prepare(target, payload)
        self._items.append((label or target.given, target, tmp, payload))

    @contextlib.contextmanager
    def path(self, path: str | os.PathLike, label: str | None = None) -> Iterator[Path]:
        """A temporary file for ``path`` for a writer that needs a file name; it joins the
        batch once the block ends without an exception. Devices and pipes are refused."""
        target = self._target(path, label)
        if target.direct:
            raise write_error(target.given, "it is a device or pipe; only regular files can "
                                            "be written this way")
        tmp = _prepare(target, b"")
        try:
            yield tmp
        except OSError as exc:  # about the temporary: name the user's file instead
            _forget(tmp, unlink=True)
            raise write_error(target.given, exc) from None
        except BaseException:
            _forget(tmp, unlink=True)
            raise
        self._items.append((label or target.given, target, tmp, b""))

    def commit(self) -> None:
        for _, target, tmp, payload in self._items:
            if tmp is None:
                _write_direct(target, payload)
        for _, target, tmp, _ in self._items:
            if tmp is not None:
                try:
                    os.replace(tmp, target.path)
                except OSError as exc:
                    raise write_error(target.given, exc) from None
                _forget(tmp, unlink=False)
        self._items.clear()

    def discard(self) -> None:
        for _, _, tmp, _ in self._items:
            if tmp is not None:
                _forget(tmp, unlink=True)
        self._items.clear()

    def __enter__(self) -> AtomicBatch:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        try:
            if kind is None:
                self.commit()
        finally:
            self.discard()  # whatever was not committed


def atomic_write_many(items: Sequence[tuple[str | os.PathLike, str | bytes]],
                      labels: Sequence[str] | None = None) -> None:
    """Write several files all or nothing (see :class:`AtomicBatch`); text is UTF-8.

    Every path is checked first, including that no two of them are the same file;
    ``labels`` (e.g. option names) name the files in that error.
    """
    targets = [resolve_target(path) for path, _ in items]
    labels = list(labels) if labels is not None else [t.given for t in targets]
    check_distinct(list(zip(labels, targets, strict=True)))
    with AtomicBatch() as batch:
        for (path, data), label in zip(items, labels, strict=True):
            batch.add(path, data, label)


def atomic_write(path: str | os.PathLike, data: str | bytes) -> None:
    """Write text (UTF-8) or bytes to ``path`` atomically (see the module doc)."""
    atomic_write_many([(path, data)])


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path``.

    For writers that need a file name (they write the yielded path themselves). A device
    or FIFO target is refused here, since only a complete file can be renamed over it.
    Raises ``OSError`` naming ``path`` if it cannot be written.
    """
    target = resolve_target(path)
    if target.direct:
        raise write_error(target.given, "it is a device or pipe; only regular files can be "
                                        "written this way")
    tmp = _prepare(target, b"")
    try:
        yield tmp
        try:
            os.replace(tmp, target.path)
        except OSError as exc:
            raise write_error(target.given, exc) from None
        _forget(tmp, unlink=False)
    except BaseException:
        _forget(tmp, unlink=True)
        raise


CSV_COLUMNS = ("run", "optimizer", "surface", "step", "w1", "w2", "loss", "grad1", "grad2",
               "diverged", "evals", "lr", "clipped")


def _num(x: float) -> str:
    return repr(float(x))


def trajectories_csv(trajectories) -> str:
    """One row per run and recorded step (step 0 is the start), full float precision.

    ``diverged`` is 1 on the last recorded row of a run that diverged at the next step,
    0 everywhere else. ``evals`` is the number of surface evaluations the step used (its
    line-search trials included; 0 on step 0), ``lr`` the learning rate it ran with (its
    schedule's η_k; empty on step 0 and for rules without one) and ``clipped`` 1 where
    clip_norm/clip_value changed its gradient. Rows never hold NaN or inf.
    """
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for run, traj in enumerate(trajectories, start=1):
        last = traj.steps
        for k in range(last + 1):
            w, g = traj.points[k], traj.grads[k]
            diverged = int(traj.diverged and k == last)
            lr = traj.lrs[k] if k < len(traj.lrs) else np.nan
            writer.writerow([run, str(traj.spec), traj.surface, k, _num(w[0]), _num(w[1]),
                             _num(traj.losses[k]), _num(g[0]), _num(g[1]), diverged,
                             int(traj.evals[k]) if k < len(traj.evals) else "",
                             _num(lr) if np.isfinite(lr) else "",
                             int(traj.clipped[k]) if k < len(traj.clipped) else 0])
    return buf.getvalue()

"""Writers for the files the app exports, all written atomically.

A failed write leaves nothing behind: data goes to a temporary file in the target's folder
and is renamed over the target only when complete.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path``.

    Raises ``OSError`` with a readable message if the folder is missing or not writable.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise OSError(f"cannot write {target}: folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def atomic_write(path: str | os.PathLike, data: str | bytes) -> None:
    """Write text (UTF-8) or bytes to ``path`` atomically."""
    with atomic_path(path) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8", newline="")


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

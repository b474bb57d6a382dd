"""Helpers shared by the GUI test modules (the fixtures themselves live in conftest.py).

A plain module rather than a test module, so the GUI tests import these instead of
importing each other.
"""

from __future__ import annotations

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# ../shared/COURSE.md, section 2: W after iterations 1 and 2
COURSE_TABLE = {
    "gd": [(-4.6, 1.2), (-4.232, -0.72)],
    "momentum": [(-4.7, 0.4), (-4.268, 1.12)],
    "rmsprop": [(-4.0513215, -1.0513168), (-3.4351975, -0.5915234)],
    "adam": [(-4.8, -1.8), (-4.6002548, -1.6008245)],
}


def wait_idle(qtbot, window, runs: int | None = None) -> None:
    """Wait until the worker is idle and every run (or ``runs`` of them) has a trajectory."""
    ctrl = window.ctrl
    want = len(ctrl.config.runs) if runs is None else runs
    qtbot.waitUntil(lambda: not ctrl.is_busy() and len(ctrl.trajectories) == want
                    and not window.loss.pending, timeout=10000)


def run_id(window, name: str) -> int:
    """The id of the first run whose rule is ``name``."""
    return next(r.run_id for r in window.ctrl.config.runs if r.spec.name == name)


def select(window, name: str) -> int:
    """Select the run of rule ``name`` in the run list, as a click would; returns its id."""
    rid = run_id(window, name)
    row = [r.run_id for r in window.ctrl.config.runs].index(rid)
    window.panel.run_list.list.setCurrentRow(row)
    assert window.ctrl.selected_run == rid
    return rid

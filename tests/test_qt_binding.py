"""The Qt binding must not leak references to None through virtual-method overrides.

PySide6 6.12.0 drops a reference to None each time C++ calls a Python override (every
pyqtgraph ``paint``/``itemChange``); on Python 3.11 that aborts the process after a few
thousand repaints. pyproject.toml excludes it; this test catches any binding that regresses.
"""

import sys

import pytest

pytest.importorskip("PySide6")


def test_virtual_overrides_keep_none_alive(qapp):
    from PySide6.QtWidgets import QGraphicsRectItem

    class Probe(QGraphicsRectItem):
        def itemChange(self, change, value):  # noqa: N802 - Qt's name
            return super().itemChange(change, value)

    probe = Probe()
    probe.setVisible(False)
    calls = 2000
    before = sys.getrefcount(None)
    for i in range(calls):
        probe.setVisible(i % 2 == 0)
    lost = before - sys.getrefcount(None)
    assert lost < calls // 10, f"{lost} references to None lost in {calls} virtual calls"

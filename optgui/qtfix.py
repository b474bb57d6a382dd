"""Work around a PySide6 6.12 reference-counting bug that crashes Qt apps on Python 3.11.

In PySide6 6.12.0, a call from C++ into many Python overrides of virtual methods (every
``paint``, ``resizeEvent``, ``itemChange``, … that pyqtgraph and our widgets define) drops
a reference to ``None`` (or ``True``) that it never took. On Python 3.11, where ``None`` is
an ordinary reference-counted object, the count reaches zero after a few thousand repaints and the
interpreter aborts with "Fatal Python error: none_dealloc: deallocating None" — within
seconds of playing an animation, or in the middle of a test run.

Python 3.12 made ``None`` immortal, which makes the stray decrements harmless. :func:`install`
gives Python 3.11 the same property: it first *measures* whether the running binding has the
bug (so it does nothing on a fixed PySide6 or a newer Python), then raises the reference
counts of ``None``, ``True`` and ``False`` by 2**40, which at ten thousand stray decrements a
second lasts for years. These singletons are never deallocated in a healthy process anyway,
so nothing else changes.
"""

from __future__ import annotations

import ctypes
import sys

IMMORTAL_BOOST = 1 << 40
# None and True are the objects the binding over-releases (measured: the return values of
# overridden void and bool virtuals); False rides along for symmetry.
IMMORTALIZED = (None, True, False)
_installed = False
_active = False


def _stray_decrefs_per_dispatch() -> int:
    """How many references to None one C++→Python virtual dispatch loses (0 if healthy)."""
    from PySide6.QtWidgets import QGraphicsRectItem

    class Probe(QGraphicsRectItem):
        def itemChange(self, change, value):  # noqa: N802 (Qt API)
            return super().itemChange(change, value)

    probe = Probe()
    probe.setVisible(False)
    before = sys.getrefcount(None)
    for i in range(20):
        probe.setVisible(i % 2 == 0)
    after = sys.getrefcount(None)
    return max(0, round((before - after) / 20))


def install() -> bool:
    """Apply the work-around if this Python and PySide6 need it; True if it is active.

    Idempotent; cheap. Called when :mod:`optgui.plots` is imported and when the app starts.
    """
    global _installed, _active
    if _installed:
        return _active
    _installed = True
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    if _stray_decrefs_per_dispatch() == 0:
        return False
    for singleton in IMMORTALIZED:
        refcnt = ctypes.c_ssize_t.from_address(id(singleton))  # ob_refcnt is the first field
        refcnt.value += IMMORTAL_BOOST
    _active = True
    return True


def active() -> bool:
    return _active

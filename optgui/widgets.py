"""Small reusable widgets: a number spin box that speaks the spec language, colour swatches."""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Iterator

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap, QValidator
from PySide6.QtWidgets import QDoubleSpinBox, QSpinBox

from engine.optimizers import format_value

_PARTIAL = re.compile(r"^[+-]?(\d+\.?\d*|\.\d*)?([eE][+-]?\d*)?$")
_FULL = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
FINITE_LIMIT = 1e12


@contextlib.contextmanager
def blocked(*objects) -> Iterator[None]:
    """Block the objects' signals while syncing them from the model.

    (Not ``QSignalBlocker`` as a context manager: in PySide6 6.12 its ``__exit__`` drops a
    reference to ``None`` on every use, which eventually aborts the interpreter.)
    """
    previous = [obj.blockSignals(True) for obj in objects]
    try:
        yield
    finally:
        for obj, was in zip(objects, previous, strict=True):
            obj.blockSignals(was)


class NumberSpinBox(QDoubleSpinBox):
    """A QDoubleSpinBox that shows values the way spec strings write them (0.2, 1e-06 → 1e-6)
    and steps by the leading significant digit, so one arrow click changes lr=0.4 to 0.5 and
    eps=1e-8 to 2e-8 instead of being stuck at a fixed decimal step."""

    outOfRange = Signal(str)  # typed text: a number outside the allowed range

    def __init__(
        self,
        parent=None,
        lo: float = -math.inf,
        hi: float = math.inf,
        valid: Callable[[float], bool] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setDecimals(300)  # no rounding: the value is exactly what was typed
        self.setRange(max(lo, -FINITE_LIMIT), min(hi, FINITE_LIMIT))
        self.setKeyboardTracking(False)  # re-run on Enter / focus out, not on every keystroke
        self.setAccelerated(True)
        self._valid = valid

    def textFromValue(self, value: float) -> str:  # noqa: N802 (Qt API)
        return format_value(float(value))

    def valueFromText(self, text: str) -> float:  # noqa: N802
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        t = text.strip()
        if _FULL.match(t):
            # a complete number outside the range is not accepted (Qt would silently clamp
            # lr=1e9 to the maximum); fixup() then reports it and restores the last value
            if not self._inside(float(t)):
                return QValidator.State.Intermediate, text, pos
            return QValidator.State.Acceptable, text, pos
        if _PARTIAL.match(t):
            return QValidator.State.Intermediate, text, pos
        return QValidator.State.Invalid, text, pos

    def fixup(self, text: str) -> str:
        t = text.strip()
        if _FULL.match(t) and not self._inside(float(t)):
            self.outOfRange.emit(t)
        return self.textFromValue(self.value())

    def stepBy(self, steps: int) -> None:  # noqa: N802
        v = self.value()
        mag = 10.0 ** math.floor(math.log10(abs(v))) if v != 0 else 0.1
        for _ in range(6):  # shrink the step until the result stays in range (β → 1⁻)
            new = float(f"{v + steps * mag:.12g}")
            if self._inside(new) and new != v:
                self.setValue(new)
                return
            mag /= 10.0

    def _inside(self, x: float) -> bool:
        if not self.minimum() <= x <= self.maximum():
            return False
        valid = getattr(self, "_valid", None)  # validate() runs inside __init__ already
        return valid(x) if valid else True


class IntSpinBox(QSpinBox):
    """A QSpinBox that says so when a typed number is out of range.

    Qt refuses the keystroke that would leave the range, so typing 1000000 into a box whose
    maximum is 100000 silently leaves 100000 (and 200000 leaves 20000). Here a whole number
    outside the range is kept while typing; on Enter or focus out ``outOfRange`` carries
    the typed number and the last valid value is restored.
    """

    outOfRange = Signal(str)  # typed text: a whole number outside the allowed range

    def _typed(self, text: str) -> str:
        t = text
        if self.prefix() and t.startswith(self.prefix()):
            t = t[len(self.prefix()):]
        if self.suffix() and t.endswith(self.suffix()):
            t = t[: -len(self.suffix())]
        return t.strip().replace(",", "").replace("_", "").replace(" ", "")

    def _outside(self, text: str) -> bool:
        t = self._typed(text)
        return re.fullmatch(r"[+-]?[0-9]+", t) is not None and not (
            self.minimum() <= int(t) <= self.maximum())

    def validate(self, text: str, pos: int):
        if self._outside(text):
            return QValidator.State.Intermediate, text, pos
        return super().validate(text, pos)

    def fixup(self, text: str) -> str:
        if self._outside(text):
            self.outOfRange.emit(self._typed(text))
        return self.textFromValue(self.value())


def swatch_icon(color: str, size: int = 14, enabled: bool = True) -> QIcon:
    """A rounded square filled with ``color`` (dimmed when the run is disabled)."""
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pix)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    c = QColor(color)
    if not enabled:
        c.setAlpha(90)
    painter.setBrush(c)
    painter.setPen(QColor(255, 255, 255, 120))
    painter.drawRoundedRect(1, 1, size - 2, size - 2, 3, 3)
    painter.end()
    return QIcon(pix)

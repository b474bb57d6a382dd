"""Transport bar: rewind, step back, play/pause, step forward, end, timeline, speed, counter.

The buttons are views of the window's QActions (which own the keyboard shortcuts), so a
button, a menu entry and a key press all do exactly the same thing. In a narrow window the
bar drops its "Speed" label and the word "step" from the counter (the tooltips still say
what they are) rather than squeezing its parts over each other.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QToolButton,
    QWidget,
)

from optgui.playground.controller import PlaygroundController
from optgui.widgets import blocked

SLIDER_MIN_WIDTH = 80


def _least_width(widget: QWidget) -> int:
    """The width a box layout gives the widget at the least: its size hint unless its size
    policy lets it shrink, and never below its own minimum width."""
    policy = widget.sizePolicy().horizontalPolicy()
    shrinks = policy.value & QSizePolicy.PolicyFlag.ShrinkFlag.value
    hint = widget.minimumSizeHint() if shrinks else widget.sizeHint()
    return max(hint.width(), widget.minimumWidth())


class TransportBar(QWidget):
    def __init__(self, ctrl: PlaygroundController, actions: dict, parent=None) -> None:
        super().__init__(parent)
        self.ctrl = ctrl
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 2, 8, 4)
        layout.setSpacing(4)
        self.buttons: dict[str, QToolButton] = {}
        for key in ("rewind", "step_back", "play", "step_forward", "end"):
            button = QToolButton()
            button.setDefaultAction(actions[key])
            button.setAutoRaise(True)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys keep going to the window
            layout.addWidget(button)
            self.buttons[key] = button

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setToolTip("Timeline: drag to scrub through the steps")
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Left/Right stay transport keys
        self.slider.valueChanged.connect(self._scrubbed)
        self.slider.setMinimumWidth(SLIDER_MIN_WIDTH)  # never squeezed out of sight
        layout.addWidget(self.slider, 1)

        self.counter = QLabel()
        self.counter.setObjectName("stepCounter")
        self.counter.setToolTip("Current step / number of steps")
        self.counter.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.counter)

        self.speed = QSpinBox()
        self.speed.setRange(1, 2000)
        self.speed.setSuffix(" steps/s")
        self.speed.setToolTip("Animation speed while playing")
        self.speed.setValue(round(ctrl.speed))
        self.speed.valueChanged.connect(ctrl.set_speed)
        # after typing a speed, hand the keyboard back so Left/Right step again
        self.speed.editingFinished.connect(self._return_focus)
        self.speed_label = QLabel("Speed")
        self.speed_label.setToolTip(self.speed.toolTip())
        self.speed_label.setContentsMargins(8, 0, 0, 0)  # apart from the step counter
        layout.addWidget(self.speed_label)
        layout.addWidget(self.speed)

        self.compact = False
        ctrl.stepChanged.connect(self.sync)
        ctrl.configChanged.connect(self.sync)
        self.sync()

    def _counter_text(self, step: int, compact: bool) -> str:
        return f"{step} / {self.ctrl.max_step}" if compact else (
            f"step {step} / {self.ctrl.max_step}")

    def _counter_width(self, compact: bool) -> int:
        """Room for the widest counter text at this number of steps (no jitter while
        playing)."""
        widest = self._counter_text(self.ctrl.max_step, compact)
        return self.counter.fontMetrics().horizontalAdvance(widest) + 12

    def _width(self, compact: bool) -> int:
        """The bar's least width with or without the parts a narrow window drops."""
        layout = self.layout()
        margins = layout.contentsMargins()
        parts = [_least_width(b) for b in self.buttons.values()]
        parts += [SLIDER_MIN_WIDTH, self._counter_width(compact), _least_width(self.speed)]
        if not compact:
            parts.append(_least_width(self.speed_label))
        return (sum(parts) + layout.spacing() * (len(parts) - 1)
                + margins.left() + margins.right())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        return QSize(self._width(compact=True), super().minimumSizeHint().height())

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        self._set_compact(event.size().width() < self._width(compact=False))

    def _set_compact(self, compact: bool) -> None:
        if compact == self.compact:
            return
        self.compact = compact
        self.speed_label.setVisible(not compact)
        self.sync()

    def sync(self, *_):
        with blocked(self.slider):
            self.slider.setRange(0, self.ctrl.max_step)
            self.slider.setValue(self.ctrl.step)
        self.counter.setText(self._counter_text(self.ctrl.step, self.compact))
        width = self._counter_width(self.compact)
        if self.counter.minimumWidth() != width:
            self.counter.setMinimumWidth(width)
            self.updateGeometry()

    def _scrubbed(self, value: int) -> None:
        self.ctrl.pause()
        self.ctrl.set_step(value)

    def _return_focus(self) -> None:
        window = self.window()
        plot = getattr(window, "contour", None)
        if plot is not None and self.speed.hasFocus():
            plot.setFocus()

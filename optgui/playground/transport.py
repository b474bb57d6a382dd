"""Transport bar: rewind, step back, play/pause, step forward, end, timeline, speed, counter.

The buttons are views of the window's QActions (which own the keyboard shortcuts), so a
button, a menu entry and a key press all do exactly the same thing.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QSpinBox, QToolButton, QWidget

from optgui.playground.controller import PlaygroundController
from optgui.widgets import blocked


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
        layout.addWidget(self.slider, 1)

        self.counter = QLabel()
        self.counter.setObjectName("stepCounter")
        self.counter.setToolTip("Current step / number of steps")
        self.counter.setMinimumWidth(110)
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
        layout.addWidget(QLabel("Speed"))
        layout.addWidget(self.speed)

        ctrl.stepChanged.connect(self.sync)
        ctrl.configChanged.connect(self.sync)
        self.sync()

    def sync(self, *_):
        with blocked(self.slider):
            self.slider.setRange(0, self.ctrl.max_step)
            self.slider.setValue(self.ctrl.step)
        self.counter.setText(f"step {self.ctrl.step} / {self.ctrl.max_step}")

    def _scrubbed(self, value: int) -> None:
        self.ctrl.pause()
        self.ctrl.set_step(value)

    def _return_focus(self) -> None:
        window = self.window()
        plot = getattr(window, "contour", None)
        if plot is not None and self.speed.hasFocus():
            plot.setFocus()

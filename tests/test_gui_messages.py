"""Numbers typed outside a spin box's range are reported, never silently clamped (issue 8 §6).

Qt refuses the keystroke that leaves the range: typing 1000000 into the steps box left
100000 and 200000 left 20000, without a word."""

from __future__ import annotations

from guihelpers import select
from PySide6.QtCore import Qt

from optgui.playground.config import MAX_GUI_STEPS


def type_into(qtbot, spin, text: str) -> None:
    spin.setFocus()
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin.lineEdit(), text)
    qtbot.keyClick(spin.lineEdit(), Qt.Key.Key_Return)


def test_steps_beyond_the_maximum_are_reported_and_the_runs_keep_theirs(window, qtbot):
    box = window.panel.surface_box
    assert MAX_GUI_STEPS < 1_000_000
    type_into(qtbot, box.steps, "1000000")
    assert not box.range_message.isHidden()
    text = box.range_message.text()
    assert "1,000,000" in text and f"{MAX_GUI_STEPS:,}" in text and "kept 30" in text
    assert window.ctrl.config.steps == 30 and box.steps.value() == 30
    type_into(qtbot, box.steps, str(MAX_GUI_STEPS * 2))  # not read as a tenth of it
    assert window.ctrl.config.steps == 30 and f"{MAX_GUI_STEPS * 2:,}" in box.range_message.text()
    with qtbot.waitSignal(window.ctrl.computed, timeout=10000):
        type_into(qtbot, box.steps, "40")
    assert window.ctrl.config.steps == 40 and box.range_message.isHidden()


def test_an_integer_hyperparameter_beyond_its_range_is_reported(window, qtbot):
    rid = select(window, "gd")
    form = window.panel.form
    batch = form.findChild(object, "hyper-batch")
    type_into(qtbot, batch, "20000000")
    assert "batch=20000000 is out of range" in form.message.text()
    assert str(window.ctrl.config.run(rid).spec) == "gd(lr=0.4)"

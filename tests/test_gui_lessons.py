"""Lesson files and undo in the real window (pytest-qt, offscreen): every kind of setup edit
undone and redone, presets and lessons as one undo step, Save / Open / drag-and-drop, the
title bar, the Notes dock, bad lessons refused with nothing changed, the unsaved-changes
prompt. Waits on signals or conditions, never on sleeps."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from guihelpers import run_id, select, wait_idle
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from engine.lesson import LESSONS_DIR, load_lesson, parse_lesson, save_lesson
from engine.presets import COURSE
from optgui.playground.config import CUSTOM, RunConfig, config_from_lesson
from optgui.playground.presets import SAM_VS_GD

pytestmark = pytest.mark.gui


@pytest.fixture
def dialogs(window, monkeypatch):
    """Record (instead of showing) the warning dialogs and the Save/Discard/Cancel prompt."""
    class Shown(list):
        answers: list

    shown = Shown()
    monkeypatch.setattr(QMessageBox, "warning",
                        lambda *args, **kw: shown.append(("warning", args[2])))
    answers = [QMessageBox.StandardButton.Discard]

    def ask():
        shown.append(("ask", window.lessons.display_name()))
        return answers[0]

    monkeypatch.setattr(window.lessons, "ask_save", ask)
    shown.answers = answers
    return shown


def undo(window, qtbot) -> None:
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)


def redo(window, qtbot) -> None:
    qtbot.keyClick(window, Qt.Key.Key_Z,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)


def check_undo_redo(window, qtbot, edit, expect_after) -> None:
    """Make ``edit`` (one undo step), then undo and redo it with the keyboard."""
    before = window.ctrl.config
    count = window.ctrl.undo_stack.count()
    edit()
    after = window.ctrl.config
    assert after != before and expect_after(after)
    assert window.ctrl.undo_stack.count() == count + 1
    undo(window, qtbot)
    assert window.ctrl.config == before
    wait_idle(qtbot, window)
    redo(window, qtbot)
    assert window.ctrl.config == after
    wait_idle(qtbot, window)


# ---------------------------------------------------------------------------- undo of each edit


def test_undo_redo_the_start_the_steps_and_the_surface(window, qtbot):
    box = window.panel.surface_box
    check_undo_redo(window, qtbot, lambda: box.start_x.setValue(2.5),
                    lambda c: c.start == (2.5, -2.0))
    assert box.start_x.value() == 2.5  # the panel follows redo
    check_undo_redo(window, qtbot, lambda: box.steps.setValue(12), lambda c: c.steps == 12)
    combo = box.surface_combo
    check_undo_redo(window, qtbot,
                    lambda: combo.setCurrentIndex(combo.findData("rosenbrock")),
                    lambda c: c.surface == "rosenbrock")
    undo(window, qtbot)
    assert combo.currentData() == "quadratic" and window.ctrl.surface.name == "quadratic"
    wait_idle(qtbot, window)
    gd = window.ctrl.trajectory(run_id(window, "gd"))
    np.testing.assert_allclose(gd.points[0], window.ctrl.config.start)


def test_undo_a_click_on_the_contour(window, qtbot):
    before = window.ctrl.config.start
    pos = window.contour.view_to_widget(-3.0, 1.0)
    with qtbot.waitSignal(window.ctrl.computed, timeout=5000):
        qtbot.mouseClick(window.contour.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(pos))
    assert window.ctrl.config.start != before
    with qtbot.waitSignal(window.ctrl.computed, timeout=5000):
        undo(window, qtbot)
    assert window.ctrl.config.start == before
    np.testing.assert_allclose(window.ctrl.trajectory(run_id(window, "gd")).points[0], before)


def test_undo_redo_add_remove_recolour_and_enable(window, qtbot, monkeypatch):
    runs = window.panel.run_list
    check_undo_redo(window, qtbot, lambda: runs.add_optimizer("sgd"),
                    lambda c: len(c.runs) == 5)
    assert runs.list.count() == 5
    rid = select(window, "adam")
    check_undo_redo(window, qtbot, runs.remove_selected, lambda c: c.run(rid) is None)
    monkeypatch.setattr("optgui.playground.panel.QColorDialog.getColor",
                        lambda *a, **k: QColor("#123456"))
    rid = select(window, "gd")
    check_undo_redo(window, qtbot, runs.recolor, lambda c: c.run(rid).color == "#123456")
    row = [r.run_id for r in window.ctrl.config.runs].index(rid)
    check_undo_redo(window, qtbot,
                    lambda: runs.list.item(row).setCheckState(Qt.CheckState.Unchecked),
                    lambda c: not c.run(rid).enabled)
    undo(window, qtbot)
    assert runs.list.item(row).checkState() == Qt.CheckState.Checked
    assert window.contour._paths[rid].line.isVisible()


def test_a_typed_hyperparameter_is_one_undo_step(window, qtbot):
    rid = select(window, "gd")
    spin = window.panel.form._editors["lr"]
    count = window.ctrl.undo_stack.count()
    spin.setFocus()
    spin.selectAll()
    qtbot.keyClicks(spin, "0.25")  # keyboard tracking is off: nothing happens per keystroke
    assert window.ctrl.undo_stack.count() == count
    with qtbot.waitSignal(window.ctrl.computed, timeout=5000):
        qtbot.keyClick(spin, Qt.Key.Key_Return)
    assert str(window.ctrl.config.run(rid).spec) == "gd(lr=0.25)"
    assert window.ctrl.undo_stack.count() == count + 1
    assert window.ctrl.undo_stack.undoText() == "Edit gd(lr=0.25)"
    window.contour.setFocus()
    undo(window, qtbot)
    assert str(window.ctrl.config.run(rid).spec) == "gd(lr=0.4)"
    assert spin.value() == 0.4


def test_arrow_clicks_on_one_spin_box_merge_into_one_step(window, qtbot):
    rid = select(window, "momentum")
    spin = window.panel.form._editors["beta"]
    count = window.ctrl.undo_stack.count()
    for _ in range(3):
        spin.stepBy(1)  # what an arrow click does: 0.5 → 0.6 → 0.7 → 0.8
    assert str(window.ctrl.config.run(rid).spec) == "momentum(lr=0.6,beta=0.8)"
    assert window.ctrl.undo_stack.count() == count + 1
    window.ctrl.undo_stack.undo()
    assert str(window.ctrl.config.run(rid).spec) == "momentum(lr=0.6,beta=0.5)"
    # typing a whole spec string, keystroke by keystroke, is one step too
    edit = window.panel.form.spec_edit
    edit.setFocus()
    edit.selectAll()
    qtbot.keyClicks(edit, "momentum(lr=0.3)")
    assert str(window.ctrl.config.run(rid).spec) == "momentum(lr=0.3)"
    window.ctrl.undo_stack.undo()
    assert str(window.ctrl.config.run(rid).spec) == "momentum(lr=0.6,beta=0.5)"


def test_a_custom_formula_is_undone(window, qtbot):
    box = window.panel.surface_box
    with qtbot.waitSignal(window.ctrl.computed, timeout=10000):
        box.surface_combo.setCurrentIndex(box.surface_combo.findData(CUSTOM))
    with qtbot.waitSignal(window.ctrl.computed, timeout=10000,
                          check_params_cb=lambda: window.ctrl.config.expression == "w1^2 + w2^4"):
        window.ctrl.set_expression("w1^2 + w2^4")
    first = window.ctrl.config
    assert window.ctrl.undo_stack.undoText() == "Formula"
    window.ctrl.undo_stack.undo()
    assert window.ctrl.config.surface == CUSTOM and window.ctrl.config.expression != "w1^2 + w2^4"
    window.ctrl.undo_stack.undo()
    assert window.ctrl.config.surface == "quadratic"
    window.ctrl.undo_stack.redo()
    window.ctrl.undo_stack.redo()
    assert window.ctrl.config == first and window.ctrl.surface.expression == "w1^2 + w2^4"
    assert box.expression_edit.text() == "w1^2 + w2^4"
    wait_idle(qtbot, window)


def test_a_preset_is_one_undo_step(window, qtbot):
    window.ctrl.set_steps(7)
    mine = window.ctrl.config
    count = window.ctrl.undo_stack.count()
    window.actions_by_key["preset_sam_vs_gd"].trigger()
    assert window.ctrl.config == SAM_VS_GD.config
    assert window.ctrl.undo_stack.count() == count + 1
    assert window.overlays.enabled["sam"] and not window.loss.log
    assert "sharp minimum" in window.lessons.notes.view.toPlainText()
    undo(window, qtbot)
    assert window.ctrl.config == mine and window.ctrl.surface.name == "quadratic"
    assert window.lessons.notes.title.text() == "Course exercise"  # the launch's lesson
    wait_idle(qtbot, window)
    redo(window, qtbot)
    assert window.ctrl.config == SAM_VS_GD.config
    wait_idle(qtbot, window)


# ---------------------------------------------------------------------------- lesson files


def test_save_and_open_round_trip_everything_shown(window, qtbot, tmp_path, dialogs):
    ctrl, lessons = window.ctrl, window.lessons
    window.load_preset(SAM_VS_GD)
    wait_idle(qtbot, window)
    ctrl.set_run_color(ctrl.config.runs[0].run_id, "#00ff88")
    ctrl.set_step(40)
    next(a for a in window.overlay_actions if a.objectName() == "overlay-gradient").trigger()
    window.transport.speed.setValue(20)
    window.contour.getViewBox().setRange(xRange=(-1, 0.5), yRange=(1, 3.5), padding=0)
    window.lab.settings.epochs.setValue(3)
    ctrl.set_notes("SAM, my version", "# Heading\n\nSome **bold** words.")
    path = tmp_path / "mine.optgui"
    assert lessons.save_as(str(path))
    assert not window.isWindowModified() and window.windowTitle().startswith("mine.optgui")
    saved = load_lesson(path)
    assert saved == lessons.current_lesson()
    assert (saved.step, saved.speed, saved.selected, saved.overlays) == (
        40, 20.0, 1, ("update", "sam"))
    assert saved.view == (-1.0, 0.5, 1.0, 3.5) and saved.lab["epochs"] == 3
    assert saved.runs[0].color == "#00ff88" and saved.title == "SAM, my version"

    window.restore_course()  # something else, then open the file again
    wait_idle(qtbot, window)
    assert lessons.open_lesson(str(path))
    wait_idle(qtbot, window)
    assert lessons.current_lesson() == saved
    assert ctrl.step == 40 and window.lab.settings.epochs.value() == 3
    assert lessons.recent()[0] == str(path.resolve())
    assert not window.isWindowModified()


def test_the_title_bar_shows_the_name_and_a_modified_marker(window, qtbot, tmp_path, dialogs):
    path = tmp_path / "course.optgui"
    save_lesson(path, COURSE.lesson)
    window.lessons.open_path(path)
    assert window.windowTitle() == "course.optgui[*] — optgui"
    assert not window.isWindowModified()
    window.ctrl.set_steps(5)
    assert window.isWindowModified()
    undo(window, qtbot)  # back to the file's content: not modified any more
    assert not window.isWindowModified()
    wait_idle(qtbot, window)


def test_undo_an_open_goes_back_to_the_previous_file(window, qtbot, tmp_path, dialogs):
    a, b = tmp_path / "a.optgui", tmp_path / "b.optgui"
    save_lesson(a, COURSE.lesson)
    save_lesson(b, SAM_VS_GD.lesson)
    window.lessons.open_path(a)
    window.ctrl.set_steps(9)
    window.lessons.open_lesson(str(b))  # unsaved changes in a: the prompt comes first
    assert dialogs == [("ask", "a.optgui")]
    assert window.ctrl.document.path == b.resolve()
    undo(window, qtbot)
    assert window.ctrl.document.path == a.resolve() and window.ctrl.config.steps == 9
    assert window.isWindowModified()
    wait_idle(qtbot, window)


def test_cancel_at_the_prompt_keeps_everything(window, qtbot, tmp_path, dialogs):
    path = tmp_path / "a.optgui"
    save_lesson(path, COURSE.lesson)
    window.lessons.open_path(path)
    window.ctrl.set_steps(9)
    dialogs.answers[0] = QMessageBox.StandardButton.Cancel
    assert not window.lessons.new_lesson()
    assert not window.close()  # closing is refused too
    assert window.isVisible() and window.ctrl.config.steps == 9
    dialogs.answers[0] = QMessageBox.StandardButton.Save
    assert window.lessons.new_lesson()  # saved first, then replaced
    assert load_lesson(path).steps == 9
    assert window.ctrl.document.path is None and window.windowTitle().startswith("Untitled")
    wait_idle(qtbot, window)


def test_writing_notes_is_undoable_and_asks_before_closing(window, qtbot, dialogs):
    notes = window.lessons.notes
    original = window.ctrl.setup.notes
    assert "Momentum" in original  # the window opens on the course exercise's lesson
    notes.edit_button.click()
    notes.title_edit.setText("Week 3")
    notes.notes_edit.setPlainText("## Tasks\n\n1. Run **Adam**\n2. Compare")
    notes.edit_button.click()
    assert notes.title.text() == "Week 3" and window.windowTitle().startswith("Week 3")
    text = notes.view.toPlainText()
    assert "Tasks" in text and "##" not in text and "**" not in text  # rendered Markdown
    assert window.lessons.needs_saving()
    dialogs.answers[0] = QMessageBox.StandardButton.Cancel
    assert not window.close() and window.isVisible()
    assert dialogs[-1] == ("ask", "Week 3")
    undo(window, qtbot)
    assert window.ctrl.setup.notes == original and not window.lessons.needs_saving()
    assert notes.title.text() == "Course exercise"


@pytest.mark.parametrize(("content", "message"), [
    ('{"schema_version": 99, "surface": {"name": "quadratic"}}', "newer optgui"),
    ((LESSONS_DIR / "course.optgui").read_text()[:300], "not valid JSON"),
    ((LESSONS_DIR / "course.optgui").read_text().replace('"steps": 30', '"steps": "30"'),
     "steps: must be an integer"),
    ((LESSONS_DIR / "course.optgui").read_text().replace("gd(lr=0.4)", "nosuch(lr=0.4)"),
     "unknown optimizer"),
    ((LESSONS_DIR / "course.optgui").read_text().replace(
        '{"name": "quadratic"}', '{"name": "custom", "expression": "w1 +* w2"}'),
     "surface.expression"),
    ((LESSONS_DIR / "course.optgui").read_text().replace('"steps": 30', '"steps": 50000'),
     "at most 10,000"),
])
def test_a_bad_lesson_gets_a_dialog_and_changes_nothing(window, qtbot, tmp_path, dialogs,
                                                         content, message):
    window.ctrl.set_steps(17)
    before = (window.ctrl.config, window.ctrl.undo_stack.count(), window.windowTitle(),
              window.loss.log, window.ctrl.step)
    path = tmp_path / "bad.optgui"
    path.write_text(content, encoding="utf-8")
    assert not window.lessons.open_lesson(str(path))
    assert len(dialogs) == 1 and dialogs[0][0] == "warning" and message in dialogs[0][1]
    assert (window.ctrl.config, window.ctrl.undo_stack.count(), window.windowTitle(),
            window.loss.log, window.ctrl.step) == before
    assert window.lessons.recent() == []


def test_dropping_a_lesson_file_opens_it(window, qtbot, tmp_path, dialogs):
    path = tmp_path / "dropped.optgui"
    save_lesson(path, SAM_VS_GD.lesson)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    pos = QPointF(window.width() / 2, window.height() / 2)
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, drop)
    assert window.ctrl.config == SAM_VS_GD.config
    assert window.windowTitle().startswith("dropped.optgui")
    other = QMimeData()
    other.setUrls([QUrl.fromLocalFile(str(tmp_path / "picture.png"))])
    refused = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, other,
                              Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    refused.ignore()
    QApplication.sendEvent(window, refused)
    assert not refused.isAccepted()
    wait_idle(qtbot, window)


def test_a_focused_lesson_hides_panels_until_the_next_lesson(window, qtbot, tmp_path, dialogs):
    lesson = replace(COURSE.lesson, hidden_panels=("inspector", "loss", "lab"),
                     lab={"epochs": 2, "activation": "relu"})
    path = tmp_path / "focused.optgui"
    save_lesson(path, lesson)
    window.lessons.open_path(path)
    assert not window.inspector_dock.isVisible() and not window.splitter.widget(1).isVisible()
    assert not window.tabs.isTabVisible(1)
    assert window.lab.settings.activation.currentText() == "relu"
    assert window.lessons.current_lesson().hidden_panels == ("inspector", "loss", "lab")
    window.restore_course()
    assert window.splitter.widget(1).isVisible() and window.tabs.isTabVisible(1)
    wait_idle(qtbot, window)


def test_the_presets_load_through_the_lesson_files(window, qtbot):
    window.restore_course()
    assert window.ctrl.config == RunConfig.from_preset(COURSE)
    assert window.ctrl.config == config_from_lesson(load_lesson(LESSONS_DIR / "course.optgui"))
    assert window.lessons.notes.title.text() == "Course exercise"
    wait_idle(qtbot, window)


def test_main_opens_a_lesson_file_in_the_window(monkeypatch, tmp_path):
    import optgui.app
    from optgui.cli import main

    seen = []
    monkeypatch.setattr(optgui.app, "main", lambda argv: seen.append(argv) or 0)
    assert main([str(tmp_path / "lesson.optgui")]) == 0
    assert seen == [[str(tmp_path / "lesson.optgui")]]


def test_a_lesson_written_by_hand_opens(window, qtbot, tmp_path, dialogs):
    path = tmp_path / "hand.optgui"
    path.write_text('{"schema_version": 1, "surface": {"name": "custom", "expression": '
                    '"w1^2 + 2*w2^2", "view": [-3, 3, -2, 2]}, "start": [2, 1], "steps": 15, '
                    '"optimizers": ["gd(lr=0.1)", "adam(lr=0.3)"]}', encoding="utf-8")
    assert window.lessons.open_path(path)
    cfg = window.ctrl.config
    assert cfg.surface == CUSTOM and cfg.view == (-3.0, 3.0, -2.0, 2.0) and cfg.steps == 15
    assert [r.color for r in cfg.runs] == ["#ff5c5c", "#ffa630"]  # the palette's first
    wait_idle(qtbot, window)
    assert parse_lesson(window.lessons.current_lesson().to_json()).start == (2.0, 1.0)


def test_undo_the_data_set(window, qtbot):
    box = window.panel.surface_box
    with qtbot.waitSignal(window.ctrl.computed, timeout=5000):
        box.surface_combo.setCurrentIndex(box.surface_combo.findData("linear_regression"))
    wait_idle(qtbot, window)
    check_undo_redo(window, qtbot, lambda: box.data_n.setValue(32),
                    lambda c: c.data[0] == 32)
    assert window.ctrl.surface.n_samples == 32
    undo(window, qtbot)
    assert window.ctrl.surface.n_samples == 64 and box.data_n.value() == 64
    wait_idle(qtbot, window)


def test_what_is_shown_marks_an_open_lesson_modified(window, qtbot, tmp_path, dialogs):
    path = tmp_path / "sam.optgui"
    save_lesson(path, SAM_VS_GD.lesson)
    window.lessons.open_path(path)
    assert not window.isWindowModified()
    gradient = next(a for a in window.overlay_actions if a.objectName() == "overlay-gradient")
    gradient.trigger()  # not an undo step, but Save would write it
    assert window.isWindowModified() and window.lessons.needs_saving()
    gradient.trigger()
    assert not window.isWindowModified()
    window.transport.speed.setValue(30)
    assert window.isWindowModified()
    assert window.lessons.save()
    assert not window.isWindowModified() and load_lesson(path).speed == 30
    wait_idle(qtbot, window)


def test_a_lesson_opened_at_start_up_without_overlays_shows_no_empty_overlay_legend(
        qtbot, tmp_path):
    """As ``python main.py lesson.optgui``: the lesson is opened before the window drew any
    overlay; with every overlay off, the overlay legend must not be left as an empty box."""
    import json

    from optgui.mainwindow import MainWindow

    lesson = json.loads((LESSONS_DIR / "course.optgui").read_text(encoding="utf-8"))
    lesson["overlays"] = []
    path = tmp_path / "quiet.optgui"
    path.write_text(json.dumps(lesson), encoding="utf-8")
    w = MainWindow(use_settings=False)
    qtbot.addWidget(w)
    w.show()
    w.lessons.open_path(str(path))
    wait_idle(qtbot, w)
    w.ctrl.to_end()
    assert not any(w.overlays.enabled.values())
    assert not w.overlays.legend.isVisible()
    w.close()

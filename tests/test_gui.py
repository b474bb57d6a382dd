"""GUI tests: drive the real window with pytest-qt, offscreen; wait on signals, never sleep."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from guihelpers import COURSE_TABLE, PNG_SIGNATURE, run_id, select, wait_idle
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QImage

from engine import parse_spec
from engine.presets import COURSE
from optgui.mainwindow import MainWindow
from optgui.playground.config import RunConfig

pytestmark = pytest.mark.gui


# ---------------------------------------------------------------------------- launch


def test_launch_shows_the_course_exercise(window):
    assert window.windowTitle() == "Course exercise[*] — optgui"  # the lesson, unmodified
    assert "Momentum" in window.lessons.notes.view.toPlainText()  # its notes are shown
    assert not window.isWindowModified()
    cfg = window.ctrl.config
    assert cfg.surface == "quadratic" and cfg.start == (-5.0, -2.0) and cfg.steps == 30
    assert [str(r.spec) for r in cfg.runs] == list(COURSE.optimizers)
    assert len({r.color for r in cfg.runs}) == 4  # distinct colours
    assert window.transport.counter.text() == "step 0 / 30"
    legend = [label.text for _, label in window.contour.legend.items]
    assert legend == list(COURSE.optimizers)
    assert "0.1·w1² + 2·w2²" in window.panel.surface_box.formula.text()
    assert window.contour.contours is not None and len(window.contour.contours.segments) > 100


def test_course_preset_points_match_the_course_table(window):
    for name, rows in COURSE_TABLE.items():
        traj = window.ctrl.trajectory(run_id(window, name))
        assert traj.steps == 30
        for k, expected in enumerate(rows, start=1):
            np.testing.assert_allclose(traj.points[k], expected, rtol=1e-5, atol=1e-6)


def test_trajectories_are_read_only_snapshots(window):
    traj = window.ctrl.trajectory(run_id(window, "gd"))
    with pytest.raises(ValueError):
        traj.points[1, 0] = 0.0


# ---------------------------------------------------------------------------- transport


def test_play_runs_to_the_end_and_stops(window, qtbot):
    window.transport.speed.setValue(300)
    with qtbot.waitSignal(window.ctrl.playingChanged) as started:
        qtbot.keyClick(window, Qt.Key.Key_Space)
    assert started.args == [True]
    qtbot.waitUntil(lambda: window.ctrl.step == 30, timeout=5000)
    qtbot.waitUntil(lambda: not window.ctrl.is_playing(), timeout=2000)
    assert window.transport.counter.text() == "step 30 / 30"
    assert window.transport.slider.value() == 30
    assert window.actions_by_key["play"].text() == "Play"


def test_costly_frames_come_less_often_but_the_animation_keeps_its_speed(window, qtbot):
    import time

    from optgui.playground.controller import MAX_FRAME_SHARE, MIN_FRAME_RATE

    ctrl = window.ctrl
    ctrl.set_steps(400)
    wait_idle(qtbot, window)
    ctrl.set_speed(60)
    base = ctrl.frame_interval_ms
    assert base == round(1000 / 60)

    def costly_frame(_k):  # a view that needs 30 ms of the GUI thread per frame
        until = time.thread_time() + 0.030
        while time.thread_time() < until:
            pass

    ctrl.stepChanged.connect(costly_frame)
    started = time.monotonic()
    ctrl.play()
    qtbot.waitUntil(lambda: ctrl.frame_interval_ms >= 0.030 / MAX_FRAME_SHARE * 0.9,
                    timeout=5000)
    assert ctrl.frame_interval_ms <= 1000 // MIN_FRAME_RATE
    qtbot.waitUntil(lambda: ctrl.step >= 90, timeout=5000)
    elapsed = time.monotonic() - started
    assert ctrl.step <= 60 * elapsed + 2  # never ahead of the chosen speed …
    assert ctrl.step >= 60 * (elapsed - 1.0)  # … and not left behind by the slow frames
    ctrl.stepChanged.disconnect(costly_frame)
    ctrl.pause()
    ctrl.set_speed(60)  # a new speed starts again at its own frame rate
    assert ctrl.frame_interval_ms == base


def test_arrow_keys_step_back_and_forward_when_the_plot_has_focus(window, qtbot):
    window.contour.setFocus()
    qtbot.waitUntil(window.contour.hasFocus)
    for _ in range(3):
        qtbot.keyClick(window.contour, Qt.Key.Key_Right)
    assert window.ctrl.step == 3
    qtbot.keyClick(window.contour, Qt.Key.Key_Left)
    assert window.ctrl.step == 2
    qtbot.keyClick(window, Qt.Key.Key_Right)
    assert window.ctrl.step == 3
    assert window.transport.counter.text() == "step 3 / 30"
    # the current point drawn on the contour is the run's point at that step
    gd = run_id(window, "gd")
    np.testing.assert_allclose(window.contour.head_of(gd), window.ctrl.trajectory(gd).points[3])
    traj = window.ctrl.trajectory(gd)
    np.testing.assert_allclose(window.loss.head_of(gd), (3, traj.losses[3]))


def test_home_and_end_rewind_and_jump_to_the_end(window, qtbot):
    window.contour.setFocus()
    qtbot.keyClick(window.contour, Qt.Key.Key_End)
    assert window.ctrl.step == 30
    qtbot.keyClick(window.contour, Qt.Key.Key_Home)
    assert window.ctrl.step == 0
    qtbot.keyClick(window.loss, Qt.Key.Key_End)  # works from the loss plot too
    assert window.ctrl.step == 30


def test_arrow_keys_still_edit_text_in_a_spec_field(window, qtbot):
    edit = window.panel.form.spec_edit
    edit.setFocus()
    qtbot.waitUntil(edit.hasFocus)
    edit.setCursorPosition(0)
    qtbot.keyClick(edit, Qt.Key.Key_Right)
    assert edit.cursorPosition() == 1 and window.ctrl.step == 0


def test_scrubbing_the_slider_moves_every_view(window):
    window.transport.slider.setValue(17)
    assert window.ctrl.step == 17
    assert window.transport.counter.text() == "step 17 / 30"
    assert window.loss.step_line.value() == 17
    adam = run_id(window, "adam")
    xs, ys = window.contour._paths[adam].line.getData()
    assert len(xs) == 18
    np.testing.assert_allclose([xs[-1], ys[-1]], window.ctrl.trajectory(adam).points[17])


# ---------------------------------------------------------------------------- editing


def test_editing_a_hyperparameter_reruns_that_optimizer_and_keeps_the_step(window, qtbot):
    window.ctrl.set_step(5)
    rid = select(window, "gd")
    other = window.ctrl.trajectory(run_id(window, "adam"))
    lr = window.panel.form.findChild(object, "hyper-lr")
    assert lr.value() == 0.4
    with qtbot.waitSignal(window.ctrl.computed, timeout=5000):
        lr.setValue(0.2)
    traj = window.ctrl.trajectory(rid)
    assert str(traj.spec) == "gd(lr=0.2)"
    np.testing.assert_allclose(traj.points[1], (-4.8, -0.4))
    assert window.ctrl.trajectory(run_id(window, "adam")) is other  # not recomputed
    assert window.ctrl.step == 5
    assert window.panel.form.spec_edit.text() == "gd(lr=0.2)"
    assert "gd(lr=0.2)" in [label.text for _, label in window.contour.legend.items]


def test_the_form_is_generated_from_the_optimizer_spec(window):
    select(window, "rmsprop")
    form = window.panel.form
    assert set(form._editors) >= {"lr", "alpha", "eps", "eps_in_sqrt", "noise", "seed"}
    assert form.findChild(object, "hyper-eps_in_sqrt").isChecked()
    assert form.findChild(object, "hyper-alpha").value() == 0.9
    assert "eps_in_sqrt" in form.convention.text()  # the run's convention is shown
    assert "√" in form.rule.text()


def test_invalid_spec_text_shows_a_message_and_keeps_the_last_good_run(window, qtbot):
    rid = select(window, "gd")
    before = window.ctrl.trajectory(rid)
    form = window.panel.form
    form.spec_edit.setText("gd(lr=-1)")
    form.spec_edit.textEdited.emit("gd(lr=-1)")
    assert form.message.isVisible() or not form.message.isHidden()
    assert "out of range" in form.message.text()
    assert "ff6b6b" in form.message.styleSheet()
    form.spec_edit.setText("adamm(lr=0.1)")
    form.spec_edit.textEdited.emit("adamm(lr=0.1)")
    assert "unknown optimizer" in form.message.text()
    qtbot.wait(300)  # longer than the debounce: nothing may be re-run
    assert str(window.ctrl.config.run(rid).spec) == "gd(lr=0.4)"
    assert window.ctrl.trajectory(rid) is before
    # a valid text then switches the optimizer, and the form follows
    with qtbot.waitSignal(window.ctrl.computed, timeout=5000):
        form.spec_edit.setText("adam(lr=0.3)")
        form.spec_edit.textEdited.emit("adam(lr=0.3)")
    assert form.message.isHidden()
    assert str(window.ctrl.trajectory(rid).spec) == "adam(lr=0.3)"
    assert "beta1" in form._editors


def test_out_of_range_spin_value_is_rejected(window):
    rid = select(window, "momentum")
    beta = window.panel.form.findChild(object, "hyper-beta")
    beta.setValue(1.0)  # beta must be < 1
    assert "beta" in window.panel.form.message.text()
    assert str(window.ctrl.config.run(rid).spec) == "momentum(lr=0.6,beta=0.5)"


def test_a_selection_shows_a_kept_page_of_editors_and_builds_none(window, qtbot,
                                                                   monkeypatch):
    """Each rule's editors are built once, ahead for the setup's runs, and a selection only
    switches pages and sets the values (rebuilding the form took ~20 ms per selection)."""
    form = window.panel.form
    with qtbot.waitSignal(window.ctrl.computed, timeout=5000):
        window.ctrl.add_run(parse_spec("gd(lr=0.05)"))
    keys = {(r.spec.name, r.spec.resolved().get("schedule")) for r in window.ctrl.config.runs}
    qtbot.waitUntil(lambda: set(form._pages) >= keys)  # built ahead, one per pass
    made = []
    original = form._make_editor
    monkeypatch.setattr(form, "_make_editor", lambda hyper: made.append(hyper) or
                        original(hyper))
    first, second = [r.run_id for r in window.ctrl.config.runs if r.spec.name == "gd"]
    window.ctrl.select_run(first)
    lr = form.editor("lr")
    assert lr.value() == 0.4
    window.ctrl.select_run(run_id(window, "adam"))
    beta1 = form.editor("beta1")
    assert beta1.isVisibleTo(form) and not lr.isVisibleTo(form)
    # only the shown page's editors answer to their names
    assert form.findChild(object, "hyper-beta1") is beta1
    assert form.findChild(object, "hyper-lr") is form.editor("lr") is not lr
    form.show_message("a message about adam")
    window.ctrl.select_run(second)
    assert form.editor("lr") is lr and lr.value() == 0.05  # the same page, this run's value
    assert form.findChild(object, "hyper-beta1") is None
    assert form.message.isHidden()  # the other run's message went with it
    assert form.spec_edit.text() == "gd(lr=0.05)"
    assert made == []


def test_form_pages_are_built_ahead_only_while_the_animation_is_stopped(window, qtbot):
    """A page built ahead takes 8-15 ms: built in an animation frame's pass, it doubled
    that pass's stall. While the animation plays, none is built; after it, they are."""
    import dataclasses

    from optgui.playground.config import RunEntry

    form, ctrl = window.panel.form, window.ctrl
    window.transport.speed.setValue(1)  # 30 steps at one a second: plays all test long
    ctrl.play()
    runs = tuple(RunEntry(i + 1, parse_spec(text), color) for i, (text, color) in enumerate(
        [("adamax(lr=0.1)", "#ff0000"), ("nadam(lr=0.1)", "#00ff00"),
         ("adagrad(lr=0.5)", "#0000ff")]))
    with qtbot.waitSignal(ctrl.computed, timeout=5000):
        ctrl.set_config(dataclasses.replace(ctrl.config, runs=runs))
    ctrl.select_run(1)
    keys = [form._page_key(entry) for entry in runs]
    form._prebuild_next()  # what the prebuild timer calls: builds nothing while playing
    assert ctrl.is_playing()
    assert keys[0] in form._pages  # the selected run's, shown
    assert keys[1] not in form._pages and keys[2] not in form._pages
    ctrl.pause()
    qtbot.waitUntil(lambda: all(key in form._pages for key in keys), timeout=3000)


def test_add_remove_enable_and_recolour_runs(window, qtbot, monkeypatch):
    runs = window.panel.run_list
    with qtbot.waitSignal(window.ctrl.computed, timeout=5000):
        new = runs.add_optimizer("sgd")
    assert window.ctrl.selected_run == new
    assert str(window.ctrl.config.run(new).spec) == "sgd(lr=0.1)"  # the playground value
    assert runs.list.count() == 5
    assert window.ctrl.config.run(new).color not in {r.color for r in window.ctrl.config.runs
                                                      if r.run_id != new}
    # the add menu lists every registered optimizer, grouped by family
    runs._fill_add_menu()
    names = {a.objectName() for a in runs.add_menu.actions()}
    from engine import REGISTRY
    assert {f"add-{n}" for n in REGISTRY} <= names
    sections = [a.text() for a in runs.add_menu.actions() if a.isSeparator() and a.text()]
    assert "Adam family" in sections

    monkeypatch.setattr(
        "optgui.playground.panel.QColorDialog.getColor", lambda *a, **k: QColor("#123456")
    )
    runs.recolor()
    assert window.ctrl.config.run(new).color == "#123456"

    item = runs.list.item(4)
    item.setCheckState(Qt.CheckState.Unchecked)
    assert not window.ctrl.config.run(new).enabled
    assert not window.contour._paths[new].line.isVisible()
    assert len(window.contour.legend.items) == 4

    runs.remove_selected()
    assert runs.list.count() == 4 and window.ctrl.config.run(new) is None
    assert new not in window.contour._paths


def test_clicking_the_contour_moves_the_start_point(window, qtbot):
    plot = window.contour
    pos = plot.view_to_widget(-3.0, 1.0)
    with qtbot.waitSignal(window.ctrl.computed, timeout=5000):
        qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(pos))
    x, y = window.ctrl.config.start
    assert abs(x + 3.0) < 0.1 and abs(y - 1.0) < 0.1
    traj = window.ctrl.trajectory(run_id(window, "gd"))
    np.testing.assert_allclose(traj.points[0], (x, y))
    assert window.panel.surface_box.start_x.value() == pytest.approx(x)


def test_course_action_restores_the_preset(window, qtbot):
    window.ctrl.set_steps(12)
    window.ctrl.remove_run(run_id(window, "adam"))
    window.ctrl.set_start(1.0, 1.0)
    qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    assert window.ctrl.config == RunConfig.from_preset(COURSE)
    wait_idle(qtbot, window, 4)
    np.testing.assert_allclose(
        window.ctrl.trajectory(run_id(window, "gd")).points[1], COURSE_TABLE["gd"][0]
    )


def test_log_scale_toggle(window, qtbot):
    plot = window.loss.getPlotItem()
    assert window.loss.log and plot.ctrl.logYCheck.isChecked()  # the default
    qtbot.keyClick(window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert not window.loss.log and not window.log_check.isChecked()
    assert not plot.ctrl.logYCheck.isChecked()
    window.log_check.setChecked(True)
    assert window.loss.log and window.actions_by_key["log_loss"].isChecked()


def test_diverged_run_is_marked_in_the_legend(window, qtbot):
    rid = select(window, "gd")
    with qtbot.waitSignal(window.ctrl.computed, timeout=5000):
        window.ctrl.set_run_spec(rid, parse_spec("gd(lr=1.2)"))
    traj = window.ctrl.trajectory(rid)
    assert traj.diverged_at is not None
    label = f"gd(lr=1.2) (diverged at step {traj.diverged_at})"
    assert label in [lab.text for _, lab in window.contour.legend.items]
    window.ctrl.to_end()  # drawing past the divergence is safe
    assert len(window.contour._paths[rid].line.getData()[0]) == traj.steps + 1


def test_a_run_that_fails_from_its_first_result_is_in_the_legend_as_an_error(window, qtbot):
    with qtbot.waitSignal(window.ctrl.computed, timeout=5000):
        window.ctrl.set_start(1e300, 1e300)  # f overflows: no run is defined there
    with qtbot.waitSignal(window.ctrl.computed, timeout=5000):
        rid = window.ctrl.add_run(parse_spec("nadam(lr=0.1)"))
    assert window.ctrl.trajectory(rid) is None and window.ctrl.error(rid)
    texts = [label.text for _, label in window.contour.legend.items]
    assert texts[-1] == "nadam(lr=0.1) (error)"
    assert not window.contour._paths[rid].line.isVisible()
    assert window.contour.head_of(rid) is None


def test_worker_errors_become_a_status_message(window, qtbot):
    with qtbot.waitSignal(window.ctrl.errorOccurred, timeout=5000) as blocker:
        window.ctrl.set_start(1e300, 1e300)  # f overflows: not defined at the start
    assert "not defined" in blocker.args[0]
    assert "not defined" in window.statusBar().currentMessage()
    wait_idle(qtbot, window, 0)
    assert "(error)" in window.panel.run_list.list.item(0).text()


def test_stale_results_are_dropped(window):
    from optgui.playground.worker import RunResult

    ctrl = window.ctrl
    rid = run_id(window, "gd")
    current = ctrl.trajectory(rid)
    stale = ctrl.trajectory(run_id(window, "adam"))
    ctrl._on_results((RunResult(generation=0, run_id=rid, trajectory=stale),))
    ctrl._deliver()
    assert ctrl.trajectory(rid) is current


def test_results_arriving_together_are_drawn_once(window, qtbot):
    from optgui.playground.worker import RunResult

    ctrl = window.ctrl
    a, b = run_id(window, "gd"), run_id(window, "adam")
    ta, tb = ctrl.trajectory(a), ctrl.trajectory(b)
    ctrl._expected.update({a: 99, b: 99})  # as if generation 99 had been requested
    redraws = []
    ctrl.trajectoriesChanged.connect(lambda: redraws.append(ctrl.step))
    with qtbot.waitSignal(ctrl.computed, timeout=2000):
        ctrl._on_results((RunResult(99, a, tb),))
        ctrl._on_results((RunResult(99, b, ta),))
        assert redraws == [] and ctrl.is_busy()  # drawn when the delivery timer fires
    assert len(redraws) == 1
    assert ctrl.trajectory(a) is tb and ctrl.trajectory(b) is ta


# ---------------------------------------------------------------------------- exports


def test_export_csv_writes_every_shown_run(window, tmp_path, monkeypatch):
    offered = {}

    def fake_dialog(parent, title, suggested, filters):
        offered["name"] = Path(suggested).name
        return str(tmp_path / "out.csv"), filters

    monkeypatch.setattr("optgui.mainwindow.QFileDialog.getSaveFileName", fake_dialog)
    window.actions_by_key["export_csv"].trigger()
    assert offered["name"] == "optgui-quadratic-trajectories.csv"
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out.csv").read_text())))
    assert {"optimizer", "step", "w1", "w2", "loss", "grad1", "grad2", "diverged"} <= set(rows[0])
    assert len(rows) == 4 * 31
    gd = [r for r in rows if r["optimizer"] == "gd(lr=0.4)"]
    assert [int(r["step"]) for r in gd] == list(range(31))
    assert float(gd[1]["w1"]) == pytest.approx(-4.6) and float(gd[1]["w2"]) == pytest.approx(1.2)
    assert list(tmp_path.iterdir()) == [tmp_path / "out.csv"]  # no temp file left


def test_export_contour_and_loss_png(window, tmp_path):
    window.ctrl.to_end()
    for export, name in ((window.export_contour_png, "c.png"), (window.export_loss_png, "l.png")):
        path = tmp_path / name
        assert export(str(path))
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE)
        image = QImage(str(path))
        assert image.width() > 300 and image.height() > 100
    contour = QImage(str(tmp_path / "c.png"))
    rect = window.contour.getPlotItem().sceneBoundingRect()
    assert abs(contour.width() - rect.width()) <= 2
    assert abs(contour.height() - rect.height()) <= 2


def test_export_to_an_unwritable_place_shows_an_error_and_writes_nothing(
    window, tmp_path, monkeypatch
):
    shown = []
    monkeypatch.setattr(
        "optgui.mainwindow.QMessageBox.critical", lambda parent, title, text: shown.append(text)
    )
    target = tmp_path / "no-such-folder" / "out.csv"
    assert not window.export_csv(str(target))
    assert not window.export_contour_png(str(tmp_path / "no-such-folder" / "c.png"))
    assert len(shown) == 2 and "does not exist" in shown[0]
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_save_contour_png_renders_headless(tmp_path):
    from engine import get_surface, run_trajectory
    from optgui.playground.render import save_contour_png

    surface = get_surface("quadratic")
    trajs = [run_trajectory(surface, s, COURSE.start, 30) for s in COURSE.specs()]
    path = tmp_path / "contour.png"
    save_contour_png(surface, trajs, path, size=(640, 420))
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    image = QImage(str(path))
    assert (image.width(), image.height()) == (640, 420)
    # the picture is the viridis contour, not an empty canvas
    colors = {image.pixelColor(x, y).name() for x in range(0, 640, 37) for y in range(0, 420, 29)}
    assert len(colors) > 10
    with pytest.raises(OSError):
        save_contour_png(surface, trajs, tmp_path / "missing" / "c.png")


# ---------------------------------------------------------------------------- lifecycle


def test_closing_during_a_run_stops_the_worker_thread(qtbot):
    w = MainWindow(use_settings=False)
    qtbot.addWidget(w)
    w.show()
    cfg = RunConfig.from_preset(COURSE)
    from dataclasses import replace

    w.ctrl.set_config(replace(cfg, steps=10000))
    assert w.ctrl.is_busy()
    thread = w.ctrl.worker_thread
    assert thread.isRunning()
    w.close()
    assert not thread.isRunning()


def test_settings_are_remembered_and_corrupt_settings_fall_back(qtbot, user_settings):
    from PySide6.QtCore import QSettings

    first = MainWindow(use_settings=True)
    qtbot.addWidget(first)
    first.ctrl.set_steps(12)
    first.ctrl.set_run_color(first.ctrl.config.runs[0].run_id, "#00ff00")
    first.ctrl.set_run_enabled(first.ctrl.config.runs[1].run_id, False)
    first.close()

    second = MainWindow(use_settings=True)
    qtbot.addWidget(second)
    cfg = second.ctrl.config
    assert cfg.steps == 12 and cfg.runs[0].color == "#00ff00" and not cfg.runs[1].enabled
    second.close()

    QSettings("optgui", "optgui").setValue("config", "{not json")
    third = MainWindow(use_settings=True)
    qtbot.addWidget(third)
    assert third.ctrl.config == RunConfig.from_preset(COURSE)
    third.close()

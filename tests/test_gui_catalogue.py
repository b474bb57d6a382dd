"""GUI tests for issue 3's window parts: custom expressions, linear_regression's data set,
the presets, the step overlays, the whole optimizer catalogue and bad input everywhere.

pytest-qt, offscreen; waits on signals or conditions, never on sleeps."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from guihelpers import run_id, select, wait_idle
from PySide6.QtCore import Qt

from engine import REGISTRY, get_surface, parse_spec, run_trajectory
from engine.expression import surface_from_expression
from engine.functions import make_linear_regression
from optgui.mainwindow import MainWindow
from optgui.playground.config import CUSTOM, RunConfig
from optgui.playground.presets import GD_SGD_MINIBATCH, SAM_VS_GD

pytestmark = pytest.mark.gui


def choose_custom(window, qtbot) -> None:
    box = window.panel.surface_box
    with qtbot.waitSignal(window.ctrl.configChanged, timeout=10000):
        box.surface_combo.setCurrentIndex(box.surface_combo.findData(CUSTOM))
    wait_idle(qtbot, window)
    assert window.ctrl.config.surface == CUSTOM


def type_expression(window, qtbot, text: str) -> None:
    """Type like a user: clear the field, type, and let the debounce fire."""
    edit = window.panel.surface_box.expression_edit
    edit.setFocus()
    edit.selectAll()
    qtbot.keyClick(edit, Qt.Key.Key_Delete)
    qtbot.keyClicks(edit, text)


# ---------------------------------------------------------------------------- custom surface


def test_choosing_custom_starts_from_the_current_formula(window, qtbot):
    choose_custom(window, qtbot)
    cfg, box = window.ctrl.config, window.panel.surface_box
    assert cfg.expression == get_surface("quadratic").expression
    assert cfg.view == get_surface("quadratic").view  # the same box as before
    assert box.custom_box.isVisible() and not box.data_box.isVisible()
    assert box.expression_edit.text() == cfg.expression
    assert [s.value() for s in box.view_spins] == list(cfg.view)
    # same function, so the course runs give the same numbers on it
    traj = window.ctrl.trajectory(run_id(window, "gd"))
    np.testing.assert_allclose(traj.points[1], (-4.6, 1.2), rtol=1e-12)


def test_typing_a_valid_expression_changes_the_surface_and_reruns(window, qtbot):
    choose_custom(window, qtbot)
    text = "w1^2 + 3*w2^2 + sin(w1)"
    with qtbot.waitSignal(window.ctrl.computed, timeout=10000,
                          check_params_cb=lambda: window.ctrl.config.expression == text):
        type_expression(window, qtbot, text)
    wait_idle(qtbot, window)
    ctrl, box = window.ctrl, window.panel.surface_box
    assert ctrl.config.expression == text and ctrl.surface.expression == text
    assert "sin(w1)" in box.formula.text() and "∇f" in box.formula.text()
    assert "cos(w1)" in box.formula.text()  # the derived gradient is shown
    assert box.expression_message.isHidden()
    expected_surface = surface_from_expression(text, ctrl.config.view)
    for entry in ctrl.config.runs:
        expected = run_trajectory(expected_surface, entry.spec, ctrl.config.start,
                                  ctrl.config.steps)
        np.testing.assert_allclose(ctrl.trajectory(entry.run_id).points, expected.points,
                                   rtol=1e-12, atol=1e-12)
    assert window.contour.contours is not None
    assert window.contour.contours.xs[0] == ctrl.config.view[0]


@pytest.mark.parametrize(
    "text, fragment, column",
    [
        ("__import__('os')", "double underscores", 0),
        ("9**9**9", "too large", None),
        ("w1.real", "attribute access", 2),
        ("w1 + (w2", "", None),
        ("w1 +" * 200, "too long", None),
        ("lambda: 1", "", 0),
    ],
)
def test_invalid_expressions_show_a_message_and_keep_the_surface_and_runs(
    window, qtbot, text, fragment, column
):
    choose_custom(window, qtbot)
    ctrl, box = window.ctrl, window.panel.surface_box
    surface, config = ctrl.surface, ctrl.config
    trajectories = dict(ctrl.trajectories)
    with qtbot.waitSignal(ctrl.expressionRejected, timeout=10000) as blocker:
        type_expression(window, qtbot, text)
    got_text, message, position = blocker.args
    assert got_text == text.strip() and fragment in message
    if column is not None:
        assert position == column
    assert box.expression_message.isVisible()
    shown = box.expression_message.text()
    assert "Keeping" in shown
    assert "7a1f2b" in shown or position < 0  # the offending character is marked
    assert "ff6b6b" in box.expression_edit.styleSheet()
    wait_idle(qtbot, window)
    assert ctrl.surface is surface and ctrl.config == config
    assert dict(ctrl.trajectories) == trajectories  # the very same results: nothing re-ran
    # fixing the text clears the message
    with qtbot.waitSignal(ctrl.configChanged, timeout=10000):
        type_expression(window, qtbot, "w1^2 + w2^2")
    assert box.expression_message.isHidden()
    assert ctrl.config.expression == "w1^2 + w2^2"


def test_expressions_compile_off_the_gui_thread(window, qtbot):
    """The call returns before sympy has run: the surface changes only when it arrives."""
    choose_custom(window, qtbot)
    ctrl = window.ctrl
    before = ctrl.surface
    text = "+".join(f"w1^{i}*w2^{i}" for i in range(1, 12))  # a big symbolic gradient
    ctrl.set_expression(text)
    assert ctrl.surface is before and ctrl.is_busy()
    qtbot.waitUntil(lambda: ctrl.config.expression == text, timeout=20000)
    assert ctrl.surface is not before


def test_a_stale_expression_result_is_dropped(window, qtbot):
    choose_custom(window, qtbot)
    ctrl = window.ctrl
    ctrl.set_expression("w1^2 + 2*w2^2")
    ctrl.set_expression("w1^2 + 5*w2^2")  # typed on before the first arrived
    wait_idle(qtbot, window)
    assert ctrl.config.expression == "w1^2 + 5*w2^2"


def test_the_view_box_is_editable_for_custom_surfaces(window, qtbot):
    choose_custom(window, qtbot)
    box, ctrl = window.panel.surface_box, window.ctrl
    with qtbot.waitSignal(ctrl.configChanged, timeout=10000):
        box.view_spins[1].setValue(9.0)  # w1 max
    wait_idle(qtbot, window)
    assert ctrl.config.view == (-6.0, 9.0, -3.0, 3.0)
    assert tuple(ctrl.surface.view) == ctrl.config.view
    assert window.contour.contours.xs[-1] == 9.0
    # an empty box is refused inline; nothing changes
    box.view_spins[0].setValue(20.0)
    assert "smaller than its maximum" in box.expression_message.text()
    assert ctrl.config.view == (-6.0, 9.0, -3.0, 3.0)


def test_an_undefined_start_moves_to_a_defined_point(window, qtbot):
    choose_custom(window, qtbot)
    ctrl = window.ctrl
    ctrl.set_start(-2.0, 1.0)
    with qtbot.waitSignal(ctrl.configChanged, timeout=10000,
                          check_params_cb=lambda cfg: cfg.expression == "log(w1) + w2^2"):
        ctrl.set_expression("log(w1) + w2^2")
    wait_idle(qtbot, window)
    x, _ = ctrl.config.start
    assert x > 0  # log(w1) needs w1 > 0: no run is lost to an undefined start
    assert all(not ctrl.error(r.run_id) for r in ctrl.config.runs)


def test_custom_expression_survives_the_settings_round_trip(qtbot, user_settings):
    first = MainWindow(use_settings=True)
    qtbot.addWidget(first)
    text = "(w1 - 1)^2 + 4*(w2 + 0.5)^2"
    with qtbot.waitSignal(first.ctrl.configChanged, timeout=10000,
                          check_params_cb=lambda cfg: cfg.expression == text):
        first.ctrl.set_expression(text, (-3.0, 4.0, -2.0, 2.0))
    first.overlay_actions[0].setChecked(False)  # overlays are remembered too
    qtbot.waitUntil(lambda: not first.ctrl.is_busy(), timeout=10000)
    first.close()

    second = MainWindow(use_settings=True)
    qtbot.addWidget(second)
    cfg = second.ctrl.config
    assert (cfg.surface, cfg.expression, cfg.view) == (CUSTOM, text, (-3.0, 4.0, -2.0, 2.0))
    assert second.ctrl.surface.expression == text
    assert second.panel.surface_box.expression_edit.text() == text
    assert not second.overlay_actions[0].isChecked()
    assert not second.overlays.enabled["gradient"]
    second.close()


def test_run_config_json_round_trips_the_surface_options():
    cfg = replace(RunConfig.from_preset(), surface=CUSTOM, expression="w1^2 + w2^4",
                  view=(-2.0, 2.0, -1.0, 3.0), data=(20, 0.25, 7))
    back = RunConfig.from_json(cfg.to_json())
    assert back == cfg
    for bad in ('"w1.real"', '"__import__(1)"', '"9**9**9"'):
        text = cfg.to_json().replace('"w1^2 + w2^4"', bad)
        with pytest.raises(ValueError):
            RunConfig.from_json(text)
    with pytest.raises(ValueError):
        RunConfig.from_json(cfg.to_json().replace("[20, 0.25, 7]", "[0, 0.25, 7]"))
    with pytest.raises(ValueError):
        RunConfig.from_json(cfg.to_json().replace("[-2.0, 2.0, -1.0, 3.0]", "[2, -2, 0, 1]"))


# ---------------------------------------------------------------------------- linear regression


def test_linear_regression_options_change_the_data(window, qtbot):
    box, ctrl = window.panel.surface_box, window.ctrl
    with qtbot.waitSignal(ctrl.configChanged, timeout=5000):
        box.surface_combo.setCurrentIndex(box.surface_combo.findData("linear_regression"))
    wait_idle(qtbot, window)
    assert box.data_box.isVisible() and not box.custom_box.isVisible()
    assert (box.data_n.value(), box.data_noise.value(), box.data_seed.value()) == (64, 0.5, 0)
    old = ctrl.surface
    assert old.n_samples == 64
    with qtbot.waitSignal(ctrl.computed, timeout=5000):
        box.data_n.setValue(20)
    assert ctrl.surface.n_samples == 20 and ctrl.config.data == (20, 0.5, 0)
    expected = make_linear_regression(20, 0.5, 0)
    np.testing.assert_array_equal(ctrl.surface.x, expected.x)
    with qtbot.waitSignal(ctrl.computed, timeout=5000):
        box.data_seed.setValue(3)
    assert not np.array_equal(ctrl.surface.x, expected.x)
    with qtbot.waitSignal(ctrl.computed, timeout=5000):
        box.data_noise.setValue(2.0)
    expected = make_linear_regression(20, 2.0, 3)
    np.testing.assert_array_equal(ctrl.surface.y, expected.y)
    assert "20" in box.formula.text()  # the formula names the data set's size
    # runs are recomputed on the new data
    rid = run_id(window, "gd")
    np.testing.assert_allclose(
        ctrl.trajectory(rid).points,
        run_trajectory(expected, ctrl.config.run(rid).spec, ctrl.config.start, 30).points,
    )


# ---------------------------------------------------------------------------- presets


def test_gd_sgd_minibatch_preset(window, qtbot):
    window.actions_by_key["preset_gd_sgd_minibatch"].trigger()
    ctrl = window.ctrl
    assert ctrl.config == GD_SGD_MINIBATCH.config
    assert [str(r.spec) for r in ctrl.config.runs] == [
        "gd(lr=0.15)", "gd(lr=0.15,batch=1)", "gd(lr=0.15,batch=8)"]
    assert ctrl.config.surface == "linear_regression"
    wait_idle(qtbot, window)
    trajs = [ctrl.trajectory(r.run_id) for r in ctrl.config.runs]
    assert [len(t.batches[0]) if t.batches else 0 for t in trajs] == [0, 1, 8]
    fit = np.array(ctrl.surface.minima[0])
    gd, sgd, mini = (np.linalg.norm(t.points[-1] - fit) for t in trajs)
    assert gd < 0.01 < mini < sgd  # full batch at the fit, mini-batches closer than SGD
    assert ctrl.selected_run == ctrl.config.runs[1].run_id


def test_sam_vs_gd_preset(window, qtbot):
    window.actions_by_key["preset_sam_vs_gd"].trigger()
    ctrl = window.ctrl
    assert ctrl.config.surface == "sharp_flat"
    assert [str(r.spec) for r in ctrl.config.runs] == [
        "gd(lr=0.1)", "sam(base=gd(lr=0.1),rho=0.3)"]
    wait_idle(qtbot, window)
    surface = ctrl.surface
    gd, sam = (ctrl.trajectory(r.run_id) for r in ctrl.config.runs)
    np.testing.assert_allclose(gd.points[-1], surface.local_minima[0], atol=1e-5)  # sharp
    assert np.linalg.norm(sam.points[-1] - np.array(surface.minima[0])) < 0.1  # flat
    assert ctrl.selected_run == ctrl.config.runs[1].run_id
    assert window.overlays.enabled["sam"] and "perturbed" in window.overlays.segments
    assert not window.loss.log  # f < 0 here: a log axis would hide the curves


# ---------------------------------------------------------------------------- overlays


def line_data(window, key):
    x, y = window.overlays.arrows[key].data()
    return np.column_stack([x, y])


def test_overlay_arrows_match_the_trajectory_at_the_current_step(window):
    rid = select(window, "momentum")
    window.ctrl.set_step(3)
    traj = window.ctrl.trajectory(rid)
    w = traj.points[3]
    lr = 0.6
    np.testing.assert_allclose(line_data(window, "gradient"), [w, w - lr * traj.grads[3]])
    np.testing.assert_allclose(line_data(window, "update"), [w, traj.points[4]])
    np.testing.assert_allclose(line_data(window, "velocity"), [w, w - lr * traj.states[3].v])
    head = window.overlays.arrows["update"].head.pos()
    np.testing.assert_allclose([head.x(), head.y()], traj.points[4])
    assert window.overlays.arrows["gradient"].line.isVisible()
    # gradient descent has no velocity; its gradient arrow is its update
    rid = select(window, "gd")
    traj = window.ctrl.trajectory(rid)
    assert not window.overlays.arrows["velocity"].line.isVisible()
    np.testing.assert_allclose(line_data(window, "gradient"), line_data(window, "update"))
    # the Adam family's velocity is its first moment m
    rid = select(window, "adam")
    traj = window.ctrl.trajectory(rid)
    np.testing.assert_allclose(line_data(window, "velocity")[1],
                               traj.points[3] - 0.2 * traj.states[3].m)


def test_overlays_toggle_from_the_view_menu(window, qtbot):
    select(window, "momentum")
    window.ctrl.set_step(2)
    actions = {a.objectName(): a for a in window.overlay_actions}
    assert set(actions) == {"overlay-gradient", "overlay-update", "overlay-velocity",
                            "overlay-sam", "overlay-linesearch", "overlay-trust_region",
                            "overlay-curvature"}
    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    assert actions["overlay-gradient"] in view_menu.actions()
    arrow = window.overlays.arrows["gradient"]
    assert arrow.line.isVisible()
    actions["overlay-gradient"].trigger()
    assert not arrow.line.isVisible() and not arrow.head.isVisible()
    assert "gradient" not in window.overlays.segments
    labels = [label.text for _, label in window.overlays.legend.items]
    assert not any("gradient step" in t for t in labels)
    actions["overlay-gradient"].trigger()
    assert arrow.line.isVisible()
    assert any("gradient step" in label.text for _, label in window.overlays.legend.items)
    # keyboard shortcut
    qtbot.keyClick(window, Qt.Key.Key_U,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert not window.overlays.arrows["update"].line.isVisible()


def test_no_update_arrow_after_the_last_step_or_for_a_hidden_run(window):
    rid = select(window, "momentum")
    window.ctrl.to_end()
    assert "update" not in window.overlays.segments
    assert not window.overlays.arrows["update"].line.isVisible()
    assert window.overlays.arrows["gradient"].line.isVisible()
    window.ctrl.set_run_enabled(rid, False)
    assert window.overlays.segments == {}
    assert not any(a.line.isVisible() for a in window.overlays.arrows.values())


def test_overlays_of_a_diverged_run_stay_finite(window, qtbot):
    rid = select(window, "gd")
    with qtbot.waitSignal(window.ctrl.computed, timeout=5000):
        window.ctrl.set_run_spec(rid, parse_spec("gd(lr=1.2)"))
    traj = window.ctrl.trajectory(rid)
    assert traj.diverged
    window.ctrl.to_end()
    for key in window.overlays.segments:
        assert np.all(np.isfinite(line_data(window, key))) or key == "perturbed"
    assert "update" not in window.overlays.segments


def test_sam_overlay_shows_the_perturbed_point_of_the_state(window, qtbot):
    window.load_preset(SAM_VS_GD)
    wait_idle(qtbot, window)
    ctrl = window.ctrl
    sam = ctrl.trajectory(ctrl.config.runs[1].run_id)
    k = 5
    ctrl.set_step(k)
    state = sam.states[k + 1]  # the step about to be taken from w_k
    x, y = window.overlays.perturbed.getData()
    np.testing.assert_allclose([x[0], y[0]], state.perturbed_point)
    np.testing.assert_allclose(line_data(window, "ascent"), [sam.points[k], state.perturbed_point])
    np.testing.assert_allclose(
        line_data(window, "sam_gradient"),
        [state.perturbed_point, state.perturbed_point - 0.1 * state.g_sam])
    np.testing.assert_allclose(line_data(window, "update"), [sam.points[k], sam.points[k + 1]])
    # switching the SAM overlay off hides the point and both of its arrows
    next(a for a in window.overlay_actions if a.objectName() == "overlay-sam").trigger()
    assert not window.overlays.perturbed.isVisible()
    assert not window.overlays.arrows["ascent"].line.isVisible()
    assert not window.overlays.arrows["sam_gradient"].line.isVisible()


# ---------------------------------------------------------------------------- catalogue


def test_every_optimizer_can_be_added_from_the_picker_and_runs(window, qtbot):
    runs = window.panel.run_list
    runs._fill_add_menu()
    actions = {a.objectName(): a for a in runs.add_menu.actions()}
    for name, spec in REGISTRY.items():
        action = actions[f"add-{name}"]
        assert spec.summary in action.text()
        assert spec.rule in action.toolTip()  # the rule as its tooltip
        with qtbot.waitSignal(window.ctrl.computed, timeout=10000):
            action.trigger()
        entry = window.ctrl.config.runs[-1]
        assert entry.spec.name == name
        wait_idle(qtbot, window)
        traj = window.ctrl.trajectory(entry.run_id)
        assert traj is not None, window.ctrl.error(entry.run_id)
        assert traj.steps == 30 or traj.diverged
        window.ctrl.remove_run(entry.run_id)


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("gd(lr=1e9)", "out of range"),
        ("gd(lr=1" + "0" * 400 + ")", "too large"),
        ("gd(lr=nan)", "expected a value"),
        ("sam(base=gd(lr=0.1),rho=-1)", "out of range"),
        ("gd(batch=5)", ""),  # accepted by the parser; the run reports the surface problem
        ("x" * 5000, "too long"),
    ],
)
def test_bad_spec_text_never_loses_the_run(window, qtbot, text, fragment):
    rid = select(window, "gd")
    before = window.ctrl.trajectory(rid)
    form = window.panel.form
    form.spec_edit.setText(text)
    form.spec_edit.textEdited.emit(text)
    if fragment:
        assert fragment in form.message.text()
        assert str(window.ctrl.config.run(rid).spec) == "gd(lr=0.4)"
        assert window.ctrl.trajectory(rid) is before
    else:
        with qtbot.waitSignal(window.ctrl.errorOccurred, timeout=5000) as blocker:
            pass
        assert "batch=5 needs a surface built from a data set" in blocker.args[0]
        assert window.ctrl.config.run(rid) is not None
        assert "(error)" in window.panel.run_list.list.item(0).text()


def test_an_absurd_value_typed_into_a_spin_box_is_refused(window, qtbot):
    rid = select(window, "gd")
    spin = window.panel.form.findChild(object, "hyper-lr")
    spin.setFocus()
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin, "1e9")
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    assert "lr=1e9 is out of range" in window.panel.form.message.text()
    assert spin.value() == 0.4
    assert str(window.ctrl.config.run(rid).spec) == "gd(lr=0.4)"


def test_rules_are_laid_out_for_the_narrow_form():
    from engine import REGISTRY
    from optgui.playground.panel import narrow_rule

    for spec in REGISTRY.values():
        shown = narrow_rule(spec.rule)
        # nothing is lost: the same words in the same order
        assert shown.split() == spec.rule.split()
    rms = narrow_rule(REGISTRY["rmsprop"].rule).splitlines()
    assert "w ← w − η·g / (√s + ε)" in rms and "    torch (eps_in_sqrt=false)" in rms
    assert narrow_rule("short   (kept)") == "short   (kept)"

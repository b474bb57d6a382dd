"""GUI tests for issue 12: the second-order race preset, the line-search, trust-region and
curvature overlays, the line-search table in the inspector, the learning-rate strip and the
schedule options in the form. pytest-qt, offscreen; waits on conditions, never on sleeps."""

from __future__ import annotations

import numpy as np
import pytest
from guihelpers import run_id, select, wait_idle
from PySide6.QtWidgets import QComboBox

from engine import parse_spec
from engine.optimizers.linesearch import trials_of
from optgui.playground.presets import SECOND_ORDER_RACE
from optgui.playground.search_overlays import FAIL, PASS

pytestmark = pytest.mark.gui


def load_race(window, qtbot):
    window.actions_by_key["preset_second_order_race"].trigger()
    assert window.ctrl.config == SECOND_ORDER_RACE.config
    wait_idle(qtbot, window)


def test_second_order_race_preset(window, qtbot):
    load_race(window, qtbot)
    ctrl = window.ctrl
    assert [r.spec.name for r in ctrl.config.runs] == [
        "gd", "adam", "newton", "bfgs", "lbfgs", "cg", "lm"]
    assert ctrl.config.surface == "rosenbrock" and ctrl.config.start == (-1.2, 1.0)
    assert ctrl.selected_run == run_id(window, "bfgs")
    losses = {r.spec.name: ctrl.trajectory(r.run_id).losses[-1] for r in ctrl.config.runs}
    for name in ("newton", "bfgs", "cg", "lm"):
        assert losses[name] < 1e-10, name
    assert losses["gd"] > 1 and losses["adam"] > 1  # still in the valley after 100 steps


def test_line_search_overlay_marks_each_trial(window, qtbot):
    load_race(window, qtbot)
    rid = select(window, "bfgs")
    window.ctrl.set_step(0)
    search = window.overlays.search
    traj = window.ctrl.trajectory(rid)
    trials = trials_of(traj.states[1])
    geo = search.geometry
    assert len(geo.trials) == len(trials) >= 2  # step 1 overshoots first, then zooms
    d = traj.states[1].direction
    for (x, y, color, _), tr in zip(geo.trials, trials, strict=True):
        np.testing.assert_allclose((x, y), traj.points[0] + tr.t * d)
        assert color == (PASS if tr.armijo and tr.curvature else FAIL if not tr.armijo
                         else color)
    np.testing.assert_allclose(geo.accepted[:2], traj.points[1])
    assert len(search.trials.data) == len(trials) and search.accepted_label.isVisible()
    assert search.h_ellipse.isVisible() and search.true_ellipse.isVisible()
    actions = {a.objectName(): a for a in window.overlay_actions}
    actions["overlay-linesearch"].trigger()
    assert len(search.trials.data) == 0 and not search.direction.isVisible()
    actions["overlay-curvature"].trigger()
    assert not search.h_ellipse.isVisible()


def test_trust_region_overlay_and_inspector_table(window, qtbot):
    load_race(window, qtbot)
    ctrl = window.ctrl
    lm = run_id(window, "lm")
    ctrl.set_run_spec(lm, parse_spec("trust_region(radius=0.5)"))
    wait_idle(qtbot, window)
    select(window, "trust_region")
    ctrl.set_step(2)
    search = window.overlays.search
    state = ctrl.trajectory(lm).states[3]
    xs, ys = search.circle.getData()
    w = ctrl.trajectory(lm).points[2]
    np.testing.assert_allclose(np.hypot(xs - w[0], ys - w[1]), state.radius, rtol=1e-9)
    assert search.rho.isVisible() and f"{state.rho:.3g}" in search.rho.textItem.toPlainText()
    assert search.model.isVisible()
    # the inspector of a line-search run writes its trials as a table
    select(window, "bfgs")
    ctrl.set_step(1)
    rid = run_id(window, "bfgs")
    qtbot.waitUntil(lambda: getattr(window.inspector.page, "run_id", None) == rid
                    and window.inspector.page.step == 1, timeout=10000)
    text = window.inspector.page.text
    assert "Line search of step 1" in text and "◀ accepted" in text


def test_learning_rate_strip_shows_schedules_and_clipping(window, qtbot):
    load_race(window, qtbot)
    strip = window.lr_strip
    assert not strip.isVisible()  # no run schedules or clips
    assert strip._items == {}  # and no plot items are made for them
    adam = run_id(window, "adam")
    window.ctrl.set_run_spec(adam, parse_spec("adam(lr=0.05,schedule=cosine,clip_norm=5)"))
    wait_idle(qtbot, window)
    qtbot.waitUntil(strip.isVisible, timeout=5000)
    traj = window.ctrl.trajectory(adam)
    curve, marks = strip._items[adam]
    assert list(strip._items) == [adam]
    _, y = curve.getData()
    np.testing.assert_allclose(y, traj.lrs[1:])
    assert len(marks.data) == int(traj.clipped.sum()) > 0
    window.ctrl.set_run_spec(adam, parse_spec("adam(lr=0.05)"))
    wait_idle(qtbot, window)
    qtbot.waitUntil(lambda: not strip.isVisible(), timeout=5000)


def test_schedule_choice_shows_only_its_parameters(window, qtbot):
    rid = select(window, "adam")
    form = window.panel.form
    combo = form.findChild(QComboBox, "hyper-schedule")
    assert combo is not None and combo.currentText() == "none"
    assert "T_max" not in form._editors and "gamma" not in form._editors
    combo.setCurrentText("cosine")
    qtbot.waitUntil(lambda: "T_max" in form._editors, timeout=5000)
    assert window.ctrl.config.run(rid).spec.resolved()["schedule"] == "cosine"
    assert "gamma" not in form._editors and "clip_norm" in form._editors

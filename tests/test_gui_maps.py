"""The Maps dock: maps computed in a worker (coarse first), clicks sent to the race."""

import csv

import numpy as np
import pytest
from guihelpers import PNG_SIGNATURE, run_id, select, wait_idle
from PySide6.QtCore import QPoint, Qt

from engine import run_batch
from optgui.maps.view import BASIN_TEXT, PHASE_TEXT


def show_maps(window, qtbot, mode, size=12, steps=40):
    maps = window.maps
    maps.size.setValue(size)
    maps.steps.setValue(steps)
    maps.mode.setCurrentText(mode)
    with qtbot.waitSignal(maps.mapReady, timeout=20000) as blocker:
        window.maps_dock.toggleViewAction().trigger()
    return blocker.args[0]


def click_cell(qtbot, plot, row, col):
    pos = plot.cell_to_widget(row, col)
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(pos))


def test_basin_map_click_moves_the_start_point(window, qtbot):
    assert not window.maps._thread.isRunning()  # no thread until a map is asked for
    select(window, "adam")
    res = show_maps(window, qtbot, BASIN_TEXT)
    assert res.kind == "basin" and res.shape == (12, 12)
    assert str(res.request.spec) == str(window.ctrl.config.run(run_id(window, "adam")).spec)
    # the map is what the engine computes for those starts
    check = run_batch(window.ctrl.surface, res.request.spec, res.starts[:5], 40)
    np.testing.assert_array_equal(check.points, res.points[:5])
    plot = window.maps.plot
    x, y = res.setting(3, 8)["start"]
    with qtbot.waitSignal(window.ctrl.computed, timeout=10000):
        click_cell(qtbot, plot, 3, 8)
    assert window.ctrl.config.start == pytest.approx((x, y), abs=1e-5)
    wait_idle(qtbot, window)
    traj = window.ctrl.trajectory(run_id(window, "adam"))
    np.testing.assert_allclose(traj.points[0], (x, y), atol=1e-5)
    # moving the start does not recompute a basin map: only its mark moves
    assert not window.maps.is_busy()
    assert window.maps.plot.marker.data["x"][0] == pytest.approx(window.ctrl.config.start[0])


def test_phase_diagram_click_sets_the_hyperparameters(window, qtbot):
    rid = select(window, "gd")
    maps = window.maps
    res = show_maps(window, qtbot, PHASE_TEXT, size=10, steps=30)
    assert res.kind == "phase" and list(res.hypers) == ["lr"] and res.shape == (1, 10)
    lrs = res.hypers["lr"]
    assert lrs[0] == pytest.approx(0.04) and lrs[-1] == pytest.approx(4.0)  # the run's lr ÷×10
    with qtbot.waitSignal(window.ctrl.computed, timeout=10000):
        click_cell(qtbot, maps.plot, 0, 6)
    spec = window.ctrl.config.run(rid).spec
    assert spec.name == "gd" and spec.get("lr") == pytest.approx(lrs[6], rel=1e-5)
    assert not maps.is_busy()  # the swept value changed: same map, only the mark moved


def test_two_sweeps_coarse_first_and_export(window, qtbot, tmp_path):
    select(window, "momentum")
    maps = window.maps
    maps.mode.setCurrentText(PHASE_TEXT)
    maps.sweep2.setCurrentText("beta")
    maps.size.setValue(40)
    maps.steps.setValue(20)
    shapes = []
    maps.mapShown.connect(lambda r: shapes.append(r.shape))
    with qtbot.waitSignal(maps.mapReady, timeout=30000) as blocker:
        window.maps_dock.toggleViewAction().trigger()
    assert shapes == [(32, 32), (40, 40)]  # coarse first, then the size asked for
    res = blocker.args[0]
    assert res.shape == (40, 40) and list(res.hypers) == ["lr", "beta"]
    assert maps.export_csv(str(tmp_path / "m.csv"))
    rows = list(csv.DictReader(open(tmp_path / "m.csv", newline="")))
    assert len(rows) == 1600 and {"lr", "beta", "steps_to_tol", "minimum"} <= set(rows[0])
    assert maps.export_png(str(tmp_path / "m.png"))
    assert (tmp_path / "m.png").read_bytes()[:8] == PNG_SIGNATURE


def test_cancel_stops_the_map(window, qtbot):
    maps = window.maps
    maps.size.setValue(512)
    maps.steps.setValue(2000)
    maps.mode.setCurrentText(BASIN_TEXT)
    with qtbot.waitSignal(maps._worker.progress, timeout=20000):
        window.maps_dock.toggleViewAction().trigger()
        maps.compute()
    qtbot.waitUntil(lambda: maps.cancel_button.isEnabled(), timeout=5000)
    qtbot.mouseClick(maps.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not maps.is_busy(), timeout=20000)
    assert "Cancelled" in maps.summary.text()
    assert maps.result is None or maps.result.shape != (512, 512)
    window.close()
    assert not maps._thread.isRunning()  # closing the window stops the worker


def test_maps_settings_are_saved_as_they_change(qtbot, user_settings):
    from test_gui_settings import on_disk, open_window

    first = open_window(qtbot)
    first.maps.mode.setCurrentText(PHASE_TEXT)
    first.maps.size.setValue(64)
    first.maps.steps.setValue(321)
    qtbot.waitUntil(lambda: '321' in on_disk(user_settings).get("maps", ""),
                    timeout=3000)
    second = open_window(qtbot)  # the first never closed (a crash)
    assert second.maps.state() == {"mode": "phase", "size": 64, "steps": 321, "color": 0}
    for w in (first, second):
        w._use_settings = False
        w.close()

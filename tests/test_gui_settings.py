"""Nothing lost (issue 8 §5): the settings are on disk moments after a change, without a
clean quit, and the next window starts where the last one was, tab included."""

from __future__ import annotations

import configparser

import pytest
from guihelpers import wait_idle

pytestmark = pytest.mark.gui


def on_disk(folder) -> dict[str, str]:
    """The settings file as another process would read it now."""
    path = folder / "optgui" / "optgui.conf"
    if not path.exists():
        return {}
    parser = configparser.RawConfigParser(strict=False)
    parser.read(path, encoding="utf-8")
    return dict(parser["General"]) if parser.has_section("General") else {}


def open_window(qtbot):
    from optgui.mainwindow import MainWindow

    w = MainWindow(use_settings=True)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    wait_idle(qtbot, w)
    return w


def test_changes_are_written_without_closing_and_survive_a_crash(qtbot, user_settings):
    first = open_window(qtbot)
    first.panel.surface_box.steps.setValue(17)  # as typed into the Steps box
    qtbot.waitUntil(lambda: '\\"steps\\": 17' in on_disk(user_settings).get("config", ""),
                    timeout=3000)
    first.transport.speed.setValue(23)
    first.log_check.setChecked(False)
    first.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: on_disk(user_settings).get("tab") == "1", timeout=3000)
    saved = on_disk(user_settings)
    assert saved["speed"] == "23" and saved["logloss"] == "false"

    # the first window never closes cleanly (a crash): a new one starts where it was
    second = open_window(qtbot)
    assert second.ctrl.config.steps == 17
    assert second.transport.speed.value() == 23 and not second.loss.log
    assert second.tabs.currentWidget() is second.lab
    for w in (first, second):
        w._use_settings = False  # tear-down: closing the first must not overwrite anything
        w.close()


def test_the_tab_a_window_closes_on_is_where_the_next_one_opens(qtbot, user_settings):
    first = open_window(qtbot)
    first.tabs.setCurrentIndex(1)
    first.close()
    second = open_window(qtbot)
    assert second.tabs.currentIndex() == 1
    second.tabs.setCurrentIndex(0)
    second.close()
    third = open_window(qtbot)
    assert third.tabs.currentIndex() == 0
    third.close()


def test_dock_layout_changes_are_saved_too(qtbot, user_settings):
    first = open_window(qtbot)
    before = on_disk(user_settings).get("windowstate")
    first.view3d_dock.toggleViewAction().trigger()  # Ctrl+3
    qtbot.waitUntil(lambda: on_disk(user_settings).get("windowstate") not in (None, before),
                    timeout=3000)
    first._use_settings = False
    first.close()
    second = open_window(qtbot)
    assert second.view3d_dock.isVisible()
    second.close()

"""Layout from a projector to a large screen (issue 8 §4): the window fits 1024 × 700, its
parts never overlap, it never grows past its screen, and the tab bar never moves.

The offscreen test screen is 1920 × 1080 (conftest.py); a smaller screen is the window's
``available_area`` answering a smaller rectangle.
"""

from __future__ import annotations

import itertools

import pytest
from guihelpers import wait_idle

pytestmark = pytest.mark.gui


@pytest.fixture
def screen(monkeypatch):
    """screen(w, h): from now on the window's screen offers w × h pixels."""
    from PySide6.QtCore import QRect

    import optgui.mainwindow as mainwindow

    def set_size(width: int, height: int) -> None:
        monkeypatch.setattr(mainwindow, "available_area",
                            lambda widget: QRect(0, 0, width, height))

    return set_size


@pytest.fixture
def make_window(qtbot):
    """make_window(): a shown MainWindow without settings, its runs computed; closed after."""
    from optgui.mainwindow import MainWindow

    made = []

    def make(**kwargs):
        kwargs.setdefault("use_settings", False)
        w = MainWindow(**kwargs)
        qtbot.addWidget(w)
        w.show()
        qtbot.waitExposed(w)
        wait_idle(qtbot, w)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()
        assert not w.ctrl.worker_thread.isRunning()


def settle(qtbot, w) -> None:
    """Let the pending layout requests and deferred fixes run."""
    from PySide6.QtWidgets import QApplication

    for _ in range(3):
        QApplication.processEvents()
    qtbot.wait(10)


def plot_area(w):
    """The contour's plotting area (the view box, without axes and colour bar) in pixels."""
    return w.contour.getPlotItem().getViewBox().size()


def assert_apart(widgets) -> None:
    """No two of the visible widgets overlap (rectangles in their common parent)."""
    shown = [x for x in widgets if x.isVisible()]
    for a, b in itertools.combinations(shown, 2):
        ra, rb = a.geometry(), b.geometry()
        assert not ra.intersects(rb), f"{a!r} {ra.getRect()} overlaps {b!r} {rb.getRect()}"


def assert_transport_readable(w) -> None:
    bar = w.transport
    assert_apart([*bar.buttons.values(), bar.slider, bar.counter, bar.speed_label, bar.speed])
    assert bar.slider.isVisible() and bar.slider.width() >= 80
    assert bar.counter.width() >= bar.counter.sizeHint().width() - 12  # its text fits
    assert bar.speed.width() >= bar.speed.minimumSizeHint().width()
    assert bar.geometry().right() <= bar.parentWidget().width()


def assert_docks_clear_of_the_plots(w) -> None:
    central = w.page.centralWidget().geometry()
    for dock in (w.dock, w.inspector_dock, w.view3d_dock):
        if dock.isVisible() and not dock.isFloating():
            assert not dock.geometry().intersects(central), dock.windowTitle()
    assert w.tabs.geometry().right() < w.width()


def test_a_1024x700_screen_gets_a_fitting_window_with_a_large_contour(
        screen, make_window, qtbot):
    screen(1024, 700)
    w = make_window()
    settle(qtbot, w)
    frame = w.frameGeometry()  # the window with its frame
    assert frame.width() <= 1024 and frame.height() <= 700
    area = plot_area(w)
    assert area.width() >= 500 and area.height() >= 300, area
    loss = w.loss.getPlotItem().getViewBox().size()
    assert loss.height() >= 100, loss  # more than a strip of two tick labels
    assert_transport_readable(w)
    assert_docks_clear_of_the_plots(w)
    # the step inspector waits as a tab beside Setup, one click away; Setup is in front
    assert w.inspector_dock in w.page.tabifiedDockWidgets(w.dock)
    assert not w.dock.visibleRegion().isEmpty()
    assert w.inspector_dock.visibleRegion().isEmpty()


def test_a_window_resized_to_1024x700_keeps_every_part_readable(make_window, qtbot):
    w = make_window()  # a large screen: Setup left, inspector right
    assert w.inspector_dock.isVisible() and not w.page.tabifiedDockWidgets(w.dock)
    w.resize(1024, 700)
    settle(qtbot, w)
    assert (w.width(), w.height()) == (1024, 700)  # the window may be made this small
    assert_docks_clear_of_the_plots(w)
    assert_transport_readable(w)
    area = plot_area(w)
    assert area.width() >= 250 and area.height() >= 300, area


@pytest.mark.parametrize("size", [(1024, 700), (1440, 900), (1920, 1080)])
def test_the_3d_view_fits_beside_the_plots(size, screen, make_window, qtbot):
    screen(*size)
    w = make_window()
    w.view3d_dock.toggleViewAction().trigger()
    settle(qtbot, w)
    assert w.view3d_dock.isVisible()
    assert w.width() <= size[0] and w.height() <= size[1]
    assert_docks_clear_of_the_plots(w)
    assert_transport_readable(w)
    area = plot_area(w)
    assert area.width() >= 250 and area.height() >= 300, area


def test_switching_to_the_lab_and_back_never_grows_the_window(make_window, qtbot):
    w = make_window()
    before = w.size()
    for index in (1, 0, 1, 0):
        w.tabs.setCurrentIndex(index)
        settle(qtbot, w)
        assert w.size() == before, (index, w.size())


def test_the_lab_fits_a_1024x700_window(make_window, qtbot):
    w = make_window()
    w.tabs.setCurrentIndex(1)
    w.resize(1024, 700)
    settle(qtbot, w)
    assert (w.width(), w.height()) == (1024, 700)
    graphics = w.lab.graphics
    layout = graphics.ci
    assert layout.geometry().width() <= graphics.viewport().width()  # no plot cut off
    # the progress bar's text while training fits on it
    lab = w.lab
    lab.set_status("epoch 10/10 · 123,456 samples/s · 10:00 left")
    text = lab.progress.format().replace("%p", "100").replace("%%", "%")
    assert lab.progress.width() >= lab.progress.fontMetrics().horizontalAdvance(text) + 16
    # the gradient share of four optimizers fits under the plots
    shares = " &nbsp;&nbsp; ".join(
        f"<span>■ {name}</span> <b>1/3,000</b>"
        for name in ("sgd(lr=0.01)", "sgd(lr=0.01,momentum=0.9)", "rmsprop(lr=0.01)",
                     "adam(lr=0.01,beta1=0.9,beta2=0.999)"))
    lab.summary.setText("Share of the last layer's gradient that reaches layer 1 "
                        f"(latest epoch):&nbsp;&nbsp; {shares}")
    assert lab.summary.heightForWidth(lab.summary.width()) <= lab.summary.height()


def test_the_tab_bar_never_moves_and_no_command_slides_under_it(make_window, qtbot):
    from PySide6.QtWidgets import QApplication, QToolButton

    w = make_window()
    bar = w.tabs.tabBar()
    places = []
    for index in (0, 1, 0):
        w.tabs.setCurrentIndex(index)
        settle(qtbot, w)
        places.append(bar.mapTo(w, bar.rect().topLeft()))
        for tab in range(bar.count()):
            centre = bar.mapToGlobal(bar.tabRect(tab).center())
            under = QApplication.widgetAt(centre)
            assert under is bar, (index, tab, under)
    assert places[0] == places[1] == places[2]
    # the command that replaces the whole setup is nowhere near the tab bar in either tab
    course = next(b for b in w.findChildren(QToolButton)
                  if b.defaultAction() is w.actions_by_key["course"])
    assert not course.geometry().translated(course.parentWidget().mapTo(w, course.pos())
                                            - course.pos()).intersects(
        bar.geometry().translated(bar.parentWidget().mapTo(w, bar.pos()) - bar.pos()))


@pytest.mark.parametrize("screen_size, window_size", [
    ((1920, 1080), (1440, 900)), ((2560, 1440), (1920, 1080)), ((1366, 768), (1366, 768))])
def test_the_first_window_is_sized_to_its_screen_and_centred(
        screen_size, window_size, screen, make_window, qtbot):
    screen(*screen_size)
    w = make_window()
    settle(qtbot, w)
    frame = w.frameGeometry()
    assert abs(frame.width() - window_size[0]) <= 8 and abs(frame.height() - window_size[1]) <= 8
    assert abs(frame.center().x() - screen_size[0] // 2) <= 8
    assert abs(frame.center().y() - screen_size[1] // 2) <= 8
    assert (w.inspector_dock in w.page.tabifiedDockWidgets(w.dock)) == (screen_size[0] < 1280)


def test_a_window_never_outgrows_its_screen(screen, make_window, qtbot):
    w = make_window()
    screen(1024, 700)
    w.resize(1300, 800)  # e.g. a layout asking for more room than a small screen has
    settle(qtbot, w)
    assert w.width() <= 1024 and w.height() <= 700


def test_a_saved_geometry_larger_than_the_screen_is_not_restored(
        screen, make_window, qtbot, user_settings):
    first = make_window(use_settings=True)
    first.resize(1900, 1050)
    settle(qtbot, first)
    first.close()
    screen(1024, 700)
    second = make_window(use_settings=True)
    settle(qtbot, second)
    frame = second.frameGeometry()
    assert frame.width() <= 1024 and frame.height() <= 700
    assert frame.left() >= 0 and frame.top() >= 0
    assert frame.right() < 1024 and frame.bottom() < 700

"""Shared test set-up: Qt runs offscreen, and no test may leave a QThread running.

The fixtures shared by several test modules live here; PySide6 and the window are imported
inside the fixtures, so the engine-only tests never load Qt.
"""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
if os.environ["QT_QPA_PLATFORM"] == "offscreen":
    # a 1920 × 1080 desktop instead of Qt's 800 × 800 offscreen screen: the window fits itself
    # to its screen, and the tests of small screens say so themselves
    screen = ROOT / "tests" / "offscreen-screen.json"
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={screen}"
os.environ.setdefault("OPTGUI_NO_SETTINGS", "1")  # tests never read or write the user's settings
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _refuse_modal_dialogs(monkeypatch) -> None:
    """A modal message box in an offscreen test waits for a click that never comes, and the
    test hangs until its timeout: make an unexpected one fail at once, saying what it said.
    Tests that expect a dialog patch the method themselves (their patch comes later)."""
    from PySide6.QtWidgets import QMessageBox

    def refuse(kind):
        def box(parent, title, text, *args, **kwargs):
            raise AssertionError(f"unexpected modal {kind} dialog: {title}: {text}")
        return staticmethod(box)

    for kind in ("critical", "warning", "question", "information"):
        monkeypatch.setattr(QMessageBox, kind, refuse(kind))


@pytest.fixture
def window(qtbot, monkeypatch):
    """The course exercise in a shown, active window without settings, its runs computed.

    Closing it must stop the worker thread. An unexpected modal message box fails the test
    instead of hanging it.
    """
    from guihelpers import wait_idle

    _refuse_modal_dialogs(monkeypatch)

    from optgui.mainwindow import MainWindow

    w = MainWindow(use_settings=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow)
    wait_idle(qtbot, w)
    yield w
    w.close()
    assert not w.ctrl.worker_thread.isRunning()


@pytest.fixture
def user_settings(tmp_path):
    """Point QSettings' user scope at an empty temp folder, for the tests that do use settings
    (MainWindow(use_settings=True)): they must never read or write the user's real ones."""
    from PySide6.QtCore import QSettings

    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(tmp_path))
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path))
    QSettings("optgui", "optgui").clear()
    return tmp_path


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory) -> Path:
    """The toy IDX data set of tests/test_data.py (256 + 64 samples), written once a module."""
    from test_data import write_dataset

    folder = tmp_path_factory.mktemp("toy")
    write_dataset(folder)
    return folder


@pytest.fixture(scope="module")
def toy(toy_dir):
    """The toy data set loaded as the lab loads data (only from ``toy_dir``)."""
    from engine import data as D

    return D.load_fashion_mnist(toy_dir, app_dir=toy_dir / "no-app", system_dirs=(),
                                torchvision_roots=())


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for a module's tests (``pytest.mark.usefixtures``): the 2-core
    machine stays free for the other work, and timings do not depend on thread scheduling."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)

"""The vanishing-gradient lab tab, driven with pytest-qt offscreen on tiny IDX files.

The data set is the toy one of tests/test_data.py (256 + 64 samples, written here), the
network 2 × 16: a whole run takes a fraction of a second on one thread (plus the child
process's start, about a second: it imports torch). Tests wait on signals, never on
sleeps, and every fixture checks that no training process is left running. The child is a
separate process, so failures are injected into it with ``childhooks`` (a Prelude), not
with monkeypatch.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import childhooks
import pytest
from guihelpers import PNG_SIGNATURE
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QMessageBox
from test_data import NAMES, write_dataset

from engine import data as D
from engine.process import Prelude
from engine.training import CSV_COLUMNS, metrics_csv
from optgui.lab.tab import LabTab, _fraction, validate_spec

pytestmark = pytest.mark.gui
COURSE_LABELS = ["sgd(lr=0.01)", "sgd(lr=0.01,momentum=0.9)", "rmsprop(lr=0.01)",
                 "adam(lr=0.01,beta1=0.9,beta2=0.999)"]


@pytest.fixture(autouse=True)
def no_real_folders(monkeypatch, tmp_path):
    """The lab never finds or writes the machine's real data (app dir is a temp folder)."""
    monkeypatch.setenv(D.DATA_DIR_ENV, str(tmp_path / "app"))
    monkeypatch.setattr(D, "DEBIAN_DIR", tmp_path / "no-debian")
    real = D.candidate_folders

    def candidates(user_dir=None, **kw):
        kw.setdefault("torchvision_roots", ())
        return real(user_dir, **kw)

    monkeypatch.setattr(D, "candidate_folders", candidates)


@pytest.fixture(autouse=True)
def dialogs(monkeypatch):
    """Modal message boxes would block a test: record their texts instead."""
    shown: list[str] = []
    for name in ("critical", "information", "warning"):
        monkeypatch.setattr(QMessageBox, name, lambda *a, **k: shown.append(a[2]))
    return shown


@pytest.fixture
def lab(qtbot):
    tab = LabTab()
    tab.keep_spare = False  # a spare would import torch for tests that never train
    qtbot.addWidget(tab)
    tab.resize(1400, 800)
    tab.show()
    yield tab
    pids = [j.pid for j in (tab.job, tab.download_job, tab._spare) if j is not None]
    assert tab.shutdown(1000)
    assert not tab.is_running()
    for pid in pids:
        assert not process_exists(pid)


def process_exists(pid: int) -> bool:
    """True if ``pid`` is a live process (a reaped child is gone; a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[-1][:1] != "Z"
    except FileNotFoundError:
        return False


def hook(name: str, *args) -> Prelude:
    return Prelude("childhooks", name, args, path=childhooks.TESTS)


def configure(lab: LabTab, folder, *, epochs=2, **kw) -> None:
    s = lab.settings
    s.layers.setValue(kw.get("layers", 2))
    s.width.setValue(kw.get("width", 16))
    s.batch_size.setValue(kw.get("batch_size", 64))
    s.epochs.setValue(epochs)
    s.data_dir.setText(str(folder))
    s.dataFolderChanged.emit()


# Generous: the child process imports torch (a few seconds, far more on a loaded machine);
# a wait ends as soon as its signal comes.
START_TIMEOUT = 120_000


def run_to_end(qtbot, lab, timeout=START_TIMEOUT) -> None:
    with qtbot.waitSignal(lab.trainingFinished, timeout=timeout):
        assert lab.start()


def first_epoch(qtbot, lab) -> None:
    qtbot.waitUntil(lambda: len(lab.history.results) > 0, timeout=START_TIMEOUT)


# ---------------------------------------------------------------------------- settings


def test_defaults_are_the_course_four(lab):
    assert list(lab.settings.optimizers.labels()) == COURSE_LABELS
    config = lab.settings.config()
    assert (config.layers, config.width, config.activation, config.lr, config.batch_size,
            config.seed) == (5, 128, "sigmoid", 0.01, 512, 42)
    assert list(config.labels) == COURSE_LABELS
    lab.settings.lr.setValue(0.1)  # specs without lr follow the lab's lr
    assert lab.settings.optimizers.labels()[0] == "sgd(lr=0.1)"


@pytest.mark.parametrize("text, reason", [
    ("sgd(lr=x)", "expected a value for lr"),
    ("foo(lr=1)", "unknown optimizer 'foo'"),
    ("newton", "Hessian"),
    ("sgd", "already in the list"),
])
def test_bad_spec_is_rejected_inline(lab, qtbot, text, reason):
    opts = lab.settings.optimizers
    opts.list.setCurrentRow(-1)
    opts.edit.setText(text)
    assert opts.error.isVisibleTo(lab) and reason in opts.error.text()
    assert not opts.add_button.isEnabled()
    assert not opts.add_from_edit()
    assert opts.list.count() == 4
    opts.edit.setText("adam(lr=0.001)")
    assert not opts.error.isVisibleTo(lab) and opts.add_button.isEnabled()
    opts.add_button.click()
    assert opts.labels()[-1] == "adam(lr=0.001)"
    assert lab.settings.config().optimizers[-1] == "adam(lr=0.001)"


def test_edit_and_remove_an_optimizer(lab):
    opts = lab.settings.optimizers
    opts.list.setCurrentRow(1)
    assert opts.edit.text() == "sgd(momentum=0.9)"
    opts.edit.setText("sgd(momentum=0.5")  # unbalanced: inline error, nothing applied
    assert opts.error.isVisibleTo(lab) and not opts.apply_button.isEnabled()
    opts.edit.setText("sgd(momentum=0.5)")
    assert opts.apply_button.isEnabled()
    opts.apply_button.click()
    assert opts.labels()[1] == "sgd(lr=0.01,momentum=0.5)"
    opts.remove_button.click()
    assert opts.labels() == (COURSE_LABELS[0], COURSE_LABELS[2], COURSE_LABELS[3])


def test_gradient_share_reads_as_a_fraction():
    assert _fraction(0.00034) == "1/2,900"
    assert _fraction(0.11) == "1/9"
    assert _fraction(8.2e-9) == "1/1.2·10<sup>8</sup>"
    assert _fraction(2.0) == "2" and _fraction(0.0) == "0"


def test_validate_spec():
    assert validate_spec("adam", 0.5) == ("adam(lr=0.5)", "")
    label, reason = validate_spec("sgd(batch=8)", 0.01)
    assert label is None and "batch size" in reason


# ---------------------------------------------------------------------------- training


def test_start_streams_curves_for_every_optimizer(lab, qtbot, toy_dir):
    configure(lab, toy_dir, epochs=3)
    assert "Using" in lab.settings.located.text() and str(toy_dir) in lab.settings.located.text()
    run_to_end(qtbot, lab)
    h = lab.history
    assert h.finished is not None and not h.finished.stopped
    assert len(h.results) == 4 * 3
    assert lab.plots.optimizers == tuple(COURSE_LABELS)
    for i in range(4):
        for key in ("train_loss", "val_loss", "train_acc", "val_acc"):
            xs, ys = lab.plots.curves[key][i].getData()
            assert list(xs) == [1, 2, 3], key
        gx, gy = lab.plots.curves["grad_norms"][i].getData()
        assert list(gx) == [1, 2, 3]  # one point per linear layer (2 hidden + output)
        sx, _ = lab._stream_curves[i].getData()
        assert len(sx) > 3  # the train loss every few batches, not just per epoch
        # one colour per optimizer across all plots
        colours = {lab.plots.curves[k][i].opts["pen"].color().name() for k in
                   ("train_loss", "val_acc", "grad_norms")}
        assert len(colours) == 1
    assert lab.progress.value() == lab.progress.maximum()
    assert lab.status.startswith("Done: 3 epoch(s)")
    summary = lab.summary.text()
    assert "reaches layer 1" in summary and all(name in summary for name in COURSE_LABELS)
    x0, x1 = lab.plots.plots["val_acc"].getViewBox().viewRange()[0]
    assert x0 <= 0 and 3 <= x1 < 3.2  # the run's whole length from the start
    assert lab.state == "idle" and lab.start_button.isEnabled()


def test_progress_shows_rate_and_time_left(lab, qtbot, toy_dir):
    configure(lab, toy_dir, epochs=400)
    assert lab.start()
    qtbot.waitUntil(lambda: "samples/s" in lab.status
                    and lab.progress.value() > 0, timeout=START_TIMEOUT)
    assert "left" in lab.status and "epoch" in lab.status
    assert lab.progress.value() < lab.progress.maximum()
    with qtbot.waitSignal(lab.trainingFinished, timeout=5000):
        lab.stop()


def test_pause_and_resume(lab, qtbot, toy_dir):
    configure(lab, toy_dir, epochs=5000)
    assert lab.start()
    first_epoch(qtbot, lab)
    worker = lab.job
    with qtbot.waitSignal(lab.workerPaused, timeout=5000,
                          check_params_cb=lambda paused: paused):
        lab.pause_button.click()
    assert lab.state == "paused" and lab.pause_button.text() == "Resume"
    assert worker.is_waiting()  # blocked between two events, not advancing the generator
    assert "paused" in lab.status
    seen = len(lab.history.batches)
    assert lab.history.finished is None
    with qtbot.waitSignal(lab.workerPaused, timeout=5000,
                          check_params_cb=lambda paused: not paused):
        lab.pause_button.click()
    assert lab.state == "running" and lab.pause_button.text() == "Pause"
    qtbot.waitUntil(lambda: len(lab.history.batches) > seen + 5, timeout=10_000)
    assert not worker.is_waiting()
    with qtbot.waitSignal(lab.trainingFinished, timeout=5000):
        lab.stop()
    assert lab.history.finished.stopped


def test_stop_ends_within_a_second(lab, qtbot, toy_dir):
    configure(lab, toy_dir, epochs=5000)
    assert lab.start()
    first_epoch(qtbot, lab)
    pid = lab.job.pid
    with qtbot.waitSignal(lab.workerFinished, timeout=1000):
        lab.stop_button.click()
    qtbot.waitUntil(lambda: lab.state == "idle", timeout=1000)
    assert not process_exists(pid)
    assert lab.history.finished is not None and lab.history.finished.stopped
    assert lab.start_button.isEnabled() and lab.settings.isEnabled()


def test_stop_while_paused(lab, qtbot, toy_dir):
    configure(lab, toy_dir, epochs=5000)
    assert lab.start()
    first_epoch(qtbot, lab)
    pid = lab.job.pid
    with qtbot.waitSignal(lab.workerPaused, timeout=5000):
        lab.pause()
    with qtbot.waitSignal(lab.workerFinished, timeout=1000):
        lab.stop()
    qtbot.waitUntil(lambda: lab.state == "idle", timeout=1000)
    assert not process_exists(pid)


def test_closing_the_window_mid_training_ends_the_process(qtbot, toy_dir):
    from optgui.mainwindow import MainWindow

    w = MainWindow(use_settings=False)
    qtbot.addWidget(w)
    w.show()
    w.tabs.setCurrentWidget(w.lab)
    assert not w.dock.isVisible()  # the playground's dock hides while the lab is shown
    configure(w.lab, toy_dir, epochs=5000)
    assert w.lab.start()
    qtbot.waitUntil(lambda: len(w.lab.history.batches) > 0, timeout=START_TIMEOUT)
    pid = w.lab.job.pid
    assert process_exists(pid)
    w.close()  # returns within a second (Stop, then SIGTERM, then SIGKILL)
    assert not process_exists(pid)
    assert not w.lab.is_running() and not w.ctrl.worker_thread.isRunning()


def test_a_new_run_replaces_the_old_curves(lab, qtbot, toy_dir):
    configure(lab, toy_dir, epochs=1)
    run_to_end(qtbot, lab)
    lab.settings.optimizers.set_specs(["adam"])
    run_to_end(qtbot, lab)
    assert lab.plots.optimizers == ("adam(lr=0.01)",)
    assert [r.optimizer for r in lab.history.results] == ["adam(lr=0.01)"]


# ---------------------------------------------------------------------------- data and errors


def test_missing_file_is_named_and_download_offered(lab, qtbot, tmp_path):
    folder = tmp_path / "partial"
    write_dataset(folder)
    (folder / NAMES["test_labels"]).unlink()
    configure(lab, folder)
    assert "t10k-labels-idx1-ubyte" in lab.settings.located.text()
    assert not lab.start()
    assert "t10k-labels-idx1-ubyte" in lab.message_text()
    assert "download" in lab.message_text().lower()
    assert lab.download_button.isVisibleTo(lab)
    assert lab.job is None and lab.state == "idle"


def test_nothing_found_offers_the_download(lab):
    assert not lab.start()  # no folder chosen, nothing in the standard places
    assert "Fashion-MNIST not found" in lab.message_text()
    assert lab.download_button.isVisibleTo(lab)


def test_corrupt_file_is_a_message_not_a_crash(lab, qtbot, tmp_path):
    folder = tmp_path / "corrupt"
    write_dataset(folder)
    path = folder / NAMES["train_images"]
    path.write_bytes(path.read_bytes()[:5000])  # truncated
    configure(lab, folder)
    run_to_end(qtbot, lab)
    text = lab.message_text()
    assert str(path) in text and "truncated" in text
    assert lab.state == "idle" and lab.status == "failed"


def test_download_failure_shows_a_clear_message(lab, qtbot, tmp_path):
    lab.child_prelude = hook("serve_offline")
    assert not lab.start()
    lab.download_button.click()
    job = lab.download_job
    assert job is not None and lab.download_progress.isVisibleTo(lab)
    assert not lab.start_button.isEnabled()
    with qtbot.waitSignal(job.ended, timeout=START_TIMEOUT):
        pass
    text = lab.message_text()
    assert text.startswith("Download failed") and "no network here" in text
    assert "internet connection" in text and "train-images-idx3-ubyte.gz" in text
    assert not lab.download_progress.isVisibleTo(lab)
    assert lab.download_button.isVisibleTo(lab) and lab.start_button.isEnabled()
    raw = Path(D.app_data_dir()) / D.TORCHVISION_SUBDIR
    assert not any(raw.glob("*"))  # nothing half-written left behind


def test_download_success_finds_the_data(lab, qtbot, tmp_path):
    src = tmp_path / "served"
    write_dataset(src, compress=True)
    lab.child_prelude = hook("serve_folder", str(src))
    with qtbot.waitSignal(lab.download_button.clicked, timeout=1000):
        lab.download_button.click()
    with qtbot.waitSignal(lab.download_job.ended, timeout=START_TIMEOUT):
        pass
    assert "downloaded" in lab.message_text()
    assert "app data folder" in lab.settings.located.text()
    assert not lab.download_button.isVisibleTo(lab)


def test_out_of_memory_in_training_is_a_message(lab, qtbot, toy_dir):
    lab.child_prelude = hook("fail_in_evaluate", "oom")
    configure(lab, toy_dir)
    run_to_end(qtbot, lab)
    text = lab.message_text()
    assert "out of memory" in text and "smaller batch size" in text
    assert lab.state == "idle" and lab.start_button.isEnabled()


def test_unexpected_exception_in_training_is_a_message(lab, qtbot, toy_dir):
    lab.child_prelude = hook("fail_in_evaluate", "bug")
    configure(lab, toy_dir)
    run_to_end(qtbot, lab)
    assert lab.message_text() == "Training failed: ZeroDivisionError: a bug"


# ---------------------------------------------------------------------------- the process


def assert_survived(lab, qtbot, toy_dir, signame: str) -> None:
    """The lab names the signal, keeps the first epoch's curves, and trains again."""
    text = lab.message_text()
    assert "The training process" in text and signame in text, text
    assert "curves so far are kept" in text
    assert lab.state == "idle" and lab.start_button.isEnabled() and lab.settings.isEnabled()
    xs, _ = lab.plots.curves["val_loss"][0].getData()
    assert len(xs) >= 1  # what arrived before the death is still drawn
    lab.child_prelude = None
    configure(lab, toy_dir, epochs=1)
    run_to_end(qtbot, lab)
    assert lab.history.finished is not None and not lab.message_text()


def test_a_killed_training_process_is_named_and_start_works_again(lab, qtbot, toy_dir):
    configure(lab, toy_dir, epochs=5000)
    assert lab.start()
    first_epoch(qtbot, lab)
    pid = lab.job.pid
    with qtbot.waitSignal(lab.trainingFinished, timeout=10_000):
        os.kill(pid, signal.SIGKILL)
    assert lab.message_text().startswith("The training process was killed (SIGKILL)")
    assert not process_exists(pid)
    assert_survived(lab, qtbot, toy_dir, "SIGKILL")


def test_a_segfault_in_the_training_process_is_survived(lab, qtbot, toy_dir):
    lab.child_prelude = hook("crash_in_evaluate", 4)  # after the first epoch's four
    configure(lab, toy_dir, epochs=3)
    run_to_end(qtbot, lab)
    assert lab.message_text().startswith("The training process crashed (SIGSEGV")
    assert {r.epoch for r in lab.history.results} == {1}
    assert_survived(lab, qtbot, toy_dir, "SIGSEGV")


def test_the_window_process_never_imports_torch_and_the_child_never_imports_qt(
        toy_dir, tmp_path):
    """A real tiny lab run in a fresh window process (this test process has torch loaded by
    other tests): afterwards, torch is not in its sys.modules; the child had torch and no
    Qt."""
    child_modules = tmp_path / "child-modules.txt"
    script = f"""
import sys
sys.path.insert(0, {childhooks.TESTS!r})
from PySide6.QtCore import QTimer
from optgui.app import create_application
from optgui.mainwindow import MainWindow
from engine.process import Prelude
app = create_application()
w = MainWindow(use_settings=False)
w.show()
w.tabs.setCurrentWidget(w.lab)
lab = w.lab
lab.child_prelude = Prelude("childhooks", "record_modules", ({str(child_modules)!r},),
                            path={childhooks.TESTS!r})
s = lab.settings
s.layers.setValue(2); s.width.setValue(16); s.batch_size.setValue(64); s.epochs.setValue(2)
s.data_dir.setText({str(toy_dir)!r}); s.dataFolderChanged.emit()
lab.trainingFinished.connect(app.quit)
QTimer.singleShot(240_000, app.quit)
assert lab.start(), lab.message_text()
app.exec()
print("epochs", len({{r.epoch for r in lab.history.results}}), "message", repr(lab.message_text()))
print("torch-in-window", "torch" in sys.modules)
w.close()
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    assert proc.returncode == 0, proc.stderr
    assert "epochs 2 message ''" in proc.stdout, proc.stdout + proc.stderr
    assert "torch-in-window False" in proc.stdout
    child = set(child_modules.read_text().split())
    assert "torch" in child  # it really was the child that trained
    assert not {m for m in child if m.split(".")[0] in {"PySide6", "shiboken6", "pyqtgraph"}}


# ---------------------------------------------------------------------------- exports


def test_export_csv_and_pngs(lab, qtbot, toy_dir, tmp_path, dialogs):
    configure(lab, toy_dir, epochs=2)
    run_to_end(qtbot, lab)
    path = tmp_path / "metrics.csv"
    assert lab.export_csv(path)
    text = path.read_text()
    assert text == metrics_csv(lab.history.results, 3)  # the CLI's writer, same columns
    rows = list(csv.DictReader(text.splitlines()))
    assert tuple(rows[0])[:len(CSV_COLUMNS)] == CSV_COLUMNS
    assert list(rows[0])[-4:] == ["grad_norm_1", "grad_norm_2", "grad_norm_3", "note"]
    assert len(rows) == 8 and {r["optimizer"] for r in rows} == set(COURSE_LABELS)

    assert lab.export_all_png(tmp_path / "png")
    assert not dialogs
    pngs = sorted(p.name for p in (tmp_path / "png").iterdir())
    assert pngs == sorted(f"optgui-lab-{k}.png" for k in
                          ("all", "train_loss", "val_loss", "train_acc", "val_acc",
                           "grad_norms"))
    from optgui.lab.plots import color

    for name in pngs:
        assert (tmp_path / "png" / name).read_bytes().startswith(PNG_SIGNATURE)
        image = QImage(str(tmp_path / "png" / name))
        # slide shapes (not the plot's on-screen shape, such as 800 × 2021)
        expected = (1600, 900) if name == "optgui-lab-all.png" else (1280, 720)
        assert (image.width(), image.height()) == expected, name
        # the legend above the plots names every optimizer in its colour
        top = {image.pixelColor(x, y).name() for x in range(0, image.width(), 2)
               for y in range(0, 60)}
        assert {color(i) for i in range(len(COURSE_LABELS))} <= top, name


def test_the_right_click_export_writes_the_plot_under_the_mouse(lab, qtbot, toy_dir,
                                                                monkeypatch):
    configure(lab, toy_dir, epochs=1)
    run_to_end(qtbot, lab)
    written = []
    monkeypatch.setattr(lab, "export_plot_png", lambda key: written.append(key))
    monkeypatch.setattr(lab, "export_all_png", lambda: written.append("all"))
    scene = lab.graphics.scene()
    action = scene.contextMenu[0]
    assert action.text() == "Export PNG…"
    scene.contextMenuItem = lab.plots.plots["val_acc"].getViewBox()
    action.trigger()
    scene.contextMenuItem = lab.plots.plots["grad_norms"]
    action.trigger()
    scene.contextMenuItem = None
    action.trigger()
    assert written == ["val_acc", "grad_norms", "all"]


def test_export_error_is_a_dialog_and_leaves_nothing(lab, qtbot, toy_dir, tmp_path, dialogs):
    shown = dialogs
    configure(lab, toy_dir, epochs=1)
    run_to_end(qtbot, lab)
    target = tmp_path / "missing-folder" / "m.csv"
    assert not lab.export_csv(target)
    assert shown and "Could not write the metrics CSV" in shown[0]
    assert not target.exists()
    assert not lab.export_plot_png("grad_norms", tmp_path / "missing-folder" / "g.png")
    assert len(shown) == 2


def test_export_before_training_says_so(lab, tmp_path, dialogs):
    shown = dialogs
    assert not lab.export_csv(tmp_path / "m.csv")
    assert shown and "Train first" in shown[0]
    assert not (tmp_path / "m.csv").exists()


# ---------------------------------------------------------------------------- window


def test_shortcuts_switch_tabs_and_start_the_lab(window, qtbot, toy_dir):
    from PySide6.QtCore import Qt

    from optgui.mainwindow import SHORTCUTS

    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentWidget() is window.lab
    qtbot.keyClick(window, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentWidget() is window.page
    qtbot.keyClick(window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert window.lab.state == "idle"  # not from the playground
    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    configure(window.lab, toy_dir, epochs=5000)
    with qtbot.waitSignal(window.lab.stateChanged, timeout=5000):
        qtbot.keyClick(window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert window.lab.state == "running"
    first_epoch(qtbot, window.lab)
    with qtbot.waitSignal(window.lab.workerPaused, timeout=5000):
        window.lab.pause()
    qtbot.keyClick(window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert window.lab.state == "running"  # Ctrl+Return resumes a paused run
    with qtbot.waitSignal(window.lab.trainingFinished, timeout=10_000):
        window.lab.stop()
    listed = dict(SHORTCUTS)
    assert "Ctrl+1 / Ctrl+2" in listed and "Ctrl+Return" in listed  # F1's list


def test_lab_settings_are_saved_as_they_change_and_restored(qtbot, user_settings, toy_dir):
    from PySide6.QtCore import QSettings

    from optgui.mainwindow import MainWindow

    w = MainWindow(use_settings=True)
    qtbot.addWidget(w)
    s = w.lab.settings
    s.epochs.setValue(7)
    s.lr.setValue(0.05)
    s.activation.setCurrentText("relu")
    s.subset.setChecked(True)
    s.limit.setValue(2000)
    s.data_dir.setText(str(toy_dir))
    s.dataFolderChanged.emit()
    s.optimizers.set_specs(["adam", "sgd(momentum=0.5)"])
    w.tabs.setCurrentWidget(w.lab)
    # written shortly after the change, not only on a clean quit
    qtbot.waitUntil(lambda: '"epochs": 7' in str(QSettings("optgui", "optgui").value("lab")),
                    timeout=5000)
    saved = QSettings("optgui", "optgui").value("lab")
    assert '"sgd(momentum=0.5)"' in saved and str(toy_dir) in saved
    w2 = MainWindow(use_settings=True)  # a new start (the first window never closed: a crash)
    qtbot.addWidget(w2)
    s2 = w2.lab.settings
    assert s2.state() == s.state()
    assert s2.optimizers.labels() == ("adam(lr=0.05)", "sgd(lr=0.05,momentum=0.5)")
    assert w2.tabs.currentWidget() is w2.lab
    assert str(toy_dir) in s2.located.text()
    s2.set_state({"epochs": "many", "lr": -1, "optimizers": ["newton"], "width": 10**9})
    assert s2.state() == s.state()  # nonsense is skipped, never half-applied
    w.close()
    w2.close()


def test_an_out_of_range_learning_rate_says_so(lab, qtbot):
    from PySide6.QtCore import Qt

    lr = lab.settings.lr
    lr.setFocus()
    lr.lineEdit().selectAll()
    qtbot.keyClicks(lr.lineEdit(), "50")
    with qtbot.waitSignal(lab.messageShown, timeout=2000):
        qtbot.keyClick(lr.lineEdit(), Qt.Key.Key_Return)
    text = lab.message_text()
    assert text.startswith("Learning rate 50 is outside 1e-08 … 10; it stays 0.01"), text
    assert "sgd(lr=50)" in text
    assert lr.value() == 0.01


def test_streamed_batches_do_not_starve_the_other_plots(lab, monkeypatch):
    """"stream" is marked again by every batch event; the other plots still get their turn
    (they used to wait until streaming paused: epochs behind on a busy machine)."""
    from optgui.lab.tab import RENDER_ORDER

    drawn: list[str] = []
    monkeypatch.setattr(lab, "render_plot", drawn.append)
    lab._mark_dirty(RENDER_ORDER)
    for _ in range(2 * len(RENDER_ORDER)):
        lab._render_next()
        lab._mark_dirty(("stream",))  # a batch event arrived meanwhile
    assert set(drawn) == set(RENDER_ORDER), drawn
    lab._render_timer.stop()


def test_a_spare_process_is_ready_before_start_and_after_a_run(lab, qtbot, toy_dir):
    """While the lab is shown, one child waits (torch imported, data loaded): Start gives it
    the job instead of starting a process then."""
    lab.keep_spare = True
    lab.hide()
    lab.show()  # the lab is shown: a spare starts
    qtbot.waitUntil(lambda: lab._spare is not None, timeout=5000)
    spare = lab._spare.pid
    configure(lab, toy_dir, epochs=1)
    with qtbot.waitSignal(lab.trainingFinished, timeout=START_TIMEOUT):
        assert lab.start()
        assert lab.job.pid == spare and lab._spare is None
    qtbot.waitUntil(lambda: lab._spare is not None, timeout=5000)  # the next one
    assert lab._spare.pid != spare and not process_exists(spare)
    assert lab.history.finished is not None and not lab.history.finished.stopped


def test_a_diverged_optimizer_is_named_in_the_legend_and_kept_in_the_csv(lab, qtbot, toy_dir,
                                                                         tmp_path):
    diverging = "sgd(lr=1,noise=1000000)"  # weights ~1e6 per step: a ReLU net overflows
    configure(lab, toy_dir, epochs=2)
    lab.settings.activation.setCurrentText("relu")
    lab.settings.optimizers.set_specs(["adam", diverging])
    run_to_end(qtbot, lab)
    assert f"{diverging} diverged in epoch 1" in lab.message_text()
    legend = [label.text for _, label in lab.plots.legend.items]
    assert legend == ["adam(lr=0.01)", f"{diverging} (diverged)"]
    assert lab.export_csv(tmp_path / "m.csv")
    rows = list(csv.DictReader((tmp_path / "m.csv").open()))
    gone = [r for r in rows if r["optimizer"] == diverging]
    assert len(gone) == 1 and gone[0]["note"].startswith("diverged in epoch 1")
    with qtbot.waitSignal(lab.trainingFinished, timeout=START_TIMEOUT):
        assert lab.start()  # a new run: plainly named again until it diverges again
        assert [label.text for _, label in lab.plots.legend.items][1] == diverging
    assert [label.text for _, label in lab.plots.legend.items][1].endswith("(diverged)")


def test_a_backlog_of_events_reaches_the_window_in_slices(qtbot):
    """However many events wait (the window was busy), one turn of the event loop handles
    at most MAX_EVENTS_PER_SLICE of them: no long stall draining a backlog."""
    from optgui.lab.worker import MAX_EVENTS_PER_SLICE, ProcessJob

    job = ProcessJob(7, command=None)
    chunks: list[int] = []
    job.events.connect(lambda gen, events: chunks.append(len(events)))
    backlog = [("event", i) for i in range(5 * MAX_EVENTS_PER_SLICE + 3)]
    job._put(backlog[:10])  # the reader thread's wake-up is queued once...
    job._put(backlog[10:])  # ...however many lists arrive before the window looks
    qtbot.waitUntil(lambda: sum(chunks) == len(backlog), timeout=5000)
    assert max(chunks) <= MAX_EVENTS_PER_SLICE and len(chunks) >= 6


def test_all_plots_are_written_all_or_nothing(lab, qtbot, toy_dir, tmp_path, dialogs,
                                              monkeypatch):
    import errno
    import os

    import engine.export as X

    configure(lab, toy_dir, epochs=1)
    run_to_end(qtbot, lab)
    real, calls = os.write, []

    def full_disk_after_two(fd, data):
        calls.append(1)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    monkeypatch.setattr(X.os, "write", full_disk_after_two)
    folder = tmp_path / "png"
    assert not lab.export_all_png(folder)
    assert dialogs and "No space left on device" in dialogs[0]
    assert list(folder.iterdir()) == []  # not the first two pictures either


def test_an_empty_chosen_folder_is_named_and_the_download_goes_into_it(lab, qtbot, tmp_path):
    src = tmp_path / "served"
    write_dataset(src, compress=True)
    lab.child_prelude = hook("serve_folder", str(src))
    mine = tmp_path / "mine"
    mine.mkdir()
    configure(lab, mine)
    assert "holds no Fashion-MNIST files" in lab.settings.located.text()
    lab.download_button.click()
    with qtbot.waitSignal(lab.download_job.ended, timeout=START_TIMEOUT):
        pass
    raw = mine / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(p.name for p in src.iterdir())
    assert "user folder" in lab.settings.located.text()

"""The window's figure and animation exports: dialogs, progress, Cancel, right-click menu."""

import numpy as np
import pytest
from guihelpers import PNG_SIGNATURE
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QDialog

pytestmark = pytest.mark.gui


def test_figure_dialog_offers_sizes_themes_and_formats(qtbot):
    from optgui.playground.exporting import FigureDialog

    dialog = FigureDialog((700, 500), "loss")
    qtbot.addWidget(dialog)
    sizes = [dialog.size_box.itemData(i) for i in range(dialog.size_box.count())]
    assert {(1280, 720), (1920, 1080), (1024, 768), (700, 500)} <= set(sizes)
    assert not dialog.width_box.isEnabled()
    dialog.size_box.setCurrentIndex(sizes.index((1920, 1080)))
    dialog.theme_box.setCurrentIndex(dialog.theme_box.findData("light"))
    dialog.format_box.setCurrentIndex(dialog.format_box.findData("svg"))
    assert dialog.choices() == {"size": (1920, 1080), "theme": "light", "format": "svg",
                                "contents": "loss"}
    dialog.size_box.setCurrentIndex(dialog.size_box.count() - 1)  # Custom…
    assert dialog.width_box.isEnabled()
    dialog.width_box.setValue(1000)
    assert dialog.choices()["size"] == (1000, 1080)


def test_export_figure_light_at_the_current_step(window, tmp_path):
    window.ctrl.set_step(12)
    path = tmp_path / "fig.png"
    assert window.export_figure(str(path), size=(1280, 720), theme="light")
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    image = QImage(str(path))
    assert (image.width(), image.height()) == (1280, 720)
    assert min(image.pixelColor(5, 5).lightness(), image.pixelColor(1275, 715).lightness()) > 240

    from optgui.playground.exporting import window_scene
    from optgui.playground.figure import Figure

    figure = Figure(window_scene(window), (640, 360), "dark")
    figure.set_step(window.ctrl.step)
    assert figure.counter.text() == "step 12 / 30"
    # the lesson's title heads the figure (the surface's name when the lesson has none)
    assert figure.title.text() == (window.ctrl.setup.title or window.ctrl.surface.title)
    np.testing.assert_allclose(figure.contour.getPlotItem().vb.viewRange(),
                               window.contour.getPlotItem().vb.viewRange(), rtol=1e-6)
    figure.dispose()


def test_export_figure_through_the_dialog(window, tmp_path, monkeypatch):
    from optgui.playground import exporting

    def accept(dialog):
        dialog.format_box.setCurrentIndex(dialog.format_box.findData("pdf"))
        dialog.size_box.setCurrentIndex(dialog.size_box.findData((1024, 768)))
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(exporting.FigureDialog, "exec", accept)
    asked = []
    monkeypatch.setattr(window, "_ask_path",
                        lambda title, name, filters: asked.append((name, filters))
                        or str(tmp_path / "slide"))
    window.actions_by_key["export_figure"].trigger()
    assert asked == [("optgui-quadratic-figure.pdf", "PDF document (*.pdf)")]
    assert (tmp_path / "slide.pdf").read_bytes().startswith(b"%PDF-")


def test_export_animation_writes_every_step_with_progress(window, tmp_path):
    path = tmp_path / "race.gif"
    job = window.export_animation(str(path), size=(320, 200), theme="dark", format="gif",
                                  fps=8.0)
    assert job is not None and job.total == 31
    assert job.progress.value() == 31 and not job.progress.isVisible()
    from PIL import Image

    with Image.open(path) as im:
        assert im.n_frames == 31 and im.size == (320, 200)
    assert "Wrote 31 frames" in window.statusBar().currentMessage()


def test_cancel_leaves_nothing(window, tmp_path, qtbot):
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtWidgets import QPushButton

    def click_cancel():
        button = window.animation_export.progress.findChild(QPushButton)
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)

    # runs from the event loop that the export turns between two frames
    QTimer.singleShot(0, click_cancel)
    job = window.export_animation(str(tmp_path / "race.gif"), size=(320, 200), theme="light",
                                  format="gif")
    assert job.progress.wasCanceled()
    assert job.progress.value() < 31
    assert list(tmp_path.iterdir()) == []
    assert "cancelled" in window.statusBar().currentMessage()


def test_the_plots_right_click_menu_exports_that_plot(window, monkeypatch):
    from optgui.playground import exporting

    opened = []

    def reject(dialog):
        opened.append(dialog.contents_box.currentData())
        return QDialog.DialogCode.Rejected

    monkeypatch.setattr(exporting.FigureDialog, "exec", reject)
    for plot in (window.contour, window.loss):
        assert plot.getPlotItem().vb.menuEnabled()
        action = plot.scene().contextMenu[0]
        assert action.text() == "Export figure…"
        action.trigger()
    assert opened == ["contour", "loss"]


def test_frames_follow_the_window_overlays(window, tmp_path):
    """The selected run's overlays are in the frames when switched on, gone when off."""
    from optgui.playground.exporting import window_scene
    from optgui.playground.figure import Figure

    window.ctrl.set_step(3)
    on = Figure(window_scene(window), (640, 360)).rgb(3)
    for action in window.overlay_actions:
        action.setChecked(False)
    off = Figure(window_scene(window), (640, 360)).rgb(3)
    assert np.abs(on.astype(int) - off).sum(axis=2).astype(bool).mean() > 0.001

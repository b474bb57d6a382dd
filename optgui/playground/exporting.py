"""The window's figure and animation exports: the dialogs, and the progress of a long export.

Both draw with :class:`optgui.playground.figure.Figure` from a :class:`FigureScene` of the
window's state (runs, colours, selection, step, overlays that are on, log scale, zoom), so
what is exported is what the window shows, in the size and theme asked for.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressDialog,
    QSpinBox,
    QWidget,
)

from engine.animation import DEFAULT_FPS, Cancelled, frame_steps
from optgui.playground.figure import MAX_SIZE, MIN_SIZE, SIZE_PRESETS, FigureScene

FIGURE_FORMATS = {"png": "PNG picture (*.png)", "svg": "SVG vector drawing (*.svg)",
                  "pdf": "PDF document (*.pdf)"}
ANIMATION_FORMATS = {"gif": "Animated GIF (*.gif)", "mp4": "MP4 video (*.mp4)",
                     "frames": "PNG frames in a folder (frame_0000.png …)"}
CONTENTS = {"figure": "Figure: title, contour, loss plot and legend",
            "contour": "Contour plot and legend", "loss": "Loss plot and legend"}


def window_scene(window) -> FigureScene:
    """The window's current state as a figure scene."""
    ctrl = window.ctrl
    cfg = ctrl.config
    errors = {r.run_id: ctrl.error(r.run_id) for r in cfg.runs if ctrl.error(r.run_id)}
    overlays = getattr(window, "overlays", None)
    enabled = dict(overlays.enabled) if overlays is not None else {}
    window.contour.flush()  # a surface switched to just now: its view, not the last one's
    (x0, x1), (y0, y1) = window.contour.getPlotItem().vb.viewRange()
    setup = getattr(ctrl, "setup", None)  # the lesson document: its title heads the figure
    return FigureScene(
        ctrl.surface, cfg, dict(ctrl.trajectories), errors, ctrl.selected_run, enabled,
        window.loss.log, (x0, x1, y0, y1), str(getattr(setup, "title", "") or ""),
    )


class _OptionsDialog(QDialog):
    """Size (presets, the window's own, or custom), theme and format."""

    def __init__(self, title: str, formats: dict[str, str], window_size: tuple[int, int],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.form = QFormLayout(self)
        self.size_box = QComboBox()
        self.size_box.setToolTip("Picture size in pixels (16:9 for most slides, 4:3 for old "
                                 "projectors); text grows with the picture")
        for name, size in SIZE_PRESETS.items():
            self.size_box.addItem(name, size)
        self.size_box.addItem(f"As on screen ({window_size[0]}×{window_size[1]})", window_size)
        self.size_box.addItem("Custom…", None)
        self.width_box, self.height_box = QSpinBox(), QSpinBox()
        for box, value in ((self.width_box, 1280), (self.height_box, 720)):
            box.setRange(MIN_SIZE, MAX_SIZE)
            box.setValue(value)
            box.setSuffix(" px")
            box.setEnabled(False)
        custom = QHBoxLayout()
        custom.addWidget(self.width_box)
        custom.addWidget(QLabel("×"))
        custom.addWidget(self.height_box)
        self.size_box.currentIndexChanged.connect(self._size_changed)
        self.theme_box = QComboBox()
        self.theme_box.addItem("Dark (as on screen)", "dark")
        self.theme_box.addItem("Light (slides and print)", "light")
        self.format_box = QComboBox()
        for key, text in formats.items():
            self.format_box.addItem(text, key)
        self.form.addRow("Size:", self.size_box)
        self.form.addRow("", custom)
        self.form.addRow("Theme:", self.theme_box)
        self.form.addRow("Format:", self.format_box)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

    def _size_changed(self) -> None:
        size = self.size_box.currentData()
        for box in (self.width_box, self.height_box):
            box.setEnabled(size is None)
        if size is not None:
            self.width_box.setValue(size[0])
            self.height_box.setValue(size[1])

    def finish(self) -> None:
        self.form.addRow(self.buttons)

    def restore(self, settings: dict) -> None:
        for box, key in ((self.theme_box, "theme"), (self.format_box, "format")):
            index = box.findData(settings.get(key))
            if index >= 0:
                box.setCurrentIndex(index)
        size = settings.get("size")
        if size:
            index = self.size_box.findData(tuple(size))
            self.size_box.setCurrentIndex(index if index >= 0 else self.size_box.count() - 1)
            self.width_box.setValue(int(size[0]))
            self.height_box.setValue(int(size[1]))

    def size(self) -> tuple[int, int]:  # noqa: D401 - the chosen picture size
        return self.width_box.value(), self.height_box.value()

    def choices(self) -> dict:
        return {"size": self.size(), "theme": self.theme_box.currentData(),
                "format": self.format_box.currentData()}


class FigureDialog(_OptionsDialog):
    def __init__(self, window_size, contents: str = "figure", parent=None) -> None:
        super().__init__("Export figure", FIGURE_FORMATS, window_size, parent)
        self.contents_box = QComboBox()
        for key, text in CONTENTS.items():
            self.contents_box.addItem(text, key)
        self.contents_box.setCurrentIndex(self.contents_box.findData(contents))
        self.form.insertRow(0, "Contents:", self.contents_box)
        self.finish()

    def choices(self) -> dict:
        return {**super().choices(), "contents": self.contents_box.currentData()}


class AnimationDialog(_OptionsDialog):
    def __init__(self, window_size, last_step: int, fps: float = DEFAULT_FPS,
                 parent=None) -> None:
        super().__init__("Export animation", ANIMATION_FORMATS, window_size, parent)
        self.last_step = int(last_step)
        self.fps_box = QSpinBox()
        self.fps_box.setRange(1, 60)
        self.fps_box.setValue(max(1, min(60, round(fps))))
        self.fps_box.setSuffix(" frames/s")
        self.fps_box.setToolTip("Playback speed of the file (the window's speed by default)")
        self.every_box = QSpinBox()
        self.every_box.setRange(0, max(1, self.last_step))
        self.every_box.setSpecialValueText("auto")
        self.every_box.setToolTip("Draw every K-th step; auto: every step up to 300 steps, "
                                  "about 300 evenly spaced frames beyond")
        self.count_label = QLabel()
        self.count_label.setProperty("role", "hint")
        self.every_box.valueChanged.connect(self._update_count)
        self.fps_box.valueChanged.connect(self._update_count)
        self.form.addRow("Speed:", self.fps_box)
        self.form.addRow("Every K-th step:", self.every_box)
        self.form.addRow("", self.count_label)
        self._update_count()
        self.finish()

    def every(self) -> int | None:
        return self.every_box.value() or None

    def _update_count(self) -> None:
        n = len(frame_steps(self.last_step, self.every()))
        self.count_label.setText(f"{n} frames, {n / self.fps_box.value():.1f} s "
                                 f"(steps 0 … {self.last_step})")

    def choices(self) -> dict:
        return {**super().choices(), "fps": float(self.fps_box.value()), "every": self.every()}


class AnimationExport(QObject):
    """Render and write an animation with a modal progress dialog that can cancel it.

    Frames are drawn in the GUI thread (Qt paints widgets only there); between two frames
    the event loop runs, so the window repaints and Cancel answers at once. A cancelled or
    failed export leaves nothing behind (the writers are atomic).
    """

    frameWritten = Signal(int, int)  # done, total
    finished = Signal(bool, str)  # written, message

    def __init__(self, parent: QWidget, scene: FigureScene, kind: str, path, size, theme,
                 fps: float, every: int | None) -> None:
        super().__init__(parent)
        self.scene, self.kind, self.path = scene, kind, Path(path)
        self.size, self.theme, self.fps, self.every = size, theme, fps, every
        self.total = len(frame_steps(scene.last_step, every))
        self.progress = QProgressDialog(f"Writing {self.path.name}…", "Cancel", 0,
                                        self.total, parent)
        self.progress.setWindowTitle("Export animation")
        self.progress.setWindowModality(Qt.WindowModality.WindowModal)
        self.progress.setMinimumDuration(0)
        self.progress.setAutoClose(False)
        self.progress.setAutoReset(False)

    def _tick(self, done: int, total: int) -> bool:
        self.progress.setValue(done)
        self.progress.setLabelText(f"Writing {self.path.name}: frame {done} of {total}")
        self.frameWritten.emit(done, total)
        QApplication.processEvents()
        return not self.progress.wasCanceled()

    def run(self) -> bool:
        from optgui.playground.render import save_animation

        self.progress.show()
        try:
            count = save_animation(self.scene, self.kind, self.path, self.size, self.theme,
                                   self.fps, self.every, self._tick)
        except Cancelled:
            self.finished.emit(False, "Export cancelled; nothing was written")
            return False
        except Exception as exc:  # noqa: BLE001 - any failure becomes a message, not a crash
            self.finished.emit(False, f"Could not write {self.path}: {exc}")
            return False
        finally:
            self.progress.hide()  # (close() would count as Cancel and reset the bar)
        self.finished.emit(True, f"Wrote {count} frames to {self.path}")
        return True


# ---------------------------------------------------------------------------------- window
def _remembered(window, key: str) -> dict:
    import json

    try:
        value = json.loads(str(window._setting(f"export/{key}", "{}")))
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _remember(window, key: str, choices: dict) -> None:
    import json

    window._set_setting(f"export/{key}", json.dumps(choices))


def _screen_size(window) -> tuple[int, int]:
    return max(MIN_SIZE, window.contour.width()), max(MIN_SIZE, window.contour.height())


def export_figure(window, path=None, contents: str | None = None, **choices) -> bool:
    """File → Export figure…: ask for contents, size, theme and format (unless all are
    given), then for the file; write it atomically. Returns True when a file was written."""
    if path is None or not {"size", "theme"} <= set(choices):
        dialog = FigureDialog(_screen_size(window), contents or "figure", window)
        dialog.restore(_remembered(window, "figure"))
        if contents:
            dialog.contents_box.setCurrentIndex(dialog.contents_box.findData(contents))
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return False
        choices = {**dialog.choices(), **choices}
        _remember(window, "figure", {k: choices[k] for k in ("size", "theme", "format")})
    contents = choices.get("contents", contents) or "figure"
    fmt = choices.get("format") or (Path(path).suffix.lower().lstrip(".") if path else "png")
    if fmt not in FIGURE_FORMATS:
        fmt = "png"
    if path is None:
        path = window._ask_path("Export figure", window.default_filename(f"{contents}.{fmt}"),
                                FIGURE_FORMATS[fmt])
        if not path:
            return False
        if Path(path).suffix.lower() != f".{fmt}":
            path += f".{fmt}"

    def render() -> bytes:
        from optgui.playground.figure import Figure

        figure = Figure(window_scene(window), tuple(choices["size"]), choices["theme"],
                        contents)
        try:
            figure.set_step(window.ctrl.step)
            return figure.encode(fmt)
        finally:
            figure.dispose()

    return window._write(path, render, f"{fmt.upper()} figure")


def export_animation(window, path=None, **choices) -> AnimationExport | None:
    """File → Export animation…: ask for format, size, theme, speed and frames (unless
    given), then for the file or folder; returns the finished export (None if not
    started). Its ``finished(written, message)`` has been emitted by then."""
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    ctrl = window.ctrl
    ctrl.pause()
    if path is None or not {"size", "theme", "format"} <= set(choices):
        dialog = AnimationDialog(_screen_size(window), ctrl.max_step, ctrl.speed, window)
        dialog.restore(_remembered(window, "animation"))
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        choices = {**dialog.choices(), **choices}
        _remember(window, "animation", {k: choices[k] for k in ("size", "theme", "format")})
    kind = choices["format"]
    if kind == "mp4":
        try:
            import av  # noqa: F401
        except ImportError:
            QMessageBox.critical(window, "Export animation",
                                 "MP4 needs PyAV (pip install av); GIF and PNG frames work.")
            return None
    if path is None:
        if kind == "frames":
            folder = window._setting("lastExportDir", str(Path.cwd()))
            path = QFileDialog.getExistingDirectory(
                window, "Folder for the frames (frame_0000.png …)", folder)
        else:
            path = window._ask_path("Export animation",
                                    window.default_filename(f"race.{kind}"),
                                    ANIMATION_FORMATS[kind])
            if path and Path(path).suffix.lower() != f".{kind}":
                path += f".{kind}"
        if not path:
            return None
    job = AnimationExport(window, window_scene(window), kind, path, tuple(choices["size"]),
                          choices["theme"], float(choices.get("fps") or ctrl.speed),
                          choices.get("every"))
    job.finished.connect(lambda ok, message: window.statusBar().showMessage(message, 8000))
    job.finished.connect(lambda ok, message: ok or "cancelled" in message or
                         QMessageBox.critical(window, "Export failed", message))
    window.animation_export = job  # tests reach the progress dialog through this
    job.run()
    return job


def enable_plot_menus(window) -> None:
    """The plots' right-click menu: pyqtgraph's view menu (view all, axes, mouse mode),
    with its Export… opening the figure dialog for that plot (sizes, light/dark, SVG/PDF)."""
    for plot, contents in ((window.contour, "contour"), (window.loss, "loss")):
        plot.getPlotItem().setMenuEnabled(False, enableViewBoxMenu=True)
        action = plot.scene().contextMenu[0]
        action.triggered.disconnect()
        action.setText("Export figure…")
        action.triggered.connect(lambda _=False, c=contents: export_figure(window, contents=c))

"""The window's lesson files: File → New / Open… / Save / Save As… / Open Recent, Edit →
Undo / Redo, the Notes dock, drag-and-drop of ``.optgui`` files and the title bar.

A lesson (engine.lesson) is read and validated completely before anything is applied; a bad
one gets a dialog and changes nothing. Applying a lesson, a preset or New is one undo step
(the controller's ``load_setup``); the view settings a lesson carries (selection, step,
overlays, log scale, speed, view box, the lab's settings, hidden panels) follow it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, QUrl
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QStackedWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from engine.lesson import (
    LAB_KEYS,
    OVERLAYS,
    SUFFIX,
    Lesson,
    LessonError,
    load_lesson,
    save_lesson,
)
from engine.presets import COURSE
from optgui.playground.config import MAX_GUI_STEPS, config_from_lesson, lesson_fields
from optgui.playground.undo import Setup

FILTER = f"optgui lessons (*{SUFFIX})"
MAX_RECENT = 8
NO_NOTES = ("<p style='color:gray'>No notes for this lesson. Click <b>Edit</b> to write "
            "some (Markdown), then File → Save.</p>")


class NotesPanel(QWidget):
    """The lesson's title and Markdown notes: rendered, or edited after a click on Edit."""

    def __init__(self, ctrl, parent=None) -> None:
        super().__init__(parent)
        self.ctrl = ctrl
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        top = QHBoxLayout()
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.title.setProperty("role", "title")
        font = self.title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.title.setFont(font)
        self.edit_button = QPushButton("Edit")
        self.edit_button.setCheckable(True)
        self.edit_button.setToolTip("Write the lesson's title and notes (Markdown); click "
                                    "Done to keep them (undoable)")
        self.edit_button.toggled.connect(self._editing)
        top.addWidget(self.title, 1)
        top.addWidget(self.edit_button, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(top)

        self.stack = QStackedWidget()
        self.view = QTextBrowser()
        self.view.setOpenExternalLinks(True)
        self.stack.addWidget(self.view)
        editor = QWidget()
        form = QVBoxLayout(editor)
        form.setContentsMargins(0, 0, 0, 0)
        self.title_edit = QLineEdit()
        self.title_edit.setPlaceholderText("Title of the lesson")
        self.notes_edit = QPlainTextEdit()
        self.notes_edit.setPlaceholderText("Notes in Markdown: # headings, **bold**, lists, "
                                           "1. questions …")
        form.addWidget(self.title_edit)
        form.addWidget(self.notes_edit, 1)
        self.stack.addWidget(editor)
        layout.addWidget(self.stack, 1)
        ctrl.documentChanged.connect(self.refresh)
        self._shown_notes: str | None = None
        self.refresh()

    def refresh(self) -> None:
        setup = self.ctrl.setup
        self.title.setText(setup.title or "Untitled lesson")
        if setup.notes != self._shown_notes:  # every edit changes the document, rarely the notes
            self._shown_notes = setup.notes
            if setup.notes.strip():
                self.view.setMarkdown(setup.notes)
            else:
                self.view.setHtml(NO_NOTES)
        if self.edit_button.isChecked():
            if self.title_edit.text() != setup.title:
                self.title_edit.setText(setup.title)
            if self.notes_edit.toPlainText() != setup.notes:
                self.notes_edit.setPlainText(setup.notes)

    def _editing(self, on: bool) -> None:
        self.edit_button.setText("Done" if on else "Edit")
        if on:
            self.title_edit.setText(self.ctrl.setup.title)
            self.notes_edit.setPlainText(self.ctrl.setup.notes)
            self.stack.setCurrentIndex(1)
            self.notes_edit.setFocus()
        else:
            self.ctrl.set_notes(self.title_edit.text().strip(), self.notes_edit.toPlainText())
            self.stack.setCurrentIndex(0)
            self.refresh()


class LessonFiles(QObject):
    """Lesson files, undo and notes for a :class:`optgui.mainwindow.MainWindow`."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.w = window
        self.ctrl = window.ctrl
        self._hidden: tuple[str, ...] = ()  # panels the current lesson hid
        self._baseline_path = None  # the file whose shown settings _shown_saved holds
        self._shown_saved: tuple | None = None
        self._recent_memory: list[str] = []  # without settings (tests), recent files live here
        self._build_actions()
        self._build_notes_dock()
        window.setAcceptDrops(True)
        window.installEventFilter(self)
        self.ctrl.documentChanged.connect(self.update_title)
        course = COURSE.lesson
        if not self.ctrl.setup.title and self.ctrl.config == config_from_lesson(course):
            # the window opens on the course exercise: show it as that lesson, notes and all
            self.ctrl.reset_document(Setup(self.ctrl.config, course.title, course.notes))
        self.update_title()

    # ------------------------------------------------------------------ building
    def _build_actions(self) -> None:
        w, A = self.w, self.w._action
        A("new_lesson", "New lesson", self.new_lesson, QKeySequence.StandardKey.New,
          "Start a new lesson from the course exercise (undoable)")
        A("open_lesson", "Open lesson…", lambda: self.open_lesson(),
          QKeySequence.StandardKey.Open, f"Open a lesson file ({SUFFIX})")
        A("save_lesson", "Save lesson", lambda: self.save(), QKeySequence.StandardKey.Save,
          "Save the whole setup, the notes and what is shown as a lesson file")
        A("save_lesson_as", "Save lesson as…", lambda: self.save_as(), "Ctrl+Shift+S",
          "Save the lesson under a new name")
        stack = self.ctrl.undo_stack
        undo = stack.createUndoAction(w, "&Undo")
        undo.setShortcut(QKeySequence(QKeySequence.StandardKey.Undo))
        redo = stack.createRedoAction(w, "&Redo")
        redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        for key, action, tip in (("undo", undo, "Undo the last setup change (Ctrl+Z)"),
                                 ("redo", redo, "Redo the setup change undone (Ctrl+Shift+Z)")):
            action.setObjectName(key)
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.setToolTip(tip)
            action.setStatusTip(tip)
            w.addAction(action)
            w.actions_by_key[key] = action
        self.recent_menu = QMenu("Open recent", w)
        self.recent_menu.setObjectName("recentLessons")
        self.recent_menu.aboutToShow.connect(self._fill_recent)

    def _build_notes_dock(self) -> None:
        """The Notes dock (in the playground's page, where the other docks live)."""
        self.notes = NotesPanel(self.ctrl)
        page = getattr(self.w, "page", self.w)
        dock = QDockWidget("Notes", page)
        dock.setObjectName("notesDock")
        dock.setWidget(self.notes)
        dock.setMinimumWidth(240)
        dock.toggleViewAction().setShortcut(QKeySequence("Ctrl+Shift+N"))
        dock.toggleViewAction().setToolTip("The lesson's title and notes (Ctrl+Shift+N)")
        page.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        self.notes_dock = dock

    def place_notes_dock(self) -> None:
        """Make the Notes dock a tab beside the step inspector, wherever the window's first
        layout put that (the right-hand column, or beside Setup in a narrow window)."""
        inspector = getattr(self.w, "inspector_dock", None)
        if inspector is not None:
            getattr(self.w, "page", self.w).tabifyDockWidget(inspector, self.notes_dock)
            inspector.raise_()
        self._watch_shown()

    def _watch_shown(self) -> None:
        """Overlays, log scale, speed and the lab's settings are saved in a lesson too (but
        are not undo steps): a change to them marks an open lesson file as modified."""
        w = self.w
        for action in [*getattr(w, "overlay_actions", []), w.actions_by_key["log_loss"]]:
            action.toggled.connect(self.update_title)
        w.transport.speed.valueChanged.connect(self.update_title)
        if getattr(w, "lab", None) is not None:
            w.lab.settings.changed.connect(self.update_title)

    def fill_file_menu(self, menu: QMenu) -> None:
        """New, Open, Open recent, Save, Save as, at the top of ``menu``."""
        a = self.w.actions_by_key
        first = menu.actions()[0] if menu.actions() else None
        for item in ("new_lesson", "open_lesson", self.recent_menu, "save_lesson",
                     "save_lesson_as", None):
            if item is None:
                menu.insertSeparator(first)
            elif isinstance(item, QMenu):
                menu.insertMenu(first, item)
            else:
                menu.insertAction(first, a[item])

    def fill_edit_menu(self, menu: QMenu) -> None:
        menu.addAction(self.w.actions_by_key["undo"])
        menu.addAction(self.w.actions_by_key["redo"])

    # ------------------------------------------------------------------ title bar
    def display_name(self) -> str:
        path = self.ctrl.document.path
        return path.name if path else (self.ctrl.setup.title or "Untitled")

    def update_title(self, *_) -> None:
        path = self.ctrl.document.path
        if path != self._baseline_path:  # another file (opened, saved as, an undo)
            self._baseline_path, self._shown_saved = path, self._shown()
        self.w.setWindowTitle(f"{self.display_name()}[*] — optgui")
        self.w.setWindowModified(self.modified())

    def _shown(self) -> tuple | None:
        """What a lesson keeps besides the setup that changes without an undo step."""
        if not hasattr(self.w, "overlays") or not hasattr(self.w, "transport"):
            return None  # the window is still being built
        lesson = self.current_lesson()
        return lesson.overlays, lesson.log_scale, lesson.speed, lesson.lab, lesson.hidden_panels

    def _mark_shown_saved(self) -> None:
        self._baseline_path, self._shown_saved = self.ctrl.document.path, self._shown()
        self.update_title()

    def modified(self) -> bool:
        """The setup, title or notes changed, or (in a lesson file) what is shown."""
        doc = self.ctrl.document
        return doc.modified or (doc.path is not None and self._shown_saved is not None
                                and self._shown() != self._shown_saved)

    # ------------------------------------------------------------------ the current lesson
    def current_lesson(self) -> Lesson:
        """Everything the window shows, as a lesson (what Save writes)."""
        w, ctrl = self.w, self.ctrl
        ids = [r.run_id for r in ctrl.config.runs]
        selected = ids.index(ctrl.selected_run) if ctrl.selected_run in ids else None
        overlays = tuple(k for k in OVERLAYS if w.overlays.enabled.get(k))
        return Lesson(
            **lesson_fields(ctrl.config), selected=selected, step=ctrl.step,
            view=self._view_box(), overlays=overlays, log_scale=bool(w.loss.log),
            speed=float(ctrl.speed), lab=self._lab_values(), title=ctrl.setup.title,
            notes=ctrl.setup.notes, hidden_panels=self._hidden)

    def _view_box(self):
        """The contour plot's visible box, or None when it shows the whole surface."""
        self.w.contour.flush()  # a surface switched to just now is drawn in the next pass
        contours = self.w.contour.contours
        (x0, x1), (y0, y1) = self.w.contour.getViewBox().viewRange()
        box = (float(x0), float(x1), float(y0), float(y1))
        if contours is not None:
            full = (float(contours.xs[0]), float(contours.xs[-1]), float(contours.ys[0]),
                    float(contours.ys[-1]))
            span = max(full[1] - full[0], full[3] - full[2])
            if all(abs(a - b) <= 1e-6 * span for a, b in zip(box, full, strict=True)):
                return None
        return tuple(float(f"{v:.6g}") for v in box)

    def _lab_values(self) -> dict | None:
        lab = getattr(self.w, "lab", None)
        if lab is None:
            return None
        try:
            config = lab.settings.config()
        except ValueError:
            return None  # the lab's form holds something unusable: leave it out
        return {key: getattr(config, key) for key in LAB_KEYS}

    # ------------------------------------------------------------------ applying a lesson
    def apply_lesson(self, lesson: Lesson, label: str, path=None) -> bool:
        """Make ``lesson`` the document (one undo step); False and a dialog if it cannot be
        shown here, with nothing changed. ``path`` is its file (None: untitled)."""
        w, ctrl = self.w, self.ctrl
        if lesson.steps > MAX_GUI_STEPS:
            self._refuse(f"the lesson has {lesson.steps:,} steps; the window shows at most "
                         f"{MAX_GUI_STEPS:,} (the command line runs it: export --lesson)")
            return False
        config = config_from_lesson(lesson)
        try:
            ctrl.load_setup(Setup(config, lesson.title, lesson.notes), label, path=path)
        except ValueError as exc:
            self._refuse(str(exc))
            return False
        if lesson.selected is not None and config.runs:
            ctrl.select_run(config.runs[lesson.selected].run_id)
        for action in getattr(w, "overlay_actions", []):
            action.setChecked(action.objectName().removeprefix("overlay-") in lesson.overlays)
        w._log_toggled(lesson.log_scale)
        w.transport.speed.setValue(max(1, min(round(lesson.speed), 2000)))
        ctrl.set_speed(lesson.speed)
        if lesson.lab is not None:
            self._apply_lab(lesson.lab)
        ctrl.set_step(lesson.step)
        w.contour.flush()  # the lesson's surface, drawn now: its view box goes on it
        if lesson.view is None:
            w.contour.reset_view()
        else:
            x0, x1, y0, y1 = lesson.view
            w.contour.getViewBox().setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0.0)
        self._hide_panels(lesson.hidden_panels)
        if lesson.notes.strip():
            self.notes_dock.show()
            self.notes_dock.raise_()
        w.statusBar().showMessage(f"{label}: {lesson.title or self.display_name()}", 6000)
        self._mark_shown_saved()
        return True

    def _apply_lab(self, values) -> None:
        lab = getattr(self.w, "lab", None)
        if lab is None:
            return
        if lab.is_running():
            self.w.statusBar().showMessage(
                "The lab is training: its settings were left as they are", 8000)
            return
        lab.settings.apply(values)

    def _panels(self) -> dict:
        w = self.w
        from PySide6.QtWidgets import QToolBar

        toolbar = w.findChild(QToolBar, "mainToolbar")
        loss_box = w.splitter.widget(1) if hasattr(w, "splitter") else None
        return {"setup": w.dock, "inspector": w.inspector_dock, "view3d": w.view3d_dock,
                "loss": loss_box, "transport": w.transport, "toolbar": toolbar, "lab": None}

    def _hide_panels(self, hidden: tuple[str, ...]) -> None:
        """Show again what the previous lesson hid, then hide what this one asks."""
        panels = self._panels()
        for name in self._hidden:
            if name == "lab":
                self.w.tabs.setTabVisible(self.w.tabs.indexOf(self.w.lab), True)
            elif panels.get(name) is not None:
                panels[name].show()
        for name in hidden:
            if name == "lab":
                self.w.tabs.setTabVisible(self.w.tabs.indexOf(self.w.lab), False)
            elif panels.get(name) is not None:
                panels[name].hide()
        self._hidden = tuple(hidden)

    def _refuse(self, message: str) -> None:
        QMessageBox.warning(self.w, "Cannot open the lesson", message)

    # ------------------------------------------------------------------ commands
    def load_preset_lesson(self, lesson: Lesson, title: str) -> bool:
        """A built-in lesson (Run menu) as a new, untitled document: one undo step."""
        return self.apply_lesson(lesson, f"Load {title}", path=None)

    def new_lesson(self) -> bool:
        if not self.confirm_discard():
            return False
        blank = replace(COURSE.lesson, title="", notes="", overlays=(), hidden_panels=(),
                        lab=None)
        return self.apply_lesson(blank, "New lesson", path=None)

    def open_lesson(self, path: str | None = None) -> bool:
        if not self.confirm_discard():
            return False
        if path is None:
            folder = self.w._setting("lastLessonDir", str(Path.cwd()))
            path, _ = QFileDialog.getOpenFileName(self.w, "Open lesson", folder, FILTER)
            if not path:
                return False
        return self.open_path(path)

    def open_path(self, path) -> bool:
        """Open a lesson file without asking about unsaved changes (undoable)."""
        try:
            lesson = load_lesson(path)
        except LessonError as exc:
            self._refuse(str(exc))
            return False
        path = Path(path).resolve()
        if not self.apply_lesson(lesson, f"Open {path.name}", path=path):
            return False
        self.w._set_setting("lastLessonDir", str(path.parent))
        self._add_recent(path)
        return True

    def save(self) -> bool:
        path = self.ctrl.document.path
        return self.save_as(path) if path else self.save_as()

    def save_as(self, path=None) -> bool:
        if path is None:
            folder = self.w._setting("lastLessonDir", str(Path.cwd()))
            name = self.ctrl.setup.title or "lesson"
            safe = "".join(c if c.isalnum() or c in "-_ " else "_" for c in name).strip()
            path, _ = QFileDialog.getSaveFileName(
                self.w, "Save lesson", str(Path(folder) / f"{safe or 'lesson'}{SUFFIX}"), FILTER)
            if not path:
                return False
            if not path.endswith(SUFFIX):
                path += SUFFIX
        lesson = self.current_lesson()
        try:
            save_lesson(path, lesson)
        except OSError as exc:
            QMessageBox.critical(self.w, "Save failed", f"Could not save the lesson:\n{exc}")
            return False
        path = Path(path).resolve()
        self.ctrl.mark_saved(path)
        self._mark_shown_saved()
        self.w._set_setting("lastLessonDir", str(path.parent))
        self._add_recent(path)
        self.w.statusBar().showMessage(f"Saved {path}", 5000)
        return True

    # ------------------------------------------------------------------ unsaved changes
    def needs_saving(self) -> bool:
        """Would closing lose work? A modified lesson file, or notes or a title written
        (an untitled setup itself is kept by the settings)."""
        doc = self.ctrl.document
        if not self.modified():
            return False
        saved = doc.saved_state
        return doc.path is not None or (doc.state.title, doc.state.notes) != (
            saved.title, saved.notes)

    def ask_save(self) -> QMessageBox.StandardButton:
        buttons = (QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                   | QMessageBox.StandardButton.Cancel)
        return QMessageBox.question(
            self.w, "Unsaved changes",
            f"“{self.display_name()}” has changes that are not saved. Save them first?",
            buttons, QMessageBox.StandardButton.Save)

    def confirm_discard(self) -> bool:
        """True if it is fine to replace or close the document (saving first if asked)."""
        if not self.needs_saving():
            return True
        answer = self.ask_save()
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    # ------------------------------------------------------------------ recent files
    def recent(self) -> list[str]:
        s = self.w._settings()
        if s is None:
            return list(self._recent_memory)
        value = s.value("recentLessons", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])][:MAX_RECENT]

    def _add_recent(self, path: Path) -> None:
        items = [str(path)] + [p for p in self.recent() if p != str(path)]
        items = items[:MAX_RECENT]
        s = self.w._settings()
        if s is None:
            self._recent_memory = items
        else:
            s.setValue("recentLessons", items)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        items = self.recent()
        if not items:
            none = self.recent_menu.addAction("No recent lessons")
            none.setEnabled(False)
            return
        for i, item in enumerate(items):
            action = QAction(f"&{i + 1} {Path(item).name}", self.recent_menu)
            action.setToolTip(item)
            action.setStatusTip(item)
            action.setEnabled(Path(item).is_file())
            action.triggered.connect(lambda _=False, p=item: self.open_lesson(p))
            self.recent_menu.addAction(action)

    # ------------------------------------------------------------------ drag and drop
    @staticmethod
    def _dropped_lesson(event) -> str | None:
        mime = event.mimeData()
        if mime is None or not mime.hasUrls():
            return None
        for url in mime.urls():
            if isinstance(url, QUrl) and url.isLocalFile() and url.toLocalFile().endswith(
                    SUFFIX):
                return url.toLocalFile()
        return None

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt API)
        kind = event.type()
        if obj is self.w and kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            if self._dropped_lesson(event):
                event.acceptProposedAction()
                return True
        elif obj is self.w and kind == QEvent.Type.Drop:
            path = self._dropped_lesson(event)
            if path:
                event.acceptProposedAction()
                self.open_lesson(path)
                return True
        return super().eventFilter(obj, event)

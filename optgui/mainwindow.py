"""The main window: contour + loss plots, the setup dock, transport, menus and exports.

The window wires views to the :class:`PlaygroundController`; it holds no state of its own
beyond widgets. Keyboard shortcuts are window-level QActions, so they work whichever plot
has focus; text fields keep Left/Right/Home/End/Space for editing (Qt gives a focused
line edit or spin box first claim on those keys), and clicking a plot takes the focus back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, QRect, QSettings, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from engine.export import atomic_write
from engine.presets import COURSE
from optgui import __version__
from optgui.app import collect_in_gui_thread
from optgui.playground.config import RunConfig
from optgui.playground.controller import PlaygroundController, defined_at
from optgui.playground.panel import ControlPanel
from optgui.playground.plots import ContourPlot, LossPlot, png_bytes
from optgui.playground.transport import TransportBar
from optgui.theme import icon

SETTINGS_DISABLED_ENV = "OPTGUI_NO_SETTINGS"
DEFAULT_SIZE = QSize(1440, 900)  # the least first window where the screen has room
NARROW_WIDTH = 1280  # narrower than this, the step inspector starts as a tab beside Setup
SHORT_PLOTS = 700  # plots shorter than this together share their height about 2 : 1
SAVE_DELAY_MS = 400  # settings are written this long after the last change


def available_area(widget: QWidget) -> QRect:
    """The part of the widget's screen that windows may cover (without panels and docks)."""
    screen = widget.screen() or QGuiApplication.primaryScreen()
    return screen.availableGeometry()


def settings_enabled() -> bool:
    return os.environ.get(SETTINGS_DISABLED_ENV, "") not in ("1", "true", "yes")


class MainWindow(QMainWindow):
    def __init__(self, config: RunConfig | None = None, use_settings: bool | None = None):
        super().__init__()
        collect_in_gui_thread()  # before the worker thread starts
        self.setWindowTitle("optgui")
        self.setWindowIcon(icon("optgui"))
        self._use_settings = settings_enabled() if use_settings is None else use_settings
        restored = self._load_config() if config is None else None
        self.ctrl = PlaygroundController(config or restored or RunConfig.from_preset(), self)
        self._hover: tuple[float, float] | None = None  # the mouse on the contour, view coords

        self._build_actions()
        self._build_central()
        self._build_dock()
        self._build_step_docks()
        self._build_lessons()
        self._build_menus_and_toolbar()
        self._build_status_bar()
        self._connect()
        from optgui.playground.exporting import enable_plot_menus

        enable_plot_menus(self)
        self._initial_layout()
        self.lessons.place_notes_dock()
        if self.inspector_dock in self.page.tabifiedDockWidgets(self.dock):
            self.dock.raise_()  # a narrow window opens on Setup, its other docks a click away
        self._log_toggled(True)  # convergence rates read best on a log axis
        self._restore_window_state()
        self._connect_settings()
        self._redraw_all()
        QTimer.singleShot(0, self.contour.setFocus)

    # ------------------------------------------------------------------ building
    def _action(self, key, text, slot, shortcut=None, tip="", icon_name=None) -> QAction:
        action = QAction(text, self)
        action.setObjectName(key)
        if icon_name:
            action.setIcon(icon(icon_name))
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            tip = f"{tip} ({QKeySequence(shortcut).toString(QKeySequence.NativeText)})"
        action.setToolTip(tip or text)
        action.setStatusTip(tip or text)
        action.triggered.connect(slot)
        self.addAction(action)  # window-level: works whichever child has focus
        self.actions_by_key[key] = action
        return action

    def _build_actions(self) -> None:
        self.actions_by_key: dict[str, QAction] = {}
        c = self.ctrl
        A = self._action
        A("rewind", "Rewind", c.rewind, Qt.Key.Key_Home, "Back to step 0", "to-start")
        A("step_back", "Step back", lambda: c.step_by(-1), Qt.Key.Key_Left,
          "One step back", "step-back")
        A("play", "Play", c.toggle_play, Qt.Key.Key_Space, "Play / pause the animation", "play")
        A("step_forward", "Step forward", lambda: c.step_by(1), Qt.Key.Key_Right,
          "One step forward", "step-forward")
        A("end", "End", c.to_end, Qt.Key.Key_End, "Jump to the last step", "to-end")
        A("course", "Course exercise", self.restore_course, "Ctrl+R",
          "Restore the course exercise: GD, Momentum, RMSprop and Adam on 0.1·w1² + 2·w2² "
          "from (−5, −2), 30 steps", "course")
        A("export_csv", "Export trajectories CSV…", lambda: self.export_csv(), "Ctrl+E",
          "Save every shown run's trajectory as CSV", "export")
        A("export_figure", "Export figure…", lambda: self.export_figure(), "Ctrl+Shift+E",
          "Save a slide-ready picture (title, contour, loss plot, legend) in a chosen size, "
          "light or dark, as PNG, SVG or PDF")
        A("export_animation", "Export animation…", lambda: self.export_animation(),
          "Ctrl+Alt+E", "Save the race as an animated GIF, an MP4 video or PNG frames")
        A("export_derivation", "Export derivation…", lambda: self.export_derivation(), None,
          "Write out the first iterations of every shown run, as Markdown or LaTeX")
        A("quit", "Quit", self.close, QKeySequence.StandardKey.Quit, "Quit optgui")
        A("fit", "Fit view", self._fit_view, "Ctrl+0", "Show the surface's whole default view",
          "fit")
        log = A("log_loss", "Log-scale loss", self._log_toggled, "Ctrl+L",
                "Show the loss on a logarithmic axis")
        log.setCheckable(True)
        A("show_playground", "Playground", lambda: self.tabs.setCurrentWidget(self.page),
          "Ctrl+1", "Show the 2-D playground")
        A("show_lab", "Vanishing-gradient lab", lambda: self.tabs.setCurrentWidget(self.lab),
          "Ctrl+2", "Show the vanishing-gradient lab")
        A("lab_start", "Start / resume training", self._lab_start_or_resume, "Ctrl+Return",
          "Lab: start training, or resume it when paused")
        A("about", "About optgui", self.show_about, None, "About optgui")
        A("shortcuts", "Keyboard shortcuts", self.show_shortcuts,
          QKeySequence.StandardKey.HelpContents, "List the keyboard shortcuts")

    def _build_central(self) -> None:
        self.contour = ContourPlot()
        self.loss = LossPlot()
        loss_box = QWidget()
        loss_layout = QVBoxLayout(loss_box)
        loss_layout.setContentsMargins(0, 0, 0, 0)
        loss_layout.setSpacing(0)
        header = QHBoxLayout()
        header.setContentsMargins(8, 2, 8, 2)
        title = QLabel("Loss per step")
        title.setProperty("role", "hint")
        header.addWidget(title)
        header.addStretch(1)
        self.log_check = QCheckBox("log scale")
        self.log_check.setToolTip("Show the loss on a logarithmic axis (Ctrl+L)")
        self.log_check.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.log_check.toggled.connect(self.actions_by_key["log_loss"].setChecked)
        self.log_check.toggled.connect(self._log_toggled)
        header.addWidget(self.log_check)
        loss_layout.addLayout(header)
        loss_layout.addWidget(self.loss, 1)
        from optgui.playground.lrstrip import LrStrip

        self.lr_strip = LrStrip(self.loss)
        loss_layout.addWidget(self.lr_strip)

        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.contour)
        self.splitter.addWidget(loss_box)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([620, 230])
        self.splitter.setChildrenCollapsible(False)

        self.transport = TransportBar(self.ctrl, self.actions_by_key)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 0)
        layout.setSpacing(2)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.transport)
        # The playground is a page of its own with its toolbar and docks (a QMainWindow used
        # as a widget): switching to the lab hides nothing and moves nothing, so the tab bar
        # stays put and no playground command ever slides under the pointer.
        self.page = QMainWindow()
        self.page.setObjectName("playgroundPage")
        self.page.setWindowFlags(Qt.WindowType.Widget)
        self.page.setDockNestingEnabled(True)
        self.page.setCentralWidget(central)
        self._build_tabs(self.page)

    def _build_tabs(self, playground: QWidget) -> None:
        """The playground and the vanishing-gradient lab as tabs (the lab imports torch only
        when it starts training, so building it here keeps start-up light)."""
        from PySide6.QtWidgets import QTabWidget

        from optgui.lab.tab import LabTab

        self.lab = LabTab()
        self.lab.messageShown.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.tabs = QTabWidget()
        self.tabs.setObjectName("mainTabs")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(playground, "Playground")
        self.tabs.addTab(self.lab, "Vanishing-gradient lab")
        self.tabs.currentChanged.connect(self._tab_changed)
        self.actions_by_key["lab_start"].setEnabled(False)  # the playground shows first
        self.setCentralWidget(self.tabs)
        self._size_tabs(0)

    def _size_tabs(self, index: int) -> None:
        """Only the shown tab's minimum size counts (a QStackedWidget takes the largest of all
        pages'), so the lab's wide plots never force the playground's window wider."""
        from PySide6.QtWidgets import QSizePolicy

        for i in range(self.tabs.count()):
            policy = QSizePolicy.Policy.Preferred if i == index else QSizePolicy.Policy.Ignored
            self.tabs.widget(i).setSizePolicy(policy, policy)

    def _tab_changed(self, index: int) -> None:
        """The playback keys and the dock toggles belong to the playground page: disabled
        while the lab is shown (the page keeps its docks and toolbar, hidden with it)."""
        in_lab = self.tabs.widget(index) is self.lab
        for key in ("play", "step_back", "step_forward", "rewind", "end"):
            self.actions_by_key[key].setEnabled(not in_lab)
        for dock in (self.dock, self.inspector_dock, self.view3d_dock, self.maps_dock):
            dock.toggleViewAction().setEnabled(not in_lab)
        self.actions_by_key["lab_start"].setEnabled(in_lab)
        self._size_tabs(index)
        self.schedule_save()

    def _build_dock(self) -> None:
        self.panel = ControlPanel(self.ctrl)
        scroll = QScrollArea()
        scroll.setWidget(self.panel)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        # as narrow as the panel goes beside its vertical scroll bar (short windows scroll)
        scroll.setMinimumWidth(self.panel.minimumSizeHint().width()
                               + scroll.verticalScrollBar().sizeHint().width())
        self.dock = QDockWidget("Setup", self.page)
        self.dock.setObjectName("setupDock")
        self.dock.setWidget(scroll)
        self.dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.page.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.dock)
        remove = QAction("Remove run", self.panel.run_list.list)
        remove.setShortcut(QKeySequence.StandardKey.Delete)
        remove.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        remove.triggered.connect(self.panel.run_list.remove_selected)
        self.panel.run_list.list.addAction(remove)

    def _build_step_docks(self) -> None:
        """The step inspector (shown) and the 3-D view (hidden; OpenGL loads on first show),
        both on the right; each follows the controller by itself."""
        from optgui.playground.inspector import StepInspector
        from optgui.playground.view3d import Surface3DView

        self.inspector = StepInspector(self.ctrl)
        self.inspector_dock = QDockWidget("Step inspector", self.page)
        self.inspector_dock.setObjectName("inspectorDock")
        self.inspector_dock.setWidget(self.inspector)
        self.inspector_dock.setMinimumWidth(240)
        self.inspector_dock.toggleViewAction().setShortcut(QKeySequence("Ctrl+I"))
        self.page.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.inspector_dock)
        self.view3d = Surface3DView(self.ctrl)
        self.view3d_dock = QDockWidget("3-D view", self.page)
        self.view3d_dock.setObjectName("view3dDock")
        self.view3d_dock.setWidget(self.view3d)
        self.view3d_dock.toggleViewAction().setText("3-D view")
        self.view3d_dock.toggleViewAction().setShortcut(QKeySequence("Ctrl+3"))
        self.page.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.view3d_dock)
        self.page.splitDockWidget(self.view3d_dock, self.inspector_dock, Qt.Orientation.Vertical)
        self.view3d_dock.hide()
        self.view3d_dock.toggleViewAction().toggled.connect(self._view3d_toggled)
        self._build_maps_dock()

    def _build_maps_dock(self) -> None:
        """Maps (hidden until asked for, Ctrl+M): a basin map or phase diagram of the
        selected run, computed only while the dock is shown."""
        from optgui.maps.view import MapsView

        self.maps = MapsView(self.ctrl)
        self.maps_dock = QDockWidget("Maps", self.page)
        self.maps_dock.setObjectName("mapsDock")
        self.maps_dock.setWidget(self.maps)
        self.maps_dock.toggleViewAction().setText("Maps")
        self.maps_dock.toggleViewAction().setShortcut(QKeySequence("Ctrl+M"))
        self.maps_dock.toggleViewAction().setToolTip(
            "Basin map or phase diagram of the selected run; click a cell to race it")
        self.page.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.maps_dock)
        self.page.tabifyDockWidget(self.inspector_dock, self.maps_dock)
        self.maps_dock.hide()
        self.maps_dock.toggleViewAction().toggled.connect(
            lambda on: on and QTimer.singleShot(0, self.maps_dock.raise_))
        # computed only while shown (a tab behind another one counts as hidden)
        self.maps_dock.visibilityChanged.connect(self._maps_shown)
        self.maps_dock.toggleViewAction().toggled.connect(self._maps_shown)

    def _maps_shown(self, *_) -> None:
        self.maps.set_active(self.maps_dock.isVisible())

    def _view3d_toggled(self, on: bool) -> None:
        """Shown, the 3-D view takes about half of the right-hand column; in a column of tabs
        (a narrow window) it comes to the front instead."""
        if not on:
            return
        if self.page.tabifiedDockWidgets(self.view3d_dock):
            self.view3d_dock.raise_()
        elif not self.view3d_dock.isFloating() and not self.inspector_dock.isHidden():
            self.page.resizeDocks([self.view3d_dock, self.inspector_dock],
                                  [self.height() * 9 // 20, self.height() * 11 // 20],
                                  Qt.Orientation.Vertical)

    def _initial_layout(self) -> None:
        """The first launch's size and docks, fitted to the screen: 1440 × 900, or three
        quarters of a larger screen, or all of a smaller one, centred. Below NARROW_WIDTH the
        step inspector and the 3-D view start as tabs beside Setup, so the contour keeps most
        of the width (drag one out to see it beside the others)."""
        area = available_area(self)
        width = min(max(DEFAULT_SIZE.width(), area.width() * 3 // 4), area.width())
        height = min(max(DEFAULT_SIZE.height(), area.height() * 3 // 4), area.height())
        self.resize(width, height)
        self.move(area.x() + (area.width() - width) // 2, area.y() + (area.height() - height) // 2)
        if width < NARROW_WIDTH:
            self.page.tabifyDockWidget(self.dock, self.inspector_dock)
            self.page.tabifyDockWidget(self.inspector_dock, self.view3d_dock)
            self.dock.raise_()
            self.page.resizeDocks([self.dock], [max(300, width * 3 // 10)],
                                  Qt.Orientation.Horizontal)
        else:
            side = width * 27 // 100  # on a laptop's 1366 the plots keep almost half
            self.page.resizeDocks([self.dock, self.inspector_dock],
                                  [min(390, side), min(400, side)], Qt.Orientation.Horizontal)

    def _build_menus_and_toolbar(self) -> None:
        a = self.actions_by_key
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        for key in ("export_csv", "export_figure", "export_animation", "export_derivation"):
            file_menu.addAction(a[key])
        file_menu.addSeparator()
        file_menu.addAction(a["quit"])
        self.lessons.fill_file_menu(file_menu)
        self.lessons.fill_edit_menu(bar.addMenu("&Edit"))
        run_menu = bar.addMenu("&Run")
        run_menu.addAction(a["course"])
        run_menu.addSeparator()
        for key in ("play", "step_back", "step_forward", "rewind", "end"):
            run_menu.addAction(a[key])
        run_menu.addSeparator()
        run_menu.addAction(a["lab_start"])
        view_menu = bar.addMenu("&View")
        view_menu.addAction(a["show_playground"])
        view_menu.addAction(a["show_lab"])
        view_menu.addSeparator()
        view_menu.addAction(a["fit"])
        view_menu.addAction(a["log_loss"])
        view_menu.addAction(self.dock.toggleViewAction())
        view_menu.addAction(self.inspector_dock.toggleViewAction())
        view_menu.addAction(self.view3d_dock.toggleViewAction())
        view_menu.addAction(self.maps_dock.toggleViewAction())
        view_menu.addAction(self.lessons.notes_dock.toggleViewAction())
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(a["shortcuts"])
        help_menu.addAction(a["about"])

        tools = self.page.addToolBar("Main")
        tools.setObjectName("mainToolbar")
        tools.setMovable(False)
        tools.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tools.addAction(a["course"])
        tools.addSeparator()
        tools.addAction(a["export_csv"])
        tools.addAction(a["fit"])
        self._build_catalogue_ui(run_menu, view_menu, tools)
        for button in tools.findChildren(QWidget):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        self.busy_label = QLabel()
        self.hover_label = QLabel()
        self.hover_label.setMinimumWidth(300)
        status.addPermanentWidget(self.busy_label)
        status.addPermanentWidget(self.hover_label)
        status.showMessage("Click on the contour to move the start point · Space plays", 6000)

    def _connect(self) -> None:
        c = self.ctrl
        c.configChanged.connect(self._redraw_all)
        c.trajectoriesChanged.connect(self._redraw_runs)
        c.selectionChanged.connect(self._redraw_runs)
        c.stepChanged.connect(self.contour.set_step)
        c.stepChanged.connect(self.loss.set_step)
        c.stepChanged.connect(self.lr_strip.set_step)
        c.playingChanged.connect(self._playing_changed)
        c.busyChanged.connect(lambda busy: self.busy_label.setText("computing…" if busy else ""))
        c.errorOccurred.connect(self._show_error)
        self.contour.startPicked.connect(self._start_picked)
        self.contour.hovered.connect(self._hovered)
        self.panel.form.specRejected.connect(
            lambda msg: self.statusBar().showMessage(msg, 5000)
        )

    # ------------------------------------------------------------------ view updates
    def _redraw_all(self, *_):
        self._show_readout()
        self.contour.show_surface_soon(self.ctrl.surface, self.ctrl.config.start)
        self._redraw_runs()

    def _redraw_runs(self, *_):
        cfg, ctrl = self.ctrl.config, self.ctrl
        errors = {r.run_id: ctrl.error(r.run_id) for r in cfg.runs if ctrl.error(r.run_id)}
        self.contour.update_runs(cfg, ctrl.trajectories, errors, ctrl.selected_run)
        coming = any(r.enabled and ctrl.trajectory(r.run_id) is None and r.run_id not in errors
                     for r in cfg.runs)  # results still to arrive
        self.loss.update_runs_soon(cfg, ctrl.trajectories, ctrl.selected_run, coming)
        self.lr_strip.update_runs(cfg, ctrl.trajectories, ctrl.selected_run)
        self.contour.set_step(ctrl.step)
        self.lr_strip.set_step(ctrl.step)  # (the loss plot sets its step when it updates)

    def _playing_changed(self, playing: bool) -> None:
        action = self.actions_by_key["play"]
        action.setText("Pause" if playing else "Play")
        action.setIcon(icon("pause" if playing else "play"))

    def _start_picked(self, x: float, y: float) -> None:
        x, y = float(f"{x:.3g}"), float(f"{y:.3g}")  # round numbers are easier to read
        if not defined_at(self.ctrl.surface, (x, y)):
            self.statusBar().showMessage(
                f"f is not defined at ({x:g}, {y:g}) (hatched area): the start point stays "
                f"at ({self.ctrl.config.start[0]:g}, {self.ctrl.config.start[1]:g})", 6000)
            return
        self.ctrl.set_start(x, y)
        self.statusBar().showMessage(f"Start moved to ({x:g}, {y:g}); runs recomputed", 3000)

    def _hovered(self, x: float, y: float) -> None:
        self._hover = (x, y)
        self._show_readout()

    def _show_readout(self) -> None:
        """w1, w2 and f under the mouse; called again when the surface changes under it."""
        if self._hover is None:
            return
        x, y = self._hover
        try:
            with np.errstate(all="ignore"):
                f = float(self.ctrl.surface.value(np.array([x, y])))
        except (ArithmeticError, ValueError, TypeError):
            f = float("nan")
        value = f"{f:.4g}" if np.isfinite(f) else "not defined here"
        self.hover_label.setText(f"w1 = {x:+.3f}   w2 = {y:+.3f}   f = {value}")

    def _show_error(self, message: str) -> None:
        self.statusBar().showMessage(message, 10000)

    def _fit_view(self) -> None:
        self.contour.reset_view()

    def _log_toggled(self, checked: bool) -> None:
        checked = bool(checked)
        if self.log_check.isChecked() != checked:
            self.log_check.setChecked(checked)
        self.actions_by_key["log_loss"].setChecked(checked)
        if self.loss.log != checked:
            self.loss.set_log(checked)
            self.schedule_save()

    # ------------------------------------------------------------------ commands
    def _build_lessons(self) -> None:
        """Lesson files, undo/redo and the Notes dock (optgui/lessonfiles.py)."""
        from optgui.lessonfiles import LessonFiles

        self.lessons = LessonFiles(self)

    def restore_course(self) -> None:
        """The course exercise (a built-in lesson): one undoable step."""
        self.lessons.load_preset_lesson(COURSE.lesson, "Course exercise")

    def _build_catalogue_ui(self, run_menu, view_menu, tools) -> None:
        """Demonstration presets (Run menu) and step overlays (View menu, toolbar button);
        the parts live in optgui/playground/presets.py and optgui/playground/overlays.py."""
        from PySide6.QtWidgets import QToolButton

        from optgui.playground.overlays import StepOverlays, make_overlay_actions
        from optgui.playground.presets import WINDOW_PRESETS

        after_course = run_menu.actions()[1]
        for preset in WINDOW_PRESETS:
            action = QAction(preset.title, self)
            action.setObjectName(f"preset-{preset.key}")
            action.setToolTip(preset.tip)
            action.setStatusTip(preset.tip)
            action.triggered.connect(lambda _checked=False, p=preset: self.load_preset(p))
            run_menu.insertAction(after_course, action)
            self.actions_by_key[f"preset_{preset.key}"] = action
        self.overlays = StepOverlays(self.contour, self.ctrl, self)
        self.overlay_actions = make_overlay_actions(self, self.overlays, self._settings)
        view_menu.addSection("Overlays at the current step")
        overlay_menu = QMenu("Overlays", self)
        overlay_menu.setToolTipsVisible(True)
        for action in self.overlay_actions:
            view_menu.addAction(action)
            overlay_menu.addAction(action)
        button = QToolButton()
        button.setText("Overlays")
        button.setToolTip("Arrows at the current step of the selected run: gradient, update, "
                          "momentum, SAM's perturbation; line searches, trust regions and "
                          "BFGS's curvature")
        button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        button.setMenu(overlay_menu)
        tools.addSeparator()
        tools.addWidget(button)

    def load_preset(self, preset) -> None:
        """Load a WindowPreset (a built-in lesson: runs, selection, overlays, notes) as one
        undoable step."""
        if self.lessons.load_preset_lesson(preset.lesson, preset.title):
            self.statusBar().showMessage(preset.tip, 8000)

    def show_about(self) -> None:
        QMessageBox.about(
            self,
            "About optgui",
            f"<h3>optgui {__version__}</h3>"
            "<p>See how gradient-based optimizers work: each optimizer's path on a 2-D "
            "surface, step by step, with its loss curve.</p>"
            "<p>Built with PySide6, pyqtgraph and numpy. The optimizers follow "
            "torch.optim's conventions unless a run's form says otherwise.</p>",
        )

    def _lab_start_or_resume(self) -> None:
        if self.tabs.currentWidget() is not self.lab:
            return
        if self.lab.state == "paused":
            self.lab.resume()
        else:
            self.lab.start()

    def show_shortcuts(self) -> None:
        rows = "".join(
            f"<tr><td><b>{k}</b></td><td>&nbsp;&nbsp;{v}</td></tr>"
            for k, v in SHORTCUTS
        )
        QMessageBox.information(self, "Keyboard shortcuts", f"<table>{rows}</table>")

    # ------------------------------------------------------------------ exports
    def _shown_trajectories(self):
        return [
            self.ctrl.trajectory(r.run_id)
            for r in self.ctrl.config.runs
            if r.enabled and self.ctrl.trajectory(r.run_id) is not None
        ]

    def default_filename(self, what: str) -> str:
        return f"optgui-{self.ctrl.config.surface}-{what}"

    def _ask_path(self, title: str, name: str, filters: str) -> str | None:
        folder = self._setting("lastExportDir", str(Path.cwd()))
        path, _ = QFileDialog.getSaveFileName(self, title, str(Path(folder) / name), filters)
        if not path:
            return None
        self._set_setting("lastExportDir", str(Path(path).parent))
        return path

    def _write(self, path: str, data_fn, what: str) -> bool:
        try:
            atomic_write(path, data_fn())
        except Exception as exc:  # noqa: BLE001 - any failure becomes a dialog, never a crash
            QMessageBox.critical(self, "Export failed", f"Could not write the {what}:\n{exc}")
            return False
        self.statusBar().showMessage(f"Wrote {path}", 5000)
        return True

    def export_csv(self, path: str | None = None) -> bool:
        from engine.export import trajectories_csv

        path = path or self._ask_path(
            "Export trajectories", self.default_filename("trajectories.csv"), "CSV (*.csv)"
        )
        if not path:
            return False
        trajs = self._shown_trajectories()
        return self._write(path, lambda: trajectories_csv(trajs), "trajectories CSV")

    def export_contour_png(self, path: str | None = None) -> bool:
        path = path or self._ask_path(
            "Export contour picture", self.default_filename("contour.png"), "PNG (*.png)"
        )
        if not path:
            return False
        return self._write(path, lambda: png_bytes(self.contour.render_image()), "contour PNG")

    def export_figure(self, path: str | None = None, **choices) -> bool:
        """The figure dialog (contents, size, theme, format), then the file."""
        from optgui.playground.exporting import export_figure

        return export_figure(self, path, **choices)

    def export_animation(self, path: str | None = None, **choices):
        """The animation dialog (format, size, theme, speed, frames), then the file, with
        a progress dialog that can cancel; returns the finished export or None."""
        from optgui.playground.exporting import export_animation

        return export_animation(self, path, **choices)

    def export_loss_png(self, path: str | None = None) -> bool:
        path = path or self._ask_path(
            "Export loss plot", self.default_filename("loss.png"), "PNG (*.png)"
        )
        if not path:
            return False
        return self._write(path, lambda: png_bytes(self.loss.render_image()), "loss-plot PNG")

    def export_derivation(self, path: str | None = None, iterations: int | None = None) -> bool:
        """The first k iterations of every shown run worked out (engine.derivation), as
        Markdown or LaTeX by the file's suffix."""
        from PySide6.QtWidgets import QInputDialog

        if iterations is None:
            iterations, ok = QInputDialog.getInt(
                self, "Export derivation", "Iterations to write out for every run:", 2, 1,
                max(1, min(50, self.ctrl.max_step)))
            if not ok:
                return False
        if not path:
            folder = self._setting("lastExportDir", str(Path.cwd()))
            name = str(Path(folder) / self.default_filename("derivation.md"))
            md, tex = "Markdown (*.md)", "LaTeX (*.tex)"
            path, chosen = QFileDialog.getSaveFileName(
                self, "Export derivation", name, f"{md};;{tex}")
            if not path:
                return False
            if Path(path).suffix.lower() not in (".md", ".tex"):
                path += ".tex" if chosen == tex else ".md"
            self._set_setting("lastExportDir", str(Path(path).parent))
        trajs, cfg = self._shown_trajectories(), self.ctrl.config

        def render() -> str:
            from engine.derivation import to_latex, to_markdown

            write = to_latex if Path(path).suffix.lower() == ".tex" else to_markdown
            return write(self.ctrl.surface, trajs, cfg.start, iterations=int(iterations))

        return self._write(path, render, "derivation")

    # ------------------------------------------------------------------ settings
    def _settings(self) -> QSettings | None:
        return QSettings("optgui", "optgui") if self._use_settings else None

    def _setting(self, key: str, default):
        s = self._settings()
        if s is None:
            return default
        value = s.value(key, default)
        return default if value is None else value

    def _set_setting(self, key: str, value) -> None:
        s = self._settings()
        if s is not None:
            s.setValue(key, value)

    def _load_config(self) -> RunConfig | None:
        text = self._setting("config", "")
        if not text or not isinstance(text, str):
            return None
        try:
            return RunConfig.from_json(text)
        except ValueError:
            return None  # corrupt or from an incompatible version: start from the preset

    def _restore_window_state(self) -> None:
        s = self._settings()
        if s is None:
            return
        try:
            geometry = s.value("geometry")
            if isinstance(geometry, QByteArray):
                self.restoreGeometry(geometry)
            state = s.value("windowState")
            if isinstance(state, QByteArray):
                self.page.restoreState(state)
            speed = int(s.value("speed", 8))
            self.transport.speed.setValue(max(1, min(speed, 2000)))
            log = str(s.value("logLoss", "true")).lower() == "true"
            self._log_toggled(log)
            lab = s.value("lab", "")
            if isinstance(lab, str) and lab:
                try:
                    self.lab.settings.set_state(json.loads(lab))
                except ValueError:
                    pass  # corrupt: the lab keeps its defaults
            maps = s.value("maps", "")
            if isinstance(maps, str) and maps:
                try:
                    self.maps.set_state(json.loads(maps))
                except ValueError:
                    pass  # corrupt: Maps keeps its defaults
            tab = int(s.value("tab", 0))
            if 0 <= tab < self.tabs.count():
                self.tabs.setCurrentIndex(tab)
        except (TypeError, ValueError):
            pass
        self.fit_to_screen()  # a geometry saved on a larger screen never spills over

    def fit_to_screen(self) -> None:
        """Keep the whole window, frame included, inside its screen's available area: never
        larger than it, never partly off it (maximized and full-screen windows are the
        window manager's)."""
        if self.isMaximized() or self.isFullScreen():
            return
        area = available_area(self)
        frame, inner = self.frameGeometry(), self.geometry()
        extra_w, extra_h = frame.width() - inner.width(), frame.height() - inner.height()
        width = min(inner.width(), area.width() - extra_w)
        height = min(inner.height(), area.height() - extra_h)
        if (width, height) != (inner.width(), inner.height()):
            self.resize(width, height)
        frame = self.frameGeometry()
        x = max(area.left(), min(frame.left(), area.right() + 1 - frame.width()))
        y = max(area.top(), min(frame.top(), area.bottom() + 1 - frame.height()))
        if (x, y) != (frame.left(), frame.top()):
            self.move(x, y)

    def _connect_settings(self) -> None:
        """Write the settings shortly after anything worth keeping changes, so a crash or a
        kill loses nothing but the computation that was running."""
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(SAVE_DELAY_MS)
        self._save_timer.timeout.connect(self.save_settings)
        self.ctrl.configChanged.connect(self.schedule_save)
        self.transport.speed.valueChanged.connect(self.schedule_save)
        self.splitter.splitterMoved.connect(self.schedule_save)
        for dock in self.page.findChildren(QDockWidget):
            dock.dockLocationChanged.connect(self.schedule_save)
            dock.topLevelChanged.connect(self.schedule_save)
            dock.toggleViewAction().toggled.connect(self.schedule_save)
        for action in self.overlay_actions:
            action.toggled.connect(self.schedule_save)
        self.lab.settings.changed.connect(self.schedule_save)
        self.lab.settings.dataFolderChanged.connect(self.schedule_save)
        self.maps.settingsChanged.connect(self.schedule_save)

    def schedule_save(self, *_) -> None:
        """Save the settings SAVE_DELAY_MS from now (changes in a burst are written once)."""
        timer = getattr(self, "_save_timer", None)
        if timer is not None and self._use_settings:
            timer.start()

    def save_settings(self) -> None:
        s = self._settings()
        if s is None:
            return
        s.setValue("geometry", self.saveGeometry())
        s.setValue("windowState", self.page.saveState())
        s.setValue("config", self.ctrl.config.to_json())
        s.setValue("speed", self.transport.speed.value())
        s.setValue("logLoss", "true" if self.loss.log else "false")
        s.setValue("tab", self.tabs.currentIndex())
        s.setValue("lab", json.dumps(self.lab.settings.state()))
        s.setValue("maps", json.dumps(self.maps.state()))
        s.sync()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        area = available_area(self)
        if event.size().width() > area.width() or event.size().height() > area.height():
            QTimer.singleShot(0, self.fit_to_screen)  # grown past the screen: never kept
        self.schedule_save()

    def showEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().showEvent(event)
        if not event.spontaneous():  # the frame is known once shown: fit it, frame and all
            QTimer.singleShot(0, self.fit_to_screen)
            if not getattr(self, "_shown_before", False):
                self._shown_before = True
                QTimer.singleShot(0, self._share_plot_heights)

    def _share_plot_heights(self) -> None:
        """In a short window the loss plot gets a third of the height (at 3 : 1 it would be
        a strip of two tick labels); taller ones keep the contour's larger share."""
        total = sum(self.splitter.sizes())
        if 0 < total < SHORT_PLOTS:
            loss = total * 35 // 100
            self.splitter.setSizes([total - loss, loss])

    def moveEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().moveEvent(event)
        self.schedule_save()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        if not self.lessons.confirm_discard():  # unsaved lesson: Save / Discard / Cancel
            event.ignore()
            return
        if getattr(self, "_save_timer", None) is not None:
            self._save_timer.stop()
        self.save_settings()
        self.ctrl.shutdown()
        self.maps.shutdown()
        self.lab.shutdown()
        super().closeEvent(event)


SHORTCUTS = (
    ("Space", "play / pause"),
    ("Left / Right", "one step back / forward"),
    ("Home / End", "first / last step"),
    ("Ctrl+1 / Ctrl+2", "show the playground / the vanishing-gradient lab"),
    ("Ctrl+Return", "lab: start training (or resume it when paused)"),
    ("Ctrl+R", "course exercise"),
    ("Ctrl+N / Ctrl+O / Ctrl+S", "new / open / save lesson"),
    ("Ctrl+Z / Ctrl+Shift+Z", "undo / redo a setup change"),
    ("Ctrl+E", "export trajectories CSV"),
    ("Ctrl+Shift+E", "export figure (PNG, SVG, PDF)"),
    ("Ctrl+Alt+E", "export animation (GIF, MP4, PNG frames)"),
    ("Ctrl+L", "log-scale loss"),
    ("Ctrl+I / Ctrl+3", "step inspector / 3-D view"),
    ("Ctrl+M", "maps: basin map or phase diagram of the selected run (click a cell to race it)"),
    ("Ctrl+0", "fit the contour view"),
    ("Ctrl+Shift+G / U / M / S", "overlay: gradient / update / momentum / SAM perturbation"),
    ("Ctrl+Shift+L / T / H", "overlay: line search / trust region / BFGS curvature"),
    ("Delete", "remove the selected run (in the list)"),
    ("Click on the contour", "move the start point"),
    ("Esc (in Maps)", "cancel the map being computed"),
)

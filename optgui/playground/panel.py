"""The left panel: surface, start point, steps, the optimizer list and the run's form.

Widgets here never compute anything: they turn user edits into calls on the
:class:`~optgui.playground.controller.PlaygroundController` and redraw themselves from its
``configChanged`` / ``selectionChanged`` / ``trajectoriesChanged`` signals, blocking their
own signals while they sync so that a sync never echoes back as an edit.
"""

from __future__ import annotations

import html
import math
import re

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QColorDialog,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine import REGISTRY, SURFACES, parse_spec, schedules
from engine.optimizers import FAMILIES, Hyper, format_value
from optgui.playground.config import (
    CUSTOM,
    DATA_SURFACE,
    DEFAULT_VIEW,
    MAX_DATA_SAMPLES,
    MAX_GUI_STEPS,
    RunEntry,
    check_view,
    playground_spec,
)
from optgui.playground.controller import PlaygroundController
from optgui.playground.plots import legend_text
from optgui.widgets import IntSpinBox, NumberSpinBox, blocked, swatch_icon

INT_LIMIT = 2**31 - 1
ERROR_STYLE = "color: #ff6b6b;"
# the "Selected run" form builds the pages of the setup's runs ahead, one every this long
PREBUILD_INTERVAL_MS = 40


def _mono_font() -> QFont:
    mono = QFont("DejaVu Sans Mono")
    mono.setStyleHint(QFont.StyleHint.Monospace)
    return mono


def _pretty(formula: str) -> str:
    """sympy's ``0.1*w1**2`` as ``0.1·w1^2``: easier to read, and the parser reads it back."""
    return formula.replace("**", "^").replace("*", "·")


def _compact(spin: QWidget, minimum: int = 56) -> QWidget:
    """Let a spin box shrink below the width of its widest possible value (±1e6, 2³¹),
    so the setup dock keeps its width."""
    spin.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
    spin.setMinimumWidth(minimum)
    return spin


def _hint(label: QLabel) -> QLabel:
    label.setWordWrap(True)
    label.setProperty("role", "hint")
    return label


class SurfaceBox(QGroupBox):
    """Surface choice (with its formula), start point and number of steps.

    "Custom expression…" opens a formula field: typing is debounced, the controller compiles
    the formula in its worker thread, and a refused formula is explained right below the
    field with the offending character marked, while the last good surface stays in place.
    linear_regression shows its data set (samples, noise, seed) instead.
    """

    EXPRESSION_DEBOUNCE_MS = 400

    def __init__(self, ctrl: PlaygroundController, parent=None) -> None:
        super().__init__("Surface", parent)
        self.ctrl = ctrl
        layout = QFormLayout(self)
        layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)

        self.surface_combo = QComboBox()
        self.surface_combo.setToolTip("The function f(w1, w2) the optimizers minimize")
        self.surface_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.surface_combo.setMinimumContentsLength(16)
        self.surface_combo.currentIndexChanged.connect(self._surface_chosen)
        layout.addRow("Function", self.surface_combo)

        # -- custom expression: formula field, inline error, view box
        self.custom_box = QWidget()
        custom = QFormLayout(self.custom_box)
        custom.setContentsMargins(0, 0, 0, 0)
        custom.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.expression_edit = QLineEdit()
        self.expression_edit.setObjectName("expression")
        self.expression_edit.setPlaceholderText("e.g. w1^2 + 3*w2^2 + sin(2*w1)")
        self.expression_edit.setFont(_mono_font())
        self.expression_edit.setToolTip(
            "f in w1, w2 (or x, y): numbers, + − * / and ^ or ** for powers, parentheses, pi, "
            "e and sin cos tan exp log sqrt abs tanh sinh cosh arctan arcsin arccos. "
            "Parsed by a whitelist, never evaluated as code; ∇f and the Hessian are derived "
            "symbolically."
        )
        self.expression_edit.textEdited.connect(self._expression_typed)
        self.expression_edit.returnPressed.connect(self._submit_expression)
        custom.addRow("f(w1, w2) =", self.expression_edit)
        self.expression_message = QLabel()
        self.expression_message.setObjectName("expressionMessage")
        self.expression_message.setWordWrap(True)
        self.expression_message.setTextFormat(Qt.TextFormat.RichText)
        self.expression_message.setStyleSheet(ERROR_STYLE)
        self.expression_message.hide()
        custom.addRow(self.expression_message)
        self.view_spins: list[QDoubleSpinBox] = []
        for axis in ("w1", "w2"):
            row = QHBoxLayout()
            for i in range(2):
                spin = QDoubleSpinBox()
                spin.setRange(-1e6, 1e6)
                spin.setDecimals(2)
                spin.setSingleStep(0.5)
                spin.setKeyboardTracking(False)
                spin.setObjectName(f"view-{axis}-{'max' if i else 'min'}")
                spin.setToolTip(f"The contour's {'largest' if i else 'smallest'} {axis} "
                                "(the custom surface's view box)")
                spin.valueChanged.connect(self._view_edited)
                row.addWidget(_compact(spin), 1)
                if i == 0:
                    row.addWidget(QLabel(f"≤ {axis} ≤"))
                self.view_spins.append(spin)
            custom.addRow("View" if axis == "w1" else "", row)
        layout.addRow(self.custom_box)
        self._expression_timer = QTimer(self)
        self._expression_timer.setSingleShot(True)
        self._expression_timer.setInterval(self.EXPRESSION_DEBOUNCE_MS)
        self._expression_timer.timeout.connect(self._submit_expression)

        # -- linear_regression: the data set
        self.data_box = QWidget()
        data_row = QHBoxLayout(self.data_box)
        data_row.setContentsMargins(0, 0, 0, 0)
        self.data_n = IntSpinBox()
        self.data_n.setRange(2, MAX_DATA_SAMPLES)
        self.data_n.setPrefix("n = ")
        self.data_n.setToolTip("Number of samples (x, y) in the data set; "
                               "an epoch of batch-B SGD is n/B steps")
        self.data_noise = QDoubleSpinBox()
        self.data_noise.setRange(0.0, 100.0)
        self.data_noise.setDecimals(2)
        self.data_noise.setSingleStep(0.1)
        self.data_noise.setPrefix("σ = ")
        self.data_noise.setToolTip("Noise of the data: y = 2·x − 1 + σ·N(0, 1)")
        self.data_seed = IntSpinBox()
        self.data_seed.setRange(0, INT_LIMIT)
        self.data_seed.setPrefix("seed ")
        self.data_seed.setToolTip("Seed of the synthetic data set (mini-batches use the run's "
                                  "own seed)")
        for w in (self.data_n, self.data_noise, self.data_seed):
            w.setKeyboardTracking(False)
            w.valueChanged.connect(self._data_edited)
            data_row.addWidget(_compact(w, 70), 1)
        for spin, what in ((self.data_n, "samples"), (self.data_seed, "seed")):
            spin.outOfRange.connect(lambda text, s=spin, w=what: self._out_of_range(s, w, text))
        self.data_label = QLabel("Data")
        layout.addRow(self.data_label, self.data_box)

        self.formula = _hint(QLabel())
        self.formula.setObjectName("surfaceFormula")
        self.formula.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addRow(self.formula)

        start_row = QHBoxLayout()
        self.start_x = QDoubleSpinBox()
        self.start_y = QDoubleSpinBox()
        for spin, name in ((self.start_x, "w1"), (self.start_y, "w2")):
            spin.setRange(-1e6, 1e6)
            spin.setDecimals(3)
            spin.setSingleStep(0.1)
            spin.setKeyboardTracking(False)
            spin.setPrefix(f"{name} = ")
            spin.setToolTip(f"Start value of {name} (or click on the contour plot)")
            spin.valueChanged.connect(self._start_edited)
            start_row.addWidget(_compact(spin, 90))
        layout.addRow("Start", start_row)

        self.steps = IntSpinBox()
        self.steps.setObjectName("steps")
        self.steps.setRange(0, MAX_GUI_STEPS)
        self.steps.setKeyboardTracking(False)
        self.steps.setToolTip(f"How many optimizer steps every run takes (0 to {MAX_GUI_STEPS:,})")
        self.steps.valueChanged.connect(self._steps_edited)
        self.steps.outOfRange.connect(lambda t: self._out_of_range(self.steps, "steps", t))
        layout.addRow("Steps", self.steps)
        # a typed number outside a box's range is said here, not silently clamped
        self.range_message = _hint(QLabel())
        self.range_message.setObjectName("rangeMessage")
        self.range_message.setStyleSheet(ERROR_STYLE)
        self.range_message.hide()
        layout.addRow(self.range_message)

        ctrl.configChanged.connect(self.sync)
        ctrl.expressionRejected.connect(self._expression_rejected)
        self.sync()

    def sync(self, *_):
        cfg = self.ctrl.config
        names = list(SURFACES) + [CUSTOM]
        with blocked(self.surface_combo):
            current = [self.surface_combo.itemData(i) for i in range(self.surface_combo.count())]
            if current != names:
                self.surface_combo.clear()
                for name, surface in SURFACES.items():
                    self.surface_combo.addItem(surface.title, name)
                    self.surface_combo.setItemData(
                        self.surface_combo.count() - 1,
                        f"{surface.name}: f = {surface.formula}",
                        Qt.ItemDataRole.ToolTipRole,
                    )
                self.surface_combo.insertSeparator(self.surface_combo.count())
                self.surface_combo.addItem("Custom expression…", CUSTOM)
                self.surface_combo.setItemData(
                    self.surface_combo.count() - 1,
                    "Type your own f(w1, w2); starts from the current surface's formula",
                    Qt.ItemDataRole.ToolTipRole,
                )
            self.surface_combo.setCurrentIndex(self.surface_combo.findData(cfg.surface))
        surface = self.ctrl.surface
        custom = cfg.surface == CUSTOM
        self.custom_box.setVisible(custom)
        is_data = cfg.surface == DATA_SURFACE
        self.data_box.setVisible(is_data)
        self.data_label.setVisible(is_data)
        if custom:
            if not self.expression_edit.hasFocus() and not self._expression_timer.isActive():
                self.expression_edit.setText(cfg.expression)
            if self.expression_edit.text().strip() == cfg.expression.strip():
                self.clear_expression_message()
            view = cfg.view or DEFAULT_VIEW
            with blocked(*self.view_spins):
                for spin, v in zip(self.view_spins, view, strict=True):
                    spin.setValue(v)
        with blocked(self.data_n, self.data_noise, self.data_seed):
            n, noise, seed = cfg.data
            self.data_n.setValue(int(n))
            self.data_noise.setValue(float(noise))
            self.data_seed.setValue(int(seed))
        pretty = _pretty if custom else str
        text = f"f(w1, w2) = {pretty(surface.formula)}"
        if surface.gradient_formula:
            text += f"\n∇f = {pretty(surface.gradient_formula)}"
        self.formula.setText(text)
        self.formula.setToolTip(surface.description)
        with blocked(self.start_x, self.start_y):
            self.start_x.setValue(cfg.start[0])
            self.start_y.setValue(cfg.start[1])
        with blocked(self.steps):
            self.steps.setValue(cfg.steps)

    def _surface_chosen(self, index: int) -> None:
        name = self.surface_combo.itemData(index)
        if not name:
            return
        try:
            self.ctrl.set_surface(name)
        except ValueError as exc:
            self.ctrl.errorOccurred.emit(str(exc))
            self.sync()
            return
        if name == CUSTOM:  # show the field at once, even while the formula compiles
            self.custom_box.setVisible(True)
            self.data_box.setVisible(False)
            self.data_label.setVisible(False)
            if self.ctrl.config.surface != CUSTOM:
                self.expression_edit.setText(
                    self.ctrl.config.expression or self.ctrl.surface.expression
                )
                with blocked(*self.view_spins):
                    for spin, v in zip(self.view_spins, self.ctrl.surface.view, strict=True):
                        spin.setValue(v)
            self.expression_edit.setFocus()

    # -- custom expression -------------------------------------------------------------
    def _expression_typed(self, _text: str) -> None:
        self._expression_timer.start()  # debounce: compile when the typing pauses

    def _submit_expression(self) -> None:
        self._expression_timer.stop()
        self.ctrl.set_expression(self.expression_edit.text(), self._view())

    def _view(self) -> tuple[float, float, float, float]:
        return tuple(spin.value() for spin in self.view_spins)

    def _view_edited(self, *_):
        if self.ctrl.config.surface != CUSTOM:
            return
        try:
            check_view(self._view())
        except ValueError as exc:
            self.show_expression_message(str(exc))
            return
        self._submit_expression()

    def _expression_rejected(self, text: str, message: str, position: int) -> None:
        if text != self.expression_edit.text().strip():
            return  # about an older text than the one in the field
        self.show_expression_message(message, text, position)

    def show_expression_message(self, message: str, text: str = "", position: int = -1) -> None:
        """Explain a refused formula; mark the character at ``position`` (0-based)."""
        parts = []
        if text and 0 <= position <= len(text):
            before, at, after = text[:position], text[position:position + 1], text[position + 1:]
            mark = (f"<span style='background:#7a1f2b; color:#ffffff; "
                    f"text-decoration: underline'>{html.escape(at or ' ')}</span>")
            parts.append(
                "<span style='font-family: monospace; color: #e8e8f0'>"
                f"{html.escape(before)}{mark}{html.escape(after)}</span>"
            )
        parts.append(html.escape(message))
        keeping = self.ctrl.surface.formula if self.ctrl.config.surface == CUSTOM \
            else self.ctrl.surface.title
        parts.append(f"<span style='color:#b8b8c8'>Keeping {html.escape(keeping)}.</span>")
        self.expression_message.setText("<br>".join(parts))
        self.expression_message.show()
        self.expression_edit.setStyleSheet("QLineEdit { border: 1px solid #ff6b6b; }")

    def clear_expression_message(self) -> None:
        self.expression_message.clear()
        self.expression_message.hide()
        self.expression_edit.setStyleSheet("")

    # -- data set and start ------------------------------------------------------------
    def _data_edited(self, *_):
        self.range_message.hide()
        try:
            self.ctrl.set_data(self.data_n.value(), self.data_noise.value(),
                               self.data_seed.value())
        except ValueError as exc:
            self.ctrl.errorOccurred.emit(str(exc))

    def _start_edited(self, *_):
        self.ctrl.set_start(self.start_x.value(), self.start_y.value())

    def _steps_edited(self, steps: int) -> None:
        self.range_message.hide()
        self.ctrl.set_steps(steps)

    def _out_of_range(self, spin: QSpinBox, what: str, text: str) -> None:
        self.range_message.setText(
            f"{what} {int(text):,} is out of range ({spin.minimum():,} to "
            f"{spin.maximum():,}); kept {spin.value():,}")
        self.range_message.show()


class RunList(QGroupBox):
    """The optimizer runs: add (grouped by family), remove, enable, recolour, select."""

    def __init__(self, ctrl: PlaygroundController, parent=None) -> None:
        super().__init__("Optimizers", parent)
        self.ctrl = ctrl
        layout = QVBoxLayout(self)
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setToolTip("Tick to show a run; select it to edit its hyperparameters")
        # one line per run, elided in the middle so that the end ("(diverged at step N)")
        # stays readable: rows of one height let _fit_height show every run (wrapped rows
        # grew when the scroll bar appeared, which hid the last run behind it)
        self.list.setWordWrap(False)
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setUniformItemSizes(True)
        self.list.currentItemChanged.connect(self._current_changed)
        self.list.itemChanged.connect(self._item_changed)
        self.list.itemDoubleClicked.connect(lambda _item: self.recolor())
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._context_menu)
        layout.addWidget(self.list)

        row = QHBoxLayout()
        self.add_button = QToolButton()
        self.add_button.setText("Add")
        self.add_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.add_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.add_button.setToolTip("Add an optimizer run (grouped by family)")
        self.add_menu = QMenu(self)
        self.add_menu.setToolTipsVisible(True)
        self.add_menu.aboutToShow.connect(self._fill_add_menu)
        self.add_button.setMenu(self.add_menu)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Remove the selected run (Delete)")
        self.remove_button.clicked.connect(self.remove_selected)
        self.color_button = QPushButton("Colour…")
        self.color_button.setToolTip("Choose the selected run's colour (or double-click it)")
        self.color_button.clicked.connect(self.recolor)
        for w in (self.add_button, self.remove_button, self.color_button):
            row.addWidget(w)
        row.addStretch(1)
        layout.addLayout(row)

        ctrl.configChanged.connect(self.sync)
        ctrl.trajectoriesChanged.connect(self.sync)
        ctrl.selectionChanged.connect(self.sync)
        self._fill_add_menu()
        self.sync()

    # -- add picker ----------------------------------------------------------------------
    def _fill_add_menu(self) -> None:
        """Rebuilt on every opening so optimizers registered later show up too."""
        self.add_menu.clear()
        families = list(FAMILIES) + sorted(
            {s.family for s in REGISTRY.values()} - set(FAMILIES)
        )
        for family in families:
            specs = [s for s in REGISTRY.values() if s.family == family]
            if not specs:
                continue
            self.add_menu.addSection(family)
            for spec in specs:
                action = self.add_menu.addAction(f"{spec.title}  —  {spec.summary}")
                action.setToolTip(spec.tooltip())
                action.setStatusTip(spec.summary)
                action.setObjectName(f"add-{spec.name}")
                action.triggered.connect(
                    lambda _checked=False, name=spec.name: self.add_optimizer(name)
                )

    def add_optimizer(self, name: str) -> int | None:
        try:
            spec = playground_spec(name)
        except ValueError as exc:
            self.ctrl.errorOccurred.emit(str(exc))
            return None
        return self.ctrl.add_run(spec)

    # -- actions on the selected run ---------------------------------------------------
    def remove_selected(self) -> None:
        if self.ctrl.selected_run is not None:
            self.ctrl.remove_run(self.ctrl.selected_run)

    def recolor(self) -> None:
        entry = self._selected_entry()
        if entry is None:
            return
        color = QColorDialog.getColor(QColor(entry.color), self, f"Colour of {entry.label}")
        if color.isValid():
            self.ctrl.set_run_color(entry.run_id, color.name())

    def _selected_entry(self) -> RunEntry | None:
        rid = self.ctrl.selected_run
        return None if rid is None else self.ctrl.config.run(rid)

    def _context_menu(self, pos) -> None:
        if self._selected_entry() is None:
            return
        menu = QMenu(self)
        menu.addAction("Colour…", self.recolor)
        menu.addAction("Duplicate", self._duplicate)
        menu.addAction("Remove", self.remove_selected)
        menu.exec(self.list.mapToGlobal(pos))

    def _duplicate(self) -> None:
        entry = self._selected_entry()
        if entry is not None:
            self.ctrl.add_run(entry.spec)

    # -- syncing -------------------------------------------------------------------------
    def sync(self, *_):
        cfg = self.ctrl.config
        with blocked(self.list):
            if [self.list.item(i).data(Qt.ItemDataRole.UserRole)
                    for i in range(self.list.count())] != [r.run_id for r in cfg.runs]:
                self.list.clear()
                for entry in cfg.runs:
                    item = QListWidgetItem()
                    item.setData(Qt.ItemDataRole.UserRole, entry.run_id)
                    item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                    self.list.addItem(item)
            for i, entry in enumerate(cfg.runs):
                item = self.list.item(i)
                traj = self.ctrl.trajectory(entry.run_id)
                err = self.ctrl.error(entry.run_id)
                item.setText(legend_text(entry.label, traj, err))
                item.setIcon(swatch_icon(entry.color, enabled=entry.enabled))
                item.setCheckState(
                    Qt.CheckState.Checked if entry.enabled else Qt.CheckState.Unchecked
                )
                tip = entry.spec.spec.tooltip()
                if err:
                    tip = f"{err}\n\n{tip}"
                elif traj is not None and traj.diverged_at is not None:
                    tip = f"Diverged at step {traj.diverged_at}: {traj.diverged_reason}\n\n{tip}"
                item.setToolTip(tip)
                if entry.run_id == self.ctrl.selected_run:
                    self.list.setCurrentRow(i)
            if self.ctrl.selected_run is None:
                self.list.setCurrentRow(-1)
        self._fit_height()
        has = self.ctrl.selected_run is not None
        self.remove_button.setEnabled(has)
        self.color_button.setEnabled(has)

    def _fit_height(self) -> None:
        """As tall as its rows (3 to 8 of them), so the form below gets the rest."""
        rows = sum(self.list.sizeHintForRow(i) for i in range(self.list.count()))
        per_row = self.list.sizeHintForRow(0) if self.list.count() else 24
        height = max(rows, 3 * per_row) if self.list.count() <= 8 else 8 * per_row
        self.list.setFixedHeight(height + 2 * self.list.frameWidth() + 4)

    def _current_changed(self, current, _previous) -> None:
        if current is not None:
            self.ctrl.select_run(current.data(Qt.ItemDataRole.UserRole))

    def _item_changed(self, item: QListWidgetItem) -> None:
        rid = item.data(Qt.ItemDataRole.UserRole)
        self.ctrl.set_run_enabled(rid, item.checkState() == Qt.CheckState.Checked)


def _parse_spec_text(text: str):
    """parse_spec, with every failure as a ValueError: a typed number too large for a float
    (gd(lr=1000…0)) raises OverflowError in the parser, which must not escape a slot."""
    try:
        return parse_spec(text)
    except ValueError:
        raise
    except (OverflowError, RecursionError, TypeError) as exc:
        raise ValueError(f"bad optimizer spec: a value is too large or malformed ({exc})") \
            from None


class HyperForm(QGroupBox):
    """The selected run's hyperparameters, generated from its OptimizerSpec.

    Every edit goes through ``RunSpec.with_values`` (or ``parse_spec`` for the text field),
    so the engine's validation is the only validation; a rejected value shows the engine's
    message in red and the run keeps its last good spec.
    """

    specRejected = Signal(str)

    def __init__(self, ctrl: PlaygroundController, parent=None) -> None:
        super().__init__("Selected run", parent)
        self.ctrl = ctrl
        self._shown_run: int | None = -1  # none yet: the first sync clears and builds

        outer = QVBoxLayout(self)
        self.title = QLabel()
        bold = QFont()
        bold.setBold(True)
        self.title.setFont(bold)
        self.title.setWordWrap(True)
        outer.addWidget(self.title)
        self.rule = QLabel()
        mono = _mono_font()
        mono.setPointSizeF(8.5)
        self.rule.setFont(mono)
        self.rule.setProperty("role", "rule")
        self.rule.setToolTip("The update rule (g is the gradient at the current point)")
        self.rule.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.rule.setWordWrap(True)  # long comments wrap instead of widening the dock
        outer.addWidget(self.rule)
        self.convention = _hint(QLabel())
        outer.addWidget(self.convention)

        # one page of editors per (rule, schedule), built once and kept: selecting a run
        # only switches pages and sets values (a page takes 8-15 ms to build, a switch
        # about 5 under cProfile). Pages for the setup's runs are built ahead, one per
        # event-loop pass, so the first selection of each is cheap too. At most one page
        # per rule and schedule is ever kept.
        self.pages = QWidget()
        self._pages_layout = QVBoxLayout(self.pages)
        self._pages_layout.setContentsMargins(0, 0, 0, 0)
        self._pages: dict[tuple, _FormPage] = {}
        self._page: _FormPage | None = None
        outer.addWidget(self.pages)
        self._prebuild_timer = QTimer(self)
        self._prebuild_timer.setSingleShot(True)
        self._prebuild_timer.setInterval(PREBUILD_INTERVAL_MS)
        self._prebuild_timer.timeout.connect(self._prebuild_next)

        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        outer.addWidget(line)
        outer.addWidget(QLabel("Spec string"))
        self.spec_edit = QLineEdit()
        self.spec_edit.setFont(mono)
        self.spec_edit.setToolTip(
            "The whole run as text, e.g. adam(lr=0.2,beta1=0.9). Edit it directly; "
            "invalid text is explained below and the run keeps its last good value."
        )
        self.spec_edit.textEdited.connect(self._spec_text_edited)
        self.spec_edit.editingFinished.connect(self._spec_text_finished)
        outer.addWidget(self.spec_edit)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setStyleSheet(ERROR_STYLE)
        self.message.hide()
        outer.addWidget(self.message)

        ctrl.configChanged.connect(self.sync)
        ctrl.configChanged.connect(self._prebuild_soon)
        ctrl.busyChanged.connect(self._prebuild_soon)
        ctrl.playingChanged.connect(self._prebuild_soon)
        ctrl.selectionChanged.connect(self.sync)
        self.sync()

    # -- building ------------------------------------------------------------------------
    def _entry(self) -> RunEntry | None:
        rid = self.ctrl.selected_run
        return None if rid is None else self.ctrl.config.run(rid)

    @staticmethod
    def _page_key(entry: RunEntry) -> tuple:
        return entry.spec.name, entry.spec.resolved().get("schedule")

    @property
    def _editors(self) -> dict[str, QWidget]:
        """The shown page's editors by hyperparameter name (empty with no run selected)."""
        return {} if self._page is None else self._page.editors

    def editor(self, name: str) -> QWidget | None:
        """The selected run's editor for hyperparameter ``name``, if its form has one."""
        return self._editors.get(name)

    def _page_for(self, entry: RunEntry) -> _FormPage:
        key = self._page_key(entry)
        page = self._pages.get(key)
        if page is None:
            # built hidden, a page is laid out once when first shown (built visible, each
            # new row re-laid out the rows before it: ~50 ms per selection for Adam)
            page = _FormPage(self)
            page.hide()
            self._fill(page, entry)
            self._pages_layout.addWidget(page)
            self._pages[key] = page
        return page

    def _prebuild_soon(self, *_) -> None:
        self._prebuild_timer.start()

    def _prebuild_next(self) -> None:
        """Build the page of one run in the setup that has none yet, then come back a little
        later for the next: a setup of 30 runs never blocks the window for more than one
        page's worth (8-15 ms), and the passes between serve input, repaints and animation
        frames. While runs compute or the animation plays, wait: the worker holds the GIL
        for much of the time, and a page built in a frame's pass doubled its stall."""
        if self.ctrl.is_busy() or self.ctrl.is_playing():
            return  # busyChanged(False) or playingChanged(False) calls again
        for entry in self.ctrl.config.runs:
            if self._page_key(entry) not in self._pages:
                self._page_for(entry)
                self._prebuild_timer.start()
                return

    def _show_page(self, page: _FormPage | None) -> None:
        if page is self._page:
            return
        if self._page is not None:
            self._page.hide()
            self._page.set_names(False)
        self._page = page
        if page is not None:
            page.set_names(True)  # findChild(…, "hyper-lr") finds the shown editor only
            page.show()

    def _fill(self, page: _FormPage, entry: RunEntry) -> None:
        form = page.form
        spec = entry.spec.spec
        own = {h.name for h in spec.hypers}
        values = entry.spec.resolved()
        shared_header = schedule_header = False
        for hyper in spec.all_hypers:
            if hyper.name not in own and not schedules.relevant(hyper.name, values):
                continue  # another schedule's parameters
            editor = self._make_editor(hyper)
            if editor is None:
                continue
            if hyper.name not in own and not shared_header:
                shared_header = True
                form.addRow(_hint(QLabel("Stochastic gradients (any optimizer)")))
            if hyper.name == "schedule" and not schedule_header:
                schedule_header = True
                form.addRow(_hint(QLabel("Learning-rate schedule and clipping "
                                         "(torch.optim.lr_scheduler)")))
            label = QLabel(f"{hyper.name} {hyper.symbol}".strip())
            tip = f"{hyper.help}\n{hyper.name} must be {hyper.range_text()}"
            if hyper.default is not None:
                tip += f"; default {format_value(hyper.default)}"
            label.setToolTip(tip)
            editor.setToolTip(tip)
            form.addRow(label, editor)
            page.editors[hyper.name] = editor

    def _make_editor(self, hyper: Hyper) -> QWidget | None:
        name = hyper.name
        if hyper.kind == "bool":
            box = QCheckBox()
            box.toggled.connect(lambda v, n=name: self._value_edited(n, bool(v)))
            return box
        if hyper.kind == "int":
            spin = IntSpinBox()
            lo = -INT_LIMIT if math.isinf(hyper.lo) else max(int(hyper.lo), -INT_LIMIT)
            hi = INT_LIMIT if math.isinf(hyper.hi) else min(int(hyper.hi), INT_LIMIT)
            spin.setRange(lo, hi)
            spin.setKeyboardTracking(False)
            spin.valueChanged.connect(lambda v, n=name: self._value_edited(n, int(v)))
            spin.outOfRange.connect(
                lambda text, h=hyper, lo=lo, hi=hi: self.show_message(
                    f"{h.name}={text} is out of range: {h.name} must be an integer from "
                    f"{lo:,} to {hi:,}; the run keeps its last value"))
            return spin
        if hyper.kind == "float":
            spin = NumberSpinBox(lo=hyper.lo, hi=hyper.hi, valid=hyper.contains)
            spin.valueChanged.connect(lambda v, n=name: self._value_edited(n, float(v)))
            spin.outOfRange.connect(
                lambda text, h=hyper: self.show_message(
                    f"{h.name}={text} is out of range: {h.name} must be {h.range_text()}; "
                    "the run keeps its last value")
            )
            return spin
        if hyper.kind == "choice":
            combo = QComboBox()
            combo.addItems(list(hyper.choices))
            combo.currentTextChanged.connect(lambda v, n=name: self._value_edited(n, str(v)))
            return combo
        if hyper.kind == "spec":
            edit = QLineEdit()
            edit.editingFinished.connect(lambda n=name, e=edit: self._nested_edited(n, e))
            return edit
        return None

    # -- syncing from the model ----------------------------------------------------------
    def sync(self, *_):
        entry = self._entry()
        run_id = None if entry is None else entry.run_id
        if run_id != self._shown_run:
            self._shown_run = run_id
            self.clear_message()  # a message about the run selected before
        if entry is None:
            self._show_page(None)
            self.title.setText("No run selected")
            self.rule.clear()
            self.convention.clear()
            self.spec_edit.clear()
            self.spec_edit.setEnabled(False)
            return
        self.spec_edit.setEnabled(True)
        self._show_page(self._page_for(entry))
        spec = entry.spec.spec
        self.title.setText(f"{spec.title}  ·  {spec.summary}")
        self.rule.setText(narrow_rule(spec.rule))
        self.convention.setText(spec.convention)
        self.convention.setVisible(bool(spec.convention))
        values = entry.spec.resolved()
        for name, editor in self._editors.items():
            value = values.get(name)
            with blocked(editor):
                if isinstance(editor, QCheckBox):
                    editor.setChecked(bool(value))
                elif isinstance(editor, QComboBox):
                    editor.setCurrentText(str(value))
                elif isinstance(editor, QSpinBox):
                    editor.setValue(int(value or 0))
                elif isinstance(editor, NumberSpinBox):
                    if value is not None and editor.value() != float(value):
                        editor.setValue(float(value))
                elif isinstance(editor, QLineEdit) and not editor.hasFocus():
                    editor.setText("" if value is None else str(value))
        # never rewrite the text field under the user's cursor
        if not self.spec_edit.hasFocus() and self.spec_edit.text() != str(entry.spec):
            self.spec_edit.setText(str(entry.spec))

    # -- edits ---------------------------------------------------------------------------
    def _value_edited(self, name: str, value) -> None:
        entry = self._entry()
        if entry is None:
            return
        try:
            spec = entry.spec.with_values(**{name: value})
        except ValueError as exc:
            self.show_message(str(exc))
            return
        self.clear_message()
        self.spec_edit.setText(str(spec))
        self.ctrl.set_run_spec(entry.run_id, spec)

    def _nested_edited(self, name: str, edit: QLineEdit) -> None:
        try:
            inner = _parse_spec_text(edit.text())
        except ValueError as exc:
            self.show_message(str(exc))
            return
        self._value_edited(name, inner)

    def _spec_text_edited(self, text: str) -> None:
        entry = self._entry()
        if entry is None:
            return
        try:
            spec = _parse_spec_text(text)
        except ValueError as exc:
            self.show_message(str(exc))
            return
        self.clear_message()
        self.ctrl.set_run_spec(entry.run_id, spec)

    def _spec_text_finished(self) -> None:
        entry = self._entry()
        if entry is not None and not self.message.isVisible():
            self.spec_edit.setText(str(entry.spec))  # normalized form, e.g. spaces removed

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.show()
        self.specRejected.emit(text)

    def clear_message(self) -> None:
        self.message.clear()
        self.message.hide()


class _FormPage(QWidget):
    """One rule's editors (for one schedule), kept while the window lives."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.form = QFormLayout(self)
        self.form.setContentsMargins(0, 4, 0, 4)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.editors: dict[str, QWidget] = {}

    def set_names(self, shown: bool) -> None:
        for name, editor in self.editors.items():
            editor.setObjectName(f"hyper-{name}" if shown else "")


class ControlPanel(QWidget):
    """Everything in the left dock, stacked."""

    def __init__(self, ctrl: PlaygroundController, parent=None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.surface_box = SurfaceBox(ctrl)
        self.run_list = RunList(ctrl)
        self.form = HyperForm(ctrl)
        layout.addWidget(self.surface_box)
        layout.addWidget(self.run_list)
        layout.addWidget(self.form)
        layout.addStretch(1)


def narrow_rule(rule: str, width: int = 44) -> str:
    """A rule laid out for the narrow dock: where a line is wider than ``width``, the comment
    the registry aligns in a right-hand column (after three or more spaces) goes on its own
    indented line instead of wrapping mid-formula."""
    lines = []
    for line in rule.splitlines():
        if len(line) <= width:
            lines.append(line)
            continue
        body = line.lstrip()
        indent = line[: len(line) - len(body)]
        parts = re.split(r"\s{3,}", body.rstrip(), maxsplit=1)
        lines.append(indent + parts[0])
        if len(parts) == 2:
            lines.append(f"{indent}    {parts[1]}")
    return "\n".join(lines)

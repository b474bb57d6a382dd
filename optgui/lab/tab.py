"""The vanishing-gradient lab tab: settings, Start/Pause/Stop, streaming curves, exports.

A student presses Start and watches several optimizers train the same deep sigmoid MLP on
Fashion-MNIST side by side: the course's four plots (train/validation loss and accuracy),
plus the gradient norm of every layer on a log axis, which shows *why* plain SGD is stuck:
its first layers get gradients orders of magnitude smaller than its last.

Data flows one way (``../shared/ARCHITECTURE.md``): the settings panel builds an immutable
:class:`engine.training.TrainConfig`; a :class:`optgui.lab.worker.ProcessJob` starts a
child process (:mod:`engine.process`) that loads the data, iterates
``engine.training.train`` and streams batches of frozen events back; this tab feeds them to
a :class:`engine.training.TrainingHistory` it owns and only calls ``setData`` on plot items
built once per run (:class:`optgui.lab.plots.TrainingPlots`). Slots do no heavy work, so
the window's event loop stays responsive while training runs (``bench/bench_gui_latency.py``
measures it).

Nothing in the window's process imports torch, ever: the child does. If the child dies (a
segfault in a native library, the out-of-memory killer), the tab says so, keeps the curves
it has, and Start works again.
"""

from __future__ import annotations

import html
import math
import os
from collections import deque
from pathlib import Path

import pyqtgraph as pg
import pyqtgraph.exporters  # noqa: F401  (registers pg.exporters)
from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine import parse_spec
from engine.data import DataError, app_data_dir, find_dataset
from engine.export import atomic_write, atomic_write_many
from engine.process import (
    ChildJob,
    Download,
    DownloadDone,
    DownloadProgress,
    JobFailed,
    Prelude,
    Train,
    Warm,
    spawn,
)
from engine.training import (
    ACTIVATIONS,
    DEFAULT_OPTIMIZERS,
    LIMITS,
    BatchProgress,
    Diverged,
    EpochResult,
    Finished,
    LandscapePath,
    LandscapeRow,
    TrainConfig,
    TrainingHistory,
    TrainingStarted,
    check_trainable,
    format_duration,
    with_default_lr,
)
from optgui.lab.landscape import SharpnessPlots
from optgui.lab.plots import BACKGROUND, PANELS, TrainingPlots, color
from optgui.lab.worker import ProcessJob
from optgui.playground.plots import png_bytes
from optgui.widgets import NumberSpinBox, swatch_icon

PLOT_KEYS = tuple(key for key, _, _ in PANELS) + ("grad_norms",)
PLOT_TITLES = {key: title for key, title, _ in PANELS} | {"grad_norms": "Gradient norm by layer"}
GRID_COLOR = "#2e2e3c"  # opaque: translucent grid lines are slow to paint
LR_RANGE = (1e-8, 10.0)  # the lab-wide lr; a spec may give any lr its optimizer accepts
RATE_WINDOW = 5.0  # seconds of training over which samples/s is averaged
SUMMARY_HINT = ("<span style='color:#a9a9b8'>After each epoch: the share of the last layer's "
                "gradient that reaches the first layer, per optimizer (tiny = vanishing).</span>")
RENDER_INTERVAL_MS = 25  # one plot redrawn per tick while there is something new
# SGD vs SAM with the same base on 20 % noisy labels (Foret et al. 2021, §3.3): sharpness
# and landscapes on. Few epochs on a subset, so it runs in minutes on a CPU.
SAM_PRESET = {
    "optimizers": ["sgd(lr=0.1,momentum=0.9)", "sam(base=sgd(lr=0.1,momentum=0.9),rho=0.05)"],
    "activation": "relu", "layers": 2, "width": 128, "batch_size": 128, "epochs": 8,
    "train_limit": 10_000, "label_noise": 0.2, "sharpness": True, "landscape": "random",
    "landscape_grid": 21,
}
LANDSCAPE_CHOICES = (("Off", None), ("Random plane", "random"), ("PCA plane", "pca"))
RENDER_ORDER = ("stream", "train_loss", "val_loss", "train_acc", "val_acc", "grad_norms",
                "summary", "sharpness", "landscape")
ERROR_STYLE = "color: #ffb4b4; background: #3a2026; border: 1px solid #6a3038;"
INFO_STYLE = "color: #d8e8ff; background: #202a3a; border: 1px solid #34445e;"
OK_STYLE = "color: #b9f3c4;"
WARN_STYLE = "color: #ffcf8a;"


def lab_threads() -> int:
    """torch CPU threads for a lab run: all cores but one, kept free for the window."""
    return max(1, (os.cpu_count() or 2) - 1)


def validate_spec(text: str, lr: float) -> tuple[str | None, str]:
    """``(label, "")`` if ``text`` is a spec the lab can train, else ``(None, reason)``.

    The label is the spec with ``lr`` filled in (what legends and the CSV show).
    """
    text = text.strip()
    if not text:
        return None, "type an optimizer spec, e.g. adam(lr=0.001)"
    try:
        run = with_default_lr(parse_spec(text), lr)
        check_trainable(run)
    except ValueError as exc:
        return None, str(exc)
    return str(run), ""


def _button(text: str) -> QToolButton:
    """A compact text button (QPushButton's style minimum width would widen the panel)."""
    button = QToolButton()
    button.setText(text)
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
    return button


def _fraction(ratio: float) -> str:
    """0.00034 -> "1/2,900" (rich text): how many times smaller, easier to read than 3.4e-4."""
    if not math.isfinite(ratio) or ratio <= 0:
        return "0"
    inv = 1.0 / ratio
    if inv < 1.5:
        return f"{ratio:.2g}"
    if inv < 1e6:
        return f"1/{float(f'{inv:.2g}'):,.0f}"
    mantissa, exponent = f"{inv:.1e}".split("e")
    return f"1/{mantissa}·10<sup>{int(exponent)}</sup>"


class OptimizerList(QGroupBox):
    """The optimizers to compare: spec strings, added/edited through one validated field.

    Each item keeps the text as typed (``Qt.UserRole``) and shows it with ``lr`` filled in,
    so changing the lab's lr changes every spec that does not name its own.
    """

    changed = Signal()

    def __init__(self, lr_fn, parent=None) -> None:
        super().__init__("Optimizers", parent)
        self._lr = lr_fn
        layout = QVBoxLayout(self)
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setToolTip("The optimizers trained side by side, from the same initial "
                             "weights on the same batches. Select one to edit or remove it.")
        self.list.currentItemChanged.connect(self._selected)
        layout.addWidget(self.list)

        self.edit = QLineEdit()
        self.edit.setPlaceholderText("e.g. adam(lr=0.001)  or  sgd(momentum=0.9)")
        self.edit.setToolTip(
            "An optimizer spec as in the playground: name(hyper=value,…). A spec without lr "
            "uses the lab's lr. Enter adds it (or applies the edit to the selected one)."
        )
        self.edit.textChanged.connect(self._validate)
        self.edit.returnPressed.connect(self._return_pressed)
        layout.addWidget(self.edit)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #ff8f8f;")
        self.error.hide()
        layout.addWidget(self.error)

        row = QHBoxLayout()
        self.add_button = _button("Add")
        self.add_button.setToolTip("Add the spec typed above as a new optimizer")
        self.add_button.clicked.connect(self.add_from_edit)
        self.apply_button = _button("Apply")
        self.apply_button.setToolTip("Replace the selected optimizer by the spec typed above")
        self.apply_button.clicked.connect(self.apply_edit)
        self.remove_button = _button("Remove")
        self.remove_button.setToolTip("Remove the selected optimizer")
        self.remove_button.clicked.connect(self.remove_selected)
        self.reset_button = _button("Reset")
        self.reset_button.setToolTip("Back to the course's four: SGD, SGD with momentum 0.9, "
                                     "RMSprop and Adam")
        self.reset_button.clicked.connect(lambda: self.set_specs(DEFAULT_OPTIMIZERS))
        for b in (self.add_button, self.apply_button, self.remove_button, self.reset_button):
            row.addWidget(b)
        layout.addLayout(row)
        self.set_specs(DEFAULT_OPTIMIZERS)

    # -- model ---------------------------------------------------------------------------
    def specs(self) -> tuple[str, ...]:
        return tuple(self.list.item(i).data(Qt.ItemDataRole.UserRole)
                     for i in range(self.list.count()))

    def labels(self) -> tuple[str, ...]:
        return tuple(self.list.item(i).text() for i in range(self.list.count()))

    def set_specs(self, specs) -> None:
        self.list.clear()
        for text in specs:
            self._append(text)
        self.refresh()
        self.changed.emit()

    def _append(self, text: str) -> None:
        item = QListWidgetItem(text)
        item.setData(Qt.ItemDataRole.UserRole, text)
        self.list.addItem(item)

    def refresh(self) -> None:
        """Re-label the items with the current lr and their plot colours."""
        for i in range(self.list.count()):
            item = self.list.item(i)
            label, _ = validate_spec(item.data(Qt.ItemDataRole.UserRole), self._lr())
            item.setText(label or item.data(Qt.ItemDataRole.UserRole))
            item.setIcon(swatch_icon(color(i)))
        self._validate()

    # -- editing -------------------------------------------------------------------------
    def _selected(self, current, _previous=None) -> None:
        if current is not None:
            self.edit.setText(current.data(Qt.ItemDataRole.UserRole))
        self._validate()

    def _check(self, replacing: int | None) -> tuple[str | None, str]:
        label, error = validate_spec(self.edit.text(), self._lr())
        if label is None:
            return None, error
        others = [lab for i, lab in enumerate(self.labels()) if i != replacing]
        if label in others:
            return None, f"{label} is already in the list"
        return label, ""

    def _validate(self) -> bool:
        """Inline feedback: the reason under the field, red border, buttons disabled."""
        row = self.list.currentRow()
        text = self.edit.text().strip()
        label_new, err_new = self._check(None)
        if row >= 0:  # editing the selected item: it may keep its own label
            label_rep, error = self._check(row)
        else:
            label_rep, error = None, err_new
        if not text:
            error = ""
        self.add_button.setEnabled(label_new is not None)
        raw = self.list.item(row).data(Qt.ItemDataRole.UserRole) if row >= 0 else None
        self.apply_button.setEnabled(label_rep is not None and text != raw)
        self.remove_button.setEnabled(row >= 0 and self.list.count() > 1)
        self.error.setText(error)
        self.error.setVisible(bool(error))
        self.edit.setStyleSheet("border: 1px solid #d05050;" if error else "")
        return not error

    def _return_pressed(self) -> None:
        if self.apply_button.isEnabled():
            self.apply_edit()
        elif self.add_button.isEnabled():
            self.add_from_edit()

    def add_from_edit(self) -> bool:
        label, _ = self._check(None)
        if label is None:
            return False
        self._append(self.edit.text().strip())
        self.list.setCurrentRow(self.list.count() - 1)
        self.refresh()
        self.changed.emit()
        return True

    def apply_edit(self) -> bool:
        row = self.list.currentRow()
        if row < 0 or self._check(row)[0] is None:
            return False
        self.list.item(row).setData(Qt.ItemDataRole.UserRole, self.edit.text().strip())
        self.refresh()
        self.changed.emit()
        return True

    def remove_selected(self) -> None:
        row = self.list.currentRow()
        if row < 0 or self.list.count() <= 1:
            return
        self.list.takeItem(row)
        self.refresh()
        self.changed.emit()


class LabSettings(QWidget):
    """Everything that defines a run; :meth:`config` turns it into a TrainConfig."""

    changed = Signal()
    dataFolderChanged = Signal()
    inputRefused = Signal(str)  # a typed value was out of range: the message says so

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)

        model = QGroupBox("Network")
        form = QFormLayout(model)
        self.layers = self._int(5, "layers", "Hidden layers between the 784 inputs and the 10 "
                                "outputs. Deeper sigmoid nets make the gradient vanish more.")
        self.width = self._int(128, "width", "Units in each hidden layer")
        self.activation = QComboBox()
        self.activation.addItems(ACTIVATIONS)
        self.activation.setToolTip("Hidden activation. sigmoid's derivative is at most ¼, so "
                                   "each layer shrinks the gradient: the vanishing gradient. "
                                   "Try relu to see it go away.")
        form.addRow("Hidden layers", self.layers)
        form.addRow("Width", self.width)
        form.addRow("Activation", self.activation)
        outer.addWidget(model)

        schedule = QGroupBox("Training")
        form = QFormLayout(schedule)
        self.lr = NumberSpinBox(lo=LR_RANGE[0], hi=LR_RANGE[1])
        self.lr.setValue(0.01)
        self.lr.setToolTip(f"Learning rate of every optimizer whose spec gives no lr= "
                           f"({LR_RANGE[0]:g} to {LR_RANGE[1]:g})")
        self.lr.outOfRange.connect(lambda text: self.inputRefused.emit(
            f"Learning rate {text} is outside {LR_RANGE[0]:g} … {LR_RANGE[1]:g}; it stays "
            f"{self.lr.textFromValue(self.lr.value())}. Give a larger rate to one optimizer "
            f"in its spec, e.g. sgd(lr=50)."))
        self.batch_size = self._int(512, "batch_size", "Samples per mini-batch")
        self.epochs = self._int(10, "epochs", "Passes over the training set")
        self.seed = self._int(42, "seed", "Seed of the initial weights and the batch order "
                              "(all optimizers share both)")
        self.subset = QCheckBox("Training subset")
        self.subset.setToolTip("Train on the first N training samples only, for quick runs "
                               "(validation always uses the whole test set)")
        self.limit = QSpinBox()
        self.limit.setRange(100, 60_000)
        self.limit.setSingleStep(1000)
        self.limit.setValue(10_000)
        self.limit.setSuffix(" samples")
        self.limit.setEnabled(False)
        self.limit.setToolTip(self.subset.toolTip())
        self.subset.toggled.connect(self.limit.setEnabled)
        form.addRow("Learning rate", self.lr)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Epochs", self.epochs)
        form.addRow("Seed", self.seed)
        form.addRow(self.subset, self.limit)
        outer.addWidget(schedule)

        self.optimizers = OptimizerList(self.lr.value)
        self.lr.valueChanged.connect(lambda _v: self.optimizers.refresh())
        outer.addWidget(self.optimizers, 1)

        sharp = QGroupBox("Sharpness and landscapes")
        form = QFormLayout(sharp)
        self.label_noise = QDoubleSpinBox()
        self.label_noise.setRange(0.0, 100.0)
        self.label_noise.setDecimals(0)
        self.label_noise.setSingleStep(5.0)
        self.label_noise.setSuffix(" %")
        self.label_noise.setToolTip("Replace this share of the TRAINING labels by another "
                                    "class (seeded); validation stays clean. Noisy labels "
                                    "are where SAM's flatter minima generalize better.")
        self.sharpness = QCheckBox("Measure sharpness")
        self.sharpness.setToolTip("After every epoch: λ_max (the Hessian's largest eigenvalue, "
                                  "by power iteration) and Keskar's ε-sharpness, on the first "
                                  "training images. Costs a few seconds per optimizer.")
        self.sharpness_samples = self._int(2048, "sharpness_samples",
                                           "Training images (the first N) that sharpness "
                                           "and landscapes are measured on")
        self.landscape = QComboBox()
        for text, value in LANDSCAPE_CHOICES:
            self.landscape.addItem(text, value)
        self.landscape.setToolTip("After training, the loss around each optimizer's final "
                                  "weights on a plane (Li et al. 2018): random = two "
                                  "Gaussian filter-normalized directions, PCA = the "
                                  "training path's two main directions. One panel per "
                                  "optimizer on one colour scale, drawn row by row")
        self.landscape_grid = self._int(21, "landscape_grid", "Grid points per side")
        self.preset = QPushButton("Preset: SGD vs SAM")
        self.preset.setToolTip("The preset experiment: SGD with momentum and SAM with the "
                               "same base on 20 % noisy labels, sharpness and landscapes on "
                               "(8 epochs on 10,000 images)")
        self.preset.clicked.connect(lambda: self.apply(SAM_PRESET))
        form.addRow("Label noise", self.label_noise)
        form.addRow(self.sharpness)
        form.addRow("Samples", self.sharpness_samples)
        form.addRow("Landscape", self.landscape)
        form.addRow("Grid", self.landscape_grid)
        form.addRow(self.preset)
        outer.addWidget(sharp)

        data = QGroupBox("Fashion-MNIST")
        box = QVBoxLayout(data)
        row = QHBoxLayout()
        self.data_dir = QLineEdit()
        self.data_dir.setPlaceholderText("found automatically")
        self.data_dir.setToolTip(
            "A folder holding the four Fashion-MNIST IDX files (raw or .gz), or a torchvision "
            "root. Empty: the app's data folder, /usr/share/datasets/fashion-mnist "
            "(Debian package dataset-fashion-mnist), then ./data/FashionMNIST/raw."
        )
        self.data_dir.setClearButtonEnabled(True)
        self.data_dir.editingFinished.connect(self.dataFolderChanged)
        self.data_dir.textChanged.connect(lambda t: t or self.dataFolderChanged.emit())
        self.choose = QPushButton("Choose…")
        self.choose.setToolTip("Choose the folder holding the Fashion-MNIST files")
        self.choose.clicked.connect(self._choose_folder)
        row.addWidget(self.data_dir, 1)
        row.addWidget(self.choose)
        box.addLayout(row)
        self.located = QLabel()
        self.located.setWordWrap(True)
        self.located.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.addWidget(self.located)
        outer.addWidget(data)

        for w in (self.layers, self.width, self.batch_size, self.epochs, self.seed, self.limit):
            w.valueChanged.connect(self.changed)
        self.lr.valueChanged.connect(self.changed)
        self.activation.currentIndexChanged.connect(self.changed)
        self.subset.toggled.connect(self.changed)
        self.optimizers.changed.connect(self.changed)
        for w in (self.label_noise, self.sharpness_samples, self.landscape_grid):
            w.valueChanged.connect(self.changed)
        self.sharpness.toggled.connect(self.changed)
        self.landscape.currentIndexChanged.connect(self.changed)

    def _int(self, value: int, limit: str, tip: str) -> QSpinBox:
        box = QSpinBox()
        lo, hi = LIMITS[limit]
        box.setRange(max(lo, 0), min(hi, 2**31 - 1))
        box.setValue(value)
        box.setToolTip(tip)
        box.setAccelerated(True)
        return box

    def _choose_folder(self) -> None:
        start = self.data_dir.text() or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Fashion-MNIST folder", start)
        if folder:
            self.data_dir.setText(folder)
            self.dataFolderChanged.emit()

    def data_folder(self) -> str | None:
        return self.data_dir.text().strip() or None

    def _int_boxes(self) -> dict[str, QSpinBox]:
        return {"layers": self.layers, "width": self.width, "batch_size": self.batch_size,
                "epochs": self.epochs, "seed": self.seed, "train_limit": self.limit}

    def state(self) -> dict:
        """Everything the panel holds, as plain JSON-able values (saved with the window's
        settings as they change, and restored at the next start)."""
        return {**{k: box.value() for k, box in self._int_boxes().items()},
                "activation": self.activation.currentText(), "lr": float(self.lr.value()),
                "subset": self.subset.isChecked(), "data_dir": self.data_dir.text(),
                "optimizers": list(self.optimizers.specs()),
                "label_noise": float(self.label_noise.value()) / 100.0,
                "sharpness": self.sharpness.isChecked(),
                "sharpness_samples": self.sharpness_samples.value(),
                "landscape": self.landscape.currentData(),
                "landscape_grid": self.landscape_grid.value()}

    def set_state(self, state: dict) -> None:
        """Restore what :meth:`state` returned; anything missing, of the wrong type or out
        of range is skipped (the default stays), so an old or edited file never breaks the
        lab. What passes is shown through :meth:`apply`, as a lesson's settings are."""
        if not isinstance(state, dict):
            return
        values: dict = {}
        for key, box in self._int_boxes().items():
            value = state.get(key)
            if isinstance(value, int) and not isinstance(value, bool) \
                    and box.minimum() <= value <= box.maximum():
                values[key] = value
        if "train_limit" in values:  # remembered even while the subset is off
            self.limit.setValue(values.pop("train_limit"))
        if isinstance(state.get("subset"), bool):
            values["train_limit"] = self.limit.value() if state["subset"] else None
        if state.get("activation") in ACTIVATIONS:
            values["activation"] = state["activation"]
        lr = state.get("lr")
        if isinstance(lr, (int, float)) and not isinstance(lr, bool) \
                and self.lr.minimum() <= lr <= self.lr.maximum():
            values["lr"] = float(lr)
        specs = state.get("optimizers")
        if isinstance(specs, list) and specs and all(isinstance(t, str) for t in specs):
            rate = values.get("lr", float(self.lr.value()))
            labels = [validate_spec(t, rate)[0] for t in specs]
            if all(labels) and len(set(labels)) == len(labels):
                values["optimizers"] = specs
        noise = state.get("label_noise")
        if isinstance(noise, (int, float)) and not isinstance(noise, bool) and 0 <= noise <= 1:
            values["label_noise"] = float(noise)
        if isinstance(state.get("sharpness"), bool):
            values["sharpness"] = state["sharpness"]
        if "landscape" in state and state["landscape"] in (v for _, v in LANDSCAPE_CHOICES):
            values["landscape"] = state["landscape"]
        for key, box in (("sharpness_samples", self.sharpness_samples),
                         ("landscape_grid", self.landscape_grid)):
            value = state.get(key)
            if isinstance(value, int) and not isinstance(value, bool) \
                    and box.minimum() <= value <= box.maximum():
                values[key] = value
        self.apply(values)
        if isinstance(state.get("data_dir"), str):
            self.data_dir.setText(state["data_dir"])
            self.dataFolderChanged.emit()
    def config(self) -> TrainConfig:
        """The run these settings describe (a ValueError names a bad setting)."""
        return TrainConfig(
            optimizers=self.optimizers.specs(), lr=float(self.lr.value()),
            epochs=self.epochs.value(), batch_size=self.batch_size.value(),
            layers=self.layers.value(), width=self.width.value(),
            activation=self.activation.currentText(), seed=self.seed.value(),
            train_limit=self.limit.value() if self.subset.isChecked() else None,
            data_dir=self.data_folder(), threads=lab_threads(),
            label_noise=float(self.label_noise.value()) / 100.0,
            sharpness=self.sharpness.isChecked(),
            sharpness_samples=self.sharpness_samples.value(),
            landscape=self.landscape.currentData(),
            landscape_grid=self.landscape_grid.value(),
        )

    def apply(self, values) -> None:
        """Show the settings of a lesson: any of engine.lesson.LAB_KEYS (already checked by
        TrainConfig); keys that are missing keep their current value."""
        spins = {"layers": self.layers, "width": self.width, "batch_size": self.batch_size,
                 "epochs": self.epochs, "seed": self.seed}
        for key, spin in spins.items():
            if key in values:
                spin.setValue(int(values[key]))
        if "lr" in values:
            self.lr.setValue(float(values["lr"]))
        if "activation" in values:
            self.activation.setCurrentText(str(values["activation"]))
        if "train_limit" in values:
            limit = values["train_limit"]
            self.subset.setChecked(limit is not None)
            if limit is not None:
                self.limit.setValue(int(limit))
        if "optimizers" in values:
            self.optimizers.set_specs(tuple(values["optimizers"]))
        if "label_noise" in values:
            self.label_noise.setValue(100.0 * float(values["label_noise"]))
        if "sharpness" in values:
            self.sharpness.setChecked(bool(values["sharpness"]))
        if "sharpness_samples" in values:
            self.sharpness_samples.setValue(int(values["sharpness_samples"]))
        if "landscape" in values:
            at = self.landscape.findData(values["landscape"])
            self.landscape.setCurrentIndex(max(at, 0))
        if "landscape_grid" in values:
            self.landscape_grid.setValue(int(values["landscape_grid"]))


class LabTab(QWidget):
    """The vanishing-gradient lab (the window's second tab)."""

    stateChanged = Signal(str)  # "idle", "running", "paused", "stopping"
    # the worker thread has ended (success, stop or failure) and the curves show it all
    trainingFinished = Signal()
    # Re-emitted in the GUI thread from the current worker: wait on these, not on the
    # worker's own signals, whose direct receivers would run in the worker thread.
    workerPaused = Signal(bool)  # the child acknowledged a pause (True) or a resume (False)
    workerFinished = Signal()  # the training process has ended (normally or not)
    messageShown = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.history = TrainingHistory()
        self.state = "idle"
        self.generation = 0
        self.job: ProcessJob | None = None
        self.download_job: ProcessJob | None = None
        # called in each child process before its job (tests inject failures with it)
        self.child_prelude: Prelude | None = None
        # a child process started ahead while the lab is shown: it imports torch and loads
        # the data before Start is pressed, so Start trains at once (None: start one then)
        self._spare: ChildJob | None = None
        self.keep_spare = True
        self.plots: TrainingPlots | None = None
        self._stream_x: list[list[float]] = []
        self._stream_y: list[list[float]] = []
        self._stream_curves: list[pg.PlotDataItem] = []
        self._rate: deque[tuple[float, int]] = deque()
        self._dirty: set[str] = set()
        self._finish_pending = False
        self._render_pos = len(RENDER_ORDER) - 1  # the next tick starts with "stream"
        self._render_timer = QTimer(self)
        self._render_timer.setInterval(RENDER_INTERVAL_MS)
        self._render_timer.timeout.connect(self._render_next)
        self._build()
        self.locate_data()
        self._rebuild_plots(self.settings.optimizers.labels(), self.settings.layers.value() + 1,
                            self.settings.epochs.value())
        self._set_state("idle")

    # ------------------------------------------------------------------ building
    def _build(self) -> None:
        self.settings = LabSettings()
        self.settings.dataFolderChanged.connect(self.locate_data)
        self.settings.changed.connect(self._settings_changed)
        self.settings.inputRefused.connect(lambda text: self.show_message(text, error=False))
        scroll = QScrollArea()
        scroll.setWidget(self.settings)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFixedWidth(max(330, self.settings.minimumSizeHint().width() + 14))

        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Train every optimizer in the list side by side (Ctrl+Return)")
        self.start_button.clicked.connect(self.start)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Pause / resume the training")
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the training (the curves so far are kept)")
        self.stop_button.clicked.connect(self.stop)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.setFormat("%p%")
        self.progress.setToolTip("Samples trained by all optimizers together; the speed "
                                 "(samples per second, all optimizers together, over the last "
                                 "few seconds) and the time left")
        self.status = ""  # what the progress bar says besides the percentage

        self.export_csv_button = QPushButton("Export CSV…")
        self.export_csv_button.setToolTip("Save the metrics per optimizer and epoch (the same "
                                          "columns as `main.py train --csv`)")
        self.export_csv_button.clicked.connect(lambda: self.export_csv())
        self.export_png_button = QToolButton()
        self.export_png_button.setText("Export PNG")
        self.export_png_button.setToolTip("Save a plot as a PNG picture")
        self.export_png_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_png_button)
        menu.addAction("All plots: one figure and each plot alone, into a folder…",
                       lambda: self.export_all_png())
        menu.addSeparator()
        for key in PLOT_KEYS:
            menu.addAction(f"{PLOT_TITLES[key]}…", lambda k=key: self.export_plot_png(k))
        self.export_png_button.setMenu(menu)

        controls = QHBoxLayout()
        for w in (self.start_button, self.pause_button, self.stop_button):
            controls.addWidget(w)
        controls.addStretch(1)
        controls.addWidget(self.export_csv_button)
        controls.addWidget(self.export_png_button)

        self.message = QLabel()
        self.message.setObjectName("labMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.download_button = QPushButton("Download Fashion-MNIST")
        self.download_button.setToolTip(
            "Download the four files (30 MB) through torchvision's mirrors into the chosen "
            f"data folder, or {app_data_dir()} if none is chosen"
        )
        self.download_button.clicked.connect(self.toggle_download)
        self.download_progress = QProgressBar()
        self.download_progress.setRange(0, 1000)
        self.download_progress.setFormat("%p%")
        self.download_progress.hide()
        banner = QHBoxLayout()
        banner.addWidget(self.message, 1)
        banner.addWidget(self.download_progress)
        banner.addWidget(self.download_button)
        self.message_box = QWidget()
        self.message_box.setLayout(banner)
        banner.setContentsMargins(0, 0, 0, 0)
        self.message_box.hide()

        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground(BACKGROUND)
        # the right-click Export… writes the plot under the mouse as the lab's buttons do
        # (slide-sized, with the legend), not pyqtgraph's picture of the plot's screen shape
        export = self.graphics.scene().contextMenu[0]
        export.triggered.disconnect()
        export.setText("Export PNG…")
        export.triggered.connect(self._export_from_menu)
        self.summary = QLabel(SUMMARY_HINT)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setWordWrap(True)
        # a fixed height: a label growing when the first epoch arrives would re-lay out (and
        # fully repaint) all five plots in one go; three lines hold four optimizers' shares
        # in a 1024-pixel window
        self.summary.setFixedHeight(3 * self.summary.fontMetrics().lineSpacing() + 6)
        self.summary.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.summary.setToolTip("The first layer's weight-gradient norm divided by the last "
                                "layer's, averaged over the latest epoch: a tiny fraction "
                                "means the gradient vanishes on its way back to the input")

        right = QVBoxLayout()
        right.setContentsMargins(0, 0, 0, 0)
        right.addLayout(controls)
        right.addWidget(self.progress)  # a row of its own: its text fits a 1024-pixel window
        right.addWidget(self.message_box)
        self.sharp_graphics = pg.GraphicsLayoutWidget()
        self.sharp_graphics.setBackground(BACKGROUND)
        self.sharp_plots = SharpnessPlots(self.sharp_graphics.ci)
        self.views = QTabWidget()
        self.views.setDocumentMode(True)
        self.views.addTab(self.graphics, "Curves")
        self.views.addTab(self.sharp_graphics, "Sharpness && landscape")
        self.views.setTabToolTip(1, "Generalization gap, λ_max with the 2/η line, and the "
                                    "loss landscapes (turn on 'Measure sharpness' or a "
                                    "landscape in the settings)")
        right.addWidget(self.views, 1)
        right.addWidget(self.summary)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(scroll)
        layout.addLayout(right, 1)

    def _rebuild_plots(self, labels, n_linear: int, epochs: int) -> None:
        """Set the plots up for a run: built once, then reused (a new run keeps the items
        of the optimizers that remain; later updates only call setData)."""
        labels = tuple(labels)
        if self.plots is None:
            self._build_plots(labels, n_linear)
        else:
            self.plots.set_runs(labels, n_linear)
        loss = self.plots.plots["train_loss"]
        while len(self._stream_curves) > len(labels):
            loss.removeItem(self._stream_curves.pop())
        for i in range(len(self._stream_curves), len(labels)):
            curve = loss.plot([], [], pen=pg.mkPen(color(i), width=1.2))
            curve.setZValue(-1)  # under the epoch dots
            self._stream_curves.append(curve)
        for curve in self._stream_curves:
            curve.setData([], [])
        # the whole run's epochs from the start: the x axes never change while curves grow
        # (re-laying out axes is most of a repaint's cost), and the run's length is visible
        for key, _, _ in PANELS:
            self.plots.plots[key].setXRange(0, max(epochs, 1), padding=0.02)
        self._stream_x = [[] for _ in labels]
        self._stream_y = [[] for _ in labels]

    def _build_plots(self, labels, n_linear: int) -> None:
        self.plots = TrainingPlots(self.graphics.ci, tuple(labels), n_linear)
        for key, _, _ in PANELS:
            self.plots.plots[key].getViewBox().enableAutoRange(axis="x", enable=False)
        loss = self.plots.plots["train_loss"]
        # a short title: a long one sets the least width of the whole row of plots
        loss.titleLabel.setToolTip("The line follows every few batches; the dots are the "
                                   "epoch means")
        # y range set by _fit_loss_range (a spike in the first batches would flatten the rest)
        loss.getViewBox().enableAutoRange(axis="y", enable=False)
        # pyqtgraph draws grids as translucent lines from the axes, over the whole view, on
        # every repaint: ~85 ms a frame for these five plots on a software-rendered window,
        # which would stall the event loop while curves stream. No grids; the gradient plot
        # gets plain opaque lines at each decade (cheap), since decades are its story.
        for plot in self.plots.plots.values():
            plot.showGrid(x=False, y=False)
        grad = self.plots.plots["grad_norms"]
        for decade in range(-15, 4):
            line = pg.InfiniteLine(pos=decade, angle=0, movable=False, pen=pg.mkPen(GRID_COLOR))
            line.setZValue(-10)
            grad.addItem(line, ignoreBounds=True)
        # the grad-norm legend names the colours; the four metric plots share them
        self.graphics.ci.layout.setRowStretchFactor(0, 3)
        self.graphics.ci.layout.setRowStretchFactor(1, 2)

    # ------------------------------------------------------------------ data
    def locate_data(self) -> bool:
        """Show where Fashion-MNIST is (or why not); offer the download when it is missing."""
        label = self.settings.located
        try:
            location = find_dataset(self.settings.data_folder())
        except DataError as exc:
            label.setText(f"Not found: {exc}")
            label.setStyleSheet(WARN_STYLE)
            self.download_button.setVisible(True)
            return False
        label.setText(f"Using {location.folder} ({location.source})")
        label.setStyleSheet(OK_STYLE)
        if self.download_job is None:
            self.download_button.setVisible(False)
        return True

    def toggle_download(self) -> None:
        if self.download_job is not None:
            self.download_job.stop()
            self.download_button.setEnabled(False)
            return
        # into the folder the user chose (an empty one is not a reason to use another copy)
        self.start_download(self.settings.data_folder())

    def start_download(self, root: str | None = None) -> None:
        """Download into ``root`` (default: the app's data folder) in a child process (the
        download takes its mirrors and checksums from torchvision)."""
        if self.download_job is not None:
            return
        job = ProcessJob(0, Download(root), self.child_prelude, self)
        job.events.connect(self._download_events)
        job.ended.connect(self._download_ended)
        try:
            job.start()
        except OSError as exc:
            self.show_message(f"Download failed: could not start a process: {exc}")
            return
        self.download_job = job
        self.download_button.setText("Cancel download")
        self.download_button.setVisible(True)
        self.download_progress.setValue(0)
        self.download_progress.show()
        self.start_button.setEnabled(False)
        self.show_message("Downloading Fashion-MNIST (about 30 MB)…", error=False)

    @Slot(int, object)
    def _download_events(self, _generation: int, events: tuple) -> None:
        for ev in events:
            if isinstance(ev, DownloadProgress):
                self._download_progress(ev.done, ev.total, ev.name)
            elif isinstance(ev, DownloadDone):
                self._download_succeeded(ev.where)
            elif isinstance(ev, JobFailed):
                text = ev.message.removeprefix("Data problem: ").removeprefix(
                    "Training failed: ")
                self._download_failed(text if ev.category == "cancelled"
                                      else f"Download failed: {text}")

    @Slot(int, int, str)
    def _download_progress(self, done: int, total: int, name: str) -> None:
        if total:
            self.download_progress.setValue(int(1000 * done / total))
        self.download_progress.setFormat(f"%p%  {done / 1e6:.1f} MB  {name}")

    @Slot(str)
    def _download_succeeded(self, where: str) -> None:
        self.show_message(f"Fashion-MNIST downloaded to {where}. Press Start.", error=False)
        self.locate_data()

    @Slot(str)
    def _download_failed(self, message: str) -> None:
        self.show_message(message, error=True, offer_download=True)

    @Slot(int, str)
    def _download_ended(self, _generation: int, status: str) -> None:
        if status:
            self._download_failed(f"Download failed: the download process {status}.")
        self.download_job = None
        self.download_progress.hide()
        self.download_button.setText("Download Fashion-MNIST")
        self.download_button.setEnabled(True)
        self.download_button.setVisible(not self.locate_data())
        self._set_state(self.state)

    # ------------------------------------------------------------------ messages
    def show_message(self, text: str, *, error: bool = True, offer_download: bool = False):
        self.message.setText(text)
        self.message.setStyleSheet(
            f"QLabel {{ {ERROR_STYLE if error else INFO_STYLE} border-radius: 4px; "
            f"padding: 6px; }}"
        )
        self.download_button.setVisible(offer_download or self.download_job is not None)
        self.message_box.show()
        self.messageShown.emit(text)

    def clear_message(self) -> None:
        self.message.clear()
        self.message_box.hide()

    def message_text(self) -> str:
        return self.message.text() if self.message_box.isVisibleTo(self) else ""

    # ------------------------------------------------------------------ run control
    def _set_state(self, state: str) -> None:
        self.state = state
        busy = state != "idle"
        downloading = self.download_job is not None
        self.start_button.setEnabled(not busy and not downloading)
        self.pause_button.setEnabled(state in ("running", "paused"))
        self.pause_button.setText("Resume" if state == "paused" else "Pause")
        self.stop_button.setEnabled(state in ("running", "paused"))
        self.settings.setEnabled(not busy)
        self.stateChanged.emit(state)

    def _settings_changed(self) -> None:
        """Before the first run, the empty plots follow the chosen optimizers and depth."""
        if self.state == "idle" and self.history.started is None:
            self._rebuild_plots(self.settings.optimizers.labels(),
                                self.settings.layers.value() + 1, self.settings.epochs.value())

    def start(self) -> bool:
        """Start training with the current settings; False (and a message) if it cannot."""
        if self.state != "idle" or self.download_job is not None:
            return False
        try:
            config = self.settings.config()
        except ValueError as exc:
            self.show_message(f"Invalid setting: {exc}")
            return False
        try:
            find_dataset(config.data_dir)  # quick check (file names only) before a thread
        except DataError as exc:
            self.locate_data()
            self.show_message(f"{exc}.", offer_download=True)
            return False
        self.clear_message()
        self.generation += 1
        self.history = TrainingHistory()
        self._dirty.clear()
        self._finish_pending = False
        self._rate.clear()
        self._rebuild_plots(config.labels, config.n_linear, config.epochs)
        self.sharp_plots.reset()
        self.summary.setText(SUMMARY_HINT)
        self.progress.setValue(0)
        self.set_status("starting the training process (torch, data)…", percent=False)
        job = ProcessJob(self.generation, Train(config), self.child_prelude, self)
        job.events.connect(self._on_events)
        job.pausedChanged.connect(self._on_worker_paused)
        job.ended.connect(self._on_job_ended)
        spare, self._spare = self._spare, None
        try:
            job.start(spare)
        except OSError as exc:
            self.show_message(f"Could not start the training process: {exc}")
            self.set_status("failed")
            return False
        self.job = job
        self._set_state("running")
        return True

    @Slot(int, bool)
    def _on_worker_paused(self, generation: int, paused: bool) -> None:
        if generation == self.generation:
            self.workerPaused.emit(paused)

    def toggle_pause(self) -> None:
        if self.state == "running":
            self.pause()
        elif self.state == "paused":
            self.resume()

    def pause(self) -> None:
        if self.job is not None and self.state == "running":
            self.job.pause()
            self._set_state("paused")
            self.set_status("paused")

    def resume(self) -> None:
        if self.job is not None and self.state == "paused":
            self._rate.clear()  # the pause must not count as slow training
            self.job.resume()
            self._set_state("running")

    def stop(self) -> None:
        if self.job is not None and self.state in ("running", "paused"):
            self.job.stop()
            self._set_state("stopping")
            self.set_status("stopping…")

    def _prepare_spare(self) -> None:
        """Keep one child process ready (started, warming up) while the lab is shown."""
        if not self.keep_spare or self.job is not None or not self.isVisible():
            return
        if self._spare is not None and self._spare.is_alive():
            return
        try:
            folder = self.settings.data_folder()
            try:
                find_dataset(folder)  # file names only: is there data to load ahead?
                found = True
            except DataError:
                found = False
            self._spare = spawn(Warm(folder, load_data=found))
        except OSError:
            self._spare = None  # Start will say why a process cannot start

    def showEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().showEvent(event)
        QTimer.singleShot(0, self._prepare_spare)

    def shutdown(self, timeout_ms: int = 1000) -> bool:
        """End any training or download process now and wait for it (the window is
        closing): True once no child process is left."""
        spare, self._spare = self._spare, None
        if spare is not None:
            spare.shutdown(grace=0.0)
        ok = True
        for job in (self.job, self.download_job):
            if job is not None:
                ok = job.shutdown(timeout_ms) and ok
        return ok

    def is_running(self) -> bool:
        return any(j is not None and j.is_running() for j in (self.job, self.download_job))

    # ------------------------------------------------------------------ events (GUI thread)
    @Slot(int, object)
    def _on_events(self, generation: int, events: tuple) -> None:
        """Feed a batch of events to the history and the plots; cheap by design."""
        if generation != self.generation:
            return  # from a previous run
        epoch_seen = False
        landscape_seen = False
        last_batch = None
        for ev in events:
            self.history.add(ev)
            if isinstance(ev, BatchProgress):
                x = ev.epoch_progress
                for i, loss in enumerate(ev.losses):
                    if math.isfinite(loss):
                        self._stream_x[i].append(x)
                        self._stream_y[i].append(loss)
                last_batch = ev
            elif isinstance(ev, EpochResult):
                epoch_seen = True
            elif isinstance(ev, (LandscapeRow, LandscapePath)):
                landscape_seen = True
                if isinstance(ev, LandscapeRow):
                    self.set_status(f"landscape of {ev.optimizer}: row {ev.j + 1}/{ev.rows}",
                                    percent=False)
            elif isinstance(ev, TrainingStarted):
                self.set_status(f"epoch 1/{ev.epochs}")
                self.settings.located.setText(f"Using {ev.data_source}: {ev.n_train:,} "
                                              f"training, {ev.n_val:,} validation samples")
            elif isinstance(ev, Diverged):
                if self.plots is not None and ev.index < len(self.plots.optimizers):
                    self.plots.mark_diverged(ev.index)
                self.show_message(f"{ev.optimizer} diverged in epoch {ev.epoch} ({ev.reason}); "
                                  f"the others go on.", error=False)
            elif isinstance(ev, Finished):
                self._finished(ev)
            elif isinstance(ev, JobFailed):
                self.show_message(ev.message, offer_download=ev.category == "data")
                self.set_status("failed")
        if last_batch is not None:
            self._show_progress(last_batch)
            self._mark_dirty(("stream",))
        if epoch_seen:
            self._mark_dirty(RENDER_ORDER)
        if landscape_seen:
            self._mark_dirty(("landscape",))

    # ------------------------------------------------------------------ drawing, in slices
    def _mark_dirty(self, keys) -> None:
        self._dirty.update(keys)
        if not self._render_timer.isActive():
            self._render_timer.start()

    @Slot()
    def _render_next(self) -> None:
        """Redraw one plot (or the summary) per timer tick.

        Redrawing all five at once after an epoch (setData on 20 curves with symbols, ten
        axes re-laid out, one big repaint) takes 60–120 ms of the GUI thread while the
        worker competes for the GIL; one plot per tick keeps every slice, repaint included,
        well under the 50 ms budget, and the viewer cannot tell the difference.
        """
        # round robin from the plot drawn last: streamed batches re-mark "stream" several
        # times a second and must not starve the plots after it (on a busy machine the
        # gradient plot and the summary used to lag epochs behind)
        n = len(RENDER_ORDER)
        order = [RENDER_ORDER[(self._render_pos + 1 + k) % n] for k in range(n)]
        key = next((k for k in order if k in self._dirty), None)
        if key is None or self.plots is None:
            self._dirty.clear()
            self._render_timer.stop()
            if self._finish_pending:
                self._finish_pending = False
                self.trainingFinished.emit()
            return
        self._dirty.discard(key)
        self._render_pos = RENDER_ORDER.index(key)
        self.render_plot(key)

    def render_plot(self, key: str) -> None:
        """Show what the history holds in one plot: setData on items built once."""
        if self.plots is None:
            return
        if key == "summary":
            self._update_summary()
        elif key == "sharpness":
            self.sharp_plots.update(self.history)
        elif key == "landscape":
            self.sharp_plots.update_landscape(self.history)
        elif key == "stream":
            for i, curve in enumerate(self._stream_curves):
                curve.setData(self._stream_x[i], self._stream_y[i])
            self._fit_loss_range()
        else:
            self.plots.update_plot(self.history, key)
            if key == "train_loss":
                self._fit_loss_range()

    def render_all(self) -> None:
        """Draw everything now (exports, and tests that look at the curves)."""
        for key in RENDER_ORDER:
            self.render_plot(key)
        self._dirty.clear()

    def _fit_loss_range(self) -> None:
        """Train-loss y range: every epoch mean and streamed point except each curve's first
        few, where an adaptive optimizer's first steps can spike far above the starting loss
        (ln 10 ≈ 2.3) and would flatten everything else. Zooming out still shows the spike."""
        top, bottom = [], []
        for ys in self._stream_y:
            if ys:
                bottom.append(min(ys))
                rest = ys[3:] if len(ys) > 10 else ys
                top.append(max(rest))
        for name in self.history.optimizers:
            _, values = self.history.series(name, "train_loss")
            finite = [v for v in values if math.isfinite(v)]
            if finite:
                top.append(max(finite))
                bottom.append(min(finite))
        top = [t for t in top if math.isfinite(t)]
        bottom = [b for b in bottom if math.isfinite(b)]
        if top and bottom and self.plots is not None:
            lo, hi = min(bottom), max(top)
            self.plots.plots["train_loss"].setYRange(lo, hi if hi > lo else lo + 1, padding=0.05)

    def set_status(self, text: str, *, percent: bool = True) -> None:
        """The progress bar's text: percentage, epoch, speed, time left (or the outcome)."""
        self.status = text
        escaped = text.replace("%", "%%")
        self.progress.setFormat(f"%p%   ·   {escaped}" if percent and text else escaped or "%p%")

    def _show_progress(self, ev: BatchProgress) -> None:
        total = max(ev.samples_total, 1)
        self.progress.setValue(int(1000 * ev.samples_done / total))
        self._rate.append((ev.elapsed, ev.samples_done))
        while len(self._rate) > 2 and self._rate[-1][0] - self._rate[0][0] > RATE_WINDOW:
            self._rate.popleft()
        (t0, s0), (t1, s1) = self._rate[0], self._rate[-1]
        rate = (s1 - s0) / (t1 - t0) if t1 > t0 else ev.samples_per_second
        left = (ev.samples_total - ev.samples_done) / rate if rate > 0 else math.inf
        if self.state == "running" and self.history.finished is None:  # else: the outcome
            epochs = self.history.started.epochs if self.history.started else "?"
            self.set_status(f"epoch {ev.epoch}/{epochs} · {rate:,.0f} samples/s · "
                                    f"{format_duration(left)} left")

    def _update_summary(self) -> None:
        """One line under the plots: how much of the last layer's gradient reaches layer 1."""
        parts = []
        for i, name in enumerate(self.history.optimizers):
            last = self.history.last(name)
            if last is None or not last.grad_norms or not last.grad_norms[-1] > 0:
                continue
            ratio = last.grad_norms[0] / last.grad_norms[-1]
            parts.append(f"<span style='color:{color(i)}'>■ {html.escape(name)}</span> "
                         f"<b>{_fraction(ratio)}</b>")
        if parts:
            self.summary.setText("Share of the last layer's gradient that reaches layer 1 "
                                 "(latest epoch):&nbsp;&nbsp; "
                                 + " &nbsp;&nbsp; ".join(parts))

    def _finished(self, ev: Finished) -> None:
        self.progress.setValue(self.progress.maximum() if not ev.stopped
                               else self.progress.value())
        what = "Stopped" if ev.stopped else "Done"
        self.set_status(f"{what}: {ev.epochs_completed} epoch(s) in "
                                f"{format_duration(ev.elapsed)}, {ev.samples_per_second:,.0f} "
                                f"samples/s")

    @Slot(int, str)
    def _on_job_ended(self, generation: int, status: str) -> None:
        if generation != self.generation:
            return
        self.job = None
        if status:  # the process died: say so, keep the curves
            done = len({r.epoch for r in self.history.results})
            self.show_message(
                f"The training process {status}. The curves so far are kept "
                f"({done} epoch(s)); press Start to train again.")
            self.set_status("the training process ended unexpectedly")
        elif self.state == "stopping" and self.history.finished is None:
            self.set_status("Stopped")
        self._set_state("idle")
        self._finish_pending = True  # trainingFinished once the last curves are drawn
        self._mark_dirty(("summary",))
        self.workerFinished.emit()
        QTimer.singleShot(0, self._prepare_spare)

    # ------------------------------------------------------------------ exports
    def _ask_path(self, title: str, name: str, filters: str) -> str | None:
        path, _ = QFileDialog.getSaveFileName(self, title, str(Path.cwd() / name), filters)
        return path or None

    def _write(self, path: str | os.PathLike, data_fn, what: str) -> bool:
        try:
            atomic_write(path, data_fn())
        except Exception as exc:  # noqa: BLE001 - any failure becomes a dialog, never a crash
            QMessageBox.critical(self, "Export failed", f"Could not write the {what}:\n{exc}")
            return False
        self.messageShown.emit(f"Wrote {path}")
        return True

    def export_csv(self, path: str | os.PathLike | None = None) -> bool:
        """The metrics CSV, same columns as ``main.py train --csv``."""
        if not self.history.results and not self.history.diverged:
            QMessageBox.information(self, "Nothing to export", "Train first: the CSV holds "
                                    "one row per optimizer and epoch.")
            return False
        path = path or self._ask_path("Export metrics", "optgui-lab-metrics.csv", "CSV (*.csv)")
        if not path:
            return False
        history = self.history
        return self._write(path, history.csv_text, "metrics CSV")

    def plot_png(self, key: str | None) -> bytes:
        """The plot ``key`` alone (1280 × 720), or all of them (``None``; 1600 × 900), with
        the optimizers' legend above the plots."""
        from optgui.lab.plots import render_curves

        if self.plots is None or not self.history.optimizers:
            raise OSError("no plots yet: train first")
        image = render_curves(self.history, key)
        if image.isNull():
            raise OSError(f"could not render the {PLOT_TITLES.get(key, 'lab')} plot")
        return png_bytes(image)

    def export_plot_png(self, key: str, path: str | os.PathLike | None = None) -> bool:
        path = path or self._ask_path(f"Export {PLOT_TITLES[key]}",
                                      f"optgui-lab-{key}.png", "PNG (*.png)")
        if not path:
            return False
        return self._write(path, lambda: self.plot_png(key), f"{PLOT_TITLES[key]} PNG")

    def plot_under(self, item) -> str | None:
        """The key of the plot that holds the graphics ``item`` (None: no plot)."""
        plots = {} if self.plots is None else self.plots.plots
        while item is not None:
            for key, plot in plots.items():
                if item is plot or item is plot.getViewBox():
                    return key
            item = item.parentItem()
        return None

    def _export_from_menu(self) -> None:
        key = self.plot_under(self.graphics.scene().contextMenuItem)
        if key is None:
            self.export_all_png()
        else:
            self.export_plot_png(key)

    def export_all_png(self, folder: str | os.PathLike | None = None) -> bool:
        """All plots in one figure (``optgui-lab-all.png``) and every plot alone
        (``optgui-lab-<plot>.png``) in ``folder``."""
        folder = folder or QFileDialog.getExistingDirectory(self, "Folder for the PNGs",
                                                            str(Path.cwd()))
        if not folder:
            return False
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            QMessageBox.critical(self, "Export failed", f"Could not create {folder}:\n{exc}")
            return False
        files = [(Path(folder) / "optgui-lab-all.png", None)]
        files += [(Path(folder) / f"optgui-lab-{k}.png", k) for k in PLOT_KEYS]
        try:  # all or nothing: a full disk leaves no half set of pictures
            atomic_write_many([(path, self.plot_png(key)) for path, key in files])
        except Exception as exc:  # noqa: BLE001 - any failure becomes a dialog, never a crash
            QMessageBox.critical(self, "Export failed", f"Could not write the plots:\n{exc}")
            return False
        self.messageShown.emit(f"Wrote {len(files)} pictures to {folder}")
        return True


__all__ = ["LabTab", "LabSettings", "OptimizerList", "validate_spec"]

"""The lab's configuration: what to train, with which optimizers, validated on construction.

Torch-free: the window imports it at start-up.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from engine.optimizers import format_value
from engine.spec import RunSpec, parse_spec
from engine.training.adapter import check_trainable
from engine.training.data import COLS, ROWS

INPUT_SIZE = ROWS * COLS
ACTIVATIONS = ("sigmoid", "tanh", "relu")
# The course's four, without lr: TrainConfig.lr fills it in (so --lr changes all four).
DEFAULT_OPTIMIZERS = ("sgd", "sgd(momentum=0.9)", "rmsprop", "adam(beta1=0.9,beta2=0.999)")
EVENTS_PER_EPOCH = 20  # default BatchProgress events per epoch

LIMITS = {
    "epochs": (1, 100_000),
    "batch_size": (1, 1_000_000),
    "layers": (0, 64),
    "width": (1, 16_384),
    "seed": (0, 2**32 - 1),
    "train_limit": (1, 10**9),
    "log_every": (1, 10**9),
    "eval_batch_size": (1, 10**7),
    "threads": (1, 1024),
    "sharpness_samples": (1, 10**7),
    "landscape_grid": (2, 401),
    "snapshots_per_epoch": (1, 1000),
}
LANDSCAPE_PLANES = ("random", "pca")


# ----------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class TrainConfig:
    """One lab run: the model, the optimizers, the schedule. Validated on construction.

    ``optimizers`` are spec strings (as in the 2-D playground); a spec without ``lr`` gets
    ``lr`` from here. ``train_limit`` uses only the first N training samples. ``log_every``
    is the number of batch rounds between :class:`BatchProgress` events (default: about
    20 per epoch). ``device`` is ``"cpu"``, ``"cuda"`` or None (CUDA when available).
    ``threads`` sets torch's CPU threads for the run (None: :func:`default_threads`).

    Sharpness and landscapes (issue 11): ``label_noise`` replaces that seeded fraction of
    the *training* labels by another class (validation stays clean). ``sharpness`` measures
    λ_max and Keskar's ε-sharpness (``eps_sharpness``) after every epoch on the first
    ``sharpness_samples`` training images. ``landscape`` (``"random"`` or ``"pca"``, None:
    off) computes, after training, a ``landscape_grid``² slice over
    [−``landscape_span``, ``landscape_span``]² around each optimizer's final weights; the
    PCA plane keeps the weights ``snapshots_per_epoch`` times per epoch. ``save_models``
    is a folder where each trained network's state_dict is written as
    ``<index>-<name>.pt``.
    """

    optimizers: tuple[str, ...] = DEFAULT_OPTIMIZERS
    lr: float = 0.01
    epochs: int = 10
    batch_size: int = 512
    layers: int = 5
    width: int = 128
    activation: str = "sigmoid"
    seed: int = 42
    train_limit: int | None = None
    data_dir: str | None = None
    log_every: int | None = None
    eval_batch_size: int = 10_000
    device: str | None = None
    threads: int | None = None
    label_noise: float = 0.0
    sharpness: bool = False
    sharpness_samples: int = 2048
    eps_sharpness: float = 1e-3
    landscape: str | None = None
    landscape_grid: int = 21
    landscape_span: float = 1.0
    snapshots_per_epoch: int = 4
    save_models: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.optimizers, str):
            object.__setattr__(self, "optimizers", (self.optimizers,))
        object.__setattr__(self, "optimizers", tuple(self.optimizers))
        if not self.optimizers:
            raise ValueError("choose at least one optimizer")
        for name, (lo, hi) in LIMITS.items():
            value = getattr(self, name)
            if value is None and name in ("train_limit", "log_every", "threads"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ValueError(f"{name} must be an integer from {lo} to {hi}, got {value!r}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not (
            math.isfinite(self.lr) and 0 < self.lr <= 1e4
        ):
            raise ValueError(f"lr must be a number in (0, 10000], got {self.lr!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {self.activation!r}; choose one of: {', '.join(ACTIVATIONS)}"
            )
        for name, lo, hi, low_open in (("label_noise", 0.0, 1.0, False),
                                       ("eps_sharpness", 0.0, 10.0, True),
                                       ("landscape_span", 0.0, 1e4, True)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                math.isfinite(value) and (lo < value if low_open else lo <= value)
                and value <= hi
            ):
                left = "(" if low_open else "["
                raise ValueError(f"{name} must be a number in {left}{lo:g}, {hi:g}], "
                                 f"got {value!r}")
        if not isinstance(self.sharpness, bool):
            raise ValueError(f"sharpness must be true or false, got {self.sharpness!r}")
        if self.landscape not in (None, *LANDSCAPE_PLANES):
            raise ValueError(f"landscape plane must be one of: {', '.join(LANDSCAPE_PLANES)}, "
                             f"got {self.landscape!r}")
        if self.device not in (None, "cpu", "cuda"):
            raise ValueError(f"device must be cpu or cuda, got {self.device!r}")
        specs = self.run_specs()  # raises a ValueError naming any bad spec
        labels = [str(s) for s in specs]
        dup = next((x for x in labels if labels.count(x) > 1), None)
        if dup:
            raise ValueError(f"optimizer {dup} is given twice")

    def run_specs(self) -> tuple[RunSpec, ...]:
        """The optimizers as parsed specs, ``lr`` filled in, each checked to be trainable."""
        out = []
        for text in self.optimizers:
            run = text if isinstance(text, RunSpec) else parse_spec(text)
            run = with_default_lr(run, self.lr)
            check_trainable(run)
            out.append(run)
        return tuple(out)

    @property
    def labels(self) -> tuple[str, ...]:
        """Each optimizer's name in events, CSV and legends: its spec string with lr."""
        return tuple(str(s) for s in self.run_specs())

    @property
    def n_linear(self) -> int:
        return self.layers + 1


MAX_DEFAULT_THREADS = 4


def default_threads() -> int:
    """CPU threads for a run when the user did not choose: all cores but one, at most 4.

    One core stays free for the window's event loop (and everyone else on a shared
    machine). Oversubscribing is catastrophic here: on a 2-core machine busy with another
    process, 2 torch threads trained this network 15–30× *slower* than 1 thread (36,000 vs
    1,600–2,700 samples/s), because OpenMP threads wait for each other whenever one is
    descheduled. The matrices (batch 512 × 128 units) gain little beyond a few threads.
    """
    cores = os.cpu_count() or 1
    return max(1, min(MAX_DEFAULT_THREADS, cores - 1))


def with_default_lr(run: RunSpec, lr: float) -> RunSpec:
    """``run`` with ``lr`` written first if the user did not give one.

    ``sgd(momentum=0.9)`` with lr 0.01 becomes ``sgd(lr=0.01,momentum=0.9)``: the label then
    reads as the course writes it, and it parses back to the same run.
    """
    if "lr" in run.given or "lr" not in {h.name for h in run.spec.all_hypers}:
        return run
    value = run.spec.hyper("lr").validate(float(lr), run.name)
    return parse_spec(str(RunSpec(run.name, (("lr", format_value(value), value),) + run.args)))

"""What a training run streams: plain frozen dataclasses (numbers, strings and tuples only,
no tensors), so a worker can hand them to the window as they are and a test can compare them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class TrainingStarted:
    """The run's shape, sent once before training (plots and progress bar set up from it)."""

    kind: ClassVar[str] = "started"
    optimizers: tuple[str, ...]
    backends: tuple[str, ...]  # e.g. "torch.optim.Adam" or "engine rule momentum (adapter)"
    epochs: int
    n_train: int
    n_val: int
    batch_size: int
    batches_per_epoch: int
    samples_total: int  # epochs × n_train × optimizers
    layer_sizes: tuple[int, ...]  # (784, 128, …, 10)
    activation: str
    parameters: int  # per model
    device: str
    data_source: str

    @property
    def n_linear(self) -> int:
        return len(self.layer_sizes) - 1


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """Every ``log_every`` batch rounds: the streamed train loss and the progress bar.

    ``losses[i]`` is optimizer i's mean training loss over the batches since the previous
    BatchProgress (NaN once it diverged). ``samples_done`` counts samples seen by all
    optimizers together, so ``samples_done / samples_total`` is the run's progress.
    """

    kind: ClassVar[str] = "batch"
    epoch: int  # 1-based
    batch: int  # batch rounds done in this epoch (1 … batches_per_epoch)
    batches_per_epoch: int
    losses: tuple[float, ...]
    samples_done: int
    samples_total: int
    samples_per_second: float
    elapsed: float  # seconds of training (data loading and pauses excluded)

    @property
    def epoch_progress(self) -> float:
        """Position in epochs as a float (x coordinate of a streamed loss point)."""
        return self.epoch - 1 + self.batch / self.batches_per_epoch

    @property
    def seconds_left(self) -> float:
        if self.samples_per_second <= 0:
            return math.inf
        return max(0.0, (self.samples_total - self.samples_done) / self.samples_per_second)


@dataclass(frozen=True, slots=True)
class EpochResult:
    """One optimizer's metrics after one epoch (one CSV row).

    Train loss/accuracy are averaged over the epoch's batches as they were trained (what the
    course's script prints); validation is on the test set after the epoch. ``grad_norms``
    holds the L2 norm of each Linear layer's weight gradient, averaged over the epoch's
    batches, first layer to last: with plain SGD on a deep sigmoid net the first entries
    are orders of magnitude smaller (the vanishing gradient).
    """

    kind: ClassVar[str] = "epoch"
    optimizer: str
    index: int
    epoch: int
    train_loss: float
    train_acc: float  # fraction in [0, 1]
    val_loss: float
    val_acc: float
    grad_norms: tuple[float, ...]
    # with TrainConfig.sharpness: the Hessian's largest eigenvalue and Keskar's ε-sharpness
    # (percent) on the first sharpness_samples training images, after the epoch; NaN if off
    lambda_max: float = math.nan
    eps_sharpness: float = math.nan
    lr: float = math.nan  # the learning rate at the epoch's end (the 2/η line); NaN: none

    @property
    def gap(self) -> float:
        """The generalization gap train_acc − val_acc (train accuracy as trained, on the
        training labels, noisy ones included)."""
        return self.train_acc - self.val_acc


@dataclass(frozen=True, slots=True)
class Diverged:
    """Optimizer ``index``'s loss became NaN/inf; it stops, the others continue."""

    kind: ClassVar[str] = "diverged"
    optimizer: str
    index: int
    epoch: int
    batch: int  # the batch round where it was noticed (≤ log_every rounds after it happened)
    reason: str


@dataclass(frozen=True, slots=True)
class Finished:
    """The last event: completed, stopped by the caller, or every optimizer diverged."""

    kind: ClassVar[str] = "done"
    stopped: bool
    epochs_completed: int
    samples_done: int
    elapsed: float
    samples_per_second: float
    diverged: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LandscapePath:
    """The weights kept during training, seen on optimizer ``index``'s PCA plane (sent
    before its rows): coordinates, distance from the plane, and when each was kept."""

    kind: ClassVar[str] = "landscape-path"
    optimizer: str
    index: int
    alphas: tuple[float, ...]
    betas: tuple[float, ...]
    distances: tuple[float, ...]
    epochs: tuple[float, ...]  # epochs trained when the point was kept (0: the start)
    explained: tuple[float, float]  # variance ratios of the two directions


@dataclass(frozen=True, slots=True)
class LandscapeRow:
    """One row of optimizer ``index``'s loss-landscape slice: β = ``beta`` (row ``j`` of
    ``rows``), training loss and accuracy at every α in ``alphas``. ``plane`` is
    ``"random"`` (filter-normalized directions) or ``"pca"``. The row with β = 0 is the
    1-D slice along the first direction."""

    kind: ClassVar[str] = "landscape-row"
    optimizer: str
    index: int
    plane: str
    j: int
    rows: int
    alphas: tuple[float, ...]
    beta: float
    losses: tuple[float, ...]
    accs: tuple[float, ...]


TrainingEvent = (TrainingStarted | BatchProgress | EpochResult | Diverged | Finished
                 | LandscapePath | LandscapeRow)

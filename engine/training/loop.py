"""The vanishing-gradient lab: a deep MLP on Fashion-MNIST, trained by several optimizers at
once, as an iterator of immutable metric events.

    from engine.training import TrainConfig, train
    for event in train(TrainConfig(epochs=3), should_stop=lambda: stop_flag):
        ...  # TrainingStarted, BatchProgress…, EpochResult…, Diverged?, Finished

Design, and why:

* **Events are plain frozen dataclasses** (numbers, strings and tuples only, no tensors), so
  a QThread worker can hand them to the GUI thread in a signal as they are, and a test can
  compare them. The GUI never touches training state from its own thread.
* **One iterator, driven by the caller.** Stopping: pass ``should_stop`` (checked before
  every batch round and between evaluations, so Stop takes effect within a fraction of a
  second) or close the generator. Pausing is the caller's business: a worker simply waits
  before asking for the next event (events come every few batch rounds).
* **Fair comparison.** Every optimizer starts from the same initial weights (one seeded
  model, deep-copied), and all see the same batches in the same order: one seeded
  permutation per epoch, each batch gathered once and fed to every optimizer in turn
  (round-robin per batch), so the curves grow together rather than one run after another.
* **torch.optim where semantics match, one adapter otherwise.** ``gd``, ``sgd``,
  ``rmsprop`` (torch's ε placement) and ``adam`` become ``torch.optim`` objects; every other
  catalogue rule (the course's EMA momentum, course-form RMSprop, AdaBelief, SAM, …) trains
  through :class:`EngineRuleOptimizer`, a ``torch.optim.Optimizer`` that runs the engine's
  own numpy rule on the flattened parameters, with an oracle that re-evaluates the loss on
  the current batch (SAM/ASAM take their gradient at a perturbed point).
* **Streaming costs nothing measurable.** Losses, accuracies and gradient norms accumulate
  in device tensors; the host reads them (one sync) only when an event is due, every
  ``log_every`` batch rounds. Validation uses large batches under ``torch.no_grad()``.
* **Divergence is a result.** An optimizer whose loss becomes NaN/inf gets a
  :class:`Diverged` event and stops; the others go on.

torch is imported lazily (inside functions, and :class:`EngineRuleOptimizer` on first
access) because the GUI imports this module at start-up for :class:`TrainConfig`.
"""


from __future__ import annotations

import copy
import csv
import io
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from engine.export import atomic_write
from engine.training.adapter import backend_name, make_torch_optimizer, make_torch_scheduler
from engine.training.config import EVENTS_PER_EPOCH, INPUT_SIZE, TrainConfig, default_threads
from engine.training.data import NUM_CLASSES, FashionMNIST, load_fashion_mnist
from engine.training.events import (
    BatchProgress,
    Diverged,
    EpochResult,
    Finished,
    TrainingEvent,
    TrainingStarted,
)

# ----------------------------------------------------------------------------- model


def build_model(config: TrainConfig):
    """784 → ``layers`` × (Linear(width) + activation) → Linear(10), seeded.

    The seed is applied in a forked RNG so the caller's global torch RNG is untouched; the
    layers use torch's default initialisation, as the course's script does.
    """
    import torch
    from torch import nn

    act = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}[config.activation]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        modules: list[nn.Module] = []
        size = INPUT_SIZE
        for _ in range(config.layers):
            modules += [nn.Linear(size, config.width), act()]
            size = config.width
        modules.append(nn.Linear(size, NUM_CLASSES))
        return nn.Sequential(*modules)


def resolve_device(device: str | None) -> str:
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda requested but CUDA is not available")
    return device


# ----------------------------------------------------------------------------- training


def train(
    config: TrainConfig,
    data: FashionMNIST | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[TrainingEvent]:
    """Train every optimizer of ``config``; yield events (see the module docstring).

    ``data`` defaults to :func:`engine.data.load_fashion_mnist` on ``config.data_dir``
    (loaded on the first ``next()``, so a worker thread does the loading and any
    :class:`engine.data.DataError` surfaces there). The configuration is validated here,
    before anything runs, so bad settings fail fast with a ValueError.
    """
    specs = config.run_specs()
    clock = _RunClock()
    return _without_consumer_time(_run(config, specs, data, should_stop or (lambda: False),
                                       clock), clock)


class _RunClock:
    """Seconds of training since :meth:`start`, without the time the consumer held an event.

    A consumer that pauses (the lab's Pause, a slow terminal) keeps the generator suspended
    at a ``yield``; that time is not training, so ``elapsed`` and samples/s leave it out
    (a 4 s pause no longer turns 54,000 samples/s into 30,000)."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.held = 0.0
        self._since: float | None = None

    def start(self) -> None:
        self.t0, self.held = time.perf_counter(), 0.0

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0 - self.held

    def hold(self) -> None:
        self._since = time.perf_counter()

    def release(self) -> None:
        if self._since is not None:
            self.held += time.perf_counter() - self._since
            self._since = None


def _without_consumer_time(events: Iterator[TrainingEvent],
                           clock: _RunClock) -> Iterator[TrainingEvent]:
    try:
        for event in events:
            clock.hold()
            yield event
            clock.release()
    finally:
        events.close()


def _run(config: TrainConfig, specs, data, should_stop,
         clock: _RunClock) -> Iterator[TrainingEvent]:
    import torch
    import torch.nn.functional as F

    old_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads or default_threads())
    try:
        device = resolve_device(config.device)
        if data is None:
            data = load_fashion_mnist(config.data_dir)
        n_train = min(config.train_limit or data.n_train, data.n_train)
        # pixels stay uint8 on the device; each batch is gathered once (shared by all
        # optimizers) and scaled to [0, 1] as ToTensor does. Cheaper than converting the
        # whole set up front: a quarter of the memory traffic per gather, no 188 MB copy.
        X = data.train_x[:n_train].to(device)
        Y = data.train_y[:n_train].to(device)
        Xv = data.test_x.to(device).to(torch.float32).div_(255.0)
        Yv = data.test_y.to(device)

        base = build_model(config).to(device)
        labels = tuple(str(s) for s in specs)
        models = [copy.deepcopy(base) for _ in specs]
        optims = [make_torch_optimizer(s, m.parameters()) for s, m in zip(specs, models,
                                                                          strict=True)]
        adapter = [type(o).__name__ == "EngineRuleOptimizer" for o in optims]
        # torch's own schedulers, stepped after every optimizer step (the adapter reads its
        # param group's lr like torch's classes), and torch's gradient clipping
        total_steps = config.epochs * math.ceil(n_train / config.batch_size)
        scheds = [make_torch_scheduler(s, o, total_steps) for s, o in zip(specs, optims,
                                                                          strict=True)]
        clips = [(s.resolved().get("clip_value", 0.0), s.resolved().get("clip_norm", 0.0))
                 for s in specs]
        weights = [[m.weight for m in model if isinstance(m, torch.nn.Linear)]
                   for model in models]
        n_opt, n_lin, bs = len(specs), config.n_linear, config.batch_size
        bpe = math.ceil(n_train / bs)
        log_every = config.log_every or max(1, math.ceil(bpe / EVENTS_PER_EPOCH))
        samples_total = config.epochs * n_train * n_opt
        sizes = (INPUT_SIZE,) + (config.width,) * config.layers + (NUM_CLASSES,)

        yield TrainingStarted(
            optimizers=labels,
            backends=tuple(backend_name(o) for o in optims),
            epochs=config.epochs, n_train=n_train, n_val=int(Xv.shape[0]), batch_size=bs,
            batches_per_epoch=bpe, samples_total=samples_total, layer_sizes=sizes,
            activation=config.activation,
            parameters=sum(p.numel() for p in base.parameters()),
            device=device, data_source=data.location.describe(),
        )

        active = [True] * n_opt
        diverged: list[str] = []
        samples_done = 0
        gen = torch.Generator().manual_seed(config.seed)
        clock.start()

        def finished(stopped: bool, epochs_done: int) -> Finished:
            elapsed = clock.elapsed()
            return Finished(stopped, epochs_done, samples_done, elapsed,
                            samples_done / elapsed if elapsed > 0 else 0.0, tuple(diverged))

        def mark_diverged(i: int, epoch: int, batch: int, what: str) -> Diverged:
            nonlocal samples_total
            active[i] = False
            diverged.append(labels[i])
            # its remaining samples will never be trained: keep the progress bar honest
            samples_total -= (config.epochs - epoch) * n_train + n_train - min(batch * bs,
                                                                                n_train)
            return Diverged(labels[i], i, epoch, batch, f"{what} became NaN/inf")

        for epoch in range(1, config.epochs + 1):
            perm = torch.randperm(n_train, generator=gen).to(device)
            loss_sum = torch.zeros(n_opt, device=device, dtype=torch.float64)
            correct = torch.zeros(n_opt, device=device, dtype=torch.int64)
            gn_sum = torch.zeros(n_opt, n_lin, device=device, dtype=torch.float64)
            win_sum = torch.zeros(n_opt, device=device, dtype=torch.float64)
            win_n = 0
            seen = 0
            for b in range(bpe):
                if should_stop():
                    yield finished(True, epoch - 1)
                    return
                idx = perm[b * bs:(b + 1) * bs]
                xb, yb = X[idx].to(torch.float32).div_(255.0), Y[idx]
                nb = int(idx.shape[0])
                for i in range(n_opt):
                    if not active[i]:
                        continue
                    model, opt = models[i], optims[i]
                    opt.zero_grad(set_to_none=True)
                    out = model(xb)
                    loss = F.cross_entropy(out, yb)
                    loss.backward()
                    with torch.no_grad():
                        batch_loss = loss.detach().double()
                        loss_sum[i] += batch_loss * nb
                        win_sum[i] += batch_loss
                        correct[i] += (out.argmax(1) == yb).sum()
                        gn_sum[i] += torch.stack(
                            [torch.linalg.vector_norm(w.grad, dtype=torch.float64)  # no inf
                             for w in weights[i]])
                    clip_value, clip_norm = clips[i]
                    if clip_value:
                        torch.nn.utils.clip_grad_value_(model.parameters(), clip_value)
                    if clip_norm:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
                    if adapter[i]:
                        opt.step(_closure(model, opt, xb, yb))
                    else:
                        opt.step()
                    if scheds[i] is not None:
                        scheds[i].step()
                    samples_done += nb
                seen += nb
                win_n += 1
                if win_n == log_every or b == bpe - 1:
                    window = (win_sum / win_n).tolist()  # the one host sync per event
                    win_sum.zero_()
                    win_n = 0
                    losses = []
                    for i in range(n_opt):
                        if active[i] and not math.isfinite(window[i]):
                            yield mark_diverged(i, epoch, b + 1, "the training loss")
                        losses.append(window[i] if active[i] else math.nan)
                    elapsed = clock.elapsed()
                    yield BatchProgress(
                        epoch=epoch, batch=b + 1, batches_per_epoch=bpe, losses=tuple(losses),
                        samples_done=samples_done, samples_total=samples_total,
                        samples_per_second=samples_done / elapsed if elapsed > 0 else 0.0,
                        elapsed=elapsed,
                    )
                    if not any(active):
                        yield finished(False, epoch - 1)
                        return
            sums, corrects = loss_sum.tolist(), correct.tolist()
            norms = (gn_sum / bpe).tolist()
            for i in range(n_opt):
                if not active[i]:
                    continue
                if should_stop():
                    yield finished(True, epoch - 1)
                    return
                val_loss, val_acc = _evaluate(models[i], Xv, Yv, config.eval_batch_size)
                if not math.isfinite(val_loss):
                    yield mark_diverged(i, epoch, bpe, "the validation loss")
                    continue
                yield EpochResult(
                    optimizer=labels[i], index=i, epoch=epoch,
                    train_loss=sums[i] / seen, train_acc=corrects[i] / seen,
                    val_loss=val_loss, val_acc=val_acc, grad_norms=tuple(norms[i]),
                )
            if not any(active):
                yield finished(False, epoch)
                return
        yield finished(False, config.epochs)
    finally:
        torch.set_num_threads(old_threads)


def _closure(model, opt, xb, yb):
    """torch's closure convention, for rules that re-evaluate the loss (SAM, ASAM, …)."""
    import torch.nn.functional as F

    def closure():
        opt.zero_grad(set_to_none=False)
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        return loss.detach()

    return closure


def _evaluate(model, X, Y, batch_size: int) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over (X, Y), in large batches without autograd."""
    import torch
    import torch.nn.functional as F

    n = int(X.shape[0])
    with torch.no_grad():
        loss = torch.zeros((), dtype=torch.float64, device=X.device)
        correct = torch.zeros((), dtype=torch.int64, device=X.device)
        for start in range(0, n, batch_size):
            out = model(X[start:start + batch_size])
            y = Y[start:start + batch_size]
            loss += F.cross_entropy(out, y, reduction="sum").double()
            correct += (out.argmax(1) == y).sum()
    return float(loss) / n, int(correct) / n


# ----------------------------------------------------------------------------- results


def format_duration(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on; ``?`` for an unknown (inf/NaN) estimate.

    One function for the lab's status line and the command line's progress line, so both
    show a run's time left and elapsed time alike.
    """
    if not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


@dataclass
class TrainingHistory:
    """Everything a run reported, collected from its events (for plots and CSV export).

    Not thread-safe by design: the GUI thread owns one and feeds it the events its worker
    emitted; the CLI feeds it directly.
    """

    started: TrainingStarted | None = None
    results: list[EpochResult] = field(default_factory=list)
    batches: list[BatchProgress] = field(default_factory=list)
    diverged: list[Diverged] = field(default_factory=list)
    finished: Finished | None = None

    def add(self, event: TrainingEvent) -> None:
        if isinstance(event, TrainingStarted):
            self.started = event
        elif isinstance(event, EpochResult):
            self.results.append(event)
        elif isinstance(event, BatchProgress):
            self.batches.append(event)
        elif isinstance(event, Diverged):
            self.diverged.append(event)
        elif isinstance(event, Finished):
            self.finished = event

    @property
    def optimizers(self) -> tuple[str, ...]:
        if self.started is not None:
            return self.started.optimizers
        return tuple(dict.fromkeys(r.optimizer for r in self.results))

    @property
    def n_linear(self) -> int:
        if self.started is not None:
            return self.started.n_linear
        return max((len(r.grad_norms) for r in self.results), default=0)

    def series(self, optimizer: str, metric: str) -> tuple[list[int], list[float]]:
        """(epochs, values) of ``metric`` (an EpochResult field) for one optimizer."""
        rows = [r for r in self.results if r.optimizer == optimizer]
        return [r.epoch for r in rows], [float(getattr(r, metric)) for r in rows]

    def last(self, optimizer: str) -> EpochResult | None:
        rows = [r for r in self.results if r.optimizer == optimizer]
        return rows[-1] if rows else None

    def csv_text(self) -> str:
        return metrics_csv(self.results, self.n_linear, self.diverged)


CSV_COLUMNS = ("optimizer", "epoch", "train_loss", "train_acc", "val_loss", "val_acc")
NOTE_COLUMN = "note"  # last: why a row has no numbers, or which of its numbers are not finite


def metrics_csv(results: Iterable[EpochResult], n_linear: int | None = None,
                diverged: Iterable[Diverged] = ()) -> str:
    """Header + one row per optimizer and epoch; ``grad_norm_1`` is the first layer.

    A diverged optimizer keeps its rows, plus one for the epoch where it diverged (empty
    numbers, the reason in ``note``), ordered by epoch and optimizer like the others. A
    NaN or infinite number is never silent: ``note`` names the columns that hold one.
    """
    results, diverged = list(results), list(diverged)
    if n_linear is None:
        n_linear = max((len(r.grad_norms) for r in results), default=0)
    grad_columns = tuple(f"grad_norm_{k}" for k in range(1, n_linear + 1))
    rows: list[tuple[tuple[int, int, int], list]] = []
    for r in results:
        values = dict(zip(CSV_COLUMNS[2:], (r.train_loss, r.train_acc, r.val_loss, r.val_acc),
                          strict=True)) | dict(zip(grad_columns, r.grad_norms, strict=False))
        bad = [f"{name} is {v!r}" for name, v in values.items() if not math.isfinite(v)]
        note = f"not finite: {', '.join(bad)}" if bad else ""
        rows.append(((r.epoch, r.index, 0), [r.optimizer, r.epoch,
                                             *(repr(v) for v in values.values()), note]))
    for d in diverged:
        note = (f"diverged in epoch {d.epoch} at batch round {d.batch}: {d.reason}; "
                f"no metrics from then on")
        rows.append(((d.epoch, d.index, 1), [d.optimizer, d.epoch,
                                             *([""] * (4 + n_linear)), note]))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS + grad_columns + (NOTE_COLUMN,))
    for _, row in sorted(rows, key=lambda item: item[0]):
        writer.writerow(row)
    return buf.getvalue()


def write_metrics_csv(path: str | os.PathLike, history: TrainingHistory) -> None:
    """Write the metrics CSV atomically (nothing is left behind if it fails)."""
    atomic_write(path, history.csv_text())

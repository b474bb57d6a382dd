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
from engine.training.data import NUM_CLASSES, FashionMNIST, load_fashion_mnist, noisy_labels
from engine.training.events import (
    BatchProgress,
    Diverged,
    EpochResult,
    Finished,
    LandscapePath,
    LandscapeRow,
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
        Y = data.train_y[:n_train]
        if config.label_noise:
            # training labels only, seeded; the validation labels below stay clean
            Y = noisy_labels(Y, config.label_noise, seed=config.seed)
        Y = Y.to(device)
        measure = config.sharpness or config.landscape is not None
        if measure:
            from engine.training import landscape as ls
            from engine.training import sharpness as sh

            # the fixed subset every sharpness number and landscape is measured on: the
            # first sharpness_samples training images in file order, labels as trained
            Xs, Ys = sh.sharpness_subset(X, Y, config.sharpness_samples)
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
        # the PCA plane's path: the weights at the start and a few times per epoch
        keep_at = set()
        snaps: list[list] = [[] for _ in specs]
        snap_epochs: list[list[float]] = [[] for _ in specs]
        if config.landscape == "pca":
            per = min(config.snapshots_per_epoch, bpe)
            keep_at = {max(1, round((k + 1) * bpe / per)) for k in range(per)}
            for i, m in enumerate(models):
                snaps[i].append(_flat_weights(m))
                snap_epochs[i].append(0.0)
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
                if b + 1 in keep_at:
                    for i in range(n_opt):
                        if active[i]:
                            snaps[i].append(_flat_weights(models[i]))
                            snap_epochs[i].append(epoch - 1 + (b + 1) / bpe)
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
                lam = eps = math.nan
                if config.sharpness:
                    lam = sh.lambda_max(models[i], Xs, Ys, seed=config.seed,
                                        should_stop=should_stop).value
                    if should_stop():
                        yield finished(True, epoch - 1)
                        return
                    eps = sh.eps_sharpness(models[i], Xs, Ys, eps=config.eps_sharpness)
                yield EpochResult(
                    optimizer=labels[i], index=i, epoch=epoch,
                    train_loss=sums[i] / seen, train_acc=corrects[i] / seen,
                    val_loss=val_loss, val_acc=val_acc, grad_norms=tuple(norms[i]),
                    lambda_max=lam, eps_sharpness=eps, lr=_current_lr(specs[i], optims[i]),
                )
            if not any(active):
                yield finished(False, epoch)
                return
        done = finished(False, config.epochs)
        if config.save_models:
            save_models(config.save_models, specs, models, active)
        if config.landscape is not None:
            for i in range(n_opt):
                if not active[i]:
                    continue
                if config.landscape == "pca":
                    if len(snaps[i]) < 2:
                        continue
                    plane, points = ls.pca_plane(models[i], snaps[i], snap_epochs[i])
                    snaps[i] = []  # the memory goes as soon as it is used
                    yield LandscapePath(
                        labels[i], i, tuple(p.alpha for p in points),
                        tuple(p.beta for p in points), tuple(p.distance for p in points),
                        tuple(p.epoch for p in points), plane.explained)
                else:
                    plane = ls.random_plane(models[i], seed=config.seed)
                axis = ls.grid_axis(config.landscape_grid, config.landscape_span, plane.scale)
                alphas = tuple(float(a) for a in axis)
                rows = ls.slice_rows(models[i], Xs, Ys, plane, axis, axis, should_stop)
                for j, losses, accs in rows:
                    yield LandscapeRow(labels[i], i, plane.kind, j, len(axis), alphas,
                                       float(axis[j]), tuple(losses.tolist()),
                                       tuple(accs.tolist()))
                if should_stop():
                    yield Finished(True, done.epochs_completed, done.samples_done,
                                   done.elapsed, done.samples_per_second, done.diverged)
                    return
        yield done
    finally:
        torch.set_num_threads(old_threads)


def _flat_weights(model):
    """The model's parameters as one float32 numpy vector (``model.parameters()`` order)."""
    import torch

    with torch.no_grad():
        return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).cpu().numpy()


def _current_lr(spec, optimizer) -> float:
    """The learning rate now (after any schedule); for SAM/ASAM, their base's lr."""
    lr = optimizer.param_groups[0].get("lr") if optimizer.param_groups else None
    if lr is None:
        base = spec.resolved().get("base")
        lr = base.resolved().get("lr") if base is not None and hasattr(base, "resolved") \
            else None
    try:
        return float(lr) if lr is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def model_file_name(index: int, spec) -> str:
    """``<index>-<name>.pt`` (index from 0 as in the events, name the rule's name)."""
    return f"{index}-{spec.name}.pt"


def save_models(folder: str | os.PathLike, specs, models, active=None) -> list[str]:
    """Write each trained network's state_dict to ``folder/<index>-<name>.pt``, atomically
    (a temporary file renamed into place). Diverged networks (``active[i]`` false) are
    skipped. Returns the paths written."""
    import tempfile

    import torch

    os.makedirs(folder, exist_ok=True)
    out = []
    for i, (spec, model) in enumerate(zip(specs, models, strict=True)):
        if active is not None and not active[i]:
            continue
        path = os.path.join(os.fspath(folder), model_file_name(i, spec))
        fd, tmp = tempfile.mkstemp(dir=os.fspath(folder), suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                torch.save(model.state_dict(), fh)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        out.append(path)
    return out


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
    landscape_rows: list[LandscapeRow] = field(default_factory=list)
    landscape_paths: list[LandscapePath] = field(default_factory=list)

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
        elif isinstance(event, LandscapeRow):
            self.landscape_rows.append(event)
        elif isinstance(event, LandscapePath):
            self.landscape_paths.append(event)

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

    def landscape(self, optimizer: str):
        """(alphas, betas, losses[j, i], accs[j, i]) of one optimizer's slice so far
        (rows not computed yet are NaN), or None if none of its rows has arrived."""
        import numpy as np

        rows = [r for r in self.landscape_rows if r.optimizer == optimizer]
        if not rows:
            return None
        n = rows[0].rows
        alphas = np.asarray(rows[0].alphas)
        betas = np.full(n, np.nan)
        losses = np.full((n, len(alphas)), np.nan)
        accs = np.full((n, len(alphas)), np.nan)
        for r in rows:
            betas[r.j], losses[r.j], accs[r.j] = r.beta, r.losses, r.accs
        return alphas, betas, losses, accs


LANDSCAPE_COLUMNS = ("optimizer", "alpha", "beta", "loss", "accuracy")


def landscape_csv(rows: Iterable[LandscapeRow]) -> str:
    """One line per grid point: optimizer, alpha, beta, loss, accuracy (β-major)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(LANDSCAPE_COLUMNS)
    for r in sorted(rows, key=lambda r: (r.index, r.j)):
        for a, loss, acc in zip(r.alphas, r.losses, r.accs, strict=True):
            writer.writerow([r.optimizer, repr(a), repr(r.beta), repr(loss), repr(acc)])
    return buf.getvalue()


def write_landscape_csv(path: str | os.PathLike, history: TrainingHistory) -> None:
    atomic_write(path, landscape_csv(history.landscape_rows))


CSV_COLUMNS = ("optimizer", "epoch", "train_loss", "train_acc", "val_loss", "val_acc")
SHARPNESS_COLUMNS = ("lambda_max", "eps_sharpness")
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
    # the sharpness columns appear when a run measured it (TrainConfig.sharpness)
    sharp = any(math.isfinite(r.lambda_max) or math.isfinite(r.eps_sharpness)
                for r in results)
    extra = SHARPNESS_COLUMNS if sharp else ()
    rows: list[tuple[tuple[int, int, int], list]] = []
    for r in results:
        values = dict(zip(CSV_COLUMNS[2:], (r.train_loss, r.train_acc, r.val_loss, r.val_acc),
                          strict=True)) | dict(zip(grad_columns, r.grad_norms, strict=False))
        if sharp:
            values |= {"lambda_max": r.lambda_max, "eps_sharpness": r.eps_sharpness}
        bad = [f"{name} is {v!r}" for name, v in values.items() if not math.isfinite(v)]
        note = f"not finite: {', '.join(bad)}" if bad else ""
        rows.append(((r.epoch, r.index, 0), [r.optimizer, r.epoch,
                                             *(repr(v) for v in values.values()), note]))
    for d in diverged:
        note = (f"diverged in epoch {d.epoch} at batch round {d.batch}: {d.reason}; "
                f"no metrics from then on")
        rows.append(((d.epoch, d.index, 1), [d.optimizer, d.epoch,
                                             *([""] * (4 + n_linear + len(extra))),
                                             note]))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS + grad_columns + extra + (NOTE_COLUMN,))
    for _, row in sorted(rows, key=lambda item: item[0]):
        writer.writerow(row)
    return buf.getvalue()


def write_metrics_csv(path: str | os.PathLike, history: TrainingHistory) -> None:
    """Write the metrics CSV atomically (nothing is left behind if it fails)."""
    atomic_write(path, history.csv_text())

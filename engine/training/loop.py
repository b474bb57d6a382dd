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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from engine.data import COLS, NUM_CLASSES, ROWS, FashionMNIST, load_fashion_mnist
from engine.export import atomic_write
from engine.optimizers import build_optimizer, format_value
from engine.spec import RunSpec, parse_spec

INPUT_SIZE = ROWS * COLS
ACTIVATIONS = ("sigmoid", "tanh", "relu")
# The course's four, without lr: TrainConfig.lr fills it in (so --lr changes all four).
DEFAULT_OPTIMIZERS = ("sgd", "sgd(momentum=0.9)", "rmsprop", "adam(beta1=0.9,beta2=0.999)")
# Rules may ask the oracle for these; a network can answer all but the Hessian.
NETWORK_NEEDS = frozenset({"grad", "value", "jvp"})
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
}


# ----------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class TrainConfig:
    """One lab run: the model, the optimizers, the schedule. Validated on construction.

    ``optimizers`` are spec strings (as in the 2-D playground); a spec without ``lr`` gets
    ``lr`` from here. ``train_limit`` uses only the first N training samples. ``log_every``
    is the number of batch rounds between :class:`BatchProgress` events (default: about
    20 per epoch). ``device`` is ``"cpu"``, ``"cuda"`` or None (CUDA when available).
    ``threads`` sets torch's CPU threads for the run (None: :func:`default_threads`).
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


# ----------------------------------------------------------------------------- events


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
    elapsed: float  # seconds since training started (data loading excluded)

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


TrainingEvent = TrainingStarted | BatchProgress | EpochResult | Diverged | Finished


# ----------------------------------------------------------------------------- optimizers


def check_trainable(run: RunSpec) -> None:
    """Raise a ValueError if ``run``'s rule cannot train a network.

    Rules needing the Hessian (Newton) are refused up front: a 5×128 MLP has ~170,000
    weights, so its Hessian would have ~3·10¹⁰ entries. Any other rule is tried once on a
    small vector, which catches rules written only for two-dimensional points.
    """
    needs = set(run.spec.needs)
    if "hessian" in needs:
        raise ValueError(
            f"{run.name} needs the Hessian, which is not available for a network "
            f"(its size is the number of weights squared); choose a first-order optimizer"
        )
    if needs - NETWORK_NEEDS:
        raise ValueError(
            f"{run.name} needs {', '.join(sorted(needs - NETWORK_NEEDS))}, which a network "
            f"cannot provide; it is not usable in the training lab"
        )
    if run.resolved().get("batch", 0):
        raise ValueError(
            f"{run}: batch= picks mini-batches on 2-D data surfaces; in the training lab set "
            f"the batch size of the run instead (--batch-size)"
        )
    if torch_optimizer_args(run) is not None:
        return
    w = np.linspace(-1.0, 1.0, 5)
    try:
        with np.errstate(all="ignore"):
            opt = build_optimizer(run)
            state = opt.init(w)
            upd, _ = opt.update(w.copy(), state, w, _QuadraticOracle())
        if np.shape(upd) != w.shape:
            raise ValueError(f"its update has shape {np.shape(upd)}, expected {w.shape}")
    except Exception as exc:
        raise ValueError(f"{run} is not usable on networks: {exc}") from None


class _QuadraticOracle:
    """f(w) = ½‖w‖², used only to try a rule on a vector before a run."""

    def value(self, p):
        return 0.5 * float(np.dot(p, p))

    def grad(self, p):
        return np.asarray(p, dtype=float).copy()

    def hessian(self, p):
        raise ValueError("no Hessian for networks")

    def jvp(self, p, v):
        return float(np.dot(p, v))


def _betas(v: dict[str, Any]) -> tuple[float, float]:
    return (v["beta1"], v["beta2"])


# name -> (torch.optim class, kwargs from resolved values, or None if these values have no
# torch equivalent). Each entry is checked against the adapter by tests/test_training.py.
_TORCH_KNOWN: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any] | None]]] = {
    "gd": ("SGD", lambda v: {"lr": v["lr"]}),
    "sgd": ("SGD", lambda v: {"lr": v["lr"], "momentum": v["momentum"],
                              "dampening": v["dampening"], "nesterov": v["nesterov"]}),
    "nesterov": ("SGD", lambda v: {"lr": v["lr"], "momentum": v["momentum"],
                                   "dampening": v["dampening"], "nesterov": True}),
    "rmsprop": ("RMSprop", lambda v: None if v["eps_in_sqrt"] else
                {"lr": v["lr"], "alpha": v["alpha"], "eps": v["eps"]}),
    "adam": ("Adam", lambda v: {"lr": v["lr"], "betas": _betas(v), "eps": v["eps"],
                                "amsgrad": v["amsgrad"]}),
    "adagrad": ("Adagrad", lambda v: {
        "lr": v["lr"], "lr_decay": v["lr_decay"],
        "initial_accumulator_value": v["initial_accumulator_value"], "eps": v["eps"]}),
    "adadelta": ("Adadelta", lambda v: {"lr": v["lr"], "rho": v["rho"], "eps": v["eps"]}),
    "adamax": ("Adamax", lambda v: {"lr": v["lr"], "betas": _betas(v), "eps": v["eps"]}),
    "nadam": ("NAdam", lambda v: {"lr": v["lr"], "betas": _betas(v), "eps": v["eps"],
                                  "momentum_decay": v["momentum_decay"]}),
}


def torch_optimizer_args(run: RunSpec) -> tuple[str, dict[str, Any]] | None:
    """``(torch.optim class name, kwargs)`` if torch implements ``run`` exactly, else None.

    Only explicit mappings are trusted: matching constructor arguments by name is not enough
    (``nesterov`` has torch_class SGD and SGD's arguments, yet needs ``nesterov=True``), and
    course-form RMSprop (ε inside the root) has no torch equivalent at all. A rule without
    an entry trains through the adapter, which is always exact since its arithmetic is the
    reference; gradient noise is the engine's, so a noisy spec uses the adapter too.
    """
    spec = run.spec
    values = run.resolved()
    if spec.torch_class is None or values.get("noise", 0.0) or spec.name not in _TORCH_KNOWN:
        return None
    cls, make = _TORCH_KNOWN[spec.name]
    kwargs = make(values)
    return None if kwargs is None else (cls, kwargs)


def make_torch_optimizer(run: RunSpec, params: Iterable[Any], *, backend: str = "auto"):
    """A ``torch.optim.Optimizer`` for ``run``: torch's own class if it matches, else the
    adapter. ``backend="engine"`` forces the adapter (tests compare the two)."""
    import torch

    if backend not in ("auto", "engine"):
        raise ValueError(f"backend must be auto or engine, got {backend!r}")
    mapped = torch_optimizer_args(run) if backend == "auto" else None
    if mapped is not None:
        cls, kwargs = mapped
        return getattr(torch.optim, cls)(params, **kwargs)
    return adapter_class()(params, run)


def backend_name(optimizer: Any) -> str:
    if type(optimizer).__name__ == "EngineRuleOptimizer":
        return f"engine rule {optimizer.run_spec.name} (adapter)"
    return f"torch.optim.{type(optimizer).__name__}"


def _make_adapter_class():
    import torch

    class EngineRuleOptimizer(torch.optim.Optimizer):
        """Train a network with one of the engine's numpy update rules.

        Each ``step`` flattens the parameters and their gradients into float64 vectors,
        calls the rule's ``update(grads, state, params, oracle)`` and writes
        ``params + updates`` back. The oracle evaluates the loss on the current batch at any
        point through the ``closure`` passed to ``step`` (torch's convention: it zeroes the
        gradients, computes the loss, calls backward and returns the loss); rules that only
        use the gradient they are given work without a closure. ``oracle.jvp`` is computed
        as ∇f·v by backprop (same value as a forward-mode pass, not its cost). The rule's
        state (a NamedTuple of numpy arrays) is kept in ``rule_state``.
        """

        def __init__(self, params, run_spec: RunSpec):
            check_trainable(run_spec)
            super().__init__(params, {})
            self.run_spec = run_spec
            self.rule = build_optimizer(run_spec)
            values = run_spec.resolved()
            self.noise = float(values.get("noise", 0.0))
            self._rng = np.random.default_rng(int(values.get("seed", 0)))
            self.rule_state: Any = None

        def _params(self) -> list:
            return [p for group in self.param_groups for p in group["params"]]

        @torch.no_grad()
        def step(self, closure: Callable[[], Any] | None = None):
            params = self._params()
            w = _flat(params)
            g = _flat([p.grad if p.grad is not None else torch.zeros_like(p) for p in params])
            oracle = _NetworkOracle(params, closure, w, self.noise, self._rng)
            if self.noise:
                g = g + self.noise * self._rng.standard_normal(g.shape)
            if self.rule_state is None:
                self.rule_state = self.rule.init(w)
            with np.errstate(all="ignore"):
                updates, self.rule_state = self.rule.update(g, self.rule_state, w, oracle)
            _assign(params, w + np.asarray(updates, dtype=np.float64))
            return None

    return EngineRuleOptimizer


def _flat(tensors: Sequence[Any]) -> np.ndarray:
    import torch

    return torch.cat([t.detach().reshape(-1) for t in tensors]).to(
        "cpu", torch.float64).numpy()


def _assign(params: Sequence[Any], vector: np.ndarray) -> None:
    import torch

    flat = torch.from_numpy(np.ascontiguousarray(vector))
    offset = 0
    with torch.no_grad():
        for p in params:
            n = p.numel()
            p.copy_(flat[offset:offset + n].view_as(p))
            offset += n


class _NetworkOracle:
    """The loss on the current batch as a function of the flattened weights."""

    def __init__(self, params, closure, w0: np.ndarray, noise: float, rng):
        self.params = params
        self.closure = closure
        self.w0 = w0
        self.noise = noise
        self.rng = rng

    def _eval(self, p: np.ndarray) -> tuple[float, np.ndarray]:
        import torch

        if self.closure is None:
            raise ValueError("this rule re-evaluates the loss: step() needs a closure")
        _assign(self.params, np.asarray(p, dtype=np.float64))
        try:
            with torch.enable_grad():
                loss = self.closure()
            grad = _flat([q.grad if q.grad is not None else torch.zeros_like(q)
                          for q in self.params])
        finally:
            _assign(self.params, self.w0)
        return float(loss), grad

    def value(self, p):
        return self._eval(p)[0]

    def grad(self, p):
        g = self._eval(p)[1]
        if self.noise:
            g = g + self.noise * self.rng.standard_normal(g.shape)
        return g

    def hessian(self, p):
        raise ValueError("the Hessian is not available for networks")

    def jvp(self, p, v):
        return float(np.dot(self.grad(p), v))


_adapter: list[type] = []


def adapter_class() -> type:
    """The :class:`EngineRuleOptimizer` class (created, and torch imported, on first use)."""
    if not _adapter:
        _adapter.append(_make_adapter_class())
    return _adapter[0]


def __getattr__(name: str):
    # EngineRuleOptimizer subclasses torch.optim.Optimizer: built on first use so that
    # importing this module does not import torch (it is on the GUI's start-up path).
    if name == "EngineRuleOptimizer":
        return adapter_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    return _run(config, specs, data, should_stop or (lambda: False))


def _run(config: TrainConfig, specs, data, should_stop) -> Iterator[TrainingEvent]:
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
        t0 = time.perf_counter()

        def finished(stopped: bool, epochs_done: int) -> Finished:
            elapsed = time.perf_counter() - t0
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
                            [torch.linalg.vector_norm(w.grad) for w in weights[i]]).double()
                    if adapter[i]:
                        opt.step(_closure(model, opt, xb, yb))
                    else:
                        opt.step()
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
                    elapsed = time.perf_counter() - t0
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
        return metrics_csv(self.results, self.n_linear)


CSV_COLUMNS = ("optimizer", "epoch", "train_loss", "train_acc", "val_loss", "val_acc")


def metrics_csv(results: Iterable[EpochResult], n_linear: int | None = None) -> str:
    """Header + one row per optimizer and epoch; ``grad_norm_1`` is the first layer."""
    results = list(results)
    if n_linear is None:
        n_linear = max((len(r.grad_norms) for r in results), default=0)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS + tuple(f"grad_norm_{k}" for k in range(1, n_linear + 1)))
    for r in results:
        writer.writerow([r.optimizer, r.epoch, repr(r.train_loss), repr(r.train_acc),
                         repr(r.val_loss), repr(r.val_acc), *(repr(g) for g in r.grad_norms)])
    return buf.getvalue()


def write_metrics_csv(path: str | os.PathLike, history: TrainingHistory) -> None:
    """Write the metrics CSV atomically (nothing is left behind if it fails)."""
    atomic_write(path, history.csv_text())

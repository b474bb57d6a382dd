"""The optimizer registry: hyperparameters, specs, validation. It sits below the rules.

Every optimizer is a pair of pure functions, in the style of optax::

    opt = build_optimizer(parse_spec("adam(lr=0.2)"))
    state = opt.init(params)
    updates, state = opt.update(grads, state, params, oracle)
    params = params + updates

``state`` is a small immutable NamedTuple (the step inspector shows it as is, and rewinding
is just indexing recorded states). ``update`` never mutates its inputs. ``oracle`` is the
surface being minimized (anything with ``value``, ``grad``, ``hessian`` and ``jvp``); plain
first-order rules ignore it, while Newton, SAM/ASAM and forward gradients need it.

One :class:`OptimizerSpec` per optimizer (name, hyperparameters with default, valid range
and help, the update rule as text) drives validation, the GUI's form, the command line and
the documentation. Hyperparameter names follow torch.optim's constructor arguments, with
``betas`` split into ``beta1``/``beta2``; defaults are torch's.

One module per optimizer or small family (``sgd.py``, ``adam.py``, ``newton.py``, …) holds
*everything* about its optimizers: the state, the rule, the spec, the step explainer (how
:mod:`engine.explain` writes a step out), the torch.optim mapping and the state field the
playground draws as a velocity. :func:`register` refuses an incomplete spec when the module
is imported, so a forgotten piece is an error instead of a feature that silently vanishes.
Adding an optimizer means adding one module to the package (it is imported with it).

**Batches of runs.** Every rule works on points of shape ``(..., 2)``: the last axis holds
one run's parameters, any leading axes index independent runs (a single run has shape
``(2,)``, a network's flat weight vector ``(n,)``). State arrays carry the same leading axes
(``m`` of shape ``(N, 2)``; per-run scalars such as forward gradient's ``d`` shape
``(N,)``; Newton's Hessian ``(N, 2, 2)``), while the step counter ``t`` and anything that
depends only on it is shared. Reductions are per run, over the last axis (SAM's norm,
Newton's solve). There is one code path: a single run is a batch with no leading axes.

**Per-run hyperparameters.** ``build_optimizer(run, {"lr": lrs})`` builds the rule with any
float hyperparameter replaced by an array of shape ``(N,)`` (one value per run; a
wrapper's base takes ``"base.lr"``). Rules use hyperparameters only in broadcasting
arithmetic (and ``np.any`` in their combination checks), so an array of shape ``(N, 1)``
works wherever a float does; :func:`per_run_values` validates and reshapes them.

**Schedules.** Hyperparameters are read at every step, as torch reads its param_groups:
a rule's state never depends on the values of its hyperparameters, only on the gradients
and points seen. So a schedule (torch.optim.lr_scheduler, OneCycle's momentum) changes a
hyperparameter between two steps by building the rule again with the new values —
``build_optimizer(run, {"lr": lr_t})``, cheap: a closure — and calling its ``update`` with
the state it already has. For a pure learning-rate schedule the shortcut is exact as well:
every rule's update is η times a direction computed from the state and gradient
(``update(η_t) = (η_t/η)·update(η)``, checked by ``tests/test_batch.py``); the one state that
holds η is AdaSmooth's window of past displacements, which then records the scheduled steps.

This module imports nothing from the rules, :mod:`engine.spec` or :mod:`engine.explain`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from engine import schedules

Array = np.ndarray


class Oracle(Protocol):
    """What an update rule may ask of the function being minimized."""

    def value(self, p: Array) -> Array: ...
    def grad(self, p: Array) -> Array: ...
    def hessian(self, p: Array) -> Array: ...
    def jvp(self, p: Array, v: Array) -> float: ...


@runtime_checkable
class SpecLike(Protocol):
    """A parsed optimizer spec (:class:`engine.spec.RunSpec`), as a nested value (SAM's base)."""

    name: str
    args: tuple

    def resolved(self) -> dict[str, Any]: ...


class Optimizer(NamedTuple):
    """A pure update rule: ``init(params) -> state``;
    ``update(grads, state, params, oracle) -> (updates, new_state)``."""

    init: Callable[[Array], Any]
    update: Callable[..., tuple[Array, Any]]


# ----------------------------------------------------------------------------- hyperparameters

INF = math.inf


@dataclass(frozen=True)
class Hyper:
    """One hyperparameter: its type, default, valid range and a line of help.

    ``kind`` is ``"float"``, ``"int"``, ``"bool"``, ``"choice"`` (one of the names in
    ``choices``, written bare: ``schedule=cosine``) or ``"spec"`` (a nested optimizer spec,
    e.g. SAM's base). A ``default`` of ``None`` means the value is required.
    Ranges are closed unless ``lo_open``/``hi_open`` say otherwise.
    """

    name: str
    default: Any
    help: str
    kind: str = "float"
    lo: float = -INF
    hi: float = INF
    lo_open: bool = False
    hi_open: bool = False
    symbol: str = ""  # how the rule text writes it, e.g. "β₁"
    choices: tuple[str, ...] = ()  # the names a "choice" accepts

    @property
    def required(self) -> bool:
        return self.default is None

    def range_text(self) -> str:
        if self.kind == "bool":
            return "true or false"
        if self.kind == "spec":
            return "an optimizer spec such as adam(lr=0.01)"
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        left = "(" if self.lo_open or self.lo == -INF else "["
        right = ")" if self.hi_open or self.hi == INF else "]"
        lo = "-inf" if self.lo == -INF else _fmt_num(self.lo)
        hi = "inf" if self.hi == INF else _fmt_num(self.hi)
        what = "an integer" if self.kind == "int" else "a number"
        return f"{what} in {left}{lo}, {hi}{right}"

    def contains(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if value < self.lo or (self.lo_open and value == self.lo):
            return False
        if value > self.hi or (self.hi_open and value == self.hi):
            return False
        return True

    def validate(self, value: Any, optimizer: str = "") -> Any:
        """The value converted to this hyperparameter's type, or a ValueError saying why not."""
        where = f"{optimizer}: " if optimizer else ""
        if self.kind == "spec":
            if not isinstance(value, SpecLike):
                raise ValueError(f"{where}{self.name} must be {self.range_text()}")
            return value
        if self.kind == "choice":
            if isinstance(value, str) and value in self.choices:
                return value
            raise ValueError(f"{where}{self.name} must be {self.range_text()}, got {value!r}")
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, (int, float)) and value in (0, 1):
                return bool(value)
            raise ValueError(f"{where}{self.name} must be true or false, got {value!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where}{self.name} must be {self.range_text()}, got {value!r}")
        try:
            as_float = float(value)
        except OverflowError:  # an integer too large for a float
            as_float = math.inf
        if not math.isfinite(as_float):
            raise ValueError(f"{where}{self.name} is too large: it must be {self.range_text()}")
        if self.kind == "int":
            if not float(value).is_integer():
                raise ValueError(f"{where}{self.name} must be an integer, got {value!r}")
            value = int(value)
        else:
            value = float(value)
        if not self.contains(value):
            raise ValueError(
                f"{where}{self.name}={_fmt_num(value)} is out of range: "
                f"{self.name} must be {self.range_text()}"
            )
        return value


def _fmt_num(x: float) -> str:
    """Shortest faithful text for a number: 0.2, 1e-6, 30, -5."""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) < 1e16):
        return str(int(x))
    text = repr(float(x))
    if "e" in text:
        mant, exp = text.split("e")
        sign = "-" if exp.startswith("-") else ""
        text = f"{mant}e{sign}{exp.lstrip('+-').lstrip('0') or '0'}"
    return text


def format_value(value: Any) -> str:
    """Text of a hyperparameter value as a spec string writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _fmt_num(value)
    return str(value)


# Shared hyperparameters every optimizer accepts: Gaussian gradient noise (stochastic
# gradients on any surface) with a seed for reproducibility.
NOISE = Hyper("noise", 0.0, "standard deviation σ of Gaussian noise added to every gradient "
              "(simulates stochastic gradients)", lo=0.0, hi=1e6, symbol="σ")
SEED = Hyper("seed", 0, "random seed for gradient noise, mini-batches and random directions",
             kind="int", lo=0, hi=2**32 - 1)
# Mini-batches only exist on surfaces built from a data set (they offer ``n_samples`` and
# ``batch_grad``); elsewhere a nonzero batch is refused by run_trajectory.
BATCH = Hyper("batch", 0, "mini-batch size on surfaces with a data set: 0 = full batch (GD), "
              "1 = one sample per step (SGD), k = mini-batch SGD; drawn with the seed",
              kind="int", lo=0, hi=1_000_000, symbol="B")
# Learning-rate schedules and gradient clipping (engine.schedules), with torch's names.
SCHEDULE = Hyper("schedule", "none", "learning-rate schedule, stepped after every step as "
                 "torch.optim.lr_scheduler does: none, step (StepLR), exponential "
                 "(ExponentialLR), cosine (CosineAnnealingLR), warmup (LinearLR), onecycle "
                 "(OneCycleLR)", kind="choice", choices=schedules.SCHEDULES)
SCHEDULE_HYPERS = (
    SCHEDULE,
    Hyper("step_size", 10, "StepLR: multiply η by γ every step_size steps", kind="int",
          lo=1, hi=100_000),
    Hyper("gamma", 0.1, "StepLR / ExponentialLR: the decay factor γ (ExponentialLR needs it "
          "given, e.g. 0.99)", lo=0.0, hi=10.0, symbol="γ"),
    Hyper("T_max", 0, "CosineAnnealingLR: steps of a half cosine period; 0 = the run's length",
          kind="int", lo=0, hi=100_000),
    Hyper("eta_min", 0.0, "CosineAnnealingLR: the lowest learning rate", lo=0.0, hi=1e4,
          symbol="η_min"),
    Hyper("start_factor", 1.0 / 3.0, "LinearLR (warm-up): η's factor at the first step",
          lo=0.0, hi=1.0, lo_open=True),
    Hyper("end_factor", 1.0, "LinearLR (warm-up): η's factor after total_iters steps",
          lo=0.0, hi=1.0),
    Hyper("total_iters", 5, "LinearLR (warm-up): steps until end_factor is reached",
          kind="int", lo=0, hi=100_000),
    Hyper("max_lr", 0.0, "OneCycleLR: the peak learning rate; 0 = the run's lr (OneCycleLR "
          "replaces lr by its own cycle)", lo=0.0, hi=1e4),
    Hyper("total_steps", 0, "OneCycleLR: the cycle's length in steps; 0 = the run's length",
          kind="int", lo=0, hi=100_000),
    Hyper("pct_start", 0.3, "OneCycleLR: fraction of the cycle spent increasing η",
          lo=0.0, hi=1.0),
    Hyper("anneal_strategy", "cos", "OneCycleLR: cos or linear annealing", kind="choice",
          choices=schedules.ANNEAL_STRATEGIES),
    Hyper("div_factor", 25.0, "OneCycleLR: the first η is max_lr/div_factor", lo=0.0,
          lo_open=True, hi=1e9),
    Hyper("final_div_factor", 1e4, "OneCycleLR: the last η is max_lr/(div_factor·"
          "final_div_factor)", lo=0.0, lo_open=True, hi=1e12),
    Hyper("three_phase", False, "OneCycleLR: a third phase annealing down to the last η",
          kind="bool"),
    Hyper("cycle_momentum", True, "OneCycleLR: cycle momentum (or β₁) between max_momentum "
          "and base_momentum, opposite to η (rules with momentum or beta1)", kind="bool"),
    Hyper("base_momentum", 0.85, "OneCycleLR: the lowest momentum of the cycle", lo=0.0,
          hi=1.0, hi_open=True),
    Hyper("max_momentum", 0.95, "OneCycleLR: the highest momentum of the cycle", lo=0.0,
          hi=1.0, hi_open=True),
)
CLIP_HYPERS = (
    Hyper("clip_norm", 0.0, "clip the gradient's 2-norm to this (torch's clip_grad_norm_); "
          "0 = off", lo=0.0, hi=1e9),
    Hyper("clip_value", 0.0, "clip every gradient component to [−v, v] (torch's "
          "clip_grad_value_); 0 = off", lo=0.0, hi=1e9),
)
COMMON_HYPERS = (NOISE, SEED, BATCH) + SCHEDULE_HYPERS + CLIP_HYPERS




# ----------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class TorchMapping:
    """How a spec maps onto a ``torch.optim`` class with exactly the same arithmetic.

    ``kwargs(values)`` turns the spec's resolved values into the class's constructor keyword
    arguments, or returns ``None`` for values torch has no equivalent of (course-form RMSprop).
    ``examples`` are spec strings that tests/test_training.py trains with both torch's class
    and the engine's adapter, step by step, so every mapping is checked.
    """

    cls: str
    kwargs: Callable[[dict[str, Any]], dict[str, Any] | None] = field(repr=False)
    examples: tuple[str, ...] = ()


class _NoTorch:
    def __repr__(self) -> str:
        return "NO_TORCH"


# A spec declares ``torch=NO_TORCH`` when torch.optim has no class with its semantics (it then
# trains through the engine's adapter); leaving ``torch`` out is an error.
NO_TORCH: Any = _NoTorch()
# ``velocity=FROM_BASE``: a wrapper (SAM) whose velocity is its base optimizer's.
FROM_BASE = "base_state"
_UNSET: Any = object()

# Symbols of state fields every rule may use (Unicode, LaTeX).
COMMON_SYMBOLS: dict[str, tuple[str, str]] = {"t": ("t", "t")}


@dataclass(frozen=True)
class OptimizerSpec:
    """Everything about one optimizer; all fields but the last few are required.

    ``state`` is the rule's state class (a NamedTuple with a step counter ``t``);
    ``symbols`` maps each of its fields to its (Unicode, LaTeX) symbol; ``explainer(ctx)``
    writes one step out line by line (see :mod:`engine.explain.context`); ``torch`` is a
    :class:`TorchMapping` or ``NO_TORCH``; ``velocity`` is the state field the playground
    draws as the momentum arrow together with its label (``("m", "m")``), ``None`` for
    none, or ``FROM_BASE``.
    """

    name: str
    title: str
    family: str
    summary: str
    rule: str  # the update rule as text, one statement per line
    hypers: tuple[Hyper, ...]
    factory: Callable[..., Optimizer] = field(repr=False)
    state: type = _UNSET
    symbols: dict[str, tuple[str, str]] = field(default=_UNSET, repr=False)
    explainer: Callable[[Any], None] | None = field(default=_UNSET, repr=False)
    torch: Any = _UNSET
    velocity: tuple[str, str] | str | None = _UNSET
    convention: str = ""  # which convention it follows, when conventions differ
    playground: dict[str, Any] = field(default_factory=dict)  # suggested values on 2-D surfaces
    needs: tuple[str, ...] = ()  # oracle methods used beyond the gradient: "hessian", "jvp", …
    # Rules that find their own step length (line search, trust region): how, in a few words
    # (shown when a schedule or clipping is refused for them).
    step_source: str = ""
    # Non-empty for rules that estimate their own gradient (the gradient fed to them is
    # unused): the note the explanations show.
    estimates_gradient: str = ""

    @property
    def torch_class(self) -> str | None:
        """The torch.optim class with the same semantics, if any."""
        return self.torch.cls if isinstance(self.torch, TorchMapping) else None

    @property
    def all_hypers(self) -> tuple[Hyper, ...]:
        own = {h.name for h in self.hypers}
        return self.hypers + tuple(h for h in COMMON_HYPERS if h.name not in own)

    def hyper(self, name: str) -> Hyper:
        for h in self.all_hypers:
            if h.name == name:
                return h
        valid = ", ".join(h.name for h in self.all_hypers)
        raise ValueError(f"{self.name} has no hyperparameter {name!r}; valid: {valid}")

    def defaults(self) -> dict[str, Any]:
        return {h.name: h.default for h in self.all_hypers}

    def symbol(self, field_name: str) -> tuple[str, str]:
        """(Unicode, LaTeX) of one of the state's fields."""
        if field_name in self.symbols:
            return self.symbols[field_name]
        if field_name in COMMON_SYMBOLS:
            return COMMON_SYMBOLS[field_name]
        return field_name, r"\mathrm{" + field_name.replace("_", r"\_") + "}"

    def tooltip(self) -> str:
        lines = [f"{self.title}: {self.summary}", "", self.rule]
        if self.convention:
            lines += ["", self.convention]
        return "\n".join(lines)


REGISTRY: dict[str, OptimizerSpec] = {}

FAMILIES = (
    "Gradient descent",
    "Momentum",
    "Adaptive learning rate",
    "Adam family",
    "Second order",
    "Sharpness-aware",
    "Gradient estimates",
)


def check_complete(spec: OptimizerSpec) -> None:
    """Raise a ValueError naming every missing or inconsistent piece of ``spec``."""
    problems = []
    if not spec.rule.strip():
        problems.append("rule text is empty")
    if not callable(spec.factory):
        problems.append("factory is not callable")
    fields = getattr(spec.state, "_fields", None)
    if spec.state is _UNSET or fields is None:
        problems.append("state (its NamedTuple state class) is missing")
        fields = ()
    elif "t" not in fields:
        problems.append(f"state {spec.state.__name__} has no step counter t")
    if spec.symbols is _UNSET:
        problems.append("symbols (Unicode and LaTeX of each state field) are missing")
    else:
        missing = [f for f in fields
                   if f != FROM_BASE and f not in spec.symbols and f not in COMMON_SYMBOLS]
        if missing:
            problems.append(f"no symbol for state field(s) {', '.join(missing)}")
    if spec.explainer is _UNSET or not callable(spec.explainer):
        problems.append("explainer (how a step is written out) is missing")
    if spec.torch is _UNSET:
        problems.append("torch mapping is not declared (a TorchMapping, or NO_TORCH)")
    elif isinstance(spec.torch, TorchMapping):
        if not spec.torch.cls or not callable(spec.torch.kwargs) or not spec.torch.examples:
            problems.append("torch mapping needs a class, a kwargs function and examples")
    elif spec.torch is not NO_TORCH:
        problems.append(f"torch must be a TorchMapping or NO_TORCH, got {spec.torch!r}")
    if spec.velocity is _UNSET:
        problems.append("velocity is not declared (a (field, label) pair, FROM_BASE or None)")
    elif spec.velocity == FROM_BASE:
        if FROM_BASE not in fields:
            problems.append("velocity=FROM_BASE but the state has no base_state")
    elif spec.velocity is not None and (
        not isinstance(spec.velocity, tuple) or spec.velocity[0] not in fields
    ):
        problems.append(f"velocity {spec.velocity!r} is not a field of the state")
    if problems:
        raise ValueError(f"optimizer {spec.name!r} is incomplete: " + "; ".join(problems))


def register(spec: OptimizerSpec) -> OptimizerSpec:
    """Add ``spec`` to :data:`REGISTRY`, or raise a ValueError if anything is missing."""
    if spec.name in REGISTRY:
        raise ValueError(f"optimizer {spec.name!r} registered twice")
    if spec.family not in FAMILIES:
        raise ValueError(f"unknown family {spec.family!r}")
    check_complete(spec)
    REGISTRY[spec.name] = spec
    return spec


def get_optimizer_spec(name: str) -> OptimizerSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown optimizer {name!r}; choose one of: {', '.join(REGISTRY)}"
        ) from None


def check_shared_options(spec: OptimizerSpec, values: dict[str, Any],
                         given: dict[str, Any]) -> None:
    """ValueError where the shared schedule/clipping options do not fit this rule."""
    own = {h.name for h in spec.hypers}
    schedules.check(values, given, own)
    if "residuals" in spec.needs and (values.get("noise") or values.get("batch")):
        raise ValueError(
            f"{spec.name} evaluates the residuals r(w) and their Jacobian itself, not a "
            f"gradient: noise and batch do not apply to it")
    if values.get("schedule", "none") != "none" and "lr" not in own:
        raise ValueError(
            f"{spec.name} has no learning rate to schedule: its step length comes from "
            f"{spec.step_source or 'its own rule'}; use schedule=none")
    clipping = [k for k in schedules.CLIP_PARAMS if values.get(k)]
    if clipping and ("grad" in spec.needs or "value" in spec.needs or spec.step_source):
        raise ValueError(
            f"{clipping[0]} clips the gradient handed to the update, but {spec.name} "
            f"evaluates further gradients itself ({spec.step_source or 'a perturbed point'})"
            f", which would not be clipped; use {clipping[0]}=0")


def build_optimizer(run_spec, overrides: dict[str, Any] | None = None) -> Optimizer:
    """The update rule for a parsed :class:`engine.spec.RunSpec` (validated at parse time).

    ``overrides`` replaces hyperparameter values, e.g. ``{"lr": 0.05}`` for a scheduled step
    or ``{"lr": lrs.reshape(-1, 1)}`` for one learning rate per run (see
    :func:`per_run_values`); ``"base.lr"`` reaches a wrapper's base optimizer. Override
    values are trusted: validate them first.
    """
    spec = get_optimizer_spec(run_spec.name)
    values = run_spec.resolved()
    if not overrides:
        check_shared_options(spec, values, run_spec.given)
    own = {h.name for h in spec.hypers}
    kwargs = {k: v for k, v in values.items() if k in own}
    if overrides:
        nested: dict[str, dict[str, Any]] = {}
        for key, value in overrides.items():
            head, _, rest = key.partition(".")
            if rest:
                nested.setdefault(head, {})[rest] = value
            elif head in own:
                kwargs[head] = value
            else:
                raise ValueError(f"{spec.name} has no hyperparameter {key!r} of its own")
        for head, inner in nested.items():
            if head not in own or spec.hyper(head).kind != "spec":
                raise ValueError(f"{spec.name} has no nested optimizer {head!r}")
            kwargs[head] = build_optimizer(kwargs[head], inner)
    return spec.factory(**kwargs)


def per_run_values(run_spec, name: str, values: Any) -> np.ndarray:
    """``values`` (one per run) of the float hyperparameter ``name`` (``"base.lr"`` for a
    wrapper's base) of ``run_spec``, validated, as an array of shape ``(N, 1)`` that
    broadcasts against points of shape ``(N, 2)``; a ValueError says what is wrong."""
    spec = get_optimizer_spec(run_spec.name)
    head, _, rest = name.partition(".")
    if rest:
        hyper = spec.hyper(head)
        if hyper.kind != "spec":
            raise ValueError(f"{spec.name} has no nested optimizer {head!r}")
        return per_run_values(run_spec.resolved()[head], rest, values)
    hyper = spec.hyper(name)
    if hyper in COMMON_HYPERS or hyper.kind != "float":
        raise ValueError(
            f"{spec.name}: only its own float hyperparameters can differ between runs, "
            f"not {name} ({'shared by the whole batch' if hyper in COMMON_HYPERS else hyper.kind})"
        )
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{spec.name}: {name} needs a non-empty 1-D array of values, one per run")
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(arr) & (arr >= hyper.lo) & (arr <= hyper.hi)
        ok &= ~((arr == hyper.lo) & hyper.lo_open) & ~((arr == hyper.hi) & hyper.hi_open)
    if not ok.all():
        bad = float(arr[~ok][0])
        raise ValueError(
            f"{spec.name}: {name}={_fmt_num(bad)} is out of range: "
            f"{name} must be {hyper.range_text()}"
        )
    return arr.reshape(-1, 1)


def velocity(run_spec, state) -> tuple[Array, str] | None:
    """The state vector a run's spec declares as its velocity, with its label, if any."""
    spec = get_optimizer_spec(run_spec.name)
    if spec.velocity == FROM_BASE:
        return velocity(run_spec.resolved()["base"], getattr(state, FROM_BASE))
    if spec.velocity is None or state is None:
        return None
    field_name, label = spec.velocity
    return np.asarray(getattr(state, field_name), dtype=float), label


# ----------------------------------------------------------------------------- shared pieces


# Hyperparameters shared by several rules (same name, default and range as torch).
def lr_hyper(default: float = 1e-3) -> Hyper:
    return Hyper("lr", default, "learning rate (step size)", lo=0.0, hi=1e4, symbol="η")


def eps_hyper(
    default: float = 1e-8,
    help: str = "term added for numerical stability",
    positive: bool = False,
) -> Hyper:
    """ε; ``positive`` where ε = 0 would turn a zero gradient into 0/0."""
    return Hyper("eps", default, help, lo=0.0, hi=1.0, lo_open=positive, symbol="ε")


def beta_hyper(name: str, default: float, help: str, symbol: str) -> Hyper:
    return Hyper(name, default, help, lo=0.0, hi=1.0, hi_open=True, symbol=symbol)


def zeros(params: Array) -> Array:
    return np.zeros_like(np.asarray(params, dtype=float))


def run_norms(x: Array) -> Array:
    """‖x‖₂ of each run, over the last axis, keeping it (shape ``(..., 1)``).

    A 1-D vector (one run, or a network's weights) takes ``np.linalg.norm`` as it always
    did; 2-D points are summed by hand, because numpy reduces a last axis of length 2
    slowly (milliseconds for 65,536 runs) — the results are the same numbers.
    """
    if x.ndim == 1:  # (np.linalg.norm's own formula for a vector, without its overhead)
        return np.sqrt(x.dot(x)).reshape(1)
    if x.shape[-1] == 2:
        return np.sqrt(x[..., :1] * x[..., :1] + x[..., 1:] * x[..., 1:])
    return np.linalg.norm(x, axis=-1, keepdims=True)


class LoopedState(NamedTuple):
    """The state of a batch of runs stepped one by one (see :func:`run_by_run`)."""

    t: int
    runs: tuple  # each run's own state


def run_by_run(factory: Callable[..., Optimizer]) -> Callable[..., Optimizer]:
    """Batch a rule whose steps take a varying number of evaluations (a line search, a trust
    region, Levenberg–Marquardt's accepted or rejected trial) by looping over the runs.

    Vectorizing such a step would mean masking every branch of a line search per run;
    instead a batch of points, shape ``(N, 2)``, is stepped run by run in Python, each run
    with its own state and its own hyperparameters (row i of a per-run array, as
    :func:`per_run_values` makes them), so run i is exactly its single run. A run whose
    update fails (a singular matrix at a NaN point) gets a NaN update and diverges alone.
    A single point ``(2,)`` takes the rule directly. The runs of a batch ask the oracle
    about one point at a time, which needs an exact oracle (no noise, full batch).
    """

    def build(**kwargs: Any) -> Optimizer:
        arrays = {k for k, v in kwargs.items() if isinstance(v, np.ndarray)}

        def scalar(i: int) -> dict[str, Any]:
            return {k: (float(np.asarray(v).reshape(-1)[i]) if k in arrays else v)
                    for k, v in kwargs.items()}

        one = factory(**scalar(0)) if arrays else factory(**kwargs)
        rules: dict[int, Optimizer] = {}

        def rule(i: int) -> Optimizer:
            if not arrays:
                return one
            if i not in rules:
                rules[i] = factory(**scalar(i))
            return rules[i]

        def init(params):
            p = np.asarray(params, dtype=float)
            if p.ndim == 1:
                return one.init(p)
            return LoopedState(0, tuple(rule(i).init(pi) for i, pi in enumerate(p)))

        def update(grads, state, params=None, oracle=None):
            p = np.asarray(params, dtype=float)
            if p.ndim == 1:
                return one.update(grads, state, params, oracle)
            if oracle is not None and not getattr(oracle, "exact", True):
                raise ValueError("rules with a line search or trust region step a batch run by "
                                 "run and need exact gradients: no noise or mini-batches")
            surface = getattr(oracle, "surface", oracle)
            g = np.asarray(grads, dtype=float)
            updates = np.empty_like(p)
            states = []
            for i, (pi, gi, si) in enumerate(zip(p, g, state.runs, strict=True)):
                try:
                    ui, si = rule(i).update(gi, si, pi, surface)
                except (FloatingPointError, np.linalg.LinAlgError, OverflowError, ValueError,
                        ZeroDivisionError):
                    if not np.all(np.isfinite(pi)):
                        ui = np.full(2, np.nan)
                    else:
                        raise
                updates[i] = ui
                states.append(si)
            return updates, LoopedState(state.t + 1, tuple(states))

        return Optimizer(init, update)

    build.__name__ = getattr(factory, "__name__", "rule")
    build.__doc__ = factory.__doc__
    return build

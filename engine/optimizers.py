"""Optimizer update rules and the declarative registry that describes them.

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
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import numpy as np

Array = np.ndarray


class Oracle(Protocol):
    """What an update rule may ask of the function being minimized."""

    def value(self, p: Array) -> Array: ...
    def grad(self, p: Array) -> Array: ...
    def hessian(self, p: Array) -> Array: ...
    def jvp(self, p: Array, v: Array) -> float: ...


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

    ``kind`` is ``"float"``, ``"int"``, ``"bool"`` or ``"spec"`` (a nested optimizer spec,
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

    @property
    def required(self) -> bool:
        return self.default is None

    def range_text(self) -> str:
        if self.kind == "bool":
            return "true or false"
        if self.kind == "spec":
            return "an optimizer spec such as adam(lr=0.01)"
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
            from engine.spec import RunSpec

            if not isinstance(value, RunSpec):
                raise ValueError(f"{where}{self.name} must be {self.range_text()}")
            return value
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, (int, float)) and value in (0, 1):
                return bool(value)
            raise ValueError(f"{where}{self.name} must be true or false, got {value!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where}{self.name} must be {self.range_text()}, got {value!r}")
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
SEED = Hyper("seed", 0, "random seed for gradient noise and random directions",
             kind="int", lo=0, hi=2**32 - 1)
COMMON_HYPERS = (NOISE, SEED)


# ----------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class OptimizerSpec:
    """Everything about one optimizer that is not its arithmetic."""

    name: str
    title: str
    family: str
    summary: str
    rule: str  # the update rule as text, one statement per line
    hypers: tuple[Hyper, ...]
    factory: Callable[..., Optimizer] = field(repr=False)
    convention: str = ""  # which convention it follows, when conventions differ
    playground: dict[str, Any] = field(default_factory=dict)  # suggested values on 2-D surfaces
    torch_class: str | None = None  # torch.optim class with the same semantics, if any
    needs: tuple[str, ...] = ()  # oracle methods used beyond the gradient: "hessian", "jvp", …

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


def register(spec: OptimizerSpec) -> OptimizerSpec:
    if spec.name in REGISTRY:
        raise ValueError(f"optimizer {spec.name!r} registered twice")
    if spec.family not in FAMILIES:
        raise ValueError(f"unknown family {spec.family!r}")
    REGISTRY[spec.name] = spec
    return spec


def get_optimizer_spec(name: str) -> OptimizerSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown optimizer {name!r}; choose one of: {', '.join(REGISTRY)}"
        ) from None


def build_optimizer(run_spec) -> Optimizer:
    """The update rule for a parsed :class:`engine.spec.RunSpec` (validated at parse time)."""
    spec = get_optimizer_spec(run_spec.name)
    values = run_spec.resolved()
    own = {h.name for h in spec.hypers}
    kwargs = {k: v for k, v in values.items() if k in own}
    return spec.factory(**kwargs)


# Hyperparameters shared by several rules (same name, default and range as torch).
def _lr(default: float = 1e-3) -> Hyper:
    return Hyper("lr", default, "learning rate (step size)", lo=0.0, hi=1e4, symbol="η")


def _eps(default: float = 1e-8, help: str = "term added for numerical stability") -> Hyper:
    return Hyper("eps", default, help, lo=0.0, hi=1.0, symbol="ε")


def _beta(name: str, default: float, help: str, symbol: str) -> Hyper:
    return Hyper(name, default, help, lo=0.0, hi=1.0, hi_open=True, symbol=symbol)


# ----------------------------------------------------------------------------- states


class EmptyState(NamedTuple):
    t: int


class VelocityState(NamedTuple):
    t: int
    v: Array  # velocity (EMA of gradients)


class SGDState(NamedTuple):
    t: int
    buf: Array  # momentum buffer b (torch's momentum_buffer)


class RMSpropState(NamedTuple):
    t: int
    s: Array  # running average of squared gradients


class AdamState(NamedTuple):
    t: int
    m: Array  # first moment (EMA of gradients)
    v: Array  # second moment (EMA of squared gradients)
    m_hat: Array  # bias-corrected first moment
    v_hat: Array  # bias-corrected second moment (of v_max under amsgrad)
    v_max: Array  # running maximum of v (amsgrad only; zeros otherwise)


# ----------------------------------------------------------------------------- rules


def gd(lr: float) -> Optimizer:
    def init(params):
        return EmptyState(t=0)

    def update(grads, state, params=None, oracle=None):
        return -lr * grads, EmptyState(t=state.t + 1)

    return Optimizer(init, update)


def momentum(lr: float, beta: float) -> Optimizer:
    def init(params):
        return VelocityState(t=0, v=np.zeros_like(params, dtype=float))

    def update(grads, state, params=None, oracle=None):
        v = beta * state.v + (1.0 - beta) * grads
        return -lr * v, VelocityState(t=state.t + 1, v=v)

    return Optimizer(init, update)


def sgd(lr: float, momentum: float, dampening: float, nesterov: bool) -> Optimizer:
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("sgd: nesterov=true requires momentum > 0 and dampening = 0")

    def init(params):
        return SGDState(t=0, buf=np.zeros_like(params, dtype=float))

    def update(grads, state, params=None, oracle=None):
        d = grads
        buf = state.buf
        if momentum != 0:
            buf = grads.copy() if state.t == 0 else momentum * buf + (1.0 - dampening) * grads
            d = grads + momentum * buf if nesterov else buf
        return -lr * d, SGDState(t=state.t + 1, buf=buf)

    return Optimizer(init, update)


def rmsprop(lr: float, alpha: float, eps: float, eps_in_sqrt: bool) -> Optimizer:
    def init(params):
        return RMSpropState(t=0, s=np.zeros_like(params, dtype=float))

    def update(grads, state, params=None, oracle=None):
        s = alpha * state.s + (1.0 - alpha) * grads * grads
        denom = np.sqrt(s + eps) if eps_in_sqrt else np.sqrt(s) + eps
        return -lr * grads / denom, RMSpropState(t=state.t + 1, s=s)

    return Optimizer(init, update)


def adam(lr: float, beta1: float, beta2: float, eps: float, amsgrad: bool) -> Optimizer:
    def init(params):
        z = np.zeros_like(params, dtype=float)
        return AdamState(t=0, m=z, v=z, m_hat=z, v_hat=z, v_max=z)

    def update(grads, state, params=None, oracle=None):
        t = state.t + 1
        m = beta1 * state.m + (1.0 - beta1) * grads
        v = beta2 * state.v + (1.0 - beta2) * grads * grads
        v_max = np.maximum(state.v_max, v) if amsgrad else state.v_max
        m_hat = m / (1.0 - beta1**t)
        v_hat = (v_max if amsgrad else v) / (1.0 - beta2**t)
        updates = -lr * m_hat / (np.sqrt(v_hat) + eps)
        return updates, AdamState(t=t, m=m, v=v, m_hat=m_hat, v_hat=v_hat, v_max=v_max)

    return Optimizer(init, update)


# ----------------------------------------------------------------------------- registry

register(OptimizerSpec(
    name="gd",
    title="Gradient descent",
    family="Gradient descent",
    summary="step against the gradient with a fixed learning rate",
    rule="w ← w − η·g",
    hypers=(_lr(1e-3),),
    factory=gd,
    playground={"lr": 0.1},
    torch_class="SGD",
))

register(OptimizerSpec(
    name="momentum",
    title="Momentum (course EMA form)",
    family="Momentum",
    summary="gradient descent on an exponential moving average of gradients",
    rule="v ← β·v + (1 − β)·g\nw ← w − η·v",
    hypers=(
        _lr(1e-3),
        _beta("beta", 0.9, "decay of the velocity average", "β"),
    ),
    factory=momentum,
    convention=(
        "Course convention: v = β·v + (1−β)·g. torch's SGD momentum is b = μ·b + g "
        "(use sgd(momentum=…)); at a steady gradient torch's step is 1/(1−β) times larger."
    ),
    playground={"lr": 0.1},
))

register(OptimizerSpec(
    name="sgd",
    title="SGD (torch.optim.SGD)",
    family="Gradient descent",
    summary="torch's SGD, with optional heavy-ball or Nesterov momentum",
    rule=(
        "if μ ≠ 0:\n"
        "    b ← g                        (first step)\n"
        "    b ← μ·b + (1 − τ)·g          (later steps)\n"
        "    d ← g + μ·b if nesterov else b\n"
        "else: d ← g\n"
        "w ← w − η·d"
    ),
    hypers=(
        _lr(1e-3),
        Hyper("momentum", 0.0, "momentum factor μ (torch convention b = μ·b + g)",
              lo=0.0, hi=1.0, hi_open=True, symbol="μ"),
        Hyper("dampening", 0.0, "dampening τ for momentum", lo=0.0, hi=1.0, symbol="τ"),
        Hyper("nesterov", False, "use Nesterov momentum", kind="bool"),
    ),
    factory=sgd,
    convention="torch convention: b = μ·b + g (b₁ = g₁), w −= η·b.",
    playground={"lr": 0.1},
    torch_class="SGD",
))

register(OptimizerSpec(
    name="rmsprop",
    title="RMSprop",
    family="Adaptive learning rate",
    summary="divide the step by a running RMS of recent gradients",
    rule=(
        "s ← α·s + (1 − α)·g²\n"
        "w ← w − η·g / (√s + ε)        (torch, eps_in_sqrt=false)\n"
        "w ← w − η·g / √(s + ε)        (course, eps_in_sqrt=true)"
    ),
    hypers=(
        _lr(1e-2),
        Hyper("alpha", 0.99, "smoothing constant of the squared-gradient average (course: γ)",
              lo=0.0, hi=1.0, hi_open=True, symbol="α"),
        _eps(1e-8),
        Hyper("eps_in_sqrt", False,
              "put ε inside the square root (course form) instead of outside (torch form)",
              kind="bool"),
    ),
    factory=rmsprop,
    convention=(
        "torch puts ε outside the square root (α = 0.99, ε = 1e-8); the course puts it inside "
        "(γ = 0.9, ε = 1e-6): set eps_in_sqrt=true for the course's form."
    ),
    playground={"lr": 0.1},
    torch_class="RMSprop",
))

register(OptimizerSpec(
    name="adam",
    title="Adam",
    family="Adam family",
    summary="momentum plus an adaptive per-coordinate step, with bias correction",
    rule=(
        "m ← β₁·m + (1 − β₁)·g\n"
        "v ← β₂·v + (1 − β₂)·g²\n"
        "m̂ ← m / (1 − β₁ᵗ)\n"
        "v̂ ← v / (1 − β₂ᵗ)            (amsgrad: v̂ from v_max = max(v_max, v))\n"
        "w ← w − η·m̂ / (√v̂ + ε)"
    ),
    hypers=(
        _lr(1e-3),
        _beta("beta1", 0.9, "decay of the first-moment average", "β₁"),
        _beta("beta2", 0.999, "decay of the second-moment average", "β₂"),
        _eps(1e-8),
        Hyper("amsgrad", False, "use the running maximum of v (AMSGrad)", kind="bool"),
    ),
    factory=adam,
    playground={"lr": 0.1},
    torch_class="Adam",
))

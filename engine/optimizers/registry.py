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
COMMON_HYPERS = (NOISE, SEED, BATCH)


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


def _eps(
    default: float = 1e-8,
    help: str = "term added for numerical stability",
    positive: bool = False,
) -> Hyper:
    """ε; ``positive`` where ε = 0 would turn a zero gradient into 0/0."""
    return Hyper("eps", default, help, lo=0.0, hi=1.0, lo_open=positive, symbol="ε")


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


def _zeros(params: Array) -> Array:
    return np.zeros_like(np.asarray(params, dtype=float))



def gd(lr: float) -> Optimizer:
    def init(params):
        return EmptyState(t=0)

    def update(grads, state, params=None, oracle=None):
        return -lr * grads, EmptyState(t=state.t + 1)

    return Optimizer(init, update)


def momentum(lr: float, beta: float) -> Optimizer:
    def init(params):
        return VelocityState(t=0, v=_zeros(params))

    def update(grads, state, params=None, oracle=None):
        v = beta * state.v + (1.0 - beta) * grads
        return -lr * v, VelocityState(t=state.t + 1, v=v)

    return Optimizer(init, update)


def sgd(lr: float, momentum: float, dampening: float, nesterov: bool) -> Optimizer:
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("sgd: nesterov=true requires momentum > 0 and dampening = 0")

    def init(params):
        return SGDState(t=0, buf=_zeros(params))

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
        return RMSpropState(t=0, s=_zeros(params))

    def update(grads, state, params=None, oracle=None):
        s = alpha * state.s + (1.0 - alpha) * grads * grads
        denom = np.sqrt(s + eps) if eps_in_sqrt else np.sqrt(s) + eps
        return -lr * grads / denom, RMSpropState(t=state.t + 1, s=s)

    return Optimizer(init, update)


def adam(lr: float, beta1: float, beta2: float, eps: float, amsgrad: bool) -> Optimizer:
    def init(params):
        z = _zeros(params)
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
        "w ← w − η·g / (√s + ε)    torch (eps_in_sqrt=false)\n"
        "w ← w − η·g / √(s + ε)    course (eps_in_sqrt=true)"
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
        "v̂ ← v / (1 − β₂ᵗ)\n"
        "w ← w − η·m̂ / (√v̂ + ε)\n"
        "amsgrad: v̂ ← max(v_max, v) / (1 − β₂ᵗ)"
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


# ============================================================================= the catalogue
#
# Rules below follow torch.optim's single-tensor code where torch has the optimizer (same
# names, defaults and arithmetic, verified step by step in tests/test_against_torch.py) and
# the papers' algorithm boxes otherwise (tests/test_optimizers.py transcribes them).


class AdagradState(NamedTuple):
    t: int
    s: Array  # sum of squared gradients (starts at initial_accumulator_value)
    lr_t: float  # the decayed learning rate η/(1 + (t − 1)·lr_decay) used at step t


class AdadeltaState(NamedTuple):
    t: int
    v: Array  # running average of squared gradients (torch's square_avg)
    u: Array  # running average of squared updates (torch's acc_delta)
    delta: Array  # this step's rescaled gradient Δ (the update is −η·Δ)


class AdamaxState(NamedTuple):
    t: int
    m: Array  # first moment (EMA of gradients)
    u: Array  # exponentially weighted infinity norm (torch's exp_inf)


class NAdamState(NamedTuple):
    t: int
    m: Array  # first moment (EMA of gradients)
    v: Array  # second moment (EMA of squared gradients)
    mu: float  # momentum coefficient μ_t of this step
    mu_product: float  # Π μ_1…μ_t (torch's mu_product)


class AdaBeliefState(NamedTuple):
    t: int
    m: Array  # first moment (EMA of gradients): the "prediction"
    s: Array  # EMA of (g − m)² + ε: the "belief" (variance around the prediction)
    m_hat: Array  # bias-corrected m
    s_hat: Array  # bias-corrected s


class AdaSmoothState(NamedTuple):
    t: int
    window: Array  # the last ≤ M displacements Δx, oldest first, shape (k, n), read-only
    e: Array  # effective ratio |ΣΔx| / Σ|Δx| per coordinate used at this step
    c: Array  # smoothing constant c = (ρ₂ − ρ₁)·e + (1 − ρ₂)
    eg2: Array  # running average E[g²]


class NewtonState(NamedTuple):
    t: int
    hessian: Array  # H at the point the step was taken from
    eigvals: Array  # eigenvalues of H (ascending)
    direction: Array  # (|H| + λI)⁻¹·g; the update is −η·direction


class SAMState(NamedTuple):
    t: int
    base_state: Any  # the base optimizer's own state
    eps: Array  # the ascent perturbation ε = ρ·g/‖g‖
    perturbed_point: Array  # w + ε, where g_sam was taken
    g_sam: Array  # ∇f(w + ε), the gradient handed to the base optimizer


class ASAMState(NamedTuple):
    t: int
    base_state: Any  # the base optimizer's own state
    eps: Array  # the ascent perturbation ε = ρ·T²·g/‖T·g‖
    perturbed_point: Array  # w + ε, where g_sam was taken
    g_sam: Array  # ∇f(w + ε), the gradient handed to the base optimizer
    scale: Array  # T = |w| + η, the per-coordinate scale of the neighbourhood


class ForwardGradientState(NamedTuple):
    t: int
    v: Array  # the random direction v ~ N(0, I) of this step
    d: float  # the directional derivative ∇f·v (one forward-mode JVP)
    g_est: Array  # the estimate d·v (unbiased for ∇f); the update is −η·g_est


def nesterov(lr: float, momentum: float, dampening: float) -> Optimizer:
    """torch's SGD with nesterov=True: a preset, so the picker can list it on its own."""
    return sgd(lr, momentum, dampening, True)


def adagrad(lr: float, lr_decay: float, initial_accumulator_value: float, eps: float) -> Optimizer:
    def init(params):
        s = np.full_like(np.asarray(params, dtype=float), initial_accumulator_value)
        return AdagradState(t=0, s=s, lr_t=lr)

    def update(grads, state, params=None, oracle=None):
        t = state.t + 1
        clr = lr / (1.0 + (t - 1) * lr_decay)
        s = state.s + grads * grads
        return -clr * grads / (np.sqrt(s) + eps), AdagradState(t=t, s=s, lr_t=clr)

    return Optimizer(init, update)


def adadelta(lr: float, rho: float, eps: float) -> Optimizer:
    def init(params):
        z = _zeros(params)
        return AdadeltaState(t=0, v=z, u=z, delta=z)

    def update(grads, state, params=None, oracle=None):
        v = rho * state.v + (1.0 - rho) * grads * grads
        delta = np.sqrt(state.u + eps) / np.sqrt(v + eps) * grads
        u = rho * state.u + (1.0 - rho) * delta * delta
        return -lr * delta, AdadeltaState(t=state.t + 1, v=v, u=u, delta=delta)

    return Optimizer(init, update)


def adamax(lr: float, beta1: float, beta2: float, eps: float) -> Optimizer:
    def init(params):
        z = _zeros(params)
        return AdamaxState(t=0, m=z, u=z)

    def update(grads, state, params=None, oracle=None):
        t = state.t + 1
        m = beta1 * state.m + (1.0 - beta1) * grads
        u = np.maximum(beta2 * state.u, np.abs(grads) + eps)  # torch: ε added to |g|
        updates = -(lr / (1.0 - beta1**t)) * m / u
        return updates, AdamaxState(t=t, m=m, u=u)

    return Optimizer(init, update)


def nadam(lr: float, beta1: float, beta2: float, eps: float, momentum_decay: float) -> Optimizer:
    def init(params):
        z = _zeros(params)
        return NAdamState(t=0, m=z, v=z, mu=0.0, mu_product=1.0)

    def update(grads, state, params=None, oracle=None):
        t = state.t + 1
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        mu_product = state.mu_product * mu
        mu_product_next = mu_product * mu_next
        m = beta1 * state.m + (1.0 - beta1) * grads
        v = beta2 * state.v + (1.0 - beta2) * grads * grads
        denom = np.sqrt(v / (1.0 - beta2**t)) + eps
        updates = (
            -lr * (1.0 - mu) / (1.0 - mu_product) * grads / denom
            - lr * mu_next / (1.0 - mu_product_next) * m / denom
        )
        return updates, NAdamState(t=t, m=m, v=v, mu=mu, mu_product=mu_product)

    return Optimizer(init, update)


def adabelief(lr: float, beta1: float, beta2: float, eps: float) -> Optimizer:
    def init(params):
        z = _zeros(params)
        return AdaBeliefState(t=0, m=z, s=z, m_hat=z, s_hat=z)

    def update(grads, state, params=None, oracle=None):
        t = state.t + 1
        m = beta1 * state.m + (1.0 - beta1) * grads
        r = grads - m
        s = beta2 * state.s + (1.0 - beta2) * r * r + eps
        m_hat = m / (1.0 - beta1**t)
        s_hat = s / (1.0 - beta2**t)
        updates = -lr * m_hat / (np.sqrt(s_hat) + eps)
        return updates, AdaBeliefState(t=t, m=m, s=s, m_hat=m_hat, s_hat=s_hat)

    return Optimizer(init, update)


def effective_ratio(window: Array) -> Array:
    """|ΣΔx| / Σ|Δx| per coordinate over the rows of ``window``, in [0, 1].

    A coordinate that has not moved (an empty window at the first step, or only zero
    steps) has 0/0. It gets e = 1: a path without any reversal counts as straight, so the
    fast average (c = 1 − ρ₁) applies. With E[g²] starting at 0 this keeps the first step
    at η·g/√((1 − ρ₁)²·g² + ε) ≈ η/(1 − ρ₁) per coordinate; e = 0 would make it
    η/(1 − ρ₂) = 100·η for the default ρ₂, a wild first jump.
    """
    net = np.abs(window.sum(axis=0))
    path = np.abs(window).sum(axis=0)
    moved = path > 0
    return np.where(moved, np.minimum(net / np.where(moved, path, 1.0), 1.0), 1.0)


def adasmooth(lr: float, rho1: float, rho2: float, eps: float, window: int) -> Optimizer:
    if rho1 >= rho2:
        raise ValueError(
            f"adasmooth: rho1 ({_fmt_num(rho1)}, the fast decay) must be smaller than "
            f"rho2 ({_fmt_num(rho2)}, the slow decay)"
        )

    def init(params):
        z = _zeros(params)
        empty = np.zeros((0,) + z.shape)
        empty.flags.writeable = False
        return AdaSmoothState(t=0, window=empty, e=z, c=z, eg2=z)

    def update(grads, state, params=None, oracle=None):
        e = effective_ratio(state.window)  # over the displacements before this step
        c = (rho2 - rho1) * e + (1.0 - rho2)
        eg2 = c * c * grads * grads + (1.0 - c * c) * state.eg2
        updates = -lr * grads / np.sqrt(eg2 + eps)
        win = np.concatenate([state.window, np.asarray(updates, dtype=float)[None]])[-window:]
        win.flags.writeable = False
        return updates, AdaSmoothState(t=state.t + 1, window=win, e=e, c=c, eg2=eg2)

    return Optimizer(init, update)


def newton(lr: float, damping: float) -> Optimizer:
    """Saddle-free damped Newton: (|H| + λI)⁻¹g, with |H| = Q·|Λ|·Qᵀ.

    For a convex quadratic |H| = H, so this is the textbook damped step (H + λI)⁻¹g and
    lr = 1 lands (up to λ) on the minimum. On an indefinite Hessian plain Newton heads for
    the saddle point (uphill along negative curvature); flipping the negative eigenvalues
    turns those directions into descent directions (Dauphin et al. 2014). λ > 0 keeps the
    matrix invertible where an eigenvalue is (near) zero.
    """

    def init(params):
        z = _zeros(params)
        n = z.size
        return NewtonState(t=0, hessian=np.zeros((n, n)), eigvals=np.zeros(n), direction=z)

    def update(grads, state, params=None, oracle=None):
        if oracle is None:
            raise ValueError("newton needs the surface's Hessian (an oracle)")
        h = np.asarray(oracle.hessian(params), dtype=float)
        lam, q = np.linalg.eigh(h)
        direction = q @ ((q.T @ grads) / (np.abs(lam) + damping))
        return -lr * direction, NewtonState(
            t=state.t + 1, hessian=h, eigvals=lam, direction=direction
        )

    return Optimizer(init, update)


def _base_optimizer(owner: str, base) -> Optimizer:
    """Build a wrapper's base rule; noise, seed and batch belong to the outer spec."""
    stray = [k for k in ("noise", "seed", "batch") if k in base.given]
    if stray:
        raise ValueError(
            f"{owner}: set {', '.join(stray)} on {owner}(...) itself, not on its base "
            f"(the whole run shares one gradient oracle)"
        )
    return build_optimizer(base)


def _sharpness_aware_step(owner: str, inner: Optimizer, rho: float, scale, grads, base_state,
                          params, oracle):
    """One SAM/ASAM step: ascend to w + ε with ε = ρ·T²·g/‖T·g‖₂ (T = 1 for SAM; ε = 0 when
    T·g = 0), take the gradient there, and let the base rule step from w with it.

    Returns ``(updates, base_state, ε, w + ε, g_sam)``.
    """
    if oracle is None:
        raise ValueError(f"{owner} needs the surface (an oracle) to take the perturbed gradient")
    norm = float(np.linalg.norm(scale * grads))
    eps = rho * scale * scale * grads / norm if norm > 0 else np.zeros_like(grads)
    point = params + eps
    g_sam = np.asarray(oracle.grad(point), dtype=float)
    updates, base_state = inner.update(g_sam, base_state, params, oracle)
    return updates, base_state, eps, point, g_sam


def sam(base, rho: float) -> Optimizer:
    inner = _base_optimizer("sam", base)

    def init(params):
        z = _zeros(params)
        p = np.array(params, dtype=float)
        return SAMState(t=0, base_state=inner.init(params), eps=z, perturbed_point=p, g_sam=z)

    def update(grads, state, params=None, oracle=None):
        updates, base_state, eps, point, g_sam = _sharpness_aware_step(
            "sam", inner, rho, 1.0, grads, state.base_state, params, oracle)
        return updates, SAMState(
            t=state.t + 1, base_state=base_state, eps=eps, perturbed_point=point, g_sam=g_sam
        )

    return Optimizer(init, update)


def asam(base, rho: float, eta: float) -> Optimizer:
    inner = _base_optimizer("asam", base)

    def init(params):
        z = _zeros(params)
        p = np.array(params, dtype=float)
        return ASAMState(t=0, base_state=inner.init(params), eps=z, perturbed_point=p,
                         g_sam=z, scale=np.abs(p) + eta)

    def update(grads, state, params=None, oracle=None):
        scale = np.abs(params) + eta
        updates, base_state, eps, point, g_sam = _sharpness_aware_step(
            "asam", inner, rho, scale, grads, state.base_state, params, oracle)
        return updates, ASAMState(
            t=state.t + 1, base_state=base_state, eps=eps, perturbed_point=point,
            g_sam=g_sam, scale=scale,
        )

    return Optimizer(init, update)


def forward_direction(seed: int, t: int, shape: tuple[int, ...]) -> Array:
    """The random direction of step ``t``: v ~ N(0, I), a pure function of (seed, t).

    Seeding per step (not one stream per run) keeps ``update`` pure: replaying a recorded
    state reproduces the same direction, and rewinding never desynchronises a generator.
    """
    return np.random.default_rng([int(seed), int(t)]).standard_normal(shape)


def forward_gradient(lr: float, seed: int) -> Optimizer:
    def init(params):
        z = _zeros(params)
        return ForwardGradientState(t=0, v=z, d=0.0, g_est=z)

    def update(grads, state, params=None, oracle=None):
        if oracle is None:
            raise ValueError("forward_gradient needs the surface (an oracle) for its JVP")
        t = state.t + 1
        v = forward_direction(seed, t, np.shape(params))
        d = float(oracle.jvp(params, v))  # the directional derivative; ``grads`` is unused
        g_est = d * v
        return -lr * g_est, ForwardGradientState(t=t, v=v, d=d, g_est=g_est)

    return Optimizer(init, update)


# ----------------------------------------------------------------------------- catalogue specs

register(OptimizerSpec(
    name="nesterov",
    title="Nesterov momentum (torch.optim.SGD, nesterov=True)",
    family="Momentum",
    summary="momentum that looks ahead: the step uses g + μ·b instead of b",
    rule=(
        "b ← g                        (first step)\n"
        "b ← μ·b + g                  (later steps)\n"
        "w ← w − η·(g + μ·b)"
    ),
    hypers=(
        _lr(1e-3),
        Hyper("momentum", 0.9, "momentum factor μ (torch convention b = μ·b + g)",
              lo=0.0, hi=1.0, lo_open=True, hi_open=True, symbol="μ"),
        Hyper("dampening", 0.0, "dampening τ; torch's Nesterov momentum requires τ = 0",
              lo=0.0, hi=0.0, symbol="τ"),
    ),
    factory=nesterov,
    convention="torch convention: sgd(momentum=μ, nesterov=true); b = μ·b + g, "
               "w −= η·(g + μ·b).",
    playground={"lr": 0.05, "momentum": 0.9},
    torch_class="SGD",
))

register(OptimizerSpec(
    name="adagrad",
    title="Adagrad",
    family="Adaptive learning rate",
    summary="per-coordinate step shrinking with the sum of all past squared gradients",
    rule=(
        "s ← s + g²                   (s₀ = initial_accumulator_value)\n"
        "η_t ← η / (1 + (t − 1)·λ)\n"
        "w ← w − η_t·g / (√s + ε)"
    ),
    hypers=(
        _lr(1e-2),
        Hyper("lr_decay", 0.0, "learning-rate decay λ: η_t = η / (1 + (t − 1)·λ)",
              lo=0.0, hi=1e3, symbol="λ"),
        Hyper("initial_accumulator_value", 0.0, "starting value s₀ of the squared-gradient sum",
              lo=0.0, hi=1e6, symbol="s₀"),
        _eps(1e-10, positive=True),
    ),
    factory=adagrad,
    playground={"lr": 1.0},
    torch_class="Adagrad",
))

register(OptimizerSpec(
    name="adadelta",
    title="Adadelta",
    family="Adaptive learning rate",
    summary="RMSprop whose step size is the RMS of its own recent updates (units match)",
    rule=(
        "v ← ρ·v + (1 − ρ)·g²\n"
        "Δ ← √(u + ε) / √(v + ε) · g\n"
        "u ← ρ·u + (1 − ρ)·Δ²\n"
        "w ← w − η·Δ"
    ),
    hypers=(
        _lr(1.0),
        Hyper("rho", 0.9, "decay ρ of the squared-gradient and squared-update averages",
              lo=0.0, hi=1.0, symbol="ρ"),
        _eps(1e-6, "term inside both square roots; also sets the size of the first steps",
             positive=True),
    ),
    factory=adadelta,
    convention="torch's form: η multiplies Δ (the paper has no η, i.e. η = 1).",
    playground={"lr": 1.0, "eps": 0.01},
    torch_class="Adadelta",
))

register(OptimizerSpec(
    name="adamax",
    title="Adamax",
    family="Adam family",
    summary="Adam with an infinity norm: divide by a decaying maximum of |g|",
    rule=(
        "m ← β₁·m + (1 − β₁)·g\n"
        "u ← max(β₂·u, |g| + ε)\n"
        "w ← w − η/(1 − β₁ᵗ) · m / u"
    ),
    hypers=(
        _lr(2e-3),
        _beta("beta1", 0.9, "decay of the first-moment average", "β₁"),
        _beta("beta2", 0.999, "decay of the infinity norm", "β₂"),
        _eps(1e-8, "added to |g| inside the maximum (torch's placement)", positive=True),
    ),
    factory=adamax,
    playground={"lr": 0.3},
    torch_class="Adamax",
))

register(OptimizerSpec(
    name="nadam",
    title="Nadam",
    family="Adam family",
    summary="Adam with Nesterov momentum and torch's momentum-decay schedule",
    rule=(
        "μ_t ← β₁·(1 − ½·0.96^(t·ψ))\n"
        "m ← β₁·m + (1 − β₁)·g\n"
        "v ← β₂·v + (1 − β₂)·g²\n"
        "v̂ ← v / (1 − β₂ᵗ)\n"
        "w ← w − η·(1 − μ_t)/(1 − Πᵢ≤ₜ μᵢ) · g/(√v̂ + ε)\n"
        "      − η·μ_{t+1}/(1 − Πᵢ≤ₜ₊₁ μᵢ) · m/(√v̂ + ε)"
    ),
    hypers=(
        _lr(2e-3),
        _beta("beta1", 0.9, "decay of the first-moment average", "β₁"),
        _beta("beta2", 0.999, "decay of the second-moment average", "β₂"),
        _eps(1e-8),
        Hyper("momentum_decay", 4e-3, "momentum decay ψ of the μ_t schedule",
              lo=0.0, hi=10.0, symbol="ψ"),
    ),
    factory=nadam,
    convention="torch.optim.NAdam (Dozat 2016 with the μ_t schedule of Sutskever et al.).",
    playground={"lr": 0.2},
    torch_class="NAdam",
))

register(OptimizerSpec(
    name="adabelief",
    title="AdaBelief",
    family="Adam family",
    summary="Adam that divides by the spread of g around its EMA (its 'belief') instead of g²",
    rule=(
        "m ← β₁·m + (1 − β₁)·g\n"
        "s ← β₂·s + (1 − β₂)·(g − m)² + ε\n"
        "m̂ ← m / (1 − β₁ᵗ);  ŝ ← s / (1 − β₂ᵗ)\n"
        "w ← w − η·m̂ / (√ŝ + ε)"
    ),
    hypers=(
        _lr(1e-3),
        _beta("beta1", 0.9, "decay of the first-moment average", "β₁"),
        _beta("beta2", 0.999, "decay of the belief (variance) average", "β₂"),
        _eps(1e-16, "ε, added to s at every step and to √ŝ; default 1e-16 as in the authors' "
                    "adabelief-pytorch package: since ε also enters s under the square root, "
                    "√1e-16 = 1e-8 matches Adam's usual ε = 1e-8 (the paper's box writes 1e-8)",
             positive=True),
    ),
    factory=adabelief,
    convention="Paper's form (Zhuang et al. 2020), no rectification, no weight decay.",
    playground={"lr": 0.2},
))

register(OptimizerSpec(
    name="adasmooth",
    title="AdaSmooth",
    family="Adaptive learning rate",
    summary="RMSprop whose averaging window adapts to how straight the recent path was",
    rule=(
        "e ← |Σ Δx| / Σ |Δx|  per coordinate, over the last M steps (1 if nothing moved)\n"
        "c ← (ρ₂ − ρ₁)·e + (1 − ρ₂)\n"
        "E[g²] ← c²·g² + (1 − c²)·E[g²]\n"
        "Δx ← −η·g / √(E[g²] + ε);  w ← w + Δx"
    ),
    hypers=(
        _lr(1e-3),
        Hyper("rho1", 0.5, "fast decay ρ₁ (used when the path is straight, e = 1)",
              lo=0.0, hi=1.0, hi_open=True, symbol="ρ₁"),
        Hyper("rho2", 0.99, "slow decay ρ₂ (used when the path zig-zags, e = 0)",
              lo=0.0, hi=1.0, hi_open=True, symbol="ρ₂"),
        _eps(1e-6, positive=True),
        Hyper("window", 10, "number M of recent steps the effective ratio looks at",
              kind="int", lo=1, hi=1000, symbol="M"),
    ),
    factory=adasmooth,
    convention="Jun Lu 2022; an unmoved coordinate (0/0, e.g. the first step) counts as e = 1.",
    playground={"lr": 0.1},
))

register(OptimizerSpec(
    name="newton",
    title="Damped Newton (saddle-free)",
    family="Second order",
    summary="step by the inverse curvature: one step to the minimum of a quadratic",
    rule=(
        "H = Q·Λ·Qᵀ                   (Hessian at w)\n"
        "d ← Q·(|Λ| + λI)⁻¹·Qᵀ·g       (= (H + λI)⁻¹·g when H is positive definite)\n"
        "w ← w − η·d"
    ),
    hypers=(
        _lr(1.0),
        Hyper("damping", 1e-3, "damping λ added to the absolute eigenvalues; keeps the step "
              "finite where the curvature is (near) zero", lo=0.0, lo_open=True, hi=1e6,
              symbol="λ"),
    ),
    factory=newton,
    convention=(
        "Saddle-free: negative eigenvalues of H are replaced by their absolute values, so an "
        "indefinite Hessian still gives a descent direction instead of jumping to the saddle."
    ),
    playground={"lr": 0.2},
    needs=("hessian",),
))

_BASE_HELP = "the optimizer that takes the step with the perturbed gradient, e.g. gd(lr=0.1)"

register(OptimizerSpec(
    name="sam",
    title="SAM (sharpness-aware minimization)",
    family="Sharpness-aware",
    summary="take the gradient at the worst nearby point (radius ρ), step from the original",
    rule=(
        "ε ← ρ·g / ‖g‖₂                (ε = 0 if g = 0)\n"
        "g_sam ← ∇f(w + ε)\n"
        "w ← base step with g_sam"
    ),
    hypers=(
        Hyper("base", None, _BASE_HELP, kind="spec"),
        Hyper("rho", 0.05, "radius ρ of the neighbourhood", lo=0.0, hi=100.0, symbol="ρ"),
    ),
    factory=sam,
    convention="Foret et al. 2020; both gradients of a step see the same mini-batch.",
    playground={"base": "gd(lr=0.3)", "rho": 0.1},
    needs=("grad",),
))

register(OptimizerSpec(
    name="asam",
    title="ASAM (adaptive SAM)",
    family="Sharpness-aware",
    summary="SAM with a neighbourhood stretched by |w|, so it is scale-invariant",
    rule=(
        "T ← |w| + η_a                 (per coordinate)\n"
        "ε ← ρ·T²·g / ‖T·g‖₂           (ε = 0 if T·g = 0)\n"
        "g_sam ← ∇f(w + ε)\n"
        "w ← base step with g_sam"
    ),
    hypers=(
        Hyper("base", None, _BASE_HELP, kind="spec"),
        Hyper("rho", 0.5, "radius ρ of the scaled neighbourhood", lo=0.0, hi=100.0, symbol="ρ"),
        Hyper("eta", 0.01, "offset η_a in T = |w| + η_a (keeps a zero weight perturbable)",
              lo=0.0, hi=100.0, symbol="η_a"),
    ),
    factory=asam,
    convention="Kwon et al. 2021, element-wise T (their 'adaptive' option).",
    playground={"base": "gd(lr=0.3)", "rho": 0.1, "eta": 0.01},
    needs=("grad",),
))

register(OptimizerSpec(
    name="forward_gradient",
    title="Forward gradient",
    family="Gradient estimates",
    summary="descend along a random direction scaled by the directional derivative (no backprop)",
    rule=(
        "v ~ N(0, I)                   (seeded per step)\n"
        "d ← ∇f·v                      (one forward-mode JVP)\n"
        "g̃ ← d·v                       (unbiased: E[g̃] = ∇f)\n"
        "w ← w − η·g̃"
    ),
    hypers=(
        _lr(1e-3),
        Hyper("seed", 0, "seed of the random directions (and of gradient noise)",
              kind="int", lo=0, hi=2**32 - 1),
    ),
    factory=forward_gradient,
    convention="Baydin et al. 2022: one JVP per step; the gradient itself is never used.",
    playground={"lr": 0.1},
    needs=("jvp",),
))

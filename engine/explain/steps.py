"""Step-by-step explanations of recorded optimizer steps, for the inspector and derivations.

The course exercise asks students to write out each algorithm for two iterations by hand.
:func:`explain_step` does it for any recorded step of any registered optimizer: every line of
the update is built once as a small expression tree whose leaves carry the *recorded* numbers
(the point before the step, the gradient fed to it, the states before and after). The same
tree renders the rule in symbols (Unicode and LaTeX), the rule with this step's numbers
substituted, and evaluates itself, so a test can recompute every line from its substituted
numbers and compare with what the trajectory recorded. Nothing is recomputed for display:
each line's result is the recorded value (the state after the step, the new point w_k).

Vectors are 2-vectors, written like the course writes them: (−4.6, 1.2) in text, column
vectors in LaTeX (narrow enough for a printed page). Numbers are shown by :func:`fmt` with
up to 8 significant digits; the full-precision values stay in the dataclasses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from engine import schedules
from engine.explain.context import Line, StepContext, Value
from engine.explain.format import (
    MINUS,
    _freeze,
    _sub,
    fmt,
    fmt_value,
    tex_num,
    tex_symbol,
    tex_value,
)
from engine.explain.tree import Call, Const, Sym
from engine.optimizers import REGISTRY
from engine.spec import RunSpec
from engine.surfaces import Surface, get_surface
from engine.trajectory import Trajectory


@dataclass(frozen=True)
class Quantity:
    """A named value: a hyperparameter, or a state variable at one step."""

    name: str  # the field or hyperparameter name, e.g. "m_hat", "beta1", "base.m"
    symbol: str  # Unicode, e.g. "m̂"
    latex: str  # e.g. r"\hat{m}"
    value: Value

    @property
    def text(self) -> str:
        return fmt_value(self.value, minus=MINUS)


@dataclass(frozen=True)
class StateVar:
    """One state variable before and after a step."""

    name: str
    symbol: str
    latex: str
    before: Value
    after: Value



@dataclass(frozen=True)
class StateExplanation:
    """The situation at step k (k = 0: the start): w_k, f(w_k), ∇f(w_k) and the state."""

    k: int
    spec: str
    optimizer: str
    title: str
    point: Value
    loss: float
    gradient: Value  # the true gradient ∇f(w_k)
    state: tuple[Quantity, ...]
    hypers: tuple[Quantity, ...]
    stochastic: bool
    notes: tuple[str, ...] = ()

    def to_text(self) -> str:
        lines = [
            f"{self.spec} — step {self.k}",
            f"w{_sub(self.k)} = {fmt_value(self.point, minus=MINUS)}",
            f"f(w{_sub(self.k)}) = {fmt(self.loss, minus=MINUS)}",
            f"∇f(w{_sub(self.k)}) = {fmt_value(self.gradient, minus=MINUS)}",
        ]
        lines += [f"{q.symbol} = {q.text}    ({q.name})" for q in self.state]
        lines += [f"{q.symbol or q.name} = {q.text}    ({q.name})" for q in self.hypers]
        lines += list(self.notes)
        return "\n".join(lines)


@dataclass(frozen=True)
class StepExplanation:
    """Step k ≥ 1 written out: from w_{k−1} with the gradient used to the new point w_k."""

    k: int
    spec: str
    optimizer: str
    title: str
    rule: str  # the registry's rule text (all branches)
    point_before: Value  # w_{k−1}
    loss_before: float  # f(w_{k−1})
    gradient: Value  # the gradient fed to step k (used_grads[k]; noisy if the run is)
    true_gradient: Value  # ∇f(w_{k−1}) without noise or mini-batching
    stochastic: bool
    hypers: tuple[Quantity, ...]
    states: tuple[StateVar, ...]
    lines: tuple[Line, ...]
    point_after: Value  # w_k
    loss_after: float  # f(w_k)
    update: Value  # w_k − w_{k−1}
    notes: tuple[str, ...] = ()

    def to_text(self) -> str:
        """A plain-text rendering, e.g. for a copy button."""
        out = [
            f"{self.spec} — step {self.k}",
            f"w{_sub(self.k - 1)} = {fmt_value(self.point_before, minus=MINUS)}, "
            f"f(w{_sub(self.k - 1)}) = {fmt(self.loss_before, minus=MINUS)}",
        ]
        out += [f"{q.symbol or q.name} = {q.text}    ({q.name})" for q in self.hypers]
        out += [line.text for line in self.lines]
        out.append(
            f"f(w{_sub(self.k)}) = {fmt(self.loss_after, minus=MINUS)}"
        )
        out += list(self.notes)
        return "\n".join(out)


# ============================================================================ state symbols



# ============================================================================ state symbols


class _Explainers(Mapping):
    """Optimizer name → its explainer, read live from each spec in the registry."""

    def __getitem__(self, name: str) -> Callable[[StepContext], None]:
        explainer = REGISTRY[name].explainer
        if explainer is None:
            raise KeyError(name)
        return explainer

    def __iter__(self) -> Iterator[str]:
        return (name for name, spec in REGISTRY.items() if spec.explainer is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


EXPLAINERS: Mapping[str, Callable[[StepContext], None]] = _Explainers()


def _state_symbol(run: RunSpec, name: str) -> tuple[str, str]:
    """(Unicode, LaTeX) of a flattened state field: ``m``, or ``base.m`` in a wrapper."""
    spec = run.spec
    while "." in name:
        head, name = name.split(".", 1)
        run = run.resolved()[head]
        spec = run.spec
    return spec.symbol(name)


def _flatten_state(state: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(name, value) pairs of a NamedTuple state; a nested state (SAM's base) as base.x."""
    out: list[tuple[str, Any]] = []
    if state is None or not hasattr(state, "_fields"):
        return out
    for name in state._fields:
        value = getattr(state, name)
        if hasattr(value, "_fields"):
            out += _flatten_state(value, f"{prefix}{'base' if name == 'base_state' else name}.")
        else:
            out.append((prefix + name, value))
    return out




def _surface_for(traj: Trajectory, surface: Surface | None) -> Surface | None:
    if surface is not None:
        return surface
    try:
        return get_surface(traj.surface)
    except ValueError:
        return None


def _is_stochastic(run: RunSpec) -> bool:
    """Noisy, mini-batched or estimated gradients: exactly when there is a note to say so."""
    return bool(_stochastic_notes(run))


def _stochastic_notes(run: RunSpec) -> list[str]:
    values = run.resolved()
    notes = []
    if values.get("noise", 0):
        notes.append(
            f"The gradient is stochastic: Gaussian noise of σ = {fmt(values['noise'])} "
            f"(seed {values.get('seed', 0)}) is added to every gradient."
        )
    if values.get("batch", 0):
        notes.append(
            f"The gradient is stochastic: each step uses a mini-batch of {values['batch']} "
            f"sample(s), drawn with seed {values.get('seed', 0)}."
        )
    if run.spec.estimates_gradient:
        notes.append(run.spec.estimates_gradient)
    return notes


SHARED_SCHEDULE_NAMES = frozenset(("schedule",) + schedules.ALL_PARAMS + schedules.CLIP_PARAMS)


def _hyper_quantities(run: RunSpec, prefix: str = "") -> list[Quantity]:
    out: list[Quantity] = []
    values = run.resolved()
    for hyper in run.spec.all_hypers:
        value = values[hyper.name]
        if hyper.kind == "spec":
            out.append(Quantity(prefix + hyper.name, "", "", str(value)))
            out += _hyper_quantities(value, prefix + hyper.name + ".")
            continue
        if hyper.name in ("noise", "seed", "batch") and prefix:
            continue
        if hyper.name in ("seed", "batch", "noise") and not value and not (
            hyper.name == "seed" and hyper in run.spec.hypers  # the rule's own seed
        ):
            continue  # unused shared options stay out of the way
        if hyper.name in SHARED_SCHEDULE_NAMES and not schedules.in_use(hyper.name, values):
            continue  # schedule and clipping options show only when they are in use
        symbol = hyper.symbol
        out.append(Quantity(prefix + hyper.name, symbol, tex_symbol(symbol), _freeze(value)))
    return out


def _check_k(traj: Trajectory, k: int, lo: int) -> int:
    k = int(k)
    if not lo <= k <= traj.steps:
        raise IndexError(f"step {k} is outside the recorded steps {lo}…{traj.steps}")
    return k


def explain_state(traj: Trajectory, k: int = 0) -> StateExplanation:
    """The point w_k, f(w_k), ∇f(w_k) and the optimizer state after k steps (k = 0: start)."""
    k = _check_k(traj, k, 0)
    state = [
        Quantity(name, *_state_symbol(traj.spec, name), _freeze(value))
        for name, value in _flatten_state(traj.states[k])
    ]
    return StateExplanation(
        k=k,
        spec=str(traj.spec),
        optimizer=traj.spec.name,
        title=traj.spec.spec.title,
        point=_freeze(traj.points[k]),
        loss=float(traj.losses[k]),
        gradient=_freeze(traj.grads[k]),
        state=tuple(state),
        hypers=tuple(_hyper_quantities(traj.spec)),
        stochastic=_is_stochastic(traj.spec),
        notes=tuple(_stochastic_notes(traj.spec)),
    )


def explain_step(traj: Trajectory, k: int, surface: Surface | None = None) -> StepExplanation:
    """Step k ≥ 1 of ``traj`` written out line by line, ending in the new point w_k.

    ``surface`` is the surface the run was made on; by default it is looked up by name
    (a surface that cannot be found only means evaluations such as ∇f(w) are shown with
    their recorded values instead of being recomputable).
    """
    k = _check_k(traj, k, 1)
    surf = _surface_for(traj, surface)
    w = Sym("w", "w", "w", _freeze(traj.points[k - 1]), when=-1)
    lines: list[Line] = []
    notes = _stochastic_notes(traj.spec)
    ctx = StepContext(
        k=k, run=traj.spec, before=traj.states[k - 1], after=traj.states[k], w=w,
        w_next=traj.points[k], g=w, surface=surf, traj=traj, lines=lines, notes=notes,
    )
    if not traj.spec.spec.estimates_gradient:
        ctx.g = _gradient_and_clipping(ctx, traj, k)
    _schedule_lines(ctx, traj, k)
    ctx.explain_rule()

    before = dict(_flatten_state(traj.states[k - 1]))
    states = [
        StateVar(name, *_state_symbol(traj.spec, name), _freeze(before.get(name)), _freeze(value))
        for name, value in _flatten_state(traj.states[k])
    ]
    return StepExplanation(
        k=k,
        spec=str(traj.spec),
        optimizer=traj.spec.name,
        title=traj.spec.spec.title,
        rule=traj.spec.spec.rule,
        point_before=_freeze(traj.points[k - 1]),
        loss_before=float(traj.losses[k - 1]),
        gradient=_freeze(traj.used_grads[k]),
        true_gradient=_freeze(traj.grads[k - 1]),
        stochastic=_is_stochastic(traj.spec),
        hypers=tuple(_hyper_quantities(traj.spec)),
        states=tuple(states),
        lines=tuple(lines),
        point_after=_freeze(traj.points[k]),
        loss_after=float(traj.losses[k]),
        update=_freeze(traj.updates[k]),
        notes=tuple(notes),
    )


def _gradient_and_clipping(ctx: StepContext, traj: Trajectory, k: int):
    """g_k = ∇f(w_{k−1}) and, with clip_norm/clip_value, the clipped gradient ĝ_k."""
    values = traj.spec.resolved()
    norm, value = values.get("clip_norm", 0.0), values.get("clip_value", 0.0)
    used = traj.used_grads[k]
    if not (norm or value):
        return ctx.gradient_line(used)
    exact = not values.get("noise") and not values.get("batch")
    raw = traj.grads[k - 1] if exact else used
    g = ctx.gradient_line(raw)
    parts = []
    if value:
        parts.append(f"clip_grad_value_: every component into [−{value:g}, {value:g}]")
    if norm:
        parts.append(f"clip_grad_norm_: g·min(1, {norm:g}/(‖g‖ + 1e-6))")
    fired = bool(traj.clipped[k]) if k < len(traj.clipped) else False
    note = "; then ".join(parts) + ("" if fired else " — not clipped this step")
    target = Sym("g_clip", "ĝ", r"\hat g", _freeze(used), when=0)
    call = Call("clip", r"\operatorname{clip}", g, _freeze(used),
                (lambda x: schedules.clip(x, norm, value)[0]) if exact else None)
    return ctx.emit(target, call, note=note, exact=exact)


def _schedule_lines(ctx: StepContext, traj: Trajectory, k: int) -> None:
    """η_k of a scheduled run (and OneCycleLR's momentum), set before the rule reads it."""
    values = traj.spec.resolved()
    kind = values.get("schedule", "none")
    if kind == "none":
        return
    own = {h.name for h in traj.spec.spec.hypers}
    steps = traj.requested_steps
    overrides = schedules.overrides_at(values, own, k - 1, steps)
    ctx.overrides = overrides
    cls = schedules.TORCH_CLASSES[kind]
    epoch = Const(float(k - 1), str(k - 1), str(k - 1))
    if "lr" in overrides:
        target = Sym("lr", "η", r"\eta", overrides["lr"], when=0)
        ctx.emit(target, Call(kind, rf"\mathrm{{{kind}}}", epoch, overrides["lr"],
                              lambda e: schedules.lr_at(values, values["lr"], int(e), steps)),
                 note=f"{cls} after {k - 1} scheduler step(s): the learning rate of step {k}")
    for name in ("momentum", "beta1"):
        if name in overrides:
            symbol = traj.spec.spec.hyper(name).symbol or name
            target = Sym(name, symbol, tex_symbol(symbol), overrides[name], when=0)
            ctx.emit(target, Call("cycle", r"\mathrm{cycle}", epoch, overrides[name],
                                  lambda e: schedules.momentum_at(values, int(e), steps)),
                     note="OneCycleLR cycles the momentum opposite to η")


def explain_steps(
    traj: Trajectory, iterations: int, surface: Surface | None = None
) -> list[StepExplanation]:
    """Steps 1 … min(iterations, recorded steps)."""
    return [explain_step(traj, k, surface) for k in range(1, min(iterations, traj.steps) + 1)]


__all__ = [
    "EXPLAINERS",
    "Line",
    "Quantity",
    "StateExplanation",
    "StateVar",
    "StepExplanation",
    "explain_state",
    "explain_step",
    "explain_steps",
    "fmt",
    "fmt_value",
    "tex_num",
    "tex_symbol",
    "tex_value",
]

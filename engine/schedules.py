"""Learning-rate schedules, warm-up and gradient clipping, with torch's semantics.

These are shared options of every optimizer (like ``noise``/``seed``/``batch``). The names
and the arithmetic are torch's, so a setting carries over to ``torch.optim.lr_scheduler``:

=============  =======================================  ======================================
schedule       torch class                              parameters
=============  =======================================  ======================================
none           —                                        —
step           StepLR                                   step_size, gamma
exponential    ExponentialLR                            gamma
cosine         CosineAnnealingLR                        T_max, eta_min
warmup         LinearLR                                 start_factor, end_factor, total_iters
onecycle       OneCycleLR                               max_lr, total_steps, pct_start,
                                                        anneal_strategy, div_factor,
                                                        final_div_factor, three_phase,
                                                        cycle_momentum, base_momentum,
                                                        max_momentum
=============  =======================================  ======================================

The scheduler steps once after every optimizer step, so optimizer step k (k = 1, 2, …) runs
with the rate the scheduler holds after k − 1 of its steps: :func:`lr_at` with
``epoch = k − 1``. Closed forms are used; they equal torch's recursive updates up to rounding.

OneCycleLR replaces the optimizer's own ``lr`` by its cycle (``max_lr/div_factor`` up to
``max_lr`` and down to ``max_lr/(div_factor·final_div_factor)``), and with
``cycle_momentum`` (torch's default) it also cycles the momentum between ``max_momentum``
and ``base_momentum`` in the opposite direction: our rules with a ``momentum``
hyperparameter (sgd, nesterov) get it there, those with ``beta1`` (the Adam family) get it
as β₁, exactly as torch does with ``momentum`` or ``betas[0]``. Rules with neither keep
their own arithmetic (torch would refuse such an optimizer with cycle_momentum on, and our
``gd`` stays plain gradient descent rather than turning into momentum SGD as torch's SGD
would). After ``total_steps`` optimizer steps torch refuses to go on; here the cycle's
last rate max_lr/(div_factor·final_div_factor) is held.

Clipping follows ``torch.nn.utils``: ``clip_value`` clamps every gradient component to
[−v, v] (clip_grad_value_); ``clip_norm`` rescales the gradient by
min(1, max_norm/(‖g‖₂ + 1e-6)) (clip_grad_norm_). Both act on the gradient handed to the
update rule, value first when both are set.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

SCHEDULES = ("none", "step", "exponential", "cosine", "warmup", "onecycle")
ANNEAL_STRATEGIES = ("cos", "linear")
CLIP_NORM_EPS = 1e-6  # torch's clip_grad_norm_ adds this to the norm

# The options of each schedule (shared hyperparameters named as in torch).
SCHEDULE_PARAMS: dict[str, tuple[str, ...]] = {
    "none": (),
    "step": ("step_size", "gamma"),
    "exponential": ("gamma",),
    "cosine": ("T_max", "eta_min"),
    "warmup": ("start_factor", "end_factor", "total_iters"),
    "onecycle": ("max_lr", "total_steps", "pct_start", "anneal_strategy", "div_factor",
                 "final_div_factor", "three_phase", "cycle_momentum", "base_momentum",
                 "max_momentum"),
}
TORCH_CLASSES = {"step": "StepLR", "exponential": "ExponentialLR",
                 "cosine": "CosineAnnealingLR", "warmup": "LinearLR", "onecycle": "OneCycleLR"}
# Parameters torch requires (no default there): a schedule refuses to run without them.
REQUIRED = {"step": ("step_size",), "exponential": ("gamma",), "onecycle": ()}
ALL_PARAMS = tuple(dict.fromkeys(p for ps in SCHEDULE_PARAMS.values() for p in ps))
CLIP_PARAMS = ("clip_norm", "clip_value")


def is_active(values: dict[str, Any]) -> bool:
    """Whether the resolved values ask for a schedule or clipping at all."""
    return (values.get("schedule", "none") != "none" or bool(values.get("clip_norm"))
            or bool(values.get("clip_value")))


def check(values: dict[str, Any], given: dict[str, Any], own: set[str], steps_hint: str = "",
          ) -> None:
    """ValueError for options that do not fit together (e.g. gamma on schedule=cosine)."""
    kind = values.get("schedule", "none")
    if kind not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {kind!r}")
    mine = set(SCHEDULE_PARAMS[kind])
    stray = [p for p in ALL_PARAMS if p in given and p not in mine and p not in own]
    if stray:
        uses = "no parameters" if not mine else ", ".join(SCHEDULE_PARAMS[kind])
        raise ValueError(
            f"{', '.join(stray)} {'does' if len(stray) == 1 else 'do'} not apply to "
            f"schedule={kind} (it takes {uses})")
    for p in REQUIRED.get(kind, ()):
        if p not in given:
            raise ValueError(
                f"schedule={kind} needs {p} (torch's {TORCH_CLASSES[kind]} has no default "
                f"for it), e.g. {p}={'0.99' if p == 'gamma' else '50'}")
    if kind == "onecycle" and values.get("anneal_strategy") not in ANNEAL_STRATEGIES:
        raise ValueError("anneal_strategy must be cos or linear")
    if kind == "onecycle" and values["base_momentum"] > values["max_momentum"]:
        raise ValueError("base_momentum must not exceed max_momentum")


def _anneal(strategy: str, start: float, end: float, pct: float) -> float:
    if strategy == "cos":
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
    return (end - start) * pct + start


def _onecycle(values: dict[str, Any], base_lr: float, epoch: int, total: int,
              ) -> tuple[float, float]:
    """OneCycleLR's (lr, momentum) after ``epoch`` scheduler steps (torch's get_lr)."""
    max_lr = values["max_lr"] or base_lr
    initial = max_lr / values["div_factor"]
    min_lr = initial / values["final_div_factor"]
    pct = values["pct_start"]
    hi_m, lo_m = values["max_momentum"], values["base_momentum"]
    if values["three_phase"]:
        phases = [(float(pct * total) - 1, initial, max_lr, hi_m, lo_m),
                  (float(2 * pct * total) - 2, max_lr, initial, lo_m, hi_m),
                  (total - 1, initial, min_lr, hi_m, hi_m)]
    else:
        phases = [(float(pct * total) - 1, initial, max_lr, hi_m, lo_m),
                  (total - 1, max_lr, min_lr, lo_m, hi_m)]
    step = min(epoch, total - 1)  # torch raises past the cycle; we hold its last rate
    start = 0.0
    strategy = values["anneal_strategy"]
    for i, (end, lr0, lr1, m0, m1) in enumerate(phases):
        if step <= end or i == len(phases) - 1:
            frac = (step - start) / (end - start)
            return _anneal(strategy, lr0, lr1, frac), _anneal(strategy, m0, m1, frac)
        start = end
    raise AssertionError("unreachable")


def lr_at(values: dict[str, Any], base_lr: float, epoch: int, run_steps: int = 0) -> float:
    """The learning rate after ``epoch`` scheduler steps (used by optimizer step epoch + 1).

    ``values`` are the run's resolved options; ``T_max = 0`` / ``total_steps = 0`` mean the
    run's length ``run_steps`` (torch needs them given; here the length of the run is the
    natural default).
    """
    kind = values.get("schedule", "none")
    e = int(epoch)
    if kind == "none":
        return base_lr
    if kind == "step":
        return base_lr * values["gamma"] ** (e // values["step_size"])
    if kind == "exponential":
        return base_lr * values["gamma"] ** e
    if kind == "cosine":
        t_max = values["T_max"] or max(run_steps, 1)
        eta_min = values["eta_min"]
        return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * e / t_max)) / 2
    if kind == "warmup":
        n = values["total_iters"]
        start, end = values["start_factor"], values["end_factor"]
        frac = min(n, e) / n if n else 1.0
        return base_lr * (start + (end - start) * frac)
    if kind == "onecycle":
        total = values["total_steps"] or max(run_steps, 1)
        return _onecycle(values, base_lr, e, total)[0]
    raise ValueError(f"unknown schedule {kind!r}")


def momentum_at(values: dict[str, Any], epoch: int, run_steps: int = 0) -> float | None:
    """OneCycleLR's cycled momentum after ``epoch`` steps, or None when nothing is cycled."""
    if values.get("schedule") != "onecycle" or not values.get("cycle_momentum"):
        return None
    total = values["total_steps"] or max(run_steps, 1)
    return _onecycle(values, 1.0, int(epoch), total)[1]


def overrides_at(values: dict[str, Any], own: set[str], epoch: int, run_steps: int = 0,
                 ) -> dict[str, float]:
    """The hyperparameters a schedule sets for optimizer step ``epoch + 1``: ``lr`` (when
    the rule has one) and the cycled ``momentum`` or ``beta1``."""
    out: dict[str, float] = {}
    if values.get("schedule", "none") == "none":
        return out
    if "lr" in own:
        out["lr"] = lr_at(values, values["lr"], epoch, run_steps)
    m = momentum_at(values, epoch, run_steps)
    if m is not None:
        if "momentum" in own:
            out["momentum"] = m
        elif "beta1" in own:
            out["beta1"] = m
    return out


def clip(grads: np.ndarray, clip_norm: float = 0.0, clip_value: float = 0.0,
         ) -> tuple[np.ndarray, bool]:
    """The gradient after clip_grad_value_ then clip_grad_norm_ (0 = off), and whether
    clipping changed it; a batch of runs (shape (N, 2)) is clipped run by run."""
    g = np.asarray(grads, dtype=float)
    fired = np.zeros(g.shape[:-1], dtype=bool)  # one flag per run (a 0-d array for one run)
    if clip_value:
        clipped = np.clip(g, -clip_value, clip_value)
        fired |= np.any(clipped != g, axis=-1)
        g = clipped
    if clip_norm:
        norm = np.sqrt(np.sum(g * g, axis=-1, keepdims=True))
        coef = clip_norm / (norm + CLIP_NORM_EPS)
        fired |= coef[..., 0] < 1.0
        g = np.where(coef < 1.0, g * coef, g)
    return g, (bool(fired) if fired.ndim == 0 else fired)


def relevant(name: str, values: dict[str, Any]) -> bool:
    """Whether the shared option ``name`` matters for a run with these values: ``schedule``
    and the clip options always (they switch things on), a schedule's own parameters only
    under that schedule. Forms and explanations leave the rest out."""
    if name in ALL_PARAMS:
        return name in SCHEDULE_PARAMS[values.get("schedule", "none")]
    return True


def in_use(name: str, values: dict[str, Any]) -> bool:
    """Whether an explanation should list the shared option ``name``: the schedule and its
    own parameters when a schedule is on, a clip option when it is set."""
    if name == "schedule":
        return values.get("schedule", "none") != "none"
    if name in CLIP_PARAMS:
        return bool(values.get(name))
    return relevant(name, values) and values.get("schedule", "none") != "none"


def torch_kwargs(values: dict[str, Any], run_steps: int, has_momentum: bool = True,
                 ) -> dict[str, Any]:
    """The keyword arguments of torch's scheduler class for these values (T_max = 0 and
    total_steps = 0 become ``run_steps``, max_lr = 0 the run's lr; cycle_momentum is
    dropped for an optimizer without momentum or betas, which torch would refuse)."""
    kind = values.get("schedule", "none")
    out = {p: values[p] for p in SCHEDULE_PARAMS[kind]}
    if kind == "cosine":
        out["T_max"] = out["T_max"] or max(int(run_steps), 1)
    if kind == "onecycle":
        out["total_steps"] = out["total_steps"] or max(int(run_steps), 1)
        out["max_lr"] = out["max_lr"] or values.get("lr", 0.0)
        out["pct_start"] = float(out["pct_start"])
        if not has_momentum:
            out["cycle_momentum"] = False
    return out

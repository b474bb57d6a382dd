"""The run configuration: plain, immutable dataclasses, no Qt.

Panel widgets produce a :class:`RunConfig`; the controller hands it to the worker; the
settings store it as JSON. Keeping it a frozen value means every consumer sees a consistent
snapshot and "did anything change?" is a plain ``==``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from engine import SURFACES, RunSpec, Surface, parse_spec
from engine.lesson import CUSTOM, DATA_SURFACE, DEFAULT_DATA, DEFAULT_VIEW
from engine.presets import COURSE, Preset
from engine.trajectory import MAX_RUNS

# Distinct colours that read well on a dark viridis background and on the dark loss plot.
PATH_COLORS = (
    "#ff5c5c",  # coral red
    "#ffa630",  # orange
    "#4dd2ff",  # sky blue
    "#ff7ce0",  # pink
    "#a6e22e",  # lime
    "#f5f5f5",  # white
    "#b39dff",  # lavender
    "#ffd92f",  # yellow
)

MAX_GUI_STEPS = 10_000  # a full re-run of a few runs stays within seconds on a slow machine

# CUSTOM (engine.lesson) is RunConfig.surface of a surface typed by the user
# (RunConfig.expression); DEFAULT_DATA is linear_regression's (samples n, noise σ, seed).
MAX_DATA_SAMPLES = 10_000  # GUI limit: the loss is closed-form, but mini-batches index arrays
MAX_EXPRESSION_LENGTH = 500  # engine.expression.MAX_LENGTH (not imported: sympy loads lazily)


@dataclass(frozen=True)
class RunEntry:
    """One optimizer run as the user configured it."""

    run_id: int
    spec: RunSpec
    color: str
    enabled: bool = True

    @property
    def label(self) -> str:
        return str(self.spec)


@dataclass(frozen=True)
class RunConfig:
    """Everything needed to recompute the picture: surface, start, steps and the runs."""

    surface: str
    start: tuple[float, float]
    steps: int
    runs: tuple[RunEntry, ...] = ()
    # The custom surface (used when surface == CUSTOM, kept otherwise so that switching back
    # to "Custom" restores what was typed) and its view box (xmin, xmax, ymin, ymax).
    expression: str = ""
    view: tuple[float, float, float, float] | None = None
    # linear_regression's synthetic data set: (samples n, noise σ, seed)
    data: tuple[int, float, int] = DEFAULT_DATA

    @property
    def surface_key(self) -> tuple:
        """Everything that defines the surface; equal keys mean the same surface object."""
        if self.surface == CUSTOM:
            return (CUSTOM, self.expression.strip(), tuple(self.view or DEFAULT_VIEW))
        if self.surface == DATA_SURFACE:
            return (DATA_SURFACE, tuple(self.data))
        return (self.surface,)

    def run(self, run_id: int) -> RunEntry | None:
        for entry in self.runs:
            if entry.run_id == run_id:
                return entry
        return None

    def with_run(self, entry: RunEntry) -> RunConfig:
        """A copy with ``entry`` replacing the run of the same id (or appended)."""
        runs = list(self.runs)
        for i, old in enumerate(runs):
            if old.run_id == entry.run_id:
                runs[i] = entry
                break
        else:
            runs.append(entry)
        return replace(self, runs=tuple(runs))

    def without_run(self, run_id: int) -> RunConfig:
        return replace(self, runs=tuple(r for r in self.runs if r.run_id != run_id))

    def next_color(self) -> str:
        used = [r.color.lower() for r in self.runs]
        for color in PATH_COLORS:
            if color not in used:
                return color
        return PATH_COLORS[len(self.runs) % len(PATH_COLORS)]

    def next_id(self) -> int:
        return max((r.run_id for r in self.runs), default=0) + 1

    # ------------------------------------------------------------------ persistence

    def to_json(self) -> str:
        return json.dumps(
            {
                "surface": self.surface,
                "start": list(self.start),
                "steps": self.steps,
                "runs": [
                    {"spec": str(r.spec), "color": r.color, "enabled": r.enabled}
                    for r in self.runs
                ],
                "expression": self.expression,
                "view": list(self.view) if self.view else None,
                "data": list(self.data),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        """Parse what :meth:`to_json` wrote; any problem raises ValueError (caller falls back)."""
        try:
            data: Any = json.loads(text)
            surface = str(data["surface"])
            x, y = (float(v) for v in data["start"])
            steps = int(data["steps"])
            runs = []
            for i, item in enumerate(data["runs"]):
                color = str(item.get("color", PATH_COLORS[i % len(PATH_COLORS)]))
                if not (color.startswith("#") and len(color) == 7):
                    raise ValueError(f"bad colour {color!r}")
                int(color[1:], 16)
                runs.append(
                    RunEntry(i + 1, parse_spec(str(item["spec"])), color,
                             bool(item.get("enabled", True)))
                )
            expression = str(data.get("expression", "") or "")
            view = data.get("view")
            view = None if view is None else tuple(float(v) for v in view)
            n, noise, seed = data.get("data", DEFAULT_DATA)
            data_set = (int(n), float(noise), int(seed))
        except (KeyError, TypeError, AttributeError, OverflowError, json.JSONDecodeError) as exc:
            raise ValueError(f"unreadable configuration: {exc}") from None
        if surface not in SURFACES and surface != CUSTOM:
            raise ValueError(f"unknown surface {surface!r}")
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError("start point must be finite")
        if not 0 <= steps <= MAX_GUI_STEPS:
            raise ValueError(f"steps out of range: {steps}")
        if len(runs) > MAX_RUNS:
            raise ValueError(f"at most {MAX_RUNS} runs, got {len(runs)}")
        if len(expression) > MAX_EXPRESSION_LENGTH:
            raise ValueError("custom expression too long")
        if view is not None:
            check_view(view)
        check_data(*data_set)
        config = cls(surface, (x, y), steps, tuple(runs), expression, view, data_set)
        if surface == CUSTOM:
            surface_for(config)  # an expression that no longer parses: fall back
        return config

    @classmethod
    def from_preset(cls, preset: Preset = COURSE) -> RunConfig:
        runs = tuple(
            RunEntry(i + 1, spec, PATH_COLORS[i % len(PATH_COLORS)])
            for i, spec in enumerate(preset.specs())
        )
        return cls(preset.surface, tuple(preset.start), preset.steps, runs)


def check_view(view) -> tuple[float, float, float, float]:
    """A valid view box (xmin, xmax, ymin, ymax), or ValueError saying what is wrong."""
    view = tuple(float(v) for v in view)
    if len(view) != 4 or not all(math.isfinite(v) and abs(v) <= 1e6 for v in view):
        raise ValueError("the view must be four finite numbers within ±1e6")
    if not (view[0] < view[1] and view[2] < view[3]):
        raise ValueError("the view's minimum must be smaller than its maximum (w1 and w2)")
    return view


def check_data(n: int, noise: float, seed: int) -> None:
    if not 2 <= int(n) <= MAX_DATA_SAMPLES:
        raise ValueError(f"the data set needs 2 to {MAX_DATA_SAMPLES} samples, got {n}")
    if not (math.isfinite(noise) and 0 <= noise <= 100):
        raise ValueError(f"the data noise must be in [0, 100], got {noise}")
    if not 0 <= int(seed) < 2**32:
        raise ValueError(f"the data seed must be in [0, 2³²), got {seed}")


@lru_cache(maxsize=8)
def custom_base(expression: str) -> Surface:
    """The custom surface for ``expression`` in the default view (sympy work, cached).

    Raises :class:`engine.expression.ExpressionError` (a ValueError with ``position``). The
    engine bounds the work (length, depth, exponent and gradient-size limits), but it can
    still take about a second, so the controller calls this from its worker thread.
    """
    from engine.expression import surface_from_expression  # sympy: only when needed

    return surface_from_expression(expression)


@lru_cache(maxsize=16)
def _surface_for_key(key: tuple) -> Surface:
    kind = key[0]
    if kind == CUSTOM:
        _, expression, view = key
        base = custom_base(expression)
        # same compiled functions, another box: no second round of sympy
        return base if tuple(base.view) == view else replace(base, view=view)
    if kind == DATA_SURFACE and tuple(key[1]) != DEFAULT_DATA:
        from engine.functions import make_linear_regression

        n, noise, seed = key[1]
        check_data(n, noise, seed)
        return make_linear_regression(int(n), float(noise), int(seed))
    return SURFACES[kind]


def surface_for(config: RunConfig) -> Surface:
    """The surface a configuration describes; the same object for the same ``surface_key``
    (so the contour plot's per-surface cache holds). ValueError if it cannot be built."""
    return _surface_for_key(config.surface_key)


def playground_spec(name: str) -> RunSpec:
    """A new run of optimizer ``name`` with the values its spec suggests for 2-D surfaces."""
    from engine.optimizers import get_optimizer_spec
    from engine.spec import canonical

    spec = get_optimizer_spec(name)
    values = dict(spec.playground)
    for key, value in values.items():
        if spec.hyper(key).kind == "spec" and isinstance(value, str):
            values[key] = parse_spec(value)  # nested base optimizer, e.g. SAM's "gd(lr=0.3)"
    try:
        return canonical(name, **values)
    except ValueError:
        # a required value without a playground suggestion: fall back to the bare name
        return parse_spec(name)


# ---------------------------------------------------------------------------- lessons


def config_from_lesson(lesson) -> RunConfig:
    """The run configuration of an :class:`engine.lesson.Lesson` (already validated); runs
    get ids 1, 2, … and the palette's colours where the lesson leaves them to the app."""
    runs = tuple(
        RunEntry(i + 1, parse_spec(run.spec), run.color or PATH_COLORS[i % len(PATH_COLORS)],
                 run.enabled)
        for i, run in enumerate(lesson.runs)
    )
    view = tuple(lesson.surface_view) if lesson.surface == CUSTOM else None
    return RunConfig(lesson.surface, tuple(lesson.start), int(lesson.steps), runs,
                     expression=lesson.expression if lesson.surface == CUSTOM else "",
                     view=view, data=tuple(lesson.data))


def lesson_fields(config: RunConfig) -> dict:
    """The fields of a lesson that a run configuration defines (see engine.lesson.Lesson)."""
    from engine.lesson import LessonRun

    custom = config.surface == CUSTOM
    return dict(
        surface=config.surface,
        expression=config.expression.strip() if custom else "",
        surface_view=tuple(config.view or DEFAULT_VIEW) if custom else None,
        data=tuple(config.data) if config.surface == DATA_SURFACE else DEFAULT_DATA,
        start=tuple(config.start), steps=int(config.steps),
        runs=tuple(LessonRun(str(r.spec), r.color.lower(), r.enabled) for r in config.runs),
    )

"""The run configuration: plain, immutable dataclasses, no Qt.

Panel widgets produce a :class:`RunConfig`; the controller hands it to the worker; the
settings store it as JSON. Keeping it a frozen value means every consumer sees a consistent
snapshot and "did anything change?" is a plain ``==``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from typing import Any

from engine import SURFACES, RunSpec, parse_spec
from engine.presets import COURSE, Preset

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
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"unreadable configuration: {exc}") from None
        if surface not in SURFACES:
            raise ValueError(f"unknown surface {surface!r}")
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError("start point must be finite")
        if not 0 <= steps <= MAX_GUI_STEPS:
            raise ValueError(f"steps out of range: {steps}")
        return cls(surface, (x, y), steps, tuple(runs))

    @classmethod
    def from_preset(cls, preset: Preset = COURSE) -> RunConfig:
        runs = tuple(
            RunEntry(i + 1, spec, PATH_COLORS[i % len(PATH_COLORS)])
            for i, spec in enumerate(preset.specs())
        )
        return cls(preset.surface, tuple(preset.start), preset.steps, runs)


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

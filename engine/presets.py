"""Named starting configurations: the course exercise and friends."""

from __future__ import annotations

from dataclasses import dataclass

from engine.spec import RunSpec, parse_spec


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    surface: str
    start: tuple[float, float]
    steps: int
    optimizers: tuple[str, ...]

    def specs(self) -> list[RunSpec]:
        return [parse_spec(s) for s in self.optimizers]


COURSE = Preset(
    name="course",
    title="Course exercise: f(w1, w2) = 0.1·w1² + 2·w2² from (−5, −2), 30 steps",
    surface="quadratic",
    start=(-5.0, -2.0),
    steps=30,
    optimizers=(
        "gd(lr=0.4)",
        "momentum(lr=0.6,beta=0.5)",
        "rmsprop(lr=0.3,alpha=0.9,eps=1e-6,eps_in_sqrt=true)",
        "adam(lr=0.2,beta1=0.9,beta2=0.999,eps=1e-6)",
    ),
)

PRESETS: dict[str, Preset] = {p.name: p for p in (COURSE,)}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None

"""Named starting configurations: the lessons shipped in ``resources/lessons/``.

A preset is data, not code: each is a lesson file (:mod:`engine.lesson`) loaded by the same
code that opens a teacher's own ``.optgui`` file. The file's stem is the preset's name
(``export --preset course``); :data:`COURSE` is the course exercise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.lesson import Lesson, builtin_lessons
from engine.spec import RunSpec, parse_spec


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    surface: str
    start: tuple[float, float]
    steps: int
    optimizers: tuple[str, ...]
    lesson: Lesson | None = field(default=None, compare=False, repr=False)

    def specs(self) -> list[RunSpec]:
        return [parse_spec(s) for s in self.optimizers]

    @classmethod
    def from_lesson(cls, name: str, lesson: Lesson) -> Preset:
        return cls(name, lesson.title, lesson.surface, tuple(lesson.start), lesson.steps,
                   lesson.specs, lesson)


PRESETS: dict[str, Preset] = {
    name: Preset.from_lesson(name, lesson) for name, lesson in builtin_lessons().items()
}
COURSE = PRESETS["course"]


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None

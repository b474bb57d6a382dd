"""The window's demonstration presets (Run menu), beyond the course exercise.

Presets are data: each is a lesson file in ``resources/lessons/`` (see engine/presets.py),
loaded by the same code as a lesson the user opens, so loading one is one undoable step.
The numbers are explained in each lesson's notes and checked by tests/test_gui_catalogue.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.lesson import Lesson
from engine.presets import PRESETS
from optgui.playground.config import RunConfig, config_from_lesson


@dataclass(frozen=True)
class WindowPreset:
    key: str
    title: str
    tip: str
    config: RunConfig
    select: int  # index of the run to select (the overlays follow it)
    overlays: tuple[str, ...]  # overlay kinds switched on when the preset loads
    log_loss: bool = True  # False where f goes negative (a log axis would hide it)
    lesson: Lesson | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_lesson(cls, key: str, lesson: Lesson) -> WindowPreset:
        tip = lesson.notes.split("\n\n", 1)[0].strip() or lesson.title
        return cls(key, lesson.title, tip, config_from_lesson(lesson),
                   lesson.selected or 0, lesson.overlays, lesson.log_scale, lesson)


GD_SGD_MINIBATCH = WindowPreset.from_lesson("gd_sgd_minibatch", PRESETS["gd_sgd_minibatch"].lesson)
SAM_VS_GD = WindowPreset.from_lesson("sam_vs_gd", PRESETS["sam_vs_gd"].lesson)

SECOND_ORDER_RACE = WindowPreset.from_lesson("second_order_race",
                                             PRESETS["second_order_race"].lesson)

WINDOW_PRESETS = (GD_SGD_MINIBATCH, SAM_VS_GD, SECOND_ORDER_RACE)

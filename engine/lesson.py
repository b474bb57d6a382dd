"""Lesson files (``.optgui``): a whole setup as a JSON document a teacher can hand out.

A lesson holds the surface (a built-in name with its options, or a custom expression and
its box), the start, the number of steps, the optimizers (spec strings, colours, enabled),
what is selected and shown (current step, view box, overlays, log scale, speed), the lab's
settings, a title, Markdown notes, and the panels to hide for a focused lesson. No Qt::

    >>> lesson = parse_lesson('{"schema_version": 1, "surface": {"name": "quadratic"}, '
    ...                       '"start": [-5, -2], "steps": 30, '
    ...                       '"optimizers": [{"spec": "gd(lr=0.4)"}]}')
    >>> lesson.runs[0].spec, lesson.start
    ('gd(lr=0.4)', (-5.0, -2.0))

:func:`parse_lesson` checks EVERYTHING (types, ranges, optimizer specs, the expression,
the lab's settings) before it returns, so a caller applies a lesson only once it is known
to be good: a broken, truncated, hand-edited or newer file raises :class:`LessonError`
with a one-line message and nothing has changed. Files written by an older version are
brought up to date by :data:`MIGRATIONS` first (one function per version step).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.export import atomic_write
from engine.trajectory import MAX_RUNS, check_load

SCHEMA_VERSION = 1
SUFFIX = ".optgui"
LESSONS_DIR = Path(__file__).resolve().parent.parent / "resources" / "lessons"

CUSTOM = "custom"
DATA_SURFACE = "linear_regression"
DEFAULT_DATA = (64, 0.5, 0)  # linear_regression's (samples, noise σ, seed)
DEFAULT_VIEW = (-5.0, 5.0, -5.0, 5.0)  # a custom surface's box unless the lesson says
# the window's step overlays (optgui.playground.overlays)
OVERLAYS = ("gradient", "update", "velocity", "sam", "linesearch", "trust_region", "curvature")
PANELS = ("setup", "inspector", "view3d", "loss", "transport", "toolbar", "lab")
MAX_FILE_BYTES = 2_000_000
MAX_NOTES = 200_000
MAX_TITLE = 300
MAX_EXPRESSION = 500
LAB_KEYS = ("optimizers", "lr", "epochs", "batch_size", "layers", "width", "activation",
            "seed", "train_limit")
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


class LessonError(ValueError):
    """A lesson that cannot be used; the message says what and where, on one line."""


@dataclass(frozen=True)
class LessonRun:
    """One optimizer of a lesson: its spec string, colour ("" = the app chooses), on/off."""

    spec: str
    color: str = ""
    enabled: bool = True


@dataclass(frozen=True)
class Lesson:
    """A whole setup. ``selected`` is an index into ``runs`` (or None); ``view`` is the
    contour plot's visible box (xmin, xmax, ymin, ymax), None for the surface's own box;
    ``surface_view`` is a custom surface's box; ``data`` is linear_regression's data set;
    ``lab`` holds the lab's settings (keys of :data:`LAB_KEYS`) or None to leave them."""

    start: tuple[float, float]
    steps: int
    runs: tuple[LessonRun, ...]
    surface: str = "quadratic"
    expression: str = ""
    surface_view: tuple[float, float, float, float] | None = None
    data: tuple[int, float, int] = DEFAULT_DATA
    selected: int | None = 0
    step: int = 0
    view: tuple[float, float, float, float] | None = None
    overlays: tuple[str, ...] = ()
    log_scale: bool = True
    speed: float = 8.0
    lab: Mapping[str, Any] | None = field(default=None, hash=False)
    title: str = ""
    notes: str = ""
    hidden_panels: tuple[str, ...] = ()

    @property
    def specs(self) -> tuple[str, ...]:
        return tuple(r.spec for r in self.runs)

    def to_dict(self) -> dict[str, Any]:
        return lesson_to_dict(self)

    def to_json(self) -> str:
        return dumps_lesson(self)


# ---------------------------------------------------------------------------- migrations

# MIGRATIONS[v] turns a version-v document (a dict) into a version-(v + 1) one. When the
# format changes, bump SCHEMA_VERSION and add the step here; older files keep opening.
MIGRATIONS: dict[int, Callable[[dict], dict]] = {}


def upgrade(data: dict) -> dict:
    """``data`` brought to :data:`SCHEMA_VERSION` (LessonError for a newer or bad version)."""
    version = data.get("schema_version")
    if version is None:
        raise LessonError("not an optgui lesson: it has no schema_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise LessonError(f"schema_version must be an integer, got {version!r}")
    if version > SCHEMA_VERSION:
        raise LessonError(
            f"this lesson was written by a newer optgui (format {version}; this version "
            f"reads formats up to {SCHEMA_VERSION}): update optgui to open it")
    if version < 1:
        raise LessonError(f"schema_version must be 1 or more, got {version}")
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise LessonError(f"cannot read lesson format {version} (no migration from it)")
        data = step(dict(data))
        version += 1
        data["schema_version"] = version
    return data


# ---------------------------------------------------------------------------- reading


def _where(path: str, message: str) -> LessonError:
    return LessonError(f"{path}: {message}" if path else message)


def _number(value, path: str, lo=-math.inf, hi=math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _where(path, f"must be a number, got {json.dumps(value)[:40]}")
    value = float(value)
    if not (math.isfinite(value) and lo <= value <= hi):
        raise _where(path, f"must be a finite number from {lo:g} to {hi:g}, got {value:g}")
    return value


def _integer(value, path: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _where(path, f"must be an integer, got {json.dumps(value)[:40]}")
    if not lo <= value <= hi:
        raise _where(path, f"must be from {lo} to {hi}, got {value}")
    return value


def _text(value, path: str, limit: int) -> str:
    if not isinstance(value, str):
        raise _where(path, f"must be text, got {json.dumps(value)[:40]}")
    if len(value) > limit:
        raise _where(path, f"is too long ({len(value)} characters; at most {limit})")
    return value


def _boolean(value, path: str) -> bool:
    if not isinstance(value, bool):
        raise _where(path, f"must be true or false, got {json.dumps(value)[:40]}")
    return value


def _list(value, path: str, limit: int) -> list:
    if not isinstance(value, list):
        raise _where(path, f"must be a list, got {json.dumps(value)[:40]}")
    if len(value) > limit:
        raise _where(path, f"has {len(value)} entries; at most {limit}")
    return value


def _object(value, path: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()):
    if not isinstance(value, dict):
        raise _where(path, f"must be an object {{...}}, got {json.dumps(value)[:40]}")
    unknown = [k for k in value if k not in allowed]
    if unknown:
        raise _where(path, f"unknown field {unknown[0]!r} (known: {', '.join(allowed)})")
    missing = [k for k in required if k not in value]
    if missing:
        raise _where(path, f"missing field {missing[0]!r}")
    return value


def _box(value, path: str) -> tuple[float, float, float, float]:
    items = _list(value, path, 4)
    if len(items) != 4:
        raise _where(path, "must be four numbers [xmin, xmax, ymin, ymax]")
    box = tuple(_number(v, f"{path}[{i}]", -1e6, 1e6) for i, v in enumerate(items))
    if not (box[0] < box[1] and box[2] < box[3]):
        raise _where(path, "each minimum must be smaller than its maximum")
    return box  # type: ignore[return-value]


def _names(value, path: str, known: tuple[str, ...]) -> tuple[str, ...]:
    out = []
    for i, item in enumerate(_list(value, path, len(known))):
        name = _text(item, f"{path}[{i}]", 40)
        if name not in known:
            raise _where(f"{path}[{i}]", f"unknown name {name!r}; choose from {', '.join(known)}")
        if name not in out:
            out.append(name)
    return tuple(out)


_TOP = ("schema_version", "title", "notes", "surface", "start", "steps", "optimizers",
        "selected", "step", "view", "overlays", "log_scale", "speed", "lab", "hidden_panels")


def lesson_from_dict(data: Any, *, check_expression: bool = True) -> Lesson:
    """A validated :class:`Lesson` from parsed JSON (LessonError on any problem).

    ``check_expression`` compiles a custom surface's formula (sympy, up to about a second)
    so that a bad formula is refused here rather than after the lesson was applied.
    """
    from engine.functions import SURFACES
    from engine.spec import parse_spec
    from engine.trajectory import MAX_STEPS

    if not isinstance(data, dict):
        raise LessonError("not an optgui lesson: the file must hold a JSON object {...}")
    data = upgrade(data)
    _object(data, "", _TOP, ("surface", "start", "steps", "optimizers"))

    surf = _object(data["surface"], "surface", ("name", "expression", "view", "data"),
                   ("name",))
    name = _text(surf["name"], "surface.name", 60)
    expression, surface_view, data_set = "", None, DEFAULT_DATA
    if name == CUSTOM:
        if "expression" not in surf:
            raise LessonError("surface: a custom surface needs an 'expression'")
        expression = _text(surf["expression"], "surface.expression", MAX_EXPRESSION).strip()
        surface_view = _box(surf["view"], "surface.view") if "view" in surf else DEFAULT_VIEW
    elif name not in SURFACES:
        raise LessonError(f"surface.name: unknown surface {name!r}; choose one of: "
                          f"{', '.join(list(SURFACES) + [CUSTOM])}")
    else:
        extra = [k for k in ("expression", "view") if k in surf]
        if extra:
            raise LessonError(f"surface.{extra[0]}: only a custom surface has one")
    if "data" in surf:
        if name != DATA_SURFACE:
            raise LessonError(f"surface.data: only {DATA_SURFACE} has a data set")
        d = _object(surf["data"], "surface.data", ("samples", "noise", "seed"))
        data_set = (
            _integer(d.get("samples", DEFAULT_DATA[0]), "surface.data.samples", 2, 10_000),
            _number(d.get("noise", DEFAULT_DATA[1]), "surface.data.noise", 0.0, 100.0),
            _integer(d.get("seed", DEFAULT_DATA[2]), "surface.data.seed", 0, 2**32 - 1),
        )

    start_items = _list(data["start"], "start", 2)
    if len(start_items) != 2:
        raise LessonError("start: must be two numbers [w1, w2]")
    start = (_number(start_items[0], "start[0]", -1e12, 1e12),
             _number(start_items[1], "start[1]", -1e12, 1e12))
    steps = _integer(data["steps"], "steps", 0, MAX_STEPS)

    runs = []
    for i, item in enumerate(_list(data["optimizers"], "optimizers", MAX_RUNS)):
        where = f"optimizers[{i}]"
        if isinstance(item, str):  # the short form: just the spec
            item = {"spec": item}
        entry = _object(item, where, ("spec", "color", "enabled"), ("spec",))
        text = _text(entry["spec"], f"{where}.spec", 2000)
        try:
            spec = str(parse_spec(text))
        except ValueError as exc:
            raise LessonError(f"{where}.spec: {exc}") from None
        color = _text(entry.get("color", ""), f"{where}.color", 7)
        if color and not _COLOR.fullmatch(color):
            raise LessonError(f"{where}.color: must look like #1f77b4, got {color!r}")
        runs.append(LessonRun(spec, color.lower(), _boolean(entry.get("enabled", True),
                                                            f"{where}.enabled")))

    try:
        check_load(len(runs), steps)  # the same limits as the window and the command line
    except ValueError as exc:
        raise LessonError(f"optimizers: {exc}") from None
    selected = data.get("selected", 0 if runs else None)
    if selected is not None:
        if not runs:
            raise LessonError("selected: there are no optimizers to select")
        selected = _integer(selected, "selected", 0, len(runs) - 1)
    step = _integer(data.get("step", 0), "step", 0, steps)
    view = None if data.get("view") is None else _box(data["view"], "view")
    lab = None if data.get("lab") is None else _lab(data["lab"])
    lesson = Lesson(
        start=start, steps=steps, runs=tuple(runs), surface=name, expression=expression,
        surface_view=surface_view, data=data_set, selected=selected, step=step, view=view,
        overlays=_names(data.get("overlays", []), "overlays", OVERLAYS),
        log_scale=_boolean(data.get("log_scale", True), "log_scale"),
        speed=_number(data.get("speed", 8), "speed", 0.1, 2000.0),
        lab=lab,
        title=_text(data.get("title", ""), "title", MAX_TITLE),
        notes=_text(data.get("notes", ""), "notes", MAX_NOTES),
        hidden_panels=_names(data.get("hidden_panels", []), "hidden_panels", PANELS),
    )
    if check_expression and name == CUSTOM:
        lesson_surface(lesson)
    return lesson


def _lab(value) -> dict[str, Any]:
    from engine.training import TrainConfig

    lab = dict(_object(value, "lab", LAB_KEYS))
    if "optimizers" in lab:
        lab["optimizers"] = tuple(
            _text(s, f"lab.optimizers[{i}]", 2000)
            for i, s in enumerate(_list(lab["optimizers"], "lab.optimizers", MAX_RUNS)))
    if "lr" in lab:
        lab["lr"] = _number(lab["lr"], "lab.lr", 1e-12, 1e4)
    if "activation" in lab:
        lab["activation"] = _text(lab["activation"], "lab.activation", 40)
    try:
        TrainConfig(**lab)  # every range and spec checked by the lab's own rules
    except (TypeError, ValueError) as exc:
        raise LessonError(f"lab: {exc}") from None
    return lab


def parse_lesson(text: str | bytes, *, check_expression: bool = True) -> Lesson:
    """Parse and validate a whole lesson document (LessonError with a one-line message)."""
    if isinstance(text, bytes):
        if len(text) > MAX_FILE_BYTES:
            raise LessonError(f"the file is too large for a lesson ({len(text):,} bytes)")
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise LessonError("not an optgui lesson: the file is not UTF-8 text") from None
    if not text.strip():
        raise LessonError("the lesson file is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LessonError(
            f"not valid JSON (truncated or hand-edited?): {exc.msg} (line {exc.lineno}, "
            f"column {exc.colno})") from None
    except RecursionError:
        raise LessonError("not an optgui lesson: nested too deeply") from None
    return lesson_from_dict(data, check_expression=check_expression)


def load_lesson(path: str | Path, *, check_expression: bool = True) -> Lesson:
    """Read and validate a lesson file (LessonError names the file and the problem)."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise LessonError(f"{path.name}: too large for a lesson")
        raw = path.read_bytes()
    except OSError as exc:
        raise LessonError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return parse_lesson(raw, check_expression=check_expression)
    except LessonError as exc:
        raise LessonError(f"{path.name}: {exc}") from None


# ---------------------------------------------------------------------------- writing


def _num(x: float) -> int | float:
    """Whole numbers as JSON integers (−5 rather than −5.0); floats keep repr precision."""
    x = float(x)
    return int(x) if x.is_integer() and abs(x) < 2**53 else x


def lesson_to_dict(lesson: Lesson) -> dict[str, Any]:
    surface: dict[str, Any] = {"name": lesson.surface}
    if lesson.surface == CUSTOM:
        surface["expression"] = lesson.expression
        surface["view"] = [_num(v) for v in (lesson.surface_view or DEFAULT_VIEW)]
    elif lesson.surface == DATA_SURFACE and tuple(lesson.data) != DEFAULT_DATA:
        n, noise, seed = lesson.data
        surface["data"] = {"samples": int(n), "noise": _num(noise), "seed": int(seed)}
    out: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "title": lesson.title,
                           "notes": lesson.notes, "surface": surface,
                           "start": [_num(v) for v in lesson.start], "steps": int(lesson.steps),
                           "optimizers": [
                               {"spec": r.spec, **({"color": r.color} if r.color else {}),
                                "enabled": r.enabled} for r in lesson.runs],
                           "selected": lesson.selected, "step": int(lesson.step),
                           "view": None if lesson.view is None else [_num(v) for v in
                                                                     lesson.view],
                           "overlays": list(lesson.overlays), "log_scale": lesson.log_scale,
                           "speed": _num(lesson.speed)}
    if lesson.lab is not None:
        out["lab"] = {k: (list(v) if isinstance(v, tuple) else v)
                      for k, v in lesson.lab.items()}
    out["hidden_panels"] = list(lesson.hidden_panels)
    return out


def dumps_lesson(lesson: Lesson) -> str:
    """The file's text: one field a line (each optimizer on its own line), UTF-8 as is."""

    def one(value) -> str:
        return json.dumps(value, ensure_ascii=False)

    lines = []
    for key, value in lesson_to_dict(lesson).items():
        if key == "optimizers" and value:
            inner = ",\n".join(f"    {one(item)}" for item in value)
            lines.append(f'  "{key}": [\n{inner}\n  ]')
        else:
            lines.append(f"  {one(key)}: {one(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def save_lesson(path: str | Path, lesson: Lesson) -> None:
    """Write ``lesson`` atomically (a failed write leaves the old file as it was)."""
    atomic_write(path, dumps_lesson(lesson))


# ---------------------------------------------------------------------------- using


def lesson_surface(lesson: Lesson):
    """The :class:`engine.Surface` a lesson describes (LessonError if it cannot be built)."""
    from engine.functions import SURFACES, make_linear_regression

    if lesson.surface == CUSTOM:
        from engine.expression import surface_from_expression

        try:
            return surface_from_expression(lesson.expression, lesson.surface_view)
        except ValueError as exc:
            raise LessonError(f"surface.expression: {exc}") from None
    if lesson.surface == DATA_SURFACE and tuple(lesson.data) != DEFAULT_DATA:
        n, noise, seed = lesson.data
        return make_linear_regression(int(n), float(noise), int(seed))
    try:
        return SURFACES[lesson.surface]
    except KeyError:
        raise LessonError(f"unknown surface {lesson.surface!r}") from None


def builtin_lessons() -> dict[str, Lesson]:
    """The lessons shipped in resources/lessons/ (the presets), by file stem, sorted."""
    return {path.stem: load_lesson(path) for path in sorted(LESSONS_DIR.glob(f"*{SUFFIX}"))}


"""Lesson files (engine.lesson): round trips, refusal of bad files, migrations, the presets
as lesson files, and the command line's --lesson / --save-lesson."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import REGISTRY, get_surface, parse_spec, run_trajectory
from engine import lesson as lesson_mod
from engine.export import trajectories_csv
from engine.lesson import (
    OVERLAYS,
    PANELS,
    SCHEMA_VERSION,
    Lesson,
    LessonError,
    LessonRun,
    builtin_lessons,
    dumps_lesson,
    lesson_surface,
    load_lesson,
    parse_lesson,
    save_lesson,
)
from engine.presets import COURSE, PRESETS
from optgui.cli import main

COURSE_TEXT = (lesson_mod.LESSONS_DIR / "course.optgui").read_text(encoding="utf-8")

# ---------------------------------------------------------------------------- round trips

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
simple_specs = st.sampled_from(
    ["gd(lr=0.4)", "momentum(lr=0.6,beta=0.5)", "adam(lr=0.2,eps=1e-6)", "rmsprop",
     "sam(base=gd(lr=0.1),rho=0.3)", "gd(lr=0.15,batch=8)", "nesterov(lr=0.01)"])
colors = st.one_of(st.just(""), st.from_regex(r"#[0-9a-f]{6}", fullmatch=True))
runs = st.lists(st.builds(LessonRun, simple_specs, colors, st.booleans()), max_size=5)
boxes = st.tuples(finite, finite, finite, finite).filter(
    lambda b: b[0] < b[1] and b[2] < b[3])
text = st.text(max_size=200)


@st.composite
def lessons(draw) -> Lesson:
    the_runs = tuple(r for r in draw(runs) if str(parse_spec(r.spec)) == r.spec)
    steps = draw(st.integers(0, 500))
    surface = draw(st.sampled_from(["quadratic", "rosenbrock", "linear_regression", "custom"]))
    custom = surface == "custom"
    return Lesson(
        start=(draw(finite), draw(finite)), steps=steps, runs=the_runs, surface=surface,
        expression="w1^2 + 3*w2^2" if custom else "",
        surface_view=draw(boxes) if custom else None,
        data=(draw(st.integers(2, 10_000)), draw(st.floats(0, 100)), draw(st.integers(0, 99)))
        if surface == "linear_regression" else lesson_mod.DEFAULT_DATA,
        selected=draw(st.integers(0, len(the_runs) - 1)) if the_runs else None,
        step=draw(st.integers(0, steps)), view=draw(st.one_of(st.none(), boxes)),
        overlays=tuple(draw(st.lists(st.sampled_from(OVERLAYS), unique=True))),
        log_scale=draw(st.booleans()), speed=draw(st.floats(0.1, 2000)),
        lab=draw(st.one_of(st.none(), st.fixed_dictionaries(
            {"epochs": st.integers(1, 50), "layers": st.integers(0, 8)},
            optional={"lr": st.floats(1e-5, 1.0),
                      "activation": st.sampled_from(["sigmoid", "relu", "tanh"]),
                      "optimizers": st.just(("sgd", "adam"))}))),
        title=draw(text), notes=draw(text),
        hidden_panels=tuple(draw(st.lists(st.sampled_from(PANELS), unique=True))),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lessons())
def test_any_lesson_survives_a_round_trip_through_its_text(lesson):
    text = dumps_lesson(lesson)
    again = parse_lesson(text, check_expression=False)
    assert again == lesson
    assert dumps_lesson(again) == text  # and writes back byte for byte
    assert json.loads(text)["schema_version"] == SCHEMA_VERSION


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lessons())
def test_the_windows_configuration_keeps_a_lessons_setup(lesson):
    """Lesson → the window's RunConfig → lesson gives back surface, start, steps and runs."""
    from optgui.playground.config import config_from_lesson, lesson_fields

    lesson = replace(lesson, runs=tuple(replace(r, color=r.color or "#abcdef")
                                        for r in lesson.runs))
    config = config_from_lesson(lesson)
    assert [r.run_id for r in config.runs] == list(range(1, len(lesson.runs) + 1))
    assert replace(lesson, **lesson_fields(config)) == lesson


def test_a_lesson_file_round_trip_keeps_unicode_notes(tmp_path):
    lesson = replace(builtin_lessons()["course"], title="Übung 1 — Gradientenabstieg",
                     notes="# Notizen\n\nf(w) = ½·w², ∇f = w\n", overlays=("gradient",))
    path = tmp_path / "ü.optgui"
    save_lesson(path, lesson)
    assert "½·w²" in path.read_text(encoding="utf-8")  # readable in any editor
    assert load_lesson(path) == lesson


def test_short_forms_and_defaults():
    lesson = parse_lesson('{"schema_version": 1, "surface": {"name": "rosenbrock"}, '
                          '"start": [0, 1.5], "steps": 4, "optimizers": ["adam( lr = 0.1 )"]}')
    assert lesson.runs == (LessonRun("adam(lr=0.1)"),)  # normalised spec, app picks the colour
    assert (lesson.selected, lesson.step, lesson.view, lesson.log_scale, lesson.speed) == (
        0, 0, None, True, 8.0)
    assert lesson.lab is None and lesson.hidden_panels == ()


# ---------------------------------------------------------------------------- refusals


def _edited(**changes) -> str:
    data = json.loads(COURSE_TEXT)
    for key, value in changes.items():
        if value is KeyError:
            del data[key]
        else:
            data[key] = value
    return json.dumps(data)


BAD = [
    (_edited(schema_version=SCHEMA_VERSION + 1), "newer optgui"),
    (_edited(schema_version="1"), "schema_version must be an integer"),
    (_edited(schema_version=KeyError), "no schema_version"),
    (COURSE_TEXT[: len(COURSE_TEXT) // 2], "not valid JSON"),
    ("", "empty"),
    ("[1, 2]", "JSON object"),
    (_edited(steps="30"), "steps: must be an integer"),
    (_edited(steps=30.5), "steps: must be an integer"),
    (_edited(steps=-1), "steps: must be from 0"),
    (_edited(start=[1]), "start: must be two numbers"),
    (_edited(start=[1, "x"]), "start[1]: must be a number"),
    (_edited(start=[1, True]), "start[1]: must be a number"),
    (_edited(optimizers=[{"spec": "nosuch(lr=1)"}]), "optimizers[0].spec"),
    (_edited(optimizers=[{"spec": "gd(lr=-1)"}]), "optimizers[0].spec"),
    (_edited(optimizers=[{"spec": "gd", "color": "red"}]), "optimizers[0].color"),
    (_edited(optimizers=[{"spec": "gd", "enabled": "yes"}]), "optimizers[0].enabled"),
    (_edited(optimizers={"spec": "gd"}), "optimizers: must be a list"),
    (_edited(surface={"name": "nosuch"}), "unknown surface 'nosuch'"),
    (_edited(surface={"name": "custom", "expression": "w1 +* 2"}), "surface.expression"),
    (_edited(surface={"name": "custom", "expression": "__import__('os')"}),
     "surface.expression"),
    (_edited(surface={"name": "custom", "expression": "w1", "view": [1, 0, 0, 1]}),
     "surface.view"),
    (_edited(surface={"name": "quadratic", "expression": "w1"}), "only a custom surface"),
    (_edited(selected=4), "selected: must be from 0 to 3"),
    (_edited(step=31), "step: must be from 0 to 30"),
    (_edited(overlays=["glitter"]), "overlays[0]: unknown name"),
    (_edited(hidden_panels=["everything"]), "hidden_panels[0]: unknown name"),
    (_edited(speed=0), "speed"),
    (_edited(log_scale=1), "log_scale: must be true or false"),
    (_edited(lab={"epochs": 0}), "lab: epochs"),
    (_edited(lab={"optimizers": ["nosuch"]}), "lab:"),
    (_edited(lab={"gpu": True}), "lab: unknown field 'gpu'"),
    (_edited(extra=1), "unknown field 'extra'"),
    (_edited(notes=7), "notes: must be text"),
    (_edited(optimizers=["gd"] * 31), "optimizers: has 31 entries; at most 30"),
    (_edited(optimizers=["gd"] * 20, steps=100_000), "steps in all"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_lessons_are_refused_with_a_clear_message(text, message):
    with pytest.raises(LessonError) as info:
        parse_lesson(text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_undecodable_and_missing_files_are_refused(tmp_path):
    path = tmp_path / "bad.optgui"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(LessonError, match="bad.optgui: not an optgui lesson"):
        load_lesson(path)
    with pytest.raises(LessonError, match="cannot read"):
        load_lesson(tmp_path / "missing.optgui")


def test_an_older_version_is_migrated(monkeypatch):
    """A format change bumps SCHEMA_VERSION and adds a migration; old files still open."""

    def v1_to_v2(data):  # e.g. version 2 renamed "log_scale" to "log_loss"
        data["log_loss"] = data.pop("log_scale", True)
        return data

    monkeypatch.setattr(lesson_mod, "SCHEMA_VERSION", 2)
    monkeypatch.setitem(lesson_mod.MIGRATIONS, 1, v1_to_v2)
    upgraded = lesson_mod.upgrade(json.loads(_edited(log_scale=False)))
    assert upgraded["schema_version"] == 2 and upgraded["log_loss"] is False
    monkeypatch.delitem(lesson_mod.MIGRATIONS, 1)
    with pytest.raises(LessonError, match="no migration"):
        lesson_mod.upgrade(json.loads(COURSE_TEXT))


# ---------------------------------------------------------------------------- presets as data


def test_the_presets_are_the_lesson_files():
    assert set(PRESETS) == {"course", "gd_sgd_minibatch", "sam_vs_gd", "second_order_race"}
    for name, preset in PRESETS.items():
        lesson = load_lesson(lesson_mod.LESSONS_DIR / f"{name}.optgui")
        assert preset.lesson == lesson
        assert preset.specs() == [parse_spec(s) for s in lesson.specs]
        # the shipped files are in the canonical format (what Save writes)
        assert (lesson_mod.LESSONS_DIR / f"{name}.optgui").read_text("utf-8") == \
            dumps_lesson(lesson)
    assert COURSE.lesson.title == "Course exercise" and COURSE.lesson.notes


def test_lesson_surfaces():
    course = builtin_lessons()["course"]
    assert lesson_surface(course) is get_surface("quadratic")
    custom = replace(course, surface="custom", expression="w1^2 + w2^4",
                     surface_view=(-2.0, 2.0, -1.0, 1.0))
    assert tuple(lesson_surface(custom).view) == (-2.0, 2.0, -1.0, 1.0)
    data = replace(course, surface="linear_regression", data=(10, 0.1, 3))
    assert lesson_surface(data).n_samples == 10


def test_lesson_overlays_are_the_windows():
    from optgui.playground.overlays import KINDS

    assert tuple(k.key for k in KINDS) == OVERLAYS


# ---------------------------------------------------------------------------- command line


@pytest.mark.parametrize("surface_args", [
    ["--function", "rosenbrock", "--start", "-1,1.5"],
    ["--expr", "w1^2 + 3*sin(w2) + 0.1*w1*w2", "--start", "1.5,-2"],
    ["--preset", "gd_sgd_minibatch"],
])
def test_export_lesson_reproduces_the_csv_byte_for_byte(tmp_path, surface_args):
    a, b, lesson = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "l.optgui"
    opts = [] if "--preset" in surface_args else [
        "--steps", "25", "--optimizer", "adam(lr=0.123456789)", "--optimizer",
        "momentum(lr=1e-3,beta=0.9)"]
    assert main(["export", *surface_args, *opts, "--csv", str(a),
                 "--save-lesson", str(lesson)]) == 0
    assert main(["export", "--lesson", str(lesson), "--csv", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes() and len(a.read_bytes()) > 500


def test_export_lesson_options_override_the_file(tmp_path):
    lesson, out = tmp_path / "l.optgui", tmp_path / "o.csv"
    assert main(["export", "--preset", "course", "--save-lesson", str(lesson)]) == 0
    assert load_lesson(lesson).title == "Course exercise"  # the preset's notes come along
    assert main(["export", "--lesson", str(lesson), "--steps", "3",
                 "--optimizer", "gd(lr=0.1)", "--csv", str(out)]) == 0
    surface = get_surface("quadratic")
    expected = trajectories_csv([run_trajectory(surface, parse_spec("gd(lr=0.1)"),
                                                COURSE.start, 3)])
    assert out.read_text() == expected


def test_export_saves_only_enabled_runs_in_the_csv(tmp_path):
    course = builtin_lessons()["course"]
    runs = (course.runs[0], replace(course.runs[1], enabled=False))
    path, out = tmp_path / "l.optgui", tmp_path / "o.csv"
    save_lesson(path, replace(course, runs=runs, selected=1))
    assert main(["export", "--lesson", str(path), "--csv", str(out)]) == 0
    assert {line.split(",")[1] for line in out.read_text().splitlines()[1:]} == {"gd(lr=0.4)"}


@pytest.mark.parametrize(("content", "message"), [
    ('{"schema_version": 99}', "newer optgui"),
    (COURSE_TEXT[:200], "not valid JSON"),
    (_edited(optimizers=["nosuch"]), "unknown optimizer"),
])
def test_export_refuses_a_bad_lesson_with_status_2(tmp_path, capsys, content, message):
    path, out = tmp_path / "bad.optgui", tmp_path / "o.csv"
    path.write_text(content, encoding="utf-8")
    assert main(["export", "--lesson", str(path), "--csv", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()


def test_export_lesson_and_preset_together_is_refused(tmp_path, capsys):
    path = tmp_path / "l.optgui"
    path.write_text(COURSE_TEXT, encoding="utf-8")
    assert main(["export", "--lesson", str(path), "--preset", "course"]) == 2
    assert "not both" in capsys.readouterr().err


def test_every_optimizer_spec_survives_a_lesson(tmp_path):
    """Spec strings are written exactly as str(spec): every registered optimizer's
    playground spec reads back to the same spec."""
    from optgui.playground.config import playground_spec

    runs = tuple(LessonRun(str(playground_spec(name))) for name in REGISTRY)
    lesson = replace(builtin_lessons()["course"], runs=runs, selected=0)
    again = parse_lesson(dumps_lesson(lesson))
    assert [parse_spec(r.spec) for r in again.runs] == [parse_spec(r.spec) for r in runs]

"""Command line: ``python main.py [export|train|map] ...``; no sub-command (or a lesson file,
``python main.py lesson.optgui``) opens the window.

The ``export`` interface is stable (other tools and the tests call it)::

    python main.py export --function quadratic --start -5,-2 --steps 30 \\
        --optimizer "gd(lr=0.4)" --optimizer "adam(lr=0.2)" \\
        --csv out.csv [--png contour.png] [--md derivation.md] [--tex derivation.tex] \\
        [--iterations 2] [--preset course] [--expr "0.1*w1**2 + 2*w2**2"] \\
        [--lesson lesson.optgui] [--save-lesson lesson.optgui] \\
        [--svg figure.svg] [--pdf figure.pdf] [--gif race.gif] [--mp4 race.mp4] \\
        [--frames DIR] [--size 1280x720] [--theme dark|light] [--fps 8] [--every K]

``--lesson FILE`` starts from a lesson file (other options override its values) and
``--save-lesson FILE`` writes the setup that ran, so ``export --lesson L --csv b.csv``
reproduces, byte for byte, the CSV of the run that saved ``L``.

Bad arguments exit with status 2 and a one-line message on stderr; every argument is
checked before anything is computed (an empty or unwritable path, two options naming one
file), and the files are written all or nothing (:func:`engine.export.atomic_write_many`),
so exit status 2 means no file was written and nothing is ever left half written. Nothing
here imports Qt unless a picture or an animation is asked for, and nothing imports torch
unless training is asked for.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from optgui import __version__

EXIT_USAGE = 2
EXIT_FAILURE = 1


class CliError(Exception):
    """A problem with the user's arguments or files: reported on one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line (no usage dump) and raise instead of exiting."""

    def error(self, message: str):  # type: ignore[override]
        raise CliError(f"{self.prog}: {message}")


def _parse_point(text: str) -> tuple[float, float]:
    parts = [p.strip() for p in text.replace(";", ",").split(",")]
    if len(parts) != 2:
        raise CliError(f"--start must be two numbers 'w1,w2' (e.g. -5,-2), got {text!r}")
    try:
        point = (float(parts[0]), float(parts[1]))
    except ValueError:
        raise CliError(f"--start must be two numbers 'w1,w2' (e.g. -5,-2), got {text!r}") from None
    if not all(abs(v) < 1e12 for v in point):
        raise CliError(f"--start must be finite and reasonably sized, got {text!r}")
    return point


def _join_negative_values(argv: list[str]) -> list[str]:
    """Let ``--start -5,-2`` (and ``map --view -5,5,-4,4``) work: argparse would take
    ``-5,-2`` for an option."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--start", "--view") and i + 1 < len(argv) and argv[i + 1].startswith("-"):
            out.append(f"{arg}={argv[i + 1]}")
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


def _add_export_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="run optimizers on a surface and write CSV / PNG / Markdown / LaTeX",
        description="Run optimizers on a 2-D surface and export the trajectories.",
    )
    p.add_argument("--preset", help="start from a built-in lesson (course: the course exercise; "
                                    "also gd_sgd_minibatch, sam_vs_gd)")
    p.add_argument("--lesson", metavar="FILE",
                   help="start from a lesson file (.optgui); other options override it")
    p.add_argument("--save-lesson", metavar="FILE",
                   help="write the setup that ran as a lesson file (.optgui)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--function", help="surface name (default: quadratic)")
    src.add_argument("--expr", help="custom surface in w1, w2 (or x, y), e.g. 'x**2 + 3*y**2'")
    p.add_argument("--start", help="start point 'w1,w2' (default: the surface's)")
    p.add_argument("--steps", type=int, help="number of steps (default 30)")
    p.add_argument("--optimizer", action="append", default=[], metavar="SPEC",
                   help="optimizer spec, e.g. 'adam(lr=0.2)'; repeat for several")
    p.add_argument("--csv", help="write trajectories to this CSV file")
    p.add_argument("--png", help="write the figure (see --layout) to this PNG file")
    p.add_argument("--svg", help="write the figure as a vector SVG file")
    p.add_argument("--pdf", help="write the figure as a vector PDF file")
    p.add_argument("--gif", help="write the race as an animated GIF")
    p.add_argument("--mp4", help="write the race as an H.264 MP4 video")
    p.add_argument("--frames", metavar="DIR",
                   help="write the race as frame_0000.png, frame_0001.png, … into DIR")
    p.add_argument("--size", metavar="WxH",
                   help="picture / frame size in pixels (default 1280x720)")
    p.add_argument("--theme", choices=("dark", "light"), default="dark",
                   help="dark (as on screen, the default) or light (for slides and print)")
    p.add_argument("--layout", choices=("figure", "contour", "loss"), default="figure",
                   help="PNG/SVG/PDF contents: figure (title, contour, loss plot and "
                        "legend; the default), contour or loss (one plot and its legend)")
    p.add_argument("--title", help="figure title (default: the surface's name)")
    p.add_argument("--fps", type=float, help="animation frames per second (default 8)")
    p.add_argument("--every", type=int, metavar="K",
                   help="animate every K-th step (default: every step up to 300 steps, "
                        "about 300 frames beyond)")
    p.add_argument("--overlays", metavar="KINDS",
                   help="step overlays of the selected run (the lesson's, else the first) "
                        "in pictures and animations: 'all', 'none' or a comma list of "
                        "gradient, update, velocity, sam (default: the lesson's, else none)")
    p.add_argument("--loss-scale", choices=("log", "linear"),
                   help="loss plot axis (default: the lesson's, else log as in the window)")
    p.add_argument("--md", help="write a worked derivation (Markdown) to this file")
    p.add_argument("--tex", help="write a worked derivation (LaTeX document) to this file")
    p.add_argument("--iterations", type=int, default=2,
                   help="iterations written out in the derivation (default 2)")
    p.set_defaults(func=run_export)


@dataclass(frozen=True)
class ExportJob:
    surface: object
    start: tuple[float, float]
    steps: int
    specs: tuple
    lesson: object = None  # the engine.lesson.Lesson that describes this job


def _base_lesson(args):
    """The lesson the job starts from: --lesson FILE, --preset NAME, or None."""
    from engine.lesson import LessonError, load_lesson
    from engine.presets import get_preset

    if args.lesson and args.preset:
        raise CliError("give --lesson or --preset, not both")
    if args.lesson:
        try:
            return load_lesson(args.lesson)
        except LessonError as exc:
            raise CliError(f"--lesson {exc}") from None
    if args.preset:
        try:
            return get_preset(args.preset).lesson
        except ValueError as exc:
            raise CliError(str(exc)) from None
    return None


def _export_job(args) -> ExportJob:
    """Validate every argument before anything is computed or written."""
    from dataclasses import replace

    from engine import get_surface, parse_spec
    from engine.lesson import CUSTOM, Lesson, LessonError, LessonRun, lesson_surface

    base = _base_lesson(args)
    try:
        if args.expr is not None:
            from engine.expression import surface_from_expression

            surface = surface_from_expression(args.expr)
        elif args.function is None and base is not None:
            surface = lesson_surface(base)
        else:
            surface = get_surface(args.function or "quadratic")
    except (LessonError, ValueError) as exc:
        raise CliError(str(exc)) from None
    same_surface = base is not None and args.expr is None and args.function in (
        None, base.surface)
    if args.start is not None:
        start = _parse_point(args.start)
    elif same_surface:
        start = base.start
    else:
        start = tuple(surface.start)
    steps = args.steps if args.steps is not None else (base.steps if base else 30)
    from engine.trajectory import MAX_STEPS, check_load

    if not 0 <= steps <= MAX_STEPS:
        raise CliError(f"--steps must be between 0 and {MAX_STEPS}, got {steps}")
    if args.optimizer:
        runs = tuple(LessonRun(text) for text in args.optimizer)
    else:
        runs = base.runs if base else ()
    texts = [r.spec for r in runs if r.enabled]
    if not texts:
        raise CliError("give at least one --optimizer SPEC (e.g. 'gd(lr=0.1)') or --preset course")
    specs = []
    for text in texts:
        try:
            specs.append(parse_spec(text))
        except ValueError as exc:
            raise CliError(str(exc)) from None
    try:
        check_load(len(specs), steps)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if args.iterations < 1:
        raise CliError(f"--iterations must be at least 1, got {args.iterations}")
    runs = tuple(replace(r, spec=str(parse_spec(r.spec))) for r in runs)

    # the lesson that describes exactly this job (written by --save-lesson)
    if args.expr is not None:
        surface_fields = dict(surface=CUSTOM, expression=args.expr.strip(),
                              surface_view=tuple(surface.view))
    elif same_surface:
        surface_fields = dict(surface=base.surface, expression=base.expression,
                              surface_view=base.surface_view, data=base.data)
    else:
        surface_fields = dict(surface=surface.name, expression="", surface_view=None)
    lesson = base or Lesson(start=start, steps=steps, runs=runs)
    selected = lesson.selected if runs == lesson.runs else 0
    lesson = replace(lesson, **surface_fields, start=tuple(start), steps=steps, runs=runs,
                     selected=selected, step=min(lesson.step, steps),
                     view=lesson.view if same_surface else None)
    return ExportJob(surface=surface, start=start, steps=steps, specs=tuple(specs),
                     lesson=lesson)


def check_outputs(outputs: list[tuple[str | None, str]], error=None) -> list[tuple[str, str]]:
    """The (path, option) pairs given, each checked for writing before anything is computed:
    an empty name, a missing folder, a folder, a block device and two options naming one
    file (also through links or relative paths) are refused with one line."""
    from engine.export import check_distinct, resolve_target

    error = error or CliError
    given, targets = [], []
    for path, option in outputs:
        if path is None:
            continue
        if not path.strip():
            raise error(f"{option} needs a file name (got an empty one)")
        try:
            targets.append((option, resolve_target(path)))
        except OSError as exc:
            raise error(f"{option}: {exc}") from None
        given.append((path, option))
    try:
        check_distinct(targets)
    except OSError as exc:
        raise error(str(exc)) from None
    return given


PICTURES = ("png", "svg", "pdf")
ANIMATIONS = ("gif", "mp4", "frames")
OVERLAY_KINDS = ("gradient", "update", "velocity", "sam")


@dataclass(frozen=True)
class PictureJob:
    size: tuple[int, int]
    fps: float
    overlays: tuple[str, ...] | None  # None: the lesson's


def _picture_job(args) -> PictureJob:
    """Check the picture and animation options (all before anything is computed)."""
    pictures = [f for f in PICTURES if getattr(args, f)]
    animations = [f for f in ANIMATIONS if getattr(args, f)]
    if not (pictures or animations):
        given = [o for o, v in (("--size", args.size), ("--fps", args.fps),
                                ("--every", args.every), ("--overlays", args.overlays),
                                ("--title", args.title)) if v is not None]
        if given:
            raise CliError(f"{given[0]} needs a picture or animation to write "
                           "(--png, --svg, --pdf, --gif, --mp4 or --frames)")
    if not animations:
        for option, value in (("--fps", args.fps), ("--every", args.every)):
            if value is not None:
                raise CliError(f"{option} needs an animation to write (--gif, --mp4 or --frames)")
    size = _size(args.size, (1280, 720))
    fps = 8.0
    if args.fps is not None:
        from engine.animation import check_fps

        try:
            fps = check_fps(args.fps)
        except ValueError as exc:
            raise CliError(str(exc)) from None
    if args.every is not None and args.every < 1:
        raise CliError(f"--every must be at least 1, got {args.every}")
    overlays: tuple[str, ...] | None = None
    if args.overlays:
        names = [n.strip() for n in args.overlays.split(",") if n.strip()]
        if names == ["all"]:
            names = list(OVERLAY_KINDS)
        elif names == ["none"]:
            names = []
        bad = [n for n in names if n not in OVERLAY_KINDS]
        if bad:
            raise CliError(f"--overlays: unknown overlay {bad[0]!r} (choose from all, none, "
                           f"{', '.join(OVERLAY_KINDS)})")
        overlays = tuple(dict.fromkeys(names))
    if args.mp4:
        try:
            import av  # noqa: F401
        except ImportError:
            raise CliError("--mp4 needs PyAV: pip install av") from None
    for fmt in (*PICTURES, "gif", "mp4"):
        path = getattr(args, fmt)
        if path and not path.lower().endswith(f".{fmt}"):
            raise CliError(f"--{fmt}: the file name must end in .{fmt}, got {path!r}")
    return PictureJob(size, fps, overlays)


def _size(text: str | None, default: tuple[int, int]) -> tuple[int, int]:
    """--size W×H as (width, height), or ``default`` when not given (CliError if bad)."""
    if text is None:
        return default
    from optgui.playground.figure import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _check_folder_target(path: str, option: str) -> None:
    import os
    from pathlib import Path

    if not path.strip():
        raise CliError(f"{option} needs a folder name (got an empty one)")
    target = Path(os.path.expanduser(path)).resolve()  # (Path.expanduser raises on ~nouser)
    if not target.parent.is_dir():
        raise CliError(f"{option}: folder {target.parent} does not exist")
    if target.exists() and not target.is_dir():
        raise CliError(f"{option}: {path} is a file, not a folder")


def _progress(label: str):
    """A one-line progress report on stderr, when someone is watching it."""
    if not sys.stderr.isatty():
        return None

    def report(done: int, total: int) -> bool:
        end = "\n" if done == total else ""
        print(f"\r{label}: frame {done} / {total}", end=end, file=sys.stderr, flush=True)
        return True

    return report


def _pictures(args, job, pictures, trajectories, batch) -> None:
    """Render the pictures and animations into ``batch`` (the animation frames folder is
    written at once: a folder cannot be swapped in atomically)."""
    from optgui.playground import render
    from optgui.playground.config import PATH_COLORS

    # what the lesson shows (colours, selection, overlays, log scale, zoom, title)
    # unless an option says otherwise
    lesson = job.lesson
    shown = [i for i, r in enumerate(lesson.runs) if r.enabled]
    colors = [lesson.runs[i].color or PATH_COLORS[i % len(PATH_COLORS)] for i in shown]
    selected = shown.index(lesson.selected) + 1 if lesson.selected in shown else 1
    overlays = lesson.overlays if pictures.overlays is None else pictures.overlays
    log_loss = lesson.log_scale if args.loss_scale is None else args.loss_scale == "log"
    scene = render.figure_scene(
        job.surface, trajectories, job.start, job.steps, colors, overlays, selected,
        log_loss, args.title or lesson.title, lesson.view)
    for fmt in PICTURES:
        if getattr(args, fmt):
            batch.add(getattr(args, fmt), render.figure_bytes(
                scene, fmt, pictures.size, args.theme, args.layout))
    for kind in ANIMATIONS:
        path = getattr(args, kind)
        if not path:
            continue
        if kind == "frames":
            render.save_animation(scene, kind, path, pictures.size, args.theme, pictures.fps,
                                  args.every, _progress(path))
            continue
        with batch.path(path) as tmp:
            render.save_animation(scene, kind, tmp, pictures.size, args.theme, pictures.fps,
                                  args.every, _progress(path))


def run_export(args) -> int:
    from engine import run_trajectory
    from engine.export import AtomicBatch, trajectories_csv

    job = _export_job(args)
    pictures = _picture_job(args)
    outputs = check_outputs([
        (args.csv, "--csv"), (args.png, "--png"), (args.svg, "--svg"), (args.pdf, "--pdf"),
        (args.md, "--md"), (args.tex, "--tex"), (args.gif, "--gif"), (args.mp4, "--mp4"),
        (args.save_lesson, "--save-lesson")])
    if args.frames is not None:
        _check_folder_target(args.frames, "--frames")
        outputs.append((args.frames, "--frames"))
    try:
        trajectories = [run_trajectory(job.surface, s, job.start, job.steps) for s in job.specs]
    except ValueError as exc:
        raise CliError(str(exc)) from None

    # everything is rendered in memory first and written all or nothing
    files: list[tuple[str, str | bytes]] = []
    if args.save_lesson:
        from engine.lesson import dumps_lesson

        files.append((args.save_lesson, dumps_lesson(job.lesson)))
    if args.csv:
        files.append((args.csv, trajectories_csv(trajectories)))
    if args.md or args.tex:
        from engine import derivation

        if args.md:
            files.append((args.md, derivation.to_markdown(
                job.surface, trajectories, job.start, iterations=args.iterations)))
        if args.tex:
            files.append((args.tex, derivation.to_latex(
                job.surface, trajectories, job.start, iterations=args.iterations)))
    try:
        with AtomicBatch() as batch:  # nothing is renamed into place unless all succeed
            for path, data in files:
                batch.add(path, data)
            if any(getattr(args, f) for f in (*PICTURES, *ANIMATIONS)):
                _pictures(args, job, pictures, trajectories, batch)
    except OSError as exc:
        raise CliError(f"{exc}; no file was written") from None

    if not outputs:
        print(_summary(trajectories))
    for traj in trajectories:
        if traj.diverged:
            print(f"note: {traj.spec} diverged at step {traj.diverged_at} "
                  f"({traj.diverged_reason})", file=sys.stderr)
    return 0


def _summary(trajectories) -> str:
    rows = [("optimizer", "steps", "w1", "w2", "loss")]
    for t in trajectories:
        w = t.points[-1]
        steps = f"{t.steps}" + (" (diverged)" if t.diverged else "")
        rows.append((str(t.spec), steps, f"{w[0]:.6g}", f"{w[1]:.6g}", f"{t.losses[-1]:.6g}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="optgui",
        description="See how optimizers work. Without a sub-command, opens the window.",
    )
    parser.add_argument("--version", action="version", version=f"optgui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{export,train,map}", parser_class=_Parser)
    _add_export_parser(sub)
    try:
        from optgui.cli import train as cli_train
    except ImportError:  # the training lab is optional for the 2-D playground
        cli_train = None
    if cli_train is not None:
        cli_train.add_parser(sub)
    from optgui.cli import map as cli_map

    cli_map.add_parser(sub)
    return parser


@contextlib.contextmanager
def _exit_cleanly_on_sigterm():
    """While a sub-command runs, SIGTERM unwinds like Ctrl+C, so a write in progress removes
    its temporary file (by default Python dies at once and leaves the ``.part`` behind)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        from engine.export import remove_partial_files

        remove_partial_files()
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] == "gui" or argv[0].lower().endswith(".optgui"):
        from optgui.app import main as gui_main

        return gui_main(argv[1:] if argv and argv[0] == "gui" else argv)
    with _exit_cleanly_on_sigterm():
        return _run(argv)


def _run(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(_join_negative_values(argv))
        if not getattr(args, "func", None):
            raise CliError("optgui: choose a sub-command: export, train or map (see --help)")
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

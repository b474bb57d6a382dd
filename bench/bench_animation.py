"""How long does a 300-frame 1280 × 720 GIF of a race take? (issue 9: under 20 s)

    python bench/bench_animation.py            # the course race run for 299 steps: 300 frames
    python bench/bench_animation.py --size 1920x1080 --format mp4

The race is the course exercise's four optimizers, run for 299 steps so it makes exactly
300 frames (one per step). The script times, in one process: building the figure once, the
frames alone (render + conversion to RGB, no file), and the whole export as the command
line does it (render + palette + encode + atomic write). The frames-only run is the
reference: the ratio says what encoding adds on top of drawing.

A benchmark, not a test: numbers depend on the machine (and on whoever else uses its
cores), so they are printed, not asserted. Exit code 0 always, unless the run fails.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OPTGUI_NO_SETTINGS", "1")
if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                             or os.environ.get("WAYLAND_DISPLAY")):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

TARGET_S = 20.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--format", choices=("gif", "mp4", "frames"), default="gif")
    parser.add_argument("--steps", type=int, default=299)
    parser.add_argument("--theme", choices=("dark", "light"), default="dark")
    args = parser.parse_args()

    from engine import get_surface, run_trajectory
    from engine.animation import frame_steps
    from engine.presets import get_preset
    from optgui.playground.figure import Figure, parse_size
    from optgui.playground.render import _ensure_app, figure_scene, save_animation

    _ensure_app()
    size = parse_size(args.size)
    preset = get_preset("course")
    surface = get_surface(preset.surface)
    trajs = [run_trajectory(surface, s, preset.start, args.steps) for s in preset.specs()]
    scene = figure_scene(surface, trajs, preset.start, args.steps)
    steps = frame_steps(scene.last_step)
    print(f"race: course exercise, {len(trajs)} runs, {args.steps} steps -> {len(steps)} frames"
          f" at {size[0]}x{size[1]}, {args.theme}")

    t0 = time.perf_counter()
    figure = Figure(scene, size, args.theme)
    build = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in figure.frames(steps):
        pass
    frames_only, frames_cpu = time.perf_counter() - t0, time.process_time() - c0
    figure.dispose()

    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / ("frames" if args.format == "frames" else f"race.{args.format}")
        t0, c0 = time.perf_counter(), time.process_time()
        count = save_animation(scene, args.format, target, size, args.theme)
        total, total_cpu = time.perf_counter() - t0, time.process_time() - c0
        if target.is_dir():
            nbytes = sum(p.stat().st_size for p in target.iterdir())
        else:
            nbytes = target.stat().st_size

    print(f"build the figure once    {build * 1000:8.0f} ms")
    print(f"frames only (reference)  {frames_only:8.2f} s   "
          f"{frames_only / len(steps) * 1000:6.1f} ms/frame   (CPU {frames_cpu:.2f} s)")
    print(f"whole {args.format:<6} export      {total:8.2f} s   "
          f"{total / count * 1000:6.1f} ms/frame   (CPU {total_cpu:.2f} s)   "
          f"{nbytes / 1e6:.2f} MB, {count} frames")
    print(f"export / frames only     {total / frames_only:8.2f} x")
    print(f"export / {TARGET_S:.0f} s target     {total / TARGET_S:8.2f} x   "
          f"({'within' if total <= TARGET_S else 'OVER'} the target)")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.1f} on {os.cpu_count()} cores (a busy machine inflates "
          f"wall times; CPU times are this process's own)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

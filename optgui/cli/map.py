"""``python main.py map``: basin maps and phase diagrams on the command line.

    # basin map: one run per start on an N×N grid over the view (default: the surface's)
    python main.py map --function himmelblau --optimizer "adam(lr=0.05)" --grid 256 \\
        --steps 500 [--view x0,x1,y0,y1] [--tol 1e-6] --csv map.csv --png map.png
    # phase diagram: one start, one or two swept hyperparameters (':log' for log spacing)
    python main.py map --function quadratic --start=-5,-2 \\
        --optimizer "sgd(lr=0.1,momentum=0.5)" --sweep lr=0.02:1.0:50 \\
        --sweep momentum=0:0.95:20 --steps 600 --csv sweep.csv --png sweep.png

The CSV has one row per run: start_w1, start_w2, one column per swept hyperparameter,
w1, w2 (the final point), loss, steps_to_tol (empty if never), minimum (index of the known
minimum reached, empty if none) and diverged (true/false). Every argument is checked before
anything is computed; bad arguments exit 2 with one line on stderr and write no file.
Qt is imported only for --png.
"""

from __future__ import annotations

import sys

from optgui.cli import CliError, _parse_point, _size, check_outputs

DESCRIPTION = """\
Compute a basin map (one run per start on a grid over the view: which minimum each start
reaches, how fast) or, with --sweep, a phase diagram (one start, one or two hyperparameters
swept: the final loss, with the analytic stability boundary where theory gives one)."""


def add_parser(sub) -> None:
    p = sub.add_parser("map", help="basin maps and hyperparameter phase diagrams",
                       description=DESCRIPTION)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--function", help="surface name (default: quadratic)")
    src.add_argument("--expr", help="custom surface in w1, w2 (or x, y), e.g. 'x**2 + 3*y**2'")
    p.add_argument("--optimizer", metavar="SPEC", required=False,
                   help="optimizer spec, e.g. 'adam(lr=0.05)'")
    p.add_argument("--grid", type=int, default=None,
                   help="basin map: starts per side (default 128)")
    p.add_argument("--steps", type=int, default=500, help="steps per run (default 500)")
    p.add_argument("--view", metavar="x0,x1,y0,y1",
                   help="basin map: the box of starts (default: the surface's view)")
    p.add_argument("--tol", type=float, default=1e-6,
                   help="converged when the gradient norm is below this (default 1e-6)")
    p.add_argument("--start", help="phase diagram: the start point 'w1,w2' "
                                   "(default: the surface's)")
    p.add_argument("--sweep", action="append", default=[], metavar="NAME=LO:HI:N[:log]",
                   help="sweep a hyperparameter (repeat once for a 2-D diagram), "
                        "e.g. lr=0.02:1.0:50 or lr=1e-3:1:40:log")
    p.add_argument("--color-by", choices=("loss", "steps"), default="loss",
                   help="phase diagram colours: log10 final loss (default) or steps to --tol")
    p.add_argument("--csv", help="write one row per run to this CSV file")
    p.add_argument("--png", help="write the picture to this PNG file")
    p.add_argument("--size", metavar="WxH", help="picture size in pixels (default 900x700)")
    p.set_defaults(func=run_map)


def _parse_view(text: str) -> tuple[float, float, float, float]:
    form = "--view must be four numbers 'x0,x1,y0,y1' with x0 < x1 and y0 < y1"
    parts = [p.strip() for p in text.split(",")]
    try:
        vals = tuple(float(p) for p in parts)
    except ValueError:
        raise CliError(f"{form}, got {text!r}") from None
    if len(vals) != 4 or not (vals[0] < vals[1] and vals[2] < vals[3]):
        raise CliError(f"{form}, got {text!r}")
    if not all(abs(v) < 1e12 for v in vals):
        raise CliError(f"{form} (finite), got {text!r}")
    return vals


def map_request(args):
    """The :class:`engine.maps.MapRequest` the arguments describe (CliError if bad)."""
    from engine import get_surface, parse_spec
    from engine.maps import MapRequest, check_request, parse_sweep

    try:
        if args.expr is not None:
            from engine.surfaces.expression import surface_from_expression

            surface = surface_from_expression(args.expr)
        else:
            surface = get_surface(args.function or "quadratic")
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if not args.optimizer:
        raise CliError("give an --optimizer SPEC (e.g. 'adam(lr=0.05)')")
    try:
        spec = parse_spec(args.optimizer)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    try:
        sweeps = tuple(parse_sweep(s) for s in args.sweep)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if sweeps and (args.grid is not None or args.view is not None):
        raise CliError(f"{'--grid' if args.grid is not None else '--view'} is for basin maps; "
                       "a phase diagram (--sweep) has one start (--start) and N values per sweep")
    if not sweeps and args.start is not None:
        raise CliError("--start is for phase diagrams (--sweep); a basin map starts from "
                       "every cell of --view")
    start = _parse_point(args.start) if args.start is not None else None
    view = _parse_view(args.view) if args.view is not None else None
    req = MapRequest(surface, spec, steps=args.steps,
                     grid=args.grid if args.grid is not None else 128,
                     view=view, start=start, sweeps=sweeps, tol=args.tol)
    try:
        return check_request(req)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def run_map(args) -> int:
    from engine.export import atomic_write_many
    from engine.maps import compute_map, describe, map_csv

    req = map_request(args)
    size = _size(args.size, (900, 700))
    if args.png and not args.png.lower().endswith(".png"):
        raise CliError(f"--png: the file name must end in .png, got {args.png!r}")
    check_outputs([(args.csv, "--csv"), (args.png, "--png")])

    progress = None
    if sys.stderr.isatty():
        def progress(done: int, total: int) -> bool:
            end = "\n" if done == total else ""
            print(f"\rmap: {done:,} / {total:,} runs", end=end, file=sys.stderr, flush=True)
            return True

    res = compute_map(req, progress)
    png = None
    if args.png:  # drawn before anything is written: a drawing problem leaves no file
        from optgui.maps.plot import render_map_image
        from optgui.playground.plots import png_bytes

        title = f"{req.spec} on {req.surface.title}"
        if req.sweeps:
            x, y = req.start or req.surface.start
            title += f", from ({x:g}, {y:g})"
        png = png_bytes(render_map_image(res, size, title, args.color_by))
    files = [(args.csv, map_csv(res))] if args.csv else []
    if png is not None:
        files.append((args.png, png))
    try:
        atomic_write_many(files)  # all or nothing
    except OSError as exc:
        raise CliError(f"{exc}; no file was written") from None
    print(describe(res))
    return 0

"""``python main.py train``: the vanishing-gradient lab on the command line.

    python main.py train [--optimizer SPEC ...] [--epochs N] [--batch-size 512] [--lr 0.01]
        [--layers 5] [--width 128] [--activation sigmoid] [--seed 42] [--data-dir DIR]
        [--download] [--train-limit N] [--csv metrics.csv] [--png curves.png]
        [--label-noise P] [--sharpness] [--sharpness-samples 2048] [--eps-sharpness 1e-3]
        [--landscape FILE.csv] [--landscape-png FILE.png] [--landscape-plane random|pca]
        [--landscape-grid 21] [--landscape-span 1.0] [--save-models DIR]

The dispatcher (:mod:`optgui.cli`) calls :func:`add_parser`, which registers the sub-command
with ``func=run_train``. This module imports neither torch nor Qt at import time (the
dispatcher imports it on every start); torch comes with the engine when the command runs,
and Qt only when ``--png`` asks for the curves picture.

Exit codes: 0 done (a diverged optimizer is a result, not an error); 1 training failed
(e.g. out of memory); 2 bad arguments or missing/corrupt data (one line on stderr, no file
written); 130 interrupted with Ctrl+C (no file written).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

PROG = "optgui train"
DESCRIPTION = """\
Train a deep MLP on Fashion-MNIST with several optimizers side by side (the course's
vanishing-gradient lab): same initial weights, same batches. Prints one line per optimizer
and epoch; --csv and --png save the metrics and the curves.

Optimizer specs are those of the 2-D playground, e.g. "adam(lr=0.01,beta1=0.9)"; a spec
without lr takes --lr. Default: the course's four, sgd(lr=0.01), sgd(lr=0.01,momentum=0.9),
rmsprop(lr=0.01), adam(lr=0.01,beta1=0.9,beta2=0.999).

Data is looked for in --data-dir, the app's data folder, /usr/share/datasets/fashion-mnist
(Debian package dataset-fashion-mnist) and ./data/FashionMNIST/raw; --download fetches it
through torchvision's mirrors if it is nowhere."""


def _int_in(lo: int, hi: int):
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be from {lo} to {hi}, got {value}")
        return value

    convert.__name__ = "integer"
    return convert


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise argparse.ArgumentTypeError(f"must be a fraction from 0 to 1, got {text}")
    return value


def _one_line_error(prog: str):
    def error(message: str):
        # argparse's default prints the whole usage first; scripts want one line to grep
        sys.stderr.write(f"{prog}: error: {message} (see {prog} --help)\n")
        sys.exit(2)

    return error


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``train`` sub-command to the dispatcher's ``subparsers``."""
    from engine.training import ACTIVATIONS, LANDSCAPE_PLANES, LIMITS  # torch-free

    p = subparsers.add_parser(
        "train", help="train a deep MLP on Fashion-MNIST with several optimizers",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--optimizer", action="append", dest="optimizers", metavar="SPEC",
                   help="an optimizer spec; repeat for several (default: the course's four)")
    p.add_argument("--epochs", type=_int_in(*LIMITS["epochs"]), default=10,
                   help="epochs to train (default 10; the course trains 300)")
    p.add_argument("--batch-size", type=_int_in(*LIMITS["batch_size"]), default=512,
                   help="mini-batch size (default 512)")
    p.add_argument("--lr", type=_positive_float, default=0.01,
                   help="learning rate of specs that do not set lr (default 0.01)")
    p.add_argument("--layers", type=_int_in(*LIMITS["layers"]), default=5,
                   help="hidden layers (default 5)")
    p.add_argument("--width", type=_int_in(*LIMITS["width"]), default=128,
                   help="units per hidden layer (default 128)")
    p.add_argument("--activation", choices=ACTIVATIONS, default="sigmoid",
                   help="hidden activation (default sigmoid)")
    p.add_argument("--seed", type=_int_in(*LIMITS["seed"]), default=42,
                   help="seed of the initial weights and batch order (default 42)")
    p.add_argument("--data-dir", metavar="DIR",
                   help="folder with the four Fashion-MNIST IDX files (raw or .gz)")
    p.add_argument("--download", action="store_true",
                   help="download Fashion-MNIST (into --data-dir or the app's data folder) "
                        "if it is not found")
    p.add_argument("--train-limit", type=_int_in(*LIMITS["train_limit"]), metavar="N",
                   help="train on the first N training samples only")
    p.add_argument("--csv", metavar="FILE", help="write the metrics per optimizer and epoch")
    p.add_argument("--png", metavar="FILE", help="save the curves as a PNG picture")
    p.add_argument("--threads", type=_int_in(*LIMITS["threads"]), metavar="N",
                   help="CPU threads for torch (default: all cores but one, at most 4)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where to train (default: CUDA if available)")
    sharp = p.add_argument_group(
        "sharpness and loss landscapes",
        "λ_max (power iteration on Hessian-vector products) and Keskar's ε-sharpness after "
        "every epoch, and loss-landscape slices (Li et al. 2018) around each optimizer's "
        "final weights, all on the first --sharpness-samples training images")
    sharp.add_argument("--label-noise", type=_fraction, default=0.0, metavar="P",
                       help="replace a seeded fraction P of the TRAINING labels by another "
                            "class (validation stays clean; default 0)")
    sharp.add_argument("--sharpness", action="store_true",
                       help="measure lambda_max and eps_sharpness after every epoch "
                            "(printed, and columns in --csv)")
    sharp.add_argument("--sharpness-samples", type=_int_in(*LIMITS["sharpness_samples"]),
                       default=2048, metavar="N",
                       help="training images (first N, after --train-limit) for sharpness "
                            "and landscapes (default 2048)")
    sharp.add_argument("--eps-sharpness", type=_positive_float, default=1e-3, metavar="EPS",
                       help="box size ε of the ε-sharpness (default 1e-3)")
    sharp.add_argument("--landscape", metavar="FILE.csv",
                       help="write each optimizer's loss-landscape slice: optimizer, alpha, "
                            "beta, loss, accuracy")
    sharp.add_argument("--landscape-png", metavar="FILE.png",
                       help="save the landscape panels (one per optimizer, one colour scale)")
    sharp.add_argument("--landscape-plane", choices=LANDSCAPE_PLANES, default=None,
                       help="random: two Gaussian filter-normalized directions (default); "
                            "pca: the first two principal directions of the training path")
    sharp.add_argument("--landscape-grid", type=_int_in(*LIMITS["landscape_grid"]),
                       default=None, metavar="N", help="N × N grid points (default 21)")
    sharp.add_argument("--landscape-span", type=_positive_float, default=None, metavar="S",
                       help="grid over [-S, S]² (PCA: times the path's extent; default 1)")
    sharp.add_argument("--save-models", metavar="DIR",
                       help="save each trained network's state_dict as DIR/<index>-<name>.pt")
    p.set_defaults(func=run_train)
    if type(p).error is argparse.ArgumentParser.error:
        # a plain argparse parser would print the whole usage; the dispatcher's own parser
        # class already reports errors on one line, so it is left alone
        p.error = _one_line_error(p.prog)  # type: ignore[method-assign]
    return p


class UsageError(Exception):
    """A bad argument or missing data: one line on stderr, exit code 2."""


def _check_outputs(args) -> None:
    from optgui.cli import check_outputs

    check_outputs([(args.csv, "--csv"), (args.png, "--png"), (args.landscape, "--landscape"),
                   (args.landscape_png, "--landscape-png")], UsageError)
    for path, option, suffix in ((args.png, "--png", ".png"),
                                 (args.landscape, "--landscape", ".csv"),
                                 (args.landscape_png, "--landscape-png", ".png")):
        if path and Path(path).suffix.lower() != suffix:
            raise UsageError(f"{option} {path}: the file name must end in {suffix}")


def _check_device(args) -> None:
    if args.device != "cuda":
        return
    from engine.training import resolve_device

    try:
        resolve_device("cuda")
    except ValueError as exc:
        raise UsageError(f"{exc} (use --device cpu, or auto to use CUDA when present)") from None


def _check_folder(path: str | None, option: str) -> None:
    if path is None:
        return
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise UsageError(f"{option} {path} is a file; give a folder")
    parent = target if target.is_dir() else target.parent
    if not parent.is_dir():
        raise UsageError(f"{option} {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"{option} {path}: folder {parent} is not writable")


def _landscape_plane(args) -> str | None:
    wanted = args.landscape or args.landscape_png
    if not wanted:
        given = [name for name, value in (("--landscape-plane", args.landscape_plane),
                                          ("--landscape-grid", args.landscape_grid),
                                          ("--landscape-span", args.landscape_span))
                 if value is not None]
        if given:
            raise UsageError(f"{given[0]} needs --landscape FILE.csv or --landscape-png FILE")
        return None
    return args.landscape_plane or "random"


def _config(args):
    from engine.training import DEFAULT_OPTIMIZERS, TrainConfig

    extra = {}
    if args.landscape_grid is not None:
        extra["landscape_grid"] = args.landscape_grid
    if args.landscape_span is not None:
        extra["landscape_span"] = args.landscape_span
    try:
        return TrainConfig(
            optimizers=tuple(args.optimizers or DEFAULT_OPTIMIZERS), lr=args.lr,
            epochs=args.epochs, batch_size=args.batch_size, layers=args.layers,
            width=args.width, activation=args.activation, seed=args.seed,
            train_limit=args.train_limit, data_dir=args.data_dir, threads=args.threads,
            device=None if args.device == "auto" else args.device,
            label_noise=args.label_noise, sharpness=args.sharpness,
            sharpness_samples=args.sharpness_samples, eps_sharpness=args.eps_sharpness,
            landscape=_landscape_plane(args), save_models=args.save_models, **extra,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _load_data(args):
    from engine.data import DataError, download_fashion_mnist, find_dataset, load_dataset

    try:
        try:
            location = find_dataset(args.data_dir)
        except DataError:
            if not args.download:
                raise
            root = Path(args.data_dir) if args.data_dir else None
            print(f"downloading Fashion-MNIST into {root or 'the app data folder'} …",
                  file=sys.stderr)
            location = download_fashion_mnist(root, _download_progress())
            print(file=sys.stderr)
        return load_dataset(location)
    except DataError as exc:
        raise UsageError(str(exc)) from None


def _download_progress():
    tty = sys.stderr.isatty()
    last = [-1]

    def progress(done: int, total: int, name: str) -> None:
        pct = int(100 * done / total) if total else 0
        if tty and pct != last[0]:
            sys.stderr.write(f"\r  {pct:3d}%  {done / 1e6:5.1f} MB  {name}   ")
            sys.stderr.flush()
        last[0] = pct

    return progress


def _format_epoch(r, epochs: int, width: int) -> str:
    norms = r.grad_norms
    ratio = f"  last/first {norms[-1] / norms[0]:.3g}×" if norms and norms[0] > 0 else ""
    return (
        f"{r.optimizer:<{width}}  epoch {r.epoch:>{len(str(epochs))}}/{epochs}  "
        f"train loss {r.train_loss:.4f} acc {100 * r.train_acc:5.2f}%  "
        f"val loss {r.val_loss:.4f} acc {100 * r.val_acc:5.2f}%  "
        f"grad norm first {norms[0]:.2e} last {norms[-1]:.2e}{ratio}"
        + (f"  λmax {r.lambda_max:.4g} (2/η {2 / r.lr:.4g})  ε-sharpness "
           f"{r.eps_sharpness:.3g}%  gap {100 * r.gap:+.2f}%"
           if math.isfinite(r.lambda_max) and math.isfinite(r.lr) and r.lr > 0
           else (f"  λmax {r.lambda_max:.4g}  ε-sharpness {r.eps_sharpness:.3g}%"
                 if math.isfinite(r.lambda_max) else ""))
    )


def run_train(args) -> int:
    """Run the ``train`` sub-command; returns the exit code."""
    try:
        _check_outputs(args)
        _check_folder(args.save_models, "--save-models")
        config = _config(args)
        _check_device(args)
        data = _load_data(args)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2

    from engine.training import (
        BatchProgress,
        Diverged,
        EpochResult,
        Finished,
        LandscapeRow,
        TrainingHistory,
        TrainingStarted,
        format_duration,
        train,
        write_landscape_csv,
    )

    history = TrainingHistory()
    events = train(config, data)
    tty = sys.stderr.isatty()
    width = max(len(label) for label in config.labels)
    try:
        for event in events:
            history.add(event)
            if isinstance(event, TrainingStarted):
                print(f"{len(event.optimizers)} optimizer(s), {event.n_train} training and "
                      f"{event.n_val} validation samples from {event.data_source}, "
                      f"{event.parameters} weights per model, device {event.device}",
                      file=sys.stderr)
            elif isinstance(event, BatchProgress) and tty:
                sys.stderr.write(f"\r  {100 * event.samples_done / event.samples_total:5.1f}%  "
                                 f"{event.samples_per_second:,.0f} samples/s  "
                                 f"{format_duration(event.seconds_left)} left ")
                sys.stderr.flush()
            elif isinstance(event, EpochResult):
                if tty:
                    sys.stderr.write("\r\033[K")
                print(_format_epoch(event, config.epochs, width), flush=True)
            elif isinstance(event, Diverged):
                print(f"{event.optimizer}: diverged in epoch {event.epoch} "
                      f"({event.reason}); the others continue", file=sys.stderr)
            elif isinstance(event, LandscapeRow) and tty:
                sys.stderr.write(f"\r  landscape of {event.optimizer}: row {event.j + 1}"
                                 f"/{event.rows} ")
                sys.stderr.flush()
            elif isinstance(event, Finished):
                if tty:
                    sys.stderr.write("\r\033[K")
                print(f"done in {format_duration(event.elapsed)}, "
                      f"{event.samples_per_second:,.0f} samples/s", file=sys.stderr)
    except KeyboardInterrupt:
        events.close()
        print(f"\n{PROG}: interrupted; nothing written", file=sys.stderr)
        return 130
    except (RuntimeError, MemoryError) as exc:  # e.g. CUDA out of memory
        events.close()
        print(f"{PROG}: training failed: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1

    # both files are rendered first and written all or nothing (a full disk leaves neither)
    from engine.export import atomic_write_many

    files: list[tuple[str, str | bytes]] = []
    try:
        if args.csv:
            files.append((args.csv, history.csv_text()))
        if args.png:
            from optgui.lab.plots import curves_png

            files.append((args.png, curves_png(history)))
        atomic_write_many(files)
    except OSError as exc:
        print(f"{PROG}: error: {exc}; no file was written", file=sys.stderr)
        return 2
    if args.csv:
        print(f"metrics written to {args.csv}", file=sys.stderr)
    if args.png:
        print(f"curves written to {args.png}", file=sys.stderr)
    try:
        if args.landscape:
            write_landscape_csv(args.landscape, history)
            print(f"landscape written to {args.landscape}", file=sys.stderr)
        if args.landscape_png:
            from optgui.lab.landscape import save_landscape_png

            save_landscape_png(history, args.landscape_png)
            print(f"landscape picture written to {args.landscape_png}", file=sys.stderr)
    except OSError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    if args.save_models and history.finished is not None and not history.finished.stopped:
        print(f"models written to {args.save_models}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry (``python -m optgui.cli.train …``), same as ``main.py train …``."""
    parser = argparse.ArgumentParser(prog="optgui")
    parser.error = _one_line_error("optgui")  # type: ignore[method-assign]
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(["train", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

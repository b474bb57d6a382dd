"""Training throughput of the lab against the course's loop and a bare loop, in one process.

    .venv/bin/python bench/bench_training.py [--epochs 1] [--train-limit N] [--repeat 1]
        [--optimizer SPEC ...] [--threads 2] [--data-dir DIR]

Three loops train the same model (5 × 128 sigmoid, seed 42, batch 512) with the same
optimizers (default: the course's four) on Fashion-MNIST, and each evaluates on the 10,000
test images after every epoch, as the lab does:

(a) course  the course's script: ``torchvision.datasets.FashionMNIST`` with ``ToTensor``
            through a ``DataLoader`` (batch 512, shuffled), ``.item()`` per batch for the
            running loss and accuracy, one optimizer after the other. torchvision reads a
            temporary root holding the raw files unpacked from the data we found.
(b) bare    the least a training loop can do: pre-loaded float tensors, a shuffled index
            per epoch, forward / backward / step, no metrics during training.
(c) ours    ``engine.training.train``: all optimizers interleaved per batch, streamed
            events, epoch metrics and per-layer gradient norms.

It prints samples/s (training samples × optimizers × epochs over wall time, evaluation
included) and the ratios ours/course (target ≥ 2.5) and ours/bare (target ≥ 0.85). With
``--repeat N`` the loops alternate N times and the best time of each counts, which damps
noise from other jobs on a shared machine. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from engine.data import FILES, find_dataset, load_dataset  # noqa: E402
from engine.training import (  # noqa: E402
    DEFAULT_OPTIMIZERS,
    TrainConfig,
    build_model,
    default_threads,
    make_torch_optimizer,
    train,
)


def torchvision_root(location, limit: int | None) -> tempfile.TemporaryDirectory:
    """A temporary torchvision root with the four files unpacked (as its download leaves
    them); with ``limit`` the training files are cut to the first N samples."""
    tmp = tempfile.TemporaryDirectory(prefix="bench-fmnist-")
    raw = Path(tmp.name) / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for role, name in FILES.items():
        src = location.files[role]
        data = src.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        if limit is not None and role.startswith("train"):
            n = int.from_bytes(data[4:8], "big")
            keep = min(limit, n)
            header = 16 if role.endswith("images") else 8
            item = 28 * 28 if role.endswith("images") else 1
            data = data[:4] + keep.to_bytes(4, "big") + data[8:header] + \
                data[header:header + keep * item]
        (raw / name).write_bytes(data)
    return tmp


def course_loop(config: TrainConfig, specs, root: str) -> float:
    """The course's script, timed from the first epoch to the last evaluation."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    to_tensor = transforms.ToTensor()
    train_set = datasets.FashionMNIST(root, train=True, download=False, transform=to_tensor)
    test_set = datasets.FashionMNIST(root, train=False, download=False, transform=to_tensor)
    torch.manual_seed(config.seed)
    train_loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=config.batch_size, shuffle=False)
    start = time.perf_counter()
    for spec in specs:
        model = build_model(config)
        opt = make_torch_optimizer(spec, model.parameters())
        for _ in range(config.epochs):
            model.train()
            running, correct, total = 0.0, 0, 0
            for images, labels in train_loader:
                opt.zero_grad()
                out = model(images.view(images.shape[0], -1))
                loss = F.cross_entropy(out, labels)
                loss.backward()
                opt.step()
                running += loss.item() * images.size(0)
                correct += (out.argmax(1) == labels).sum().item()
                total += labels.size(0)
            model.eval()
            with torch.no_grad():
                val_loss, val_correct = 0.0, 0
                for images, labels in test_loader:
                    out = model(images.view(images.shape[0], -1))
                    val_loss += F.cross_entropy(out, labels, reduction="sum").item()
                    val_correct += (out.argmax(1) == labels).sum().item()
    return time.perf_counter() - start


def bare_loop(config: TrainConfig, specs, data) -> float:
    """Pre-loaded tensors, nothing but the training steps (and one evaluation per epoch)."""
    n = config.train_limit or data.n_train
    X = data.train_x[:n].float().div_(255)
    Y = data.train_y[:n]
    Xv, Yv = data.test_x.float().div_(255), data.test_y
    bs = config.batch_size
    start = time.perf_counter()
    for spec in specs:
        model = build_model(config)
        opt = make_torch_optimizer(spec, model.parameters())
        gen = torch.Generator().manual_seed(config.seed)
        for _ in range(config.epochs):
            perm = torch.randperm(n, generator=gen)
            for b in range(0, n, bs):
                idx = perm[b:b + bs]
                loss = F.cross_entropy(model(X[idx]), Y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.no_grad():
                out = model(Xv)
                float(F.cross_entropy(out, Yv)), int((out.argmax(1) == Yv).sum())
    return time.perf_counter() - start


def our_loop(config: TrainConfig, data) -> float:
    start = time.perf_counter()
    for _ in train(config, data):
        pass
    return time.perf_counter() - start


def warm_up(config: TrainConfig, data) -> None:
    """A few batches through every code path, so first-call costs are not timed."""
    small = TrainConfig(**{**config.__dict__, "epochs": 1,
                           "train_limit": 4 * config.batch_size})
    our_loop(small, data)
    bare_loop(small, small.run_specs(), data)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-limit", type=int, default=None, metavar="N")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--optimizer", action="append", dest="optimizers", metavar="SPEC")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for all three loops (default: the lab's default)")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)

    threads = args.threads or default_threads()
    torch.set_num_threads(threads)
    location = find_dataset(args.data_dir)
    data = load_dataset(location)
    config = TrainConfig(optimizers=tuple(args.optimizers or DEFAULT_OPTIMIZERS),
                         epochs=args.epochs, train_limit=args.train_limit, device="cpu",
                         threads=threads)
    specs = config.run_specs()
    n = min(args.train_limit or data.n_train, data.n_train)
    samples = n * len(specs) * args.epochs
    print(f"data: {location.describe()}; {n} training samples × {len(specs)} optimizers × "
          f"{args.epochs} epoch(s) = {samples} samples per loop; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print("optimizers:", ", ".join(config.labels))

    tmp = torchvision_root(location, args.train_limit)
    try:
        warm_up(config, data)
        best = {"course": float("inf"), "bare": float("inf"), "ours": float("inf")}
        for r in range(args.repeat):
            times = {
                "course": course_loop(config, specs, tmp.name),
                "bare": bare_loop(config, specs, data),
                "ours": our_loop(config, data),
            }
            print(f"run {r + 1}: " + ", ".join(f"{k} {v:.2f} s" for k, v in times.items()))
            for k, v in times.items():
                best[k] = min(best[k], v)
    finally:
        tmp.cleanup()

    rate = {k: samples / v for k, v in best.items()}
    for k, title in (("course", "(a) course loop (ToTensor + DataLoader)"),
                     ("bare", "(b) bare loop over pre-loaded tensors"),
                     ("ours", "(c) engine.training.train")):
        print(f"{title:<42} {best[k]:7.2f} s  {rate[k]:10,.0f} samples/s")
    vs_course, vs_bare = rate["ours"] / rate["course"], rate["ours"] / rate["bare"]
    print(f"ours / course = {vs_course:.2f}  (target >= 2.5: "
          f"{'met' if vs_course >= 2.5 else 'NOT met'})")
    print(f"ours / bare   = {vs_bare:.2f}  (target >= 0.85: "
          f"{'met' if vs_bare >= 0.85 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

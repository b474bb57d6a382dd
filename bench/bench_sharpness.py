"""Cost of the sharpness measures and of a loss-landscape slice, in one process.

    .venv/bin/python bench/bench_sharpness.py [--samples 2048] [--grid 41] [--threads 1]
        [--train-steps 200] [--data-dir DIR]

The lab's default network (5 × 128 sigmoid, seed 42) is trained for ``--train-steps`` Adam
steps (batch 512) on Fashion-MNIST, so the Hessian is that of a network part-way through
training, not of its random start. Then, on the first ``--samples`` training images:

* λ_max by power iteration on Hessian-vector products (tolerance 1e-3): seconds,
  iterations, and the ratio to one gradient on the same samples (the reference);
  target < 5 s.
* ε-sharpness (10 ascent steps): seconds.
* a ``--grid`` × ``--grid`` random-plane slice (filter-normalized): total seconds (target
  < 15 s), the first row's latency (what the lab waits before the first row is drawn), and
  the speed-up over evaluating one row point by point (the reference, measured on one row).

Without the real data it falls back to random images (the timing is the same; λ_max is
not meaningful then). Not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from engine.training import TrainConfig, build_model  # noqa: E402
from engine.training import landscape as ls  # noqa: E402
from engine.training import sharpness as sh  # noqa: E402


def load(data_dir, n):
    try:
        from engine.data import load_fashion_mnist

        data = load_fashion_mnist(data_dir)
        return data.train_x, data.train_y, data.location.describe()
    except Exception as exc:  # noqa: BLE001 (a benchmark falls back, it never stops)
        gen = torch.Generator().manual_seed(0)
        x = torch.randint(0, 256, (max(n, 4096), 28, 28), generator=gen, dtype=torch.uint8)
        y = torch.randint(0, 10, (max(n, 4096),), generator=gen)
        return x, y, f"random images ({exc})"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=2048)
    ap.add_argument("--grid", type=int, default=41)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train-steps", type=int, default=200)
    ap.add_argument("--data-dir")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    train_x, train_y, source = load(args.data_dir, args.samples)
    model = build_model(TrainConfig())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(1)
    t0 = time.perf_counter()
    for _ in range(args.train_steps):
        idx = torch.randint(0, len(train_x), (512,), generator=gen)
        xb = train_x[idx].reshape(512, -1).float() / 255
        opt.zero_grad()
        F.cross_entropy(model(xb), train_y[idx]).backward()
        opt.step()
    print(f"data: {source}; 5 × 128 sigmoid trained {args.train_steps} Adam steps in "
          f"{time.perf_counter() - t0:.1f} s; {args.threads} thread(s)")
    x, y = sh.sharpness_subset(train_x, train_y, args.samples)

    # reference: one gradient on the same samples
    params = list(model.parameters())
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        torch.autograd.grad(F.cross_entropy(model(x), y), params)
        best = min(best, time.perf_counter() - t)
    grad_time = best

    t = time.perf_counter()
    eig = sh.lambda_max(model, x, y)
    lam_time = time.perf_counter() - t
    print(f"λ_max = {eig.value:.5g} ({eig.iterations} iterations, "
          f"{'converged' if eig.converged else 'NOT converged'} to 1e-3) on {len(x)} samples: "
          f"{lam_time:.2f} s  = {lam_time / grad_time:.0f} × one gradient ({grad_time * 1e3:.1f} "
          f"ms)  [target < 5 s]")

    t = time.perf_counter()
    eps = sh.eps_sharpness(model, x, y)
    print(f"ε-sharpness = {eps:.4g} % (ε 1e-3, 10 ascent steps): "
          f"{time.perf_counter() - t:.2f} s")

    plane = ls.random_plane(model, seed=0)
    axis = ls.grid_axis(args.grid, 1.0)
    t = time.perf_counter()
    first = None
    for j, _losses, _acc in ls.slice_rows(model, x, y, plane, axis, axis):
        if j == 0:
            first = time.perf_counter() - t
    total = time.perf_counter() - t

    # reference: one row evaluated point by point (weights rewritten per point)
    originals = [p.detach().clone() for p in params]
    t = time.perf_counter()
    with torch.no_grad():
        for a in axis:
            for p, w, d1, d2 in zip(params, originals, plane.d1, plane.d2, strict=True):
                p.copy_(w + float(a) * d1 + float(axis[0]) * d2)
            F.cross_entropy(model(x), y)
        for p, w in zip(params, originals, strict=True):
            p.copy_(w)
    row_naive = time.perf_counter() - t
    print(f"{args.grid} × {args.grid} slice on {len(x)} samples: {total:.2f} s "
          f"[target < 15 s]; first row after {first * 1e3:.0f} ms; point by point would take "
          f"≈ {row_naive * args.grid:.2f} s (batched is {row_naive * args.grid / total:.1f} × "
          f"faster)")
    assert np.isfinite(total)


if __name__ == "__main__":
    main()

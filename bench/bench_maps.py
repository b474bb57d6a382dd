"""Speed and memory of maps (engine.maps), against references in one process.

    .venv/bin/python bench/bench_maps.py [--grid 256] [--steps 500] [--repeat 3] [--mem-grid 512]

(1) A basin map: ``compute_map`` of ``grid × grid`` starts over Himmelblau's view, Adam
    (lr=0.05), ``steps`` steps, against ``run_trajectory`` called once per start (timed on a
    sample of starts and scaled to the grid). Targets: 256² × 500 steps under 2 s, and ≥ 300×
    faster per run than the loop. A few sampled cells are checked against their single runs.
(2) The coarse map the window shows first (32², same steps): well under a second.
(3) Memory: the peak traced by tracemalloc while a ``mem-grid``² map is computed, against
    what keeping every point of every run would take. Bounded: O(cells), not O(cells·steps).

Wall times are the best of ``--repeat``; the process CPU time (all threads) is printed
beside them (on a shared, busy machine it is what the work itself costs). Not a test: the
numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from engine import get_surface, parse_spec, run_trajectory  # noqa: E402
from engine.maps import COARSE, MapRequest, compute_map  # noqa: E402
from engine.trajectory import default_workers  # noqa: E402


def best(fn, repeat: int):
    """(best wall time, best CPU time, last result) of ``repeat`` calls."""
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus), out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=256)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sample", type=int, default=40, help="single runs timed (default 40)")
    parser.add_argument("--mem-grid", type=int, default=512)
    parser.add_argument("--mem-steps", type=int, default=100)
    args = parser.parse_args(argv)

    surface, spec = get_surface("himmelblau"), parse_spec("adam(lr=0.05)")
    req = MapRequest(surface, spec, steps=args.steps, grid=args.grid)
    n = args.grid ** 2
    print(f"basin map: Adam(lr=0.05) on Himmelblau, {args.grid}² = {n:,} starts × "
          f"{args.steps} steps, {default_workers()} worker threads")

    wall, cpu, res = best(lambda: compute_map(req), args.repeat)
    print(f"  compute_map:               {wall:7.3f} s wall  ({cpu:.3f} s CPU)  "
          f"target < 2 s: {'yes' if wall < 2 else 'NO'}")

    rng = np.random.default_rng(0)
    picks = rng.choice(n, size=min(args.sample, n), replace=False)
    t0, c0 = time.perf_counter(), time.process_time()
    for i in picks:
        traj = run_trajectory(surface, spec, res.starts[i], args.steps)
        if not np.array_equal(traj.points[-1], res.points[i]):
            print(f"  MISMATCH at cell {i}: {traj.points[-1]} vs {res.points[i]}")
            return 1
    per_run = (time.perf_counter() - t0) / len(picks)
    per_run_cpu = (time.process_time() - c0) / len(picks)
    loop = per_run * n
    print(f"  run_trajectory loop:       {loop:7.1f} s wall  ({per_run_cpu * n:.1f} s CPU) "
          f"(scaled from {len(picks)} runs: {per_run * 1e3:.1f} ms a run)")
    print(f"  per run: map {wall / n * 1e6:.2f} µs vs loop {per_run * 1e6:.0f} µs: "
          f"{loop / wall:.0f}× faster (CPU: {per_run_cpu * n / cpu:.0f}×)  target ≥ 300×: "
          f"{'yes' if loop / wall >= 300 else 'NO'}")
    print(f"  {len(picks)} sampled cells end where their single runs end, bit for bit")

    coarse = req.at_size(COARSE)
    wall, cpu, _ = best(lambda: compute_map(coarse), args.repeat)
    print(f"coarse map first ({COARSE}², {args.steps} steps): {wall:.3f} s wall ({cpu:.3f} s CPU)")

    mem = MapRequest(surface, spec, steps=args.mem_steps, grid=args.mem_grid)
    cells = args.mem_grid ** 2
    tracemalloc.start()
    compute_map(mem)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    paths = cells * (args.mem_steps + 1) * 2 * 8
    print(f"memory: {args.mem_grid}² = {cells:,} runs × {args.mem_steps} steps: peak "
          f"{peak / 1e6:.1f} MB traced ({peak / cells:.0f} bytes a run); every point of every "
          f"run would be {paths / 1e6:.0f} MB (× {(args.mem_steps + 1):,} steps), and "
          f"{cells * (args.steps + 1) * 16 / 1e9:.1f} GB at {args.steps} steps")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

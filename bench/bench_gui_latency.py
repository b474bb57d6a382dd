"""How long does the window's event loop stall while the lab trains? (issue 4: never > 50 ms)

    python bench/bench_gui_latency.py                  # synthetic IDX data written to a temp dir
    python bench/bench_gui_latency.py --real --train-limit 10000 --epochs 2

A 10 ms QTimer probe runs in the GUI thread; every gap between two ticks beyond 10 ms is a
stall (the loop was busy or starved). The probe runs first with the window idle (the
reference, same process), then while the lab tab trains (from Start to the worker
thread's end), and the script prints max / percentiles per phase. The training phase is
split at the first TrainingStarted event: before it the worker imports torch and loads
the data; after it, the optimizers train and events stream into the plots.

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

import numpy as np  # noqa: E402

PROBE_MS = 10


def write_synthetic(folder: Path, n_train: int, n_test: int, seed: int = 0) -> None:
    """Four raw IDX files of a learnable toy set (class k lights up rows 2k+4…2k+6)."""
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, k in enumerate(labels):
            images[i, 2 * k + 4: 2 * k + 7, 4:24] = 220
        head = np.array([2051, n, 28, 28], ">u4").tobytes()
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(head + images.tobytes())
        head = np.array([2049, n], ">u4").tobytes()
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(head + labels.tobytes())


class Probe:
    """Records the gaps between ticks of a precise 10 ms timer, per named phase."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.phase = "idle"
        self.gaps: dict[str, list[float]] = {}
        self.last = time.perf_counter()
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(PROBE_MS)
        self.timer.timeout.connect(self.tick)

    def start(self, phase: str) -> None:
        self.phase = phase
        self.last = time.perf_counter()
        if not self.timer.isActive():
            self.timer.start()

    def switch(self, phase: str) -> None:
        self.phase = phase

    def tick(self) -> None:
        now = time.perf_counter()
        self.gaps.setdefault(self.phase, []).append(now - self.last)
        self.last = now


def summary(name: str, gaps: list[float]) -> str:
    stall = np.maximum(np.asarray(gaps) * 1000.0 - PROBE_MS, 0.0)
    if stall.size == 0:
        return f"{name:<28} (no ticks)"
    p50, p99, p999 = np.percentile(stall, [50, 99, 99.9])
    return (f"{name:<28} {stall.size:6d} ticks  max {stall.max():6.1f} ms  p50 {p50:5.1f}  "
            f"p99 {p99:5.1f}  p99.9 {p999:5.1f}  >50 ms: {int((stall > 50).sum())}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", action="store_true",
                        help="use the real Fashion-MNIST (found as the lab finds it)")
    parser.add_argument("--data-dir", help="folder with the four IDX files")
    parser.add_argument("--train-limit", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--n-train", type=int, default=12_000,
                        help="synthetic training samples (default 12000)")
    parser.add_argument("--idle-seconds", type=float, default=3.0)
    args = parser.parse_args()

    from PySide6.QtCore import QTimer

    from optgui.app import create_application
    from optgui.mainwindow import MainWindow

    app = create_application()
    tmp = tempfile.TemporaryDirectory(prefix="optgui-bench-")
    data_dir = args.data_dir
    if not args.real and data_dir is None:
        data_dir = tmp.name
        write_synthetic(Path(data_dir), args.n_train, 2000)

    window = MainWindow(use_settings=False)
    window.resize(1600, 1000)
    window.show()
    window.tabs.setCurrentWidget(window.lab)
    lab = window.lab
    s = lab.settings
    s.epochs.setValue(args.epochs)
    if data_dir:
        s.data_dir.setText(str(data_dir))
        s.dataFolderChanged.emit()
    if args.train_limit:
        s.subset.setChecked(True)
        s.limit.setValue(args.train_limit)

    probe = Probe()
    info: dict[str, object] = {}

    def on_message(text: str) -> None:
        info.setdefault("messages", []).append(text)

    def on_events(_gen, events) -> None:
        if probe.phase == "start-up (torch, data)" and any(e.kind == "started" for e in events):
            probe.switch("training (streaming)")

    def start_training() -> None:
        probe.switch("start-up (torch, data)")
        info["t0"] = time.perf_counter()
        if not lab.start():
            print("could not start:", lab.message_text(), file=sys.stderr)
            app.quit()
            return
        lab.job.worker.events.connect(on_events)

    def finished() -> None:
        info["t1"] = time.perf_counter()
        probe.switch("after")
        QTimer.singleShot(200, app.quit)

    lab.messageShown.connect(on_message)
    lab.trainingFinished.connect(finished)
    app.processEvents()
    probe.start("idle")
    QTimer.singleShot(int(args.idle_seconds * 1000), start_training)
    app.exec()
    probe.timer.stop()

    h = lab.history
    if lab.message_text():
        print("message:", lab.message_text())
    if h.started is None or h.finished is None:
        print("training did not run to the end", file=sys.stderr)
        window.close()
        return 1
    print(f"lab run: {len(h.started.optimizers)} optimizers, {h.started.n_train} training "
          f"samples, {h.finished.epochs_completed} epochs, {h.finished.samples_per_second:,.0f} "
          f"samples/s, {len(h.batches)} batch events; data from {h.started.data_source}")
    print(f"event-loop stall beyond the {PROBE_MS} ms probe interval:")
    for phase in ("idle", "start-up (torch, data)", "training (streaming)"):
        print("  " + summary(phase, probe.gaps.get(phase, [])))
    idle = max(np.asarray(probe.gaps.get("idle", [0.01])) * 1000 - PROBE_MS)
    train = max(np.asarray(probe.gaps.get("training (streaming)", [0.01])) * 1000 - PROBE_MS)
    print(f"max stall while training / idle max: {train:.1f} ms / {idle:.1f} ms "
          f"(budget 50 ms: {'OK' if train <= 50 else 'EXCEEDED'})")
    window.close()
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())

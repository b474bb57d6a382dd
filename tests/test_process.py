"""engine.process without Qt: a job in a child process, its commands and its end.

The window's side of the same protocol is tested in tests/test_gui_lab.py; here the plain
:class:`engine.process.ChildJob` is driven directly, as a script (or the sam helper's new
events) would use it. Each test waits on what the child sends, never on sleeps; the only
polling is for a process to disappear, with a deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from engine.process import (
    JobEnded,
    JobFailed,
    JobPaused,
    Pause,
    Resume,
    Stop,
    Train,
    describe_exit,
    launch,
)
from engine.training import BatchProgress, EpochResult, Finished, TrainConfig, TrainingStarted


def tiny(toy_dir, **kw) -> TrainConfig:
    base = dict(layers=2, width=8, batch_size=64, epochs=2, data_dir=str(toy_dir), threads=1)
    return TrainConfig(**(base | kw))


def gone(pid: int, within: float = 10.0) -> bool:
    """True once ``pid`` no longer runs (or is a zombie), polling until ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().split(") ")[-1][:1] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def events_of(job) -> list:
    return [e for batch in job.batches() for e in batch]


def test_a_training_streams_plain_events_and_ends_cleanly(toy_dir):
    job = launch(Train(tiny(toy_dir)))
    events = events_of(job)
    kinds = [type(e) for e in events]
    assert kinds[0] is TrainingStarted and kinds[-1] is JobEnded
    assert kinds[-2] is Finished and not events[-2].stopped
    assert sum(k is EpochResult for k in kinds) == 8  # the course's four optimizers × 2 epochs
    assert BatchProgress in kinds
    assert job.exit_status() == "" and job.proc.returncode == 0


def test_pause_is_acknowledged_resume_goes_on_and_stop_ends_the_job(toy_dir):
    job = launch(Train(tiny(toy_dir, epochs=5000)))
    seen: list = []
    batches = job.batches()
    for batch in batches:
        seen += batch
        if any(isinstance(e, EpochResult) for e in seen):
            break
    job.send(Pause())
    for batch in batches:
        seen += batch
        if any(isinstance(e, JobPaused) and e.paused for e in batch):
            break
    n_paused = len(seen)
    job.send(Resume())
    for batch in batches:
        seen += batch
        if sum(isinstance(e, BatchProgress) for e in seen[n_paused:]) >= 3:
            break
    assert any(isinstance(e, JobPaused) and not e.paused for e in seen[n_paused:])
    job.send(Stop())
    seen += [e for batch in batches for e in batch]
    finished = [e for e in seen if isinstance(e, Finished)]
    assert finished and finished[0].stopped
    assert isinstance(seen[-1], JobEnded) and job.exit_status() == ""


def test_a_failing_job_sends_one_readable_line(toy_dir, tmp_path):
    job = launch(Train(tiny(tmp_path / "no-such-folder")))
    events = events_of(job)
    failed = [e for e in events if isinstance(e, JobFailed)]
    assert len(failed) == 1 and failed[0].category == "data"
    assert failed[0].message.startswith("Data problem: ") and "\n" not in failed[0].message
    assert job.exit_status() == ""  # a failure is reported, the process ends normally


def test_a_killed_child_is_described_by_its_signal(toy_dir):
    job = launch(Train(tiny(toy_dir, epochs=5000)))
    for batch in job.batches():
        if any(isinstance(e, EpochResult) for e in batch):
            os.kill(job.pid, signal.SIGKILL)
            break
    for _ in job.batches():
        pass
    assert job.exit_status() == "was killed (SIGKILL): perhaps the system ran out of memory"


@pytest.mark.parametrize("code, words", [
    (-signal.SIGSEGV, "crashed (SIGSEGV, a segmentation fault in native code)"),
    (-signal.SIGKILL, "was killed (SIGKILL)"),
    (-signal.SIGUSR1, "was ended by SIGUSR1"),
    (3, "ended unexpectedly (exit code 3)"),
])
def test_exit_codes_in_words(code, words):
    assert describe_exit(code).startswith(words)


def test_the_child_ends_when_its_parent_is_killed(toy_dir):
    """No training is ever left behind: a parent killed with SIGKILL (no clean-up at all)
    takes its child with it."""
    script = (
        "import sys, time\n"
        "from engine.process import launch, Train\n"
        "from engine.training import TrainConfig\n"
        f"job = launch(Train(TrainConfig(layers=2, width=8, batch_size=64, epochs=5000, "
        f"data_dir={str(toy_dir)!r}, threads=1)))\n"
        "print(job.pid, flush=True)\n"
        "next(job.batches())\n"  # the child runs (it sent its first events)
        "print('running', flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              text=True)
    try:
        child = int(parent.stdout.readline())
        assert parent.stdout.readline().strip() == "running"
        assert not gone(child, within=0.2)
        parent.kill()
        parent.wait()
        assert gone(child), "the training process outlived its window"
    finally:
        parent.kill()

"""Functions the lab's child process calls before its job (``engine.process.Prelude``).

The child is a separate Python process, so a test's ``monkeypatch`` cannot reach it; these
change the child the same way, from inside. Each is named by a test as
``Prelude("childhooks", name, args, path=<tests folder>)``.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

TESTS = str(Path(__file__).resolve().parent)


def fail_in_evaluate(kind: str) -> None:
    """Validation raises: "oom" a CUDA out-of-memory error, "bug" a ZeroDivisionError."""
    from engine.training import loop as T  # the training loop itself

    def fail(*args, **kwargs):
        if kind == "oom":
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        raise ZeroDivisionError("a bug")

    T._evaluate = fail


def crash_in_evaluate(after_epochs: int = 1) -> None:
    """A real native crash (SIGSEGV) in the child when it validates epoch ``after_epochs``+1."""
    import ctypes

    from engine.training import loop as T

    real = T._evaluate
    calls = [0]

    def crash(*args, **kwargs):
        calls[0] += 1
        if calls[0] > after_epochs:
            import faulthandler
            import time

            time.sleep(0.5)  # some work first: the events computed so far reach the window

            faulthandler.disable()  # no traceback noise in the test output
            ctypes.string_at(0)  # reads address 0: segmentation fault
        return real(*args, **kwargs)

    T._evaluate = crash


def record_modules(path: str) -> None:
    """After the job, write the child's ``sys.modules`` names (one a line) to ``path``."""
    from engine import training as T

    real = T.train

    def train(*args, **kwargs):
        yield from real(*args, **kwargs)
        Path(path).write_text("\n".join(sorted(sys.modules)))

    T.train = train


def serve_offline() -> None:
    """The download finds no network."""
    from urllib.error import URLError

    from test_data import NAMES

    from engine.training import data as D

    def offline(url, timeout):
        raise URLError("no network here")

    D._open_url = offline
    D._torchvision_sources = lambda: (
        ["https://mirror.invalid/"], [(f"{n}.gz", "0" * 32) for n in NAMES.values()])


def serve_folder(src: str) -> None:
    """The download serves the (gzip) files of ``src`` as if from a mirror."""
    import hashlib

    from engine.training import data as D

    blobs = {p.name: p.read_bytes() for p in Path(src).iterdir()}
    D.FULL_COUNTS = {"train": 256, "test": 64}
    D._open_url = lambda url, timeout: io.BytesIO(blobs[url.rsplit("/", 1)[1]])
    D._torchvision_sources = lambda: (
        ["https://mirror.invalid/"],
        [(name, hashlib.md5(blob).hexdigest()) for name, blob in blobs.items()])

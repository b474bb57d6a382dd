"""Animations of a race: which steps become frames, and the GIF / MP4 / PNG-folder writers.

Qt-free: frames arrive as ``(height, width, 3)`` uint8 RGB arrays from any renderer (the app
draws them with its plots, see :mod:`optgui.playground.figure`). Every writer is atomic:
frames stream into a temporary file (or folder) next to the target, which replaces the
target only once the last frame is in; an exception or a cancel part-way leaves nothing
behind. GIFs are written with Pillow, frame by frame (one global palette, each frame
reduced to the rectangle that changed), so memory stays flat however long the race is.
MP4 is written with PyAV (H.264 in the wheel's own FFmpeg), imported only when asked for.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from engine.export import atomic_path

MAX_FRAMES = 300  # longer runs are thinned to about this many frames
DEFAULT_FPS = 8.0  # the window's default playback speed (steps per second)
FORMATS = ("gif", "mp4", "frames")
FRAME_NAME = "frame_{:04d}.png"
TRANSPARENT = 255  # the GIF palette index of "unchanged since the last frame"


class Cancelled(Exception):  # noqa: N818 (it is a request, not a failure)
    """Raised through a writer by a progress callback that wants to stop; nothing is kept."""


def frame_steps(last_step: int, every: int | None = None, limit: int = MAX_FRAMES) -> list[int]:
    """The steps drawn as frames of a race whose last step is ``last_step``.

    One frame per step (``0 … last_step``) while that is at most ``limit + 1`` frames, so a
    300-step run keeps all 301; longer runs are thinned to ``limit`` evenly spaced steps.
    ``every=K`` takes every K-th step instead. The first and the last step are always in.
    """
    last = int(last_step)
    if last < 0:
        raise ValueError(f"the last step must be at least 0, got {last_step}")
    if every is not None:
        if int(every) < 1:
            raise ValueError(f"--every must be at least 1, got {every}")
        steps = list(range(0, last + 1, int(every)))
    elif last <= limit:
        steps = list(range(last + 1))
    else:
        steps = sorted({int(s) for s in np.linspace(0, last, limit).round()})
    if steps[-1] != last:
        steps.append(last)
    return steps


def check_fps(fps: float) -> float:
    fps = float(fps)
    if not (0.1 <= fps <= 60.0):
        raise ValueError(f"--fps must be between 0.1 and 60, got {fps:g}")
    return fps


def _report(progress: Callable[[int], object] | None, done: int) -> None:
    if progress is not None and progress(done) is False:
        raise Cancelled("cancelled")


# ---------------------------------------------------------------------------------- GIF
def _rgb(color) -> tuple[int, int, int]:
    if isinstance(color, str):
        text = color.lstrip("#")
        return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)
    return int(color[0]), int(color[1]), int(color[2])


def _gif_palette(samples: list[np.ndarray], exact=()):
    """One 255-colour palette for every frame, as a Pillow "P" image: the ``exact``
    colours (paths, arrows, text: few pixels each, which a median cut would merge into the
    colour map's large areas) plus the best colours of the sample frames (the first and
    the last frame hold the background and every path)."""
    from PIL import Image

    exact = list(dict.fromkeys(_rgb(c) for c in exact))[:64]
    stacked = np.concatenate(samples, axis=0)
    # index 255 stays free to mark the pixels a frame leaves unchanged
    cut = Image.fromarray(stacked, "RGB").quantize(255 - len(exact),
                                                   method=Image.Quantize.MEDIANCUT)
    colors = cut.getpalette()[: 3 * (255 - len(exact))]
    colors += [v for rgb in exact for v in rgb]
    colors += [0] * (3 * 256 - len(colors))
    palette = Image.new("P", (1, 1))
    palette.putpalette(colors)
    return palette, _ExactColors(exact, 255 - len(exact))


def _packed(rgb: np.ndarray) -> np.ndarray:
    """Each pixel's colour as one integer 0xRRGGBB."""
    rgb = rgb.astype(np.uint32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


class _ExactColors:
    """Puts the palette's exact colours back where a frame has them. Pillow maps pixels to
    a palette through a coarse colour cache, so a pixel of a run's exact colour can land on
    a near colour of the median cut instead of its own entry."""

    def __init__(self, exact: list[tuple[int, int, int]], first: int) -> None:
        keys = _packed(np.array(exact, dtype=np.uint32).reshape(-1, 3))
        order = np.argsort(keys)
        self.keys = keys[order]
        self.index = (first + order).astype(np.uint8)

    def apply(self, rgb: np.ndarray, indices: np.ndarray) -> np.ndarray:
        if not len(self.keys):
            return indices
        keys = _packed(rgb)
        pos = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        hit = self.keys[pos] == keys
        indices[hit] = self.index[pos[hit]]
        return indices


def _changed_box(diff: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) around the True pixels of ``diff``, or None if there are none."""
    rows = np.flatnonzero(diff.max(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(diff[rows[0]: rows[-1] + 1].max(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def write_gif(path, frames: Iterable[np.ndarray], fps: float = DEFAULT_FPS,
              palette_frames: list[np.ndarray] | None = None,
              progress: Callable[[int], object] | None = None, colors=()) -> int:
    """Stream ``frames`` into a looping GIF at ``path``; returns the number of frames.

    ``palette_frames`` (default: the first frame) choose the global palette, which also
    holds ``colors`` ("#rrggbb" or RGB tuples) exactly. ``progress(n)`` is called after
    each frame; returning False cancels (raises :class:`Cancelled`).
    """
    from PIL import GifImagePlugin, Image

    delay = max(20, round(1000.0 / check_fps(fps) / 10) * 10)  # GIF counts centiseconds
    count = 0
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        palette = None
        previous: np.ndarray | None = None
        for frame in frames:
            frame = np.ascontiguousarray(frame[..., :3], dtype=np.uint8)
            if palette is None:
                palette, exact = _gif_palette(palette_frames or [frame], colors)
            extra = {}
            if previous is None:
                indices = np.array(Image.fromarray(frame, "RGB").quantize(
                    palette=palette, dither=Image.Dither.NONE))
                part = Image.fromarray(exact.apply(frame, indices), "P")
                part.putpalette(palette.getpalette())
                header, _ = GifImagePlugin.getheader(part, info={"loop": 0})
                fh.write(b"".join(header))
                box = (0, 0, frame.shape[1], frame.shape[0])
            else:
                # only the rectangle that changed is stored (an unchanged frame: one pixel),
                # and in it the unchanged pixels are transparent: long runs that pack well
                diff = frame != previous
                changed = diff[..., 0] | diff[..., 1] | diff[..., 2]  # (faster than any())
                box = _changed_box(changed) or (0, 0, 1, 1)
                x0, y0, x1, y1 = box
                rgb = np.ascontiguousarray(frame[y0:y1, x0:x1])
                crop = Image.fromarray(rgb, "RGB")
                indices = exact.apply(rgb, np.array(
                    crop.quantize(palette=palette, dither=Image.Dither.NONE)))
                indices[~changed[y0:y1, x0:x1]] = TRANSPARENT
                part = Image.fromarray(indices, "P")
                part.putpalette(palette.getpalette())
                extra = {"transparency": TRANSPARENT}
            fh.write(b"".join(GifImagePlugin.getdata(part, offset=box[:2], duration=delay,
                                                     disposal=1, **extra)))
            previous = frame
            count += 1
            _report(progress, count)
        if previous is None:
            raise ValueError("an animation needs at least one frame")
        fh.write(b";")
    return count


# ---------------------------------------------------------------------------------- MP4
def write_mp4(path, frames: Iterable[np.ndarray], fps: float = DEFAULT_FPS,
              progress: Callable[[int], object] | None = None) -> int:
    """Stream ``frames`` into an H.264 MP4 (yuv420p, plays everywhere); odd sizes are
    padded by one pixel, as the format needs even sides. Returns the number of frames."""
    from fractions import Fraction

    import av

    rate = Fraction(check_fps(fps)).limit_denominator(1000)
    count = 0
    with atomic_path(path) as tmp:
        container = av.open(str(tmp), mode="w", format="mp4")
        try:
            stream = None
            for frame in frames:
                frame = np.ascontiguousarray(frame[..., :3], dtype=np.uint8)
                h, w = frame.shape[:2]
                if h % 2 or w % 2:
                    frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
                if stream is None:
                    stream = container.add_stream("libx264", rate=rate)
                    stream.width, stream.height = frame.shape[1], frame.shape[0]
                    stream.pix_fmt = "yuv420p"
                    stream.options = {"crf": "20", "preset": "veryfast"}
                video = av.VideoFrame.from_ndarray(frame, format="rgb24")
                for packet in stream.encode(video):
                    container.mux(packet)
                count += 1
                _report(progress, count)
            if stream is None:
                raise ValueError("an animation needs at least one frame")
            for packet in stream.encode():
                container.mux(packet)
        finally:
            container.close()
    return count


# ---------------------------------------------------------------------------------- PNGs
def write_frames(folder, frames: Iterable[np.ndarray],
                 progress: Callable[[int], object] | None = None) -> int:
    """Write ``frame_0000.png`` … into ``folder`` (created if missing).

    The frames go to a temporary folder beside it first; only when all are written do
    they replace the folder's previous ``frame_*.png`` files (other files are left alone).
    """
    from PIL import Image

    target = Path(folder)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise OSError(f"cannot write {target}: folder {parent} does not exist")
    if target.exists() and not target.is_dir():
        raise OSError(f"cannot write frames into {target}: it is a file")
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".part", dir=parent))
    count = 0
    try:
        for frame in frames:
            Image.fromarray(np.ascontiguousarray(frame[..., :3], dtype=np.uint8), "RGB").save(
                tmp / FRAME_NAME.format(count), "PNG", compress_level=3)
            count += 1
            _report(progress, count)
        if count == 0:
            raise ValueError("an animation needs at least one frame")
        target.mkdir(exist_ok=True)
        for old in target.glob("frame_*.png"):
            old.unlink()
        for i in range(count):
            name = FRAME_NAME.format(i)
            os.replace(tmp / name, target / name)
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
    return count


def _write(kind: str, path, frames: Iterable[np.ndarray], fps: float, progress,
           palette_frames, colors) -> int:
    if kind == "gif":
        return write_gif(path, frames, fps, palette_frames, progress, colors)
    if kind == "mp4":
        return write_mp4(path, frames, fps, progress)
    if kind == "frames":
        return write_frames(path, frames, progress)
    raise ValueError(f"unknown animation format {kind!r} (choose from {', '.join(FORMATS)})")


_END, _ABORT = object(), object()


def write_animation(kind: str, path, frames: Iterable[np.ndarray], fps: float = DEFAULT_FPS,
                    progress: Callable[[int], object] | None = None,
                    palette_frames: list[np.ndarray] | None = None, colors=(),
                    threaded: bool = True) -> int:
    """Write ``frames`` as ``kind`` (one of :data:`FORMATS`) to ``path`` (``palette_frames``
    and ``colors``: see :func:`write_gif`); returns the number of frames.

    ``frames`` are drawn in the caller's thread (a Qt renderer must stay in the GUI
    thread), and ``progress(n)`` is called there after each one; with ``threaded`` the
    encoding runs meanwhile in a helper thread (Pillow, NumPy and FFmpeg release the GIL),
    so drawing and encoding share two cores. A cancel or an error on either side stops
    both and leaves nothing behind.
    """
    check_fps(fps)
    if kind not in FORMATS:
        raise ValueError(f"unknown animation format {kind!r} (choose from {', '.join(FORMATS)})")
    if not threaded:
        return _write(kind, path, frames, fps, progress, palette_frames, colors)
    import queue
    import threading

    pipe: queue.Queue = queue.Queue(maxsize=3)
    outcome: dict = {}

    def feed():
        while True:
            item = pipe.get()
            if item is _END:
                return
            if item is _ABORT:
                raise Cancelled("cancelled")
            yield item

    def encode() -> None:
        try:
            outcome["count"] = _write(kind, path, feed(), fps, None, palette_frames, colors)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = exc

    def send(item) -> bool:
        """Queue ``item`` unless the encoder has stopped (then its error is raised)."""
        while worker.is_alive():
            try:
                pipe.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    worker = threading.Thread(target=encode, name="animation-encoder", daemon=True)
    worker.start()
    try:
        done = 0
        for frame in frames:
            if not send(frame):
                break
            done += 1
            _report(progress, done)
    except BaseException:
        send(_ABORT)
        worker.join()
        raise
    send(_END)
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["count"]

"""Animation frames and writers (engine.animation): no Qt here, frames are numpy arrays."""

import numpy as np
import pytest

from engine.animation import (
    Cancelled,
    frame_steps,
    write_frames,
    write_gif,
    write_mp4,
)


def test_one_frame_per_step_up_to_300_steps():
    assert frame_steps(30) == list(range(31))  # the course race: steps 0 … 30
    assert frame_steps(300) == list(range(301))
    assert frame_steps(0) == [0]


@pytest.mark.parametrize("last", [301, 1000, 4999])
def test_long_runs_are_thinned_to_about_300_evenly_spaced_frames(last):
    steps = frame_steps(last)
    assert 295 <= len(steps) <= 301
    assert steps[0] == 0 and steps[-1] == last
    assert steps == sorted(set(steps))
    gaps = np.diff(steps)
    assert gaps.max() - gaps.min() <= 1  # evenly spaced


def test_every_k_keeps_the_last_step():
    assert frame_steps(30, every=7) == [0, 7, 14, 21, 28, 30]
    assert frame_steps(30, every=10) == [0, 10, 20, 30]
    assert frame_steps(5000, every=1) == list(range(5001))
    with pytest.raises(ValueError, match="--every"):
        frame_steps(30, every=0)


def synthetic(n, h=60, w=80):
    """Frames of a gradient with a red bar that grows one pixel a frame."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 90)], -1).astype(np.uint8)
    for i in range(n):
        frame = base.copy()
        frame[10:14, 5:6 + i] = (255, 0, 0)
        yield frame


def test_gif_streams_every_frame_and_reads_back(tmp_path):
    from PIL import Image

    frames = list(synthetic(12))
    path = tmp_path / "a.gif"
    assert write_gif(path, iter(frames), fps=5, palette_frames=[frames[0], frames[-1]]) == 12
    with Image.open(path) as im:
        assert im.n_frames == 12 and im.size == (80, 60)
        assert im.info["loop"] == 0 and im.info["duration"] == 200
        for k in (0, 5, 11):
            im.seek(k)
            rgb = np.asarray(im.convert("RGB")).astype(int)
            np.testing.assert_allclose(rgb, frames[k], atol=24)  # 255-colour palette
            assert tuple(rgb[12, 5 + k]) == pytest.approx((255, 0, 0), abs=24)
            assert rgb[12, 7 + k][0] < 200  # the bar has not grown further yet
    assert [p.name for p in tmp_path.iterdir()] == ["a.gif"]


def test_gif_keeps_the_exact_colours_it_is_given_among_near_ones(tmp_path):
    """A run's colour stays exact in every frame even when the frames are full of colours
    near it (antialiased edges), which Pillow's coarse palette cache would map it to."""
    from PIL import Image

    red = (255, 92, 92)
    rng = np.random.default_rng(0)
    frames = []
    for i in range(3):
        frame = np.clip(np.array(red) + rng.integers(-6, 7, (40, 60, 3)), 0, 255)
        frame = frame.astype(np.uint8)
        frame[5 + i, 5:50] = red  # a line of the exact colour, one row lower each frame
        frames.append(frame)
    path = tmp_path / "near.gif"
    write_gif(path, iter(frames), palette_frames=frames[:1], colors=["#ff5c5c"])
    with Image.open(path) as im:
        for k in range(3):
            im.seek(k)
            rgb = np.asarray(im.convert("RGB")).astype(int)
            assert (rgb[5 + k, 5:50] == red).all(), k


@pytest.mark.parametrize("writer", ["gif", "mp4", "frames"])
def test_cancel_or_failure_leaves_nothing(tmp_path, writer):
    def progress(done):
        return done < 3  # cancel after the third frame

    target = tmp_path / ("out" if writer == "frames" else f"out.{writer}")
    with pytest.raises(Cancelled):
        if writer == "gif":
            write_gif(target, synthetic(10), progress=progress)
        elif writer == "mp4":
            pytest.importorskip("av")
            write_mp4(target, synthetic(10), progress=progress)
        else:
            write_frames(target, synthetic(10), progress=progress)
    assert list(tmp_path.iterdir()) == []


def test_frames_folder_replaces_old_frames_only_when_complete(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "frame_0099.png").write_bytes(b"old")
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(Cancelled):
        write_frames(folder, synthetic(5), progress=lambda done: done < 2)
    assert sorted(p.name for p in folder.iterdir()) == ["frame_0099.png", "notes.txt"]
    assert write_frames(folder, synthetic(5)) == 5
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"frame_{i:04d}.png" for i in range(5)] + ["notes.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["frames"]  # no temporary folder left


def test_mp4_is_decodable_with_the_frame_count_and_size(tmp_path):
    av = pytest.importorskip("av")
    path = tmp_path / "a.mp4"
    assert write_mp4(path, synthetic(9, h=61, w=81), fps=8) == 9  # odd sides get padded
    with av.open(str(path)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == 9
    assert decoded[0].shape == (62, 82, 3)
    # H.264 is lossy, but the red bar of the last frame is there
    assert decoded[-1][12, 10][0] > 180 and decoded[-1][12, 10][1] < 90

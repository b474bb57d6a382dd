"""Figures and animations from the command line: sizes, themes, SVG/PDF, frame counts."""

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from optgui.cli import main

COURSE = ["export", "--preset", "course"]


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def rgb(path):
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).astype(int)


def test_png_size_and_themes(tmp_path):
    dark, light = tmp_path / "dark.png", tmp_path / "light.png"
    assert main([*COURSE, "--png", str(dark), "--size", "960x540"]) == 0
    assert main([*COURSE, "--png", str(light), "--size", "960x540", "--theme", "light"]) == 0
    assert png_size(dark) == png_size(light) == (960, 540)
    d, li = rgb(dark), rgb(light)
    # the title strip and the margins are paper-white in the light theme, dark in the dark one
    for image, test in ((li, lambda v: v > 235), (d, lambda v: v < 45)):
        for y, x in ((2, 2), (3, 480), (535, 5), (270, 956)):
            assert test(image[y, x].mean()), (y, x, image[y, x])
    assert li.mean() > d.mean() + 60
    # both show the same viridis contour (the plots are there, not an empty page)
    assert len({tuple(p) for p in d[::23, ::31].reshape(-1, 3)}) > 40


def test_layouts_and_the_default_size(tmp_path):
    for layout in ("figure", "contour", "loss"):
        out = tmp_path / f"{layout}.png"
        assert main([*COURSE, "--png", str(out), "--layout", layout]) == 0
        assert png_size(out) == (1280, 720)


def test_svg_and_pdf_are_valid_vector_files(tmp_path, qapp):
    svg, pdf = tmp_path / "f.svg", tmp_path / "f.pdf"
    assert main([*COURSE, "--svg", str(svg), "--pdf", str(pdf), "--size", "1600x1200",
                 "--theme", "light", "--title", "Lecture 3: momentum"]) == 0
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg") and root.get("viewBox") == "0 0 1600 1200"
    text = svg.read_text(encoding="utf-8")
    assert "gd(lr=0.4)" in text and ("<path" in text or "<polyline" in text)
    assert "Lecture 3: momentum" in text and "step 30 / 30" in text
    from PySide6.QtSvg import QSvgRenderer

    assert QSvgRenderer(str(svg)).isValid()
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    QtPdf = pytest.importorskip("PySide6.QtPdf")
    doc = QtPdf.QPdfDocument()
    doc.load(str(pdf))
    assert doc.pageCount() == 1
    size = doc.pagePointSize(0)
    assert (round(size.width()), round(size.height())) == (1200, 900)  # 1600×1200 px at 96 dpi


def test_course_race_gif_has_31_frames_steps_0_to_30(tmp_path):
    from PIL import Image

    out = tmp_path / "race.gif"
    assert main([*COURSE, "--gif", str(out), "--size", "640x360", "--fps", "10"]) == 0
    with Image.open(out) as im:
        assert im.n_frames == 31 and im.size == (640, 360)
        assert im.info["duration"] == 100
        first = np.asarray(im.convert("RGB")).astype(int)
        im.seek(30)
        last = np.asarray(im.convert("RGB")).astype(int)
    assert np.abs(first - last).sum(axis=2).astype(bool).mean() > 0.005  # paths moved
    # the runs keep their exact colours (a median-cut palette would merge them into the
    # colour map's yellows and greens)
    from engine.presets import get_preset
    from optgui.playground.config import PATH_COLORS

    seen = {tuple(p) for p in last.reshape(-1, 3)}
    for i in range(len(get_preset("course").specs())):
        c = PATH_COLORS[i]
        assert (int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)) in seen, c
    assert [p.name for p in tmp_path.iterdir()] == ["race.gif"]


def test_frames_folder_every_k(tmp_path):
    folder = tmp_path / "frames"
    assert main([*COURSE, "--frames", str(folder), "--size", "320x200", "--every", "10"]) == 0
    assert sorted(p.name for p in folder.iterdir()) == [
        f"frame_{i:04d}.png" for i in range(4)]  # steps 0, 10, 20, 30
    assert png_size(folder / "frame_0003.png") == (320, 200)
    # the first frame is step 0, the last the end of the race: they differ
    assert np.abs(rgb(folder / "frame_0000.png") - rgb(folder / "frame_0003.png")).sum() > 0



def test_a_long_run_is_thinned_to_300_frames(tmp_path):
    from engine import get_surface, parse_spec, run_trajectory
    from engine.animation import Cancelled
    from optgui.playground.render import figure_scene, save_animation

    surface = get_surface("quadratic")
    traj = run_trajectory(surface, parse_spec("gd(lr=0.01)"), (-4.0, 4.0), 1000)
    scene = figure_scene(surface, [traj], (-4.0, 4.0), 1000)
    totals = []

    def progress(done, total):  # drawing 300 frames takes a while: count, then stop
        totals.append(total)
        return False

    with pytest.raises(Cancelled):
        save_animation(scene, "gif", tmp_path / "long.gif", (200, 200), progress=progress)
    assert totals == [300]
    assert list(tmp_path.iterdir()) == []


def test_mp4_decodes_to_the_frames(tmp_path):
    av = pytest.importorskip("av")
    out = tmp_path / "race.mp4"
    assert main([*COURSE, "--mp4", str(out), "--size", "400x300", "--every", "5"]) == 0
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 7 and frames[0].shape == (300, 400, 3)


@pytest.mark.parametrize("args, message", [
    (["--png", "P", "--size", "12x12"], "--size must be between"),
    (["--png", "P", "--size", "big"], "--size must be WIDTHxHEIGHT"),
    (["--gif", "G", "--fps", "0"], "--fps must be between"),
    (["--gif", "G", "--every", "0"], "--every must be at least 1"),
    (["--png", "P", "--every", "2"], "--every needs an animation"),
    (["--size", "800x600"], "--size needs a picture or animation"),
    (["--gif", "G", "--overlays", "sparkles"], "unknown overlay 'sparkles'"),
    (["--gif", "D/a.png"], "must end in .gif"),
    (["--theme", "pink", "--png", "P"], "invalid choice"),
    (["--frames", "D/file.txt"], "is a file, not a folder"),
    (["--mp4", "D/missing/x.mp4"], "does not exist"),
])
def test_bad_picture_arguments_exit_2_with_one_line_and_no_file(tmp_path, capsys, args,
                                                                  message):
    (tmp_path / "file.txt").write_text("x")
    names = {"P": str(tmp_path / "out.png"), "G": str(tmp_path / "out.gif")}
    args = [names.get(a, a.replace("D/", f"{tmp_path}/")) for a in args]
    code = main([*COURSE, *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]


def test_a_cancelled_animation_leaves_nothing(tmp_path):
    from engine import get_surface, run_trajectory
    from engine.animation import Cancelled
    from engine.presets import get_preset
    from optgui.playground.render import figure_scene, save_animation

    preset = get_preset("course")
    surface = get_surface(preset.surface)
    trajs = [run_trajectory(surface, s, preset.start, 30) for s in preset.specs()]
    scene = figure_scene(surface, trajs, preset.start, 30)
    seen = []

    def progress(done, total):
        seen.append((done, total))
        return done < 4

    for kind, name in (("gif", "a.gif"), ("frames", "dir")):
        with pytest.raises(Cancelled):
            save_animation(scene, kind, tmp_path / name, (320, 200), progress=progress)
    assert seen[:4] == [(1, 31), (2, 31), (3, 31), (4, 31)]
    assert list(tmp_path.iterdir()) == []


def test_white_runs_turn_dark_grey_on_light_paper_only(qapp):
    from optgui.playground.figure import DARK, LIGHT, paper_color

    assert paper_color("#f5f5f5", DARK) == "#f5f5f5"
    assert paper_color("#f5f5f5", LIGHT) != "#f5f5f5"
    assert paper_color("#ff5c5c", LIGHT) == "#ff5c5c"  # coloured runs stay as they are

"""The ``export`` command line: a stable interface other tools and tests call."""

import csv
import subprocess
import sys

import numpy as np
import pytest

from optgui.cli import main
from tests.test_course import REFERENCES

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def read_rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_course_preset_csv_matches_the_exercise(tmp_path):
    out = tmp_path / "course.csv"
    assert main(["export", "--preset", "course", "--csv", str(out)]) == 0
    rows = read_rows(out)
    assert len(rows) == 4 * 31
    assert {"optimizer", "step", "w1", "w2", "loss", "grad1", "grad2", "diverged"} <= set(rows[0])
    specs = list(dict.fromkeys(r["optimizer"] for r in rows))
    assert specs == ["gd(lr=0.4)", "momentum(lr=0.6,beta=0.5)",
                     "rmsprop(lr=0.3,alpha=0.9,eps=1e-6,eps_in_sqrt=true)",
                     "adam(lr=0.2,beta1=0.9,beta2=0.999,eps=1e-6)"]
    for spec, reference in zip(specs, REFERENCES, strict=True):
        mine = [r for r in rows if r["optimizer"] == spec]
        assert [int(r["step"]) for r in mine] == list(range(31))
        points = np.array([[float(r["w1"]), float(r["w2"])] for r in mine])
        ref = reference(30, dtype=np.float64)
        np.testing.assert_allclose(points, ref, rtol=1e-12)
        losses = np.array([float(r["loss"]) for r in mine])
        np.testing.assert_allclose(losses, 0.1 * ref[:, 0] ** 2 + 2 * ref[:, 1] ** 2, rtol=1e-12)
        assert all(r["diverged"] == "0" for r in mine)


def test_the_documented_invocation_through_main_py(tmp_path):
    out = tmp_path / "out.csv"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "export", "--function", "quadratic",
         "--start", "-5,-2", "--steps", "30", "--optimizer", "gd(lr=0.4)",
         "--optimizer", "adam(lr=0.2)", "--csv", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    rows = read_rows(out)
    assert len(rows) == 62
    first_gd_step = [r for r in rows if r["optimizer"] == "gd(lr=0.4)"][1]
    assert (float(first_gd_step["w1"]), float(first_gd_step["w2"])) == pytest.approx((-4.6, 1.2))


def test_diverged_run_is_marked_in_the_csv(tmp_path, capsys):
    out = tmp_path / "div.csv"
    assert main(["export", "--optimizer", "gd(lr=1)", "--optimizer", "gd(lr=0.1)",
                 "--steps", "500", "--csv", str(out)]) == 0
    rows = read_rows(out)
    bad = [r for r in rows if r["optimizer"] == "gd(lr=1)"]
    good = [r for r in rows if r["optimizer"] == "gd(lr=0.1)"]
    assert len(bad) < 501 and bad[-1]["diverged"] == "1"
    assert all(r["diverged"] == "0" for r in bad[:-1])
    assert len(good) == 501 and all(r["diverged"] == "0" for r in good)
    assert all(np.isfinite(float(r["w1"])) for r in bad)
    assert "gd(lr=1) diverged at step" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--optimizer", "adam(lr=-1)"], "lr must be a number"),
    (["--optimizer", "nosuch(lr=1)"], "unknown optimizer"),
    (["--function", "nosuch", "--optimizer", "gd"], "unknown surface"),
    (["--start", "1,2,3", "--optimizer", "gd"], "--start must be two numbers"),
    (["--start", "a,b", "--optimizer", "gd"], "--start must be two numbers"),
    (["--steps", "-3", "--optimizer", "gd"], "--steps must be between"),
    (["--steps", "x", "--optimizer", "gd"], "invalid int value"),
    (["--preset", "nosuch"], "unknown preset"),
    ([], "give at least one --optimizer"),
    (["--optimizer", "gd", "--iterations", "0"], "--iterations must be at least 1"),
])
def test_bad_arguments_exit_nonzero_with_one_line_and_write_nothing(tmp_path, capsys, args,
                                                                    message):
    out = tmp_path / "never.csv"
    code = main(["export", *args, "--csv", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.count("\n") == 1
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_unwritable_target_fails_before_computing(tmp_path, capsys):
    code = main(["export", "--preset", "course", "--csv", str(tmp_path / "no" / "x.csv")])
    assert code == 2 and "does not exist" in capsys.readouterr().err


def test_summary_without_outputs(capsys):
    assert main(["export", "--preset", "course", "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "gd(lr=0.4)" in out and "-4.232" in out


def test_png_export_writes_a_picture(tmp_path):
    out = tmp_path / "contour.png"
    csv_out = tmp_path / "t.csv"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "export", "--preset", "course",
         "--png", str(out), "--csv", str(csv_out)],
        capture_output=True, text=True, timeout=180,
        env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert proc.returncode == 0, proc.stderr
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 400 and height >= 300
    assert csv_out.exists()


def test_gui_without_a_display_explains_instead_of_crashing():
    env = {k: v for k, v in __import__("os").environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    proc = subprocess.run([sys.executable, str(ROOT / "main.py")], capture_output=True,
                          text=True, timeout=60, env=env)
    if sys.platform.startswith("linux"):
        assert proc.returncode == 2
        assert "needs a display" in proc.stderr and "main.py export" in proc.stderr


@pytest.mark.parametrize("runs, steps, expected", [
    (31, 10, "at most 30 optimizers at once, got 31"),
    (11, 100_000, "11 optimizers × 100,000 steps = 1,100,000 steps is more than"),
])
def test_export_refuses_absurd_loads_before_computing(tmp_path, capsys, runs, steps, expected):
    out = tmp_path / "t.csv"
    args = ["export", "--steps", str(steps), "--csv", str(out)]
    for _ in range(runs):
        args += ["--optimizer", "gd(lr=0.1)"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("expr", ["sin(2^64)*x", "log(2^100)*x", "abs(log(x)) + y^2"])
def test_export_accepts_big_integers_and_abs_of_functions(tmp_path, expr):
    out, md = tmp_path / "out.csv", tmp_path / "out.md"
    assert main(["export", "--expr", expr, "--start", "0.5,0.5", "--steps", "3",
                 "--optimizer", "gd(lr=0.01)", "--csv", str(out), "--md", str(md)]) == 0
    rows = read_rows(out)
    assert len(rows) == 4 and all(np.isfinite(float(r["grad1"])) for r in rows)


@pytest.mark.parametrize("expr,words", [("(-3)^x", "not real"),
                                        ("(10^40*x)^10", "beyond the range")])
def test_export_refuses_non_real_or_overflowing_surfaces_in_one_line(tmp_path, capsys, expr,
                                                                      words):
    out, md = tmp_path / "out.csv", tmp_path / "out.md"
    assert main(["export", "--expr", expr, "--optimizer", "gd(lr=0.1)", "--csv", str(out),
                 "--md", str(md)]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists() and not md.exists()

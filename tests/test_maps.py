"""Basin maps and phase diagrams (engine.maps) and the ``map`` command line."""

import csv
import tracemalloc

import numpy as np
import pytest

from engine import get_surface, parse_spec, run_trajectory
from engine.maps import (
    BASIN,
    PHASE,
    MapRequest,
    Sweep,
    basin_rgb,
    boundary_lines,
    classify,
    coarse_to_fine,
    compute_map,
    known_minima,
    map_csv,
    parse_sweep,
    phase_rgb,
    stability,
)
from optgui.cli import main

HIMMELBLAU = get_surface("himmelblau")
QUADRATIC = get_surface("quadratic")


def first_below(traj, tol):
    norms = np.hypot(traj.grads[:, 0], traj.grads[:, 1])
    hit = np.flatnonzero(norms < tol)
    return int(hit[0]) if hit.size else -1


@pytest.mark.parametrize("text", ["adam(lr=0.05)", "sgd(lr=0.02,momentum=0.9)", "rmsprop(lr=0.05)"])
def test_basin_map_agrees_with_single_runs_cell_by_cell(text):
    spec = parse_spec(text)
    req = MapRequest(HIMMELBLAU, spec, steps=120, grid=9, tol=1e-3)
    res = compute_map(req, piece=7, workers=2)  # pieces that split rows: numbers unchanged
    assert res.kind == BASIN and res.shape == (9, 9)
    minima = known_minima(HIMMELBLAU)
    for i in range(len(res.starts)):
        traj = run_trajectory(HIMMELBLAU, spec, res.starts[i], 120)
        np.testing.assert_array_equal(res.points[i], traj.points[-1])
        # (the loss of a vectorized evaluation may differ in its last bit)
        assert res.losses[i] == pytest.approx(traj.losses[-1], rel=1e-13)
        assert res.steps_to_tol[i] == first_below(traj, 1e-3)
        assert res.diverged[i] == traj.diverged
        d = np.hypot(*(minima - traj.points[-1]).T)
        expected = int(np.argmin(d)) if d.min() <= 0.1 else -1  # 1 % of a 10-wide view
        assert res.minimum[i] == expected
    # the starts are the cell centres of the view, row by row (rows along w2)
    x0, x1, y0, y1 = HIMMELBLAU.view
    assert res.starts[0].tolist() == pytest.approx([x0 + 10 / 18, y0 + 10 / 18])
    assert res.starts[1, 1] == res.starts[0, 1] and res.starts[9, 0] == res.starts[0, 0]
    assert {0, 1, 2, 3} <= set(res.minimum.tolist())  # starts reach all four minima


def test_basin_map_marks_divergence_and_none():
    req = MapRequest(QUADRATIC, parse_spec("gd(lr=0.6)"), steps=300, grid=6)
    res = compute_map(req)
    assert res.diverged.all() and (res.minimum == -1).all()
    rgb = basin_rgb(res)
    assert rgb.shape == (6, 6, 3) and (rgb == rgb[0, 0]).all()
    res = compute_map(MapRequest(QUADRATIC, parse_spec("gd(lr=0.001)"), steps=5, grid=6))
    assert not res.diverged.any() and (res.minimum == -1).all() and (res.steps_to_tol < 0).all()
    assert not np.array_equal(basin_rgb(res)[0, 0], rgb[0, 0])  # "none" is not "diverged"


def test_phase_diagram_agrees_with_single_runs_cell_by_cell():
    spec = parse_spec("sgd(lr=0.1,momentum=0.5)")
    req = MapRequest(QUADRATIC, spec, steps=80, start=(-5, -2),
                     sweeps=(Sweep("lr", 0.05, 0.7, 5), Sweep("momentum", 0.0, 0.9, 4)))
    res = compute_map(req)
    assert res.kind == PHASE and res.shape == (4, 5)
    assert list(res.hypers) == ["lr", "momentum"]
    for i in range(20):
        lr, mom = res.hypers["lr"][i], res.hypers["momentum"][i]
        assert lr == np.linspace(0.05, 0.7, 5)[i % 5]
        assert mom == np.linspace(0, 0.9, 4)[i // 5]
        traj = run_trajectory(QUADRATIC, spec.with_values(lr=lr, momentum=mom), (-5, -2), 80)
        np.testing.assert_array_equal(res.points[i], traj.points[-1])
        assert res.diverged[i] == traj.diverged
        assert res.steps_to_tol[i] == first_below(traj, 1e-6)
    assert res.setting(3, 2) == {"lr": pytest.approx(0.375), "momentum": pytest.approx(0.9)}


def test_log_sweep_values_and_axes():
    s = parse_sweep("lr=1e-3:1:4:log")
    assert s == Sweep("lr", 1e-3, 1.0, 4, True)
    np.testing.assert_allclose(s.values(), [1e-3, 1e-2, 1e-1, 1])
    res = compute_map(MapRequest(QUADRATIC, parse_spec("gd(lr=0.1)"), steps=10, sweeps=(s,)))
    assert res.shape == (1, 4)
    assert res.cell_at(-2.05, 0.0) == (0, 1)  # plot axes are log10 of a log sweep
    assert res.cell_at(5.0, 0.0) is None


@pytest.mark.parametrize("text", ["lr", "lr=1:2", "lr=a:2:3", "lr=1:2:1", "=1:2:3",
                                  "lr=0:1:5:log", "lr=1:1:3", "lr=1:2:3:lin", "lr=1:inf:3"])
def test_bad_sweeps_are_refused(text):
    with pytest.raises(ValueError, match="sweep"):
        parse_sweep(text)


def test_gd_sweep_agrees_with_stability_theory():
    """Gradient descent on a quadratic converges iff η < 2/λ_max (λ_max = 4 here)."""
    theory = stability(QUADRATIC, parse_spec("gd(lr=0.1)"))
    assert theory is not None and theory.lam_max == pytest.approx(4.0)
    req = MapRequest(QUADRATIC, parse_spec("gd(lr=0.1)"), steps=3000, start=(-5, -2),
                     sweeps=(Sweep("lr", 0.3, 0.7, 41),))
    res = compute_map(req)
    f0 = float(QUADRATIC.value(np.array([-5.0, -2.0])))
    lr = res.hypers["lr"]
    grew = res.diverged | (res.losses > f0)
    shrank = ~res.diverged & (res.losses < 1e-3 * f0)
    assert shrank[lr < 0.5 * 0.98].all() and grew[lr > 0.5 * 1.02].all()
    lines, condition = boundary_lines(res)
    assert len(lines) == 1 and lines[0][0, 0] == pytest.approx(0.5) and "2/λ_max" in condition


def test_heavy_ball_sweep_agrees_with_stability_theory():
    """Heavy ball on a quadratic converges iff η·λ < 2(1+μ) for every eigenvalue λ."""
    spec = parse_spec("sgd(lr=0.1,momentum=0.5)")
    req = MapRequest(QUADRATIC, spec, steps=3000, start=(-5, -2),
                     sweeps=(Sweep("lr", 0.1, 1.0, 37), Sweep("momentum", 0.0, 0.8, 9)))
    res = compute_map(req)
    lr, mu = res.hypers["lr"], res.hypers["momentum"]
    ratio = lr * 4.0 / (2 * (1 + mu))
    f0 = float(QUADRATIC.value(np.array([-5.0, -2.0])))
    assert (~res.diverged & (res.losses < 1e-3 * f0))[ratio < 0.97].all()
    assert (res.diverged | (res.losses > f0))[ratio > 1.03].all()
    assert (ratio < 0.97).sum() > 50 and (ratio > 1.03).sum() > 50
    lines, _ = boundary_lines(res)
    pts = np.concatenate(lines)
    np.testing.assert_allclose(pts[:, 0], 2 * (1 + pts[:, 1]) / 4.0)
    # the course's EMA momentum is heavy ball with η(1−β) and μ = β
    ema = stability(QUADRATIC, parse_spec("momentum(lr=0.6,beta=0.5)"))
    assert float(ema.lr_max({"beta": 0.5})) == pytest.approx(2 * 1.5 / (4 * 0.5))


def test_nesterov_sweep_agrees_with_stability_theory():
    """torch's Nesterov momentum on a quadratic converges iff η·λ < 2(1+μ)/(1+2μ)."""
    spec = parse_spec("nesterov(lr=0.1,momentum=0.5)")
    req = MapRequest(QUADRATIC, spec, steps=3000, start=(-5, -2),
                     sweeps=(Sweep("lr", 0.1, 0.7, 31), Sweep("momentum", 0.05, 0.9, 9)))
    res = compute_map(req)
    lr, mu = res.hypers["lr"], res.hypers["momentum"]
    ratio = lr * 4.0 * (1 + 2 * mu) / (2 * (1 + mu))
    f0 = float(QUADRATIC.value(np.array([-5.0, -2.0])))
    assert (~res.diverged & (res.losses < 1e-3 * f0))[ratio < 0.97].all()
    assert (res.diverged | (res.losses > f0))[ratio > 1.03].all()
    assert (ratio < 0.97).sum() > 40 and (ratio > 1.03).sum() > 40
    same = stability(QUADRATIC, parse_spec("sgd(lr=0.1,momentum=0.5,nesterov=true)"))
    assert same.rule == "nesterov" and boundary_lines(res)[0]


def test_no_boundary_without_theory():
    assert stability(HIMMELBLAU, parse_spec("gd(lr=0.01)")) is None
    assert stability(QUADRATIC, parse_spec("adam(lr=0.1)")) is None
    assert stability(QUADRATIC, parse_spec("gd(lr=0.1,clip_norm=1)")) is None
    assert stability(QUADRATIC, parse_spec("gd(lr=0.1,noise=0.1)")) is None
    res = compute_map(MapRequest(QUADRATIC, parse_spec("adam(lr=0.1)"), steps=10,
                                 sweeps=(Sweep("lr", 0.01, 0.5, 3),)))
    assert boundary_lines(res) == ([], "")
    rgb, (lo, hi) = phase_rgb(res)
    assert rgb.shape == (1, 3, 3) and lo < hi


def test_progress_and_cancel():
    req = MapRequest(HIMMELBLAU, parse_spec("adam(lr=0.05)"), steps=20, grid=20)
    seen = []
    res = compute_map(req, lambda d, n: seen.append((d, n)) or True, piece=50, workers=1)
    assert res is not None and seen[0] == (0, 400) and seen[-1] == (400, 400)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) == 9
    calls = []
    assert compute_map(req, lambda d, n: calls.append(d) or d < 100, piece=50,
                       workers=1) is None
    assert calls == [0, 50, 100]  # stopped at the first report after 100 runs


def test_coarse_to_fine_yields_a_coarse_map_first():
    req = MapRequest(HIMMELBLAU, parse_spec("adam(lr=0.05)"), steps=30, grid=48)
    shapes = [r.shape for r in coarse_to_fine(req)]
    assert shapes == [(32, 32), (48, 48)]
    assert [r.shape for r in coarse_to_fine(req.at_size(20))] == [(20, 20)]
    assert list(coarse_to_fine(req, lambda d, n: False)) != [] and len(
        list(coarse_to_fine(req, lambda d, n: False))) == 1  # the coarse one, then cancelled


def test_memory_is_bounded_by_the_cells_not_the_steps():
    req = MapRequest(HIMMELBLAU, parse_spec("adam(lr=0.05)"), steps=200, grid=64)
    tracemalloc.start()
    try:
        compute_map(req, piece=1024, workers=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    cells = 64 * 64
    paths = cells * 201 * 16  # what keeping every point would take (≈ 13 MB)
    assert peak < 400 * cells and peak < paths / 10, peak


def test_classify_minima():
    minima = np.array([[0.0, 0.0], [3.0, 0.0]])
    pts = np.array([[0.05, 0.0], [2.95, 0.05], [1.5, 0.0], [0.0, 0.0]])
    out = classify(pts, minima, (-5, 5, -5, 5), np.array([False, False, False, True]))
    assert out.tolist() == [0, 1, -1, -1]


def test_csv_columns():
    req = MapRequest(QUADRATIC, parse_spec("gd(lr=0.1)"), steps=200, start=(1, 1),
                     sweeps=(Sweep("lr", 0.1, 0.6, 2),))
    rows = list(csv.DictReader(map_csv(compute_map(req)).splitlines()))
    assert list(rows[0]) == ["start_w1", "start_w2", "lr", "w1", "w2", "loss", "steps_to_tol",
                             "minimum", "diverged"]
    assert [r["diverged"] for r in rows] == ["false", "true"]
    assert rows[1]["minimum"] == "" and rows[1]["steps_to_tol"] == ""
    assert float(rows[0]["lr"]) == 0.1 and rows[0]["minimum"] == "0"


# ----------------------------------------------------------------------------- CLI


def read_rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_cli_basin_map(tmp_path, capsys):
    out, png = tmp_path / "map.csv", tmp_path / "map.png"
    assert main(["map", "--function", "himmelblau", "--optimizer", "adam(lr=0.05)",
                 "--grid", "12", "--steps", "150", "--view", "-5,5,-4,4", "--tol", "1e-4",
                 "--csv", str(out), "--png", str(png)]) == 0
    rows = read_rows(out)
    assert len(rows) == 144
    assert list(rows[0]) == ["start_w1", "start_w2", "w1", "w2", "loss", "steps_to_tol",
                             "minimum", "diverged"]
    starts = np.array([[float(r["start_w1"]), float(r["start_w2"])] for r in rows])
    assert starts[:, 0].min() > -5 and starts[:, 0].max() < 5 and starts[:, 1].max() < 4
    r = rows[77]
    traj = run_trajectory(HIMMELBLAU, parse_spec("adam(lr=0.05)"),
                          (float(r["start_w1"]), float(r["start_w2"])), 150)
    assert (float(r["w1"]), float(r["w2"])) == tuple(traj.points[-1])
    k = first_below(traj, 1e-4)
    assert r["steps_to_tol"] == (str(k) if k >= 0 else "")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "144 runs" in capsys.readouterr().out


def test_cli_phase_diagram_as_in_the_issue(tmp_path):
    out = tmp_path / "sweep.csv"
    assert main(["map", "--function", "quadratic", "--start=-5,-2", "--optimizer",
                 "sgd(lr=0.1,momentum=0.5)", "--sweep", "lr=0.02:1.0:6", "--sweep",
                 "momentum=0:0.95:3", "--steps", "60", "--csv", str(out)]) == 0
    rows = read_rows(out)
    assert len(rows) == 18 and list(rows[0])[:4] == ["start_w1", "start_w2", "lr", "momentum"]
    assert {(r["start_w1"], r["start_w2"]) for r in rows} == {("-5.0", "-2.0")}
    r = rows[8]  # lr index 2, momentum index 1
    traj = run_trajectory(QUADRATIC, parse_spec(f"sgd(lr={r['lr']},momentum={r['momentum']})"),
                          (-5, -2), 60)
    assert float(r["loss"]) == pytest.approx(traj.losses[-1], rel=1e-13)
    assert r["diverged"] == ("true" if traj.diverged else "false")


@pytest.mark.parametrize("args, message", [
    (["--optimizer", "adam(lr=0.05)", "--grid", "1"], "grid"),
    (["--optimizer", "adam(lr=0.05)", "--grid", "5000"], "grid"),
    (["--optimizer", "adam(lr=-1)"], "lr"),
    ([], "--optimizer"),
    (["--optimizer", "adam(lr=0.05)", "--view", "1,0,0,1"], "--view"),
    (["--optimizer", "adam(lr=0.05)", "--view", "a,b"], "--view"),
    (["--optimizer", "adam(lr=0.05)", "--sweep", "lr=0.1:1"], "--sweep"),
    (["--optimizer", "adam(lr=0.05)", "--sweep", "foo=0.1:1:5"], "foo"),
    (["--optimizer", "adam(lr=0.05)", "--sweep", "beta1=0.1:1.5:5"], "beta1"),
    (["--optimizer", "adam(lr=0.05)", "--sweep", "lr=0.1:1:5", "--grid", "8"], "--grid"),
    (["--optimizer", "adam(lr=0.05)", "--start=1,2"], "--start"),
    (["--optimizer", "adam(lr=0.05)", "--sweep", "lr=.1:1:3", "--sweep", "lr=.1:1:3"], "twice"),
    (["--optimizer", "adam(lr=0.05)", "--sweep", "lr=.1:1:3", "--sweep", "beta1=.1:.9:3",
      "--sweep", "beta2=.1:.9:3"], "two"),
    (["--optimizer", "adam(lr=0.05)", "--steps", "-1"], "steps"),
    (["--optimizer", "adam(lr=0.05)", "--tol", "0"], "tol"),
    (["--function", "nope", "--optimizer", "adam(lr=0.05)"], "nope"),
    (["--expr", "x**", "--optimizer", "adam(lr=0.05)"], ""),
    (["--optimizer", "adam(lr=0.05)", "--png", "PLACEHOLDER.jpg"], ".png"),
])
def test_cli_bad_arguments_exit_2_with_one_line_and_no_file(tmp_path, capsys, args, message):
    out = tmp_path / "out.csv"
    args = [a.replace("PLACEHOLDER", str(tmp_path / "p")) for a in args]
    code = main(["map", *args, "--csv", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error:") and message in err
    assert list(tmp_path.iterdir()) == []


def test_cli_unwritable_target(tmp_path, capsys):
    code = main(["map", "--optimizer", "gd(lr=0.1)", "--grid", "4", "--csv",
                 str(tmp_path / "no" / "such.csv")])
    assert code == 2 and "does not exist" in capsys.readouterr().err


def test_cli_expr_surface(tmp_path):
    out = tmp_path / "e.csv"
    assert main(["map", "--expr", "x**2 + 3*y**2", "--optimizer", "gd(lr=0.1)", "--grid", "4",
                 "--steps", "200", "--csv", str(out)]) == 0
    rows = read_rows(out)
    assert len(rows) == 16 and all(r["diverged"] == "false" for r in rows)
    assert all(abs(float(r["w1"])) < 1e-6 and r["steps_to_tol"] != "" for r in rows)

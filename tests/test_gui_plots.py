"""The playground's plots never freeze the window and never mislead (issue 8 §2, §3).

Real windows, offscreen, driven through the controller and waited on with signals.
"""

from __future__ import annotations

import numpy as np
import pytest
from guihelpers import run_id, select
from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor, QImage, QPainter

from engine import parse_spec

pytestmark = pytest.mark.gui


def recompute(window, qtbot, action, timeout: int = 10000) -> None:
    """Do ``action`` and wait until every run has arrived again."""
    with qtbot.waitSignal(window.ctrl.computed, timeout=timeout):
        action()
    qtbot.waitUntil(lambda: not window.ctrl.is_busy() and not window.loss.pending,
                    timeout=timeout)


def loss_axis(window):
    return window.loss.getPlotItem().getAxis("left")


def tick_labels(axis) -> list[tuple]:
    """(scene rectangle, text) of every tick label the axis draws now."""
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        specs = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [(axis.mapRectToScene(rect), text) for rect, _flags, text in specs[2]]


def diverge_gd(window, qtbot) -> int:
    rid = select(window, "gd")
    recompute(window, qtbot, lambda: window.ctrl.set_run_spec(rid, parse_spec("gd(lr=1.2)")))
    assert window.ctrl.trajectory(rid).diverged
    return rid


# ------------------------------------------------------------------ §2: redraw in place


def test_a_new_result_renames_its_legend_entry_in_place(window, qtbot):
    """One run recomputed: the legend is not torn down and rebuilt (it was, for every result,
    which with 8 × 10,000 steps stalled the window for seconds)."""
    before = [label for _, label in window.contour.legend.items]
    paths = dict(window.contour._paths)
    rid = diverge_gd(window, qtbot)
    after = [label for _, label in window.contour.legend.items]
    assert [id(x) for x in after] == [id(x) for x in before]
    assert "diverged at step" in after[0].text
    assert window.contour._paths == paths  # the same plot items, fed new data
    assert window.contour._paths[rid].traj is window.ctrl.trajectory(rid)


def test_a_run_that_arrives_or_goes_keeps_the_other_legend_rows(window, qtbot):
    """Runs arrive one by one: each arrival adds its row and keeps the others (emptying the
    legend and filling it again closed every row's widgets, 2-3 ms each, per arrival)."""
    legend = window.contour.legend
    before = {id(label): label.text for _, label in legend.items}
    recompute(window, qtbot, lambda: window.ctrl.add_run(parse_spec("adam(lr=0.3)")))
    texts = [label.text for _, label in legend.items]
    assert texts[-1] == "adam(lr=0.3)" and len(texts) == len(before) + 1
    assert {id(label): label.text for _, label in legend.items[:-1]} == before
    kept = [label for _, label in legend.items if label.text != texts[0]]
    window.ctrl.remove_run(run_id(window, "gd"))
    assert [id(label) for _, label in legend.items] == [id(label) for label in kept]
    assert legend.row_keys == tuple(r.run_id for r in window.ctrl.config.runs)


def test_unchanged_runs_are_not_fed_again(window, qtbot):
    calls = []
    for rid, items in window.contour._paths.items():
        items.line.sigPlotChanged.connect(lambda *_a, rid=rid: calls.append(rid))
    rid = diverge_gd(window, qtbot)
    assert set(calls) == {rid}


def test_overlays_not_shown_are_not_fed_at_every_step(window):
    """An overlay item that stays hidden is cleared once, not at every step: an empty
    setData costs as much as a full one, and 11 of the 26 line feeds of each step (8 runs
    with the course's overlays) fed nothing to hidden items."""
    overlays = window.overlays
    search = overlays.search
    window.ctrl.set_step(3)
    hidden = [a.line for a in overlays.arrows.values() if not a.line.isVisible()]
    hidden += [item for item in (search.direction, search.circle, search.model,
                                 search.h_ellipse, search.true_ellipse) if not item.isVisible()]
    hidden += [item for item in (search.trials, search.accepted, overlays.perturbed)
               if not item.isVisible()]
    shown = [a.line for a in overlays.arrows.values() if a.line.isVisible()]
    assert len(hidden) >= 8 and shown  # the course: gradient and update arrows only
    fed = []
    for item in hidden + shown:
        item.sigPlotChanged.connect(lambda *_a, item=item: fed.append(item))
    for k in range(4, 12):
        window.ctrl.set_step(k)
    assert not [item for item in fed if item in hidden]
    assert {id(item) for item in fed} == {id(item) for item in shown}  # these follow


def test_a_new_selection_restyles_the_paths_without_feeding_them_again(window, qtbot):
    """Selecting a run changes two lines' pens: no path or loss curve is fed its points again
    (PlotDataItem.setPen did that, and each was rebuilt at the next paint)."""
    old, new = run_id(window, "gd"), run_id(window, "adam")
    window.ctrl.select_run(old)
    fed = []
    curves = [items.line for items in window.contour._paths.values()]
    curves += [items.curve.curve for items in window.loss._curves.values()]
    for curve in curves:
        curve.sigPlotChanged.connect(lambda *_a, c=curve: fed.append(c))
    window.ctrl.select_run(new)
    window.loss.flush()  # the loss plot follows in the next pass of the event loop
    assert fed == []
    width = {rid: items.line.opts["pen"].widthF()
             for rid, items in window.contour._paths.items()}
    assert width[new] > width[old]
    assert (window.loss._curves[new].curve.curve.opts["pen"].widthF()
            > window.loss._curves[old].curve.curve.opts["pen"].widthF())


def test_the_loss_plot_follows_the_contour_in_the_next_pass(window, qtbot):
    """A change to the runs redraws the contour at once and the loss plot in the next pass
    of the event loop, so input and timers are served between the two repaints."""
    new = run_id(window, "adam")
    with qtbot.waitSignal(window.loss.updated, timeout=2000):
        window.ctrl.select_run(new)
        assert window.loss.pending
        assert window.contour._paths[new].line.opts["pen"].widthF() == 3.0
        assert window.loss._curves[new].curve.opts["pen"].widthF() < 2.5  # not yet
    assert not window.loss.pending
    assert window.loss._curves[new].curve.opts["pen"].widthF() == 2.5
    # whatever reads the plot as an image gets it up to date
    window.ctrl.select_run(run_id(window, "gd"))
    assert window.loss.pending
    window.loss.render_image()
    assert not window.loss.pending


def test_a_new_setup_never_shows_an_old_path_under_a_new_spec(window, qtbot):
    """A setup that keeps a run's id but gives it another optimizer (a lesson, an undo)
    hides that run's old path until the new one arrives; unchanged runs keep theirs."""
    from dataclasses import replace

    ctrl = window.ctrl
    gd, adam = run_id(window, "gd"), run_id(window, "adam")
    kept = ctrl.trajectory(adam)
    momentum = parse_spec("momentum(lr=0.1,beta=0.9)")
    config = replace(ctrl.config, runs=tuple(
        replace(r, spec=momentum) if r.run_id == gd else r for r in ctrl.config.runs))
    with qtbot.waitSignal(ctrl.computed, timeout=10000):
        ctrl.set_config(config)
        assert ctrl.trajectory(gd) is None  # not gd's path under momentum's name
        assert not window.contour._paths[gd].line.isVisible()
        assert ctrl.trajectory(adam) is kept  # shown while it is recomputed
    assert str(ctrl.trajectory(gd).spec) == str(momentum)
    assert window.contour._paths[gd].line.isVisible()
    # a new start or length outdates every path
    with qtbot.waitSignal(ctrl.computed, timeout=10000):
        ctrl.set_config(replace(ctrl.config, start=(-4.0, 1.0)))
        assert not ctrl.trajectories


def test_short_paths_show_a_dot_per_step_in_the_run_colour(window, qtbot):
    """Each step of a short path is a dot of the run's colour (drawn by one light item per
    run, not pyqtgraph's per-point scatter records); a long path is a plain line."""
    from optgui.playground.plots import MAX_MARKERS

    contour = window.contour
    rid = run_id(window, "gd")
    window.ctrl.set_step(3)
    dots = contour._paths[rid].dots
    assert dots.count() == 4  # steps 0 to 3
    assert dots.color() == QColor(window.ctrl.config.run(rid).color)
    point = window.ctrl.trajectory(rid).points[2]
    plot = contour.getPlotItem()
    at = contour.mapFromScene(plot.vb.mapViewToScene(QPointF(*point)))
    window.transport.setFocus()  # no focus frame or hover on the plot in either image
    shown = contour.grab().toImage()
    dots.setVisible(False)
    hidden = contour.grab().toImage()
    dots.setVisible(True)

    def differs(x: int, y: int) -> bool:
        return shown.pixelColor(x, y) != hidden.pixelColor(x, y)

    near = [(at.x() + dx, at.y() + dy) for dx in range(-3, 4) for dy in range(-3, 4)]
    assert sum(differs(x, y) for x, y in near) >= 10  # a disc around the point
    assert not any(differs(x, y) for x in range(0, 30) for y in range(0, 30))  # elsewhere
    window.ctrl.set_steps(MAX_MARKERS + 50)
    qtbot.waitUntil(lambda: not window.ctrl.is_busy(), timeout=10000)
    window.ctrl.to_end()
    assert contour._paths[rid].dots.count() == 0


def _drawn_error_px(raw: np.ndarray, drawn: np.ndarray, pixel) -> float:
    """How far (in pixels) the farthest point of ``raw`` lies from the polyline ``drawn``,
    whose vertices are some of raw's points in order: each raw point is measured against
    the drawn segment between the vertices before and after it."""
    raw = raw / pixel
    drawn = drawn / pixel
    at = np.empty(len(drawn), dtype=int)  # the raw index of each drawn vertex
    i = 0
    for j, vertex in enumerate(drawn):
        while not np.array_equal(raw[i], vertex):
            i += 1
        at[j] = i
    seg = np.searchsorted(at, np.arange(len(raw)), side="right") - 1
    seg = np.clip(seg, 0, len(drawn) - 2)
    a, b = drawn[seg], drawn[seg + 1]
    ab = b - a
    t = np.clip(((raw - a) * ab).sum(axis=1) / np.maximum((ab * ab).sum(axis=1), 1e-300), 0, 1)
    return float(np.hypot(*(a + t[:, None] * ab - raw).T).max())


def test_a_long_path_is_drawn_within_a_pixel_of_every_step(window, qtbot):
    """A long path keeps a point per half pixel it moves, not points spread evenly over its
    steps: when 800 evenly spaced points stood for momentum's 3,000 steps, its first loop
    was drawn as a triangle, and one step lay 121 px from the line drawn."""
    rid = run_id(window, "momentum")
    with qtbot.waitSignal(window.ctrl.computed, timeout=10000):
        window.ctrl.set_steps(3000)
    window.ctrl.to_end()
    raw = window.ctrl.trajectory(rid).points
    xs, ys = window.contour._paths[rid].line.getData()
    drawn = np.column_stack([xs, ys])
    assert len(drawn) < len(raw) / 4  # most of the 3,000 steps sit at the minimum
    pixel = np.array(window.contour.getPlotItem().vb.viewPixelSize())
    assert _drawn_error_px(raw, drawn, pixel) <= 1.0
    np.testing.assert_array_equal(drawn[-1], raw[-1])
    window.ctrl.set_step(25)  # in mid-path: the same points up to there, then the head
    xs, ys = window.contour._paths[rid].line.getData()
    part = np.column_stack([xs, ys])
    np.testing.assert_array_equal(part[:-1], drawn[: len(part) - 1])
    np.testing.assert_array_equal(part[-1], raw[25])
    assert _drawn_error_px(raw[:26], part, pixel) <= 1.0


def test_kept_points_keep_breaks_and_coarsen_past_the_limit():
    import warnings

    from optgui.playground.plots import kept_points, path_to

    t = np.linspace(0, 1, 5000)
    spiral = np.column_stack([np.exp(-5 * t) * np.cos(40 * t), np.exp(-5 * t) * np.sin(40 * t)])
    kept = kept_points(spiral, (1e-3, 1e-3), limit=len(spiral))
    assert kept[0] == 0 and np.all(np.diff(kept) > 0)
    q = np.floor((spiral - spiral[-1]) / 1e-3 + 0.5)
    dropped = np.setdiff1d(np.arange(len(spiral)), kept)
    assert np.all((q[dropped] == q[dropped - 1]).all(axis=1))  # each in its predecessor's cell
    # too many points: cells twice, then four times as large, and no larger
    coarse = kept_points(spiral, (1e-4, 1e-4), limit=2000)
    np.testing.assert_array_equal(coarse, kept_points(spiral, (4e-4, 4e-4), limit=10**6))
    assert len(coarse) > 2000  # path_to thins the rest
    path = path_to(spiral, kept, 1234)
    np.testing.assert_array_equal(path[-1], spiral[1234])
    assert len(path_to(spiral, np.arange(5000), 4999, limit=100)) == 100

    broken = spiral.copy()
    broken[100] = np.nan
    broken[4000:] = [1e308, -1e308]  # a diverged run's last points
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept = kept_points(broken, (1e-3, 1e-3))
    assert {99, 100, 101, 4000} <= set(kept.tolist())


def test_a_zoom_draws_the_paths_again_for_the_new_pixel_size(window, qtbot):
    rid = run_id(window, "momentum")
    with qtbot.waitSignal(window.ctrl.computed, timeout=10000):
        window.ctrl.set_steps(3000)
    window.ctrl.to_end()
    before = len(window.contour._paths[rid].line.getData()[0])
    vb = window.contour.getPlotItem().vb
    (x0, x1), (y0, y1) = vb.viewRange()
    vb.setRange(xRange=(x0 / 8, x1 / 8), yRange=(y0 / 8, y1 / 8), padding=0.0)
    xs, ys = window.contour._paths[rid].line.getData()
    assert len(xs) > before  # finer cells keep more of the points
    raw = window.ctrl.trajectory(rid).points
    pixel = np.array(vb.viewPixelSize())
    assert _drawn_error_px(raw, np.column_stack([xs, ys]), pixel) <= 1.0
    # a run hidden during a zoom is drawn for the new zoom when it is shown again
    window.ctrl.set_run_enabled(rid, False)
    vb.setRange(xRange=(x0 / 64, x1 / 64), yRange=(y0 / 64, y1 / 64), padding=0.0)
    window.ctrl.set_run_enabled(rid, True)
    qtbot.waitUntil(lambda: window.contour._paths[rid].line.isVisible(), timeout=5000)
    xs, ys = window.contour._paths[rid].line.getData()
    pixel = np.array(vb.viewPixelSize())
    assert _drawn_error_px(raw, np.column_stack([xs, ys]), pixel) <= 1.0


def test_figures_draw_paths_with_round_joins_and_finer_cells(window):
    from PySide6.QtCore import Qt

    from optgui.playground.exporting import window_scene
    from optgui.playground.figure import Figure
    from optgui.playground.plots import PATH_CELL_PX

    rid = run_id(window, "gd")
    screen = window.contour._paths[rid].line.opts["pen"]
    assert screen.joinStyle() == Qt.PenJoinStyle.BevelJoin
    figure = Figure(window_scene(window), size=(2560, 1440))
    try:
        plot = figure.contour
        assert plot._paths[rid].line.opts["pen"].joinStyle() == Qt.PenJoinStyle.RoundJoin
        assert plot.shadows.opts["pen"].joinStyle() == Qt.PenJoinStyle.RoundJoin
        assert plot.path_cell_px == pytest.approx(PATH_CELL_PX / 2 / figure.scale)
    finally:
        figure.dispose()


def test_envelope_keeps_every_bucket_extreme_in_order():
    from optgui.playground.plots import envelope

    rng = np.random.default_rng(3)
    y = np.cumsum(rng.standard_normal(10_001))
    x, e = envelope(y, buckets=100)
    assert len(x) <= 2 * 100 + 2 and np.all(np.diff(x) > 0)
    np.testing.assert_array_equal(e, y[x])
    assert e.max() == y.max() and e.min() == y.min() and x[0] == 0 and x[-1] == 10_000
    short = np.arange(50.0)
    np.testing.assert_array_equal(envelope(short, 100)[1], short)


def test_a_long_loss_curve_is_drawn_as_its_envelope(window, qtbot):
    recompute(window, qtbot, lambda: window.ctrl.set_steps(6000))
    gd = run_id(window, "gd")
    from optgui.playground.plots import LOSS_BUCKETS

    window.log_check.setChecked(False)
    xs, ys = window.loss._curves[gd].curve.getOriginalDataset()
    assert len(xs) <= 2 * LOSS_BUCKETS + 2 < 6001
    losses = window.ctrl.trajectory(gd).losses
    assert ys.min() == losses.min() and ys.max() == losses.max()


def test_losses_of_exactly_zero_stay_on_the_log_scale(window, qtbot):
    recompute(window, qtbot, lambda: window.ctrl.set_steps(6000))  # f underflows to 0.0
    zero = [rid for rid, t in window.ctrl.trajectories.items() if t.losses.min() == 0.0]
    assert zero
    window.log_check.setChecked(True)
    y = window.loss._curves[zero[0]].curve.getData()[1]  # log10, as displayed
    assert np.all(np.isfinite(y)) and "exactly 0" in window.loss.note


# ------------------------------------------------------------------ §3: the loss axis


def test_loss_axis_shows_plain_numbers_on_both_scales(window, qtbot):
    recompute(window, qtbot, lambda: window.ctrl.add_run(parse_spec("gd(lr=1.2)")))
    axis = loss_axis(window)
    for log in (True, False):
        window.log_check.setChecked(log)
        qtbot.waitUntil(lambda log=log: window.loss.log == log)
        window.loss.grab()  # a paint applies pending range changes (and SI prefixes)
        assert "x1e" not in axis.labelString() and "(x" not in axis.labelString()
        assert axis.autoSIPrefixScale == 1.0
        labels = [text for _, text in tick_labels(axis)]
        assert labels and all("e+1" not in t for t in labels)
    assert axis.tickStrings([0.001, 0.002], 1.0, 0.001) == ["0.001", "0.002"]
    assert axis.tickStrings([2.5e11, 5e11], 1.0, 2.5e11) == ["2.5e+11", "5e+11"]


def test_a_diverged_run_does_not_blow_up_the_loss_range(window, qtbot):
    start_loss = float(window.ctrl.trajectory(run_id(window, "adam")).losses[0])
    rid = diverge_gd(window, qtbot)
    assert window.ctrl.trajectory(rid).losses.max() > 1e6 * start_loss
    for log in (True, False):
        window.log_check.setChecked(log)
        top = window.loss.getPlotItem().vb.viewRange()[1][1]
        top = 10 ** top if log else top
        assert top < 3 * start_loss


def test_log_scale_with_losses_below_zero_plots_f_minus_min_f(window, qtbot):
    recompute(window, qtbot, lambda: window.ctrl.set_surface("saddle"))
    lows = [float(t.losses.min()) for t in window.ctrl.trajectories.values()]
    assert min(lows) < 0
    window.log_check.setChecked(True)
    loss = window.loss
    assert loss.shift == pytest.approx(min(lows))
    assert "f − min f" in loss_axis(window).labelString()
    assert "≤ 0" in loss.note and loss.getPlotItem().titleLabel.isVisible()
    for items in loss._curves.values():
        y = items.curve.getData()[1]
        assert np.all(np.isfinite(y)) and np.all(y > 0)  # nothing silently dropped
    window.log_check.setChecked(False)
    assert loss.shift is None and not loss.note
    assert loss_axis(window).labelString().find("min f") < 0


def test_the_loss_title_stays_while_every_run_recomputes(window, qtbot):
    """A new surface drops every result for a moment: the loss plot keeps its title line
    until the new results say otherwise, instead of losing it (and its height) and getting
    it back, laid out and painted twice."""
    window.log_check.setChecked(True)
    recompute(window, qtbot, lambda: window.ctrl.set_surface("saddle"))
    loss = window.loss
    title = loss.getPlotItem().titleLabel
    note, height = loss.note, loss.getPlotItem().vb.height()
    assert "≤ 0" in note and title.isVisible()
    with qtbot.waitSignal(window.ctrl.computed, timeout=10000):
        window.ctrl.set_surface("sharp_flat")  # f ≥ 0 everywhere: no shift once computed
        assert not window.ctrl.trajectories
        loss.flush()  # the loss plot's own update, due in the next pass of the event loop
        assert loss.note == note and title.isVisible()
        assert loss.getPlotItem().vb.height() == height
    qtbot.waitUntil(lambda: not loss.pending)
    lows = [float(t.losses.min()) for t in window.ctrl.trajectories.values()]
    assert (loss.shift is None) == (min(lows) > 0)
    recompute(window, qtbot, lambda: window.ctrl.set_surface("saddle"))
    assert "≤ 0" in loss.note
    with qtbot.waitSignal(window.ctrl.computed, timeout=10000):
        window.ctrl.set_start(1e300, 1e300)  # f overflows: every run fails
    qtbot.waitUntil(lambda: not loss.pending)
    assert not window.ctrl.trajectories and not loss.note  # nothing shown, nothing claimed


def test_log_tick_labels_fit_and_never_pile_up(window, qtbot):
    from optgui.playground.presets import GD_SGD_MINIBATCH

    recompute(window, qtbot, lambda: window.load_preset(GD_SGD_MINIBATCH))
    qtbot.waitUntil(lambda: len(window.ctrl.trajectories) == 3)
    axis = loss_axis(window)
    labels = tick_labels(axis)
    assert len(labels) >= 2
    rects = sorted((rect for rect, _ in labels), key=lambda r: r.top())
    for a, b in zip(rects, rects[1:], strict=False):
        assert a.bottom() <= b.top() + 1, [t for _, t in labels]


def test_tick_labels_are_not_clipped_at_first_launch(window, qtbot):
    for plot in (window.loss, window.contour):
        visible = plot.mapToScene(plot.viewport().rect()).boundingRect()
        for name in ("left", "bottom"):
            for rect, text in tick_labels(plot.getPlotItem().getAxis(name)):
                assert visible.contains(rect), (name, text, rect, visible)


# ------------------------------------------------------------------ §2: a compute process


def test_large_requests_are_computed_in_a_child_process(window, qtbot):
    import os

    from optgui.playground.compute import CHILD_NICENESS, PROCESS_THRESHOLD

    ctrl = window.ctrl
    small = {rid: t for rid, t in ctrl.trajectories.items()}
    worker = ctrl._workers.worker
    assert worker.process.started == 0  # the course (4 × 30 steps) stays in the thread
    steps = PROCESS_THRESHOLD // len(ctrl.config.runs) + 1
    recompute(window, qtbot, lambda: ctrl.set_steps(steps), timeout=60000)
    assert worker.process.started == 1
    pid = worker.process.pid
    assert pid is not None and pid != os.getpid()
    if hasattr(os, "getpriority"):  # the window wins a core the child also wants
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, mine + CHILD_NICENESS)
    for rid, traj in ctrl.trajectories.items():
        assert traj.steps == steps or traj.diverged
        np.testing.assert_array_equal(traj.points[:31], small[rid].points)
        with pytest.raises(ValueError):
            traj.points[0, 0] = 1.0  # read-only like the thread's results
    recompute(window, qtbot, lambda: ctrl.set_start(-4.0, 1.0), timeout=60000)
    assert worker.process.started == 1 and worker.process.pid == pid  # kept for the next
    window.close()
    assert worker.process.pid is None  # closing the window ends the child


def test_a_custom_surface_is_rebuilt_in_the_child(window, qtbot):
    from optgui.playground.compute import PROCESS_THRESHOLD

    ctrl = window.ctrl
    with qtbot.waitSignal(ctrl.configChanged, timeout=10000):
        ctrl.set_expression("w1^2 + 3*w2^2 + sin(w1)")
    qtbot.waitUntil(lambda: not ctrl.is_busy(), timeout=10000)
    recompute(window, qtbot, lambda: ctrl.set_steps(PROCESS_THRESHOLD // 4 + 1),
              timeout=60000)
    assert ctrl._workers.worker.process.started == 1
    assert len(ctrl.trajectories) == 4 and not any(ctrl.error(r.run_id)
                                                   for r in ctrl.config.runs)


@pytest.mark.parametrize("text, surface", [
    ("adam(lr=0.1)", "quadratic"), ("sam(base=momentum(lr=0.1),rho=0.3)", "quadratic"),
    ("gd(lr=0.1,batch=8)", "linear_regression"), ("newton(lr=1)", "rosenbrock"),
])
def test_trajectories_cross_from_the_child_unchanged(text, surface):
    import pickle

    from engine import SURFACES, run_trajectory
    from optgui.playground.compute import from_wire, to_wire

    s = SURFACES[surface]
    traj = run_trajectory(s, parse_spec(text), s.start, 50)
    wire = pickle.loads(pickle.dumps(to_wire(("ok", traj))))
    assert wire[0] == "packed" and wire[1][1][0] != "list"  # states travel as columns
    status, back = from_wire(wire)
    assert status == "ok"
    assert [type(x) for x in back.states] == [type(x) for x in traj.states]
    assert repr(back.states) == repr(traj.states)
    assert len(back.batches) == len(traj.batches)
    for a, b in zip(back.batches, traj.batches, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(back.points, traj.points)


def test_states_from_the_child_are_rebuilt_only_when_read():
    import pickle

    from engine import SURFACES, run_trajectory
    from optgui.playground.compute import Unpacked, from_wire, to_wire

    s = SURFACES["quadratic"]
    traj = run_trajectory(s, parse_spec("adam(lr=0.1)"), s.start, 40)
    _, back = from_wire(pickle.loads(pickle.dumps(to_wire(("ok", traj)))))
    states = back.states
    assert isinstance(states, Unpacked) and len(states) == len(traj.states) == 41
    for k in (0, 7, -1, -41):
        assert repr(states[k]) == repr(traj.states[k])
    assert repr(states[3:9:2]) == repr(traj.states[3:9:2])
    for bad in (41, -42):
        with pytest.raises(IndexError):
            states[bad]
    with pytest.raises(ValueError):  # the columns are read-only: a state cannot be altered
        states[5].m[0] = 1.0
    again = pickle.loads(pickle.dumps(states))  # e.g. a copy sent to another process
    assert type(again) is tuple and repr(again) == repr(traj.states)


# ------------------------------------------------------------------ undefined regions


def set_expression(window, qtbot, text: str) -> None:
    with qtbot.waitSignal(window.ctrl.configChanged, timeout=10000):
        window.ctrl.set_expression(text)
    qtbot.waitUntil(lambda: not window.ctrl.is_busy(), timeout=10000)


def test_undefined_regions_are_hatched_not_coloured(window, qtbot):
    contour = window.contour
    assert not contour.undefined.isVisible()
    set_expression(window, qtbot, "log(x) + y^2")
    assert contour.undefined.isVisible()
    image = contour.image.image
    left = image[:, : image.shape[1] // 3]  # w1 < −1.7: log(w1) undefined
    assert np.isnan(left).all()  # drawn transparent over the hatching, not as the top colour
    contour.grab()  # paint it now
    rendered = contour.image.qimage
    assert rendered.pixelColor(2, rendered.height() // 2).alpha() == 0
    assert rendered.pixelColor(rendered.width() - 3, rendered.height() // 2).alpha() == 255


def test_a_click_on_an_undefined_region_says_so(window, qtbot):
    set_expression(window, qtbot, "log(x) + y^2")
    start = window.ctrl.config.start
    messages = []
    window.statusBar().messageChanged.connect(messages.append)
    window.contour.startPicked.emit(-3.0, 1.0)
    assert window.ctrl.config.start == start
    assert any("not defined at (-3, 1)" in m for m in messages)


def test_the_readout_follows_a_surface_change(window, qtbot):
    window.contour.hovered.emit(-2.0, 1.0)
    assert "f = 2.4" in window.hover_label.text()  # 0.1·4 + 2·1
    set_expression(window, qtbot, "log(x) + y^2")
    assert "f = not defined here" in window.hover_label.text()
    recompute(window, qtbot, lambda: window.ctrl.set_surface("booth"))
    booth = float(window.ctrl.surface.value(np.array([-2.0, 1.0])))
    assert f"f = {booth:.4g}" in window.hover_label.text()


# ------------------------------------------------------------------ absurd loads


def test_the_window_holds_at_most_max_runs(window, qtbot):
    from engine.trajectory import MAX_RUNS

    ctrl = window.ctrl
    messages = []
    ctrl.errorOccurred.connect(messages.append)
    while len(ctrl.config.runs) < MAX_RUNS:
        assert ctrl.add_run(parse_spec("gd(lr=0.01)")) is not None
    assert ctrl.add_run(parse_spec("gd(lr=0.02)")) is None
    assert len(ctrl.config.runs) == MAX_RUNS
    assert messages and f"At most {MAX_RUNS} runs" in messages[-1]
    qtbot.waitUntil(lambda: not ctrl.is_busy(), timeout=30000)
    from optgui.playground.config import RunConfig

    with pytest.raises(ValueError, match=f"at most {MAX_RUNS} runs"):
        RunConfig.from_json(ctrl.config.with_run(
            type(ctrl.config.runs[0])(999, parse_spec("gd"), "#ffffff")).to_json())


# ------------------------------------------------------------------ legend and run list


def test_the_contour_legend_never_covers_the_view(window, qtbot):
    recompute(window, qtbot, lambda: window.ctrl.add_run(parse_spec("gd(lr=1.2)")))
    legend, vb = window.contour.legend, window.contour.getPlotItem().vb
    assert len(legend.items) == 5 and legend.isVisible()
    window.contour.grab()  # lay out and paint
    assert not legend.sceneBoundingRect().intersects(vb.sceneBoundingRect())
    visible = window.contour.mapToScene(window.contour.viewport().rect()).boundingRect()
    for _sample, label in legend.items:
        assert visible.contains(label.sceneBoundingRect()), label.text


def test_a_long_run_label_wraps_and_never_pushes_the_view_or_colour_bar(window, qtbot):
    """The legend takes the view's width and never asks for more: a label longer than that
    wraps (the legend's labels used to set the column's width, and one long spec pushed the
    colour bar and half the view out of the window)."""
    contour = window.contour
    plot = contour.getPlotItem()
    contour.grab()
    width, bar_x = plot.vb.width(), contour.colorbar.pos().x()
    long = ("adam(lr=0.1,beta1=0.85,beta2=0.995,eps=1e-06,schedule=cosine,T_max=25,"
            "clip_norm=2.5,noise=0.5,seed=7)")
    recompute(window, qtbot, lambda: window.ctrl.add_run(parse_spec(long)))
    contour.grab()  # lay out and paint
    assert plot.vb.width() == pytest.approx(width)
    assert contour.colorbar.pos().x() == pytest.approx(bar_x)
    legend = contour.legend
    assert legend.isVisible() and legend.geometry().width() == pytest.approx(width, abs=1)
    _sample, label = legend.items[-1]
    assert label.text.startswith(long)
    text = label.mapRectToScene(label.itemRect())
    assert text.height() > 1.5 * legend.items[0][1].itemRect().height()  # two lines or more
    assert legend.sceneBoundingRect().adjusted(-2, -2, 2, 2).contains(text)  # (its margin)
    visible = contour.mapToScene(contour.viewport().rect()).boundingRect()
    assert visible.contains(contour.colorbar.sceneBoundingRect())


def test_the_optimizer_list_shows_every_run_with_its_suffix(window, qtbot):
    recompute(window, qtbot, lambda: window.ctrl.add_run(parse_spec("gd(lr=1.2)")))
    set_expression(window, qtbot, "log(x) + y^2")  # from (4, 4) every run diverges
    qtbot.waitUntil(lambda: len(window.ctrl.trajectories) == 5, timeout=10000)
    runs = window.panel.run_list.list
    texts = [runs.item(i).text() for i in range(runs.count())]
    assert sum("diverged at step" in t for t in texts) >= 4
    window.resize(1024, 700)
    qtbot.waitUntil(lambda: runs.verticalScrollBar().maximum() == 0)
    for i in range(runs.count()):
        assert runs.viewport().rect().contains(runs.visualItemRect(runs.item(i))), texts[i]


def test_a_run_recoloured_dark_stays_readable_in_the_inspector(window, qtbot):
    import re

    from optgui.playground.inspector import CARD, MIN_CONTRAST, contrast

    rid = select(window, "gd")
    with qtbot.waitSignal(window.inspector.rendered, timeout=5000):
        window.ctrl.set_run_color(rid, "#0a0a40")
    html = window.inspector.page.html
    colours = set(re.findall(r"color: (#[0-9a-fA-F]{6})", html))
    assert "#0a0a40" not in {c.lower() for c in colours}  # not as text colour
    assert all(contrast(c, CARD) >= MIN_CONTRAST for c in colours), colours


def test_without_a_child_process_large_requests_are_computed_in_the_thread(window, qtbot,
                                                                          monkeypatch):
    from optgui.playground import compute

    def refuse(self):
        raise RuntimeError("no processes here")

    monkeypatch.setattr(compute.ComputeProcess, "_ensure", refuse)
    ctrl = window.ctrl
    recompute(window, qtbot, lambda: ctrl.set_steps(compute.PROCESS_THRESHOLD // 4 + 1),
              timeout=60000)
    assert ctrl._workers.worker.process.unavailable == "RuntimeError: no processes here"
    assert all(t.steps > 30 for t in ctrl.trajectories.values())


def test_garbage_is_collected_only_in_the_gui_thread(window, qtbot, monkeypatch):
    """A collection in the worker thread can destroy a leftover Qt widget there and
    deadlock with the GUI thread (it did, in the test above): while the worker computes in
    the thread and makes garbage, every collection happens in the GUI thread."""
    import gc
    import threading

    from optgui.playground import compute

    monkeypatch.setattr(compute.ComputeProcess, "_ensure",
                        lambda self: (_ for _ in ()).throw(RuntimeError("no processes")))
    threads = []

    def seen(phase, info):
        if phase == "start":
            threads.append(threading.current_thread() is threading.main_thread())

    gc.callbacks.append(seen)
    try:
        recompute(window, qtbot, lambda: window.ctrl.set_steps(compute.PROCESS_THRESHOLD // 4),
                  timeout=60000)
        qtbot.waitUntil(lambda: bool(threads), timeout=5000)  # the timer collected once
    finally:
        gc.callbacks.remove(seen)
    assert not gc.isenabled() and all(threads)


def test_a_small_window_leaves_the_legend_out_instead_of_shrinking_the_contour(window, qtbot):
    from optgui.playground.plots import MIN_VIEW_HEIGHT

    legend, vb = window.contour.legend, window.contour.getPlotItem().vb
    assert legend.isVisible()
    window.contour.resize(window.contour.width(), 360)
    qtbot.waitUntil(lambda: not legend.isVisible())
    window.contour.resize(window.contour.width(), 700)
    qtbot.waitUntil(legend.isVisible)
    window.contour.grab()
    assert vb.height() >= MIN_VIEW_HEIGHT - 40


def test_the_overlay_legend_takes_the_emptiest_corner(window, qtbot):
    """The course race starts at (−5, −2), the bottom-left corner: the overlay legend
    (gradient step / actual update) must not sit on it."""
    from PySide6.QtCore import QPointF

    overlays = window.overlays
    for key in overlays.enabled:
        overlays.set_enabled(key, True)
    window.ctrl.set_step(3)
    qtbot.waitUntil(lambda: overlays.legend.isVisible())
    assert overlays.legend_corner() != "bottom-left"
    vb = window.contour.getPlotItem().vb
    window.contour.grab()
    start = vb.mapViewToScene(QPointF(-5.0, -2.0))
    assert not overlays.legend.sceneBoundingRect().contains(start)


def test_the_overlay_legend_hides_but_keeps_its_rows_while_the_runs_recompute(window, qtbot):
    """A new surface drops every result: the overlay legend hides until they are back, and
    shows the same rows again instead of closing and remaking them."""
    overlays = window.overlays
    overlays.set_enabled("gradient", True)
    window.ctrl.set_step(3)
    qtbot.waitUntil(overlays.legend.isVisible)
    rows = [(id(sample), id(label), label.text) for sample, label in overlays.legend.items]
    with qtbot.waitSignal(window.ctrl.computed, timeout=10000):
        window.ctrl.set_surface("rosenbrock")
        assert not overlays.legend.isVisible()
    qtbot.waitUntil(overlays.legend.isVisible)
    after = [(id(s), id(lab), lab.text) for s, lab in overlays.legend.items]
    assert after[0] == rows[0] and after[0][2].endswith("gradient step")


# ------------------------------------------------------------------ contours off the GUI thread


def test_contours_are_computed_once_per_surface(monkeypatch):
    from engine import SURFACES
    from optgui.playground import contours

    calls = []
    compute = contours.compute_contours
    monkeypatch.setattr(contours, "compute_contours", lambda s: calls.append(s) or compute(s))
    monkeypatch.setattr(contours, "_cache", type(contours._cache)())
    beale = SURFACES["beale"]
    first = contours.contours_for(beale)
    assert contours.contours_for(beale) is first and calls == [beale]
    other = contours.contours_for(SURFACES["rosenbrock"])
    assert other is not first and len(calls) == 2


def test_switching_surfaces_computes_no_contours_in_the_window(window, qtbot, monkeypatch):
    import threading

    from guihelpers import wait_idle

    from engine import SURFACES
    from optgui.playground import contours

    where = []
    compute = contours.compute_contours
    monkeypatch.setattr(contours, "compute_contours",
                        lambda s: where.append(threading.current_thread().name) or compute(s))
    monkeypatch.setattr(contours, "_cache", type(contours._cache)())
    for name in SURFACES:  # as in the first seconds after start-up
        window.ctrl._prefetchRequested.emit(name)
    qtbot.waitUntil(lambda: len(contours._cache) == len(SURFACES), timeout=15000)
    for name in ("rosenbrock", "himmelblau"):
        window.ctrl.set_surface(name)
        wait_idle(qtbot, window)
    window.ctrl.set_expression("w1^2 + 3*w2^2")
    qtbot.waitUntil(lambda: window.ctrl.surface.expression == "w1^2 + 3*w2^2", timeout=15000)
    wait_idle(qtbot, window)
    assert len(where) == len(SURFACES) + 1  # every built-in, then the expression
    assert threading.main_thread().name not in where
    assert window.contour.contours is contours.contours_for(window.ctrl.surface)


# ------------------------------------------------------------------ a surface switch in two passes


def test_a_new_surface_is_laid_out_before_its_first_paint(window, qtbot):
    """Every axis (the colour bar's too) is drawn and the view's transform is updated when
    the surface is set: left to the paint, a new width or transform marked the whole view
    dirty again, and a second full paint followed the first (54 ms without an event in
    between, for 8 runs x 10,000 steps)."""
    from engine import get_surface

    contour = window.contour
    contour.set_surface(get_surface("rosenbrock"))
    plot = contour.getPlotItem()
    for axis in (plot.getAxis("left"), plot.getAxis("bottom"), contour.colorbar.axis):
        assert axis.picture is not None
    assert not plot.vb._matrixNeedsUpdate
    repaints = []
    contour.scene().changed.connect(lambda rects: rects and repaints.append(rects))
    qtbot.waitUntil(lambda: bool(repaints), timeout=2000)  # the new surface is painted
    qtbot.wait(50)
    assert len(repaints) == 1


def test_a_new_surface_is_drawn_after_what_was_already_waiting(window, qtbot):
    """Switching the surface updates every view at once. The contour draws the new surface
    (and paints it) in a later pass of the event loop, so a timer, a key or a click already
    waiting is served first instead of after all of it."""
    from PySide6.QtCore import QTimer

    served = []
    QTimer.singleShot(0, lambda: served.append(window.contour.contours))
    old = window.contour.contours
    window.ctrl.set_surface("rosenbrock")
    qtbot.waitUntil(lambda: window.contour.contours is not old)
    assert served == [old]
    (x0, x1), (y0, y1) = window.contour.getPlotItem().vb.viewRange()
    assert (x0, x1, y0, y1) == pytest.approx(tuple(window.ctrl.surface.view))
    assert tuple(window.contour.start_marker.getData()[0]) == (window.ctrl.config.start[0],)


def test_whatever_reads_the_contour_right_after_a_switch_sees_the_new_surface(window, qtbot):
    """An export or a saved lesson right after a switch, in the same pass: the new surface."""
    from optgui.playground.exporting import window_scene

    window.ctrl.set_surface("himmelblau")
    scene = window_scene(window)
    assert scene.view == pytest.approx(tuple(window.ctrl.surface.view))
    assert window.lessons.current_lesson().view is None  # the whole surface, not a zoom
    window.ctrl.set_surface("rosenbrock")
    image = window.contour.render_image(400)
    assert window.contour.contours.xs[0] == pytest.approx(window.ctrl.surface.view[0])
    assert not image.isNull()


def test_the_first_formula_loads_sympy_without_a_full_garbage_collection():
    """sympy's import makes ~100,000 lasting objects: imported plainly, they set off a full
    collection while the worker holds the GIL (20-25 ms of frozen window)."""
    import subprocess
    import sys

    code = """if True:
        import gc, sys
        from optgui.playground.controller import load_sympy
        assert "sympy" not in sys.modules
        full, frozen = [], gc.get_freeze_count()
        gc.callbacks.append(lambda phase, info: phase == "stop" and full.append(info["generation"]))
        load_sympy()
        assert "sympy" in sys.modules and gc.isenabled()
        print(full.count(2), gc.get_freeze_count() - frozen)
    """
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout.split()
    full, frozen = int(out[0]), int(out[1])
    assert full == 0 and frozen > 50_000

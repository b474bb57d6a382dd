"""Step inspector, derivation export and 3-D view, driven in the real window (offscreen).

Shown numbers are compared with the recorded trajectory and with engine.explain at the
inspector's precision (8 significant digits). Tests wait on signals, never on sleeps.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import guihelpers
import pytest
from guihelpers import COURSE_TABLE, run_id
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from engine import REGISTRY, get_surface, parse_spec, run_trajectory
from engine.explain import MINUS, explain_step, fmt_value
from optgui.playground.inspector import render_page

pytestmark = pytest.mark.gui
ROOT = Path(__file__).resolve().parent.parent


def shown(window) -> str:
    """The inspector's visible text, as a reader would copy it from the view."""
    return window.inspector.view.toPlainText().replace("\u00a0", " ")


def go_to(window, qtbot, step: int) -> None:
    """Move the current step and wait until the inspector shows it."""
    if window.ctrl.step == step and window.inspector.page.step == step:
        return
    with qtbot.waitSignal(window.inspector.rendered, timeout=3000,
                          check_params_cb=lambda page: page.step == step):
        window.ctrl.set_step(step)


def select(window, qtbot, name: str) -> int:
    """Select the run of rule ``name`` and wait until the inspector shows it."""
    rid = run_id(window, name)
    if window.ctrl.selected_run == rid:
        qtbot.waitUntil(lambda: getattr(window.inspector.page, "run_id", None) == rid)
        return rid
    with qtbot.waitSignal(window.inspector.rendered, timeout=3000,
                          check_params_cb=lambda page: page.run_id == rid):
        guihelpers.select(window, name)
    return rid


def v(value) -> str:
    return fmt_value(value, minus=MINUS)


# ---------------------------------------------------------------------------- inspector


def test_inspector_shows_adam_step_2_after_stepping_back_and_forth(window, qtbot):
    assert window.inspector_dock.isVisible()
    rid = select(window, qtbot, "adam")
    traj = window.ctrl.trajectory(rid)
    window.contour.setFocus()
    qtbot.waitUntil(window.contour.hasFocus)
    for _ in range(3):  # forward with the keyboard, like a user
        with qtbot.waitSignal(window.inspector.rendered, timeout=3000):
            qtbot.keyClick(window.contour, Qt.Key.Key_Right)
    go_to(window, qtbot, 2)  # and back
    text = shown(window)
    assert "step 2 / 30" in text and "Point w₂" in text
    # the new point, as in COURSE.md's table, at the shown precision
    assert v(COURSE_TABLE["adam"][1]) == "(−4.6002548, −1.6008245)"
    assert "(−4.6002548, −1.6008245)" in text
    step = explain_step(traj, 2)
    results = {line.lhs: line.result_text for line in step.lines}
    for lhs in ("m₂", "v₂", "m̂₂", "v̂₂", "w₂"):
        assert lhs in text and results[lhs] in text  # m, v, m̂, v̂ and the new point
    assert results["m₂"] == "(−0.186, −1.44)"
    assert results["v̂₂"] == "(0.96078043, 57.916959)"
    # both forms of the update: the rule in symbols and with the numbers
    assert "m ← β₁·m + (1 − β₁)·g" in text
    assert "0.9·(−0.1, −0.8) + (1 − 0.9)·(−0.96000004, −7.2000001)" in text
    # f, gradient, state and hyperparameters of w₂
    assert f"f(w₂) = {v(traj.losses[2])}" in window.inspector.page.text
    assert v(traj.grads[2]) in text
    assert "t = 2" in window.inspector.page.text
    for hyper in ("η = 0.2", "β₁ = 0.9", "β₂ = 0.999", "ε = 1e−6"):
        assert hyper in window.inspector.page.text
    # the last line of the derivation is the new point
    assert window.inspector.page.text.split("\n  f(w₂)")[0].rstrip().endswith(
        "= (−4.6002548, −1.6008245)")


def test_inspector_at_step_0_shows_the_start_and_the_rule(window, qtbot):
    select(window, qtbot, "momentum")
    go_to(window, qtbot, 3)
    assert "Point w₃" in shown(window)
    go_to(window, qtbot, 0)
    text = shown(window)
    assert "Point w₀ (the start)" in text
    assert "(−5, −2)" in text and "10.5" in text and "(−1, −8)" in text
    assert "v ← β·v + (1 − β)·g" in text and "Initial state" in text
    assert "Step 1" not in text  # no numbers of an update that has not happened


def test_selection_change_switches_the_inspected_run(window, qtbot):
    select(window, qtbot, "adam")
    go_to(window, qtbot, 2)
    assert "adam(" in shown(window)
    select(window, qtbot, "gd")
    text = shown(window)
    assert "gd(lr=0.4)" in text and "adam(" not in text
    assert v(COURSE_TABLE["gd"][1]) in text  # (−4.232, −0.72)
    assert "w₁ − η·g₂" in text and "w₂ = w₁ − η·g₂" in window.inspector.page.text
    rms = select(window, qtbot, "rmsprop")
    assert v(window.ctrl.trajectory(rms).points[2]) in shown(window)


def test_inspector_renders_only_while_visible(window, qtbot):
    select(window, qtbot, "gd")
    go_to(window, qtbot, 1)
    window.inspector_dock.hide()
    qtbot.waitUntil(lambda: not window.inspector.isVisible())
    window.ctrl.set_step(5)
    qtbot.wait(50)  # several event-loop passes: a hidden inspector must not render
    assert window.inspector.page.step == 1
    with qtbot.waitSignal(window.inspector.rendered, timeout=3000):
        window.inspector_dock.show()
    assert window.inspector.page.step == 5 and "Point w₅" in shown(window)


def test_copy_puts_the_step_on_the_clipboard(window, qtbot):
    select(window, qtbot, "adam")
    go_to(window, qtbot, 2)
    clipboard = QGuiApplication.clipboard()
    clipboard.setText("")
    qtbot.mouseClick(window.inspector.copy_button, Qt.MouseButton.LeftButton)
    text = clipboard.text()
    assert text.startswith("Adam: adam(lr=0.2")
    assert "w₂ = w₁ − η·m̂₂ / (√v̂₂ + ε) = " in text
    assert text.count("(−4.6002548, −1.6008245)") >= 2
    window.inspector.copy_md_action.trigger()
    md = clipboard.text()
    assert r"\begin{aligned}" in md and r"\hat{m}_{2} &=" in md
    assert r"-4.6002548" in md and "−" not in md.split("**Step 2")[1].split("**State")[0]


def test_diverged_run_says_so_at_its_last_step(window, qtbot):
    rid = select(window, qtbot, "gd")
    with qtbot.waitSignal(window.ctrl.computed, timeout=5000):
        window.ctrl.set_run_spec(rid, parse_spec("gd(lr=1.2)"))
    traj = window.ctrl.trajectory(rid)
    assert traj.diverged_at == 10
    go_to(window, qtbot, 5)
    assert "Diverged" not in shown(window)
    go_to(window, qtbot, 30)
    text = shown(window)
    assert "Diverged at step 10" in text and "Point w₉" in text
    assert v(traj.points[9]) in text


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_render_page_for_every_optimizer(name):
    surface = get_surface("quadratic")
    needs_base = any(h.kind == "spec" for h in REGISTRY[name].all_hypers)
    spec = parse_spec(f"{name}(base=adam(lr=0.1))" if needs_base else name)
    traj = run_trajectory(surface, spec, (-5.0, -2.0), 3)
    for k in range(traj.steps + 1):
        page = render_page(traj, k, color="#ff5c5c")
        assert v(traj.points[k]) in page.text
        assert f"step {k} / 3" in page.text
        assert page.markdown.count("$$") % 2 == 0
        if k:
            last = explain_step(traj, k).lines[-1]
            assert last.result_text in page.text and page.index == k


# ---------------------------------------------------------------------------- derivation


def test_export_derivation_writes_markdown_and_latex(window, tmp_path, monkeypatch):
    offered = {}

    def fake_dialog(parent, title, suggested, filters):
        offered["name"] = Path(suggested).name
        offered["filters"] = filters
        return str(tmp_path / "course"), "LaTeX (*.tex)"

    monkeypatch.setattr("optgui.mainwindow.QFileDialog.getSaveFileName", fake_dialog)
    monkeypatch.setattr("PySide6.QtWidgets.QInputDialog.getInt", lambda *a, **k: (2, True))
    assert "Export derivation…" in [a.text() for a in window.menuBar().actions()[0].menu()
                                    .actions()]
    window.actions_by_key["export_derivation"].trigger()
    assert offered["name"] == "optgui-quadratic-derivation.md"
    assert "Markdown (*.md)" in offered["filters"] and "LaTeX (*.tex)" in offered["filters"]
    tex = (tmp_path / "course.tex").read_text(encoding="utf-8")
    assert tex.startswith(r"\documentclass") and tex.rstrip().endswith(r"\end{document}")
    assert window.export_derivation(str(tmp_path / "course.md"), iterations=2)
    md = (tmp_path / "course.md").read_text(encoding="utf-8")
    for text in (md, tex):
        for name in COURSE_TABLE:
            assert name in text
        for number in ("-4.6", "1.2", "-4.232", "-0.72", "-4.268", "1.12", "-3.4351975",
                       "-0.5915234", "-4.6002548", "-1.6008245"):
            assert number in text
        assert "Iteration 3" not in text
    assert "### Iteration 2" in md
    assert sorted(p.name for p in tmp_path.iterdir()) == ["course.md", "course.tex"]


def test_export_derivation_to_an_unwritable_place_shows_an_error(window, tmp_path, monkeypatch):
    shown_errors = []
    monkeypatch.setattr("optgui.mainwindow.QMessageBox.critical",
                        lambda parent, title, text: shown_errors.append(text))
    target = tmp_path / "no-such-folder" / "d.md"
    assert not window.export_derivation(str(target), iterations=2)
    assert len(shown_errors) == 1 and "derivation" in shown_errors[0]
    assert not target.exists() and list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- 3-D view


def test_3d_view_is_hidden_then_renders_or_explains_why(window, qtbot):
    view = window.view3d
    assert not window.view3d_dock.isVisible() and view.state == "idle"
    action = window.view3d_dock.toggleViewAction()
    assert action.text() == "3-D view"
    with qtbot.waitSignal(view.ready, timeout=10000) as ready:
        action.trigger()
    if QGuiApplication.platformName() == "offscreen":
        assert ready.args == [False]
    if ready.args == [False]:
        assert view.message.isVisible()
        assert view.message.text().startswith("3-D view needs OpenGL: ")
        assert view.reason and view.reason in view.message.text()
        assert view.gl_view is None  # no GL widget was created without a context
    else:
        assert view.gl_view is not None and view.gl_view.isVisible()
    # the rest of the window still works
    select(window, qtbot, "gd")
    go_to(window, qtbot, 2)
    assert "(−4.232, −0.72)" in shown(window)
    window.ctrl.to_end()
    assert window.transport.counter.text() == "step 30 / 30"


def test_startup_imports_neither_opengl_nor_torch():
    """The suite's one start-up probe (a fresh interpreter costs seconds): the window opens
    with the inspector shown and the 3-D view hidden, and without torch or OpenGL loaded."""
    probe = (
        "import os, sys\n"
        "os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "os.environ['OPTGUI_NO_SETTINGS'] = '1'\n"
        "from optgui.app import create_application\n"
        "from optgui.mainwindow import MainWindow\n"
        "app = create_application()\n"
        "w = MainWindow()\n"
        "w.show()\n"
        "app.processEvents()\n"
        "print(w.inspector_dock.isVisible(), w.view3d_dock.isVisible())\n"
        "print(sorted(m for m in ('torch', 'OpenGL', 'pyqtgraph.opengl') if m in sys.modules))\n"
        "w.close()\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[-2:] == ["True False", "[]"]


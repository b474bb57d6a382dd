"""The lab's sharpness view: the settings reach the run, the generalization gap and λ_max
(with each optimizer's 2/η line) are drawn per epoch, the landscape panels fill row by row
on one colour scale, and the preset sets SGD vs SAM on noisy labels. Toy IDX data, a tiny
network, the real child process."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_gui_lab import configure, dialogs, lab, no_real_folders, run_to_end  # noqa: F401

from optgui.lab.tab import SAM_PRESET

pytestmark = pytest.mark.gui


def test_the_preset_sets_sgd_vs_sam_on_noisy_labels(lab):  # noqa: F811
    lab.settings.preset.click()
    config = lab.settings.config()
    assert config.label_noise == pytest.approx(0.2) and config.sharpness
    assert config.landscape == "random"
    sgd, sam = config.labels
    assert sam == f"sam(base={sgd},rho=0.05)"  # the same base
    state = lab.settings.state()
    lab.settings.label_noise.setValue(0)
    lab.settings.set_state(state)
    assert lab.settings.config().label_noise == pytest.approx(0.2)
    assert SAM_PRESET["optimizers"] == list(config.optimizers)


def test_sharpness_and_landscape_are_drawn(lab, qtbot, toy_dir):  # noqa: F811
    configure(lab, toy_dir, epochs=2, layers=1, width=8)
    s = lab.settings
    s.optimizers.set_specs(("sgd(lr=0.5)", "sam(base=sgd(lr=0.5),rho=0.05)"))
    s.label_noise.setValue(20)
    s.sharpness.setChecked(True)
    s.sharpness_samples.setValue(64)
    s.landscape.setCurrentIndex(s.landscape.findData("random"))
    s.landscape_grid.setValue(5)
    run_to_end(qtbot, lab)
    lab.render_all()
    h = lab.history
    assert len(h.landscape_rows) == 2 * 5
    plots = lab.sharp_plots
    for index, name in enumerate(h.optimizers):
        gap, lam, edge = plots.curves[name]
        xs, ys = gap.getData()
        assert list(xs) == [1, 2]
        assert ys[-1] == pytest.approx(100 * h.last(name).gap)
        lx, ly = lam.getData()
        assert list(lx) == [1, 2]  # the y axis is logarithmic: getData gives log10
        assert 10 ** ly[-1] == pytest.approx(h.last(name).lambda_max, rel=1e-6)
        assert edge.isVisible() and 10 ** edge.value() == pytest.approx(2 / 0.5)
        panel = plots.landscapes.panels[name]
        image = panel.image.image
        assert image.shape == (5, 5) and np.isfinite(image).all()
        assert index == panel.index
    # one colour scale: every panel has the same levels, spanning all panels' values
    levels = {tuple(p.image.getLevels()) for p in plots.landscapes.panels.values()}
    assert len(levels) == 1
    lo, hi = levels.pop()
    values = np.concatenate([p.image.image.ravel() for p in plots.landscapes.panels.values()])
    assert lo == pytest.approx(values.min()) and hi == pytest.approx(values.max())
    assert not math.isnan(lo)


def test_a_partial_landscape_shows_the_rows_so_far(lab):  # noqa: F811
    from engine.training import LandscapeRow, TrainingHistory

    h = TrainingHistory()
    alphas = (-1.0, 0.0, 1.0)
    h.add(LandscapeRow("sgd", 0, "random", 0, 3, alphas, -1.0, (3.0, 2.0, 3.0),
                       (0.1, 0.2, 0.1)))
    lab.sharp_plots.update_landscape(h)
    panel = lab.sharp_plots.landscapes.panels["sgd"]
    image = panel.image.image
    assert np.isfinite(image[0]).all() and np.isnan(image[1:]).all()
    assert "row 1/3" in panel.plot.titleLabel.text


def test_old_saved_settings_without_the_new_keys_keep_the_defaults(lab):  # noqa: F811
    s = lab.settings
    s.landscape.setCurrentIndex(s.landscape.findData("pca"))
    s.set_state({"epochs": 3})
    assert s.config().landscape == "pca" and s.epochs.value() == 3
    s.set_state({"landscape": None, "label_noise": 2.0})
    assert s.config().landscape is None and s.config().label_noise == 0.0

"""The window's demonstration presets (Run menu), beyond the course exercise.

Each preset is a complete :class:`RunConfig` plus what to select and show, so loading one is
a single ``set_config`` and every number here is checked by tests/test_gui_catalogue.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine import get_surface, parse_spec
from optgui.playground.config import DEFAULT_DATA, PATH_COLORS, RunConfig, RunEntry


@dataclass(frozen=True)
class WindowPreset:
    key: str
    title: str
    tip: str
    config: RunConfig
    select: int  # index of the run to select (the overlays follow it)
    overlays: tuple[str, ...]  # overlay kinds switched on when the preset loads
    log_loss: bool = True  # False where f goes negative (a log axis would hide it)


def _config(surface: str, start, steps: int, specs, colors, data=DEFAULT_DATA) -> RunConfig:
    runs = tuple(
        RunEntry(i + 1, parse_spec(text), color)
        for i, (text, color) in enumerate(zip(specs, colors, strict=True))
    )
    return RunConfig(surface, tuple(start), steps, runs, data=data)


# Same rule, learning rate and seed; only the batch differs: 0 = the full data set (GD),
# 1 = one sample per step (SGD), 8 = mini-batches of 8 of the 64 samples. lr = 0.15 is stable
# for single samples (per-sample curvature ≤ 2·(x² + 1) ≤ 10); after 150 steps GD is at the
# fit, mini-batch SGD jitters near it and SGD jitters more.
GD_SGD_MINIBATCH = WindowPreset(
    key="gd_sgd_minibatch",
    title="GD vs SGD vs mini-batch",
    tip="linear_regression (64 samples): gd(lr=0.15) with batch 0 (full batch), 1 (SGD) and "
        "8 (mini-batch), same seed, 150 steps",
    config=_config(
        "linear_regression", get_surface("linear_regression").start, 150,
        ("gd(lr=0.15)", "gd(lr=0.15,batch=1)", "gd(lr=0.15,batch=8)"),
        (PATH_COLORS[5], PATH_COLORS[0], PATH_COLORS[1]),
    ),
    select=1,
    overlays=("gradient", "update"),
)

# tests/test_functions.py: from sharp_flat's start, gd(lr=0.1) settles in the sharp minimum
# and SAM with the same base and ρ = 0.3 in the flat one. f(−w1, w2) = f(w1, w2), so the
# mirrored start behaves the same; it puts SAM's first perturbed point in the free top-left
# corner instead of under the legend.
SAM_VS_GD = WindowPreset(
    key="sam_vs_gd",
    title="SAM vs GD on sharp/flat",
    tip="sharp_flat: gd(lr=0.1) falls into the sharp minimum, sam(base=gd(lr=0.1),rho=0.3) "
        "ends in the flat one; the overlays show SAM's perturbed point and gradient",
    config=_config(
        "sharp_flat", (-get_surface("sharp_flat").start[0], get_surface("sharp_flat").start[1]),
        300,
        ("gd(lr=0.1)", "sam(base=gd(lr=0.1),rho=0.3)"),
        (PATH_COLORS[5], PATH_COLORS[0]),
    ),
    select=1,
    overlays=("gradient", "update", "sam"),
    log_loss=False,  # f < 0 around both minima
)

WINDOW_PRESETS = (GD_SGD_MINIBATCH, SAM_VS_GD)

"""AdamW and Lion, the two optimizers added as one module each (engine/optimizers/adamw.py,
engine/optimizers/lion.py) to prove the catalogue's layout: everything else picks them up.

AdamW is checked against torch.optim.AdamW step for step; Lion against a plain, scalar
transcription of the algorithm box of Chen et al. 2023 (Program 1, with decoupled weight
decay), written with loops and floats so it shares no code with the engine.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_against_torch import ATOL, RTOL, STEPS, SURFACES, torch_trajectory

from engine import REGISTRY, get_surface, parse_spec, run_trajectory
from engine.explain import explain_step
from engine.optimizers import build_optimizer
from engine.training import torch_optimizer_args

torch = pytest.importorskip("torch")

ADAMW_CASES = [
    ("adamw(lr=0.05)", dict(lr=0.05)),
    ("adamw(lr=0.05,weight_decay=0.1)", dict(lr=0.05, weight_decay=0.1)),
    ("adamw(lr=0.1,beta1=0.8,beta2=0.99,eps=1e-6,weight_decay=0.5,amsgrad=true)",
     dict(lr=0.1, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.5, amsgrad=True)),
]


@pytest.mark.parametrize("surface_name", list(SURFACES))
@pytest.mark.parametrize(("text", "kwargs"), ADAMW_CASES, ids=[c[0] for c in ADAMW_CASES])
def test_adamw_matches_torch(text, kwargs, surface_name):
    make, start = SURFACES[surface_name]
    surface = make()
    ours = run_trajectory(surface, parse_spec(text), start, STEPS)
    assert not ours.diverged, ours.diverged_reason
    theirs = torch_trajectory(surface, start, "AdamW", kwargs, STEPS)
    assert np.linalg.norm(theirs[-1] - theirs[0]) > 1e-3
    np.testing.assert_allclose(ours.points, theirs, rtol=RTOL, atol=ATOL)


def test_adamw_defaults_are_torchs():
    import inspect

    params = inspect.signature(torch.optim.AdamW).parameters
    ours = REGISTRY["adamw"].defaults()
    assert ours["lr"] == params["lr"].default
    assert (ours["beta1"], ours["beta2"]) == params["betas"].default
    assert ours["eps"] == params["eps"].default
    assert ours["weight_decay"] == params["weight_decay"].default
    assert ours["amsgrad"] == params["amsgrad"].default


def test_adamw_without_decay_is_adam():
    q = get_surface("quadratic")
    a = run_trajectory(q, parse_spec("adamw(lr=0.1,weight_decay=0)"), (-5, -2), 50)
    b = run_trajectory(q, parse_spec("adam(lr=0.1)"), (-5, -2), 50)
    np.testing.assert_array_equal(a.points, b.points)
    c = run_trajectory(q, parse_spec("adamw(lr=0.1,weight_decay=0.5)"), (-5, -2), 50)
    assert not np.allclose(a.points, c.points)  # the decay does something


def test_adamw_trains_with_torchs_own_class():
    assert torch_optimizer_args(parse_spec("adamw(lr=0.01,weight_decay=0.1)")) == (
        "AdamW", {"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.1,
                  "amsgrad": False})


def lion_by_the_paper(grad, start, steps, lr, b1, b2, wd):
    """Chen et al. 2023, Program 1 / Algorithm 2, one coordinate at a time."""
    w = [float(start[0]), float(start[1])]
    m = [0.0, 0.0]
    points = [tuple(w)]
    for _ in range(steps):
        g = grad(np.array(w))
        for i in range(2):
            c = b1 * m[i] + (1 - b1) * g[i]
            sign = 1.0 if c > 0 else (-1.0 if c < 0 else 0.0)
            w[i] = w[i] - lr * (sign + wd * w[i])
            m[i] = b2 * m[i] + (1 - b2) * g[i]
        points.append(tuple(w))
    return np.array(points)


@pytest.mark.parametrize(("text", "args"), [
    ("lion(lr=0.05)", (0.05, 0.9, 0.99, 0.0)),
    ("lion(lr=0.02,beta1=0.8,beta2=0.95,weight_decay=0.3)", (0.02, 0.8, 0.95, 0.3)),
])
@pytest.mark.parametrize("surface_name", ["quadratic", "himmelblau", "rosenbrock"])
def test_lion_matches_the_paper(text, args, surface_name):
    surface = get_surface(surface_name)
    start = surface.start
    ours = run_trajectory(surface, parse_spec(text), start, 200)
    assert not ours.diverged
    theirs = lion_by_the_paper(surface.grad, start, 200, *args)
    np.testing.assert_allclose(ours.points, theirs, rtol=1e-12, atol=1e-12)
    assert np.linalg.norm(theirs[-1] - theirs[0]) > 1e-2


def test_lion_steps_are_plus_minus_lr_per_coordinate():
    ours = run_trajectory(get_surface("himmelblau"), parse_spec("lion(lr=0.01)"), (1, 1), 20)
    np.testing.assert_allclose(np.abs(ours.updates[1:]), 0.01, rtol=1e-12)


def test_lion_defaults_are_the_papers():
    d = REGISTRY["lion"].defaults()
    assert (d["lr"], d["beta1"], d["beta2"], d["weight_decay"]) == (1e-4, 0.9, 0.99, 0.0)


@pytest.mark.parametrize("text", ["adamw(lr=0.1,weight_decay=0.3,amsgrad=true)",
                                  "lion(lr=0.05,weight_decay=0.2)"])
def test_explanations_recompute_to_the_recorded_values(text):
    traj = run_trajectory(get_surface("quadratic"), parse_spec(text), (-5, -2), 5)
    for k in range(1, 6):
        step = explain_step(traj, k)
        assert step.lines[-1].result == tuple(traj.points[k])
        for line in step.lines:
            np.testing.assert_allclose(line.recompute(), line.result, rtol=1e-9, atol=1e-15)


def test_lion_works_on_a_network_sized_vector():
    rule = build_optimizer(parse_spec("lion(lr=0.1)"))
    w = np.linspace(-1, 1, 7)
    upd, state = rule.update(w.copy(), rule.init(w), w)
    np.testing.assert_allclose(upd, -0.1 * np.sign(0.1 * w))
    assert state.m.shape == w.shape

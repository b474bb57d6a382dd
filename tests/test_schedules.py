"""engine.schedules against torch.optim.lr_scheduler and torch.nn.utils.clip_grad_*."""

from __future__ import annotations

import numpy as np
import pytest

from engine import schedules

torch = pytest.importorskip("torch")

BASE = {
    "schedule": "none", "step_size": 7, "gamma": 0.5, "T_max": 0, "eta_min": 0.0,
    "start_factor": 1 / 3, "end_factor": 1.0, "total_iters": 5, "max_lr": 0.0,
    "total_steps": 0, "pct_start": 0.3, "anneal_strategy": "cos", "div_factor": 25.0,
    "final_div_factor": 1e4, "three_phase": False, "cycle_momentum": True,
    "base_momentum": 0.85, "max_momentum": 0.95,
}
STEPS = 40


def torch_rates(kind, opt_cls, opt_kwargs, **sched_kwargs):
    """(lr, momentum or beta1) used by each of STEPS optimizer steps under torch."""
    p = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = opt_cls([p], **opt_kwargs)
    cls = getattr(torch.optim.lr_scheduler, schedules.TORCH_CLASSES[kind])
    sched = cls(opt, **sched_kwargs)
    out = []
    for _ in range(STEPS):
        group = opt.param_groups[0]
        m = group["betas"][0] if "betas" in group else group.get("momentum")
        out.append((group["lr"], m))
        p.grad = torch.ones(2, dtype=torch.float64)
        opt.step()
        sched.step()
    return out


CASES = [
    ("step", {"step_size": 7, "gamma": 0.5}, {"step_size": 7, "gamma": 0.5}),
    ("exponential", {"gamma": 0.9}, {"gamma": 0.9}),
    ("cosine", {"T_max": 15, "eta_min": 0.01}, {"T_max": 15, "eta_min": 0.01}),
    ("warmup", {"start_factor": 0.1, "end_factor": 1.0, "total_iters": 10},
     {"start_factor": 0.1, "end_factor": 1.0, "total_iters": 10}),
    ("onecycle", {"max_lr": 0.5, "total_steps": STEPS},
     {"max_lr": 0.5, "total_steps": STEPS}),
    ("onecycle", {"max_lr": 0.5, "total_steps": STEPS, "anneal_strategy": "linear",
                  "three_phase": True, "pct_start": 0.25},
     {"max_lr": 0.5, "total_steps": STEPS, "anneal_strategy": "linear", "three_phase": True,
      "pct_start": 0.25}),
]


@pytest.mark.parametrize("kind,ours,theirs", CASES)
@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_rates_match_torch(kind, ours, theirs, opt):
    lr = 0.2
    if opt == "sgd":
        expected = torch_rates(kind, torch.optim.SGD, {"lr": lr, "momentum": 0.9}, **theirs)
        own = {"lr", "momentum", "dampening", "nesterov"}
        key = "momentum"
    else:
        expected = torch_rates(kind, torch.optim.Adam, {"lr": lr}, **theirs)
        own = {"lr", "beta1", "beta2", "eps", "amsgrad"}
        key = "beta1"
    values = {**BASE, **ours, "schedule": kind, "lr": lr}
    for k, (lr_t, m_t) in enumerate(expected):
        got = schedules.overrides_at(values, own, k, STEPS)
        assert got["lr"] == pytest.approx(lr_t, rel=1e-12, abs=1e-15), (kind, k)
        if kind == "onecycle":
            assert got[key] == pytest.approx(m_t, rel=1e-12), (kind, k)
        else:
            assert key not in got


def test_run_length_defaults_and_hold():
    """T_max = 0 and total_steps = 0 mean the run's length; onecycle holds its last rate."""
    v = {**BASE, "schedule": "cosine", "lr": 1.0}
    assert schedules.lr_at(v, 1.0, 10, run_steps=10) == pytest.approx(0.0, abs=1e-15)
    assert schedules.lr_at(v, 1.0, 5, run_steps=10) == pytest.approx(0.5)
    v = {**BASE, "schedule": "onecycle", "max_lr": 1.0, "total_steps": 10}
    last = schedules.lr_at(v, 1.0, 9)  # optimizer step 10, the cycle's last
    assert last == pytest.approx(1.0 / 25 / 1e4)
    assert schedules.lr_at(v, 1.0, 50) == last


def test_check_refuses_mismatched_and_missing_options():
    with pytest.raises(ValueError, match="gamma does not apply to schedule=cosine"):
        schedules.check({**BASE, "schedule": "cosine"}, {"gamma": 0.5}, set())
    with pytest.raises(ValueError, match="needs gamma"):
        schedules.check({**BASE, "schedule": "exponential"}, {}, set())
    with pytest.raises(ValueError, match="needs step_size"):
        schedules.check({**BASE, "schedule": "step"}, {"gamma": 0.5}, set())
    schedules.check({**BASE, "schedule": "exponential"}, {"gamma": 0.99}, set())


@pytest.mark.parametrize("clip_norm,clip_value", [(1.0, 0.0), (0.0, 0.3), (0.5, 0.3),
                                                  (100.0, 0.0)])
def test_clipping_matches_torch(clip_norm, clip_value):
    rng = np.random.default_rng(3)
    for _ in range(20):
        g = rng.standard_normal(2) * rng.choice([0.01, 1.0, 10.0])
        p = torch.zeros(2, dtype=torch.float64, requires_grad=True)
        p.grad = torch.tensor(g)
        if clip_value:
            torch.nn.utils.clip_grad_value_([p], clip_value)
        if clip_norm:
            torch.nn.utils.clip_grad_norm_([p], clip_norm)
        ours, fired = schedules.clip(g, clip_norm, clip_value)
        np.testing.assert_allclose(ours, p.grad.numpy(), rtol=1e-12, atol=1e-15)
        assert fired == (not np.allclose(ours, g, rtol=0, atol=0))

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


# ----------------------------------------------------------------- whole runs against torch

def _rosenbrock_t(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def _torch_path(opt_cls, opt_kwargs, sched_kind, sched_kwargs, start, steps, clip=None):
    x = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = opt_cls([x], **opt_kwargs)
    sched = None
    if sched_kind != "none":
        cls = getattr(torch.optim.lr_scheduler, schedules.TORCH_CLASSES[sched_kind])
        sched = cls(opt, **sched_kwargs)
    path = [x.detach().numpy().copy()]
    for _ in range(steps):
        opt.zero_grad()
        _rosenbrock_t(x).backward()
        if clip and clip.get("clip_value"):
            torch.nn.utils.clip_grad_value_([x], clip["clip_value"])
        if clip and clip.get("clip_norm"):
            torch.nn.utils.clip_grad_norm_([x], clip["clip_norm"])
        opt.step()
        if sched is not None:
            sched.step()
        path.append(x.detach().numpy().copy())
    return np.array(path)


RUNS = [
    ("step", "step_size=5,gamma=0.5", {"step_size": 5, "gamma": 0.5}),
    ("exponential", "gamma=0.95", {"gamma": 0.95}),
    ("cosine", "T_max=20,eta_min=0.0001", {"T_max": 20, "eta_min": 0.0001}),
    ("warmup", "start_factor=0.2,total_iters=8", {"start_factor": 0.2, "total_iters": 8}),
    ("onecycle", "max_lr=0.003,total_steps=30", {"max_lr": 0.003, "total_steps": 30}),
]


@pytest.mark.parametrize("kind,text,kwargs", RUNS)
@pytest.mark.parametrize("rule", ["sgd", "adam"])
def test_scheduled_paths_equal_torch(kind, text, kwargs, rule):
    from engine import get_surface, parse_spec, run_trajectory

    start, steps = (-1.2, 1.0), 30
    if rule == "sgd":
        spec = parse_spec(f"sgd(lr=0.001,momentum=0.9,schedule={kind},{text})")
        expected = _torch_path(torch.optim.SGD, {"lr": 0.001, "momentum": 0.9}, kind, kwargs,
                               start, steps)
    else:
        spec = parse_spec(f"adam(lr=0.05,schedule={kind},{text})")
        expected = _torch_path(torch.optim.Adam, {"lr": 0.05}, kind, kwargs, start, steps)
    traj = run_trajectory(get_surface("rosenbrock"), spec, start, steps)
    np.testing.assert_allclose(traj.points, expected, rtol=0, atol=1e-6)
    assert traj.lrs[0] != traj.lrs[0]  # NaN before the first step
    assert len(set(np.round(traj.lrs[1:], 12))) > 1  # the rate really changed


@pytest.mark.parametrize("clip", [{"clip_norm": 5.0}, {"clip_value": 2.0},
                                  {"clip_norm": 5.0, "clip_value": 2.0}])
def test_clipped_paths_equal_torch(clip):
    from engine import get_surface, parse_spec, run_trajectory

    text = ",".join(f"{k}={v}" for k, v in clip.items())
    traj = run_trajectory(get_surface("rosenbrock"),
                          parse_spec(f"sgd(lr=0.002,momentum=0.9,{text})"), (-1.2, 1.0), 40)
    expected = _torch_path(torch.optim.SGD, {"lr": 0.002, "momentum": 0.9}, "none", {},
                           (-1.2, 1.0), 40, clip)
    np.testing.assert_allclose(traj.points, expected, rtol=0, atol=1e-6)
    assert traj.clipped[1]  # ‖∇f(−1.2, 1)‖ ≈ 232: clipping fires at once
    assert not traj.clipped[0]


def test_shared_options_are_refused_where_they_cannot_apply():
    from engine import parse_spec

    with pytest.raises(ValueError, match="cannot be set on its base"):
        parse_spec("sam(base=gd(lr=0.1,schedule=cosine))")
    with pytest.raises(ValueError, match="sam evaluates further gradients"):
        parse_spec("sam(base=gd(lr=0.1),clip_norm=1)")
    with pytest.raises(ValueError, match="must be one of none, step"):
        parse_spec("gd(lr=0.1,schedule=linear)")
    assert str(parse_spec("gd(lr=0.1,schedule=onecycle,anneal_strategy=linear)")) == \
        "gd(lr=0.1,schedule=onecycle,anneal_strategy=linear)"


# ----------------------------------------------------------------- the lab: torch's schedulers


@pytest.mark.parametrize("spec", [
    "sgd(lr=0.1,momentum=0.9,schedule=step,step_size=2,gamma=0.5)",
    "adam(lr=0.01,schedule=onecycle,total_steps=6)",
    "rmsprop(lr=0.01,schedule=cosine,clip_norm=0.5)",
])
def test_the_lab_uses_torchs_schedulers_and_the_adapter_follows_them(spec):
    """A torch optimizer gets torch's own scheduler; the engine adapter reads the lr (and
    OneCycleLR's β₁) the scheduler writes into its param group: both train alike."""
    from engine import parse_spec
    from engine import training as T
    from engine.training.adapter import make_torch_scheduler

    run = parse_spec(spec)
    clip = run.resolved()["clip_norm"]
    finals = []
    for backend in ("auto", "engine"):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Tanh(),
                                    torch.nn.Linear(4, 3))
        opt = T.make_torch_optimizer(run, model.parameters(), backend=backend)
        sched = make_torch_scheduler(run, opt, 6)
        assert type(sched).__name__ == schedules.TORCH_CLASSES[run.resolved()["schedule"]]
        gen = torch.Generator().manual_seed(1)
        lrs = []
        for _ in range(6):
            x, y = torch.rand(16, 6, generator=gen), torch.randint(0, 3, (16,), generator=gen)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        assert len(set(lrs)) > 1  # the rate changed
        finals.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*finals, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_batches_and_sweeps_follow_the_schedule_and_clipping():
    """run_batch (maps, sweeps) takes the same scheduled, clipped steps as single runs, with
    each run's own lr under the schedule."""
    from engine import get_surface, parse_spec, run_batch, run_trajectory

    s = get_surface("himmelblau")
    spec = parse_spec("sgd(lr=0.01,momentum=0.9,schedule=onecycle,max_lr=0,clip_norm=20)")
    starts = np.array([[0.5, -1.0], [-4.0, 4.5], [3.5, -3.0]])
    res = run_batch(s, spec, starts, 30)
    for i, start in enumerate(starts):
        np.testing.assert_array_equal(res.points[i], run_trajectory(s, spec, start, 30).points[-1])
    lrs = np.array([0.005, 0.02])
    sweep = run_batch(s, spec, starts[0], 30, hyper_overrides={"lr": lrs})
    for i, lr in enumerate(lrs):
        single = run_trajectory(s, spec.with_values(lr=float(lr)), starts[0], 30)
        np.testing.assert_array_equal(sweep.points[i], single.points[-1])

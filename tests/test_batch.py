"""Batches of runs: every rule vectorized over starts and hyperparameters, one code path.

``run_batch`` must give, run by run, what ``run_trajectory`` gives (bit for bit: the same
rule and the same step run on a batch with no leading axis), for every optimizer, with
per-run divergence, per-run hyperparameters and per-run random streams.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine import REGISTRY, get_surface, parse_spec, run_batch, run_trajectory
from engine.optimizers import FROM_BASE, build_optimizer
from engine.spec import canonical
from engine.trajectory import BAD_START, LEFT_BOX, OK, run_generator

HIMMELBLAU = get_surface("himmelblau")
QUAD = get_surface("quadratic")
STARTS = np.array([[0.5, -1.0], [-4.0, 4.5], [3.5, -3.0], [0.0, 0.0], [-2.2, -4.9]])
STEPS = 40


def playground_spec(name: str):
    spec = REGISTRY[name]
    values = {k: parse_spec(v) if spec.hyper(k).kind == "spec" else v
              for k, v in spec.playground.items()}
    return canonical(name, **values)


def assert_run_matches(res, i, traj):
    """Run ``i`` of a batch result is the single run ``traj``."""
    assert res.steps[i] == traj.steps
    np.testing.assert_array_equal(res.points[i], traj.points[-1])
    # f of one point and of a batch of points may differ in the last bit (numpy evaluates
    # arrays and scalars differently); near a minimum that is visible relative to f
    assert res.losses[i] == pytest.approx(traj.losses[-1], rel=1e-14, abs=1e-28)
    # run_norms sums the two squares by hand; np.linalg.norm may differ in the last bit
    assert res.grad_norms[i] == pytest.approx(np.linalg.norm(traj.grads[-1]), rel=4e-16)
    assert res.diverged_at[i] == (-1 if traj.diverged_at is None else traj.diverged_at)
    assert res.reason(i) == traj.diverged_reason


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_rule_gives_its_single_runs_cell_by_cell(name):
    spec = playground_spec(name)
    res = run_batch(HIMMELBLAU, spec, STARTS, STEPS, keep_path=True, chunk=3)
    assert len(res) == len(STARTS)
    # a rule that draws random directions draws its own for each run (checked below);
    # run 0's are the single run's
    starts = STARTS[:1] if REGISTRY[name].estimates_gradient else STARTS
    for i, start in enumerate(starts):
        traj = run_trajectory(HIMMELBLAU, spec, start, STEPS)
        assert_run_matches(res, i, traj)
        # the path is the trajectory, then frozen at its last point if it diverged
        np.testing.assert_array_equal(res.paths[: traj.steps + 1, i], traj.points)
        assert np.all(res.paths[traj.steps:, i] == traj.points[-1])


def test_divergence_is_per_run_and_the_others_go_on():
    # on the quadratic (curvature 4 along w2) gd diverges for lr > 0.5
    lrs = np.array([0.1, 0.6, 0.45, 2.0])
    res = run_batch(QUAD, parse_spec("gd(lr=0.1)"), (-5, -2), 400,
                    hyper_overrides={"lr": lrs})
    assert res.diverged.tolist() == [False, True, False, True]
    assert res.steps[0] == 400 and res.steps[2] == 400
    assert res.codes[1] == LEFT_BOX and res.codes[0] == OK
    assert res.diverged_at[3] < res.diverged_at[1]  # the larger step blows up sooner
    for i, lr in enumerate(lrs):
        assert_run_matches(res, i, run_trajectory(QUAD, parse_spec(f"gd(lr={lr})"),
                                                  (-5, -2), 400))
    assert np.all(np.isfinite(res.points)) and np.all(np.isfinite(res.losses))


def _other_value(hyper):
    """A valid value of ``hyper`` different from its default (or the default if none)."""
    default = float(hyper.default)
    for value in (default * 0.8, default * 1.1, hyper.lo + 0.05, (hyper.lo + hyper.hi) / 2):
        if value != default and hyper.contains(value):
            return value
    return default


def _float_hypers(run, prefix=""):
    out = []
    for hyper in run.spec.hypers:
        if hyper.kind == "float":
            out.append((prefix + hyper.name, hyper))
        elif hyper.kind == "spec":
            out += _float_hypers(run.resolved()[hyper.name], prefix + hyper.name + ".")
    return out


def _with(run, name, value):
    head, _, rest = name.partition(".")
    if rest:
        return run.with_values(**{head: _with(run.resolved()[head], rest, value)})
    return run.with_values(**{name: value})


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_float_hyperparameter_can_vary_per_run(name):
    spec = playground_spec(name)
    hypers = _float_hypers(spec)
    assert hypers, name
    random = bool(REGISTRY[name].estimates_gradient)  # run i > 0 draws its own directions
    for hname, hyper in hypers:
        current = _get(spec, hname)
        values = np.array([current, _other_value(hyper)])
        for order in ([0, 1], [1, 0]) if random else ([0, 1],):
            res = run_batch(HIMMELBLAU, spec, STARTS[0], 25,
                            hyper_overrides={hname: values[order]})
            np.testing.assert_array_equal(res.hypers[hname], values[order])
            for i, value in enumerate(values[order][:1] if random else values[order]):
                traj = run_trajectory(HIMMELBLAU, _with(spec, hname, float(value)),
                                      STARTS[0], 25)
                assert_run_matches(res, i, traj)


def _get(run, name):
    head, _, rest = name.partition(".")
    return _get(run.resolved()[head], rest) if rest else float(run.resolved()[name])


def test_sweep_of_two_hyperparameters_on_a_grid():
    lrs, mus = np.meshgrid(np.linspace(0.02, 0.6, 6), np.linspace(0.0, 0.9, 5))
    res = run_batch(QUAD, parse_spec("sgd(lr=0.1,momentum=0.5)"), (-5, -2), 200,
                    hyper_overrides={"lr": lrs.ravel(), "momentum": mus.ravel()}, tol=1e-6)
    for i, (lr, mu) in enumerate(zip(lrs.ravel(), mus.ravel(), strict=True)):
        traj = run_trajectory(QUAD, parse_spec(f"sgd(lr={lr},momentum={mu})"), (-5, -2), 200)
        assert_run_matches(res, i, traj)
        norms = np.linalg.norm(traj.grads, axis=-1)
        first = np.flatnonzero(norms < 1e-6)
        assert res.steps_to_tol[i] == (first[0] if len(first) else -1)
    assert (res.steps_to_tol >= 0).any() and (res.steps_to_tol < 0).any()


@pytest.mark.parametrize("text", [
    "gd(lr=0.05,noise=2,seed=4)",
    "sam(base=adam(lr=0.05),rho=0.1,noise=1,seed=2)",
    "forward_gradient(lr=0.01,seed=5)",
    "forward_gradient(lr=0.01,seed=5,noise=0.5)",
])
def test_random_streams_are_per_run_and_run_zero_is_the_single_run(text):
    spec = parse_spec(text)
    starts = np.repeat(STARTS[:1], 3, axis=0)  # the same start three times
    a = run_batch(HIMMELBLAU, spec, starts, 30)
    b = run_batch(HIMMELBLAU, spec, starts, 30)
    np.testing.assert_array_equal(a.points, b.points)  # reproducible
    assert_run_matches(a, 0, run_trajectory(HIMMELBLAU, spec, starts[0], 30))
    assert not np.allclose(a.points[0], a.points[1])  # each run draws its own numbers
    assert not np.allclose(a.points[1], a.points[2])
    # run i's numbers depend on the seed and i only, not on the size of the batch or on
    # how it is cut into chunks
    c = run_batch(HIMMELBLAU, spec, starts[:2], 30)
    np.testing.assert_array_equal(c.points, a.points[:2])
    d = run_batch(HIMMELBLAU, spec, starts, 30, chunk=2)
    np.testing.assert_array_equal(d.points, a.points)


def test_mini_batches_are_per_run():
    surface = get_surface("linear_regression")
    spec = parse_spec("sgd(lr=0.05,momentum=0.5,batch=5,seed=3)")
    starts = np.repeat([[2.0, -1.0]], 3, axis=0)
    res = run_batch(surface, spec, starts, 50)
    np.testing.assert_array_equal(res.points, run_batch(surface, spec, starts, 50, chunk=1).points)
    assert_run_matches(res, 0, run_trajectory(surface, spec, starts[0], 50))
    assert not np.allclose(res.points[0], res.points[1])
    np.testing.assert_array_equal(res.points, run_batch(surface, spec, starts, 50).points)


def test_run_generators_are_distinct_and_run_zero_is_the_plain_seed():
    assert run_generator(7, 0).standard_normal() == np.random.default_rng(7).standard_normal()
    draws = {run_generator(7, i).standard_normal() for i in range(50)}
    draws |= {run_generator(7, i, (0xBA7C,)).standard_normal() for i in range(50)}
    assert len(draws) == 100


def test_a_start_where_the_surface_is_undefined_diverges_at_step_zero():
    from engine.expression import surface_from_expression

    surface = surface_from_expression("log(w1) + w2**2", (-1.0, 3.0, -2.0, 2.0))
    spec = parse_spec("gd(lr=0.1)")
    res = run_batch(surface, spec, [[2.0, 1.0], [-0.5, 1.0], [1.0, 1.0]], 10)
    assert res.diverged.tolist() == [False, True, True]
    assert res.diverged_at[1] == 0 and res.codes[1] == BAD_START and res.steps[1] == 0
    assert "not defined" in res.reason(1)
    # (log may round differently in numpy's SIMD loops than for one number: compare closely)
    np.testing.assert_allclose(res.points[0], run_trajectory(surface, spec, (2, 1), 10).points[-1],
                               rtol=1e-12)
    # from (1, 1) the run itself walks into w1 < 0, where log is undefined
    single = run_trajectory(surface, spec, (1, 1), 10)
    assert res.diverged_at[2] == single.diverged_at and res.reason(2) == single.diverged_reason
    assert 0 < res.diverged_at[2] < 10


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"hyper_overrides": {"window": [3, 4]}}, "only its own float"),
    ({"hyper_overrides": {"noise": [0.1, 0.2]}}, "shared by the whole batch"),
    ({"hyper_overrides": {"lr": [0.1, -1.0]}}, "out of range"),
    ({"hyper_overrides": {"lr": [0.1, 0.2], "rho1": [0.1]}}, "same length"),
    ({"hyper_overrides": {"nope": [0.1]}}, "no hyperparameter"),
])
def test_bad_overrides_say_why(kwargs, message):
    with pytest.raises(ValueError, match=message):
        run_batch(QUAD, parse_spec("adasmooth(lr=0.1)"), (1, 1), 5, **kwargs)


def test_bad_starts_say_why():
    with pytest.raises(ValueError, match="shape"):
        run_batch(QUAD, parse_spec("gd(lr=0.1)"), np.zeros((3, 3)), 5)
    with pytest.raises(ValueError, match="finite"):
        run_batch(QUAD, parse_spec("gd(lr=0.1)"), [[0.0, np.nan]], 5)
    with pytest.raises(ValueError, match="steps"):
        run_batch(QUAD, parse_spec("gd(lr=0.1)"), [[0.0, 1.0]], -1)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_updates_are_lr_times_a_direction_and_states_do_not_hold_lr(name):
    """The contract schedules rely on: update(2η) = 2·update(η) from the same state and
    gradient, and the new states agree (except AdaSmooth's window of displacements).

    Rules that choose their own step length (line searches, trust regions, Levenberg–
    Marquardt, scaled CG) have no such factor, and L-BFGS keeps torch's t = lr in its state
    (torch forms s = t·d from it): schedules reach them through build_optimizer's per-step
    overrides instead (engine.trajectory), which needs no linearity."""
    spec = playground_spec(name)
    if REGISTRY[name].step_source:
        pytest.skip(f"{name} finds its own step ({REGISTRY[name].step_source})")
    lr_name = "lr" if "lr" in {h.name for h in spec.spec.hypers} else "base.lr"
    traj = run_trajectory(HIMMELBLAU, spec, STARTS[0], 6)
    lr = _get(spec, lr_name)
    one = build_optimizer(spec, {lr_name: lr})
    two = build_optimizer(spec, {lr_name: 2 * lr})
    for k in range(1, traj.steps + 1):
        w, g, state = traj.points[k - 1], traj.used_grads[k], traj.states[k - 1]
        u1, s1 = one.update(g, state, w, HIMMELBLAU)
        u2, s2 = two.update(g, state, w, HIMMELBLAU)
        np.testing.assert_allclose(u2, 2 * u1, rtol=1e-12, atol=1e-300)
        for field, a, b in _leaves(s1, s2):
            if field == "window":
                continue
            if field == "lr_t":  # Adagrad's decayed rate η_t = η/(1 + (t−1)·λ) is shown, not used
                np.testing.assert_allclose(b, 2 * a, rtol=1e-12)
                continue
            np.testing.assert_array_equal(a, b, err_msg=f"{name}: {field}")


def _leaves(a, b, prefix=""):
    for field in a._fields:
        x, y = getattr(a, field), getattr(b, field)
        if hasattr(x, "_fields"):
            yield from _leaves(x, y, prefix + field + ".")
        else:
            yield prefix + field, x, y


def test_a_wrapper_declares_its_base_velocity_and_batches_keep_it():
    assert REGISTRY["sam"].velocity == FROM_BASE
    res = run_batch(HIMMELBLAU, parse_spec("sam(base=adam(lr=0.05),rho=0.05)"), STARTS, 3)
    assert res.points.shape == (len(STARTS), 2)


def test_progress_is_reported_per_chunk_and_can_cancel():
    from engine.trajectory import BatchCancelled

    starts = np.tile(STARTS, (4, 1))  # 20 runs
    seen = []
    res = run_batch(QUAD, parse_spec("adam(lr=0.1)"), starts, 20, chunk=6, workers=2,
                    progress=lambda done, total: seen.append((done, total)))
    assert seen == [(6, 20), (12, 20), (18, 20), (20, 20)]
    np.testing.assert_array_equal(
        res.points, run_batch(QUAD, parse_spec("adam(lr=0.1)"), starts, 20).points)
    calls = []

    def stop(done, total):
        calls.append(done)
        return False

    with pytest.raises(BatchCancelled):
        run_batch(QUAD, parse_spec("adam(lr=0.1)"), starts, 20, chunk=5, workers=1,
                  progress=stop)
    assert calls == [5]

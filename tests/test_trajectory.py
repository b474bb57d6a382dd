"""Trajectories: every step recorded; divergence is a result, never an exception."""

import numpy as np
import pytest

from engine import get_surface, parse_spec, run_trajectory
from engine.trajectory import divergence_limit


@pytest.fixture
def quadratic():
    return get_surface("quadratic")


def test_records_every_step(quadratic):
    traj = run_trajectory(quadratic, parse_spec("adam(lr=0.1)"), (1.0, 1.0), 12)
    assert traj.steps == 12 and not traj.diverged
    assert traj.points.shape == (13, 2) and traj.losses.shape == (13,)
    assert len(traj.states) == 13 and traj.states[0].t == 0 and traj.states[12].t == 12
    np.testing.assert_allclose(traj.points[0], (1.0, 1.0))
    np.testing.assert_allclose(np.diff(traj.points, axis=0), traj.updates[1:])
    np.testing.assert_allclose(traj.used_grads[1:], quadratic.grad(traj.points[:-1]))
    assert np.isnan(traj.used_grads[0]).all()


def test_zero_steps_is_just_the_start(quadratic):
    traj = run_trajectory(quadratic, parse_spec("gd(lr=0.1)"), (-5, -2), 0)
    assert traj.steps == 0 and traj.points.tolist() == [[-5.0, -2.0]]


def test_growing_run_is_marked_diverged_and_stays_finite(quadratic):
    # |1 − 4·lr| = 3 > 1 on w2: the iterates grow geometrically until they leave the box
    traj = run_trajectory(quadratic, parse_spec("gd(lr=1)"), (-5, -2), 1000)
    assert traj.diverged
    centre, radius = divergence_limit(quadratic)
    assert traj.diverged_at == traj.steps + 1
    assert np.all(np.isfinite(traj.points)) and np.all(np.isfinite(traj.losses))
    assert np.max(np.abs(traj.points - centre)) <= radius
    assert "box" in traj.diverged_reason
    # the step before divergence really was the last one inside the box
    w = traj.points[-1]
    assert np.max(np.abs(w + (-1.0 * quadratic.grad(w)) - centre)) > radius


def test_overflow_to_inf_is_divergence_not_an_error(quadratic):
    traj = run_trajectory(quadratic, parse_spec("gd(lr=1e4)"), (-5, -2), 50)
    assert traj.diverged and traj.diverged_at <= 5
    assert np.all(np.isfinite(traj.points))


def test_bad_arguments_raise_clear_errors(quadratic):
    with pytest.raises(ValueError, match="steps must be between"):
        run_trajectory(quadratic, parse_spec("gd"), (0, 0), -1)
    with pytest.raises(ValueError, match="finite"):
        run_trajectory(quadratic, parse_spec("gd"), (np.nan, 0), 5)


def test_noise_is_seeded_and_reproducible(quadratic):
    a = run_trajectory(quadratic, parse_spec("gd(lr=0.1,noise=0.5,seed=1)"), (-5, -2), 20)
    b = run_trajectory(quadratic, parse_spec("gd(lr=0.1,noise=0.5,seed=1)"), (-5, -2), 20)
    c = run_trajectory(quadratic, parse_spec("gd(lr=0.1,noise=0.5,seed=2)"), (-5, -2), 20)
    clean = run_trajectory(quadratic, parse_spec("gd(lr=0.1)"), (-5, -2), 20)
    np.testing.assert_array_equal(a.points, b.points)
    assert not np.allclose(a.points, c.points)
    assert not np.allclose(a.points, clean.points)
    # the recorded gradient is the true one; the noisy one is what the step used
    np.testing.assert_allclose(a.grads, quadratic.grad(a.points))
    assert not np.allclose(a.used_grads[1:], quadratic.grad(a.points[:-1]))


def test_start_point_messages_show_plain_numbers():
    from engine.expression import surface_from_expression

    s = surface_from_expression("log(w1) + w2")
    with pytest.raises(ValueError) as info:
        run_trajectory(s, parse_spec("gd(lr=0.1)"), np.array([-2.76, 1.0]), 5)
    assert str(info.value).endswith("start point (-2.76, 1)")
    with pytest.raises(ValueError) as info:
        run_trajectory(s, parse_spec("gd(lr=0.1)"), np.array([np.nan, 1.0]), 5)
    assert "np." not in str(info.value) and "(nan, 1)" in str(info.value)

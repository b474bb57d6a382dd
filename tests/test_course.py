"""The course exercise (COURSE.md section 2), reproduced exactly.

The reference is a transcription of the students' NumPy exercise code: float32 arrays,
start W = (−5, −2), state vectors starting at zero. The engine computes in float64 and must
agree to 1e-5 relative at every one of the 30 steps.
"""

import numpy as np
import pytest

from engine import get_surface, run_trajectory
from engine.presets import COURSE

F32 = np.float32


def assert_close_per_step(actual, reference, rtol):
    """‖actual_k − reference_k‖ ≤ rtol·‖reference_k‖ at every step k.

    Relative in the vector norm: where one coordinate crosses zero, float32 rounding in the
    reference alone exceeds 1e-5 of that tiny coordinate, though the point is right.
    """
    err = np.linalg.norm(actual - reference, axis=-1)
    scale = np.linalg.norm(reference, axis=-1)
    worst = int(np.argmax(err / scale))
    assert np.all(err <= rtol * scale), (
        f"step {worst}: {actual[worst]} vs {reference[worst]} "
        f"(relative error {err[worst] / scale[worst]:.3g} > {rtol})"
    )


def grad_f32(W):
    return np.array([0.2 * W[0], 4 * W[1]], dtype=W.dtype)


def exercise_gd(n, lr=0.4, dtype=F32):
    F32 = dtype  # noqa: N806 - the exercise code is transcribed as written
    W = np.array([-5, -2], dtype=F32)
    out = [W.copy()]
    for _ in range(n):
        W = W - F32(lr) * grad_f32(W)
        out.append(W.copy())
    return np.array(out)


def exercise_momentum(n, lr=0.6, beta=0.5, dtype=F32):
    F32 = dtype  # noqa: N806
    W = np.array([-5, -2], dtype=F32)
    V = np.zeros(2, dtype=F32)
    out = [W.copy()]
    for _ in range(n):
        dW = grad_f32(W)
        V = F32(beta) * V + F32(1 - beta) * dW
        W = W - F32(lr) * V
        out.append(W.copy())
    return np.array(out)


def exercise_rmsprop(n, lr=0.3, gamma=0.9, eps=1e-6, dtype=F32):
    F32 = dtype  # noqa: N806
    W = np.array([-5, -2], dtype=F32)
    S = np.zeros(2, dtype=F32)
    out = [W.copy()]
    for _ in range(n):
        dW = grad_f32(W)
        S = F32(gamma) * S + F32(1 - gamma) * dW**2
        W = W - F32(lr) * dW / np.sqrt(S + F32(eps))
        out.append(W.copy())
    return np.array(out)


def exercise_adam(n, lr=0.2, beta1=0.9, beta2=0.999, eps=1e-6, dtype=F32):
    F32 = dtype  # noqa: N806
    W = np.array([-5, -2], dtype=F32)
    V = np.zeros(2, dtype=F32)
    S = np.zeros(2, dtype=F32)
    out = [W.copy()]
    for t in range(1, n + 1):
        dW = grad_f32(W)
        V = F32(beta1) * V + F32(1 - beta1) * dW
        S = F32(beta2) * S + F32(1 - beta2) * dW**2
        V_hat = V / F32(1 - beta1**t)
        S_hat = S / F32(1 - beta2**t)
        W = W - F32(lr) * V_hat / (np.sqrt(S_hat) + F32(eps))
        out.append(W.copy())
    return np.array(out)


REFERENCES = [exercise_gd, exercise_momentum, exercise_rmsprop, exercise_adam]

# COURSE.md's table: W after iteration 1 and 2 (what part (a) writes out by hand)
TABLE = [
    ((-4.6, 1.2), (-4.232, -0.72)),
    ((-4.7, 0.4), (-4.268, 1.12)),
    ((-4.0513215, -1.0513168), (-3.4351975, -0.5915234)),
    ((-4.8, -1.8), (-4.6002548, -1.6008245)),
]


@pytest.fixture(scope="module")
def course_runs():
    surface = get_surface(COURSE.surface)
    return [run_trajectory(surface, spec, COURSE.start, COURSE.steps) for spec in COURSE.specs()]


def test_preset_is_the_exercise():
    assert COURSE.surface == "quadratic"
    assert COURSE.start == (-5.0, -2.0)
    assert COURSE.steps == 30
    assert [s.name for s in COURSE.specs()] == ["gd", "momentum", "rmsprop", "adam"]


@pytest.mark.parametrize("index", range(4), ids=["gd", "momentum", "rmsprop", "adam"])
def test_first_two_iterations_match_the_course_table(course_runs, index):
    traj = course_runs[index]
    w1, w2 = TABLE[index]
    np.testing.assert_allclose(traj.points[1], w1, rtol=2e-7, atol=1e-7)
    np.testing.assert_allclose(traj.points[2], w2, rtol=2e-7, atol=1e-7)


@pytest.mark.parametrize("index", range(4), ids=["gd", "momentum", "rmsprop", "adam"])
def test_every_step_matches_the_float32_exercise_code(course_runs, index):
    traj = course_runs[index]
    reference = REFERENCES[index](30).astype(float)
    assert traj.steps == 30 and not traj.diverged
    assert_close_per_step(traj.points, reference, rtol=1e-5)


@pytest.mark.parametrize("index", range(4), ids=["gd", "momentum", "rmsprop", "adam"])
def test_every_step_matches_the_exercise_code_in_float64(course_runs, index):
    """The same code in float64 agrees coordinate by coordinate to rounding error."""
    reference = REFERENCES[index](30, dtype=np.float64)
    np.testing.assert_allclose(course_runs[index].points, reference, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("index", range(4), ids=["gd", "momentum", "rmsprop", "adam"])
def test_step_30_golden_value(course_runs, index):
    reference = REFERENCES[index](30).astype(float)[30:]
    assert_close_per_step(course_runs[index].points[30:], reference, rtol=1e-5)
    # and the run really got somewhere near the minimum at (0, 0)
    assert np.linalg.norm(course_runs[index].points[30]) < 0.5


def test_losses_and_gradients_are_recorded(course_runs):
    surface = get_surface("quadratic")
    for traj in course_runs:
        np.testing.assert_allclose(traj.losses, 0.1 * traj.points[:, 0] ** 2
                                   + 2 * traj.points[:, 1] ** 2)
        np.testing.assert_allclose(traj.grads, surface.grad(traj.points))
        assert len(traj.states) == 31

"""BFGS, L-BFGS, CG, Levenberg–Marquardt, scaled CG and the dogleg trust region.

Checked against references: scipy.optimize's iteration counts (bfgs, cg), torch.optim.LBFGS's
paths (lbfgs), a plain transcription of Møller's paper (scg), Nocedal & Wright's dogleg and
ratio rules (trust_region) and the quality bar of issue 12 (lm on Rosenbrock).
"""

from __future__ import annotations

import numpy as np
import pytest

from engine import get_surface, parse_spec, run_trajectory
from engine.optimizers.linesearch import strong_wolfe, trials_of
from engine.optimizers.trust_region import dogleg

CASES = [("rosenbrock", (-1.2, 1.0)), ("himmelblau", (-0.5, 0.5)), ("beale", (1.0, 1.0))]


def iterations_to(spec: str, name: str, start, tol: float = 1e-5, limit: int = 300):
    """Steps until ‖∇f‖ < tol, and the trajectory."""
    traj = run_trajectory(get_surface(name), parse_spec(spec), start, limit)
    norms = np.linalg.norm(traj.grads, axis=1)
    below = np.nonzero(norms < tol)[0]
    assert below.size, f"{spec} did not reach ‖∇f‖ < {tol} on {name} in {limit} steps"
    return int(below[0]), traj


def scipy_iterations(method: str, name: str, start, tol: float = 1e-5) -> int:
    so = pytest.importorskip("scipy.optimize")
    s = get_surface(name)
    norms: list[float] = []
    so.minimize(lambda x: float(s.value(x)), start, jac=s.grad, method=method,
                callback=lambda xk: norms.append(float(np.linalg.norm(s.grad(xk)))),
                options={"gtol": 1e-10, "maxiter": 1000})
    return next(i + 1 for i, v in enumerate(norms) if v < tol)


# ------------------------------------------------------------------ the quality bar


@pytest.mark.parametrize("name,start", CASES)
def test_bfgs_needs_no_more_iterations_than_scipy(name, start):
    ours, traj = iterations_to("bfgs()", name, start)
    theirs = scipy_iterations("BFGS", name, start)
    assert ours <= 1.5 * theirs, (ours, theirs)
    H = traj.states[ours].H
    assert traj.states[ours].updates > 0 and np.all(np.linalg.eigvalsh(H) > 0)


@pytest.mark.parametrize("variant", ["polak_ribiere", "fletcher_reeves"])
@pytest.mark.parametrize("name,start", CASES)
def test_cg_needs_no_more_iterations_than_scipy(name, start, variant):
    ours, _ = iterations_to(f"cg(variant={variant})", name, start)
    theirs = scipy_iterations("CG", name, start)
    assert ours <= 1.5 * theirs, (ours, theirs)


@pytest.mark.parametrize("update,bar", [("nielsen", 30), ("marquardt", 30)])
def test_lm_solves_rosenbrock_in_at_most_30_steps(update, bar):
    traj = run_trajectory(get_surface("rosenbrock"), parse_spec(f"lm(damping_update={update})"),
                          (-1.2, 1.0), bar)
    assert traj.losses[-1] < 1e-10
    assert np.any(~np.array([s.accepted for s in traj.states[1:]]))  # μ had to grow somewhere


def test_lm_refuses_a_surface_that_is_not_a_sum_of_squares():
    with pytest.raises(ValueError, match="sum of squares.*ackley is not"):
        run_trajectory(get_surface("ackley"), parse_spec("lm()"), (1.0, 1.0), 3)


def test_lm_on_linear_regression_is_gauss_newton():
    """Zero residual curvature: with little damping one step lands next to the fit."""
    s = get_surface("linear_regression")
    traj = run_trajectory(s, parse_spec("lm(tau=1e-9)"), s.start, 2)
    np.testing.assert_allclose(traj.points[1], s.fit, atol=1e-6)


def test_every_surface_residual_matches_its_value_and_gradient():
    for name in ("quadratic", "booth", "rosenbrock", "beale", "himmelblau",
                 "linear_regression"):
        s = get_surface(name)
        for p in (np.array([-1.2, 1.0]), np.array([0.7, -0.3])):
            r, J = s.residuals(p), s.residual_jacobian(p)
            assert r @ r == pytest.approx(float(s.value(p)), rel=1e-12, abs=1e-12)
            np.testing.assert_allclose(2 * J.T @ r, s.grad(p), rtol=1e-10, atol=1e-10)
    assert not get_surface("rastrigin").has_residuals


# ------------------------------------------------------------------ line search


def test_line_search_trials_record_the_conditions():
    s = get_surface("rosenbrock")
    w = np.array([-1.2, 1.0])
    g = s.grad(w)
    f0 = float(s.value(w))
    ls = strong_wolfe(s, w, -g, f0, g, t1=1.0, c1=1e-4, c2=0.9)  # far too long a first try
    assert ls.converged and len(ls.trials) > 1
    assert ls.trials[0].t == 1.0 and not ls.trials[0].armijo  # overshoots, then zooms
    last = ls.trials[-1]
    assert last.t == ls.t and last.armijo and last.curvature
    slope0 = float(g @ -g)
    for tr in ls.trials:
        p = w - tr.t * g
        assert tr.f == pytest.approx(float(s.value(p)))
        assert tr.slope == pytest.approx(float(s.grad(p) @ -g))
        assert tr.armijo == (tr.f <= f0 + 1e-4 * tr.t * slope0)
        assert tr.curvature == (abs(tr.slope) <= 0.9 * abs(slope0))


def test_bfgs_records_each_step_line_search_and_evaluations():
    traj = run_trajectory(get_surface("rosenbrock"), parse_spec("bfgs()"), (-1.2, 1.0), 10)
    for k in range(1, 11):
        st = traj.states[k]
        trials = trials_of(st)
        assert traj.evals[k] == len(trials) + (1 if k == 1 else 0)
        accepted = [tr for tr in trials if tr.t == st.step]
        assert accepted and accepted[-1].armijo and accepted[-1].curvature
        np.testing.assert_allclose(traj.points[k], traj.points[k - 1] + st.step * st.direction)


# ------------------------------------------------------------------ torch's L-BFGS

torch = pytest.importorskip("torch")


def _torch_f(name, x):
    a, b = x[0], x[1]
    if name == "rosenbrock":
        return (1 - a) ** 2 + 100 * (b - a * a) ** 2
    if name == "himmelblau":
        return (a * a + b - 11) ** 2 + (a + b * b - 7) ** 2
    return ((1.5 - a + a * b) ** 2 + (2.25 - a + a * b * b) ** 2
            + (2.625 - a + a * b ** 3) ** 2)


@pytest.mark.parametrize("history", [100, 2])
@pytest.mark.parametrize("line_search", ["none", "strong_wolfe"])
@pytest.mark.parametrize("name,start", CASES)
def test_lbfgs_paths_equal_torch(name, start, line_search, history):
    steps = 40
    lr = 1.0 if line_search == "strong_wolfe" else (0.001 if name == "rosenbrock" else 0.01)
    x = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([x], lr=lr, max_iter=1, max_eval=25, history_size=history,
                            line_search_fn=None if line_search == "none" else line_search)

    def closure():
        opt.zero_grad()
        f = _torch_f(name, x)
        f.backward()
        return f

    expected = [x.detach().numpy().copy()]
    for _ in range(steps):
        opt.step(closure)
        expected.append(x.detach().numpy().copy())
    spec = f"lbfgs(lr={lr},history_size={history},line_search_fn={line_search})"
    traj = run_trajectory(get_surface(name), parse_spec(spec), start, steps)
    np.testing.assert_allclose(traj.points, np.array(expected), rtol=0, atol=1e-6)
    assert traj.states[-1].func_evals == opt.state[x]["func_evals"]
    assert traj.evals.sum() == opt.state[x]["func_evals"]


# ------------------------------------------------------------------ Møller's SCG


def moller_plain(E, dE, w, sigma, lam1, iterations):
    """Møller (1993), section 2.3, written out as a plain loop: the reference path."""
    N = len(w)
    w = np.array(w, dtype=float)
    p = r = -dE(w)
    lam, lam_bar, success, k = lam1, 0.0, True, 1
    path = [w.copy()]
    delta = 0.0
    while k <= iterations:
        if success:  # 2
            sigma_k = sigma / np.linalg.norm(p)
            s = (dE(w + sigma_k * p) - dE(w)) / sigma_k
            delta = p @ s
        delta = delta + (lam - lam_bar) * (p @ p)  # 3
        if delta <= 0:  # 4
            lam_bar = 2 * (lam - delta / (p @ p))
            delta = -delta + lam * (p @ p)
            lam = lam_bar
        mu = p @ r  # 5
        alpha = mu / delta
        p_k = p  # step 8 scales by |p_k|², the direction of this iteration
        Delta = 2 * delta * (E(w) - E(w + alpha * p)) / mu**2  # 6
        if Delta >= 0:  # 7
            w = w + alpha * p
            r_new = -dE(w)
            lam_bar, success = 0.0, True
            if k % N == 0:
                p = r_new
            else:
                beta = (r_new @ r_new - r_new @ r) / mu
                p = r_new + beta * p
            r = r_new
            if Delta >= 0.75:
                lam = lam / 4
        else:
            lam_bar, success = lam, False
        if Delta < 0.25:  # 8
            lam = lam + delta * (1 - Delta) / (p_k @ p_k)
        path.append(w.copy())
        if not np.any(r):
            break
        k += 1
    return np.array(path)


@pytest.mark.parametrize("name,start", CASES)
def test_scg_follows_the_paper(name, start):
    s = get_surface(name)
    ref = moller_plain(lambda x: float(s.value(x)), s.grad, start, 1e-4, 1e-6, 120)
    traj = run_trajectory(s, parse_spec("scg()"), start, len(ref) - 1)
    np.testing.assert_allclose(traj.points, ref, rtol=0, atol=1e-12)
    assert np.linalg.norm(traj.grads[-1]) < np.linalg.norm(traj.grads[0]) * 1e-3


# ------------------------------------------------------------------ trust region


def test_dogleg_pieces():
    B = np.array([[2.0, 0.0], [0.0, 20.0]])
    g = np.array([2.0, 2.0])
    newton = -np.linalg.solve(B, g)
    p, kind = dogleg(g, B, 10.0)
    assert kind == "newton" and np.allclose(p, newton)
    p, kind = dogleg(g, B, 0.01)
    assert kind == "cauchy" and np.allclose(p, -0.01 * g / np.linalg.norm(g))
    p, kind = dogleg(g, B, 0.5)
    assert kind == "dogleg" and np.linalg.norm(p) == pytest.approx(0.5)
    p, kind = dogleg(g, np.diag([1.0, -1.0]), 0.5)  # indefinite: the Cauchy point
    assert kind.startswith("cauchy") and np.linalg.norm(p) == pytest.approx(0.5)


def test_trust_region_radius_follows_rho():
    traj = run_trajectory(get_surface("rosenbrock"), parse_spec("trust_region()"),
                          (-1.2, 1.0), 40)
    assert traj.losses[-1] < 1e-12
    for k in range(1, traj.steps + 1):
        st = traj.states[k]
        if not np.isfinite(st.rho):
            continue
        if st.rho < 0.25:
            assert st.next_radius == pytest.approx(st.radius / 4)
        elif st.rho > 0.75 and np.linalg.norm(st.p) == pytest.approx(st.radius):
            assert st.next_radius == pytest.approx(min(2 * st.radius, 100.0))
        else:
            assert st.next_radius == st.radius
        assert st.accepted == (st.rho > 0.15)
        step = st.p if st.accepted else np.zeros(2)
        np.testing.assert_array_equal(traj.points[k], traj.points[k - 1] + step)


def test_methods_without_a_learning_rate_refuse_schedules_and_clipping():
    with pytest.raises(ValueError, match="bfgs has no learning rate to schedule"):
        parse_spec("bfgs(schedule=cosine)")
    with pytest.raises(ValueError, match="cg evaluates further gradients itself"):
        parse_spec("cg(clip_norm=1)")
    spec = parse_spec("lbfgs(schedule=step,step_size=5)")  # lbfgs has lr: scheduled
    traj = run_trajectory(get_surface("quadratic"), spec, (-5.0, -2.0), 12)
    assert traj.lrs[1] == 1.0 and traj.lrs[6] == pytest.approx(0.1)

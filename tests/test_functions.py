"""Built-in surfaces: closed forms against finite differences and sympy, vectorization,
minima, the linear-regression data surface and the sharp/flat SAM demonstration."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine import get_surface, parse_spec, run_trajectory
from engine.expression import surface_from_expression
from engine.functions import SURFACES, LinearRegressionSurface, make_linear_regression

NAMES = list(SURFACES)
H = 1e-5


def random_points(surface, n=8, seed=0):
    """Points inside the view, kept off the view's edges (and off measure-zero kinks)."""
    x0, x1, y0, y1 = surface.view
    rng = np.random.default_rng(seed)
    u = rng.uniform(0.05, 0.95, size=(n, 2))
    return np.column_stack([x0 + u[:, 0] * (x1 - x0), y0 + u[:, 1] * (y1 - y0)])


def fd_grad(f, p, h=H):
    e = np.eye(2) * h
    return np.array([(f(p + e[i]) - f(p - e[i])) / (2 * h) for i in range(2)])


def test_registry_order_and_names():
    assert NAMES[0] == "quadratic"
    assert set(NAMES) >= {"rosenbrock", "beale", "himmelblau", "rastrigin", "ackley", "saddle",
                          "booth", "six_hump_camel", "sharp_flat", "linear_regression"}
    for name, s in SURFACES.items():
        assert s.name == name
    with pytest.raises(ValueError, match="rosenbrock"):
        get_surface("rosenbrok")


@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_central_differences(name):
    s = SURFACES[name]
    for p in random_points(s):
        g = s.grad(p)
        fd = fd_grad(lambda q: float(s.value(q)), p)
        scale = 1.0 + np.max(np.abs(g)) + abs(float(s.value(p))) * 1e-6
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-6 * scale, err_msg=f"{name} at {p}")


@pytest.mark.parametrize("name", NAMES)
def test_hessian_matches_differences_of_gradient(name):
    s = SURFACES[name]
    for p in random_points(s, seed=1):
        hess = s.hessian(p)
        fd = np.array([fd_grad(lambda q, j=j: s.grad(q)[j], p) for j in range(2)])
        scale = 1.0 + np.max(np.abs(hess))
        np.testing.assert_allclose(hess, fd, rtol=1e-5, atol=1e-6 * scale,
                                   err_msg=f"{name} at {p}")
        np.testing.assert_array_equal(hess, hess.T)


@pytest.mark.parametrize("name", NAMES)
def test_closed_forms_agree_with_their_expression(name):
    """The ``expression`` text, parsed and differentiated by sympy, is the same function."""
    s = SURFACES[name]
    c = surface_from_expression(s.expression, view=s.view)
    p = random_points(s, n=16, seed=2)
    np.testing.assert_allclose(c.value(p), s.value(p), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(c.grad(p), s.grad(p), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(c.hessian(p), s.hessian(p), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_vectorized_over_any_leading_shape(name):
    s = SURFACES[name]
    pts = random_points(s, n=12, seed=3).reshape(3, 4, 2)
    v, g, hess = s.value(pts), s.grad(pts), s.hessian(pts)
    assert v.shape == (3, 4) and g.shape == (3, 4, 2) and hess.shape == (3, 4, 2, 2)
    for i in range(3):
        for j in range(4):
            assert v[i, j] == pytest.approx(float(s.value(pts[i, j])), rel=1e-14, abs=1e-14)
            np.testing.assert_allclose(g[i, j], s.grad(pts[i, j]), rtol=1e-14, atol=1e-14)
            np.testing.assert_allclose(hess[i, j], s.hessian(pts[i, j]), rtol=1e-14, atol=1e-14)
    assert s.value(pts[0, 0]).shape == ()
    xs, ys, Z = s.grid(n=7)
    assert Z.shape == (7, 7) and np.isfinite(Z).all()


def _is_strict_local_min(s, m):
    m = np.asarray(m, dtype=float)
    f0 = float(s.value(m))
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    for r in (1e-3, 1e-2):
        ring = m + r * np.column_stack([np.cos(angles), np.sin(angles)])
        if not np.all(s.value(ring) > f0):
            return False
    return True


@pytest.mark.parametrize("name", NAMES)
def test_minima_are_stationary_lower_than_neighbours_and_global(name):
    s = SURFACES[name]
    x0, x1, y0, y1 = s.view
    assert x0 < s.start[0] < x1 and y0 < s.start[1] < y1
    assert np.isfinite(s.value(np.array(s.start)))
    if name == "saddle":
        assert s.minima == ()
        return
    assert s.minima
    values = []
    for m in s.minima:
        assert x0 < m[0] < x1 and y0 < m[1] < y1
        np.testing.assert_allclose(s.grad(np.array(m)), 0.0, atol=1e-9)
        assert _is_strict_local_min(s, m), f"{name}: {m} is not a strict local minimum"
        values.append(float(s.value(np.array(m))))
    np.testing.assert_allclose(values, values[0], atol=1e-12)  # all global: same value
    _, _, Z = s.grid(n=301)
    assert Z.min() >= values[0] - 1e-9, f"{name}: a grid point is below the listed minima"
    for m in s.local_minima:
        np.testing.assert_allclose(s.grad(np.array(m)), 0.0, atol=1e-9)
        assert _is_strict_local_min(s, m)
        assert float(s.value(np.array(m))) > values[0]


def test_known_minima_values():
    assert get_surface("rosenbrock").minima == ((1.0, 1.0),)
    assert get_surface("rosenbrock").log_levels
    assert get_surface("beale").minima == ((3.0, 0.5),)
    assert get_surface("booth").minima == ((1.0, 3.0),)
    assert len(get_surface("himmelblau").minima) == 4
    assert len(get_surface("six_hump_camel").minima) == 2
    assert float(get_surface("six_hump_camel").value(
        np.array(get_surface("six_hump_camel").minima[0]))) == pytest.approx(-1.0316284535)
    assert len(get_surface("six_hump_camel").local_minima) == 4
    for name in ("rastrigin", "ackley"):
        assert get_surface(name).minima == ((0.0, 0.0),)


def test_saddle_is_unbounded_below_with_a_saddle_at_the_origin():
    s = get_surface("saddle")
    np.testing.assert_array_equal(s.grad(np.zeros(2)), [0.0, 0.0])
    assert np.linalg.eigvalsh(s.hessian(np.zeros(2))).tolist() == [-2.0, 2.0]
    assert float(s.value(np.array([0.0, 100.0]))) == -10000.0


def test_ackley_origin_has_zero_subgradient_and_is_the_minimum():
    s = get_surface("ackley")
    assert float(s.value(np.zeros(2))) == pytest.approx(0.0, abs=1e-14)
    np.testing.assert_array_equal(s.grad(np.zeros(2)), [0.0, 0.0])


# ----------------------------------------------------------------------------- linear regression


def test_linear_regression_is_the_mse_of_its_data():
    s = get_surface("linear_regression")
    assert isinstance(s, LinearRegressionSurface)
    assert s.n_samples == 64 and s.x.shape == s.y.shape == (64,)
    p = random_points(s, n=5, seed=4)
    direct = np.mean((p[:, :1] * s.x + p[:, 1:] - s.y) ** 2, axis=1)
    np.testing.assert_allclose(s.value(p), direct, rtol=1e-12)
    np.testing.assert_allclose(s.minima[0], np.polyfit(s.x, s.y, 1), rtol=1e-10)
    assert s.fit == s.minima[0]
    expected_h = 2 * np.array([[np.mean(s.x**2), np.mean(s.x)], [np.mean(s.x), 1.0]])
    np.testing.assert_allclose(s.hessian(p[0]), expected_h, rtol=1e-12)
    with pytest.raises(ValueError):
        s.x[0] = 1.0  # the data are read-only


def test_make_linear_regression_is_seeded():
    a, b = make_linear_regression(n=10, noise=0.5, seed=3), make_linear_regression(10, 0.5, 3)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    c = make_linear_regression(n=10, noise=0.5, seed=4)
    assert not np.array_equal(a.y, c.y)
    exact = make_linear_regression(n=20, noise=0.0, seed=1)
    np.testing.assert_allclose(exact.minima[0], (2.0, -1.0), atol=1e-12)
    with pytest.raises(ValueError):
        make_linear_regression(n=0)


def test_batch_gradients():
    s = get_surface("linear_regression")
    p = np.array([0.3, 0.7])
    np.testing.assert_allclose(s.batch_grad(p, np.arange(s.n_samples)), s.grad(p), rtol=1e-12)
    # equal-sized batches that partition the data average to the full gradient
    parts = np.random.default_rng(0).permutation(s.n_samples).reshape(8, 8)
    mean = np.mean([s.batch_grad(p, idx) for idx in parts], axis=0)
    np.testing.assert_allclose(mean, s.grad(p), rtol=1e-12)
    idx = np.array([5, 2, 2, 40])
    fd = fd_grad(lambda q: float(s.batch_value(q, idx)), p)
    np.testing.assert_allclose(s.batch_grad(p, idx), fd, rtol=1e-7)
    one = s.batch_grad(p, np.array([7]))
    r = p[0] * s.x[7] + p[1] - s.y[7]
    np.testing.assert_allclose(one, [2 * r * s.x[7], 2 * r], rtol=1e-12)
    grid = random_points(s, n=6).reshape(2, 3, 2)
    bg = s.batch_grad(grid, idx)
    assert bg.shape == (2, 3, 2)
    np.testing.assert_allclose(bg[1, 2], s.batch_grad(grid[1, 2], idx), rtol=1e-14)
    for bad in (np.array([], dtype=int), np.array([64]), np.array([0.5])):
        with pytest.raises(ValueError):
            s.batch_grad(p, bad)


# ----------------------------------------------------------------------------- sharp vs flat

SHARP_FLAT = get_surface("sharp_flat")
SHARP = np.array(SHARP_FLAT.local_minima[0])
FLAT = np.array(SHARP_FLAT.minima[0])


def test_sharp_flat_geometry():
    sharp_curv = np.linalg.eigvalsh(SHARP_FLAT.hessian(SHARP))
    flat_curv = np.linalg.eigvalsh(SHARP_FLAT.hessian(FLAT))
    assert sharp_curv.min() > 5 * flat_curv.max()  # sharp in every direction
    assert sharp_curv.max() < 2 / 0.1  # … yet stable for GD with lr = 0.1
    assert float(SHARP_FLAT.value(FLAT)) < float(SHARP_FLAT.value(SHARP))
    assert np.linalg.norm(SHARP - FLAT) > 1.5


@pytest.mark.parametrize("lr", [0.05, 0.075, 0.1])
def test_gd_settles_in_the_sharp_minimum(lr):
    traj = run_trajectory(SHARP_FLAT, parse_spec(f"gd(lr={lr})"), SHARP_FLAT.start, 400)
    assert not traj.diverged
    np.testing.assert_allclose(traj.points[-1], SHARP, atol=1e-6)


def sam_transcribed(surface, start, lr, rho, steps):
    """SAM as the paper and the course state it, with plain GD as the base rule:
    ε = ρ·g/‖g‖₂; g_sam = ∇f(w + ε); w ← w − lr·g_sam."""
    w = np.array(start, dtype=float)
    path = [w]
    for _ in range(steps):
        g = surface.grad(w)
        norm = np.linalg.norm(g)
        eps = rho * g / norm if norm > 0 else np.zeros(2)
        w = w - lr * surface.grad(w + eps)
        path.append(w)
    return np.array(path)


@pytest.mark.parametrize("rho", [0.2, 0.3, 0.5])
def test_transcribed_sam_leaves_the_sharp_minimum_for_the_flat_one(rho):
    path = sam_transcribed(SHARP_FLAT, SHARP_FLAT.start, lr=0.1, rho=rho, steps=400)
    assert np.linalg.norm(path[-1] - FLAT) < 0.1
    assert np.all(np.linalg.norm(path[-50:] - FLAT, axis=1) < 0.1)  # stays there


def test_demonstration_is_robust_to_the_start_point():
    for dx in (-0.2, 0.0, 0.2):
        for dy in (-0.2, 0.2):
            start = (SHARP_FLAT.start[0] + dx, SHARP_FLAT.start[1] + dy)
            gd = run_trajectory(SHARP_FLAT, parse_spec("gd(lr=0.1)"), start, 300)
            np.testing.assert_allclose(gd.points[-1], SHARP, atol=1e-6)
            sam = sam_transcribed(SHARP_FLAT, start, lr=0.1, rho=0.3, steps=300)
            assert np.linalg.norm(sam[-1] - FLAT) < 0.1


def test_registry_sam_ends_in_the_flat_minimum():
    if "sam" not in engine.REGISTRY:
        pytest.skip("sam is not in engine.REGISTRY yet")
    spec = parse_spec("sam(base=gd(lr=0.1),rho=0.3)")
    traj = run_trajectory(SHARP_FLAT, spec, SHARP_FLAT.start, 400)
    assert not traj.diverged
    assert np.linalg.norm(traj.points[-1] - FLAT) < 0.1
    expected = sam_transcribed(SHARP_FLAT, SHARP_FLAT.start, lr=0.1, rho=0.3, steps=400)
    np.testing.assert_allclose(traj.points, expected, rtol=1e-12, atol=1e-12)

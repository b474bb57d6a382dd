"""Two-variable test surfaces: value, gradient and Hessian in closed form.

Every function is vectorized over points: ``p`` is an array of shape ``(..., 2)``;
``value`` returns shape ``(...)``, ``grad`` shape ``(..., 2)`` and ``hessian`` shape
``(..., 2, 2)``. A surface also knows its default view box, a default start point and its
known minima, which the GUI marks on the contour plot.

``minima`` lists *all global* minima (none for the unbounded saddle); other minima worth
marking go to ``local_minima``. ``expression`` restates f in the syntax of
:mod:`engine.surfaces.expression`, so a built-in surface can be opened as an editable custom one
(the tests also use it to check every closed form against sympy).

Surfaces built from data live in :mod:`engine.surfaces.datasets`.
"""

from __future__ import annotations

import numpy as np

from engine.surfaces.base import Surface
from engine.surfaces.datasets import make_linear_regression

Array = np.ndarray
PI = np.pi


SQRT_01, SQRT_2 = float(np.sqrt(0.1)), float(np.sqrt(2.0))


def _quadratic() -> Surface:
    return Surface(
        name="quadratic",
        title="Course quadratic",
        formula="0.1·w1² + 2·w2²",
        latex=r"0.1\,w_1^2 + 2\,w_2^2",
        _value=lambda x, y: 0.1 * x**2 + 2.0 * y**2,
        _grad=lambda x, y: (0.2 * x, 4.0 * y),
        _hess=lambda x, y: (0.2, 0.0, 4.0),
        view=(-6.0, 6.0, -3.0, 3.0),
        start=(-5.0, -2.0),
        minima=((0.0, 0.0),),
        gradient_formula="(0.2·w1, 4·w2)",
        gradient_latex=r"\left(0.2\,w_1,\; 4\,w_2\right)",
        expression="0.1*w1^2 + 2*w2^2",
        description="The course exercise: a convex bowl 20 times steeper along w2 than w1, "
        "so plain GD zig-zags across the narrow direction.",
        # 0.1·w1² + 2·w2² = (√0.1·w1)² + (√2·w2)²
        _residual_fn=lambda x, y: ((SQRT_01 * x, SQRT_2 * y), ((SQRT_01, 0), (0, SQRT_2))),
    )


def _booth() -> Surface:
    return Surface(
        name="booth",
        title="Booth",
        formula="(w1 + 2·w2 − 7)² + (2·w1 + w2 − 5)²",
        latex=r"(w_1 + 2 w_2 - 7)^2 + (2 w_1 + w_2 - 5)^2",
        _value=lambda x, y: (x + 2 * y - 7) ** 2 + (2 * x + y - 5) ** 2,
        _grad=lambda x, y: (10 * x + 8 * y - 34, 8 * x + 10 * y - 38),
        _hess=lambda x, y: (10.0, 8.0, 10.0),
        view=(-4.0, 6.0, -2.0, 8.0),
        start=(-3.0, -1.0),
        minima=((1.0, 3.0),),
        gradient_formula="(10·w1 + 8·w2 − 34, 8·w1 + 10·w2 − 38)",
        gradient_latex=r"\left(10 w_1 + 8 w_2 - 34,\; 8 w_1 + 10 w_2 - 38\right)",
        expression="(w1 + 2*w2 - 7)^2 + (2*w1 + w2 - 5)^2",
        description="A convex quadratic with a tilted, elongated bowl (Hessian eigenvalues "
        "2 and 18): the axes no longer match the valley, which defeats per-coordinate tricks.",
        _residual_fn=lambda x, y: ((x + 2 * y - 7, 2 * x + y - 5), ((1, 2), (2, 1))),
    )


ROSEN_A, ROSEN_B = 1.0, 100.0
SQRT_B = float(np.sqrt(ROSEN_B))  # f = (a − w1)² + (√b·(w2 − w1²))²


def _rosenbrock() -> Surface:
    a, b = ROSEN_A, ROSEN_B
    return Surface(
        name="rosenbrock",
        title="Rosenbrock (a = 1, b = 100)",
        formula="(1 − w1)² + 100·(w2 − w1²)²",
        latex=r"(1 - w_1)^2 + 100\,(w_2 - w_1^2)^2",
        _value=lambda x, y: (a - x) ** 2 + b * (y - x**2) ** 2,
        _grad=lambda x, y: (-2 * (a - x) - 4 * b * x * (y - x**2), 2 * b * (y - x**2)),
        _hess=lambda x, y: (2 - 4 * b * y + 12 * b * x**2, -4 * b * x, 2 * b),
        view=(-2.0, 2.0, -1.0, 3.0),
        start=(-1.5, 2.0),
        minima=((a, a * a),),
        gradient_formula="(−2·(1 − w1) − 400·w1·(w2 − w1²), 200·(w2 − w1²))",
        gradient_latex=r"\left(-2(1 - w_1) - 400\,w_1 (w_2 - w_1^2),\; 200\,(w_2 - w_1^2)\right)",
        log_levels=True,
        expression="(1 - w1)^2 + 100*(w2 - w1^2)^2",
        description="A curved, nearly flat-bottomed banana valley: finding the valley is easy, "
        "following it to (1, 1) is slow for first-order methods.",
        _residual_fn=lambda x, y: ((a - x, SQRT_B * (y - x * x)),
                                 ((-1, 0), (-2 * SQRT_B * x, SQRT_B))),
    )


def _beale_terms(x, y):
    t = (1.5 - x + x * y, 2.25 - x + x * y**2, 2.625 - x + x * y**3)
    dx = (y - 1, y**2 - 1, y**3 - 1)
    dy = (x, 2 * x * y, 3 * x * y**2)
    # second derivatives of each term: d²/dx² = 0, d²/dxdy, d²/dy²
    dxy = (1.0 + 0 * y, 2 * y, 3 * y**2)
    dyy = (0.0 * x, 2 * x, 6 * x * y)
    return t, dx, dy, dxy, dyy


def _beale_value(x, y):
    t = _beale_terms(x, y)[0]
    return t[0] ** 2 + t[1] ** 2 + t[2] ** 2


def _beale_grad(x, y):
    t, dx, dy, _, _ = _beale_terms(x, y)
    return (2 * sum(ti * di for ti, di in zip(t, dx, strict=True)),
            2 * sum(ti * di for ti, di in zip(t, dy, strict=True)))


def _beale_hess(x, y):
    t, dx, dy, dxy, dyy = _beale_terms(x, y)
    h11 = 2 * sum(d * d for d in dx)
    h12 = 2 * sum(a * b + ti * c for a, b, ti, c in zip(dx, dy, t, dxy, strict=True))
    h22 = 2 * sum(b * b + ti * c for b, ti, c in zip(dy, t, dyy, strict=True))
    return h11, h12, h22


def _beale_residuals(x, y):
    t, dx, dy, _, _ = _beale_terms(x, y)
    return t, tuple(zip(dx, dy, strict=True))


def _beale() -> Surface:
    return Surface(
        name="beale",
        title="Beale",
        formula="(1.5 − w1 + w1·w2)² + (2.25 − w1 + w1·w2²)² + (2.625 − w1 + w1·w2³)²",
        latex=r"(1.5 - w_1 + w_1 w_2)^2 + (2.25 - w_1 + w_1 w_2^2)^2"
        r" + (2.625 - w_1 + w_1 w_2^3)^2",
        _value=_beale_value,
        _grad=_beale_grad,
        _hess=_beale_hess,
        view=(-4.5, 4.5, -4.5, 4.5),
        start=(-1.0, 1.5),
        minima=((3.0, 0.5),),
        gradient_formula="2·Σᵢ tᵢ·∇tᵢ with t₁ = 1.5 − w1 + w1·w2, t₂ = 2.25 − w1 + w1·w2², "
        "t₃ = 2.625 − w1 + w1·w2³; ∇tₖ = (w2ᵏ − 1, k·w1·w2ᵏ⁻¹)",
        gradient_latex=r"2 \sum_{k=1}^{3} t_k \left(w_2^k - 1,\; k\,w_1 w_2^{k-1}\right),"
        r"\quad t_k = c_k - w_1 + w_1 w_2^k,\ c = (1.5,\ 2.25,\ 2.625)",
        log_levels=True,
        expression="(1.5 - w1 + w1*w2)^2 + (2.25 - w1 + w1*w2^2)^2 + (2.625 - w1 + w1*w2^3)^2",
        description="Flat plateaus and sharp ridges around a narrow valley to (3, 0.5): "
        "gradients range over many orders of magnitude.",
        _residual_fn=_beale_residuals,
    )


def _refine(grad, hess, p, iters: int = 30) -> tuple[float, float]:
    """Newton-polish a textbook minimum (given to ~6 digits) to machine precision, so the
    listed minima are stationary points to ~1e-15 rather than to the printed digits."""
    p = np.asarray(p, dtype=float)
    for _ in range(iters):
        g = np.asarray(grad(p[0], p[1]), dtype=float)
        h11, h12, h22 = (float(v) for v in hess(p[0], p[1]))
        step = np.linalg.solve([[h11, h12], [h12, h22]], g)
        p = p - step
        if np.max(np.abs(step)) < 1e-16:
            break
    return float(p[0]), float(p[1])


def _himmelblau_grad(x, y):
    u, v = x**2 + y - 11, x + y**2 - 7
    return 4 * x * u + 2 * v, 2 * u + 4 * y * v


def _himmelblau_hess(x, y):
    return 12 * x**2 + 4 * y - 42, 4 * x + 4 * y, 4 * x + 12 * y**2 - 26


def _himmelblau() -> Surface:
    approx = ((3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126))
    return Surface(
        name="himmelblau",
        title="Himmelblau",
        formula="(w1² + w2 − 11)² + (w1 + w2² − 7)²",
        latex=r"(w_1^2 + w_2 - 11)^2 + (w_1 + w_2^2 - 7)^2",
        _value=lambda x, y: (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2,
        _grad=_himmelblau_grad,
        _hess=_himmelblau_hess,
        view=(-5.0, 5.0, -5.0, 5.0),
        start=(-0.5, 0.5),
        minima=tuple(_refine(_himmelblau_grad, _himmelblau_hess, p) for p in approx),
        gradient_formula="(4·w1·(w1² + w2 − 11) + 2·(w1 + w2² − 7), "
        "2·(w1² + w2 − 11) + 4·w2·(w1 + w2² − 7))",
        gradient_latex=r"\left(4 w_1 (w_1^2 + w_2 - 11) + 2 (w_1 + w_2^2 - 7),\;"
        r" 2 (w_1^2 + w_2 - 11) + 4 w_2 (w_1 + w_2^2 - 7)\right)",
        log_levels=True,
        expression="(w1^2 + w2 - 11)^2 + (w1 + w2^2 - 7)^2",
        description="Four global minima of equal value 0: which one a run ends in depends on "
        "the start point and on the optimizer's path.",
        _residual_fn=lambda x, y: ((x * x + y - 11, x + y * y - 7), ((2 * x, 1), (1, 2 * y))),
    )


def _six_hump_grad(x, y):
    return 8 * x - 8.4 * x**3 + 2 * x**5 + y, x - 8 * y + 16 * y**3


def _six_hump_hess(x, y):
    return 8 - 25.2 * x**2 + 10 * x**4, 1.0 + 0 * x, -8 + 48 * y**2


def _six_hump_camel() -> Surface:
    approx = ((0.0898, -0.7126), (-0.0898, 0.7126))
    local = ((-1.7036, 0.7961), (1.7036, -0.7961), (-1.6071, -0.5687), (1.6071, 0.5687))
    return Surface(
        name="six_hump_camel",
        title="Six-hump camel",
        formula="(4 − 2.1·w1² + w1⁴/3)·w1² + w1·w2 + (−4 + 4·w2²)·w2²",
        latex=r"\left(4 - 2.1 w_1^2 + \tfrac{w_1^4}{3}\right) w_1^2 + w_1 w_2"
        r" + (-4 + 4 w_2^2)\, w_2^2",
        _value=lambda x, y: (4 - 2.1 * x**2 + x**4 / 3) * x**2 + x * y + (-4 + 4 * y**2) * y**2,
        _grad=_six_hump_grad,
        _hess=_six_hump_hess,
        view=(-2.0, 2.0, -1.1, 1.1),
        start=(-1.2, -0.9),
        minima=tuple(_refine(_six_hump_grad, _six_hump_hess, p) for p in approx),
        local_minima=tuple(_refine(_six_hump_grad, _six_hump_hess, p) for p in local),
        gradient_formula="(8·w1 − 8.4·w1³ + 2·w1⁵ + w2, w1 − 8·w2 + 16·w2³)",
        gradient_latex=r"\left(8 w_1 - 8.4 w_1^3 + 2 w_1^5 + w_2,\; w_1 - 8 w_2 + 16 w_2^3\right)",
        expression="(4 - 2.1*w1^2 + w1^4/3)*w1^2 + w1*w2 + (-4 + 4*w2^2)*w2^2",
        description="Two global minima and four local ones: the start decides which basin "
        "a descent method settles in.",
    )


def _rastrigin() -> Surface:
    return Surface(
        name="rastrigin",
        title="Rastrigin",
        formula="20 + w1² − 10·cos(2π·w1) + w2² − 10·cos(2π·w2)",
        latex=r"20 + w_1^2 - 10\cos(2\pi w_1) + w_2^2 - 10\cos(2\pi w_2)",
        _value=lambda x, y: 20 + x**2 - 10 * np.cos(2 * PI * x) + y**2 - 10 * np.cos(2 * PI * y),
        _grad=lambda x, y: (2 * x + 20 * PI * np.sin(2 * PI * x),
                            2 * y + 20 * PI * np.sin(2 * PI * y)),
        _hess=lambda x, y: (2 + 40 * PI**2 * np.cos(2 * PI * x), 0.0,
                            2 + 40 * PI**2 * np.cos(2 * PI * y)),
        view=(-5.12, 5.12, -5.12, 5.12),
        start=(-3.3, 2.7),
        minima=((0.0, 0.0),),
        gradient_formula="(2·w1 + 20π·sin(2π·w1), 2·w2 + 20π·sin(2π·w2))",
        gradient_latex=r"\left(2 w_1 + 20\pi \sin(2\pi w_1),\;"
        r" 2 w_2 + 20\pi \sin(2\pi w_2)\right)",
        expression="20 + w1^2 - 10*cos(2*pi*w1) + w2^2 - 10*cos(2*pi*w2)",
        description="A bowl covered in a regular grid of local minima: gradient methods stop "
        "in the nearest dent unless noise or momentum carries them across.",
    )


def _ackley_parts(x, y):
    s = np.sqrt(0.5 * (x**2 + y**2))
    e1 = np.exp(-0.2 * s)
    e2 = np.exp(0.5 * (np.cos(2 * PI * x) + np.cos(2 * PI * y)))
    return s, e1, e2


def _ackley_value(x, y):
    _, e1, e2 = _ackley_parts(x, y)
    return -20 * e1 - e2 + np.e + 20


def _ackley_grad(x, y):
    s, e1, e2 = _ackley_parts(x, y)
    # The cone term is not differentiable at the origin; report its (zero) subgradient there.
    safe = np.where(s > 0, s, 1.0)
    c = np.where(s > 0, 2 * e1 / safe, 0.0)
    return (c * x + PI * np.sin(2 * PI * x) * e2, c * y + PI * np.sin(2 * PI * y) * e2)


def _ackley_hess(x, y):
    s, e1, e2 = _ackley_parts(x, y)
    safe = np.where(s > 0, s, 1.0)
    h = e1 / safe  # cone term: ∂/∂x = 2x·h(s), h = e^{−0.2s}/s
    dh_over_s = -e1 * (0.2 * safe + 1) / safe**3  # h'(s)/s
    sx, sy = np.sin(2 * PI * x), np.sin(2 * PI * y)
    cx, cy = np.cos(2 * PI * x), np.cos(2 * PI * y)
    # At the origin the cone's curvature is infinite; report inf rather than a made-up number.
    h11 = np.where(s > 0, 2 * h + x * x * dh_over_s, np.inf) + PI**2 * (2 * cx - sx * sx) * e2
    h12 = np.where(s > 0, x * y * dh_over_s, 0.0) - PI**2 * sx * sy * e2
    h22 = np.where(s > 0, 2 * h + y * y * dh_over_s, np.inf) + PI**2 * (2 * cy - sy * sy) * e2
    return h11, h12, h22


def _ackley() -> Surface:
    return Surface(
        name="ackley",
        title="Ackley",
        formula="−20·exp(−0.2·√(0.5·(w1² + w2²))) − exp(0.5·(cos 2π·w1 + cos 2π·w2)) + e + 20",
        latex=r"-20\,e^{-0.2\sqrt{0.5 (w_1^2 + w_2^2)}}"
        r" - e^{0.5 (\cos 2\pi w_1 + \cos 2\pi w_2)} + e + 20",
        _value=_ackley_value,
        _grad=_ackley_grad,
        _hess=_ackley_hess,
        view=(-5.0, 5.0, -5.0, 5.0),
        start=(-3.3, 2.7),
        minima=((0.0, 0.0),),
        gradient_formula="2·e^{−0.2s}/s·(w1, w2) + π·e^{0.5(cos 2π·w1 + cos 2π·w2)}·"
        "(sin 2π·w1, sin 2π·w2), s = √(0.5·(w1² + w2²)); (0, 0) at the origin",
        gradient_latex=r"\frac{2 e^{-0.2 s}}{s} (w_1, w_2)"
        r" + \pi e^{0.5 (\cos 2\pi w_1 + \cos 2\pi w_2)} (\sin 2\pi w_1,\; \sin 2\pi w_2),"
        r"\quad s = \sqrt{0.5 (w_1^2 + w_2^2)}",
        expression="-20*exp(-0.2*sqrt(0.5*(w1^2 + w2^2)))"
        " - exp(0.5*(cos(2*pi*w1) + cos(2*pi*w2))) + e + 20",
        description="A nearly flat outer region full of ripples around a deep, pointed "
        "global minimum (not differentiable at the origin itself).",
    )


def _saddle() -> Surface:
    return Surface(
        name="saddle",
        title="Saddle",
        formula="w1² − w2²",
        latex=r"w_1^2 - w_2^2",
        _value=lambda x, y: x**2 - y**2,
        _grad=lambda x, y: (2 * x, -2 * y),
        _hess=lambda x, y: (2.0, 0.0, -2.0),
        view=(-2.0, 2.0, -2.0, 2.0),
        start=(-1.8, 0.01),
        minima=(),
        gradient_formula="(2·w1, −2·w2)",
        gradient_latex=r"\left(2 w_1,\; -2 w_2\right)",
        expression="w1^2 - w2^2",
        description="A saddle point at the origin and no minimum (f is unbounded below): "
        "started almost on the w1 axis, GD stalls near the saddle before sliding off.",
    )


# sharp_flat: f = q·(w1² + w2²) + c·w1²·w2² − A2·exp(−(w1² + w2²)/(2·s2²))
#                 − A1·exp(−(w1² + (w2 − y1)²)/(2·s1²))
SF_Q, SF_C = 0.05, 1.0  # gentle bowl; w1²·w2² carves a gully along the w2 axis
SF_A2, SF_S2 = 1.0, 1.0  # the wide, flat minimum at the origin
SF_A1, SF_S1, SF_Y1 = 0.4, 0.2, 2.0  # the sharp, narrow hole at (0, 2) in the gully


def _sharp_flat_parts(x, y):
    e2 = SF_A2 * np.exp(-(x**2 + y**2) / (2 * SF_S2**2)) / SF_S2**2
    e1 = SF_A1 * np.exp(-(x**2 + (y - SF_Y1) ** 2) / (2 * SF_S1**2)) / SF_S1**2
    return e1, e2


def _sharp_flat_value(x, y):
    e1, e2 = _sharp_flat_parts(x, y)
    return SF_Q * (x**2 + y**2) + SF_C * x**2 * y**2 - e2 * SF_S2**2 - e1 * SF_S1**2


def _sharp_flat_grad(x, y):
    e1, e2 = _sharp_flat_parts(x, y)
    gx = 2 * SF_Q * x + 2 * SF_C * x * y**2 + e2 * x + e1 * x
    gy = 2 * SF_Q * y + 2 * SF_C * x**2 * y + e2 * y + e1 * (y - SF_Y1)
    return gx, gy


def _sharp_flat_hess(x, y):
    e1, e2 = _sharp_flat_parts(x, y)
    i1, i2 = 1 / SF_S1**2, 1 / SF_S2**2
    dy = y - SF_Y1
    h11 = 2 * SF_Q + 2 * SF_C * y**2 + e2 * (1 - i2 * x * x) + e1 * (1 - i1 * x * x)
    h12 = 4 * SF_C * x * y - e2 * i2 * x * y - e1 * i1 * x * dy
    h22 = 2 * SF_Q + 2 * SF_C * x**2 + e2 * (1 - i2 * y * y) + e1 * (1 - i1 * dy * dy)
    return h11, h12, h22


def _sharp_flat() -> Surface:
    return Surface(
        name="sharp_flat",
        title="Sharp vs flat minimum (for SAM)",
        formula="0.05·(w1² + w2²) + w1²·w2² − exp(−(w1² + w2²)/2) "
        "− 0.4·exp(−(w1² + (w2 − 2)²)/0.08)",
        latex=r"0.05 (w_1^2 + w_2^2) + w_1^2 w_2^2 - e^{-(w_1^2 + w_2^2)/2}"
        r" - 0.4\, e^{-(w_1^2 + (w_2 - 2)^2)/0.08}",
        _value=_sharp_flat_value,
        _grad=_sharp_flat_grad,
        _hess=_sharp_flat_hess,
        view=(-1.5, 1.5, -1.0, 3.5),
        start=(0.5, 3.0),
        minima=((0.0, 0.0),),
        local_minima=(_refine(_sharp_flat_grad, _sharp_flat_hess, (0.0, 1.95)),),
        gradient_formula="(0.1·w1 + 2·w1·w2² + w1·E₂ + 10·w1·E₁, "
        "0.1·w2 + 2·w1²·w2 + w2·E₂ + 10·(w2 − 2)·E₁), "
        "E₂ = exp(−(w1² + w2²)/2), E₁ = exp(−(w1² + (w2 − 2)²)/0.08)",
        gradient_latex=r"\left(0.1 w_1 + 2 w_1 w_2^2 + w_1 E_2 + 10 w_1 E_1,\;"
        r" 0.1 w_2 + 2 w_1^2 w_2 + w_2 E_2 + 10 (w_2 - 2) E_1\right),"
        r"\quad E_2 = e^{-(w_1^2 + w_2^2)/2},\ E_1 = e^{-(w_1^2 + (w_2 - 2)^2)/0.08}",
        expression="0.05*(w1^2 + w2^2) + w1^2*w2^2 - exp(-(w1^2 + w2^2)/2)"
        " - 0.4*exp(-(w1^2 + (w2 - 2)^2)/0.08)",
        description="A wide, flat global minimum at (0, 0) (curvature 1.1) and a sharp, narrow "
        "local one near (0, 1.95) (curvature up to 17.5) at the end of a gully. From the "
        "default start gd(lr=0.1) drops into the sharp hole; "
        "sam(base=gd(lr=0.1),rho=0.3) (any ρ in 0.2–0.5) cannot rest there and ends in the "
        "flat one.",
    )


SURFACES: dict[str, Surface] = {
    s.name: s
    for s in (
        _quadratic(),
        _booth(),
        make_linear_regression(),
        _rosenbrock(),
        _beale(),
        _saddle(),
        _himmelblau(),
        _six_hump_camel(),
        _rastrigin(),
        _ackley(),
        _sharp_flat(),
    )
}


def get_surface(name: str) -> Surface:
    """The surface called ``name``; a ValueError lists the valid names otherwise."""
    try:
        return SURFACES[name]
    except KeyError:
        raise ValueError(
            f"unknown surface {name!r}; choose one of: {', '.join(SURFACES)}"
        ) from None

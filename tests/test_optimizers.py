"""The optimizer catalogue: paper rules, Newton, forward gradients, specs, noise, mini-batches.

Rules that torch.optim has are checked against torch in test_against_torch.py. The others
(AdaBelief, AdaSmooth, SAM, ASAM) are checked here against plain, scalar, step-by-step
transcriptions of the papers' algorithm boxes, written with loops and floats so that they
share no code with the engine.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from tinydata import TinyRegression

from engine.functions import get_surface
from engine.optimizers import (
    FAMILIES,
    REGISTRY,
    build_optimizer,
    effective_ratio,
    forward_direction,
    get_optimizer_spec,
)
from engine.spec import parse_spec
from engine.trajectory import run_trajectory

QUAD = get_surface("quadratic")
START = (-5.0, -2.0)


# ----------------------------------------------------------------------------- helpers


def _f(x, y):
    """A non-quadratic test function (so a perturbed gradient is not a linear map of g)."""
    return 0.1 * x * x + 2.0 * y * y + 0.5 * math.sin(x) * y


def _df(x, y):
    return [0.2 * x + 0.5 * math.cos(x) * y, 4.0 * y + 0.5 * math.sin(x)]


class Bumpy:
    """Oracle for _f: what SAM/ASAM may ask of a surface."""

    name = "bumpy"
    view = (-6.0, 6.0, -3.0, 3.0)

    def value(self, p):
        return _f(float(p[0]), float(p[1]))

    def grad(self, p):
        return np.array(_df(float(p[0]), float(p[1])))


def engine_run(text: str, start, steps: int, oracle=None):
    """Drive the engine's pure rule directly: the points and states it produces."""
    oracle = oracle or Bumpy()
    opt = build_optimizer(parse_spec(text))
    w = np.array(start, dtype=float)
    state = opt.init(w)
    points, states = [w], [state]
    for _ in range(steps):
        upd, state = opt.update(oracle.grad(w), state, w, oracle)
        w = w + upd
        points.append(w)
        states.append(state)
    return np.array(points), states


def playground_text(name: str) -> str:
    spec = get_optimizer_spec(name)
    args = ",".join(f"{k}={v}" for k, v in spec.playground.items())
    return f"{name}({args})"


# ----------------------------------------------------------------------------- paper rules


def test_adabelief_matches_paper():
    lr, b1, b2, eps = 0.05, 0.8, 0.95, 1e-8
    w = [-5.0, -2.0]
    m, s = [0.0, 0.0], [0.0, 0.0]
    expected = [list(w)]
    for t in range(1, 81):
        g = _df(*w)
        for i in range(2):
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            s[i] = b2 * s[i] + (1 - b2) * (g[i] - m[i]) ** 2 + eps
            m_hat = m[i] / (1 - b1**t)
            s_hat = s[i] / (1 - b2**t)
            w[i] = w[i] - lr * m_hat / (math.sqrt(s_hat) + eps)
        expected.append(list(w))
    points, states = engine_run(f"adabelief(lr={lr},beta1={b1},beta2={b2},eps={eps})",
                                START, 80)
    np.testing.assert_allclose(points, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(states[-1].s, s, rtol=1e-10)
    assert np.linalg.norm(points[-1]) < 0.5 * np.linalg.norm(points[0])  # it did optimize


@pytest.mark.parametrize("window", [1, 3, 10])
def test_adasmooth_matches_paper(window):
    lr, r1, r2, eps = 0.1, 0.5, 0.99, 1e-6
    w = [-5.0, -2.0]
    eg2 = [0.0, 0.0]
    moves: list[list[float]] = [[], []]
    expected, ratios = [list(w)], []
    for _ in range(60):
        g = _df(*w)
        for i in range(2):
            recent = moves[i][-window:]
            path = sum(abs(d) for d in recent)
            e = abs(sum(recent)) / path if path > 0 else 1.0  # 0/0: nothing moved yet
            ratios.append(e)
            c = (r2 - r1) * e + (1 - r2)
            eg2[i] = c * c * g[i] ** 2 + (1 - c * c) * eg2[i]
            dx = -lr * g[i] / math.sqrt(eg2[i] + eps)
            moves[i].append(dx)
            w[i] += dx
        expected.append(list(w))
    points, states = engine_run(
        f"adasmooth(lr={lr},rho1={r1},rho2={r2},eps={eps},window={window})", START, 60
    )
    np.testing.assert_allclose(points, expected, rtol=1e-10, atol=1e-12)
    last = states[-1]
    assert last.window.shape == (window, 2)
    assert not last.window.flags.writeable
    with pytest.raises(ValueError):
        last.window[0, 0] = 1.0
    if window > 1:  # the path zig-zags in w2, so the ratio really varies
        assert min(ratios) < 0.5


def test_effective_ratio_guards_zero_over_zero():
    assert effective_ratio(np.zeros((0, 2))).tolist() == [1.0, 1.0]
    assert effective_ratio(np.array([[0.0, 1.0], [0.0, -1.0]])).tolist() == [1.0, 0.0]
    assert effective_ratio(np.array([[1.0, 2.0], [1.0, -1.0]])).tolist() == [1.0, 1 / 3]


def _adam_reference(lr, b1, b2, eps):
    """A scalar Adam (torch's form), as a closure over its own state."""
    st = {"t": 0, "m": [0.0, 0.0], "v": [0.0, 0.0]}

    def step(w, g):
        st["t"] += 1
        t = st["t"]
        out = []
        for i in range(2):
            st["m"][i] = b1 * st["m"][i] + (1 - b1) * g[i]
            st["v"][i] = b2 * st["v"][i] + (1 - b2) * g[i] ** 2
            m_hat = st["m"][i] / (1 - b1**t)
            v_hat = st["v"][i] / (1 - b2**t)
            out.append(w[i] - lr * m_hat / (math.sqrt(v_hat) + eps))
        return out

    return step


def _gd_reference(lr):
    return lambda w, g: [w[i] - lr * g[i] for i in range(2)]


BASES = {
    "gd(lr=0.2)": lambda: _gd_reference(0.2),
    "adam(lr=0.05,beta1=0.9,beta2=0.999,eps=1e-8)": lambda: _adam_reference(
        0.05, 0.9, 0.999, 1e-8
    ),
}


@pytest.mark.parametrize("base", list(BASES))
def test_sam_matches_paper(base):
    rho = 0.3
    step = BASES[base]()
    w = [-5.0, -2.0]
    expected, record = [list(w)], []
    for _ in range(40):
        g = _df(*w)
        norm = math.sqrt(g[0] ** 2 + g[1] ** 2)
        e = [rho * g[i] / norm for i in range(2)]
        wp = [w[0] + e[0], w[1] + e[1]]
        g_sam = _df(*wp)
        record.append((e, wp, g_sam))
        w = step(w, g_sam)
        expected.append(list(w))
    points, states = engine_run(f"sam(base={base},rho={rho})", START, 40)
    np.testing.assert_allclose(points, expected, rtol=1e-10, atol=1e-12)
    for st, (e, wp, g_sam) in zip(states[1:], record, strict=True):
        np.testing.assert_allclose(st.eps, e, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(st.perturbed_point, wp, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(st.g_sam, g_sam, rtol=1e-10, atol=1e-14)
    assert np.linalg.norm(states[5].eps) == pytest.approx(rho)


@pytest.mark.parametrize("base", list(BASES))
def test_asam_matches_paper(base):
    rho, eta = 0.2, 0.01
    step = BASES[base]()
    w = [-5.0, -2.0]
    expected, record = [list(w)], []
    for _ in range(40):
        g = _df(*w)
        scale = [abs(w[i]) + eta for i in range(2)]
        norm = math.sqrt(sum((scale[i] * g[i]) ** 2 for i in range(2)))
        e = [rho * scale[i] ** 2 * g[i] / norm for i in range(2)]
        wp = [w[0] + e[0], w[1] + e[1]]
        g_sam = _df(*wp)
        record.append((e, wp, g_sam, scale))
        w = step(w, g_sam)
        expected.append(list(w))
    points, states = engine_run(f"asam(base={base},rho={rho},eta={eta})", START, 40)
    np.testing.assert_allclose(points, expected, rtol=1e-10, atol=1e-12)
    for st, (e, wp, g_sam, scale) in zip(states[1:], record, strict=True):
        np.testing.assert_allclose(st.eps, e, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(st.perturbed_point, wp, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(st.g_sam, g_sam, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(st.scale, scale, rtol=1e-12)


@pytest.mark.parametrize("text", ["sam(base=gd(lr=0.1))", "asam(base=adam(lr=0.1))"])
def test_sharpness_aware_at_a_stationary_point(text):
    """g = 0: no ascent direction, so no perturbation and no 0/0."""
    points, states = engine_run(text, (0.0, 0.0), 3)
    assert np.all(points == 0.0)
    assert np.all(states[-1].eps == 0.0)
    assert np.all(np.isfinite(states[-1].g_sam))


# ----------------------------------------------------------------------------- forward gradient


class JvpOnly:
    """An oracle that refuses to hand out gradients: forward gradients must not need them."""

    def __init__(self, surface):
        self.surface = surface
        self.calls = 0

    def grad(self, p):
        raise AssertionError("forward_gradient asked for the full gradient")

    def jvp(self, p, v):
        self.calls += 1
        return float(np.dot(self.surface.grad(p), v))


def test_forward_gradient_is_unbiased():
    """The mean of N estimates d·v lies within 5 standard errors of ∇f, coordinate-wise.

    For g = (−1, −8) the estimate's coordinates have variances g₁² + |g|² = 66 and
    g₂² + |g|² = 129, so with N = 4000 the standard errors are ≈ 0.13 and ≈ 0.18: a biased
    estimator (say d·v/2, off by 4 in w2) is ~20 standard errors away.
    """
    n = 4000
    p = np.array(START)
    oracle = JvpOnly(QUAD)
    opt = build_optimizer(parse_spec("forward_gradient(lr=0.1,seed=11)"))
    state = opt.init(p)
    estimates = np.empty((n, 2))
    nan_grads = np.full(2, np.nan)  # the rule must ignore ``grads`` entirely
    for k in range(n):
        upd, state = opt.update(nan_grads, state, p, oracle)
        estimates[k] = state.g_est
        np.testing.assert_allclose(upd, -0.1 * state.g_est)
        assert state.d == pytest.approx(float(np.dot(QUAD.grad(p), state.v)))
    assert oracle.calls == n
    true = QUAD.grad(p)
    mean = estimates.mean(axis=0)
    se = estimates.std(axis=0, ddof=1) / math.sqrt(n)
    assert np.all(np.abs(mean - true) <= 5 * se), (mean, true, se)
    assert np.all(se < 0.3)  # the bound is tight enough to mean something


def test_forward_directions_are_seeded_per_step():
    a = forward_direction(3, 7, (2,))
    assert np.array_equal(a, forward_direction(3, 7, (2,)))
    assert not np.array_equal(a, forward_direction(3, 8, (2,)))
    assert not np.array_equal(a, forward_direction(4, 7, (2,)))
    t1 = run_trajectory(QUAD, parse_spec("forward_gradient(lr=0.1,seed=5)"), START, 20)
    t2 = run_trajectory(QUAD, parse_spec("forward_gradient(lr=0.1,seed=5)"), START, 20)
    t3 = run_trajectory(QUAD, parse_spec("forward_gradient(lr=0.1,seed=6)"), START, 20)
    assert np.array_equal(t1.points, t2.points)
    assert not np.allclose(t1.points, t3.points)


# ----------------------------------------------------------------------------- newton


class QuadraticOracle:
    """f(w) = ½(w − c)ᵀA(w − c) with a given symmetric A."""

    name = "inline_quadratic"
    view = (-10.0, 10.0, -10.0, 10.0)

    def __init__(self, a, c):
        self.a = np.array(a, dtype=float)
        self.c = np.array(c, dtype=float)

    def value(self, p):
        d = np.asarray(p) - self.c
        return 0.5 * float(d @ self.a @ d)

    def grad(self, p):
        return self.a @ (np.asarray(p) - self.c)

    def hessian(self, p):
        return self.a.copy()

    def jvp(self, p, v):
        return float(self.grad(p) @ v)


def newton_step(oracle, start, text="newton(lr=1,damping=1e-12)"):
    opt = build_optimizer(parse_spec(text))
    w = np.array(start, dtype=float)
    upd, state = opt.update(oracle.grad(w), opt.init(w), w, oracle)
    return w + upd, state


def test_newton_one_step_to_the_minimum_of_a_convex_quadratic():
    oracle = QuadraticOracle([[3.0, 1.2], [1.2, 0.5]], [1.5, -2.0])  # eigenvalues ≈ 3.5, 0.09
    w, state = newton_step(oracle, (-4.0, 3.0))
    np.testing.assert_allclose(w, [1.5, -2.0], atol=1e-9)
    np.testing.assert_allclose(state.hessian, oracle.a)
    np.testing.assert_allclose(state.eigvals, np.linalg.eigvalsh(oracle.a))
    # the course quadratic, through run_trajectory and the real surface
    traj = run_trajectory(QUAD, parse_spec("newton(lr=1,damping=1e-12)"), START, 1)
    np.testing.assert_allclose(traj.points[1], [0.0, 0.0], atol=1e-9)


def test_newton_damping_shortens_the_step():
    oracle = QuadraticOracle([[2.0, 0.0], [0.0, 2.0]], [0.0, 0.0])
    w, _ = newton_step(oracle, (4.0, 0.0), "newton(lr=1,damping=2)")
    np.testing.assert_allclose(w, [2.0, 0.0])  # (H + λI)⁻¹g = 8/4 = 2: half the way


def test_newton_on_a_saddle_goes_downhill():
    """Plain Newton jumps to the saddle point (0, 0): uphill from (1, 2), where f = −3."""
    saddle = QuadraticOracle([[2.0, 0.0], [0.0, -2.0]], [0.0, 0.0])  # f = w1² − w2²
    start = np.array([1.0, 2.0])
    plain = start - np.linalg.solve(saddle.hessian(start), saddle.grad(start))
    assert saddle.value(plain) > saddle.value(start)  # what the safeguard avoids
    w, state = newton_step(saddle, start, "newton(lr=1,damping=1e-3)")
    assert saddle.value(w) < saddle.value(start)
    assert np.all(np.isfinite(w))
    assert state.eigvals.min() < 0
    # the run keeps descending along −w2² (unbounded below) until it leaves the box:
    # reported as divergence, never an exception
    traj = run_trajectory(saddle, parse_spec("newton(lr=0.5)"), start, 200)
    assert np.all(np.diff(traj.losses) < 0)


def test_newton_on_a_singular_hessian_stays_finite():
    flat = QuadraticOracle([[2.0, 0.0], [0.0, 0.0]], [0.0, 0.0])  # no curvature along w2
    w, _ = newton_step(flat, (3.0, 1.0), "newton(lr=1,damping=1e-3)")
    assert np.all(np.isfinite(w))
    np.testing.assert_allclose(w, [3.0 - 6.0 / 2.001, 1.0])


# ----------------------------------------------------------------------------- the registry

NEW_FAMILIES = {
    "nesterov": "Momentum",
    "adagrad": "Adaptive learning rate",
    "adadelta": "Adaptive learning rate",
    "adasmooth": "Adaptive learning rate",
    "adamax": "Adam family",
    "nadam": "Adam family",
    "adabelief": "Adam family",
    "newton": "Second order",
    "sam": "Sharpness-aware",
    "asam": "Sharpness-aware",
    "forward_gradient": "Gradient estimates",
}


def test_catalogue_is_complete_and_grouped():
    for name, family in NEW_FAMILIES.items():
        assert REGISTRY[name].family == family
    assert REGISTRY["sgd"].family == "Gradient descent"
    for spec in REGISTRY.values():
        assert spec.family in FAMILIES
        assert spec.title and spec.summary and spec.rule
        assert all(h.help for h in spec.all_hypers)
    assert REGISTRY["newton"].needs == ("hessian",)
    assert REGISTRY["forward_gradient"].needs == ("jvp",)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_hyperparameter_has_a_finite_validated_range(name):
    spec = REGISTRY[name]
    for h in spec.all_hypers:
        if h.kind == "spec":
            assert h.required
            continue
        if h.kind == "bool":
            continue
        if h.kind == "choice":
            assert h.default in h.choices
            with pytest.raises(ValueError, match="must be one of"):
                h.validate("no_such_choice", name)
            continue
        assert math.isfinite(h.lo) and math.isfinite(h.hi), (name, h.name)
        assert h.validate(h.default, name) == h.default
        too_big = h.hi * 10 + 1
        with pytest.raises(ValueError, match=r"must be an? (integer|number) in") as err:
            h.validate(too_big, name)
        assert h.range_text() in str(err.value)
        with pytest.raises(ValueError):
            parse_spec(f"{name}({h.name}={too_big:g}{_base_arg(spec)})")
        with pytest.raises(ValueError, match="out of range"):
            h.validate(h.lo - 1, name)


def _base_arg(spec) -> str:
    return ",base=gd()" if any(h.kind == "spec" for h in spec.hypers) else ""


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_optimizer_runs_50_steps_and_keeps_namedtuple_states(name):
    traj = run_trajectory(QUAD, parse_spec(playground_text(name)), START, 50)
    assert not traj.diverged, traj.diverged_reason
    assert traj.steps == 50
    assert traj.losses[-1] < traj.losses[0]  # the playground values make progress
    for state in traj.states:
        _assert_namedtuple(state)


def _assert_namedtuple(state):
    assert isinstance(state, tuple) and hasattr(state, "_fields"), type(state)
    assert state._fields[0] == "t"
    for value in state:
        if isinstance(value, tuple):
            _assert_namedtuple(value)
        else:
            assert isinstance(value, (int, float, np.ndarray)), type(value)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_update_never_mutates_its_inputs(name):
    opt = build_optimizer(parse_spec(playground_text(name)))
    w = np.array(START)
    state = opt.init(w)
    for _ in range(3):
        g = QUAD.grad(w)
        before = (w.copy(), g.copy(), copy.deepcopy(state))
        upd, new_state = opt.update(g, state, w, QUAD)
        assert np.array_equal(w, before[0]) and np.array_equal(g, before[1])
        _assert_same(state, before[2])
        w, state = w + upd, new_state


def _assert_same(a, b):
    for x, y in zip(a, b, strict=True):
        if isinstance(x, tuple):
            _assert_same(x, y)
        else:  # NaN marks "not known yet" in some states (bfgs's f before the first step)
            assert np.array_equal(x, y, equal_nan=True)


@pytest.mark.parametrize(
    "text",
    [
        "nesterov(lr=0.1,momentum=0.8)",
        "adagrad(lr=0.5,lr_decay=0.01,initial_accumulator_value=0.1,eps=1e-10)",
        "adadelta(lr=1.0,rho=0.9,eps=1e-6)",
        "adamax(lr=0.002,beta1=0.9,beta2=0.999,eps=1e-8)",
        "nadam(lr=0.002,beta1=0.9,beta2=0.999,eps=1e-8,momentum_decay=0.004)",
        "adabelief(lr=0.001,beta1=0.9,beta2=0.999,eps=1e-16)",
        "adasmooth(lr=0.1,rho1=0.5,rho2=0.99,eps=1e-6,window=10)",
        "newton(lr=1,damping=0.001)",
        "forward_gradient(lr=0.1,seed=42)",
        "sam(base=adam(lr=0.05),rho=0.05)",
        "sam(rho=0.05,base=sgd(lr=0.1,momentum=0.9,nesterov=true))",
        "asam(base=gd(lr=0.1),rho=0.5,eta=0.01)",
        "asam(base=sam(base=nadam(lr=0.01),rho=0.1),rho=0.5)",
        "gd(lr=0.1,noise=0.5,seed=3,batch=4)",
        "sam(base=gd(lr=0.1),noise=0.1,seed=1)",
    ],
)
def test_spec_round_trips(text):
    run = parse_spec(text)
    assert str(run) == text
    assert parse_spec(str(run)) == run


def test_nested_spec_values_and_edits():
    run = parse_spec("sam(base=adam(lr=0.05),rho=0.05)")
    base = run.get("base")
    assert base.name == "adam" and base.get("lr") == 0.05 and base.get("beta2") == 0.999
    assert str(run.with_values(rho=0.1)) == "sam(base=adam(lr=0.05),rho=0.1)"
    edited = run.with_values(base=parse_spec("gd(lr=0.3)"))
    assert str(edited) == "sam(base=gd(lr=0.3),rho=0.05)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sam(rho=0.1)", "missing base"),
        ("sam()", "missing base"),
        ("sam(base=1)", "expected an optimizer name"),
        ("sam(base=nope(lr=1))", "unknown optimizer 'nope'"),
        ("sam(base=gd(lr=0.1,noise=0.5))", "not on its base"),
        ("asam(base=gd(),rho=0.5,eta=-1)", r"eta must be a number in \[0, 100\]"),
        ("sam(base=gd(),rho=1e9)", r"rho must be a number in \[0, 100\]"),
        ("nesterov(momentum=0)", r"momentum must be a number in \(0, 1\)"),
        ("nesterov(dampening=0.5)", r"dampening must be a number in \[0, 0\]"),
        ("adagrad(lr_decay=-1)", r"lr_decay must be a number in \[0, 1000\]"),
        ("adagrad(eps=0)", r"eps must be a number in \(0, 1\]"),
        ("adadelta(rho=1.5)", r"rho must be a number in \[0, 1\]"),
        ("adamax(beta2=1)", r"beta2 must be a number in \[0, 1\)"),
        ("nadam(momentum_decay=-0.1)", "momentum_decay must be"),
        ("adasmooth(window=0)", r"window must be an integer in \[1, 1000\]"),
        ("adasmooth(window=2.5)", "window must be an integer"),
        ("adasmooth(rho1=0.99,rho2=0.9)", "rho1 .* must be smaller than rho2"),
        ("newton(damping=0)", r"damping must be a number in \(0, 1000000\]"),
        ("forward_gradient(seed=-1)", "seed"),
        ("gd(batch=-2)", "batch must be an integer"),
    ],
)
def test_bad_specs_say_why(text, message):
    with pytest.raises(ValueError, match=message):
        parse_spec(text)


# ----------------------------------------------------------------------------- noise


@pytest.mark.parametrize("name", list(REGISTRY))
def test_noise_is_reproducible_with_a_seed(name):
    text = playground_text(name)
    if "residuals" in REGISTRY[name].needs:  # lm: no gradient to add noise to
        with pytest.raises(ValueError, match="noise and batch do not apply"):
            parse_spec(text[:-1] + ("," if text[-2] != "(" else "") + "noise=0.3)")
        return
    noisy = text[:-1] + ("," if text[-2] != "(" else "") + "noise=0.3,seed=7)"
    other = noisy.replace("seed=7", "seed=8")
    a = run_trajectory(QUAD, parse_spec(noisy), START, 15)
    b = run_trajectory(QUAD, parse_spec(noisy), START, 15)
    c = run_trajectory(QUAD, parse_spec(other), START, 15)
    clean = run_trajectory(QUAD, parse_spec(text), START, 15)
    assert np.array_equal(a.points, b.points)
    assert not np.allclose(a.points, c.points)
    assert not np.allclose(a.points, clean.points)


def test_sam_perturbed_gradient_is_noisy_too():
    clean = run_trajectory(QUAD, parse_spec("sam(base=gd(lr=0.1),rho=0.1)"), START, 5)
    noisy = run_trajectory(
        QUAD, parse_spec("sam(base=gd(lr=0.1),rho=0.1,noise=0.5,seed=1)"), START, 5
    )
    for st in clean.states[1:]:
        np.testing.assert_allclose(st.g_sam, QUAD.grad(st.perturbed_point))
    for st in noisy.states[1:]:
        assert not np.allclose(st.g_sam, QUAD.grad(st.perturbed_point))


# ----------------------------------------------------------------------------- mini-batches


def test_batch_zero_and_full_batch_are_gradient_descent():
    data = TinyRegression(10)
    start = (-3.0, 3.0)
    w = np.array(start)
    manual = [w]
    for _ in range(25):
        w = w - 0.2 * data.grad(w)
        manual.append(w)
    full = run_trajectory(data, parse_spec("gd(lr=0.2)"), start, 25)
    whole = run_trajectory(data, parse_spec("gd(lr=0.2,batch=10,seed=4)"), start, 25)
    np.testing.assert_allclose(full.points, manual, rtol=1e-12)
    np.testing.assert_allclose(whole.points, manual, rtol=1e-12, atol=1e-14)
    assert full.batches == ()
    assert all(sorted(b.tolist()) == list(range(10)) for b in whole.batches)


def test_minibatches_are_drawn_per_epoch_without_replacement():
    data = TinyRegression(10)
    run = parse_spec("gd(lr=0.2,batch=3,seed=5)")
    traj = run_trajectory(data, run, (-3.0, 3.0), 12)
    sizes = [len(b) for b in traj.batches]
    assert sizes == [3, 3, 3, 1] * 3  # the last batch of an epoch holds the remainder
    epochs = [np.concatenate(traj.batches[4 * e : 4 * e + 4]) for e in range(3)]
    for order in epochs:
        assert sorted(order.tolist()) == list(range(10))
    assert not all(np.array_equal(epochs[0], o) for o in epochs[1:])  # reshuffled
    for k in range(1, traj.steps + 1):  # each step used its own batch's gradient
        np.testing.assert_allclose(
            traj.used_grads[k], data.batch_grad(traj.points[k - 1], traj.batches[k - 1])
        )


def test_minibatches_are_reproducible_and_seeded():
    data = TinyRegression(10)
    a = run_trajectory(data, parse_spec("gd(lr=0.2,batch=1,seed=5)"), (-3.0, 3.0), 30)
    b = run_trajectory(data, parse_spec("gd(lr=0.2,batch=1,seed=5)"), (-3.0, 3.0), 30)
    c = run_trajectory(data, parse_spec("gd(lr=0.2,batch=1,seed=6)"), (-3.0, 3.0), 30)
    gd = run_trajectory(data, parse_spec("gd(lr=0.2)"), (-3.0, 3.0), 30)
    assert np.array_equal(a.points, b.points)
    assert all(np.array_equal(x, y) for x, y in zip(a.batches, b.batches, strict=True))
    assert not np.allclose(a.points, c.points)
    assert not np.allclose(a.points, gd.points)  # SGD jitters away from GD's path


def test_sam_takes_both_gradients_on_the_same_batch():
    data = TinyRegression(10)
    traj = run_trajectory(data, parse_spec("sam(base=gd(lr=0.2),rho=0.1,batch=2,seed=1)"),
                          (-3.0, 3.0), 8)
    for k in range(1, traj.steps + 1):
        st, idx = traj.states[k], traj.batches[k - 1]
        np.testing.assert_allclose(st.g_sam, data.batch_grad(st.perturbed_point, idx))


def test_forward_gradient_uses_the_batch():
    data = TinyRegression(10)
    traj = run_trajectory(data, parse_spec("forward_gradient(lr=0.1,batch=3,seed=2)"),
                          (-3.0, 3.0), 5)
    for k in range(1, traj.steps + 1):
        st, idx = traj.states[k], traj.batches[k - 1]
        assert st.d == pytest.approx(float(data.batch_grad(traj.points[k - 1], idx) @ st.v))


def test_batch_needs_a_data_set():
    with pytest.raises(ValueError, match="batch=4 needs a surface built from a data set"):
        run_trajectory(QUAD, parse_spec("gd(lr=0.1,batch=4)"), START, 5)
    with pytest.raises(ValueError, match=r"larger than the data set .* \[0, 10\]"):
        run_trajectory(TinyRegression(10), parse_spec("gd(lr=0.1,batch=11)"), START, 5)

"""Step explanations: every line recomputes from its substituted numbers to the recorded value."""

import dataclasses

import numpy as np
import pytest
from tinydata import TinyRegression

from engine import REGISTRY, get_surface, parse_spec, run_trajectory
from engine.explain import (
    EXPLAINERS,
    StepExplanation,
    explain_state,
    explain_step,
    fmt,
    fmt_value,
    tex_num,
    tex_symbol,
)
from engine.functions import Surface
from engine.presets import COURSE

QUAD = get_surface("quadratic")

# At least one run per registered optimizer, with the branches their rules have.
EXAMPLES = {
    "gd": ["gd(lr=0.4)"],
    "momentum": ["momentum(lr=0.6,beta=0.5)"],
    "sgd": [
        "sgd(lr=0.1)",
        "sgd(lr=0.1,momentum=0.9)",
        "sgd(lr=0.1,momentum=0.9,dampening=0.2)",
        "sgd(lr=0.05,momentum=0.9,nesterov=true)",
    ],
    "nesterov": ["nesterov(lr=0.05)"],
    "rmsprop": ["rmsprop(lr=0.3,alpha=0.9,eps=1e-6,eps_in_sqrt=true)", "rmsprop(lr=0.1)"],
    "adam": ["adam(lr=0.2,beta1=0.9,beta2=0.999,eps=1e-6)", "adam(lr=0.1,amsgrad=true)"],
    "adagrad": ["adagrad(lr=1,lr_decay=0.1,initial_accumulator_value=0.5)"],
    "adadelta": ["adadelta(lr=1,eps=0.01)"],
    "adamax": ["adamax(lr=0.3)"],
    "nadam": ["nadam(lr=0.2)"],
    "adabelief": ["adabelief(lr=0.2)"],
    "adasmooth": ["adasmooth(lr=0.1,window=3)"],
    "newton": ["newton(lr=0.2)"],
    "sam": ["sam(base=adam(lr=0.05),rho=0.05)", "sam(base=gd(lr=0.3),rho=0.1)"],
    "asam": ["asam(base=momentum(lr=0.1,beta=0.5),rho=0.1)"],
    "forward_gradient": ["forward_gradient(lr=0.1,seed=2)"],
    "adamw": ["adamw(lr=0.1,weight_decay=0.3)", "adamw(lr=0.1,amsgrad=true)"],
    "lion": ["lion(lr=0.1,weight_decay=0.2)"],
    "bfgs": ["bfgs()"],
    "cg": ["cg()", "cg(variant=fletcher_reeves)"],
    "lbfgs": ["lbfgs(line_search_fn=strong_wolfe)", "lbfgs(lr=0.1,history_size=2)"],
    "lm": ["lm(tau=10)", "lm(damping_update=marquardt,tau=10)"],
    "scg": ["scg(lambda1=1)"],
    "trust_region": ["trust_region(radius=0.5)"],
    "gd (scheduled)": ["gd(lr=0.4,schedule=cosine,clip_norm=1)"],
}
ALL_SPECS = [s for specs in EXAMPLES.values() for s in specs]
STEPS = 5


def _close(a, b, rtol=1e-9):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.allclose(a, b, rtol=rtol, atol=1e-12 * max(1.0, float(np.max(np.abs(b)))))


def test_every_registered_optimizer_has_an_explainer_and_an_example():
    assert set(REGISTRY) <= set(EXPLAINERS), set(REGISTRY) - set(EXPLAINERS)
    assert set(REGISTRY) <= set(EXAMPLES), set(REGISTRY) - set(EXAMPLES)


@pytest.mark.parametrize("text", ALL_SPECS)
def test_every_line_recomputes_to_the_recorded_value(text):
    traj = run_trajectory(QUAD, parse_spec(text), COURSE.start, STEPS)
    for k in range(1, STEPS + 1):
        step = explain_step(traj, k)
        assert step.lines[-1].target == "w"
        assert step.lines[-1].result == tuple(traj.points[k])  # the recorded point, exactly
        assert step.point_before == tuple(traj.points[k - 1])
        assert not any("no detailed explanation" in n for n in step.notes)
        for line in step.lines:
            assert line.exact, line.text
            assert _close(line.recompute(), line.result), (k, line.text, line.recompute())
            # the text shows the result at display precision
            assert line.result_text == fmt_value(line.result, minus="−")


@pytest.mark.parametrize("text", ALL_SPECS)
def test_state_lines_carry_the_recorded_states(text):
    traj = run_trajectory(QUAD, parse_spec(text), COURSE.start, 3)
    step = explain_step(traj, 2)
    after = {s.name.removeprefix("base."): s.after for s in step.states}
    before = {s.name.removeprefix("base."): s.before for s in step.states}
    shown = 0
    for line in step.lines:
        if line.target in after and line.target != "t":
            assert line.result == after[line.target]
            shown += 1
    state = traj.states[2]
    if hasattr(state, "base_state"):
        state = state.base_state
    changed = [
        f for f in state._fields
        if f not in ("t", "window") and not np.array_equal(getattr(state, f),
                                                           getattr(traj.states[1], f, None))
    ]
    assert shown >= 1 or not changed
    assert set(before) == set(after)


def test_course_gd_first_step_reads_like_the_course():
    traj = run_trajectory(QUAD, parse_spec("gd(lr=0.4)"), COURSE.start, 2)
    step = explain_step(traj, 1)
    assert [line.target for line in step.lines] == ["g", "w"]
    g, w = step.lines
    assert g.text == "g₁ = ∇f(w₀) = ∇f(−5, −2) = (−1, −8)"
    assert w.rule == "w ← w − η·g"
    assert w.symbolic == "w₀ − η·g₁"
    assert w.substituted == "(−5, −2) − 0.4·(−1, −8)"
    assert w.result_text == "(−4.6, 1.2)"
    assert w.rule_latex == r"w \leftarrow w - \eta\,g"
    assert w.symbolic_latex == r"w_{0} - \eta\,g_{1}"
    assert step.hypers[0].name == "lr" and step.hypers[0].symbol == "η"
    assert step.hypers[0].latex == r"\eta" and step.hypers[0].value == 0.4


def test_course_rmsprop_and_adam_second_step():
    traj = run_trajectory(QUAD, parse_spec(COURSE.optimizers[2]), COURSE.start, 2)
    step = explain_step(traj, 2)
    s = next(line for line in step.lines if line.target == "s")
    assert s.substituted == "0.9·(0.1, 6.4) + (1 − 0.9)·(−0.81026429, −4.2052671)²"
    assert step.lines[-1].result_text == "(−3.4351975, −0.59152343)"
    assert [v.name for v in step.states] == ["t", "s"]
    assert step.states[1].before == pytest.approx((0.1, 6.4))
    assert type(step.states[1].before[0]) is float

    traj = run_trajectory(QUAD, parse_spec(COURSE.optimizers[3]), COURSE.start, 2)
    step = explain_step(traj, 2)
    targets = [line.target for line in step.lines]
    assert targets == ["g", "t", "m", "v", "m_hat", "v_hat", "w"]
    m_hat = step.lines[4]
    assert m_hat.symbolic == "m₂ / (1 − β₁ᵗ)"
    assert m_hat.substituted == "(−0.186, −1.44) / (1 − 0.9²)"
    assert step.lines[-1].result_text == "(−4.6002548, −1.6008245)"


def test_sam_explains_the_ascent_then_the_base_rule():
    traj = run_trajectory(QUAD, parse_spec("sam(base=adam(lr=0.05),rho=0.05)"), (-5, -2), 2)
    step = explain_step(traj, 1)
    targets = [line.target for line in step.lines]
    assert targets[:4] == ["g", "eps", "perturbed_point", "g_sam"]
    assert targets[4:] == ["t", "m", "v", "m_hat", "v_hat", "w"]
    eps = step.lines[1]
    assert eps.rule == "ε̂ ← ρ·g / ‖g‖₂"
    assert np.isclose(np.linalg.norm(eps.result), 0.05)
    m = step.lines[5]
    assert "g_SAM₁" in m.symbolic  # the base rule consumes the perturbed gradient
    assert m.result == tuple(traj.states[1].base_state.m)
    names = [s.name for s in step.states]
    assert "base.m" in names and "g_sam" in names and "perturbed_point" in names
    assert any(q.name == "base.lr" for q in step.hypers)


def test_asam_scales_the_neighbourhood():
    traj = run_trajectory(QUAD, parse_spec("asam(base=gd(lr=0.1),rho=0.1)"), (-5, -2), 1)
    step = explain_step(traj, 1)
    assert [line.target for line in step.lines] == [
        "g", "scale", "eps", "perturbed_point", "g_sam", "w"]
    assert step.lines[1].result == tuple(np.abs([-5.0, -2.0]) + 0.01)


def test_noise_is_explained_as_a_stochastic_gradient():
    traj = run_trajectory(QUAD, parse_spec("sgd(lr=0.1,noise=0.5,seed=3)"), (-5, -2), 2)
    step = explain_step(traj, 2)
    assert step.stochastic
    assert any("stochastic" in n for n in step.notes)
    g = step.lines[0]
    assert g.symbolic == "∇f(w₁) + σ·ξ₂"
    assert g.exact and _close(g.recompute(), traj.used_grads[2])
    assert step.gradient != step.true_gradient
    # SAM's second gradient is a fresh noisy draw: shown, not recomputable
    traj = run_trajectory(QUAD, parse_spec("sam(base=gd(lr=0.1),noise=0.5)"), (-5, -2), 1)
    g_sam = next(line for line in explain_step(traj, 1).lines if line.target == "g_sam")
    assert not g_sam.exact and "noisy" in g_sam.note


@pytest.mark.parametrize("text", ["sgd(lr=0.2,batch=2,seed=1)",
                                  "sam(base=gd(lr=0.2),batch=3)",
                                  "forward_gradient(lr=0.1,batch=2)"])
def test_mini_batches_are_recomputed_on_the_recorded_batch(text):
    data = TinyRegression(8, seed=7)
    traj = run_trajectory(data, parse_spec(text), (-3.0, 3.0), 3)
    for k in (1, 2, 3):
        step = explain_step(traj, k, surface=data)
        assert step.stochastic and any("mini-batch" in n for n in step.notes)
        for line in step.lines:
            assert line.exact
            assert _close(line.recompute(), line.result), line.text
    assert "∇f_B" in explain_step(traj, 1, surface=data).to_text()


def _saddle() -> Surface:
    return Surface(
        name="saddle_test", title="saddle", formula="w1² − w2²", latex=r"w_1^2 - w_2^2",
        _value=lambda x, y: x**2 - y**2, _grad=lambda x, y: (2 * x, -2 * y),
        _hess=lambda x, y: (2.0, 0.0, -2.0),
    )


def test_newton_on_an_indefinite_hessian_shows_the_absolute_hessian():
    surf = _saddle()
    traj = run_trajectory(surf, parse_spec("newton(lr=0.5)"), (1.0, 0.5), 2)
    step = explain_step(traj, 1, surface=surf)
    targets = [line.target for line in step.lines]
    assert targets == ["g", "hessian", "eigvals", "abs_hessian", "direction", "w"]
    for line in step.lines:
        assert _close(line.recompute(), line.result), line.text
    assert step.lines[3].result == ((2.0, 0.0), (0.0, 2.0))


def test_forward_gradient_does_not_use_the_gradient():
    traj = run_trajectory(QUAD, parse_spec("forward_gradient(lr=0.1)"), (-5, -2), 1)
    step = explain_step(traj, 1)
    assert [line.target for line in step.lines] == ["v", "d", "g_est", "w"]
    assert step.stochastic
    assert any("estimated" in n for n in step.notes)


def test_adasmooth_first_step_uses_the_zero_over_zero_guard():
    traj = run_trajectory(QUAD, parse_spec("adasmooth(lr=0.1,window=2)"), (-5, -2), 4)
    first = explain_step(traj, 1)
    e = next(line for line in first.lines if line.target == "e")
    assert e.result == (1.0, 1.0) and "0/0" in e.note
    later = explain_step(traj, 4)
    assert "Δx₂ + Δx₃" in later.lines[1].symbolic  # the window holds the last 2 steps


def test_unknown_rule_falls_back_to_the_recorded_update(monkeypatch):
    import dataclasses

    # a spec without an explainer (the registry refuses one, so patch it in afterwards)
    monkeypatch.setitem(REGISTRY, "gd", dataclasses.replace(REGISTRY["gd"], explainer=None))
    assert "gd" not in EXPLAINERS
    traj = run_trajectory(QUAD, parse_spec("gd(lr=0.4)"), (-5, -2), 1)
    step = explain_step(traj, 1)
    assert step.lines[-1].result == tuple(traj.points[1])
    assert _close(step.lines[-1].recompute(), traj.points[1])
    assert any("no detailed explanation" in n for n in step.notes)


def test_explain_state_at_the_start_and_later():
    traj = run_trajectory(QUAD, parse_spec("adam(lr=0.2,eps=1e-6)"), (-5, -2), 3)
    start = explain_state(traj, 0)
    assert start.k == 0 and start.point == (-5.0, -2.0)
    assert start.loss == pytest.approx(10.5) and start.gradient == (-1.0, -8.0)
    assert [q.name for q in start.state] == ["t", "m", "v", "m_hat", "v_hat", "v_max"]
    assert start.state[1].value == (0.0, 0.0) and start.state[3].symbol == "m̂"
    assert "w₀ = (−5, −2)" in start.to_text()
    later = explain_state(traj, 3)
    assert later.point == tuple(traj.points[3])
    assert later.state[1].value == tuple(traj.states[3].m)
    with pytest.raises(IndexError):
        explain_state(traj, 4)
    with pytest.raises(IndexError):
        explain_step(traj, 0)


def test_explanations_are_immutable():
    traj = run_trajectory(QUAD, parse_spec("gd(lr=0.4)"), (-5, -2), 1)
    step = explain_step(traj, 1)
    assert isinstance(step, StepExplanation)
    with pytest.raises(dataclasses.FrozenInstanceError):
        step.k = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        step.lines[0].result = (0.0, 0.0)  # type: ignore[misc]
    assert isinstance(step.lines, tuple) and isinstance(step.point_after, tuple)


@pytest.mark.parametrize(
    ("value", "text"),
    [(-4.051321445330401, "-4.0513214"), (1.2000000000000002, "1.2"), (1e-6, "1e-6"),
     (30, "30"), (True, "true"), (-0.0, "0"), (2.5e-7, "2.5e-7"), (123456789.0, "1.2345679e8"),
     (0.1 + 0.2, "0.3"), (float("inf"), "inf")],
)
def test_fmt(value, text):
    assert fmt(value) == text


def test_fmt_value_and_latex_helpers():
    assert fmt_value((-4.6, 1.2000000000000002), minus="−") == "(−4.6, 1.2)"
    assert fmt_value(((1.0, 0.0), (0.0, 4.0))) == "((1, 0), (0, 4))"
    assert tex_num(1e-6) == "10^{-6}"
    assert tex_num(-2.5e-7) == r"-2.5\times 10^{-7}"
    assert tex_symbol("β₁") == r"\beta_{1}"
    assert tex_symbol("η_a") == r"\eta_{a}"
    assert tex_symbol("s₀") == r"s_{0}"

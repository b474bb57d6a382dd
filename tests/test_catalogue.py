"""The catalogue's structure: every optimizer is complete, and its pieces agree.

One module per optimizer family holds the state, rule, spec, explainer, torch mapping and
overlay velocity; the registry refuses a spec with a piece missing, and these tests check
that the pieces say the same thing (the rule text and the explainer's lines name the same
quantities; the velocity is a vector of the state).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np
import pytest

from engine import REGISTRY, get_surface, parse_spec, run_trajectory
from engine.explain import explain_step
from engine.optimizers import (
    FROM_BASE,
    NO_TORCH,
    Hyper,
    OptimizerSpec,
    TorchMapping,
    register,
    velocity,
)
from engine.optimizers.registry import check_complete
from engine.spec import canonical

SURFACE = get_surface("himmelblau")  # curved everywhere, so no line is trivially zero


class _State(NamedTuple):
    t: int
    v: np.ndarray


def _complete(**changes) -> OptimizerSpec:
    spec = OptimizerSpec(
        name="toy", title="Toy", family="Gradient descent", summary="a test rule",
        rule="v ← g\nw ← w − η·v", hypers=(Hyper("lr", 0.1, "learning rate", symbol="η"),),
        factory=lambda lr: None, state=_State, symbols={"v": ("v", "v")},
        explainer=lambda c: None, torch=NO_TORCH, velocity=("v", "v"),
    )
    return dataclasses.replace(spec, **changes)


def test_a_complete_spec_passes_the_check():
    check_complete(_complete())  # raises if the fixture itself were incomplete


@pytest.mark.parametrize(("change", "message"), [
    ({"explainer": dataclasses.MISSING}, "explainer"),
    ({"explainer": None}, "explainer"),
    ({"torch": dataclasses.MISSING}, "torch mapping is not declared"),
    ({"torch": "Adam"}, "TorchMapping or NO_TORCH"),
    ({"torch": TorchMapping("Adam", lambda v: {})}, "examples"),
    ({"velocity": dataclasses.MISSING}, "velocity is not declared"),
    ({"velocity": ("m", "m")}, "not a field of the state"),
    ({"velocity": FROM_BASE}, "no base_state"),
    ({"rule": "  "}, "rule text is empty"),
    ({"symbols": {}}, "no symbol for state field(s) v"),
    ({"symbols": dataclasses.MISSING}, "symbols"),
    ({"state": dataclasses.MISSING}, "state"),
])
def test_register_refuses_an_incomplete_spec(change, message):
    fields = {f.name: f.default for f in dataclasses.fields(OptimizerSpec)}
    # MISSING stands for "left out": the dataclass's own default (the registry's sentinel)
    change = {k: (fields[k] if v is dataclasses.MISSING else v) for k, v in change.items()}
    spec = _complete(**change)
    with pytest.raises(ValueError, match="incomplete") as info:
        register(spec)
    assert message in str(info.value)
    assert "toy" not in REGISTRY


def test_torch_class_comes_from_the_mapping():
    for spec in REGISTRY.values():
        if spec.torch is NO_TORCH:
            assert spec.torch_class is None
        else:
            assert spec.torch_class == spec.torch.cls and spec.torch.examples
            assert all(parse_spec(e).name == spec.name for e in spec.torch.examples)


def _run(name: str, steps: int = 4):
    spec = REGISTRY[name]
    values = {k: parse_spec(v) if spec.hyper(k).kind == "spec" else v
              for k, v in spec.playground.items()}
    return run_trajectory(SURFACE, canonical(name, **values), (1.0, 1.5), steps)


def _rule_targets(rule: str) -> set[str]:
    """What the rule text assigns: the symbol left of each ←."""
    out = set()
    for line in rule.splitlines():
        for part in line.split(";"):
            if "←" in part:
                out.add(part.split("←")[0].split(":")[-1].strip())
    return out


# Intermediates an explainer writes out that the rule text folds into one formula.
SPELLED_OUT = {
    "nadam": {"μₜ", "μₜ₊₁", "Πₜ", "Πₜ₊₁"},
    "adagrad": {"ηₜ"},
    "adasmooth": {"ΣΔx", "Σ|Δx|"},
    "newton": {"H", "Λ", "|H|"},
    "forward_gradient": {"v"},
    "nesterov": {"d"},
    "lm": {"JᵀJ", "Jᵀr"},
    "trust_region": {"B"},
}


@pytest.mark.parametrize("name", list(REGISTRY))
def test_rule_text_and_explainer_agree(name):
    spec = REGISTRY[name]
    traj = _run(name)
    targets = _rule_targets(spec.rule)
    hyper_symbols = {h.symbol for h in spec.hypers if h.symbol}
    explained, mentioned = set(), set()
    for k in range(1, traj.steps + 1):
        for line in explain_step(traj, k).lines:
            lhs = line.rule.split("←")[0].strip()
            if lhs in ("g", "t"):  # the gradient and the step counter, common to all
                continue
            explained.add(lhs)
            mentioned |= {s for s in hyper_symbols if s in line.rule}
    # every quantity the explainer assigns is one the rule text assigns (or an intermediate
    # the rule folds into a formula, listed above) …
    assert explained - SPELLED_OUT.get(name, set()) <= targets, (explained, targets)
    # … the final line of both is the step w ← …
    assert "w" in explained and "w" in targets
    # … and the velocity the overlays draw, when the rule uses it, is written out.
    if spec.velocity not in (None, FROM_BASE):
        field = spec.velocity[0]
        if np.any(np.asarray(getattr(traj.states[-1], field)) != 0):
            assert spec.symbol(field)[0] in explained
    # hyperparameters the explainer uses are the rule text's symbols
    assert all(s in spec.rule for s in mentioned)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_declared_velocity_is_a_vector_of_the_state(name):
    traj = _run(name, steps=2)
    found = velocity(traj.spec, traj.states[2])
    if REGISTRY[name].velocity is None:
        assert found is None
        return
    if REGISTRY[name].velocity == FROM_BASE:
        base = traj.spec.resolved()["base"]
        assert (found is None) == (REGISTRY[base.name].velocity is None)
        if found is None:
            return
    vec, label = found
    assert vec.shape == (2,) and np.all(np.isfinite(vec)) and label

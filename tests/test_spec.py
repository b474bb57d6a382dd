"""Spec strings: parse, print back identically, and explain every mistake."""

import pytest

from engine import REGISTRY, parse_spec
from engine.spec import canonical


@pytest.mark.parametrize("text", [
    "gd(lr=0.4)",
    "momentum(lr=0.6,beta=0.5)",
    "rmsprop(lr=0.3,alpha=0.9,eps=1e-6,eps_in_sqrt=true)",
    "adam(lr=0.2,beta1=0.9,beta2=0.999,eps=1e-6)",
    "adam(lr=0.2)",
    "adam(eps=1e-6,lr=0.2)",
    "sgd(lr=0.1,momentum=0.9,dampening=0,nesterov=true)",
    "adam(lr=.5,amsgrad=false)",
    "gd()",
    "adam(lr=0.1,noise=0.5,seed=3)",
])
def test_round_trip(text):
    run = parse_spec(text)
    assert str(run) == text
    assert str(parse_spec(str(run))) == text


def test_whitespace_is_tolerated_and_normalized():
    assert str(parse_spec("  adam ( lr = 0.2 , beta1=0.8 ) ")) == "adam(lr=0.2,beta1=0.8)"


def test_bare_name_means_defaults():
    run = parse_spec("adam")
    assert run.resolved()["lr"] == 1e-3 and run.resolved()["beta2"] == 0.999


def test_values_are_typed():
    run = parse_spec("rmsprop(lr=0.3,alpha=0.9,eps=1e-6,eps_in_sqrt=true)")
    assert run.given == {"lr": 0.3, "alpha": 0.9, "eps": 1e-6, "eps_in_sqrt": True}
    assert isinstance(parse_spec("adam(seed=7)").given["seed"], int)


def test_defaults_are_torchs():
    sgd = parse_spec("sgd").resolved()
    assert {k: sgd[k] for k in ("lr", "momentum", "dampening", "nesterov", "noise", "seed")} == {
        "lr": 1e-3, "momentum": 0.0, "dampening": 0.0, "nesterov": False, "noise": 0.0,
        "seed": 0}
    adam = parse_spec("adam").resolved()
    assert (adam["lr"], adam["beta1"], adam["beta2"], adam["eps"], adam["amsgrad"]) == (
        1e-3, 0.9, 0.999, 1e-8, False)
    rms = parse_spec("rmsprop").resolved()
    assert (rms["lr"], rms["alpha"], rms["eps"], rms["eps_in_sqrt"]) == (1e-2, 0.99, 1e-8, False)


@pytest.mark.parametrize("text, fragment", [
    ("adamz(lr=0.1)", "choose one of: gd"),
    ("adam(lrr=0.1)", "valid: lr, beta1"),
    ("adam(lr=-0.1)", "lr must be a number in [0, 10000]"),
    ("adam(beta1=1)", "beta1 must be a number in [0, 1)"),
    ("adam(beta1=nan)", "expected a value for beta1"),
    ("adam(lr=)", "expected a value for lr"),
    ("adam(=0.1)", "expected a hyperparameter name"),
    ("adam(lr 0.1)", "expected '='"),
    ("adam(lr=0.1", "expected ')'"),
    ("adam(lr=0.1) x", "unexpected 'x'"),
    ("adam(lr=0.1,lr=0.2)", "lr given twice"),
    ("adam(amsgrad=2)", "amsgrad must be true or false"),
    ("adam(seed=1.5)", "seed must be an integer"),
    ("sgd(nesterov=true)", "nesterov=true requires momentum > 0"),
    ("", "empty optimizer spec"),
    ("__import__('os')", "unknown optimizer '__import__'"),
    ("adam(lr=" + "1" * 3000 + ")", "too long"),
    ("adam(lr=" + "1" * 400 + ")", "lr is too large"),
    ("adam(lr=1e999)", "lr is too large"),
    ("adam(seed=" + "9" * 400 + ")", "seed is too large"),
    ("gd(lr=\u0661)", "expected a value for lr"),
])
def test_errors_name_the_problem(text, fragment):
    with pytest.raises(ValueError) as info:
        parse_spec(text)
    assert fragment in str(info.value)


def test_with_values_validates_and_keeps_given_order():
    run = parse_spec("adam(eps=1e-6,lr=0.2)")
    assert str(run.with_values(lr=0.05)) == "adam(eps=1e-6,lr=0.05)"
    changed = run.with_values(beta2=0.99, beta1=0.8)
    assert str(changed) == "adam(eps=1e-6,lr=0.2,beta1=0.8,beta2=0.99)"
    with pytest.raises(ValueError, match="out of range"):
        run.with_values(lr=-1)
    assert str(run.without("eps")) == "adam(lr=0.2)"


def test_canonical_orders_keys_like_the_registry():
    assert str(canonical("adam", eps=1e-6, lr=0.2)) == "adam(lr=0.2,eps=1e-6)"


def test_every_registered_optimizer_parses_with_defaults_or_requires_something():
    for name, spec in REGISTRY.items():
        required = [h.name for h in spec.all_hypers if h.required]
        if required:
            with pytest.raises(ValueError, match="missing"):
                parse_spec(name)
        else:
            assert parse_spec(name).resolved() == spec.defaults()

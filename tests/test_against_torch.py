"""The torch.optim-derived rules follow torch.optim itself, step for step.

Each case runs the engine (``run_trajectory`` on a spec string) and the matching
torch.optim class (float64 tensors, the same surface's gradient written into ``p.grad``)
side by side for 200 steps from the same start, on three surfaces: the course quadratic, a
rotated ill-conditioned quadratic and a non-quadratic pseudo-Huber bowl with a coupling
term. The torch side never sees engine code except the surface's gradient; the torch
keyword arguments are written out by hand, so a wrong default, a misplaced ε or a wrong
bias correction shows up as a mismatch. torch is imported only in this module.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from engine.functions import get_surface
from engine.optimizers import get_optimizer_spec
from engine.spec import parse_spec
from engine.trajectory import run_trajectory

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

STEPS = 200
RTOL = 1e-6
ATOL = 1e-12  # points that approach 0 are compared absolutely at float64 round-off


class InlineSurface:
    """A 2-D surface defined in this test: value written once for numpy and torch, the
    gradient in closed form (checked against torch autograd below).

    Enough of the Surface interface for ``run_trajectory``: value, grad, view, name.
    """

    def __init__(self, name: str, f, grad, view=(-10.0, 10.0, -10.0, 10.0)):
        self.name = name
        self.f = f
        self._grad = grad
        self.view = view

    def value(self, p):
        p = np.asarray(p, dtype=float)
        return self.f(p[..., 0], p[..., 1], np)

    def grad(self, p):
        p = np.asarray(p, dtype=float)
        return np.array(self._grad(p[0], p[1]), dtype=float)

    def hessian(self, p):  # unused by these rules
        raise NotImplementedError

    def jvp(self, p, v):  # unused by these rules
        raise NotImplementedError


_C, _S = np.cos(np.pi / 6), np.sin(np.pi / 6)


def _rotated(x, y, xp):
    """An ill-conditioned quadratic (curvatures 1 and 10) rotated by 30°, minimum (1, −0.5)."""
    u = _C * (x - 1.0) + _S * (y + 0.5)
    v = -_S * (x - 1.0) + _C * (y + 0.5)
    return 0.5 * u**2 + 5.0 * v**2


def _rotated_grad(x, y):
    u = _C * (x - 1.0) + _S * (y + 0.5)
    v = -_S * (x - 1.0) + _C * (y + 0.5)
    return (_C * u - _S * 10.0 * v, _S * u + _C * 10.0 * v)


def _huber_bowl(x, y, xp):
    """Pseudo-Huber bowl with a coupling term: gradients saturate far out, curvature ≤ ~3.5."""
    return (
        xp.sqrt(1.0 + (x - 1.0) ** 2)
        + 3.0 * xp.sqrt(1.0 + (y + 0.5) ** 2)
        + 0.3 * xp.sin(x) * xp.sin(y)
    )


def _huber_bowl_grad(x, y):
    return (
        (x - 1.0) / np.sqrt(1.0 + (x - 1.0) ** 2) + 0.3 * np.cos(x) * np.sin(y),
        3.0 * (y + 0.5) / np.sqrt(1.0 + (y + 0.5) ** 2) + 0.3 * np.sin(x) * np.cos(y),
    )


SURFACES = {
    "quadratic": (lambda: get_surface("quadratic"), (-5.0, -2.0)),
    "rotated": (lambda: InlineSurface("rotated", _rotated, _rotated_grad), (3.0, 2.0)),
    "huber_bowl": (lambda: InlineSurface("huber_bowl", _huber_bowl, _huber_bowl_grad),
                   (-3.0, 2.5)),
}

# spec string, torch class, torch keyword arguments (written independently of the engine)
CASES = [
    ("sgd(lr=0.05)", "SGD", dict(lr=0.05)),
    ("sgd(lr=0.02,momentum=0.9)", "SGD", dict(lr=0.02, momentum=0.9)),
    ("sgd(lr=0.05,momentum=0.8,dampening=0.3)", "SGD",
     dict(lr=0.05, momentum=0.8, dampening=0.3)),
    ("sgd(lr=0.02,momentum=0.9,nesterov=true)", "SGD",
     dict(lr=0.02, momentum=0.9, nesterov=True)),
    ("nesterov(lr=0.02)", "SGD", dict(lr=0.02, momentum=0.9, nesterov=True)),
    ("nesterov(lr=0.05,momentum=0.5)", "SGD", dict(lr=0.05, momentum=0.5, nesterov=True)),
    ("adagrad(lr=0.5)", "Adagrad", dict(lr=0.5)),
    ("adagrad(lr=0.5,lr_decay=0.01,initial_accumulator_value=0.1)", "Adagrad",
     dict(lr=0.5, lr_decay=0.01, initial_accumulator_value=0.1)),
    ("adagrad(lr=0.3,eps=0.001)", "Adagrad", dict(lr=0.3, eps=1e-3)),
    ("rmsprop(lr=0.01)", "RMSprop", dict(lr=0.01)),
    ("rmsprop(lr=0.02,alpha=0.9,eps=1e-6,eps_in_sqrt=false)", "RMSprop",
     dict(lr=0.02, alpha=0.9, eps=1e-6)),
    ("adadelta()", "Adadelta", dict()),
    ("adadelta(lr=0.5,rho=0.95,eps=1e-4)", "Adadelta", dict(lr=0.5, rho=0.95, eps=1e-4)),
    ("adam(lr=0.05)", "Adam", dict(lr=0.05)),
    ("adam(lr=0.05,amsgrad=true)", "Adam", dict(lr=0.05, amsgrad=True)),
    ("adam(lr=0.1,beta1=0.8,beta2=0.99,eps=1e-6,amsgrad=true)", "Adam",
     dict(lr=0.1, betas=(0.8, 0.99), eps=1e-6, amsgrad=True)),
    ("adamax(lr=0.05)", "Adamax", dict(lr=0.05)),
    ("adamax(lr=0.1,beta1=0.8,beta2=0.99,eps=1e-4)", "Adamax",
     dict(lr=0.1, betas=(0.8, 0.99), eps=1e-4)),
    ("nadam(lr=0.05)", "NAdam", dict(lr=0.05)),
    ("nadam(lr=0.1,beta1=0.8,beta2=0.99,eps=1e-6,momentum_decay=0.01)", "NAdam",
     dict(lr=0.1, betas=(0.8, 0.99), eps=1e-6, momentum_decay=0.01)),
]


@pytest.mark.parametrize("name", ["rotated", "huber_bowl"])
def test_inline_gradients_match_autograd(name):
    surface = SURFACES[name][0]()
    rng = np.random.default_rng(0)
    for p in rng.uniform(-4, 4, size=(5, 2)):
        w = torch.tensor(p, dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(surface.f(w[0], w[1], torch), w)
        np.testing.assert_allclose(surface.grad(p), g.numpy(), rtol=1e-12, atol=1e-12)


def torch_trajectory(surface, start, cls_name: str, kwargs: dict, steps: int) -> np.ndarray:
    p = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = getattr(torch.optim, cls_name)([p], foreach=False, **kwargs)
    points = [p.detach().numpy().copy()]
    for _ in range(steps):
        g = surface.grad(p.detach().numpy().copy())
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        points.append(p.detach().numpy().copy())
    return np.array(points)


@pytest.mark.parametrize("surface_name", list(SURFACES))
@pytest.mark.parametrize(("text", "cls_name", "kwargs"), CASES, ids=[c[0] for c in CASES])
def test_trajectory_matches_torch(text, cls_name, kwargs, surface_name):
    make, start = SURFACES[surface_name]
    surface = make()
    ours = run_trajectory(surface, parse_spec(text), start, STEPS)
    assert not ours.diverged, ours.diverged_reason
    theirs = torch_trajectory(surface, start, cls_name, kwargs, STEPS)
    assert np.all(np.isfinite(theirs))
    # the run must actually go somewhere, or the comparison would prove little
    assert np.linalg.norm(theirs[-1] - theirs[0]) > 1e-3
    np.testing.assert_allclose(ours.points, theirs, rtol=RTOL, atol=ATOL)


def test_comparison_detects_a_wrong_rule():
    """The harness can fail: a slightly different ε placement is caught."""
    make, start = SURFACES["rotated"]
    surface = make()
    ours = run_trajectory(surface, parse_spec("rmsprop(lr=0.02,eps=1e-2,eps_in_sqrt=true)"),
                          start, STEPS)
    theirs = torch_trajectory(surface, start, "RMSprop", dict(lr=0.02, eps=1e-2), STEPS)
    assert not np.allclose(ours.points, theirs, rtol=RTOL, atol=ATOL)


# engine name -> (torch class, {engine hyperparameter: torch argument or (argument, index)})
TORCH_NAMES = {
    "sgd": ("SGD", {"lr": "lr", "momentum": "momentum", "dampening": "dampening",
                    "nesterov": "nesterov"}),
    "adagrad": ("Adagrad", {"lr": "lr", "lr_decay": "lr_decay",
                            "initial_accumulator_value": "initial_accumulator_value",
                            "eps": "eps"}),
    "rmsprop": ("RMSprop", {"lr": "lr", "alpha": "alpha", "eps": "eps"}),
    "adadelta": ("Adadelta", {"lr": "lr", "rho": "rho", "eps": "eps"}),
    "adam": ("Adam", {"lr": "lr", "beta1": ("betas", 0), "beta2": ("betas", 1), "eps": "eps",
                      "amsgrad": "amsgrad"}),
    "adamax": ("Adamax", {"lr": "lr", "beta1": ("betas", 0), "beta2": ("betas", 1),
                          "eps": "eps"}),
    "nadam": ("NAdam", {"lr": "lr", "beta1": ("betas", 0), "beta2": ("betas", 1), "eps": "eps",
                        "momentum_decay": "momentum_decay"}),
}


@pytest.mark.parametrize("name", list(TORCH_NAMES))
def test_defaults_and_names_are_torchs(name):
    cls_name, mapping = TORCH_NAMES[name]
    spec = get_optimizer_spec(name)
    assert spec.torch_class == cls_name
    params = inspect.signature(getattr(torch.optim, cls_name)).parameters
    torch_defaults = {k: p.default for k, p in params.items()}
    ours = spec.defaults()
    for ours_name, theirs in mapping.items():
        if isinstance(theirs, tuple):
            expected = torch_defaults[theirs[0]][theirs[1]]
        else:
            expected = torch_defaults[theirs]
        assert ours[ours_name] == pytest.approx(expected), ours_name


def test_nesterov_preset_defaults():
    spec = get_optimizer_spec("nesterov")
    assert spec.torch_class == "SGD"
    assert spec.defaults()["momentum"] == 0.9
    assert spec.defaults()["dampening"] == 0.0

"""Sharpness, loss landscapes and label noise on tiny networks, against direct computation."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine.training.data import noisy_labels  # noqa: E402
from engine.training.landscape import (  # noqa: E402
    filter_normalized_direction,
    grid_axis,
    pca_plane,
    random_plane,
    slice_1d,
    slice_rows,
)
from engine.training.sharpness import eps_sharpness, lambda_max  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_net(seed=0, act=torch.nn.Sigmoid):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), act(), torch.nn.Linear(5, 4), act(),
                               torch.nn.Linear(4, 3))


def tiny_data(n=40, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)


def full_hessian(model, x, y):
    params = list(model.parameters())
    shapes = [p.shape for p in params]
    flat = torch.cat([p.detach().reshape(-1) for p in params]).double()

    def loss_of(vec):
        out, at = {}, 0
        for (name, _), shape in zip(model.named_parameters(), shapes, strict=True):
            n = int(np.prod(shape))
            out[name] = vec[at:at + n].reshape(shape)
            at += n
        logits = torch.func.functional_call(model.double(), out, (x.double(),))
        return torch.nn.functional.cross_entropy(logits, y)

    H = torch.autograd.functional.hessian(loss_of, flat)
    model.float()
    return H


def test_lambda_max_is_the_largest_eigenvalue_of_the_full_hessian():
    model, (x, y) = tiny_net(), tiny_data()
    # train a little so the top eigenvalue is clearly separated and positive
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    for _ in range(40):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    eig = torch.linalg.eigvalsh(full_hessian(model, x, y))
    top = float(eig[torch.argmax(eig.abs())])
    result = lambda_max(model, x, y, tol=1e-6, max_iter=1000)
    assert result.converged
    assert result.value == pytest.approx(top, rel=1e-3)
    assert result.value == pytest.approx(float(eig.max()), rel=1e-3)


def test_lambda_max_leaves_the_model_unchanged_and_is_reproducible():
    model, (x, y) = tiny_net(), tiny_data()
    before = [p.detach().clone() for p in model.parameters()]
    a = lambda_max(model, x, y, seed=3)
    b = lambda_max(model, x, y, seed=3)
    assert a == b
    for p, q in zip(model.parameters(), before, strict=True):
        assert torch.equal(p, q)


def test_eps_sharpness_is_a_loss_increase_inside_the_box_and_restores_weights():
    model, (x, y) = tiny_net(), tiny_data()
    before = [p.detach().clone() for p in model.parameters()]
    small = eps_sharpness(model, x, y, eps=1e-4)
    large = eps_sharpness(model, x, y, eps=1e-2)
    assert 0.0 < small < large
    for p, q in zip(model.parameters(), before, strict=True):
        assert torch.equal(p, q)
    # upper bound: no point of the box can raise the loss by more than |g|·box + curvature;
    # first-order estimate at the box's best corner, with slack
    loss = torch.nn.functional.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    linear = sum(float((g.abs() * 1e-4 * (p.detach().abs() + 1)).sum())
                 for g, p in zip(grads, model.parameters(), strict=True))
    assert small == pytest.approx(100 * linear / (1 + float(loss.detach())), rel=0.05)


def test_filter_normalized_rows_have_the_models_row_norms_and_biases_get_none():
    model = tiny_net()
    d = filter_normalized_direction(model, torch.Generator().manual_seed(0))
    for p, q in zip(model.parameters(), d, strict=True):
        if p.dim() == 2:
            assert torch.allclose(q.norm(dim=1), p.detach().norm(dim=1), rtol=1e-5)
        else:
            assert torch.count_nonzero(q) == 0


def test_batched_slice_equals_evaluating_each_point():
    model, (x, y) = tiny_net(act=torch.nn.Tanh), tiny_data()
    plane = random_plane(model, seed=2)
    alphas, betas = grid_axis(5, 1.0), grid_axis(4, 0.5)
    rows = list(slice_rows(model, x, y, plane, alphas, betas))
    assert [j for j, _, _ in rows] == [0, 1, 2, 3]
    for j, losses, accs in rows:
        for i, a in enumerate(alphas):
            moved = tiny_net(act=torch.nn.Tanh)
            with torch.no_grad():
                for p, w, d1, d2 in zip(moved.parameters(), model.parameters(), plane.d1,
                                        plane.d2, strict=True):
                    p.copy_(w + a * d1 + betas[j] * d2)
                out = moved(x)
                loss = torch.nn.functional.cross_entropy(out, y)
                acc = (out.argmax(1) == y).float().mean()
            assert losses[i] == pytest.approx(float(loss), rel=1e-5)
            assert accs[i] == pytest.approx(float(acc))
    centre = slice_1d(model, x, y, plane, [0.0])[0][0]
    with torch.no_grad():
        direct = float(torch.nn.functional.cross_entropy(model(x), y))
    assert centre == pytest.approx(direct, rel=1e-6)


def test_pca_plane_holds_a_planar_path_exactly_and_measures_the_distance_of_others():
    model = tiny_net()
    final = np.concatenate([p.detach().double().numpy().ravel() for p in model.parameters()])
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=final.size), rng.normal(size=final.size)
    planar = [final + 3 * t * u + t * t * v for t in np.linspace(-1, 0, 6)]
    plane, points = pca_plane(model, planar)
    assert max(p.distance for p in points) < 1e-9
    assert points[-1].alpha == pytest.approx(0) and points[-1].beta == pytest.approx(0)
    assert sum(plane.explained) == pytest.approx(1.0)
    off = rng.normal(size=final.size)
    bent = planar[:-1] + [final + 0.5 * off, final]
    _, points = pca_plane(model, bent)
    assert max(p.distance for p in points) > 1e-3


def test_label_noise_changes_the_asked_fraction_to_other_classes_reproducibly():
    y = torch.arange(1000) % 10
    z = noisy_labels(y, 0.2, seed=5)
    changed = z != y
    assert int(changed.sum()) == 200
    assert bool(((z >= 0) & (z < 10)).all())
    assert torch.equal(z, noisy_labels(y, 0.2, seed=5))
    assert not torch.equal(z, noisy_labels(y, 0.2, seed=6))
    assert torch.equal(noisy_labels(y, 0.0), y)
    with pytest.raises(ValueError, match="fraction"):
        noisy_labels(y, 1.5)
    # the other classes are drawn uniformly: each of the 9 shifts appears
    shifts = ((z - y) % 10)[changed]
    assert set(shifts.tolist()) == set(range(1, 10))
    assert math.isclose(float(shifts.float().mean()), 5.0, abs_tol=0.6)

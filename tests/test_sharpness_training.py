"""Sharpness and landscapes wired into training: label noise, λ_max and ε-sharpness per
epoch (events and CSV), landscape rows and the PCA path as events (also through the child
process), saved models, and SAM/ASAM through the adapter against a plain transcription of
Foret et al.'s algorithm.

Tiny networks on the toy IDX data (256 + 64 samples), one torch thread.
"""

from __future__ import annotations

import csv
import io
import math
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.process import JobEnded, Train, launch
from engine.training import (
    EpochResult,
    Finished,
    LandscapePath,
    LandscapeRow,
    TrainConfig,
    TrainingHistory,
    build_model,
    landscape_csv,
    train,
)
from engine.training import landscape as ls
from engine.training import sharpness as sh
from engine.training.data import noisy_labels

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(**kw) -> TrainConfig:
    base = {"layers": 2, "width": 8, "batch_size": 64, "epochs": 2, "threads": 1}
    return TrainConfig(**{**base, **kw})


def history_of(config, data, should_stop=None) -> TrainingHistory:
    h = TrainingHistory()
    for event in train(config, data, should_stop):
        h.add(event)
    return h


def load_model(config, path):
    model = build_model(config)
    model.load_state_dict(torch.load(path))
    return model


# ----------------------------------------------------------------------------- config


@pytest.mark.parametrize("kw, words", [
    ({"label_noise": 1.5}, "label_noise"),
    ({"label_noise": -0.1}, "label_noise"),
    ({"eps_sharpness": 0.0}, "eps_sharpness"),
    ({"landscape": "sideways"}, "landscape plane"),
    ({"landscape_grid": 1}, "landscape_grid"),
    ({"landscape_span": math.inf}, "landscape_span"),
    ({"sharpness_samples": 0}, "sharpness_samples"),
    ({"sharpness": 1}, "sharpness"),
])
def test_bad_sharpness_settings_are_refused(kw, words):
    with pytest.raises(ValueError, match=words):
        tiny(**kw)


# ----------------------------------------------------------------------------- sharpness


def test_sharpness_per_epoch_is_measured_on_the_noisy_training_subset(toy, tmp_path):
    config = tiny(optimizers=("sgd(lr=0.5)",), epochs=1, label_noise=0.3, sharpness=True,
                  sharpness_samples=100, save_models=str(tmp_path))
    h = history_of(config, toy)
    (r,) = h.results
    assert r.lr == 0.5 and r.gap == pytest.approx(r.train_acc - r.val_acc)
    model = load_model(config, tmp_path / "0-sgd.pt")
    x = toy.train_x[:100].reshape(100, -1).float() / 255
    noisy = noisy_labels(toy.train_y, 0.3, seed=config.seed)[:100]
    assert not torch.equal(noisy, toy.train_y[:100])
    want = sh.lambda_max(model, x, noisy, seed=config.seed).value
    clean = sh.lambda_max(model, x, toy.train_y[:100], seed=config.seed).value
    assert r.lambda_max == pytest.approx(want, rel=1e-5)
    assert abs(want - clean) > 1e-4 * abs(want)  # the labels matter: the noisy ones were used
    eps = sh.eps_sharpness(model, x, noisy, eps=config.eps_sharpness)
    assert r.eps_sharpness == pytest.approx(eps, rel=1e-4) and eps > 0
    # validation stays clean: the reported accuracy is the saved model's on the clean test set
    with torch.no_grad():
        pred = model(toy.test_x.reshape(len(toy.test_x), -1).float() / 255).argmax(1)
    assert r.val_acc == pytest.approx(float((pred == toy.test_y).float().mean()))
    rows = list(csv.DictReader(io.StringIO(h.csv_text())))
    assert float(rows[0]["lambda_max"]) == r.lambda_max
    assert float(rows[0]["eps_sharpness"]) == r.eps_sharpness


def test_without_sharpness_the_csv_has_no_sharpness_columns(toy):
    h = history_of(tiny(optimizers=("sgd",), epochs=1), toy)
    assert math.isnan(h.results[0].lambda_max)
    assert "lambda_max" not in h.csv_text().splitlines()[0]


def test_label_noise_changes_training_not_validation_data(toy):
    clean = history_of(tiny(optimizers=("sgd(lr=0.5)",), epochs=1), toy).results[0]
    noisy = history_of(tiny(optimizers=("sgd(lr=0.5)",), epochs=1, label_noise=0.5),
                       toy).results[0]
    assert clean.train_loss != noisy.train_loss


# ----------------------------------------------------------------------------- landscapes


def test_random_landscape_rows_stream_after_training_and_match_the_slice(toy, tmp_path):
    config = tiny(optimizers=("sgd(lr=0.5)", "adam(lr=0.01)"), epochs=1, landscape="random",
                  landscape_grid=5, landscape_span=0.5, sharpness_samples=64,
                  save_models=str(tmp_path))
    events = list(train(config, toy))
    kinds = [e.kind for e in events]
    first_row = kinds.index("landscape-row")
    assert kinds[-1] == "done" and "epoch" not in kinds[first_row:]
    rows = [e for e in events if isinstance(e, LandscapeRow)]
    assert [(r.index, r.j) for r in rows] == [(i, j) for i in range(2) for j in range(5)]
    assert rows[0].alphas == pytest.approx(tuple(np.linspace(-0.5, 0.5, 5)))
    middle = rows[2]
    assert middle.beta == 0.0 and middle.plane == "random"
    model = load_model(config, tmp_path / "0-sgd.pt")
    x = toy.train_x[:64].reshape(64, -1).float() / 255
    plane = ls.random_plane(model, seed=config.seed)
    losses, accs = ls.slice_1d(model, x, toy.train_y[:64], plane, middle.alphas)
    assert middle.losses == pytest.approx(tuple(losses), rel=1e-5)
    assert middle.accs == pytest.approx(tuple(accs))
    text = landscape_csv(rows).splitlines()
    assert text[0] == "optimizer,alpha,beta,loss,accuracy" and len(text) == 1 + 2 * 25


def test_pca_landscape_sends_the_path_first_and_ends_at_the_final_weights(toy):
    config = tiny(optimizers=("sgd(lr=0.5,momentum=0.9)",), epochs=2, landscape="pca",
                  landscape_grid=3, snapshots_per_epoch=2, sharpness_samples=64)
    events = list(train(config, toy))
    (path,) = [e for e in events if isinstance(e, LandscapePath)]
    rows = [e for e in events if isinstance(e, LandscapeRow)]
    assert events.index(path) < events.index(rows[0]) and len(rows) == 3
    assert path.epochs == (0.0, 0.5, 1.0, 1.5, 2.0)  # the start + 2 per epoch
    assert (path.alphas[-1], path.betas[-1], path.distances[-1]) == (0.0, 0.0, 0.0)
    assert all(d >= 0 for d in path.distances) and sum(path.explained) <= 1 + 1e-9
    # the grid holds the whole path
    extent = max(max(abs(a), abs(b)) for a, b in zip(path.alphas, path.betas, strict=True))
    assert rows[0].alphas[-1] >= extent


def test_stop_during_the_landscape_ends_with_a_stopped_finish(toy):
    config = tiny(optimizers=("sgd(lr=0.5)",), epochs=1, landscape="random",
                  landscape_grid=9, sharpness_samples=32)
    seen = []
    stop = [False]
    for event in train(config, toy, lambda: stop[0]):
        seen.append(event)
        if isinstance(event, LandscapeRow) and event.j == 1:
            stop[0] = True
    assert sum(isinstance(e, LandscapeRow) for e in seen) == 2
    assert isinstance(seen[-1], Finished) and seen[-1].stopped


def test_the_child_process_carries_the_new_events(toy_dir):
    config = tiny(optimizers=("sgd(lr=0.5)",), epochs=1, sharpness=True, sharpness_samples=32,
                  landscape="random", landscape_grid=3, data_dir=str(toy_dir))
    job = launch(Train(config))
    events = [e for batch in job.batches() for e in batch]
    assert isinstance(events[-1], JobEnded)
    (r,) = [e for e in events if isinstance(e, EpochResult)]
    assert math.isfinite(r.lambda_max) and r.lambda_max > 0
    assert [e.j for e in events if isinstance(e, LandscapeRow)] == [0, 1, 2]
    assert pickle.loads(pickle.dumps(r)) == r


# ----------------------------------------------------------------------------- SAM


def _transcribed_sam(model, x, y, steps, lr, momentum, rho, adaptive=False, eta=0.01):
    """Foret et al. (2021), Algorithm 1, with SGD (torch's momentum) as the base, written
    out directly: ε̂ = ρ g/‖g‖ (ASAM: ρ T²g/‖Tg‖, T = |w| + η), g_SAM = ∇L(w + ε̂) on the
    SAME batch, base step from w with g_SAM."""
    params = list(model.parameters())
    bufs = [None] * len(params)
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        g = torch.autograd.grad(loss, params)
        with torch.no_grad():
            if adaptive:
                T = [p.abs() + eta for p in params]
                norm = torch.sqrt(sum(((t * gi) ** 2).sum() for t, gi in zip(T, g, strict=True)))
                eps = [rho * t * t * gi / norm for t, gi in zip(T, g, strict=True)]
            else:
                norm = torch.sqrt(sum((gi ** 2).sum() for gi in g))
                eps = [rho * gi / norm for gi in g]
            for p, e in zip(params, eps, strict=True):
                p.add_(e)
        g_sam = torch.autograd.grad(F.cross_entropy(model(x), y), params)
        with torch.no_grad():
            for k, (p, e, gs) in enumerate(zip(params, eps, g_sam, strict=True)):
                p.sub_(e)
                bufs[k] = gs.clone() if bufs[k] is None else momentum * bufs[k] + gs
                p.sub_(lr * bufs[k])
    return model


@pytest.mark.parametrize("spec, adaptive", [
    ("sam(base=sgd(lr=0.1,momentum=0.9),rho=0.05)", False),
    ("asam(base=sgd(lr=0.1,momentum=0.9),rho=0.5,eta=0.01)", True),
])
def test_sam_trains_the_network_as_foret_et_al_write_it(toy, tmp_path, spec, adaptive):
    # one batch per epoch (the whole 256-sample set), so every step sees the same batch
    config = tiny(optimizers=(spec,), epochs=3, batch_size=256, save_models=str(tmp_path))
    history_of(config, toy)
    name = spec.split("(")[0]
    trained = load_model(config, tmp_path / f"0-{name}.pt")
    ref = build_model(config)
    x = toy.train_x.reshape(256, -1).float() / 255
    _transcribed_sam(ref, x, toy.train_y, steps=3, lr=0.1, momentum=0.9,
                     rho=0.5 if adaptive else 0.05, adaptive=adaptive)
    start = build_model(config)
    for a, b, w0 in zip(trained.parameters(), ref.parameters(), start.parameters(), strict=True):
        assert not torch.allclose(a, w0)  # it did train
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------------------- command line


def cli(*argv: str) -> int:
    from optgui.cli import train as cli_train

    return cli_train.main(list(argv))


TINY_CLI = ("--epochs", "1", "--layers", "1", "--width", "4", "--batch-size", "64",
            "--threads", "1", "--sharpness-samples", "64")


def test_cli_writes_sharpness_landscape_picture_and_models(toy_dir, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    code = cli("--data-dir", str(toy_dir), *TINY_CLI, "--optimizer", "sgd(lr=0.5)",
               "--optimizer", "sam(base=sgd(lr=0.5),rho=0.05)", "--label-noise", "0.2",
               "--sharpness", "--csv", str(out / "m.csv"), "--landscape", str(out / "l.csv"),
               "--landscape-grid", "3", "--landscape-span", "0.5",
               "--landscape-png", str(out / "l.png"), "--save-models", str(out / "models"))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "λmax" in captured.out and "(2/η 4)" in captured.out
    rows = list(csv.DictReader((out / "m.csv").open()))
    assert len(rows) == 2 and all(float(r["lambda_max"]) > 0 for r in rows)
    land = list(csv.DictReader((out / "l.csv").open()))
    assert len(land) == 2 * 9 and {r["optimizer"] for r in land} == {
        "sgd(lr=0.5)", "sam(base=sgd(lr=0.5),rho=0.05)"}
    assert {float(r["alpha"]) for r in land} == {-0.5, 0.0, 0.5}
    assert (out / "l.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (out / "models").iterdir()) == ["0-sgd.pt", "1-sam.pt"]


@pytest.mark.parametrize("argv, message", [
    (["--label-noise", "1.5"], "--label-noise"),
    (["--eps-sharpness", "0"], "--eps-sharpness"),
    (["--sharpness-samples", "0"], "--sharpness-samples"),
    (["--landscape", "l.txt"], "must end in .csv"),
    (["--landscape-png", "l.jpg"], "must end in .png"),
    (["--landscape", "l.csv", "--landscape-plane", "flat"], "--landscape-plane"),
    (["--landscape", "l.csv", "--landscape-grid", "1"], "--landscape-grid"),
    (["--landscape-grid", "5"], "needs --landscape"),
    (["--save-models", "m.csv"], "is a file"),
    (["--save-models", "no/such/models"], "does not exist"),
])
def test_cli_bad_sharpness_arguments_exit_2_with_one_line(argv, message, tmp_path, toy_dir,
                                                          capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.csv").write_text("mine")
    before = sorted(p.name for p in tmp_path.iterdir())
    try:
        code = cli("--data-dir", str(toy_dir), *TINY_CLI, "--optimizer", "sgd", *argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (tmp_path / "m.csv").read_text() == "mine"

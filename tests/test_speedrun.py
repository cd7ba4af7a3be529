"""The speedrun techniques as run settings: patch whitening, Muon, weight averaging (EMA) —
each trains on real Fashion-MNIST, is kept in checkpoints, and stop/resume stays exact."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from cnn_core.callbacks import Checkpointer
from cnn_core.checkpoints import load_checkpoint
from cnn_core.models import create_model
from cnn_core.optimizers import orthogonalise
from cnn_core.scoring import evaluate
from cnn_core.trainer import fit
from cnn_core.whitening import EPS, patch_covariance, whiten_first_conv, whitening_filters
from tests.conftest import small_fashion_config
from tests.run_fixtures import cli_here
from tests.test_trainer import StopAfter, stable

SPEEDRUN = dict(
    model="v5", batch_size=100, lr=8e-3, dropout=0.0, lr_schedule="onecycle", warmup=0.25,
    whiten=True, optimizer="muon", ema=0.9, evals_per_epoch=2,
)  # fmt: skip


def test_whitening_filters_decorrelate_the_patches_to_unit_variance(fashion_small):
    images = fashion_small.transform.eval(fashion_small.train.images)
    filters = whitening_filters(images, 3).reshape(9, 9).double()
    cov = filters @ patch_covariance(images, 3) @ filters.T  # the filtered patches' covariance
    eigenvalues = torch.linalg.eigvalsh(patch_covariance(images, 3)).flip(0)
    assert torch.allclose(cov, torch.diag(eigenvalues / (eigenvalues + EPS)), atol=1e-4)
    assert torch.allclose(torch.diag(cov)[:3], torch.ones(3, dtype=torch.float64), atol=0.01)


def test_the_whitened_first_convolution_is_frozen_and_kept_in_the_checkpoint(
    fashion_small, tmp_path
):
    path = tmp_path / "ck.pt"
    cfg = small_fashion_config(**{**SPEEDRUN, "ema": 0.0, "optimizer": "adam"})
    result = fit(cfg, [Checkpointer(path)], data=fashion_small)
    model = create_model("v5", 1, 28, 10, dropout=0.0)
    assert whiten_first_conv(model, fashion_small.transform.eval(fashion_small.train.images)) == ""
    trained = result.state.model.conv1.weight
    assert not trained.requires_grad and torch.equal(trained, model.conv1.weight)
    half = len(trained) // 2
    assert torch.equal(trained[:half], -trained[half:])  # each filter with its negation
    assert torch.equal(load_checkpoint(path)["model_state"]["conv1.weight"], trained)
    assert result.history[-1]["val_accuracy"] > 0.6


def test_whitening_on_too_few_images_trains_as_usual_with_a_note(fashion_small):
    few = dataclasses.replace(
        fashion_small, train=dataclasses.replace(fashion_small.train, images=fashion_small.train.images[:60], labels=fashion_small.train.labels[:60])
    )  # fmt: skip
    result = fit(small_fashion_config(model="v5", whiten=True, batch_size=20), data=few)
    assert result.completed and "too few" in result.state.data.note
    assert result.state.model.conv1.weight.requires_grad


def test_orthogonalise_gives_singular_values_near_one():
    g = torch.randn(32, 144, generator=torch.Generator().manual_seed(0))
    singular = torch.linalg.svdvals(orthogonalise(g).float())
    assert singular.min() > 0.5 and singular.max() < 1.3  # Muon's quintic iteration's band


def test_muon_trains_the_filters_and_adam_the_rest(fashion_small):
    result = fit(small_fashion_config(**{**SPEEDRUN, "ema": 0.0}), data=fashion_small)
    groups = result.state.optimizer.param_groups
    assert [g["muon"] for g in groups] == [False, True]
    assert all(p.ndim == 4 for p in groups[1]["params"])
    assert groups[1]["lr_scale"] == pytest.approx(0.05 / 8e-3)
    assert result.history[-1]["val_accuracy"] > 0.6


def test_the_weight_average_is_what_the_run_validates_and_saves(fashion_small, tmp_path):
    path = tmp_path / "ck.pt"
    cfg = small_fashion_config(**SPEEDRUN)
    result = fit(cfg, [Checkpointer(path)], data=fashion_small)
    saved = load_checkpoint(path)
    model = create_model("v5", 1, 28, 10, dropout=0.0)
    model.load_state_dict(saved["model_state"])
    score = evaluate(model, fashion_small.val, fashion_small.transform, 10, config=cfg)
    assert score.accuracy == result.history[-1]["val_accuracy"]
    raw, average = saved["training_weights"], saved["model_state"]
    assert not torch.equal(raw["fc.weight"], average["fc.weight"])


def test_every_speedrun_field_stops_mid_epoch_and_resumes_exactly(fashion_small, tmp_path):
    cfg = small_fashion_config(epochs=2, **SPEEDRUN)
    straight = fit(cfg, data=fashion_small)
    path = tmp_path / "ck.pt"
    stopped = fit(cfg, [StopAfter(epoch=1, n=3), Checkpointer(path)], data=fashion_small)
    assert not stopped.completed
    resumed = fit(cfg, data=fashion_small, resume=load_checkpoint(path))
    assert stable(resumed.history) == stable(straight.history)
    for a, b in [(resumed.state.model, straight.state.model), (resumed.state.eval_model, straight.state.eval_model)]:  # fmt: skip
        for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            assert torch.equal(p, q), name


@pytest.mark.parametrize(
    ("args", "field"),
    [(["--ema", "1"], "ema"), (["--muon-lr", "0"], "muon_lr"), (["--optimizer", "lion"], "optimizer")],
)  # fmt: skip
def test_a_speedrun_field_out_of_range_is_one_line_naming_it(args, field, capsys):
    code, _, err = cli_here(capsys, "train", "--dataset", "fashion-mnist", *args)
    assert code == 2 and "Traceback" not in err
    assert field in err and len(err.strip().splitlines()) == 1

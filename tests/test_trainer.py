"""Trainer: real training on a slice of Fashion-MNIST, determinism and exact resume."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from cnn_core.callbacks import Callback, Checkpointer
from cnn_core.checkpoints import load_checkpoint
from cnn_core.scoring import evaluate
from cnn_core.trainer import HISTORY_KEYS, fit
from tests.conftest import small_fashion_config

STABLE_KEYS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr")


def stable(history):
    return [{k: m[k] for k in STABLE_KEYS} for m in history]


class StopAfter(Callback):
    """Requests a stop once ``n`` batches of the current epoch are done."""

    def __init__(self, epoch: int, n: int):
        self.epoch, self.n = epoch, n

    def should_stop(self, state) -> bool:
        return state.epoch == self.epoch and state.step >= self.n


def test_one_epoch_learns_and_reports_every_metric(fashion_small):
    result = fit(small_fashion_config(), data=fashion_small)
    assert result.completed
    (m,) = result.history
    assert set(HISTORY_KEYS) <= set(m)
    assert m["val_accuracy"] > 0.5  # 10 classes: chance is 0.10
    assert m["images_per_s"] > 0 and m["seconds"] > 0
    assert m["lr"] == pytest.approx(1e-3)


def test_same_seed_same_numbers_other_seed_differs(fashion_small):
    a = fit(small_fashion_config(), data=fashion_small)
    b = fit(small_fashion_config(), data=fashion_small)
    c = fit(small_fashion_config(seed=7), data=fashion_small)
    assert stable(a.history) == stable(b.history)
    assert stable(a.history) != stable(c.history)


@pytest.mark.parametrize("augment", [False, True])
def test_resume_at_epoch_boundary_matches_straight_run(fashion_small, tmp_path, augment):
    cfg = small_fashion_config(epochs=2, augment=augment)
    straight = fit(cfg, data=fashion_small)

    path = tmp_path / "ck.pt"
    first = fit(dataclasses.replace(cfg, epochs=1), [Checkpointer(path)], data=fashion_small)
    assert first.completed and load_checkpoint(path)["epoch"] == 1
    resumed = fit(cfg, data=fashion_small, resume=load_checkpoint(path))
    assert stable(resumed.history) == stable(straight.history)
    for p, q in zip(
        resumed.state.model.parameters(), straight.state.model.parameters(), strict=True
    ):
        assert torch.equal(p, q)


def test_stop_mid_epoch_then_resume_matches_straight_run(fashion_small, tmp_path):
    cfg = small_fashion_config(epochs=2, augment=True)
    straight = fit(cfg, data=fashion_small)
    path = tmp_path / "ck.pt"
    stopped = fit(cfg, [StopAfter(epoch=1, n=5), Checkpointer(path)], data=fashion_small)
    assert not stopped.completed and stopped.state.stopped_by == "StopAfter"
    saved = load_checkpoint(path)
    assert (saved["epoch"], saved["step"]) == (1, 5)
    resumed = fit(cfg, data=fashion_small, resume=saved)
    assert resumed.completed
    assert stable(resumed.history) == stable(straight.history)


def test_resume_refuses_a_different_config(fashion_small, tmp_path):
    from cnn_core.errors import CheckpointError

    path = tmp_path / "ck.pt"
    fit(small_fashion_config(), [Checkpointer(path)], data=fashion_small)
    with pytest.raises(CheckpointError, match="lr"):
        fit(
            small_fashion_config(lr=0.01, epochs=2),
            data=fashion_small,
            resume=load_checkpoint(path),
        )


def test_evaluate_confusion_and_misclassified_are_consistent(fashion_small):
    result = fit(small_fashion_config(), data=fashion_small)
    data = fashion_small
    result.state.model.train()
    ev = evaluate(result.state.model, data.val, data.transform, data.num_classes)
    conf = torch.tensor(ev.confusion)
    assert conf.sum() == ev.n == len(data.val)
    assert ev.accuracy == pytest.approx(conf.diag().sum().item() / ev.n)
    assert len(ev.misclassified) == ev.n - conf.diag().sum().item()
    labels = data.val.labels.tolist()
    assert all(ev.predicted[i] != labels[i] for i in ev.misclassified)
    assert ev.accuracy == pytest.approx(result.history[-1]["val_accuracy"])
    assert result.state.model.training  # evaluate restores the previous mode
    assert all(0 <= a <= 1 for a in ev.per_class_accuracy)


def test_sgd_adamw_and_weight_decay_train(fashion_small):
    for opt, lr in (("sgd", 0.05), ("adamw", 1e-3)):
        r = fit(small_fashion_config(optimizer=opt, weight_decay=1e-4, lr=lr), data=fashion_small)
        assert r.history[-1]["val_accuracy"] > 0.3

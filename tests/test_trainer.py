"""Trainer: real training on a slice of Fashion-MNIST, determinism and exact resume."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from cnn_core.callbacks import Callback, Checkpointer
from cnn_core.checkpoints import load_checkpoint
from cnn_core.scoring import evaluate, make_loss, smoothed_loss_floor
from cnn_core.stats import accuracy_interval
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


@pytest.mark.fast
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


# ---- recipe fields: schedules, label smoothing, mid-epoch validation, stop at target ----------
class Evaluations(Callback):
    """Records the metrics of every validation."""

    def __init__(self):
        self.seen: list[dict] = []

    def on_evaluation(self, state, metrics, result) -> None:
        self.seen.append(dict(metrics))


RECIPE_CASES = {
    "onecycle": dict(lr_schedule="onecycle", warmup=0.3, lr=3e-3, label_smoothing=0.1),
    "cosine": dict(lr_schedule="cosine", warmup=0.2, evals_per_epoch=3, augment=True),
}


@pytest.mark.parametrize("case", list(RECIPE_CASES))
def test_every_schedule_stops_mid_epoch_and_resumes_exactly(fashion_small, tmp_path, case):
    cfg = small_fashion_config(epochs=2, batch_size=100, **RECIPE_CASES[case])
    straight = fit(cfg, data=fashion_small)
    path = tmp_path / "ck.pt"
    stopped = fit(cfg, [StopAfter(epoch=1, n=4), Checkpointer(path)], data=fashion_small)
    assert not stopped.completed
    saved = load_checkpoint(path)
    assert saved["schedule_state"]["step"] == 14 and saved["schedule_state"]["total_steps"] == 20
    resumed = fit(cfg, data=fashion_small, resume=saved)
    assert stable(resumed.history) == stable(straight.history)
    for p, q in zip(
        resumed.state.model.parameters(), straight.state.model.parameters(), strict=True
    ):
        assert torch.equal(p, q)
    lrs = [m["lr"] for m in straight.history]
    assert lrs[-1] < lrs[0] < cfg.lr  # warm-up passed its peak, then decayed toward 0


def test_mid_epoch_validations_report_position_and_training_time(fashion_small):
    seen = Evaluations()
    result = fit(
        small_fashion_config(evals_per_epoch=4, batch_size=100), [seen], data=fashion_small
    )
    fractions = [m["epoch_fraction"] for m in seen.seen]
    assert fractions == [0.2, 0.5, 0.8, 1]  # after batches round(10 k / 4), then the end
    assert [m["images_seen"] for m in seen.seen] == [200, 500, 800, 1000]
    times = [m["train_seconds"] for m in seen.seen]
    assert times == sorted(times) and times[-1] == pytest.approx(result.history[-1]["seconds"])
    assert seen.seen[-1]["eval_seconds"] > 0
    assert len(result.history) == 1  # the history stays per epoch


def test_stops_at_target_completed_with_time_to_target(fashion_small, tmp_path):
    path = tmp_path / "ck.pt"
    cfg = small_fashion_config(epochs=3, evals_per_epoch=5, batch_size=50, target_accuracy=0.5)
    seen = Evaluations()
    result = fit(cfg, [seen, Checkpointer(path)], data=fashion_small)
    assert result.completed and result.state.stopped_by == "target"
    target = result.state.target
    first = next(
        m for m in seen.seen if accuracy_interval(m["val_accuracy"], m["val_images"])[0] >= 0.5
    )
    assert seen.seen[-1] == first  # no validation after the one that reached it
    assert target["images_to_target"] == first["images_seen"] < 3 * 1000
    assert target["time_to_target_s"] == first["train_seconds"] > 0
    saved = load_checkpoint(path)  # saved where it stopped, mid-epoch or not
    assert saved["target"] == target
    assert saved["epoch"] * 1000 + saved["step"] * 50 == target["images_to_target"]


def test_target_needs_the_lower_end_of_the_validation_interval(fashion_small):
    """One lucky validation does not end the run: it stops at the first validation whose 95 %
    Wilson interval lies at or above the target (here the run's first accuracy, which that
    first validation reaches but does not prove)."""
    cfg = small_fashion_config(epochs=2, evals_per_epoch=5, batch_size=50)
    seen = Evaluations()
    fit(cfg, [seen], data=fashion_small)
    target = seen.seen[0]["val_accuracy"]
    lows = [accuracy_interval(m["val_accuracy"], m["val_images"])[0] for m in seen.seen]
    proven = next(i for i, low in enumerate(lows) if low >= target)
    assert proven > 0
    again = Evaluations()
    result = fit(dataclasses.replace(cfg, target_accuracy=target), [again], data=fashion_small)
    assert result.state.stopped_by == "target" and len(again.seen) == proven + 1
    assert result.state.target["images_to_target"] == seen.seen[proven]["images_seen"]


def test_target_never_reached_runs_every_epoch(fashion_small):
    result = fit(small_fashion_config(target_accuracy=1.0), data=fashion_small)
    assert result.completed and result.state.target is None and result.state.stopped_by == ""


def test_label_smoothing_raises_the_training_loss_floor(fashion_small):
    plain = fit(small_fashion_config(), data=fashion_small).history[-1]
    smooth = fit(small_fashion_config(label_smoothing=0.3), data=fashion_small).history[-1]
    assert smooth["train_loss"] > plain["train_loss"]
    assert smooth["val_accuracy"] > 0.5  # it still learns; validation loss is unsmoothed


def test_a_run_stopped_at_target_mid_epoch_resumes_exactly(fashion_small, tmp_path):
    """Reaching the target mid-epoch saves the position; extending the run from there gives the
    numbers of a run that never had a target (validation draws no randomness)."""
    path = tmp_path / "ck.pt"
    cfg = small_fashion_config(
        epochs=2, evals_per_epoch=4, batch_size=100, lr_schedule="onecycle", warmup=0.25
    )
    stopped = fit(
        dataclasses.replace(cfg, target_accuracy=0.3), [Checkpointer(path)], data=fashion_small
    )
    saved = load_checkpoint(path)
    assert stopped.completed and saved["step"] not in (0, 10)  # stopped mid-epoch
    resumed = fit(dataclasses.replace(cfg, target_accuracy=0.3), data=fashion_small, resume=saved)
    straight = fit(cfg, data=fashion_small)
    assert resumed.state.target == stopped.state.target  # reached once, kept
    assert stable(resumed.history) == stable(straight.history)


@pytest.mark.parametrize("classes", [2, 10])
def test_the_training_loss_floor_of_label_smoothing_is_what_a_perfect_model_scores(classes):
    """With smoothed targets q the least training loss is the entropy of q, reached by the
    model that predicts q itself — the floor the curves' note names."""
    smoothing = 0.3
    loss_fn = make_loss(classes, None)
    if classes == 2:
        q = torch.tensor([1 - smoothing / 2])
        best = loss_fn(torch.logit(q)[None], q[None])
    else:
        q = torch.full((classes,), smoothing / classes)
        q[0] += 1 - smoothing
        loss_fn.label_smoothing = smoothing
        best = loss_fn(q.log()[None], torch.tensor([0]))
    assert smoothed_loss_floor(classes, smoothing) == pytest.approx(float(best), rel=1e-6)
    assert smoothed_loss_floor(classes, 0.0) == 0.0


# ---- callbacks keep their state in checkpoints -------------------------------------------------
class BatchCounter(Callback):
    """Counts the batches it has seen over the whole run (kept in checkpoints)."""

    def __init__(self):
        self.batches = 0

    def on_batch_end(self, state, loss) -> None:
        self.batches += 1

    def state_dict(self) -> dict:
        return {"batches": self.batches}

    def load_state_dict(self, saved: dict) -> None:
        self.batches = saved["batches"]


def test_a_callbacks_state_survives_stop_and_resume(fashion_small, tmp_path):
    path, counter = tmp_path / "ck.pt", BatchCounter()
    cfg = small_fashion_config(batch_size=100)
    stopped = fit(cfg, [StopAfter(epoch=0, n=4), counter, Checkpointer(path)], data=fashion_small)
    saved = load_checkpoint(path)
    assert not stopped.completed and saved["callbacks"]["BatchCounter"] == {"batches": 4}
    resumed = BatchCounter()
    assert fit(cfg, [resumed], data=fashion_small, resume=saved).completed
    assert resumed.batches == 10  # 4 before the stop, 6 after: the count went on


def test_two_stateful_callbacks_need_distinct_keys(fashion_small):
    with pytest.raises(ValueError, match="state_key"):
        fit(small_fashion_config(), [BatchCounter(), BatchCounter()], data=fashion_small)

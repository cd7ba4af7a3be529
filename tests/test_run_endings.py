"""Runs that end of their own accord before their last epoch: early stopping (patience in
validations, its counters kept across a stop and resume) and divergence (a learning rate far
too high), recorded as ``ended_by`` with where and why, and shown by the CLI, Runs and Compare."""

from __future__ import annotations

import shlex

from cnn_core import compare
from cnn_core.callbacks import Callback, Checkpointer
from cnn_core.checkpoints import load_checkpoint
from cnn_core.runs import api
from cnn_core.trainer import fit
from tests.conftest import small_fashion_config
from tests.run_fixtures import cli_here
from tests.test_pages_app import open_page
from tests.test_trainer import StopAfter, stable

# on this slice the validation accuracy stalls inside epoch 4 (16 validations in all)
PATIENT = dict(epochs=4, evals_per_epoch=4, batch_size=100, early_stop_patience=3)


class Waits(Callback):
    """After every validation: (epoch, step, accuracy, validations without a better one)."""

    def __init__(self):
        self.seen: list[tuple[int, int, float, int]] = []

    def on_evaluation(self, state, metrics, result) -> None:
        (stopper,) = [cb for cb in state.callbacks if cb.state_key == "EarlyStopping"]
        waited = stopper.state_dict()["waited"]
        self.seen.append((state.epoch, state.step, metrics["val_accuracy"], waited))


def test_early_stopping_ends_the_run_after_patience_validations_without_a_better_one(
    fashion_small,
):
    waits = Waits()
    result = fit(small_fashion_config(**PATIENT), [waits], data=fashion_small)
    assert result.completed and result.state.stopped_by == "early_stop"
    accuracy = [a for _, _, a, _ in waits.seen]
    best = accuracy.index(max(accuracy))
    assert len(accuracy) == best + 1 + 3 < 16  # three validations after the best, then the end
    assert result.state.epoch_fraction < 4
    assert f"{max(accuracy):.2%}" in result.state.end_detail


def test_early_stopping_counts_on_across_a_stop_and_resume(fashion_small, tmp_path):
    cfg = small_fashion_config(**PATIENT)
    waits = Waits()
    straight = fit(cfg, [waits], data=fashion_small)
    # stop right after a validation that did not beat the best (before the run's last one)
    epoch, step = next((e, s) for e, s, _, w in waits.seen[:-1] if w > 0)
    path = tmp_path / "ck.pt"
    stopped = fit(cfg, [StopAfter(epoch, step), Checkpointer(path)], data=fashion_small)
    saved = load_checkpoint(path)
    assert not stopped.completed and saved["callbacks"]["EarlyStopping"]["waited"] > 0
    resumed = fit(cfg, data=fashion_small, resume=saved)
    assert resumed.completed and resumed.state.stopped_by == "early_stop"
    assert resumed.state.epoch_fraction == straight.state.epoch_fraction
    assert stable(resumed.history) == stable(straight.history)


def test_a_run_stopped_early_says_where_on_the_cli_runs_and_compare(capsys):
    args = shlex.split(
        "--dataset fashion-mnist --train-size 1000 --val-size 400 --threads 2 --epochs 4 "
        "--evals-per-epoch 4 --batch-size 100 --early-stop-patience 3 --quiet --json"
    )
    code, out, _ = cli_here(capsys, "train", *args)
    assert code == 0 and out["status"] == "completed" and out["ended_by"] == "early_stop"
    run = api.get_run(out["run_id"])
    assert 1 < run["ended_at"] < 4 and run["ended_at"] == out["ended_at"]
    assert run["config"]["early_stop_patience"] == 3
    words = f"stopped early at epoch {run['ended_at']:.2f}"
    assert words in cli_here(capsys, "runs", "show", run["id"])[1]
    assert cli_here(capsys, "runs", "show", run["id"], "--json")[1]["ended_by"] == "early_stop"
    (row,) = compare.summary_table([run["id"]])
    assert words in row["ended_by"]
    at = open_page("pages/runs.py", {"run": run["id"]})
    assert at.dataframe[0].value.set_index("id").loc[run["id"], "ended by"] == "stopped early"
    assert any(words in c.value for c in at.caption)


def test_early_stop_patience_is_checked_like_every_field(capsys):
    code, _, err = cli_here(capsys, "train", "--early-stop-patience", "-1")
    assert code == 2 and "early_stop_patience: must be between 0 and 1000, got -1" in err

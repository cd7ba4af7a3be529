"""Runs that end of their own accord before their last epoch: early stopping (patience in
validations, its counters kept across a stop and resume) and divergence (a learning rate far
too high), recorded as ``ended_by`` with where and why, and shown by the CLI, Runs and Compare."""

from __future__ import annotations

import shlex

import pytest

from cnn_core import compare
from cnn_core.callbacks import Callback, Checkpointer
from cnn_core.checkpoints import load_checkpoint
from cnn_core.recipes import recipe_fields
from cnn_core.runs import api
from cnn_core.trainer import fit
from tests.conftest import small_fashion_config
from tests.run_fixtures import cli_here
from tests.test_pages_app import no_worker, open_page  # noqa: F401 - the fixture is used
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
        "--evals-per-epoch 4 --batch-size 100 --lr 1e-7 --early-stop-patience 5 --quiet --json"
    )
    code, out, _ = cli_here(capsys, "train", *args)
    assert code == 0 and out["status"] == "completed" and out["ended_by"] == "early_stop"
    run = api.get_run(out["run_id"])
    assert 1 < run["ended_at"] < 4 and run["ended_at"] == out["ended_at"]
    assert run["config"]["early_stop_patience"] == 5
    words = f"stopped early at epoch {run['ended_at']:.2f}"
    assert words in cli_here(capsys, "runs", "show", run["id"])[1]
    assert cli_here(capsys, "runs", "show", run["id"], "--json")[1]["ended_by"] == "early_stop"
    (row,) = compare.summary_table([run["id"]])
    assert words in row["ended_by"]
    at = open_page("pages/runs.py", {"run": run["id"]})
    assert at.dataframe[0].value.set_index("id").loc[run["id"], "ended by"] == "stopped early"
    assert any(words in c.value for c in at.caption)


@pytest.mark.usefixtures("no_worker")
def test_the_train_page_asks_for_early_stopping_and_the_run_stores_it():
    at = open_page("pages/train.py")
    at.number_input(key="t_early_stop_patience").set_value(4).run()
    at.button[0].click().run()
    assert not at.exception and not at.error
    (run,) = api.list_runs()
    assert run["config"]["early_stop_patience"] == 4


def test_early_stop_patience_is_checked_like_every_field(capsys):
    code, _, err = cli_here(capsys, "train", "--early-stop-patience", "-1")
    assert code == 2 and "early_stop_patience: must be between 0 and 1000, got -1" in err


# ---- divergence --------------------------------------------------------------------------------
def guard_state(result) -> dict:
    (guard,) = [cb for cb in result.state.callbacks if cb.state_key == "DivergenceGuard"]
    return guard.state_dict()


def test_an_exploding_loss_ends_the_run_as_diverged_within_a_few_batches(fashion_small):
    """Adam at lr 5: the loss jumps from 2.3 to about 1e10 on the second batch and stays far
    above its start, so the run ends within the first epoch instead of training all three."""
    result = fit(small_fashion_config(lr=5.0, epochs=3), data=fashion_small)
    assert result.completed and result.state.stopped_by == "diverged"
    assert result.state.epoch == 0 and result.state.step <= 5
    assert "3 batches in a row" in result.state.end_detail


@pytest.mark.slow
def test_a_collapse_to_chance_ends_the_run_as_diverged(fashion_small):
    """SGD at lr 5: the loss rises to about 9x its start and the network then answers one
    class for every image. The loss never explodes; the first validation after 100 batches
    (the end of epoch 7 at 16 batches an epoch) is at chance, and the run ends there."""
    result = fit(small_fashion_config(lr=5.0, optimizer="sgd", epochs=8), data=fashion_small)
    assert result.completed and result.state.stopped_by == "diverged"
    assert (result.state.epoch, result.state.step) == (7, 0)
    assert all(m["val_accuracy"] < 0.15 for m in result.history)
    assert "is chance for 10 classes" in result.state.end_detail


@pytest.mark.slow
def test_a_loss_spike_the_run_recovers_from_is_not_divergence(fashion_small):
    """Adam at lr 0.01 on 1,000 images: the loss spikes to about 10x its start and the first
    epoch ends at chance, yet the run learns from epoch 2 on; it trains every epoch."""
    result = fit(small_fashion_config(lr=0.01, epochs=8), data=fashion_small)
    assert result.completed and result.state.stopped_by == ""
    assert guard_state(result)["peak"] > 3 and result.history[0]["val_accuracy"] < 0.15
    assert result.history[-1]["val_accuracy"] > 0.6


@pytest.mark.parametrize("recipe", ["book", "fast"])
def test_healthy_runs_of_the_registered_recipes_are_never_called_diverged(fashion_small, recipe):
    fields = {**recipe_fields(recipe), "epochs": min(3, recipe_fields(recipe).get("epochs", 3))}
    result = fit(small_fashion_config(**fields), data=fashion_small)
    assert result.completed and result.state.stopped_by == ""
    guard = guard_state(result)
    assert guard["in_a_row"] == 0 and guard["peak"] < 1.5  # far from 100x, and from 3x


def test_a_diverged_run_says_so_on_the_cli_runs_and_compare(capsys):
    args = shlex.split(
        "--dataset fashion-mnist --train-size 1000 --val-size 400 --threads 2 --epochs 3 --lr 5"
    )
    code, text, _ = cli_here(capsys, "train", *args, "--quiet")
    assert code == 0 and " diverged: " in text
    assert "; diverged at epoch 0." in text and "learning rate is probably too high" in text
    (run,) = api.list_runs()
    assert run["status"] == "completed" and run["ended_by"] == "diverged"
    assert run["ended_at"] < 1 and "3 batches in a row" in run["end_detail"]
    shown = cli_here(capsys, "runs", "show", run["id"], "--json")[1]
    assert (shown["ended_by"], shown["ended_at"]) == ("diverged", run["ended_at"])
    assert "diverged" in cli_here(capsys, "runs", "list")[1]
    (row,) = compare.summary_table([run["id"]])
    assert row["status"] == "diverged" and "learning rate is probably too high" in row["ended_by"]
    at = open_page("pages/runs.py", {"run": run["id"]})
    assert at.dataframe[0].value.set_index("id").loc[run["id"], "status"] == "💥 diverged"
    (warning,) = at.warning
    assert "diverged at epoch" in warning.value and "learning rate is probably too high" in (
        warning.value
    )
    at = open_page("pages/compare.py", {"runs": run["id"]})
    assert "diverged" in at.dataframe[0].value["status"].tolist()

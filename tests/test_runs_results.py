"""Run results as columns of the run row: one best validation accuracy (with the epoch
fraction where it happened) shown alike by the CLI, the API, Compare and the Runs page; how a
run ended; the schema-4 → 5 migration of a store written before results were columns."""

from __future__ import annotations

import json
import shlex
import sqlite3

import pytest

from cnn_core import compare
from cnn_core.runs import api
from cnn_core.runs.store import DB_NAME, MIGRATIONS, RunStore
from cnn_core.settings import runs_dir
from tests.run_fixtures import cli_here, finished_run
from tests.test_pages_app import no_worker, open_page  # noqa: F401 - the fixture is used

# 7 batches an epoch, 4 validations each: 0.5 is first reached inside epoch 2 (about 0.52 at
# epoch 1.57, after 0.365 at the end of epoch 1), so the run ends mid-epoch on its target
MID_EPOCH_TARGET = shlex.split(
    "--dataset fashion-mnist --epochs 3 --train-size 400 --val-size 200 --threads 1 "
    "--evals-per-epoch 4 --target-accuracy 0.5 --quiet --json"
)


def test_a_run_reaching_its_target_mid_epoch_shows_the_same_best_everywhere(capsys):
    code, out, _ = cli_here(capsys, "train", *MID_EPOCH_TARGET)
    assert code == 0 and out["target_status"] == "reached target"
    run_id = out["run_id"]
    val = [p for p in api.steps(run_id) if p["kind"] == "val"]
    best = max(val, key=lambda p: p["val_accuracy"])
    assert best["epoch_fraction"] % 1 and best["epoch_fraction"] > 1  # mid-epoch, after epoch 1
    assert max(m["val_accuracy"] for m in api.metrics(run_id)) < best["val_accuracy"]

    run = api.get_run(run_id)
    assert run["best_val_accuracy"] == pytest.approx(best["val_accuracy"])
    assert run["best_epoch_fraction"] == pytest.approx(best["epoch_fraction"])
    assert run["ended_by"] == "target" and run["val_accuracy"] == pytest.approx(
        val[-1]["val_accuracy"]
    )
    assert run["target_epoch_fraction"] == pytest.approx(best["epoch_fraction"])
    shown = cli_here(capsys, "runs", "show", run_id, "--json")[1]
    (listed,) = cli_here(capsys, "runs", "list", "--json")[1]
    (row,) = compare.summary_table([run_id])
    for value in (
        out["best_val_accuracy"],
        shown["best_val_accuracy"],
        listed["best_val_accuracy"],
        api.list_runs()[0]["best_val_accuracy"],
        row["best_val_accuracy"],
    ):
        assert value == run["best_val_accuracy"]
    assert out["best_epoch_fraction"] == shown["best_epoch_fraction"] == run["best_epoch_fraction"]
    assert f"{run['best_val_accuracy']:.4f}" in cli_here(capsys, "runs", "list")[1]
    text = cli_here(capsys, "runs", "show", run_id)[1]
    where = f"best {run['best_val_accuracy']:.4f} at epoch {run['best_epoch_fraction']:.2f}"
    assert where in text and "ended by target reached; reached target 0.5 in" in text

    at = open_page("pages/runs.py", {"run": run_id})
    table = at.dataframe[0].value.set_index("id")
    assert table.loc[run_id, "best val acc"] == run["best_val_accuracy"]
    metric = next(m for m in at.metric if m.label == "best val accuracy")
    assert metric.value == f"{run['best_val_accuracy']:.2%}"
    assert any(f"at epoch {best['epoch_fraction']:.2f}" in c.value for c in at.caption)


@pytest.mark.usefixtures("no_worker")
def test_how_each_run_ended_is_recorded():
    done = api.get_run(finished_run(name="all epochs", epochs=1))
    assert done["ended_by"] == "epochs" and done["target_status"] is None
    assert (
        done["best_val_accuracy"]
        == done["val_accuracy"]
        == api.metrics(done["id"])[0]["val_accuracy"]
    )
    assert done["best_epoch_fraction"] == 1.0
    assert done["train_seconds"] == pytest.approx(api.metrics(done["id"])[0]["seconds"])
    missed = api.get_run(finished_run(name="missed", target_accuracy=1.0))
    assert missed["ended_by"] == "epochs" and missed["target_status"] == "target not reached"
    extended = api.extend(missed["id"], 1)  # more epochs: the target may still be reached
    assert extended["ended_by"] is None and extended["target_status"] is None


# ---- migration ------------------------------------------------------------------------------
OLD = {"dataset": "fashion-mnist", "model": "v1", "epochs": 2, "data_choices": None}
TARGETED = {**OLD, "target_accuracy": 0.5, "evals_per_epoch": 2}


def _schema_4_store() -> None:
    """A store as the schema-4 code left it: per-epoch metric rows, step points, and the time
    to target as metric rows of "epoch 0" (what TargetWriter wrote)."""
    path = runs_dir() / DB_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    for migrate in MIGRATIONS[:4]:
        migrate(conn)
    conn.execute("PRAGMA user_version = 4")
    runs = {  # id: status, config, [(step, epoch_fraction, val accuracy)], {epoch: (acc, seconds)}
        "20250101-000000-aaaaaa": (
            "completed",
            TARGETED,
            [(5, 0.5, 0.30), (10, 1.0, 0.45), (15, 1.5, 0.55)],
            {1: (0.45, 2.0)},
        ),
        "20250101-000000-bbbbbb": (
            "completed",
            TARGETED,
            [(5, 0.5, 0.20), (10, 1.0, 0.40), (15, 1.5, 0.35), (20, 2.0, 0.42)],
            {1: (0.40, 2.0), 2: (0.42, 3.0)},
        ),
        "20250101-000000-cccccc": ("stopped", OLD, [(10, 1.0, 0.6)], {1: (0.6, 4.0)}),
        "20250101-000000-dddddd": ("completed", {**OLD, "data_choices": 3}, [], {1: (0.7, 1.0)}),
    }
    for run_id, (status, config, points, epochs) in runs.items():
        conn.execute(
            "INSERT INTO runs (id, name, status, config, created_at) VALUES (?, ?, ?, ?, 1.0)",
            (run_id, run_id[-6:], status, json.dumps(config)),
        )
        for step, fraction, acc in points:
            conn.execute(
                "INSERT INTO steps VALUES (?, 'val', ?, ?, ?, 0.5, ?, 1.0)",
                (run_id, step, fraction, step * 64, acc),
            )
        for epoch, (acc, seconds) in epochs.items():
            for name, value in (("val_accuracy", acc), ("seconds", seconds)):
                conn.execute(
                    "INSERT INTO metrics VALUES (?, ?, 10, ?, ?, 1.0)", (run_id, epoch, name, value)
                )
    target = {"time_to_target_s": 2.5, "images_to_target": 960, "epoch_fraction": 1.5}
    for name, value in {**target, "val_accuracy": 0.55}.items():  # TargetWriter's epoch-0 rows
        conn.execute(
            "INSERT INTO metrics VALUES ('20250101-000000-aaaaaa', 0, 0, ?, ?, 1.0)", (name, value)
        )
    conn.close()


def test_a_schema_4_store_is_carried_forward_to_result_columns():
    _schema_4_store()
    by_id = {r["id"][-6:]: r for r in api.list_runs()}
    assert RunStore().query("PRAGMA user_version")[0][0] == len(MIGRATIONS)

    reached = by_id["aaaaaa"]  # reached its target mid-epoch 2
    assert reached["target_status"] == "reached target" and reached["ended_by"] == "target"
    assert (reached["time_to_target_s"], reached["images_to_target"]) == (2.5, 960)
    assert reached["target_epoch_fraction"] == 1.5
    assert (reached["best_val_accuracy"], reached["best_epoch_fraction"]) == (0.55, 1.5)
    assert reached["val_accuracy"] == 0.55 and reached["train_seconds"] == 2.0
    assert [m["epoch"] for m in api.metrics(reached["id"])] == [1]  # no fake epoch 0 left
    assert not RunStore().query("SELECT 1 FROM metrics WHERE epoch = 0")

    missed = by_id["bbbbbb"]
    assert missed["target_status"] == "target not reached" and missed["ended_by"] == "epochs"
    assert (missed["best_val_accuracy"], missed["best_epoch_fraction"]) == (0.42, 2.0)
    assert missed["time_to_target_s"] is None and missed["train_seconds"] == 5.0

    stopped = by_id["cccccc"]
    assert stopped["ended_by"] == "stop" and stopped["target_status"] is None
    assert (stopped["best_val_accuracy"], stopped["best_epoch_fraction"]) == (0.6, 1.0)

    before_steps = by_id["dddddd"]  # no step points: the epoch rows decide
    assert (before_steps["best_val_accuracy"], before_steps["best_epoch_fraction"]) == (0.7, 1.0)

    # a stored config's data_choices null means "no choices": 0; a pinned version stays
    assert [by_id[k]["config"]["data_choices"] for k in ("aaaaaa", "cccccc", "dddddd")] == [0, 0, 3]

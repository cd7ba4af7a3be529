"""Step series and evaluation snapshots: the schema-3 → 4 migration, what a trained run stores
(points, panel, snapshots, ``runs show --json``), a corrupt snapshot skipped with a note, the
actions a run allows in each state, and SIGKILL mid-epoch + resume (no stale or duplicate
point, no gap)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time

import pytest

from cnn_core.cli.runs import _status_text
from cnn_core.errors import UserError
from cnn_core.runs import api
from cnn_core.runs.step_writer import PANEL_SIZE, panel_indices
from cnn_core.runs.store import DB_NAME, MIGRATIONS, SCHEMA_VERSION, RunStore
from cnn_core.runs.supervisor import worker_pid
from cnn_core.settings import runs_dir
from tests.conftest import small_fashion_config
from tests.run_fixtures import cli_here, finished_run, stop_supervisor, wait_finished, wait_for

OLD_CONFIG = {"dataset": "fashion-mnist", "model": "v2", "epochs": 2, "batch_size": 64}


def test_a_schema_3_store_is_migrated_and_its_runs_still_load():
    path = runs_dir() / DB_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    for migrate in MIGRATIONS[:3]:
        migrate(conn)
    conn.execute("PRAGMA user_version = 3")
    conn.execute(
        "INSERT INTO runs (id, name, status, config, created_at, epoch) "
        "VALUES ('20250101-000000-abcdef', 'old', 'completed', ?, 1.0, 2)",
        (json.dumps(OLD_CONFIG),),
    )
    for epoch, acc in ((1, 0.7), (2, 0.65)):
        conn.execute(
            "INSERT INTO metrics VALUES ('20250101-000000-abcdef', ?, 10, 'val_accuracy', ?, 1.0)",
            (epoch, acc),
        )
    conn.close()

    run = api.get_run("20250101-000000-abcdef")
    assert RunStore().query("PRAGMA user_version")[0][0] == SCHEMA_VERSION == 6
    assert run["name"] == "old" and run["val_accuracy"] == 0.65
    assert run["best_val_accuracy"] == 0.7 and run["actions"] == ["extend", "delete"]
    assert [m["val_accuracy"] for m in api.metrics(run["id"])] == [0.7, 0.65]
    assert api.steps(run["id"]) == []
    assert api.snapshots(run["id"]) == {"panel": None, "snapshots": [], "notes": []}


def test_a_trained_run_stores_its_step_series_and_snapshots(capsys):
    cfg = small_fashion_config(epochs=2, train_size=640, val_size=200, threads=1)
    run_id = finished_run(**cfg.to_dict())
    batches = api.get_run(run_id)["progress"]["num_batches"]
    steps = api.steps(run_id)
    train = [p for p in steps if p["kind"] == "train"]
    val = [p for p in steps if p["kind"] == "val"]
    assert train[0]["step"] == 1 and train[0]["images_seen"] == 64  # the first batch, at once
    assert [p["step"] for p in val] == [batches, 2 * batches]
    assert [p["images_seen"] for p in val] == [640, 1280]
    assert val[-1]["val_accuracy"] == pytest.approx(api.metrics(run_id)[-1]["val_accuracy"])
    for kind in (train, val):
        assert [p["step"] for p in kind] == sorted({p["step"] for p in kind})  # no duplicate
    assert all(p["epoch_fraction"] == pytest.approx(p["step"] / batches) for p in steps)
    assert all(0 <= p["train_accuracy"] <= 1 and p["train_loss"] > 0 for p in train)

    code, shown, _ = cli_here(capsys, "runs", "show", run_id, "--json")
    assert code == 0 and shown["steps"] == steps

    found = api.snapshots(run_id)
    panel, snaps = found["panel"], found["snapshots"]
    assert panel["indices"] == panel_indices(cfg.seed, 200) and len(panel["indices"]) == PANEL_SIZE
    assert panel["images"].shape == (PANEL_SIZE, 1, 28, 28) and found["notes"] == []
    assert [s["step"] for s in snaps] == [batches, 2 * batches]
    for snap in snaps:
        assert sum(map(sum, snap["confusion"])) == 200
        assert len(snap["predicted"]) == len(snap["confidence"]) == PANEL_SIZE
        assert all(0 < c <= 1 for c in snap["confidence"])

    # a damaged row: that snapshot is skipped with a note, the others still load
    with RunStore().transaction() as conn:
        conn.execute(
            "UPDATE snapshots SET result = '{\"confusion\": [[1' WHERE run_id = ? AND step = ?",
            (run_id, batches),
        )
    found = api.snapshots(run_id)
    assert [s["step"] for s in found["snapshots"]] == [2 * batches]
    assert len(found["notes"]) == 1 and f"step {batches} is unreadable" in found["notes"][0]

    api.delete(run_id)
    assert RunStore().point_rows(run_id) == [] and RunStore().snapshot_rows(run_id) == []
    assert RunStore().load_panel(run_id) is None


def _row(status: str, epoch: int) -> dict:
    return {"id": "r", "status": status, "epoch": epoch}


@pytest.mark.parametrize(
    ("status", "epoch", "actions"),
    [
        ("queued", 0, ["stop", "delete"]),
        ("running", 0, ["stop"]),
        ("running", 3, ["stop"]),
        ("completed", 2, ["extend", "delete"]),
        ("stopped", 0, ["resume", "delete"]),  # never finished an epoch: nothing to extend
        ("stopped", 1, ["resume", "extend", "delete"]),
        ("interrupted", 0, ["resume", "delete"]),
        ("failed", 0, ["resume", "delete"]),
    ],
)
def test_the_actions_a_run_allows_follow_its_status_and_progress(status, epoch, actions):
    assert api.allowed_actions(_row(status, epoch)) == actions


def test_extend_refuses_a_run_that_never_finished_an_epoch():
    run_id = api.submit(small_fashion_config(), start_worker=False)
    api.stop(run_id)
    run = api.get_run(run_id)
    assert run["status"] == "stopped" and run["actions"] == ["resume", "delete"]
    with pytest.raises(UserError, match="extended with at least one finished epoch"):
        api.extend(run_id, 2)
    assert api.get_run(run_id)["status"] == "stopped"  # nothing changed


def test_the_series_version_changes_whenever_the_series_or_the_epoch_metrics_do():
    run_id = api.submit(small_fashion_config(), start_worker=False)
    store, seen = RunStore(), []

    def look() -> None:
        seen.append((api.series_version(run_id), api.steps(run_id), api.metrics(run_id)))

    look()
    point = {"step": 1, "epoch_fraction": 0.1, "images_seen": 64, "loss": 1.0, "accuracy": 0.5}
    store.write_point(run_id, "train", {**point, "wall_time": 10.0})
    look()
    look()  # nothing written: the same version
    store.write_point(run_id, "train", {**point, "loss": 0.9, "wall_time": 11.0})  # rewritten
    look()
    store.write_point(run_id, "val", {**point, "step": 2, "wall_time": 12.0})
    look()
    store.write_metrics(run_id, 1, 2, {"val_accuracy": 0.5})
    look()
    store.clear_metrics(run_id)  # a restart: nothing left
    look()
    assert seen[0][0] == (0, None, None, 0, None) and seen[1] == seen[2]
    changes = [seen[i] for i in (1, 3, 4, 5, 6)]
    assert all(a[0] != b[0] for a, b in zip(changes, changes[1:], strict=False))
    for version, steps, history in seen:  # one version, one series
        assert all((s, h) == (steps, history) for v, s, h in seen if v == version)
    assert seen[-1] == seen[0]


def test_eta_comes_from_progress_and_speed():
    run = {
        "status": "running",
        "config": {"batch_size": 50},
        "progress": {"epoch": 1, "epochs": 3, "step": 10, "num_batches": 20, "images_per_s": 100},
    }
    assert api.eta_seconds(run) == pytest.approx((2 * 20 - 10) * 50 / 100)
    shown = {**run, "eta_s": api.eta_seconds(run), "error": None}
    assert "100 images/s · ETA 15 s)" in _status_text(shown)  # the CLI says what the page says
    assert api.eta_seconds({**run, "status": "stopped"}) is None
    assert api.eta_seconds({**run, "progress": {**run["progress"], "images_per_s": None}}) is None


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_leaves_no_stale_duplicate_or_missing_point():
    cfg = small_fashion_config(epochs=2, train_size=6000, val_size=200, threads=1)
    run_id = api.submit(cfg)
    try:
        wait_for(lambda: worker_pid(), 30, "the worker to start")
        run = wait_for(
            lambda: (
                (r := api.get_run(run_id))["progress"]["epoch"] == 1
                and r["progress"]["step"] >= 10
                and r
            ),
            120,
            "the middle of epoch 2",
        )
        batches = run["progress"]["num_batches"]
        os.kill(run["worker_pid"], signal.SIGKILL)
        assert wait_finished(run_id, 15)["status"] == "interrupted"
        lost = [p for p in api.steps(run_id) if p["step"] > batches]
        assert lost, "points of the lost partial epoch were written before the kill"
        resumed_at = time.time()
        api.resume(run_id)
        assert wait_finished(run_id, 120)["status"] == "completed"
    finally:
        stop_supervisor()
    steps = api.steps(run_id)
    train = [p["step"] for p in steps if p["kind"] == "train"]
    assert len(train) == len(set(train)) and train == sorted(train)
    assert [p["step"] for p in steps if p["kind"] == "val"] == [batches, 2 * batches]
    # the killed attempt's points past the checkpoint are gone, the resumed epoch is whole
    after = [p for p in steps if p["step"] > batches]
    assert all(p["wall_time"] >= resumed_at for p in after)
    assert batches + 1 in train  # the resumed first batch has its point at once
    gaps = [b - a for a, b in zip(train, train[1:], strict=False)]
    assert max(gaps) < batches, gaps  # never a gap as large as the lost partial epoch

"""Run store: schema and migrations, WAL, metric upserts, atomic claims, stale-run recovery,
and the API's id checks and state transitions (no training here)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
import time

import pytest

from cnn_core.config import TrainConfig
from cnn_core.errors import ConfigError, UserError
from cnn_core.runs import api
from cnn_core.runs.liveness import recover_stale
from cnn_core.runs.store import MIGRATIONS, SCHEMA_VERSION, RunStore
from cnn_core.settings import runs_dir

CONFIG = {"dataset": "fashion-mnist", "model": "v1", "epochs": 1}


def _pragma(store: RunStore, name: str):
    return store.query(f"PRAGMA {name}")[0][0]


def test_new_database_is_current_and_in_wal_mode(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    store.add_run("run-1", CONFIG)
    assert _pragma(store, "user_version") == SCHEMA_VERSION
    assert _pragma(store, "journal_mode") == "wal"
    row = store.get("run-1")
    assert (
        row["status"] == "queued"
        and row["executor"] == "local"
        and row["name"] == "v1 on fashion-mnist"
    )
    assert row["config"] == CONFIG and row["tags"] == [] and row["stop_requested"] is False


def test_empty_file_is_migrated_from_version_0(tmp_path):
    path = tmp_path / "runs.db"
    path.touch()
    store = RunStore(path)
    assert _pragma(store, "user_version") == SCHEMA_VERSION
    assert store.find() == []


def test_older_version_is_migrated_and_keeps_its_runs(tmp_path):
    path = tmp_path / "runs.db"
    conn = sqlite3.connect(path, isolation_level=None)
    MIGRATIONS[0](conn)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO runs (id, name, status, config, created_at) VALUES ('old-run', 'old', 'completed', ?, 1.0)",
        ('{"dataset": "mnist", "model": "v2"}',),
    )
    conn.close()
    store = RunStore(path)
    row = store.get("old-run")
    assert _pragma(store, "user_version") == SCHEMA_VERSION
    assert row["name"] == "old" and row["status"] == "completed"
    assert row["executor"] == "local" and row["epoch"] == 0 and row["num_batches"] == 0
    assert [r["id"] for r in store.find(model="v2")] == ["old-run"]


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "runs.db"
    sqlite3.connect(path).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(UserError, match="newer CNN Lab"):
        RunStore(path).find()


@pytest.mark.parametrize("left_over", [(), ("-wal", "-shm")])
def test_corrupt_database_gives_a_clear_message(tmp_path, left_over):
    path = tmp_path / "runs.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    for end in left_over:  # reads then try a read-only connection first
        (tmp_path / f"runs.db{end}").write_bytes(b"\0" * 32768)
    with pytest.raises(UserError, match=r"^runs\.db is not a database"):
        RunStore(path).find()


def test_metric_upsert_never_duplicates_rows(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    store.add_run("run-1", CONFIG)
    store.write_metrics(
        "run-1", 1, 10, {"val_loss": 0.5, "val_accuracy": 0.8, "flag": True, "text": "x"}
    )
    store.write_metrics(
        "run-1", 1, 10, {"val_loss": 0.4, "val_accuracy": 0.9}
    )  # e.g. after a resume
    rows = store.metric_rows("run-1")
    assert [(r["name"], r["value"]) for r in rows] == [("val_accuracy", 0.9), ("val_loss", 0.4)]


def test_evaluations_keep_the_latest_and_the_first_best_accuracy(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    store.add_run("run-1", CONFIG)
    for accuracy, fraction in ((0.5, 0.5), (0.7, 1.0), (0.7, 1.5), (0.6, 2.0)):
        store.record_evaluation("run-1", accuracy, fraction, {"train_seconds": fraction * 10})
    row = store.get("run-1")
    assert (row["val_accuracy"], row["best_val_accuracy"], row["best_epoch_fraction"]) == (
        0.6,
        0.7,
        1.0,
    )
    assert row["train_seconds"] == 20.0
    with pytest.raises(ValueError, match="best_val_accuracy"):
        store.record_evaluation("run-1", 0.9, 3.0, {"best_val_accuracy": 0.1})
    store.clear_metrics("run-1")  # it starts over: no results
    assert store.get("run-1")["best_val_accuracy"] is None


def test_claims_are_atomic_and_fifo(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    ids = [f"run-{i:02d}" for i in range(24)]
    for run_id in ids:
        store.add_run(run_id, CONFIG)
    claimed: list[str] = []

    def claim_all(pid: int) -> None:
        while (row := RunStore(tmp_path / "runs.db").claim_next(pid)) is not None:
            claimed.append(row["id"])

    threads = [threading.Thread(target=claim_all, args=(1000 + i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == ids  # every run claimed exactly once
    assert store.claim_next(1) is None
    assert {r["status"] for r in store.find()} == {"running"}


def test_recover_stale_marks_dead_and_silent_runs_interrupted(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    dead = subprocess.Popen(["true"])
    dead.wait()
    now = time.time()
    store.add_run("dead-pid", CONFIG, status="running", worker_pid=dead.pid, heartbeat_at=now)
    store.add_run("silent", CONFIG, status="running", worker_pid=None, heartbeat_at=now - 120)
    store.add_run("alive", CONFIG, status="running", worker_pid=os.getpid(), heartbeat_at=now)
    assert sorted(recover_stale(store)) == ["dead-pid", "silent"]
    assert store.get("dead-pid")["status"] == "interrupted"
    assert "gone" in store.get("dead-pid")["error"]
    assert "heartbeat" in store.get("silent")["error"]
    assert store.get("alive")["status"] == "running"
    assert recover_stale(store) == []


@pytest.mark.parametrize("bad", ["../x", "a/b", "", "UPPER", "x"])
def test_invalid_run_ids_are_rejected(bad):
    for call in (api.get_run, api.metrics, api.stop, api.resume, api.delete):
        with pytest.raises(UserError, match="invalid run id"):
            call(bad)
    with pytest.raises(UserError, match="invalid run id"):
        api.export(bad, "onnx")


def test_unknown_run_id():
    with pytest.raises(UserError, match="^no run 20260101-000000-abcdef$"):
        api.get_run("20260101-000000-abcdef")


def test_submit_validates_and_queues_without_starting_a_worker():
    with pytest.raises(ConfigError, match="epochs"):
        api.submit(TrainConfig(dataset="fashion-mnist", epochs=0), start_worker=False)
    run_id = api.submit(
        TrainConfig(dataset="fashion-mnist", epochs=1), name="first", tags=["a"], start_worker=False
    )
    run = api.get_run(run_id)
    assert run["status"] == "queued" and run["name"] == "first" and run["tags"] == ["a"]
    assert run["config"]["batch_size"] == 64  # stored resolved
    assert run["checkpoint"] is None and run["progress"]["fraction"] == 0.0
    assert not (runs_dir() / "worker.log").exists()


def test_queued_run_lifecycle_and_filters():
    a = api.submit(
        TrainConfig(dataset="fashion-mnist", model="v1"), tags=["keep"], start_worker=False
    )
    b = api.submit(TrainConfig(dataset="mnist", model="v2"), name="Digits try", start_worker=False)
    assert [r["id"] for r in api.list_runs()] == [b, a]
    assert [r["id"] for r in api.list_runs(dataset="mnist")] == [b]
    assert [r["id"] for r in api.list_runs(model="v1", tag="keep")] == [a]
    assert [r["id"] for r in api.list_runs(search="digits")] == [b]
    assert api.stop(a)["status"] == "stopped"  # a queued run stops at once
    assert [r["id"] for r in api.list_runs(status="stopped")] == [a]
    with pytest.raises(UserError, match="only queued or running"):
        api.stop(a)
    with pytest.raises(
        UserError, match="only completed, stopped, failed, interrupted runs can be extended"
    ):
        api.extend(b, 1)
    with pytest.raises(ConfigError, match="epochs"):
        api.extend(a, 0)
    assert api.rename(a, " renamed ")["name"] == "renamed"
    assert api.tag(a, ["x", "y", "x"])["tags"] == ["x", "y"]
    assert api.set_notes(a, "a note")["notes"] == "a note"
    with pytest.raises(UserError, match="tags"):
        api.tag(a, [""])
    api.delete(a)
    with pytest.raises(UserError, match="no run"):
        api.get_run(a)


def test_ensure_worker_starts_nothing_while_another_supervisor_is_taking_the_lock():
    """A supervisor that took its lock but has not written its pid yet (worker_pid() still
    None) makes ensure_worker start nothing and return None, not fail."""
    from cnn_core.processes import try_lock
    from cnn_core.runs.supervisor import ensure_worker, supervisor_files

    RunStore().add_run("run-1", CONFIG)
    files = supervisor_files("local")
    held = try_lock(files.lock)
    assert held is not None
    with held:
        assert ensure_worker() is None

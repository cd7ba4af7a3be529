"""Fault injection on real runs: damaged checkpoints, a locked database, a full disk."""

from __future__ import annotations

import errno
import sqlite3
import sys
import threading

import pytest
import torch

from cnn_core.checkpoints import CHECKPOINT_NAME, PREVIOUS_NAME, run_dir
from cnn_core.runs import api
from cnn_core.runs.store import RunStore
from tests.conftest import small_fashion_config
from tests.run_fixtures import finished_run, run_here, wait_for

COMPARED = ("train_loss", "val_loss", "val_accuracy")


@pytest.fixture(autouse=True)
def no_worker(monkeypatch):
    monkeypatch.setattr(api, "ensure_worker", lambda *a, **k: None)


def values(history):
    return [(m["epoch"], *(round(m[k], 6) for k in COMPARED)) for m in history]


def test_truncated_checkpoint_resumes_from_the_previous_one_without_losing_epochs():
    run_id = finished_run(epochs=2)
    before = values(api.metrics(run_id))
    folder = run_dir(run_id)
    assert (folder / PREVIOUS_NAME).is_file()
    api.extend(run_id, 1)
    data = (folder / CHECKPOINT_NAME).read_bytes()
    (folder / CHECKPOINT_NAME).write_bytes(
        data[: len(data) // 3]
    )  # truncated, as a crash mid-copy would

    assert run_here(run_id) == 0
    run = api.get_run(run_id)
    assert run["status"] == "completed"
    assert "resumed from the previous checkpoint (epoch 1)" in run["notes"]
    after = values(api.metrics(run_id))
    assert [m[0] for m in after] == [1, 2, 3]  # no duplicates, nothing lost
    assert after[:2] == before  # epoch 2 recomputed exactly


def test_unreadable_checkpoints_fail_the_run_with_a_clear_message():
    run_id = finished_run(epochs=1)
    folder = run_dir(run_id)
    api.extend(run_id, 1)
    for name in (CHECKPOINT_NAME, PREVIOUS_NAME):
        (folder / name).write_bytes(b"garbage")
    run_here(run_id)
    run = api.get_run(run_id)
    assert run["status"] == "failed"
    assert "not a readable CNN Lab checkpoint" in run["error"]
    assert [m["epoch"] for m in api.metrics(run_id)] == [1]  # the completed epoch's metrics stay


def waiting_on_the_store(thread: threading.Thread) -> bool:
    """Whether ``thread`` is inside a write transaction of the run store (with the database
    locked by someone else: waiting for it)."""
    frame = sys._current_frames().get(thread.ident)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "transaction" and code.co_filename.endswith("runs/store.py"):
            return True
        frame = frame.f_back
    return False


def test_database_locked_for_a_while_does_not_lose_metrics():
    """Another process holds the database while the run wants to write its first epoch: the
    run waits for it (busy timeout) and loses nothing."""
    run_id = api.submit(
        small_fashion_config(epochs=2, train_size=400, val_size=200, threads=1), start_worker=False
    )
    codes = []
    trainer = threading.Thread(target=lambda: codes.append(run_here(run_id)))
    checkpoint = run_dir(run_id) / CHECKPOINT_NAME
    trainer.start()
    wait_for(checkpoint.is_file, 120, "epoch 1's checkpoint (written before its metrics)", 0.01)
    conn = sqlite3.connect(RunStore().path, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    try:
        wait_for(lambda: waiting_on_the_store(trainer), 60, "the run to wait on the lock", 0.01)
    finally:
        conn.execute("COMMIT")
        conn.close()
    trainer.join(120)
    assert codes == [0]
    assert api.get_run(run_id)["status"] == "completed"
    assert [m["epoch"] for m in api.metrics(run_id)] == [1, 2]


def test_full_disk_mid_run_fails_cleanly_and_resume_completes(monkeypatch):
    run_id = finished_run(epochs=1)
    api.extend(run_id, 2)
    real_save = torch.save
    calls = {"n": 0}

    def save_until_disk_full(obj, f, *a, **k):
        calls["n"] += 1
        if calls["n"] >= 2:  # the epoch-2 save works, epoch 3's hits a full disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", save_until_disk_full)
    run_here(run_id)
    run = api.get_run(run_id)
    assert run["status"] == "failed" and "No space left on device" in run["error"]
    monkeypatch.setattr(torch, "save", real_save)
    api.resume(run_id)
    assert run_here(run_id) == 0
    assert api.get_run(run_id)["status"] == "completed"
    assert [m["epoch"] for m in api.metrics(run_id)] == [1, 2, 3]

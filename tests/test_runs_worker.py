"""Background training with real worker processes on a small slice of the real Fashion-MNIST:
completion, failure, extend, delete, stop latency, SIGKILL + resume, concurrent submitters,
the CLI, and the foreground ``train`` command recording its run."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks import overhead
from cnn_core.config import TrainConfig
from cnn_core.errors import UserError
from cnn_core.runs import api, ensure_worker
from cnn_core.runs.store import RunStore
from cnn_core.runs.supervisor import worker_pid
from cnn_core.settings import runs_dir
from cnn_core.trainer import HISTORY_KEYS
from tests.run_fixtures import (
    assert_matches_reference,
    cli_here,
    run_here,
    stop_supervisor,
    wait_finished,
    wait_for,
)

PROJECT = Path(__file__).resolve().parents[1]


def config(**overrides) -> TrainConfig:
    values = dict(
        dataset="fashion-mnist", model="v1", epochs=1, train_size=400, val_size=200, threads=1
    )
    return TrainConfig(**{**values, **overrides})


SMALL_ARGS = shlex.split(
    "--dataset fashion-mnist --epochs 1 --train-size 400 --val-size 200 --threads 1"
)
# 94 batches an epoch (about 3 s on a quiet 2-core machine, progress is written every second):
# long enough to see progress, then stop or kill mid-epoch
LONG = dict(epochs=2, train_size=6000)


@pytest.fixture(autouse=True)
def stop_worker():
    """After each test, stop a supervisor that is still running (SIGTERM = graceful)."""
    yield
    stop_supervisor()


@pytest.mark.slow
def test_worker_process_trains_a_queued_run_and_exits_when_idle():
    run_id = api.submit(config(), start_worker=False)
    worker = subprocess.Popen(
        [sys.executable, "-m", "cnn_core", "worker", "--idle-exit", "2"], cwd=PROJECT
    )
    run = wait_finished(run_id)
    assert run["status"] == "completed", run["error"]
    rows = api.metrics(run_id)
    assert [m["epoch"] for m in rows] == [1] and set(HISTORY_KEYS) <= set(rows[0])
    assert run["checkpoint"] and run["progress"]["fraction"] == 1.0 and run["val_accuracy"] > 0.3
    assert worker.wait(timeout=20) == 0


def test_failed_run_keeps_the_error_and_can_be_resumed(isolated_dirs, monkeypatch):
    monkeypatch.setattr(api, "ensure_worker", lambda: None)
    (isolated_dirs / "data" / "empty").mkdir()
    run_id = api.submit(
        config(dataset="image-folder", data_dir=str(isolated_dirs / "data" / "empty")),
        start_worker=False,
    )
    assert run_here(run_id) == 1
    run = api.get_run(run_id)
    assert run["status"] == "failed" and run["worker_pid"] is None
    assert "needs at least 2 class sub-folders" in run["error"] and "Error:" not in run["error"]
    assert api.resume(run_id)["status"] == "queued" and api.get_run(run_id)["error"] is None


def test_extend_continues_from_the_checkpoint_and_delete_removes_everything(monkeypatch):
    monkeypatch.setattr(api, "ensure_worker", lambda: None)
    run_id = api.submit(config(), start_worker=False)
    assert run_here(run_id) == 0
    first = api.metrics(run_id)
    assert api.extend(run_id, 1)["status"] == "queued"
    assert run_here(run_id) == 0
    run = api.get_run(run_id)
    assert run["status"] == "completed" and run["config"]["epochs"] == 2
    extended = api.metrics(run_id)
    assert [m["epoch"] for m in extended] == [1, 2] and extended[0] == first[0]
    folder = runs_dir() / run_id
    assert (folder / "checkpoint.pt").is_file()
    api.delete(run_id)
    assert not folder.exists() and RunStore().metric_rows(run_id) == []
    with pytest.raises(UserError, match="no run"):
        api.get_run(run_id)


@pytest.mark.slow
def test_stop_then_sigkill_then_resume_matches_an_uninterrupted_run():
    cfg = config(**LONG)
    run_id = api.submit(cfg)
    wait_for(lambda: worker_pid(), 30, "the worker to start")
    assert ensure_worker() is None  # never a second one
    wait_for(lambda: api.get_run(run_id)["progress"]["step"] >= 2, 60, "training to start")
    with pytest.raises(UserError, match="stop it first"):
        api.delete(run_id)

    # 1. stop mid-epoch 1: stopped with a resumable mid-epoch checkpoint
    start = time.monotonic()
    api.stop(run_id)
    run = wait_for(
        lambda: (r := api.get_run(run_id))["status"] != "running" and r, 10, "the stop", 0.02
    )
    print(f"stop latency {time.monotonic() - start:.2f} s")
    assert run["status"] == "stopped"
    assert run["checkpoint"] and run["progress"]["epoch"] == 0 and run["progress"]["step"] > 0

    # 2. resume, then SIGKILL the child inside epoch 2: the supervisor marks it interrupted
    api.resume(run_id)
    run = wait_for(
        lambda: (r := api.get_run(run_id))["progress"]["epoch"] >= 1 and r, 60, "epoch 2"
    )
    assert run["status"] == "running" and run["progress"]["epoch"] == 1
    os.kill(run["worker_pid"], signal.SIGKILL)
    assert wait_finished(run_id, 10)["status"] == "interrupted"  # reported at once
    run = wait_for(  # then recorded by the supervisor, saying how it died
        lambda: (r := RunStore().get(run_id))["status"] == "interrupted" and r, 10, "the record"
    )
    assert "SIGKILL" in run["error"]

    # 3. resume from the epoch-1 checkpoint to the end: same numbers, no duplicate metric rows
    api.resume(run_id)
    run = wait_finished(run_id)
    assert run["status"] == "completed", run["error"]
    rows = RunStore().metric_rows(run_id)
    assert (
        len(rows)
        == len({(r["epoch"], r["step"], r["name"]) for r in rows})
        == 2 * (len(HISTORY_KEYS) - 1)
    )
    assert_matches_reference(run_id, cfg)


@pytest.mark.slow
def test_two_concurrent_submitters_from_the_cli():
    cmd = [sys.executable, "-m", "cnn_core", "submit", *SMALL_ARGS, "--json"]
    procs = [
        subprocess.Popen(cmd, cwd=PROJECT, stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    ids = [json.loads(p.communicate(timeout=60)[0].splitlines()[-1])["run_id"] for p in procs]
    assert all(p.returncode == 0 for p in procs) and len(set(ids)) == 2
    for run_id in ids:
        assert wait_finished(run_id)["status"] == "completed"
    listing = subprocess.run(
        [sys.executable, "-m", "cnn_core", "runs", "list", "--json"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert {r["id"]: r["status"] for r in json.loads(listing.stdout)} == dict.fromkeys(
        ids, "completed"
    )
    log = (runs_dir() / "worker.log").read_text()
    assert (
        log.count("started local executor (") == 1
    )  # one supervisor, however many submitters asked for one
    assert all(log.count(f"claimed run {run_id}") == 1 for run_id in ids)


def test_cli_manages_queued_runs_in_process(capsys):
    code, sub, _ = cli_here(
        capsys,
        "submit",
        "--dataset",
        "fashion-mnist",
        "--epochs",
        "2",
        "--no-worker",
        "--tag",
        "cli",
        "--json",
    )
    assert code == 0 and sub["status"] == "queued"
    run_id = sub["run_id"]
    code, shown, _ = cli_here(capsys, "runs", "show", run_id, "--json")
    assert shown["config"]["epochs"] == 2 and shown["tags"] == ["cli"] and shown["metrics"] == []
    assert cli_here(capsys, "runs", "rename", run_id, "CLI run")[1].startswith(
        f"run {run_id}: queued"
    )
    assert cli_here(capsys, "runs", "tag", run_id, "a", "b", "--json")[1]["tags"] == ["a", "b"]
    assert cli_here(capsys, "runs", "stop", run_id, "--json")[1]["status"] == "stopped"
    assert "CLI run" in cli_here(capsys, "runs", "list", "--status", "stopped")[1]
    code, _, err = cli_here(capsys, "runs", "show", "../x")
    assert code == 2 and err.startswith("error: invalid run id")
    assert cli_here(capsys, "runs", "delete", run_id)[0] == 0
    assert cli_here(capsys, "runs", "list")[1].strip() == "no runs"


def test_foreground_train_records_its_run(capsys):
    code, out, _ = cli_here(capsys, "train", *SMALL_ARGS, "--quiet", "--json")
    assert code == 0 and out["status"] == "completed"
    run = api.get_run(out["run_id"])
    assert run["status"] == "completed" and run["worker_pid"] is None
    assert run["checkpoint"] == out["checkpoint"]
    assert api.metrics(out["run_id"])[0]["val_accuracy"] == pytest.approx(out["val_accuracy"])


def test_overhead_benchmark(capsys):
    code = overhead.main([*SMALL_ARGS, "--repeats", "1", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["plain_images_per_s"] > 0 and out["tracked_images_per_s"] > 0
    assert out["ratio"] == pytest.approx(out["tracked_images_per_s"] / out["plain_images_per_s"])
    assert out["steps_ratio"] == pytest.approx(
        out["steps_images_per_s"] / out["plain_images_per_s"]
    )

"""The Ray executor against a real local Ray cluster (``ray start --head``, 2 CPUs, loopback):
a run trains as a Ray task and reports exactly like a local one, stop / resume cross the
boundary, a killed Ray worker leaves the run interrupted and resumable, sweeps run trials in
parallel, a run trains data-parallel on two Ray Train workers. Marked ``ray``: starting Ray
takes a few seconds."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from cnn_core.config import TrainConfig
from cnn_core.errors import UserError
from cnn_core.predict import Predictor
from cnn_core.runs import api
from cnn_core.runs.store import RunStore
from cnn_core.sweeps import api as sweeps
from tests.conftest import require
from tests.e2e.conftest import free_port
from tests.run_fixtures import (
    assert_matches_reference,
    reference,
    stop_supervisor,
    wait_finished,
    wait_for,
)

pytestmark = [pytest.mark.ray, pytest.mark.slow]
RAY = os.path.join(os.path.dirname(sys.executable), "ray")


def config(**overrides) -> TrainConfig:
    values = dict(
        dataset="fashion-mnist", model="v1", epochs=2, train_size=600, val_size=200, threads=1
    )
    return TrainConfig(**{**values, **overrides})


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A 2-CPU Ray head on loopback for this module; its address goes to the supervisors."""
    require(
        api.ray_available() and os.path.exists(RAY), "Ray", "pip install -r requirements-ray.txt"
    )
    port = free_port()
    temp = tmp_path_factory.mktemp("ray")
    start = [
        RAY, "start", "--head", "--num-cpus", "2", "--num-gpus", "0", "--port", str(port),
        "--node-ip-address", "127.0.0.1", "--include-dashboard", "false",
        "--disable-usage-stats", "--temp-dir", str(temp),
    ]  # fmt: skip
    subprocess.run(start, check=True, capture_output=True, timeout=120)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(autouse=True)
def ray_env(ray_cluster, monkeypatch):
    monkeypatch.setenv("CNN_LAB_RAY_ADDRESS", ray_cluster)
    yield
    stop_supervisor("ray")


def ray_task_pid(run_id: str) -> int:
    """The pid of the Ray worker process running ``run_id``'s task (Ray titles it by the task)."""
    out = subprocess.run(
        ["pgrep", "-f", f"ray::cnn-lab-run-{run_id}"], capture_output=True, text=True
    ).stdout.split()
    return int(out[0]) if out else 0


def test_a_ray_run_reports_exactly_like_a_local_one():
    cfg = config()
    run_id = api.submit(cfg, executor="ray")
    run = wait_finished(run_id, 180)
    assert run["status"] == "completed", run["error"]
    assert run["executor"] == "ray" and run["checkpoint"]
    assert_matches_reference(run_id, cfg)  # same numbers as an uninterrupted local fit
    assert run["progress"]["epoch"] == 2 and run["progress"]["images_per_s"] > 0
    best = max(m["val_accuracy"] for m in api.metrics(run_id))  # results cross the boundary
    assert run["best_val_accuracy"] == pytest.approx(best) and run["ended_by"] == "epochs"


def test_stop_and_resume_cross_the_boundary_and_a_lost_worker_is_resumable():
    cfg = config(train_size=6000)  # 94 batches an epoch: time to stop and kill mid-run
    run_id = api.submit(cfg, executor="ray")
    wait_for(lambda: api.get_run(run_id)["progress"]["step"] >= 2, 180, "training on Ray")
    api.stop(run_id)
    run = wait_for(lambda: (r := api.get_run(run_id))["status"] != "running" and r, 20, "stop")
    assert run["status"] == "stopped" and run["checkpoint"]  # shipped back from the task
    assert run["progress"]["epoch"] == 0 and run["progress"]["step"] > 0

    api.resume(run_id)
    wait_for(lambda: api.get_run(run_id)["progress"]["epoch"] >= 1, 180, "epoch 2 on Ray")
    pid = wait_for(lambda: ray_task_pid(run_id), 10, "the Ray worker process")
    os.kill(pid, signal.SIGKILL)
    run = wait_finished(run_id, 60)
    assert run["status"] == "interrupted" and "Ray worker lost" in run["error"]

    api.resume(run_id)  # from the epoch-1 checkpoint the task shipped
    run = wait_finished(run_id, 180)
    assert run["status"] == "completed", run["error"]
    rows = RunStore().metric_rows(run_id)
    assert len({(r["epoch"], r["name"]) for r in rows}) == len(rows)  # no duplicate epochs
    assert_matches_reference(run_id, cfg)


def test_a_two_trial_sweep_trains_its_trials_at_once():
    sweep_id = sweeps.create_sweep(
        config(epochs=1, train_size=3000),
        {"lr": {"choices": [0.001, 0.0005]}},
        trials=2,
        sampler="grid",
        pruner="none",
        parallel=2,
        executor="ray",
    )
    start = time.monotonic()
    status = sweeps.run_sweep(sweep_id, log=lambda message: None)
    print(f"2-trial sweep on Ray: {time.monotonic() - start:.1f} s")
    assert status["counts"]["complete"] == 2
    trials = [api.get_run(t["run_id"]) for t in status["trials"]]
    assert all(t["executor"] == "ray" for t in trials)
    first, second = sorted(trials, key=lambda r: r["started_at"])
    assert second["started_at"] < first["finished_at"]  # they overlapped


def test_data_parallel_on_two_ray_workers_matches_one_worker():
    cfg = config(train_size=3000, val_size=500)
    run_id = api.submit(dataclasses.replace(cfg, workers=2), executor="ray")
    run = wait_finished(run_id, 300)
    assert run["status"] == "completed", run["error"]
    got, alone = api.metrics(run_id), reference(cfg)
    assert [m["epoch"] for m in got] == [1, 2]
    print(
        f"val accuracy: 2 DDP workers {got[-1]['val_accuracy']:.4f}, one worker "
        f"{alone[-1]['val_accuracy']:.4f}"
    )
    # 500 validation images: a standard error of ~2 points at 75 %
    assert abs(got[-1]["val_accuracy"] - alone[-1]["val_accuracy"]) <= 0.04
    model = Predictor.from_checkpoint(run["checkpoint"])  # a plain model, not DDP-wrapped
    assert model.predict_tensor(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


def test_an_unreachable_cluster_fails_the_run_with_the_reason(monkeypatch):
    monkeypatch.setenv("CNN_LAB_RAY_ADDRESS", f"127.0.0.1:{free_port()}")
    run_id = api.submit(config(epochs=1), executor="ray")
    run = wait_finished(run_id, 120)
    assert run["status"] == "failed" and "cannot reach the Ray cluster" in run["error"]


def test_unknown_executor_and_local_data_parallel_are_refused():
    with pytest.raises(UserError, match="unknown executor"):
        api.submit(config(), executor="slurm")
    with pytest.raises(UserError, match="runs on Ray"):
        api.submit(config(workers=2))

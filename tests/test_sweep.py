"""Optuna sweeps on a small slice of the real Fashion-MNIST: search-space checks, a grid sweep
driven here with its runs trained in this process, and real background sweeps (pruning a
forced-bad trial; SIGKILL of a run's process and of the driver, then resume)."""

from __future__ import annotations

import os
import shlex
import signal

import pytest

import cnn_core.runs
from cnn_core.config import TrainConfig
from cnn_core.errors import ConfigError, UserError
from cnn_core.models import MODELS
from cnn_core.resolve import resolve
from cnn_core.runs import api as runs_api
from cnn_core.runs.supervisor import worker_pid
from cnn_core.sweeps import (
    architecture_sweep,
    create_sweep,
    list_sweeps,
    load_study,
    run_sweep,
    start_sweep,
    stop_sweep,
    sweep_status,
    sweep_tag,
    train_best_longer,
)
from cnn_core.sweeps.space import default_space, grid, grid_size, validate_space
from cnn_core.sweeps.study import driver_alive, set_attrs
from tests.run_fixtures import cli_here, submit_inline, wait_for
from tests.test_runs_worker import stop_worker  # noqa: F401 - stop_worker is autouse

pytestmark = pytest.mark.fashion
TINY = shlex.split("--dataset fashion-mnist --epochs 1 --train-size 300 --val-size 200 --threads 1")


def tiny(**overrides) -> TrainConfig:
    values = dict(dataset="fashion-mnist", epochs=1, train_size=300, val_size=200, threads=1)
    return TrainConfig(**{**values, **overrides})


@pytest.fixture
def inline_runs(monkeypatch):
    """Train every submitted run at once in this process (no worker): a sweep driven here
    then finishes without background processes."""
    monkeypatch.setattr(cnn_core.runs, "submit", submit_inline)


def finished_sweep(trials: int = 2, **create) -> str:
    """A completed sweep over adam vs sgd (1 epoch each); needs :func:`inline_runs`."""
    space = {"optimizer": {"choices": ["adam", "sgd"]}}
    sweep_id = create_sweep(tiny(), space, trials=trials, name="tiny sweep", **create)
    assert run_sweep(sweep_id, log=lambda m: None, poll=0.05)["status"] == "completed"
    return sweep_id


@pytest.fixture
def stop_drivers():
    """After the test, stop any sweep driver still running (and its trial runs)."""
    yield
    for sweep in list_sweeps():
        if driver_alive(sweep["id"]):
            stop_sweep(sweep["id"], wait=10)


# ---- no training ------------------------------------------------------------------------------
def test_space_validation_and_grid():
    base = resolve(tiny())
    assert validate_space(default_space(), base)["lr"] == {"low": 1e-4, "high": 1e-2, "log": True}
    for bad, field in (
        ({"seed": {"choices": [1]}}, "seed"),
        ({"lr": {"low": 1e-2, "high": 1e-4}}, "lr"),
        ({"lr": {"low": 0.0, "high": 0.1, "log": True}}, "lr"),
        ({"optimizer": {"choices": ["adam", "rmsprop"]}}, "optimizer"),
        ({"optimizer": {"low": 1, "high": 2}}, "optimizer"),
        ({"augment": {"choices": ["yes"]}}, "augment"),
        ({"batch_size": {"low": 16.5, "high": 64}}, "batch_size"),
        ({}, "space"),
    ):
        with pytest.raises(ConfigError) as info:
            validate_space(bad, base)
        assert info.value.field == field, bad
    space = validate_space(
        {"lr": {"low": 1e-4, "high": 1e-2, "log": True}, "batch_size": {"low": 16, "high": 64}},
        base,
    )
    assert grid(space) == {"lr": [1e-4, 1e-3, 1e-2], "batch_size": [16, 40, 64]}
    assert grid_size(space) == 9


def test_create_sweep_checks_budget_sampler_and_pruner(isolated_dirs):
    for kwargs, field in (
        ({"trials": 0}, "trials"),
        ({"timeout": -1}, "timeout"),
        ({"sampler": "cmaes"}, "sampler"),
        ({"pruner": {"name": "median", "patience": 2}}, "pruner"),
        ({"pruner": {"name": "median", "n_startup_trials": -1}}, "pruner"),
        ({"parallel": 99}, "parallel"),
        ({"sampler": {"name": "grid", "points": 1}}, "points"),
    ):
        with pytest.raises(ConfigError) as info:
            create_sweep(tiny(), **kwargs)
        assert info.value.field == field
    assert list_sweeps() == []
    space = {"optimizer": {"choices": ["adam", "sgd"]}, "lr": {"low": 1e-4, "high": 1e-2}}
    sweep_id = create_sweep(tiny(), space, trials=50, sampler="grid")
    status = sweep_status(sweep_id)
    assert status["budget"]["trials"] == 6 and status["status"] == "created"
    assert list_sweeps()[0]["status"] == "created"
    assert not (isolated_dirs / "runs" / "sweeps").exists()  # reading created no lock file
    assert status["trials"] == [] and status["best"] is None and status["best_so_far"] == []
    assert status["importance_note"] == "needs at least 2 complete trials"
    with pytest.raises(UserError, match="no sweep"):
        sweep_status("20990101-000000-abcdef")
    with pytest.raises(UserError, match="invalid sweep id"):
        sweep_status("../x")


# ---- driven here, runs trained in this process -----------------------------------------------
def test_grid_sweep_via_the_cli_and_train_the_best_longer(capsys, inline_runs):
    code, out, err = cli_here(
        capsys,
        "sweep",
        *TINY,
        "--sampler",
        "grid",
        "--search",
        "optimizer",
        "--space",
        '{"optimizer": {"choices": ["adam", "sgd"]}}',
        "--name",
        "grid",
        "--json",
    )
    assert code == 0 and out["status"] == "completed" and "trial 1" in err
    status = sweep_status(out["sweep_id"])
    assert sorted(t["params"]["optimizer"] for t in status["trials"]) == ["adam", "sgd"]
    assert status["counts"]["complete"] == 2 and status["best"]["params"] == {"optimizer": "adam"}
    assert set(status["importances"]) == {"optimizer"} and status["importance_note"] is None
    tagged = cnn_core.runs.list_runs(tag=sweep_tag(out["sweep_id"]))
    assert {r["id"] for r in tagged} == {t["run_id"] for t in status["trials"]}
    assert all(r["status"] == "completed" and r["name"].startswith("grid #") for r in tagged)
    best_run = runs_api.get_run(status["best"]["run_id"])
    assert (
        max(m["val_accuracy"] for m in runs_api.metrics(best_run["id"])) == status["best"]["value"]
    )
    assert [c["number"] for c in status["best_so_far"]] == sorted(
        t["number"] for t in status["trials"]
    )

    longer = train_best_longer(out["sweep_id"], 2)
    run = runs_api.get_run(longer)
    assert run["config"]["epochs"] == 2 and run["config"]["optimizer"] == "adam"
    assert "sweep-best" in run["tags"] and run["status"] == "completed"

    code, listed, _ = cli_here(capsys, "sweep", "list", "--json")
    assert [s["id"] for s in listed] == [out["sweep_id"]] and listed[0]["n_trials"] == 2
    code, text, _ = cli_here(capsys, "sweep", "show", out["sweep_id"])
    assert "complete" in text and "best: #" in text and "importance: optimizer" in text


@pytest.mark.filterwarnings("ignore:Fixed parameter lr")
def test_failing_trials_are_told_fail_and_three_in_a_row_stop_the_sweep(inline_runs, isolated_dirs):
    empty = isolated_dirs / "data" / "empty"
    empty.mkdir()
    base = tiny(dataset="image-folder", data_dir=str(empty))
    space = {"optimizer": {"choices": ["adam", "sgd"]}, "lr": {"low": 1e-4, "high": 1e-2}}
    sweep_id = create_sweep(base, space, trials=6)
    load_study(sweep_id).enqueue_trial({"optimizer": "adam", "lr": 50.0})  # not a valid config
    status = run_sweep(sweep_id, log=lambda m: None, poll=0.05)
    assert status["status"] == "failed" and "3 trials failed in a row" in status["error"]
    assert [t["state"] for t in status["trials"]] == ["fail"] * 3
    assert status["trials"][0]["run_id"] is None and "lr" in status["trials"][0]["error"]
    assert all("class sub-folders" in t["error"] for t in status["trials"][1:])
    assert [s["status"] for s in list_sweeps()] == ["failed"]


def test_stop_then_resume_in_the_foreground_reconciles_the_running_trial(capsys, inline_runs):
    sweep_id = create_sweep(tiny(), {"optimizer": {"choices": ["adam", "sgd"]}}, trials=3)

    def log(message: str) -> None:  # stop as soon as trial 1's run is queued
        if message.startswith("trial 1:"):
            assert stop_sweep(sweep_id)["status"] == "stopping"

    assert run_sweep(sweep_id, log=log, poll=0.05)["status"] == "stopped"
    status = sweep_status(sweep_id)
    assert [t["state"] for t in status["trials"]] == ["complete", "running"]
    assert cli_here(capsys, "sweep", "stop", sweep_id, "--json")[1]["status"] == "stopped"
    code, out, _ = cli_here(capsys, "sweep", "run", sweep_id, "--json")
    assert code == 0 and out["status"] == "completed"
    assert out["counts"] == {"running": 0, "complete": 3, "pruned": 0, "fail": 0, "waiting": 0}
    trials = sweep_status(sweep_id)["trials"]
    assert trials[1]["run_id"] == status["trials"][1]["run_id"]  # told, not trained again


def test_the_architecture_sweep_trains_every_registered_model_like_the_base(inline_runs):
    base = tiny(train_size=200, val_size=100, lr=0.005, seed=7, name="base run", tags=["mine"])
    sweep_id = architecture_sweep(base)
    status = sweep_status(sweep_id)
    assert status["space"] == {"model": {"choices": list(MODELS)}}
    assert status["budget"]["trials"] == len(MODELS) and status["name"] == (
        "every architecture on fashion-mnist"
    )
    assert (status["sampler"]["name"], status["pruner"]["name"]) == ("grid", "none")
    status = run_sweep(sweep_id, log=lambda m: None, poll=0.05)
    assert status["status"] == "completed" and status["counts"]["complete"] == len(MODELS)
    assert sorted(t["params"]["model"] for t in status["trials"]) == sorted(MODELS)
    trained = cnn_core.runs.list_runs(tag=sweep_tag(sweep_id))
    assert sorted(r["model"] for r in trained) == sorted(MODELS)
    expected = {
        k: v for k, v in resolve(base).to_dict().items() if k not in ("model", "name", "tags")
    }
    for run in trained:
        assert run["tags"] == [sweep_tag(sweep_id)] and run["status"] == "completed"
        assert {k: v for k, v in run["config"].items() if k in expected} == expected


def test_the_time_budget_stops_asking_for_trials(inline_runs):
    """No trial is asked for once the time budget is used: by earlier sessions (the budget
    spans them) or by this session's own time (a budget of a nanosecond is used up by the time
    the driver first looks)."""
    space = {"optimizer": {"choices": ["adam", "sgd"]}}
    spent = create_sweep(tiny(), space, trials=5, timeout=0.5)
    set_attrs(load_study(spent), elapsed_s=0.5)
    instant = create_sweep(tiny(), space, trials=5, timeout=1e-9)
    for sweep_id in (spent, instant):
        status = run_sweep(sweep_id, log=lambda m: None, poll=0.05)
        assert status["status"] == "completed" and status["trials"] == [], sweep_id
    assert sweep_status(spent)["elapsed_s"] >= 0.5
    assert sweep_status(instant)["elapsed_s"] > 0


# ---- real background worker and driver -------------------------------------------------------
@pytest.mark.slow
def test_real_sweep_prunes_a_forced_bad_trial():
    space = {
        "lr": {"low": 1e-5, "high": 3e-3, "log": True},
        "optimizer": {"choices": ["adam", "sgd"]},
        "batch_size": {"choices": [4, 64]},
    }
    sweep_id = create_sweep(
        tiny(epochs=2, train_size=400),
        space,
        trials=4,
        pruner={"name": "median", "n_startup_trials": 2, "n_warmup_steps": 0},
        name="prune",
    )
    study = load_study(sweep_id)
    good = {"lr": 1e-3, "optimizer": "adam", "batch_size": 64}
    study.enqueue_trial(good)
    study.enqueue_trial({**good, "lr": 2e-3})
    study.enqueue_trial({"lr": 1e-5, "optimizer": "sgd", "batch_size": 4})  # 100 slow batches
    status = run_sweep(sweep_id, poll=0.2)
    assert status["status"] == "completed" and len(status["trials"]) == 4
    assert [t["state"] for t in status["trials"][:2]] == ["complete", "complete"]
    bad = status["trials"][2]
    assert bad["state"] == "pruned" and list(bad["values"]) == [1], bad
    run = runs_api.get_run(bad["run_id"])
    assert run["status"] == "stopped" and "pruned" in run["tags"] and "Pruned by" in run["notes"]
    assert run["progress"]["epoch"] == 1  # stopped inside epoch 2
    tagged = cnn_core.runs.list_runs(tag=sweep_tag(sweep_id))
    assert {r["id"] for r in tagged} == {t["run_id"] for t in status["trials"]}
    assert status["best"]["number"] in (0, 1, 3) and status["best"]["value"] > 0.3


@pytest.mark.slow
def test_sweep_survives_sigkill_of_a_run_and_of_the_driver(stop_drivers):
    sweep_id = create_sweep(
        tiny(), {"lr": {"low": 5e-4, "high": 3e-3, "log": True}}, trials=3, pruner="none"
    )
    driver = start_sweep(sweep_id)
    wait_for(lambda: driver_alive(sweep_id), 30, "the driver to start")
    with pytest.raises(UserError, match="already running"):
        start_sweep(sweep_id)

    def trial_run(number: int) -> dict:
        """Trial ``number``'s run once a training process (not the supervisor) owns it."""
        trials = sweep_status(sweep_id, importances=False)["trials"]
        if len(trials) <= number or not trials[number]["run_id"]:
            return {}
        run = runs_api.get_run(trials[number]["run_id"])
        pid = run["worker_pid"]
        return run if run["status"] == "running" and pid not in (None, worker_pid()) else {}

    # 1. SIGKILL trial 0's training process: the driver resumes its run
    run = wait_for(lambda: trial_run(0), 90, "trial 0 to train", 0.2)
    os.kill(run["worker_pid"], signal.SIGKILL)

    # 2. SIGKILL the driver while trial 1 trains: the sweep shows interrupted
    wait_for(lambda: trial_run(1), 120, "trial 1 to train", 0.2)
    os.kill(driver, signal.SIGKILL)
    wait_for(lambda: not driver_alive(sweep_id), 10, "the driver to die")
    assert sweep_status(sweep_id, importances=False)["status"] == "interrupted"

    # 3. resume: trial 1 is reconciled, trial 2 runs, the budget completes
    start_sweep(sweep_id)
    status = wait_for(
        lambda: (s := sweep_status(sweep_id))["status"] == "completed" and s,
        150,
        "the sweep",
        0.5,
    )
    assert [t["state"] for t in status["trials"]] == ["complete"] * 3
    first = runs_api.get_run(status["trials"][0]["run_id"])
    assert first["status"] == "completed" and status["trials"][0]["run_id"] == first["id"]
    assert load_study(sweep_id).trials[0].user_attrs["resumes"] == 1
    assert len(cnn_core.runs.list_runs(tag=sweep_tag(sweep_id))) == 3
    assert status["importance_note"] is None or "could not" not in status["importance_note"]

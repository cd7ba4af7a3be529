"""Helpers for tests of runs: real finished runs in the (test-isolated) run store, waiting for
background runs, and the numbers an uninterrupted run gives."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import torch

from cnn_core.cli import main
from cnn_core.config import TrainConfig
from cnn_core.runs import api
from cnn_core.runs.store import FINISHED, RunStore
from cnn_core.runs.supervisor import worker_pid
from cnn_core.runs.worker import run_child
from cnn_core.trainer import fit
from tests.conftest import small_fashion_config

COMPARED = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
_REFERENCES: dict[str, list[dict]] = {}


def run_here(run_id: str) -> int:
    """Claim ``run_id`` and train it in this process, as a worker child would."""
    assert RunStore().claim_next(os.getpid())["id"] == run_id
    threads = torch.get_num_threads()
    try:
        return run_child(run_id, 1)
    finally:
        torch.set_num_threads(threads)


def submit_inline(config, name=None, tags=None, start_worker=True, executor="local") -> str:
    """``cnn_core.runs.submit`` that trains the run at once in this process (no worker): a
    sweep driven here with it finishes without background processes."""
    run_id = api.submit(config, name, tags, start_worker=False, executor=executor)
    run_here(run_id)
    return run_id


def finished_run(name: str = "", tags: list[str] | None = None, **overrides) -> str:
    """Submit a tiny Fashion-MNIST run and train it here to completion; returns its id."""
    values = dict(train_size=400, val_size=200, threads=1)
    values.update(overrides)
    run_id = api.submit(
        small_fashion_config(**values), name=name, tags=tags or [], start_worker=False
    )
    assert run_here(run_id) == 0
    return run_id


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_finished(run_id: str, timeout: float = 90) -> dict:
    return wait_for(
        lambda: (r := api.get_run(run_id))["status"] in FINISHED and r, timeout, f"run {run_id}"
    )


def reference(cfg: TrainConfig) -> list[dict]:
    """The history of an uninterrupted in-process run of ``cfg`` (cached per config)."""
    key = cfg.to_json()
    if key not in _REFERENCES:
        threads = torch.get_num_threads()
        try:
            _REFERENCES[key] = fit(cfg).history
        finally:
            torch.set_num_threads(threads)
    return _REFERENCES[key]


def assert_matches_reference(run_id: str, cfg: TrainConfig) -> None:
    got, want = api.metrics(run_id), reference(cfg)
    assert [m["epoch"] for m in got] == [m["epoch"] for m in want]
    for g, w in zip(got, want, strict=True):
        for key in COMPARED:
            assert g[key] == pytest.approx(w[key], rel=1e-5, abs=1e-6), (g["epoch"], key)


def stop_supervisor(executor: str = "local") -> None:
    """Stop the supervisor of ``executor`` runs if one is running (SIGTERM = graceful)."""
    pid = worker_pid(executor)
    if pid:
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: worker_pid(executor) is None, 30, f"the {executor} worker to exit")


def cli_here(capsys, *argv: str):
    """Run the CLI in this process (torch threads restored); (exit code, JSON or text, stderr)."""
    threads = torch.get_num_threads()
    try:
        code = main(list(argv))
    finally:
        torch.set_num_threads(threads)
    out, err = capsys.readouterr()
    return code, (json.loads(out) if "--json" in argv and code == 0 else out), err

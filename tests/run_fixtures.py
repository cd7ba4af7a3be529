"""Helpers for tests of runs: real finished runs in the (test-isolated) run store, waiting for
background runs, and the numbers an uninterrupted run gives.

A finished run is trained once per session and config (its *golden* copy): the next test asking
for the same config gets a copy of it in its own runs folder (run folder and database rows, its
times shifted to now) under the id and name ``submit`` gave it, as if it had trained there.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from cnn_core.checkpoints import run_dir
from cnn_core.cli import main
from cnn_core.config import TrainConfig
from cnn_core.runs import api
from cnn_core.runs.store import FINISHED, RunStore
from cnn_core.runs.supervisor import worker_pid
from cnn_core.runs.worker import run_child
from cnn_core.settings import data_roots
from cnn_core.trainer import fit
from tests.conftest import SESSION_DIR, SHARED_DATA, small_fashion_config

COMPARED = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
_REFERENCES: dict[str, list[dict]] = {}
# Datasets whose images are the same in every test (the shared real data; the offline MNIST
# sample) unless the test put data of its own into its data root.
GOLDEN_DATASETS = ("fashion-mnist", "mnist")
# Run columns a copy keeps from its own submit: identity, naming and what it was asked to train.
OWN_COLUMNS = ("id", "name", "tags", "created_at", "config", "executor")
# Columns holding a clock time (seconds since the epoch), of any table keyed by run: a copy moves
# them to its own time. Not ``ended_at``: the epoch fraction where training ended.
CLOCK_COLUMNS = frozenset(
    ("created_at", "started_at", "finished_at", "heartbeat_at", "progress_at", "wall_time")
)


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
    """Submit a tiny Fashion-MNIST run and train it here to completion (or copy the session's
    golden run of the same config into this test's store); returns its id."""
    values = dict(train_size=400, val_size=200, threads=1)
    values.update(overrides)
    run_id = api.submit(
        small_fashion_config(**values), name=name, tags=tags or [], start_worker=False
    )
    key = golden_key(run_id)
    if key in _GOLDEN and _GOLDEN[key].folder.is_dir():
        _GOLDEN[key].copy_to(run_id)
        return run_id
    assert run_here(run_id) == 0
    if key:
        _GOLDEN[key] = Golden.of(run_id, key)
    return run_id


def _shifted(row: dict, delta: float) -> dict:
    """``row`` with its clock times (:data:`CLOCK_COLUMNS`) moved by ``delta`` seconds."""
    return {k: v + delta if v is not None and k in CLOCK_COLUMNS else v for k, v in row.items()}


@dataclass
class Golden:
    """A finished run as trained once this session: its run folder's copy, its row and the rows
    of every table keyed by ``run_id``."""

    folder: Path
    row: dict
    rows: dict[str, list[dict]]

    @classmethod
    def of(cls, run_id: str, key: str) -> Golden:
        store = RunStore()
        tables = [r[0] for r in store.query("SELECT name FROM sqlite_master WHERE type='table'")]
        keyed = [
            t for t in tables if "run_id" in {c[1] for c in store.query(f"PRAGMA table_info({t})")}
        ]
        rows = {
            t: [dict(r) for r in store.query(f"SELECT * FROM {t} WHERE run_id = ?", (run_id,))]
            for t in keyed
        }
        folder = SESSION_DIR / "golden" / hashlib.sha256(key.encode()).hexdigest()[:16]
        shutil.copytree(run_dir(run_id), folder)
        row = dict(store.query("SELECT * FROM runs WHERE id = ?", (run_id,))[0])
        return cls(folder, row, rows)

    def copy_to(self, run_id: str) -> None:
        """Make the submitted (queued) ``run_id`` this finished run: its files and rows, times
        moved by as much as ``run_id`` was created after the golden run."""
        store = RunStore()
        delta = store.get(run_id)["created_at"] - self.row["created_at"]
        target = run_dir(run_id)
        shutil.copytree(self.folder, target)
        for path in target.rglob("*"):
            stat = path.stat()
            os.utime(path, (stat.st_atime + delta, stat.st_mtime + delta))
        row = {k: v for k, v in _shifted(self.row, delta).items() if k not in OWN_COLUMNS}
        with store.transaction() as conn:
            conn.execute(
                f"UPDATE runs SET {', '.join(f'{k} = ?' for k in row)} WHERE id = ?",
                (*row.values(), run_id),
            )
            for table, rows in self.rows.items():
                for r in rows:
                    values = {**_shifted(r, delta), "run_id": run_id}
                    conn.execute(
                        f"INSERT INTO {table} ({', '.join(values)}) "
                        f"VALUES ({', '.join('?' * len(values))})",
                        tuple(values.values()),
                    )


_GOLDEN: dict[str, Golden] = {}


def golden_key(run_id: str) -> str | None:
    """The stored config of ``run_id`` as text when training it gives the same run in every
    test (a shared dataset, no data of the test's own in its data roots); else None."""
    config = RunStore().get(run_id)["config"]
    own = [r for r in data_roots() if r != SHARED_DATA.resolve() and r.is_dir()]
    if config["dataset"] not in GOLDEN_DATASETS or config.get("data_dir"):
        return None
    if any(any(r.iterdir()) for r in own):
        return None
    return json.dumps(config, sort_keys=True)


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

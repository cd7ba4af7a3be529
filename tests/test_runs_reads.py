"""Reads never write: a run whose process is gone is *reported* interrupted by every read
(the Runs page, ``runs list``, ``runs show``) while the store's files stay byte-identical;
recovering it (writing ``interrupted``) happens in ``runs recover``, when a run is resumed and
when a supervisor starts. The sidebar never starts a process; queued runs get a worker once
per app server."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time

import pytest
from streamlit.testing.v1 import AppTest

from cnn_core import runs
from cnn_core.processes import pid_alive
from cnn_core.runs import api
from cnn_core.runs.store import DB_NAME, RunStore
from cnn_core.runs.supervisor import worker_pid
from cnn_core.settings import runs_dir
from tests.conftest import PROJECT, small_fashion_config
from tests.run_fixtures import cli_here, stop_supervisor, wait_for


def _files(run_id: str) -> dict[str, str | None]:
    """The digest of each store file (None: absent) and of every file in the run's folder."""
    paths = [runs_dir() / f"{DB_NAME}{suffix}" for suffix in ("", "-wal", "-shm")]
    paths += sorted((runs_dir() / run_id).rglob("*"))
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None for p in paths
    }


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _die_holding_the_store(run_id: str) -> None:
    """What a training process killed mid-write leaves (it writes progress every second): a
    write-ahead log not yet copied into runs.db and its index, in another process SIGKILLed
    while it holds a connection (the write changes no value)."""
    code = (
        "import os, signal, sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "conn.execute('UPDATE runs SET heartbeat_at = heartbeat_at WHERE id = ?', (sys.argv[2],))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, "-c", code, str(runs_dir() / DB_NAME), run_id])
    assert killed.returncode == -signal.SIGKILL


def test_a_zombie_process_is_not_alive():
    proc = subprocess.Popen(["sleep", "30"])
    try:
        os.kill(proc.pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(proc.pid), 10, "the killed child to read as dead")
        assert proc.poll() is not None  # it was a zombie until reaped just now
    finally:
        proc.kill()
        proc.wait()


def test_a_dead_run_is_reported_interrupted_and_recovered_only_by_a_writer(capsys, monkeypatch):
    monkeypatch.setattr(api, "ensure_worker", lambda *a, **k: None)
    store = RunStore()
    run_id = api.submit(small_fashion_config(), start_worker=False)
    store.update(run_id, status="running", worker_pid=_dead_pid(), heartbeat_at=time.time())

    run = api.get_run(run_id)
    assert run["status"] == "interrupted" and "is gone" in run["error"]
    assert run["actions"] == ["resume", "delete"]
    assert [r["id"] for r in api.list_runs(status="interrupted")] == [run_id]
    assert api.list_runs(status="running") == []
    assert store.get(run_id)["status"] == "running"  # only reported, not written

    code, recovered, _ = cli_here(capsys, "runs", "recover", "--json")
    assert code == 0 and recovered == {"interrupted": [run_id]}
    assert store.get(run_id)["status"] == "interrupted"
    assert cli_here(capsys, "runs", "recover")[1].strip() == "no stale runs"

    store.update(run_id, status="running", worker_pid=_dead_pid())  # dies again
    assert api.resume(run_id)["status"] == "queued"  # resuming recovers it first


def _sidebar_script() -> None:
    from ui.sidebar import render_sidebar

    render_sidebar()


def test_the_sidebar_never_starts_a_worker_and_the_server_does_once(monkeypatch):
    calls = []
    monkeypatch.setattr(api, "ensure_worker", lambda *a, **k: None)
    monkeypatch.setattr(runs, "ensure_worker", lambda *a, **k: calls.append(1))
    api.submit(small_fashion_config(), start_worker=False)  # e.g. left queued by a reboot
    sidebar = AppTest.from_function(_sidebar_script, default_timeout=30)
    for _ in range(3):  # reruns of every page draw the sidebar
        sidebar.run()
        assert not sidebar.exception and len(sidebar.sidebar.get("progress")) == 1
    assert calls == []
    for _ in range(2):  # two sessions of one app server
        AppTest.from_file(str(PROJECT / "app.py"), default_timeout=60).run()
    assert len(calls) == 1


@pytest.mark.slow
def test_a_killed_run_and_supervisor_read_as_interrupted_leaving_the_files_unchanged(capsys):
    run_id = api.submit(small_fashion_config(epochs=2, train_size=6000, val_size=200, threads=1))
    try:
        supervisor = wait_for(worker_pid, 30, "the worker to start")
        run = wait_for(
            lambda: (r := api.get_run(run_id))["progress"]["step"] >= 2 and r, 60, "training"
        )
        for pid in (run["worker_pid"], supervisor):
            os.kill(pid, signal.SIGKILL)
        for pid in (run["worker_pid"], supervisor):
            wait_for(lambda pid=pid: not pid_alive(pid), 10, f"process {pid} to die")
    finally:
        stop_supervisor()
    _die_holding_the_store(run_id)
    before = _files(run_id)
    assert None not in before.values()  # runs.db, -wal and -shm, left as a killed writer left them

    at = AppTest.from_file(str(PROJECT / "app.py"), default_timeout=60)
    at.run()  # through app.py: the sidebar
    assert "No active jobs." in [c.value for c in at.sidebar.caption]
    at.query_params["run"] = run_id
    at.switch_page("pages/runs.py").run()
    at.run()
    assert not at.exception and "interrupted" in at.subheader[0].value
    (listed,) = cli_here(capsys, "runs", "list", "--json")[1]
    shown = cli_here(capsys, "runs", "show", run_id, "--json")[1]
    assert listed["status"] == shown["status"] == "interrupted"
    assert "is gone" in shown["error"]
    assert _files(run_id) == before

    assert cli_here(capsys, "runs", "recover", "--json")[1] == {"interrupted": [run_id]}
    assert RunStore().get(run_id)["status"] == "interrupted"

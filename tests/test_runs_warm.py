"""Runs start warm: the supervisor forks each run's child from itself after importing the
trainer once, so a run starts training without a second Python start-up; the child holds none
of the supervisor's files, so a supervisor killed mid-run is replaced at once while the run
goes on. The app server keeps a supervisor ready while it lives."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cnn_core.config import TrainConfig
from cnn_core.processes import pid_alive
from cnn_core.runs import api, ensure_worker
from cnn_core.runs.supervisor import FORK, supervisor_files, worker_pid
from cnn_core.settings import APP_PID_ENV
from tests.run_fixtures import stop_supervisor, wait_finished, wait_for

LINUX_ONLY = pytest.mark.skipif(not FORK, reason="run children are forked on Linux only")

# about 3 s of training at one thread: long enough to look at the child while it trains
LONG = TrainConfig(
    dataset="fashion-mnist", model="v1", epochs=2, train_size=6000, val_size=200, threads=1
)
SHORT = TrainConfig(
    dataset="fashion-mnist", model="v1", epochs=1, train_size=400, val_size=200, threads=1
)


@pytest.fixture(autouse=True)
def stop_worker():
    yield
    stop_supervisor()


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


def _training_child(run_id: str) -> int:
    """The pid of the run's child once it has stored its first training point."""
    wait_for(lambda: api.steps(run_id), 120, "the first training point")
    pid = api.get_run(run_id)["worker_pid"]
    assert pid and pid_alive(pid)
    return pid


@LINUX_ONLY
def test_a_run_trains_in_a_child_forked_from_the_warm_supervisor():
    run_id = api.submit(LONG, name="forked")
    child = _training_child(run_id)
    supervisor = worker_pid()
    assert supervisor is not None and _parent(child) == supervisor
    # a fork keeps the supervisor's command line: no `worker --run` process was started
    assert _cmdline(child) == _cmdline(supervisor) and "--run" not in _cmdline(child)
    run = wait_finished(run_id)
    assert run["status"] == "completed", run["error"]


@LINUX_ONLY
def test_a_killed_supervisor_is_replaced_while_its_run_trains_on():
    run_id = api.submit(LONG, name="orphan")
    child = _training_child(run_id)
    supervisor = worker_pid()
    assert supervisor is not None
    os.kill(supervisor, signal.SIGKILL)
    wait_for(lambda: not pid_alive(supervisor), 10, "the killed supervisor to end")
    # the child holds no copy of the supervisor's lock: the job reads as ended at once
    assert not supervisor_files().alive() and pid_alive(child)
    queued = api.submit(SHORT, name="after")  # starts a new supervisor at once
    wait_for(lambda: worker_pid() not in (None, supervisor), 30, "a new supervisor")
    wait_for(lambda: not pid_alive(child), 120, "the orphaned run to finish")
    assert wait_finished(run_id)["status"] == "completed"
    assert wait_finished(queued)["status"] == "completed"


def test_the_app_servers_supervisor_stays_ready_while_the_server_lives(monkeypatch):
    server = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )  # stands in for the app server's process
    try:
        monkeypatch.setenv(APP_PID_ENV, str(server.pid))
        assert ensure_worker(idle_exit=0.2) is None  # nothing queued: nothing started
        pid = ensure_worker(idle_exit=0.2, ready=True)
        assert pid is not None
        wait_for(lambda: worker_pid() == pid, 30, "the ready supervisor to take its lock")
        assert _cmdline(pid)[-2:] == ["--stay-while", str(server.pid)]
        run_id = api.submit(SHORT, name="on a ready worker")
        assert wait_finished(run_id)["status"] == "completed"
        assert worker_pid() == pid  # idle far past --idle-exit 0.2, still ready
    finally:
        server.stdin.close()
        server.wait()
    wait_for(lambda: worker_pid() is None, 30, "the supervisor to exit once the server ended")

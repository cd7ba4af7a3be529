"""One job mechanism: runs, sweeps and health checks start, lock, list and stop the same way
(real background processes). A health check started on the Data health page shows in the
sidebar and stops on request; the CLI lists and stops jobs of every kind; a killed job reads
as interrupted without anything being rewritten."""

from __future__ import annotations

import os
import signal

import pytest
from streamlit.testing.v1 import AppTest

from cnn_core import jobs
from cnn_core.config import TrainConfig
from cnn_core.health import jobs as health_jobs
from cnn_core.processes import JobFiles, pid_alive
from tests.conftest import PROJECT
from tests.run_fixtures import cli_here, wait_for
from tests.test_pages_app import open_page

pytestmark = pytest.mark.fashion


def long_check() -> TrainConfig:
    """A check that trains for minutes (3 folds of 20 epochs on 48,000 images): still running
    whenever a test stops or kills it."""
    return TrainConfig(dataset="fashion-mnist", train_size=60_000, val_size=12_000, epochs=20)


def running_check(check_id: str) -> dict:
    """The check once its process has taken over the job and started checking."""
    return wait_for(
        lambda: (s := health_jobs.check_status(check_id))["state"] == "running" and s["pid"] and s,
        120,
        "the check to run",
        0.1,
    )


@pytest.fixture
def stop_checks():
    """After the test, stop any health check still running."""
    yield
    for check in health_jobs.list_checks(active_only=True):
        health_jobs.stop_check(check["id"], wait=10)


def new_session(page: str) -> AppTest:
    """A new browser session opening ``page`` (its first run draws the sidebar)."""
    at = AppTest.from_file(str(PROJECT / "app.py"), default_timeout=90)
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def sidebar_lines(at) -> list[str]:
    return [c.value for c in at.sidebar.caption] + [
        p.proto.text for p in at.sidebar.get("progress")
    ]


def test_a_health_check_started_on_the_page_shows_in_the_sidebar_and_stops(stop_checks):
    at = open_page("pages/health.py")
    at.selectbox(key="dh_dataset").select("fashion-mnist").run()
    at.number_input(key="dh_size").set_value(60_000)
    at.number_input(key="dh_epochs").set_value(20)
    at.button(key="dh_run").click().run()
    check_id = at.session_state["dh_job"][0]
    pid = running_check(check_id)["pid"]

    (job,) = jobs.list_jobs()  # the one call the sidebar makes
    assert (job.kind, job.id, job.state) == ("health", check_id, "running")
    at = new_session("pages/health.py")  # its sidebar lists the check, its page follows it
    assert any("health check · fashion-mnist — " in line for line in sidebar_lines(at))
    assert "Checking in the background" in at.info[0].value

    at.button(key="dh_stop").click().run()
    assert not pid_alive(pid)
    assert health_jobs.check_status(check_id)["state"] == "stopped"
    assert jobs.get_job("health", check_id).state == "stopped" and jobs.list_jobs() == []
    assert "The check stopped" in at.warning[0].value
    assert "No active jobs." in sidebar_lines(new_session("pages/home.py"))


def test_the_cli_starts_lists_and_stops_a_background_check(capsys, stop_checks):
    args = ["--dataset", "fashion-mnist", "--train-size", "60000", "--epochs", "20"]
    code, started, _ = cli_here(capsys, "health", *args, "--background", "--json")
    assert code == 0 and started["kind"] == "health"
    pid = running_check(started["id"])["pid"]
    code, listed, _ = cli_here(capsys, "jobs", "list", "--json")
    assert [(j["kind"], j["id"], j["state"], j["active"]) for j in listed] == [
        ("health", started["id"], "running", True)
    ]
    code, stopped, _ = cli_here(capsys, "jobs", "stop", "health", started["id"], "--json")
    assert code == 0 and stopped["state"] == "stopped" and not stopped["active"]
    assert not pid_alive(pid)
    assert cli_here(capsys, "jobs", "list")[1].strip() == "no active jobs"
    code, _, err = cli_here(capsys, "jobs", "stop", "health", started["id"])
    assert code == 2 and "is stopped: nothing to stop" in err
    code, _, err = cli_here(capsys, "jobs", "show", "health", "../x")
    assert code == 2 and "invalid health check id" in err


def test_a_killed_check_reads_interrupted_and_reading_writes_nothing(stop_checks):
    check_id = health_jobs.start_check(long_check())
    pid = running_check(check_id)["pid"]
    os.kill(pid, signal.SIGKILL)
    folder = health_jobs.checks_dir()
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    status = wait_for(  # its last thread ends (and releases the lock) just after the main one
        lambda: (s := health_jobs.check_status(check_id))["state"] != "running" and s,
        10,
        "the check's process to end",
    )
    assert status["state"] == "interrupted" and "gone" in status["message"]
    assert not pid_alive(pid)
    assert jobs.list_jobs() == []
    (job,) = jobs.list_jobs(active_only=False)
    assert (job.id, job.state) == (check_id, "interrupted")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_a_job_is_alive_from_its_start_and_a_second_start_starts_nothing(isolated_dirs):
    files = JobFiles(isolated_dirs / "runs" / "probe", "job")
    assert not files.alive() and not files.lock.parent.exists()  # asking creates nothing
    proc = files.start(["jobs", "list"])  # a short job: lists, then ends
    try:
        assert files.alive() and files.pid() == proc.pid  # from the start, before it runs
        assert files.start(["jobs", "list"]) is None
    finally:
        proc.wait(60)
    assert not files.alive() and files.pid() is None
    assert "no active jobs" in files.log.read_text()

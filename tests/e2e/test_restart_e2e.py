"""Fault injection with real processes: SIGKILL the app mid-run and start it again — the run
keeps training in its worker and the restarted app shows the same truth."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import PROJECT
from tests.e2e.conftest import assert_no_exception, start_app, wait_for_app
from tests.run_fixtures import wait_for


def progress(env: dict[str, str], run_id: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "cnn_core", "runs", "show", run_id, "--json"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_app_killed_and_restarted_mid_run(app_env, page, tmp_path):
    env = {**app_env, "CNN_LAB_RUNS_DIR": str(tmp_path / "runs")}
    app, url = start_app(env, tmp_path / "app1.log")
    try:
        page.goto(url)
        wait_for_app(page)
        sub = subprocess.run(
            [
                sys.executable,
                "-m",
                "cnn_core",
                "submit",
                "--dataset",
                "fashion-mnist",
                "--epochs",
                "4",
                "--train-size",
                "12000",
                "--val-size",
                "300",
                "--name",
                "survivor",
                "--json",
            ],
            cwd=PROJECT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        run_id = json.loads(sub.stdout.strip().splitlines()[-1])["run_id"]
        # 48,000 images: long enough to be mid-run when the app dies (runs start warm: the
        # ready worker forks them at once, so a few thousand images end within seconds)
        wait_for(lambda: progress(env, run_id)["status"] == "running", 90, "the run to start", 0.5)
        os.kill(app.pid, signal.SIGKILL)  # the app dies; the worker lives in its own session
        app.wait(10)
        before = progress(env, run_id)["progress"]
        position = (before["epoch"], before["step"])

        def trained_on() -> bool:  # the worker keeps training without the app
            after = progress(env, run_id)
            assert after["status"] in ("running", "completed"), after["status"]
            moved = (after["progress"]["epoch"], after["progress"]["step"]) != position
            return moved or after["status"] == "completed"

        wait_for(trained_on, 60, "the worker to keep training after the app died", 0.5)

        app, url = start_app(env, tmp_path / "app2.log")
        page.goto(f"{url}/runs?run={run_id}")
        wait_for_app(page)
        page.get_by_role("heading").filter(has_text="survivor").wait_for(timeout=30_000)
        page.get_by_role("heading").filter(has_text="completed").wait_for(timeout=180_000)
        page.screenshot(path=str(Path(tmp_path) / "after-restart.png"), full_page=True)
        assert_no_exception(page)
        final = progress(env, run_id)
        assert [m["epoch"] for m in final["metrics"]] == [1, 2, 3, 4]
    finally:
        app.kill()

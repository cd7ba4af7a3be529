"""Real browser on a cold server (started as ``make run`` starts it): how long the first Runs
visit and Launch → first chart point take. Printed, not asserted: timings on a shared machine
are noise, so compare them on a quiet one."""

from __future__ import annotations

import time

from tests.e2e.conftest import assert_no_exception, start_app, wait_for_app
from tests.e2e.steps import fill_train_form, launch, train_cli


def test_first_runs_visit_and_launch_on_a_cold_server(app_env, page, tmp_path):
    env = {**app_env, "CNN_LAB_RUNS_DIR": str(tmp_path / "runs")}
    run_id = train_cli(env, "--name", "cold visit")
    app, url = start_app(env, tmp_path / "app.log")
    try:
        started = time.monotonic()
        page.goto(f"{url}/runs?run={run_id}")
        page.get_by_role("heading").filter(has_text="cold visit").wait_for(timeout=120_000)
        shown = time.monotonic() - started
        page.locator(".js-plotly-plot").first.wait_for(timeout=120_000)
        charted = time.monotonic() - started
        assert_no_exception(page)

        page.goto(f"{url}/train")
        wait_for_app(page)
        fill_train_form(page, "fashion-mnist", 3000, 500, 1)
        started = time.monotonic()
        launch(page, "cold launch")
        page.get_by_text("Watch it learn on the Runs page").click()
        page.locator(".js-plotly-plot").first.wait_for(timeout=180_000)
        first_point = time.monotonic() - started
        assert_no_exception(page)
    finally:
        app.terminate()
        app.wait(30)
    print(
        f"cold server: first Runs visit {shown:.1f} s to the run, {charted:.1f} s to its chart; "
        f"Launch → first chart point {first_point:.1f} s"
    )

"""Real browser: launch a tiny run from the Train page and watch it learn on the Runs page."""

from __future__ import annotations

import time

from tests.e2e.conftest import assert_no_exception, wait_for_app
from tests.e2e.steps import fill_train_form, launch


def test_launch_watch_live_curve_until_completed(app_url, page, tmp_path):
    started = time.monotonic()
    page.goto(app_url)
    wait_for_app(page)
    page.get_by_role("heading", name="CNN Lab").wait_for()
    first_page_s = time.monotonic() - started
    page.screenshot(path=str(tmp_path / "home.png"))

    page.goto(f"{app_url}/train")
    wait_for_app(page)
    fill_train_form(page, "fashion-mnist", 3000, 500, 2)
    launch(page, "e2e tiny run")
    page.screenshot(path=str(tmp_path / "train.png"), full_page=True)
    page.get_by_text("Watch it learn on the Runs page").click()

    # live progress while it runs, then a curve, then completed — without reloading the page
    live_rate = page.locator('[data-testid="stMetricLabel"]').filter(has_text="images/s")
    live_rate.first.wait_for(timeout=90_000)
    progress_seen = page.locator('[data-testid="stProgress"]').count() > 0
    page.locator(".js-plotly-plot").first.wait_for(timeout=120_000)
    curve_at = time.monotonic()
    page.get_by_role("heading").filter(has_text="completed").wait_for(timeout=180_000)
    page.screenshot(path=str(tmp_path / "runs.png"), full_page=True)
    assert progress_seen or curve_at - started < 60
    names = page.evaluate(
        "() => document.querySelector('.js-plotly-plot').data.map(t => t.name || '')"
    )
    print("traces", names)
    for metric in ("loss", "accuracy"):  # training steps and validation points of each
        assert any(n.startswith("train") and metric in n for n in names), names
        assert any(n.startswith("val") and metric in n for n in names), names
    assert page.get_by_text("val accuracy").count() >= 1
    assert_no_exception(page)
    assert not page.console_errors, page.console_errors
    print(f"time to first page {first_page_s:.1f}s")

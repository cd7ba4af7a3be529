"""Real browser: two runs trained by the CLI, compared through a shared /compare?runs= link."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.conftest import FASHION_DIR
from tests.e2e.conftest import assert_no_exception, wait_for_app
from tests.e2e.steps import train_cli


def test_shared_link_overlays_both_runs(app_url, app_env, page, tmp_path):
    assert FASHION_DIR.is_dir(), f"real Fashion-MNIST missing at {FASHION_DIR}"
    first = train_cli(app_env, "--name", "e2e v1")
    second = train_cli(app_env, "--name", "e2e v2", "--model", "v2", "--lr", "0.01")

    page.goto(f"{app_url}/compare?runs={first},{second}")
    wait_for_app(page)
    page.get_by_role("heading", name="Compare").wait_for()
    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    names = page.evaluate("() => document.querySelector('.js-plotly-plot').data.map(t => t.name)")
    assert names == ["1. e2e v1", "2. e2e v2"]
    assert first in page.url and second in page.url
    page.get_by_role("link", name="Runs", exact=True).wait_for()  # app.py's navigation ran
    page.screenshot(path=str(tmp_path / "compare-curves.png"))

    page.get_by_role("tab", name="Summary").click()
    page.get_by_text("settings that differ: model, lr").wait_for()
    page.screenshot(path=str(tmp_path / "compare-summary.png"))
    page.get_by_role("tab", name="Test evaluation").click()
    page.get_by_role("button", name="Evaluate 2 runs on the test split").click()
    page.get_by_text("Misclassified images").wait_for(timeout=120_000)
    wait_for_app(page)

    # clicking a confusion cell opens the gallery of that cell
    heatmap = page.locator(".js-plotly-plot:visible").first
    heatmap.scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "compare-confusion.png"))
    heatmap.evaluate(
        "el => { window.clicked = null; el.on('plotly_click', d => window.clicked = d.points[0]); }"
    )
    box = heatmap.locator(".nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.65, box["y"] + box["height"] * 0.35)
    true, predicted = page.evaluate("() => [window.clicked.y, window.clicked.x]")
    cell = page.get_by_role("combobox", name="Confusion cell (true → predicted)")
    expect(cell).to_have_value(re.compile(re.escape(f"{true} → {predicted} (") + r"\d+ images\)"))
    wait_for_app(page)
    page.get_by_text("Misclassified images").scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "compare-gallery.png"))
    assert_no_exception(page)
    assert not page.console_errors, page.console_errors
    print(f"screenshots in {tmp_path}")

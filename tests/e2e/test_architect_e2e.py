"""Real browser: design a small net on the Builder, save it, train it from Train, find it on Compare."""

from __future__ import annotations

import json

from tests.conftest import FASHION_DIR
from tests.e2e.conftest import assert_no_exception, wait_for_app
from tests.e2e.steps import fill_train_form, launch
from tests.test_spec import SMALL

SPEC = {**SMALL, "name": "e2e-net", "description": "a conv block and a linear classifier"}


def metric(page, label: str) -> str:
    box = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    return box.locator('[data-testid="stMetricValue"]').inner_text()


def test_build_save_train_and_compare_a_custom_net(app_url, page, tmp_path):
    assert FASHION_DIR.is_dir(), f"real Fashion-MNIST missing at {FASHION_DIR}"
    page.goto(f"{app_url}/architect")
    wait_for_app(page)
    page.get_by_role("heading", name="Builder").wait_for()
    page.get_by_role("tab", name="JSON").click()
    page.get_by_label("Spec (JSON)").fill(json.dumps(SPEC, indent=1))
    page.get_by_role("button", name="Apply JSON").click()
    wait_for_app(page)
    page.get_by_role("button", name="Save e2e-net").wait_for()
    assert metric(page, "Output") == "10"  # the last layer's shape on a 1×28×28 input
    assert metric(page, "Parameters") == f"{8 * 9 + 8 + 8 * 14 * 14 * 10 + 10:,}"
    flow = page.locator('[data-testid="stDataFrame"]').last
    assert flow.is_visible()
    page.screenshot(path=str(tmp_path / "builder.png"), full_page=True)
    page.get_by_role("button", name="Save e2e-net").click()
    page.get_by_text("Saved e2e-net").wait_for()

    page.goto(f"{app_url}/train")
    wait_for_app(page)
    fill_train_form(page, "fashion-mnist", 400, 200, 1)
    launch(page, "e2e spec run", "e2e-net")
    page.get_by_text("Watch it learn on the Runs page").click()
    page.get_by_role("heading").filter(has_text="completed").wait_for(timeout=180_000)
    run_id = page.url.split("run=")[1].split("&")[0]

    page.goto(f"{app_url}/compare?runs={run_id}")
    wait_for_app(page)
    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    names = page.evaluate("() => document.querySelector('.js-plotly-plot').data.map(t => t.name)")
    assert names == ["1. e2e spec run"]
    page.get_by_role("tab", name="Summary").click()
    page.get_by_text("e2e-net").first.wait_for()
    page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)
    assert_no_exception(page)
    assert not page.console_errors, page.console_errors

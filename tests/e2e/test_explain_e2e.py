"""Real browser: a run trained by the CLI, opened on the Explain page through a Compare-style
link (?run=&split=&index=), with a heavy attribution computed on request."""

from __future__ import annotations

from tests.conftest import FASHION_DIR
from tests.e2e.conftest import assert_no_exception, wait_for_app
from tests.e2e.steps import choose, train_cli
from tests.e2e.steps import settle_images as settle


def test_explain_link_computes_an_attribution(app_url, app_env, page, tmp_path):
    assert FASHION_DIR.is_dir(), f"real Fashion-MNIST missing at {FASHION_DIR}"
    run_id = train_cli(app_env, "--name", "e2e explain")

    # Open the app once first: on a fresh server, the very first script run of the process
    # takes Streamlit's pages/-directory (MPA v1) path and runs the page without app.py.
    page.goto(app_url)
    settle(page)
    page.goto(f"{app_url}/explain?run={run_id}&split=val&index=0")
    wait_for_app(page)
    page.get_by_role("heading", name="Explain").wait_for(timeout=90_000)
    page.get_by_text("val #0 · true class:").wait_for(timeout=60_000)
    settle(page)
    page.get_by_text("Worker:").wait_for()  # app.py's sidebar: the page ran inside the app
    assert "e2e explain" in page.get_by_role("combobox", name="Model", exact=True).input_value()
    page.screenshot(path=str(tmp_path / "explain-feature-maps.png"), full_page=True)

    page.get_by_role("tab", name="Attributions").click()
    page.get_by_text("Saliency for class").wait_for(timeout=60_000)
    choose(page, "Method", "Integrated Gradients")
    page.get_by_role("button", name="Compute Integrated Gradients").click()
    result = page.get_by_text("Integrated Gradients for class")
    result.wait_for(timeout=120_000)
    settle(page)
    panel = page.get_by_role("tabpanel", name="Attributions")
    assert panel.get_by_role("img").count() >= 2  # the input and its heatmap overlay
    assert panel.locator(".js-plotly-plot").count() == 1  # the raw map with its colour bar
    assert page.evaluate("() => [...document.images].every(img => img.naturalWidth > 0)")
    assert page.get_by_role("button", name="Compute Integrated Gradients").count() == 0
    result.scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "explain-attribution.png"))
    assert_no_exception(page)
    assert not page.console_errors, page.console_errors
    print(result.inner_text(), f"— screenshots in {tmp_path}")


def test_class_pickers_name_what_they_hold(app_url, app_env, page):
    """The class filter and the attribution's class read "any class" / "predicted: <the class
    shown above>" after every change of image, never Streamlit's "Choose an option"."""
    run_id = train_cli(app_env, "--name", "e2e classes")
    page.goto(app_url)
    settle(page)
    page.goto(f"{app_url}/explain?run={run_id}&split=val&index=0")
    page.get_by_text("val #0 · true class:").wait_for(timeout=90_000)
    page.get_by_role("tab", name="Attributions").click()
    page.get_by_text("Saliency for class").wait_for(timeout=60_000)
    shown = {}
    for name in ("Bag", "Trouser", "Sneaker", "any class"):
        choose(page, "Class", name)
        settle(page)
        predicted = page.locator('[data-testid="stMetricValue"]').first.inner_text()
        shown[name] = [
            page.get_by_role("combobox", name=label, exact=True).input_value()
            for label in ("Class", "Explain class")
        ]
        assert shown[name] == [name, f"predicted: {predicted}"], shown
    assert_no_exception(page)

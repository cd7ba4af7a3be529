"""Real browser: upload a zip of your own images, train one epoch on it from the Train page,
then open the run's embedding map."""

from __future__ import annotations

from tests.e2e.conftest import assert_no_exception, wait_for_app
from tests.e2e.steps import fill_number
from tests.test_builder import good_zip


def upload_zip(page, app_url: str, name: str, per_class: int) -> None:
    """On Your data, import a two-class zip as dataset ``name`` and wait for the result."""
    page.goto(f"{app_url}/dataset_builder")
    wait_for_app(page)
    page.get_by_role("tab", name="Import a zip").click()
    page.locator("input[type=file]").first.set_input_files(
        files=[
            {"name": f"{name}.zip", "mimeType": "application/zip", "buffer": good_zip(per_class)}
        ]
    )
    # the upload's rerun enables the button; the script may not have started it yet
    page.locator("button:enabled", has_text="Import zip").wait_for(timeout=60_000)
    page.get_by_role("button", name="Import zip").click()
    page.get_by_text(f"Added {2 * per_class} image(s) to {name}").wait_for(timeout=60_000)


def test_upload_a_zip_train_on_it_and_open_the_embedding_map(app_url, page, tmp_path):
    upload_zip(page, app_url, "pets", 20)
    page.screenshot(path=str(tmp_path / "your_data.png"), full_page=True)
    assert_no_exception(page)

    page.get_by_role("button", name="Train on it").click()
    page.get_by_role("heading", name="Train").wait_for(timeout=60_000)
    wait_for_app(page)
    assert page.get_by_label("Data folder (inside the allowed data roots)").input_value() == (
        "datasets/pets"
    )
    fill_number(page, "Epochs", 1)
    page.get_by_role("button", name="Launch training").click()
    page.get_by_text("queued — the background worker").wait_for(timeout=30_000)
    page.get_by_text("Watch it learn on the Runs page").click()
    page.get_by_role("heading").filter(has_text="completed").wait_for(timeout=240_000)

    page.goto(f"{app_url}/embedding_map")
    wait_for_app(page)
    page.locator(".js-plotly-plot").first.wait_for(timeout=120_000)
    wait_for_app(page)
    assert page.get_by_text("val images").count() >= 1
    traces = page.evaluate("() => document.querySelector('.js-plotly-plot').data.length")
    assert traces >= 2  # one trace per class (cat, dog), plus misclassified if any
    page.screenshot(path=str(tmp_path / "embedding_map.png"), full_page=True)
    assert_no_exception(page)
    assert not page.console_errors, page.console_errors


def test_check_the_health_of_an_uploaded_dataset(app_url, page, tmp_path):
    upload_zip(page, app_url, "shapes", 15)
    page.get_by_role("button", name="Check its health").click()
    page.get_by_role("heading", name="Data health").wait_for(timeout=60_000)
    wait_for_app(page)
    assert page.get_by_label("Data folder").input_value() == "datasets/shapes"
    page.get_by_role("button", name="Run health check").click()
    page.get_by_text("Likely label errors", exact=True).wait_for(timeout=240_000)
    page.get_by_text("No likely label errors found.").wait_for(timeout=30_000)  # same rerun
    assert page.get_by_text("No likely label errors found.").count() == 1
    wait_for_app(page)
    page.get_by_role("tab", name="Class balance").click()
    page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
    page.screenshot(path=str(tmp_path / "health.png"), full_page=True)
    assert_no_exception(page)
    assert not page.console_errors, page.console_errors

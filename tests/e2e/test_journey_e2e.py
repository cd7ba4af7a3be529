"""Real browser, one user's whole journey through the app's navigation: Home → Data → Train two
tiny runs → watch the live curve on Runs → Compare them → Draw a digit → Explain that answer →
Faces upload. A screenshot of every page goes to the test's tmp dir; no page shows an exception
and the browser console stays clean. Also measures how long after training starts the first
step point appears on the live chart, and how long after each validation its point does
(printed, not asserted; the run store's times vs the browser)."""

from __future__ import annotations

import time
from pathlib import Path

from PIL import Image
from skimage import data as skdata

from cnn_core.runs.store import DB_NAME, RunStore
from tests.data_fixtures import make_celeba
from tests.e2e.conftest import assert_no_exception, wait_for_app
from tests.e2e.steps import (
    ANSWERS_JS,
    DIGITS,
    choose,
    draw,
    fill_train_form,
    launch,
    settle,
    settle_images,
    train_cli,
)

POINTS_JS = """name => Math.max(0, ...[...document.querySelectorAll('.js-plotly-plot')]
    .flatMap(g => (g.data || []).filter(t => (t.name || '').startsWith(name))
    .map(t => (t.x || []).length)))"""


def go(page, link: str, heading: str) -> None:
    """Follow a navigation link of the sidebar and wait for the page."""
    page.get_by_role("link", name=link, exact=True).click()
    wait_for_app(page)
    page.get_by_role("heading", name=heading).first.wait_for(timeout=60_000)


def shot(page, folder: Path, name: str) -> None:
    assert_no_exception(page)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def chart_latency(page, db: RunStore, run_id: str, epochs: int) -> dict[str, list[float]]:
    """Seconds from training start (the worker's first progress write, at fit start) to the
    first step point on the chart, from that point's write to the chart, and from each
    validation point's write to its marker on the chart."""
    seen: dict[str, float] = {}
    fit_start = None
    deadline = time.monotonic() + 300
    while seen.get(f"val {epochs}") is None and time.monotonic() < deadline:
        if fit_start is None:
            run = db.get(run_id)
            if run["status"] == "running" and run["progress_at"] and run["step"] == 0:
                fit_start = run["progress_at"]
        if page.evaluate(POINTS_JS, "train loss") and "train" not in seen:
            seen["train"] = time.time()
        for k in range(1, page.evaluate(POINTS_JS, "val loss") + 1):
            seen.setdefault(f"val {k}", time.time())
        page.wait_for_timeout(50)
    assert "train" in seen and f"val {epochs}" in seen, f"the chart showed only {sorted(seen)}"
    points = db.point_rows(run_id)
    first = points[0]["wall_time"]
    val = [p["wall_time"] for p in points if p["kind"] == "val"]
    return {
        "training start → first point on the chart": [seen["train"] - fit_start]
        if fit_start
        else [],
        "first point written → chart": [seen["train"] - first],
        "validation written → chart": [seen[f"val {k}"] - val[k - 1] for k in range(1, epochs + 1)],
    }


def test_one_user_goes_through_every_page(app_url, app_env, page, tmp_path):
    root = Path(app_env["CNN_LAB_E2E_ROOT"])
    started = time.monotonic()
    page.goto(app_url)
    wait_for_app(page)
    page.get_by_role("heading", name="CNN Lab").wait_for()
    first_page = time.monotonic() - started
    shot(page, tmp_path, "1-home")

    go(page, "Data", "Data")
    page.locator('[data-testid="stImage"]').first.wait_for(timeout=60_000)  # the sample grid
    shot(page, tmp_path, "2-data")

    go(page, "Train", "Train")
    fill_train_form(page, "fashion-mnist", 3000, 500, 3)
    first = launch(page, "journey v1", "v1 — ")
    second = launch(page, "journey v2", "v2 — ")
    shot(page, tmp_path, "3-train")

    page.get_by_text("Watch it learn on the Runs page").click()  # the second run's live view
    wait_for_app(page)
    latency = chart_latency(page, RunStore(Path(app_env["CNN_LAB_RUNS_DIR"]) / DB_NAME), second, 3)
    page.get_by_role("heading").filter(has_text="completed").wait_for(timeout=120_000)
    shot(page, tmp_path, "4-runs")

    go(page, "Compare", "Compare")
    picker = page.get_by_role("combobox", name="Runs to compare (colours follow this order)")
    for name in ("journey v1", "journey v2"):
        picker.click()
        page.get_by_role("option").filter(has_text=name).first.click()
        wait_for_app(page)
    page.keyboard.press("Escape")
    names_js = "() => (document.querySelector('.js-plotly-plot')?.data || []).map(t => t.name)"
    page.wait_for_function(f"() => ({names_js})().length >= 2", timeout=60_000)  # both drawn
    wait_for_app(page)
    names = page.evaluate(names_js)
    assert names[:2] == ["1. journey v1", "2. journey v2"]
    assert first in page.url and second in page.url
    shot(page, tmp_path, "5-compare")

    go(page, "Draw", "Draw a digit")
    choose(page, "Model", "Demo model (shipped)")
    page.get_by_text("Draw a digit on the pad").wait_for(timeout=60_000)
    time.sleep(0.5)  # let the pad attach its mouse handlers
    draw(page, DIGITS["7"])
    page.wait_for_function(f"() => {ANSWERS_JS}.startsWith('7 ')", timeout=30_000)
    settle(page)
    shot(page, tmp_path, "6-draw")

    page.get_by_role("button", name="Explain this answer").click()
    wait_for_app(page)
    page.get_by_role("heading", name="Explain").wait_for(timeout=60_000)
    page.get_by_text("the drawing (what the model saw)").first.wait_for(timeout=60_000)
    assert "Demo model" in page.get_by_role("combobox", name="Model", exact=True).input_value()
    assert page.get_by_role("radio", name="Drawn digit").is_checked()
    settle_images(page)
    shot(page, tmp_path, "7-explain")

    make_celeba(root / "data", n=200)  # a face model for the Faces page: a tiny smile model
    train_cli(
        app_env,
        *("--dataset", "celeba", "--data-dir", str(root / "data" / "celeba")),
        *("--model", "v3", "--train-size", "100", "--val-size", "40", "--name", "journey smile"),
    )
    go(page, "Faces", "Faces")
    photo = tmp_path / "astronaut.png"
    Image.fromarray(skdata.astronaut()).save(photo)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(photo))
    page.get_by_text("Numbered boxes: the faces found").wait_for(timeout=90_000)
    page.get_by_text("Grad-CAM: where it looked").first.wait_for(timeout=60_000)
    settle_images(page)
    assert page.get_by_text("face 1").count() >= 1
    shot(page, tmp_path, "8-faces")

    assert not page.console_errors, page.console_errors
    print(
        f"time to first page {first_page:.2f} s; "
        + "; ".join(f"{k}: {', '.join(f'{s:.2f} s' for s in v)}" for k, v in latency.items())
        + f"; screenshots in {tmp_path}"
    )

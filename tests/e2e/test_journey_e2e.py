"""Real browser, one user's whole journey through the app's navigation: Home → Data → Train a
run and watch it learn live on Runs, from its first point to completion → Compare it with a
run trained by the CLI → Draw a digit → Explain that answer → Faces upload. The app's launch
path is walked once. A screenshot of every page goes to the test's tmp dir; no page shows an
exception and the browser console stays clean. Also measures how long after training starts
the first step point appears on the live chart, and how long after each validation its point
does (printed, not asserted: the run store's times vs the browser's clock)."""

from __future__ import annotations

import time
from contextlib import suppress
from pathlib import Path

from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
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
    ready_pad,
    settle,
    settle_images,
    train_cli,
)

EPOCHS = 3
# Runs in the page: records (browser clock, seconds) when each thing was first seen on the Runs
# page — the chart's first training point and each validation point, the live progress bar and
# speed, the sidebar's and the snapshot panel's epoch, the "completed" heading.
WATCH_JS = r"""() => {
    const seen = window.__seen = {};
    const points = name => Math.max(0, ...[...document.querySelectorAll('.js-plotly-plot')]
        .flatMap(g => (g.data || []).filter(t => (t.name || '').startsWith(name))
        .map(t => (t.x || []).length)));
    const first = (key, value = Date.now() / 1000) => { if (!(key in seen)) seen[key] = value; };
    const tick = () => {
        const main = document.querySelector('[data-testid="stMain"]')?.innerText || '';
        const side = document.querySelector('[data-testid="stSidebar"]')?.innerText || '';
        const vals = points('val loss');
        if (points('train loss')) { first('train'); first('val points at the first point', vals); }
        for (let k = 1; k <= vals; k++) first('val ' + k);
        if (document.querySelector('[data-testid="stMain"] [data-testid="stProgress"]'))
            first('progress bar');
        if (/images\/s/.test(main) && !/completed/.test(main)) first('live speed');
        for (const m of side.matchAll(/epoch (\d+)\/(\d+)/g)) first('sidebar epoch ' + m[1]);
        for (const m of main.matchAll(/epoch (\d+\.\d+) · [\d,]+ images seen/g))
            first('snapshot epoch ' + m[1]);
        if ([...document.querySelectorAll('h1, h2, h3')].some(h => /completed/.test(h.innerText)))
            first('completed');
    };
    tick();
    window.__watch = setInterval(tick, 20);
}"""


def go(page, link: str, heading: str) -> None:
    """Follow a navigation link of the sidebar and wait for the page."""
    page.get_by_role("link", name=link, exact=True).click()
    wait_for_app(page)
    page.get_by_role("heading", name=heading).first.wait_for(timeout=60_000)


def shot(page, folder: Path, name: str) -> None:
    assert_no_exception(page)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


# what the Runs page shows once the run ended (the chart may draw its last point after the
# "completed" heading: the watch goes on until each is seen or a minute passed)
THE_END = [f"val {EPOCHS}", f"sidebar epoch {EPOCHS}", f"snapshot epoch {EPOCHS}.00"]


def watch_to_completion(page) -> dict[str, float]:
    """Watch the run on the Runs page until it completed and the page shows its end
    (:data:`THE_END`); what was seen when (browser clock)."""
    page.evaluate(WATCH_JS)
    page.wait_for_function("() => 'completed' in window.__seen", timeout=300_000)
    with suppress(PlaywrightTimeoutError):  # the assertions on what was seen say what never showed
        page.wait_for_function(
            "keys => keys.every(k => k in window.__seen)", arg=THE_END, timeout=60_000
        )
    return page.evaluate("() => { clearInterval(window.__watch); return window.__seen; }")


def latency(seen: dict, queued: float, db: RunStore, run_id: str) -> dict[str, list[float]]:
    """Seconds from the run queued to its first step point on the chart, from that point's
    write to the chart, and from each validation point's write to its marker on the chart."""
    points = db.point_rows(run_id)
    val = [p["wall_time"] for p in points if p["kind"] == "val"]
    return {
        "queued → first point on the chart": [seen["train"] - queued],
        "first point written → chart": [seen["train"] - points[0]["wall_time"]],
        "validation written → chart": [seen[f"val {k}"] - val[k - 1] for k in range(1, EPOCHS + 1)],
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

    first = train_cli(app_env, "--name", "journey v1")  # the run to compare with
    go(page, "Train", "Train")
    fill_train_form(page, "fashion-mnist", 3000, 500, EPOCHS)
    second = launch(page, "journey v2", "v2 — ")
    queued = time.time()
    shot(page, tmp_path, "3-train")

    page.get_by_text("Watch it learn on the Runs page").click()  # the run's live view
    wait_for_app(page)
    seen = watch_to_completion(page)
    # watched live from the first training point (before any validation) to completion
    assert seen["val points at the first point"] == 0, seen
    assert {"train", "val 1", f"val {EPOCHS}", "completed"} <= seen.keys(), seen
    assert seen["train"] <= seen["val 1"] <= seen[f"val {EPOCHS}"], seen
    assert {"progress bar", "live speed"} <= seen.keys(), seen  # progress and speed while live
    # the sidebar's and the snapshot panel's epoch reach the end
    assert f"sidebar epoch {EPOCHS}" in seen and f"snapshot epoch {EPOCHS}.00" in seen, seen
    names = page.evaluate(
        "() => document.querySelector('.js-plotly-plot').data.map(t => t.name || '')"
    )
    for metric in ("loss", "accuracy"):  # training steps and validation points of each
        assert any(n.startswith("train") and metric in n for n in names), names
        assert any(n.startswith("val") and metric in n for n in names), names
    assert page.get_by_text("val accuracy").count() >= 1
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
    ready_pad(page)
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
    db = RunStore(Path(app_env["CNN_LAB_RUNS_DIR"]) / DB_NAME)
    print(
        f"time to first page {first_page:.2f} s; "
        + "; ".join(
            f"{k}: {', '.join(f'{s:.2f} s' for s in v)}"
            for k, v in latency(seen, queued, db, second).items()
        )
        + f"; screenshots in {tmp_path}"
    )

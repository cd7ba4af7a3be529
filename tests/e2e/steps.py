"""Steps the browser tests share: form filling, drawing on the pad, waiting for images,
training tiny runs with the CLI in the app's runs folder."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time

from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.conftest import PROJECT
from tests.e2e.conftest import wait_for_app


def choose(page, label: str, option_text: str) -> None:
    """Pick an option of the Streamlit selectbox labelled ``label`` (its list is opened again
    when a rerun closed it before the option showed)."""
    box = page.get_by_role("combobox", name=label, exact=True)
    option = page.get_by_role("option").filter(has_text=option_text).first
    for attempt in range(3):
        wait_for_app(page)
        box.click()
        try:
            option.wait_for(timeout=10_000)
            break
        except PlaywrightTimeoutError:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")
    option.click()
    wait_for_app(page)


def fill_number(page, label: str, value: int) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(str(value))
    field.press("Enter")
    wait_for_app(page)


def fill_train_form(page, dataset: str, train: int, val: int, epochs: int) -> None:
    """Set the Train page's dataset, training / validation sizes and epochs."""
    choose(page, "Dataset", dataset)
    fill_number(page, "Training images (0 = dataset default)", train)
    fill_number(page, "Validation images (0 = default: 1/6 held out)", val)
    fill_number(page, "Epochs", epochs)


QUEUED_JS = """() => [...document.querySelectorAll('[data-testid="stAlertContentSuccess"]')]
    .map(e => e.innerText).find(t => t.includes('queued')) || ''"""


def launch(page, name: str, model: str | None = None) -> str:
    """Launch a run from the Train form (dataset and sizes already set; ``model`` picked by the
    start of its label when given); returns its id."""
    if model:
        choose(page, "Model", model)
    page.get_by_role("textbox", name="Run name").fill(name)
    page.get_by_role("textbox", name="Run name").press("Enter")
    wait_for_app(page)
    before = page.evaluate(QUEUED_JS)
    page.get_by_role("button", name="Launch training").click()
    page.wait_for_function(f"() => !['', {before!r}].includes(({QUEUED_JS})())", timeout=30_000)
    return page.evaluate(QUEUED_JS).split()[1]  # "Run <id> queued — …"


# Strokes in pad pixels (the pad is 320×320), one polyline per stroke.
DIGITS = {
    "7": [[(70, 60), (210, 60), (190, 110), (160, 170), (130, 240)]],
    "1": [[(140, 40), (140, 240)]],
    "4": [[(170, 240), (170, 40), (70, 170), (220, 170)]],
}
ANSWERS_JS = "[...document.querySelectorAll('[data-testid=\"stMetricValue\"]')].map(e => e.innerText).join(' ')"


def answers(page) -> str:
    """The answer and its confidence as shown, e.g. ``"4 100.0%"``."""
    return page.evaluate(f"() => {ANSWERS_JS}")


def settle(page) -> None:
    """Wait for the answer's run to finish, its chart to draw and every image of it to load (a
    media file of an earlier run is gone after the next one: fetching it late would be a
    spurious 404)."""
    settle_images(page)
    page.locator(".js-plotly-plot").first.wait_for()


def clear_pad(page) -> None:
    """Press Clear and wait for the fresh, empty pad (a new one replaces the old)."""
    old_pad = page.locator("canvas.upper-canvas").element_handle()
    page.get_by_role("button", name="Clear").click()
    page.wait_for_function("pad => !pad.isConnected", arg=old_pad, timeout=30_000)
    wait_for_app(page)
    page.get_by_text("Draw a digit on the pad").wait_for(timeout=30_000)


TOOLBAR_SETTLED_JS = """pad => {
    const bar = pad.closest('.dc-root')?.querySelector('.dc-toolbar');
    return !!bar && getComputedStyle(bar).opacity === '1' && bar.getAnimations().length === 0;
}"""


def ready_pad(page, timeout_s: float = 60.0) -> None:
    """Rest the mouse over the middle of the pad until it is ready for a stroke: it shows its
    drawing cursor (fabric's mouse handlers attached, drawing mode on) and its toolbar has
    finished sliding up above it. The pad's box is read again on every move: the page's layout
    may still shift it (images above it loading)."""
    pad = page.locator("canvas.upper-canvas")
    pad.scroll_into_view_if_needed()
    deadline = time.monotonic() + timeout_s
    k = 0
    while pad.evaluate("c => c.style.cursor") != "crosshair":
        if time.monotonic() > deadline:
            raise AssertionError("the pad never showed its drawing cursor")
        box = pad.bounding_box()
        if box is not None:
            page.mouse.move(box["x"] + box["width"] / 2 + k % 2, box["y"] + box["height"] / 2)
        k += 1
    page.wait_for_function(TOOLBAR_SETTLED_JS, arg=pad.element_handle(), timeout=30_000)


def draw(page, strokes: list[list[tuple[int, int]]]) -> None:
    """Drag the mouse along each polyline on the pad's drawing layer (fabric's upper canvas)."""
    box = page.locator("canvas.upper-canvas").bounding_box()
    for points in strokes:
        page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
        page.mouse.down()
        for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
            for k in range(1, 11):
                page.mouse.move(
                    box["x"] + x0 + (x1 - x0) * k / 10, box["y"] + y0 + (y1 - y0) * k / 10
                )
        page.mouse.up()


def settle_images(page) -> None:
    """Wait for the script run to finish and for every image of it to load."""
    wait_for_app(page)
    page.wait_for_function("() => [...document.images].every(img => img.complete)")


TINY = shlex.split(
    "--dataset fashion-mnist --epochs 1 --train-size 400 --val-size 200 --threads 1 --quiet --json"
)


def train_cli(app_env: dict[str, str], *args: str) -> str:
    """Train one tiny run in the app's runs folder with ``python -m cnn_core train``; its id."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "cnn_core",
            "train",
            *TINY,
            *args,
            "--runs-dir",
            app_env["CNN_LAB_RUNS_DIR"],
        ],
        cwd=PROJECT,
        env=app_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["run_id"]

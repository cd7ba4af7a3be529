"""Real browser: the Convolution page — change padding and stride, read the output size,
step the output-position slider, and reopen the set-up from its URL."""

from __future__ import annotations

import contextlib
import re

from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.e2e.conftest import assert_no_exception, wait_for_app
from tests.e2e.steps import fill_number
from tests.e2e.steps import settle_images as settle

GONE_JS = "text => !document.body.innerText.includes(text)"


def size_line(page) -> str:
    return page.get_by_text("Output size ⌊").inner_text()


def equation(page) -> str:
    return page.get_by_text(re.compile(r"^y\[\d+,\d+\] = ")).inner_text()


def until_in_url(page, text: str, action) -> None:
    """Do ``action`` until the URL holds ``text`` (a click during a rerun may be dropped)."""
    for _ in range(3):
        action()
        wait_for_app(page)
        if text in page.url:
            return
    page.wait_for_url(re.compile(re.escape(text)))
    wait_for_app(page)


def shown_step(page, columns: int) -> int:
    """The output position the page shows (row-major), read from its equation."""
    row, col = re.match(r"y\[(\d+),(\d+)\]", equation(page)).groups()
    return int(row) * columns + int(col)


def step_slider_to(page, target: int, columns: int = 3) -> None:
    """Press the step slider's arrow keys until the page shows position ``target`` (a key
    pressed while the app reruns may be dropped, so each press is checked on the page)."""
    slider = page.get_by_role("slider").first
    for _ in range(4 * target + 8):
        current = shown_step(page, columns)
        if current == target:
            page.wait_for_url(re.compile(rf"step={target}(&|$)"))
            return
        before = equation(page)
        slider.focus()
        slider.press("ArrowRight" if current < target else "ArrowLeft")
        wait_for_app(page)
        # the answer is drawn after the rerun ends: wait until it changes (or, the press
        # dropped, press again)
        with contextlib.suppress(PlaywrightTimeoutError):
            page.wait_for_function(GONE_JS, arg=before, timeout=5_000)
    raise AssertionError(f"the step slider did not reach {target}: {page.url}")


def test_padding_stride_and_the_step_slider(app_url, page, tmp_path):
    page.goto(app_url)  # a fresh server's first run takes the pages/ path: open the app first
    settle(page)
    page.goto(f"{app_url}/learn_convolution")
    page.get_by_role("heading", name="Convolution, step by step").wait_for(timeout=90_000)
    settle(page)
    assert "H: ⌊(6 + 2·0 − 1·(3−1) − 1) / 1⌋ + 1 = 4" in size_line(page)

    padding = page.get_by_role("radiogroup", name="Padding").get_by_text("full", exact=True)
    until_in_url(page, "padding=full", padding.click)
    until_in_url(page, "stride=3", lambda: fill_number(page, "Stride s", 3))
    assert "H: ⌊(6 + 2·2 − 1·(3−1) − 1) / 3⌋ + 1 = 3" in size_line(page)

    assert equation(page).startswith("y[0,0] = ")
    step_slider_to(page, 4)  # 3×3 outputs: position 4 is the centre, y[1,1]
    centre = equation(page)
    assert centre.startswith("y[1,1] = ")
    page.screenshot(path=str(tmp_path / "learn-convolution.png"), full_page=True)

    page.goto(page.url)  # the shared link reopens the same set-up
    page.get_by_text(re.compile(r"^y\[1,1\] = ")).wait_for(timeout=60_000)
    settle(page)
    assert "/ 3⌋ + 1 = 3" in size_line(page) and equation(page) == centre
    assert_no_exception(page)
    assert not page.console_errors, page.console_errors
    print(size_line(page), "|", centre)


def test_a_layer_by_hand_and_the_optimizer_walks_render(app_url, page, tmp_path):
    page.goto(app_url)
    settle(page)
    page.goto(f"{app_url}/learn_layer?run=demo&layer=conv2&channel=3")
    page.get_by_text("Max |by hand − layer|").wait_for(timeout=180_000)
    settle(page)
    difference = page.locator('[data-testid="stMetricValue"]').first.inner_text()
    assert float(difference) < 1e-4, difference
    page.locator(".js-plotly-plot").nth(5).wait_for()  # X, W, X⋆W, Z, A by hand, the layer's A
    page.screenshot(path=str(tmp_path / "learn-layer.png"), full_page=True)

    page.goto(f"{app_url}/learn_training?view=Optimizers&surface=Himmelblau&methods=SGD,Adam")
    page.get_by_role("heading", name="Losses, optimizers, regularization").wait_for(timeout=60_000)
    settle(page)
    gap = page.get_by_text("torch.optim.Adam on the same problem")
    gap.wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    assert float(gap.inner_text().split("= ")[-1].rstrip(".")) < 1e-9
    page.screenshot(path=str(tmp_path / "learn-optimizers.png"), full_page=True)
    assert_no_exception(page)
    assert not page.console_errors, page.console_errors

"""Real browser: draw digits with the mouse on the Draw page's pad and read the answers."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import assert_no_exception, wait_for_app

pytestmark = pytest.mark.e2e

# Strokes in pad pixels (the pad is 280×280), one polyline per stroke.
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
    wait_for_app(page)
    page.locator(".js-plotly-plot").first.wait_for()
    page.wait_for_function("() => [...document.images].every(img => img.complete)")


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


def test_draw_digits_and_see_the_answers(app_url, page, tmp_path):
    page.goto(app_url)
    wait_for_app(page)
    page.get_by_role("link", name="Draw", exact=True).click()  # once app.py's navigation is up
    wait_for_app(page)
    # other e2e tests may have left digit runs in the shared app: answer with the demo model
    model = page.get_by_role("combobox", name="Model", exact=True)
    model.wait_for(timeout=60_000)
    if "Demo model (shipped)" not in model.input_value():
        model.click()
        page.get_by_role("option").filter(has_text="Demo model (shipped)").first.click()
        wait_for_app(page)
    page.get_by_text("Demo model (shipped)").first.wait_for(timeout=60_000)
    page.get_by_text("Draw a digit on the pad").wait_for(timeout=60_000)
    latencies = {}
    for digit, strokes in DIGITS.items():
        old_pad = page.locator("canvas.upper-canvas").element_handle()
        page.get_by_role("button", name="Clear").click()
        page.wait_for_function("pad => !pad.isConnected", arg=old_pad, timeout=30_000)
        wait_for_app(page)
        page.get_by_text("Draw a digit on the pad").wait_for(timeout=30_000)
        time.sleep(0.5)  # let the new pad attach its mouse handlers
        draw(page, strokes)
        started = time.monotonic()
        page.wait_for_function(f"() => {ANSWERS_JS}.startsWith({digit!r} + ' ')", timeout=30_000)
        latencies[digit] = time.monotonic() - started
        settle(page)
        page.screenshot(path=str(tmp_path / f"draw-{digit}.png"))
    assert not page.console_errors, page.console_errors
    # the pad's own toolbar: undo the last stroke and the previous answer comes back exactly
    before = answers(page)
    draw(page, [[(40, 255), (240, 255)]])
    page.wait_for_function(f"() => {ANSWERS_JS} !== {before!r}", timeout=30_000)
    settle(page)
    page.locator("canvas.upper-canvas").hover()
    page.get_by_role("button", name="Undo").click()
    page.wait_for_function(f"() => {ANSWERS_JS} === {before!r}", timeout=30_000)
    settle(page)
    page.screenshot(path=str(tmp_path / "draw-undone.png"))
    assert page.get_by_text("28×28").count() >= 1  # the preprocessing steps
    assert_no_exception(page)
    # Streamlit may fetch the media of a picture shown again right after another one (the
    # undone steps) once before it is served again (404, "Image source error"); the pictures
    # must still all be there in the end.
    others = [e for e in page.console_errors if "/media/" not in e]
    assert not others, others
    assert page.evaluate("() => [...document.images].every(img => img.naturalWidth > 0)")
    print("mouse-up to answer (s):", {d: round(s, 2) for d, s in latencies.items()})

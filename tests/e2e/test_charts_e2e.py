"""Real browser: every class of a confusion matrix or class-balance chart is labelled, and
plotly's toolbar (top right, shown on hover) covers no title, legend entry, label or cell."""

from __future__ import annotations

from tests.e2e.conftest import assert_no_exception, wait_for_app
from tests.e2e.steps import settle_images as settle
from tests.e2e.steps import train_cli

# Texts of a chart (titles, legend entries, tick labels, cell numbers) under its toolbar.
COVERED_JS = """plot => {
    const bar = plot.querySelector('.modebar').getBoundingClientRect();
    return [...plot.querySelectorAll('svg text')]
        .filter(t => !t.closest('.hoverlayer') && t.textContent.trim())
        .filter(t => {
            const r = t.getBoundingClientRect();
            return r.width > 0 && r.left < bar.right && r.right > bar.left
                && r.top < bar.bottom && r.bottom > bar.top;
        })
        .map(t => t.textContent);
}"""


# The chart's toolbar has faded in (plotly shows it on hover, with an opacity transition).
SHOWN_JS = """plot => {
    const bar = plot.querySelector('.modebar');
    return !!bar && getComputedStyle(bar).opacity === '1' && bar.getAnimations().length === 0;
}"""


def chart_texts(page) -> list[dict]:
    """For every chart on the page (each hovered, so its toolbar shows): what it covers and its
    x tick labels."""
    found = []
    for plot in page.locator(".js-plotly-plot").all():
        plot.scroll_into_view_if_needed()
        plot.hover()
        plot.locator(".modebar").wait_for()
        page.wait_for_function(SHOWN_JS, arg=plot.element_handle(), timeout=10_000)
        found.append(
            {
                "covered": plot.evaluate(COVERED_JS),
                "xticks": plot.evaluate(
                    "p => [...p.querySelectorAll('.xtick text')].map(t => t.textContent)"
                ),
            }
        )
    return found


def test_toolbar_covers_nothing_and_every_class_is_labelled(app_url, app_env, page):
    run_id = train_cli(app_env, "--name", "e2e charts", "--dataset", "mnist")
    page.goto(app_url)
    settle(page)
    page.goto(f"{app_url}/runs?run={run_id}")
    wait_for_app(page)
    page.get_by_text("fixed validation images").wait_for(timeout=90_000)
    page.locator(".js-plotly-plot").nth(1).wait_for(timeout=60_000)
    settle(page)
    charts = chart_texts(page)
    assert len(charts) >= 2, charts  # the step curves and the confusion matrix
    assert all(not c["covered"] for c in charts), charts
    digits = [str(d) for d in range(10)]
    assert digits in [c["xticks"] for c in charts], charts  # the confusion matrix

    page.goto(f"{app_url}/data")
    wait_for_app(page)
    page.locator(".js-plotly-plot").first.wait_for(timeout=90_000)
    settle(page)
    charts = chart_texts(page)
    assert all(not c["covered"] for c in charts), charts
    assert charts[0]["xticks"] == digits, charts  # class balance of the digits
    assert_no_exception(page)

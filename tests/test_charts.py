"""Chart builders of ui/charts.py that pages share."""

from __future__ import annotations

from ui.charts import probability_bars


def test_probability_bars_label_every_class_even_at_zero():
    """Labels sit outside the bars (inside, plotly drops those of bars too short to hold them),
    and the axis leaves room for "100.0%" beyond the longest bar."""
    fig = probability_bars(["cat", "dog", "bird"], [1.0, 0.0, 0.0])
    bar = fig.data[0]
    assert list(bar.text) == ["100.0%", "0.0%", "0.0%"]
    assert bar.textposition == "outside" and bar.cliponaxis is False
    assert fig.layout.xaxis.range[1] > 1.1

"""Chart builders of ui/charts.py that pages share."""

from __future__ import annotations

from ui.charts import (
    TITLE_PX,
    TOOLBAR_PX,
    class_balance,
    confusion_figure,
    learning_curves,
    probability_bars,
    step_curves,
)


def test_probability_bars_label_every_class_even_at_zero():
    """Labels sit outside the bars (inside, plotly drops those of bars too short to hold them),
    and the axis leaves room for "100.0%" beyond the longest bar."""
    fig = probability_bars(["cat", "dog", "bird"], [1.0, 0.0, 0.0])
    bar = fig.data[0]
    assert list(bar.text) == ["100.0%", "0.0%", "0.0%"]
    assert bar.textposition == "outside" and bar.cliponaxis is False
    assert fig.layout.xaxis.range[1] > 1.1


def test_a_confusion_matrix_and_class_balance_label_every_digit():
    """Digit names "0"-"9" made plotly draw a numeric axis labelled 0, 2, 4 … (or 0, 5)."""
    digits = [str(d) for d in range(10)]
    confusion = [[int(t == p) for p in range(10)] for t in range(10)]
    for fig in (
        confusion_figure(confusion, digits),
        class_balance(digits, {"train": list(range(10))}),
    ):
        assert fig.layout.xaxis.type == "category"
        assert list(fig.layout.xaxis.tickvals) == digits == list(fig.layout.xaxis.ticktext)
    normalised = confusion_figure([[3, 1], [0, 2]], ["a", "b"], normalised=True)
    assert [list(row) for row in normalised.data[0].text] == [["75%", "25%"], ["0%", "100%"]]


def test_charts_leave_the_toolbar_band_free_and_lay_legends_under_the_axes():
    """plotly's toolbar (top right, on hover) covered the accuracy title, the first legend entry
    and a confusion matrix's first row: every chart keeps the top band free."""
    history = [
        {"epoch": 1, "train_loss": 1.0, "val_loss": 0.9, "train_accuracy": 0.6, "val_accuracy": 0.7}
    ]
    steps = [
        {"kind": "train", "step": 1, "images_seen": 64, "train_loss": 1.0, "train_accuracy": 0.5},
        {"kind": "val", "step": 1, "images_seen": 64, "val_loss": 0.9, "val_accuracy": 0.6},
    ]
    titled = (learning_curves(history), step_curves(steps))
    plain = (confusion_figure([[1]], ["a"]), class_balance(["a"], {"train": [1]}))
    for fig in titled:
        assert fig.layout.margin.t == TOOLBAR_PX + TITLE_PX
    for fig in plain:
        assert fig.layout.margin.t == TOOLBAR_PX
    for fig in (*titled, plain[1]):
        assert fig.layout.legend.orientation == "h" and fig.layout.legend.y < 0

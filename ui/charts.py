"""Plotly figures built from plain data (histories, counts, probabilities)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cnn_core.formats import value_text
from cnn_core.scoring import smoothed_loss_floor

PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


TOOLBAR_PX = 32  # the band at a chart's top where plotly's toolbar appears on hover
TITLE_PX = 26  # room for a title (or subplot titles) between that band and the plot
AXIS_PX = 62  # from the plot's bottom edge to under its x tick labels and axis title


def frame(
    fig: go.Figure,
    height: int,
    *,
    bottom: int = 10,
    left: int = 10,
    right: int = 10,
    legend: bool = True,
) -> go.Figure:
    """The layout every chart follows, so plotly's toolbar (top right, on hover) covers no
    title, legend entry or data: the top band is left to the toolbar, a title or subplot titles
    sit under it just above the plot, and the legend (``legend``) lies flat under the x axis."""
    titled = bool(fig.layout.title.text) or any(
        a.yref == "paper" and a.y == 1
        for a in fig.layout.annotations  # subplot titles
    )
    top = TOOLBAR_PX + (TITLE_PX if titled else 0)
    fig.update_layout(height=height, margin={"t": top, "b": bottom, "l": left, "r": right})
    if fig.layout.title.text:
        fig.update_layout(
            title={"x": 0, "xref": "paper", "y": 1, "yref": "paper", "yanchor": "bottom"}
        )
    if legend:
        below = -AXIS_PX / max(1, height - top - bottom)  # the legend's top, in plot heights
        fig.update_layout(legend={"orientation": "h", "x": 0, "y": below, "yanchor": "top"})
    return fig


def class_axis(class_names: Sequence[Any]) -> dict[str, Any]:
    """An axis of classes with every class labelled: a category axis (digit names "0"-"9"
    would make a numeric one, labelled every other class) with one tick per class."""
    names = [str(n) for n in class_names]
    return {"type": "category", "tickmode": "array", "tickvals": names, "ticktext": names}


def run_colour(index: int) -> str:
    """The colour of the index-th run, the same in every chart."""
    return PALETTE[index % len(PALETTE)]


CURVE_KEYS = ("epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy")


def learning_curves(history: Sequence[dict[str, Any]], title: str = "") -> go.Figure:
    """Loss and accuracy per epoch, train vs validation, side by side."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"))
    epochs = [m["epoch"] for m in history]
    for col, metric in ((1, "loss"), (2, "accuracy")):
        for split, dash in (("train", "dot"), ("val", "solid")):
            key = f"{split}_{metric}"
            fig.add_trace(
                go.Scatter(
                    x=epochs,
                    y=[m.get(key) for m in history],
                    name=f"{split} {metric}",
                    mode="lines+markers",
                    line={"dash": dash, "color": run_colour(col - 1)},
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(title_text="epoch", dtick=1)
    fig.update_layout(title=title or None)
    return frame(fig, 340)


def loss_gap_note(config: dict[str, Any], num_classes: int | None) -> str | None:
    """Why a run's training loss sits above its validation loss, read from its config (label
    smoothing, augmentation) — for a caption where both curves are drawn; None when neither."""
    causes = []
    if smoothing := config.get("label_smoothing"):
        floor = (
            f"cannot fall below {smoothed_loss_floor(num_classes, smoothing):.2f}"
            if num_classes
            else "stays above 0 even for a perfect model"
        )
        causes.append(
            f"label smoothing {value_text(smoothing)} trains on softened targets, so the "
            f"training loss {floor} (validation scores the true labels)"
        )
    if config.get("augment"):
        causes.append("augmentation makes the training images harder than the validation ones")
    return f"Training loss sits above validation loss: {'; '.join(causes)}." if causes else None


def class_balance(class_names: Sequence[str], counts: dict[str, Sequence[int]]) -> go.Figure:
    """Grouped bars: images per class for each split."""
    fig = go.Figure(
        [go.Bar(name=split, x=list(class_names), y=list(c)) for split, c in counts.items()]
    )
    fig.update_layout(barmode="group", yaxis_title="images", xaxis=class_axis(class_names))
    return frame(fig, 320)


def probability_bars(
    class_names: Sequence[str], probs: Sequence[float], title: str = ""
) -> go.Figure:
    """Horizontal bars of class probabilities, the winner highlighted."""
    best = max(range(len(probs)), key=probs.__getitem__) if probs else -1
    colours = [run_colour(2) if i == best else "#b0b0b0" for i in range(len(probs))]
    fig = go.Figure(
        go.Bar(
            x=list(probs),
            y=list(class_names),
            orientation="h",
            marker_color=colours,
            text=[f"{p:.1%}" for p in probs],
            textposition="outside",  # "auto" hid the labels of bars too short to hold them
            cliponaxis=False,
        )
    )
    fig.update_layout(
        height=max(160, 26 * len(probs)),
        margin={"t": 30 if title else 5, "b": 5, "l": 5, "r": 5},
        xaxis={"range": [0, 1.18], "tickformat": ".0%", "tickvals": [0, 0.25, 0.5, 0.75, 1]},
        yaxis={"autorange": "reversed"},
        title=title or None,
    )
    return fig


# ---- step series ---------------------------------------------------------------------------
STEP_AXES = {
    "images_seen": "images seen",
    "step": "step",
    "epoch_fraction": "epoch",
    "wall_s": "wall time (s)",
}
MAX_DRAWN = 1500  # points per line; longer series are thinned for drawing, never in storage


def thin(points: Sequence[Any], limit: int | None = None) -> list[Any]:
    """At most ``limit`` (default ``MAX_DRAWN``) evenly spaced items, first and last kept —
    for drawing only."""
    limit = limit or MAX_DRAWN
    n = len(points)
    if n <= limit:
        return list(points)
    return [points[round(i * (n - 1) / (limit - 1))] for i in range(limit)]


def step_x(steps: Sequence[dict[str, Any]], x_key: str) -> list[float]:
    """The x of every point on ``x_key`` (wall time counts from the run's first point)."""
    if x_key != "wall_s":
        return [p[x_key] for p in steps]
    start = steps[0]["wall_time"] if steps else 0.0
    return [p["wall_time"] - start for p in steps]


def step_curves(
    steps: Sequence[dict[str, Any]],
    x_key: str = "images_seen",
    weight: float = 0.6,
    target_step: int | None = None,
) -> go.Figure:
    """Loss and accuracy over the run: training points EMA-smoothed by ``weight`` with the
    raw curve as a faint shadow, validation points as markers, and a dotted line where the
    target accuracy was reached (``target_step``, when given)."""
    from cnn_core.compare import smooth

    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"))
    placed = list(zip(step_x(steps, x_key), steps, strict=True))
    for col, metric in ((1, "loss"), (2, "accuracy")):
        train = [(x, p[f"train_{metric}"]) for x, p in placed if p["kind"] == "train"]
        val = [(x, p[f"val_{metric}"]) for x, p in placed if p["kind"] == "val"]
        ys = smooth([y for _, y in train], weight)
        smoothed = list(zip([x for x, _ in train], ys, strict=True))
        colour = run_colour(col - 1)
        lines = [(f"train {metric}", smoothed, 1.0)]
        if weight > 0:
            lines.insert(0, (f"train {metric} (raw)", train, 0.25))
        for name, pts, opacity in lines:
            pts = thin(pts)
            fig.add_trace(
                go.Scatter(
                    x=[x for x, _ in pts],
                    y=[y for _, y in pts],
                    name=name,
                    mode="lines",
                    opacity=opacity,
                    line={"color": colour, "width": 1 if opacity < 1 else 2},
                    showlegend=opacity == 1.0,
                ),
                row=1,
                col=col,
            )
        fig.add_trace(
            go.Scatter(
                x=[x for x, _ in val],
                y=[y for _, y in val],
                name=f"val {metric}",
                mode="lines+markers",
                line={"color": run_colour(3), "dash": "dot"},
                marker={"size": 7},
            ),
            row=1,
            col=col,
        )
    hit = [x for x, p in placed if p["kind"] == "val" and p["step"] == target_step]
    if hit:
        fig.add_vline(
            x=hit[0], line={"dash": "dot", "color": run_colour(2)}, annotation_text="target"
        )
    fig.update_yaxes(tickformat=".0%", row=1, col=2)
    fig.update_xaxes(title_text=STEP_AXES[x_key])
    return frame(fig, 380)


def confusion_figure(
    confusion: Sequence[Sequence[int]], class_names: Sequence[str], normalised: bool = False
) -> go.Figure:
    """A confusion matrix (rows = true class), every class labelled, each cell annotated with its
    count or, ``normalised``, its share of the true class."""
    names = [str(n) for n in class_names]
    z: Sequence[Sequence[float]] = confusion
    if normalised:
        z = [[n / max(1, sum(row)) for n in row] for row in confusion]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=names,
            y=names,
            text=[[f"{v:.0%}" if normalised else str(v) for v in row] for row in z],
            texttemplate="%{text}",
            colorscale="Blues",
            showscale=False,
            hovertemplate="true %{y}<br>predicted %{x}<br>%{text}<extra></extra>",
        )
    )
    fig.update_layout(
        xaxis={**class_axis(names), "title": "predicted", "tickangle": -45},
        yaxis={**class_axis(names), "title": "true", "autorange": "reversed"},
    )
    return frame(fig, 400, legend=False)

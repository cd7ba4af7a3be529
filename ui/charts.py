"""Plotly figures built from plain data (histories, counts, probabilities)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

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
    fig.update_layout(height=320, margin={"t": 40, "b": 10, "l": 10, "r": 10}, title=title or None)
    return fig


def class_balance(class_names: Sequence[str], counts: dict[str, Sequence[int]]) -> go.Figure:
    """Grouped bars: images per class for each split."""
    fig = go.Figure(
        [go.Bar(name=split, x=list(class_names), y=list(c)) for split, c in counts.items()]
    )
    fig.update_layout(
        barmode="group",
        height=300,
        margin={"t": 20, "b": 10, "l": 10, "r": 10},
        yaxis_title="images",
    )
    return fig


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
            textposition="auto",
        )
    )
    fig.update_layout(
        height=max(160, 26 * len(probs)),
        margin={"t": 30 if title else 5, "b": 5, "l": 5, "r": 5},
        xaxis={"range": [0, 1], "tickformat": ".0%"},
        yaxis={"autorange": "reversed"},
        title=title or None,
    )
    return fig

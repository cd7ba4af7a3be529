"""A diagram of any network: one block per layer, sized by its output shape (Plotly, offline).

A feature map ``C×H×W`` is drawn as a box whose height follows its side ``H`` (relative to the
input) and whose width grows with log2 of its channels; a flat vector is a thin bar whose
height grows with log10 of its length. Each block is labelled with its name and shape, with
parameters and FLOPs above the blocks that have them (all of it in the hover too).
"""

from __future__ import annotations

import json
import math
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from cnn_core.models import create_model
from cnn_core.models.layers import LAYER_TYPES
from cnn_core.models.summary import diagram_blocks

INPUT = "#9e9e9e"  # the input block; a layer's colour and legend entry are its type's
GAP = 0.3


def _colour(kind: str) -> str:
    return LAYER_TYPES[kind].colour if kind in LAYER_TYPES else INPUT


def _legend(blocks: list[dict[str, Any]]) -> list[go.Scatter]:
    """One legend entry per group of layer types drawn (conv, pooling, …), in drawing order."""
    groups = {
        LAYER_TYPES[b["type"]].group: _colour(b["type"]) for b in blocks if b["type"] in LAYER_TYPES
    }
    return [
        go.Scatter(
            x=[None],
            y=[None],
            mode="markers",
            marker={"size": 10, "symbol": "square", "color": colour},
            name=group,
        )
        for group, colour in groups.items()
    ]


def _count(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _size(shape: list[int], input_side: int) -> tuple[float, float]:
    """(width, height) of a block for ``shape``."""
    if len(shape) == 3:
        return 0.35 + 0.12 * math.log2(max(shape[0], 1)), max(0.08, shape[1] / input_side)
    return 0.22, min(1.0, 0.12 + 0.18 * math.log10(max(shape[0], 1)))


def network_figure(blocks: list[dict[str, Any]]) -> go.Figure:
    """The diagram of ``diagram_blocks`` output (input block first)."""
    input_side = max(blocks[0]["shape"][1] if len(blocks[0]["shape"]) == 3 else 1, 1)
    x = 0.0
    rects, notes, centres, hovers = [], [], [], []
    for block in blocks:
        width, height = _size(block["shape"], input_side)
        shape = "×".join(map(str, block["shape"]))
        rects.append(
            {
                "type": "rect",
                "x0": x,
                "x1": x + width,
                "y0": -height / 2,
                "y1": height / 2,
                "fillcolor": _colour(block["type"]),
                "line": {"color": "#333", "width": 1},
                "opacity": 0.85,
            }
        )
        centre = x + width / 2
        label = {"x": centre, "showarrow": False, "font": {"size": 10}}
        notes.append({**label, "y": -0.53, "yanchor": "top", "text": f"{block['name']}<br>{shape}"})
        costs = [f"{_count(block[k])}{u}" for k, u in (("params", "p"), ("flops", "F")) if block[k]]
        if costs:
            notes.append({**label, "y": 0.53, "yanchor": "bottom", "text": "<br>".join(costs)})
        centres.append(centre)
        hovers.append(
            f"<b>{block['name']}</b> ({block['type']})<br>output {shape}<br>"
            f"{block['params']:,} params<br>{block['flops']:,} FLOPs"
        )
        x += width + GAP
    hover = go.Scatter(
        x=centres,
        y=[0] * len(centres),
        mode="markers",
        marker={"size": 18, "opacity": 0},
        hovertext=hovers,
        hoverinfo="text",
        showlegend=False,
    )
    # one layout of plain dicts: far faster than one add_shape / add_annotation per block
    layout = {
        "shapes": rects,
        "annotations": notes,
        "height": 330,
        "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
        "legend": {
            "orientation": "h",
            "y": -0.02,
            "yanchor": "top",
            "font": {"size": 10},
            "itemclick": False,
            "itemdoubleclick": False,
        },
        "xaxis": {"visible": False, "range": [-0.2, x]},
        "yaxis": {"visible": False, "range": [-0.85, 0.8]},
        "plot_bgcolor": "rgba(0,0,0,0)",
    }
    return go.Figure(data=[hover, *_legend(blocks)], layout=layout)


def show_diagram(blocks: list[dict[str, Any]], key: str) -> None:
    """Draw the diagram of ``blocks`` (legend: the layer types drawn) and a caption."""
    st.plotly_chart(network_figure(blocks), key=key, config={"displayModeBar": False})
    st.caption(
        "Blocks: height = map side, width = channels (log), colour = layer type (legend below). "
        "Above: params (p) · FLOPs (F)."
    )


@st.cache_data(max_entries=64, show_spinner=False)
def model_blocks(
    name: str, spec_json: str, in_channels: int, image_size: int, num_classes: int
) -> list[dict[str, Any]]:
    """The blocks of a registered or spec model for this input (cached by its JSON)."""
    spec = json.loads(spec_json) or None
    model = create_model(name, in_channels, image_size, num_classes, spec=spec)
    return diagram_blocks(model, in_channels, image_size)

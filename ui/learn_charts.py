"""Learn page figures and texts: numeric heatmaps with outlined cells and shaded padding, an
optimizer's walks on a loss surface, weight histograms, and the convolution's formulas."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from cnn_core.concepts import optimizers
from cnn_core.concepts.convolution import Geometry, Term, output_size, pad_amounts

HIGHLIGHT, PADDING_COLOUR = "#e4572e", "rgba(66, 135, 245, 0.4)"
WALK_COLOURS = dict(
    zip(optimizers.OPTIMIZERS, ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#d62728"), strict=True)
)


def formula(n: int, k: int, geometry: Geometry, axis: str) -> str:
    """The output-size formula with this axis's numbers."""
    before, after = pad_amounts(k, geometry)
    pads = f"2·{before}" if before == after else f"{before} + {after}"
    s, d = geometry.stride, geometry.dilation
    size = output_size(n, k, geometry)
    return f"{axis}: ⌊({n} + {pads} − {d}·({k}−1) − 1) / {s}⌋ + 1 = **{size}**"


def equation(terms: list[Term], value: float, name: str) -> str:
    """``y[i,j] = x·w + … = value``, the padding cells written as 0."""
    shown = terms if len(terms) <= 25 else terms[:25]
    parts = " + ".join(f"({t.x:.3g})·({t.w:.3g})" for t in shown)
    more = f" + … {len(terms) - 25} more" if len(terms) > 25 else ""
    return f"{name} = {parts}{more} = **{value:.4g}**"


def terms_table(terms: list[Term]) -> pd.DataFrame:
    """One row per multiply of a 2-D output: input cell (``pad`` in the zero padding), x,
    kernel cell, w and x·w."""
    return pd.DataFrame(
        {
            "input cell": [
                f"({t.cell[0]}, {t.cell[1]})" + ("" if t.inside else " pad") for t in terms
            ],
            "x": [t.x for t in terms],
            "kernel cell": [f"({t.kernel_cell[0]}, {t.kernel_cell[1]})" for t in terms],
            "w": [t.w for t in terms],
            "x·w": [t.product for t in terms],
        }
    )


def _boxes(boxes: Iterable[tuple[float, float, float, float]]) -> str:
    """One SVG path outlining every (top, left, bottom, right) box, in heatmap cell units."""
    return " ".join(
        f"M {x0 - 0.5} {y0 - 0.5} H {x1 + 0.5} V {y1 + 0.5} H {x0 - 0.5} Z"
        for y0, x0, y1, x1 in boxes
    )


def heatmap(
    values: np.ndarray,
    title: str,
    *,
    cells: Iterable[tuple[int, int]] = (),
    frame: tuple[int, int, int, int] = (0, 0, 0, 0),
    numbers: bool | None = None,
    height: int = 320,
    colorscale: str = "Greys_r",
) -> go.Figure:
    """A matrix as a heatmap (row 0 on top) with each of ``cells`` outlined, the ``frame``
    (top, left, bottom, right padding widths) shaded, and the numbers written in small ones.
    Shapes are single paths: plotly validates each shape, and 25 rectangles cost milliseconds."""
    values = np.asarray(values, dtype=np.float64)
    rows, cols = values.shape
    show = numbers if numbers is not None else max(rows, cols) <= 12
    top, left, bottom, right = frame
    padding = [
        box
        for box, width in (
            ((0, 0, top - 1, cols - 1), top),
            ((rows - bottom, 0, rows - 1, cols - 1), bottom),
            ((0, 0, rows - 1, left - 1), left),
            ((0, cols - right, rows - 1, cols - 1), right),
        )
        if width
    ]
    shapes = [
        dict(type="path", path=_boxes(padding), fillcolor=PADDING_COLOUR, line=dict(width=0)),
        dict(
            type="path",
            path=_boxes((r, c, r, c) for r, c in cells),
            line=dict(color=HIGHLIGHT, width=2),
        ),
    ]
    axis = dict(showticklabels=max(rows, cols) <= 32, constrain="domain", dtick=1 if show else None)
    return go.Figure(
        go.Heatmap(
            z=values,
            colorscale=colorscale,
            showscale=False,
            texttemplate="%{z:.2g}" if show else None,
            hovertemplate="row %{y}, col %{x}: %{z:.4g}<extra></extra>",
        ),
        layout=dict(
            title=dict(text=title, font=dict(size=13)),
            height=height,
            margin=dict(l=10, r=10, t=36, b=10),
            shapes=[shape for shape in shapes if shape["path"]],
            xaxis=axis,
            yaxis=axis | dict(autorange="reversed", scaleanchor="x"),
        ),
    )


def chart(fig: go.Figure, key: str) -> None:
    """A plotly figure without the mode bar."""
    st.plotly_chart(fig, key=key, config={"displayModeBar": False})


def loss_table(values: dict[str, tuple[float, float]]) -> None:
    """Each loss by hand beside torch's value for the same inputs."""
    rows = [
        {"loss": name, "by hand": mine, "torch": theirs, "|difference|": abs(mine - theirs)}
        for name, (mine, theirs) in values.items()
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True)


def vector_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows of 2-vectors (Adam's g, m, v, …) as ``(a, b)`` texts, 4 significant figures."""
    return pd.DataFrame(
        [
            {
                k: f"({v[0]:.4g}, {v[1]:.4g})" if isinstance(v, np.ndarray) else v
                for k, v in r.items()
            }
            for r in rows
        ]
    )


def surface_figure(name: str, walks: dict[str, np.ndarray]) -> go.Figure:
    """Contours of log(1 + f) on the surface's box, its minima, and each walk as a line in its
    optimizer's colour (walks are labelled ``"<optimizer> (…)"``)."""
    xs, ys, z = optimizers.surface_grid(name)
    spec = optimizers.surface(name)
    fig = go.Figure(
        go.Contour(x=xs, y=ys, z=np.log1p(z), colorscale="Greys", showscale=False, ncontours=25),
        layout=dict(
            height=460,
            margin=dict(l=10, r=10, t=30, b=10),
            xaxis=dict(range=spec.box[:2]),
            yaxis=dict(range=spec.box[2:], scaleanchor="x"),
            legend=dict(orientation="h", y=-0.08),
            title=dict(text=f"{name}: contours of log(1 + f)", font=dict(size=13)),
        ),
    )
    fig.add_scatter(
        x=[m[0] for m in spec.minima],
        y=[m[1] for m in spec.minima],
        mode="markers",
        name="minima",
        marker=dict(symbol="star", size=14, color="gold"),
    )
    for label, walk in walks.items():
        fig.add_scatter(
            x=walk[:, 0],
            y=walk[:, 1],
            mode="lines+markers",
            name=label,
            marker=dict(size=3, color=WALK_COLOURS.get(label.split()[0])),
            line=dict(width=2, color=WALK_COLOURS.get(label.split()[0])),
        )
    return fig


def histogram_figure(edges: np.ndarray, shares: dict[str, np.ndarray]) -> go.Figure:
    """Overlaid weight histograms on shared bins (share of weights per bin)."""
    centres = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure(
        layout=dict(
            height=340,
            margin=dict(l=10, r=10, t=10, b=10),
            xaxis=dict(title="weight value"),
            yaxis=dict(title="share of weights"),
            legend=dict(orientation="h", y=-0.2),
        )
    )
    for label, share in shares.items():
        fig.add_scatter(x=centres, y=share, mode="lines", line=dict(shape="hvh"), name=label)
    return fig

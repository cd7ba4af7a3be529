"""Compare page helpers: the run picker synced with the URL, overlay / confusion / per-class /
parallel-coordinates figures in run colours, the styled summary table and the error gallery."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from pandas.io.formats.style import Styler
from streamlit.errors import StreamlitAPIException

from cnn_core import compare, runs
from cnn_core.compare import RunEvaluation, smooth
from cnn_core.data import DatasetBundle, dataset_names
from cnn_core.formats import percent, value_text
from cnn_core.models import model_names
from cnn_core.runs import STATUSES
from ui.charts import class_axis, confusion_figure, frame, run_colour, thin
from ui.widgets import image_grid, optional_select, run_label

METRICS = {
    "val_accuracy": "val accuracy",
    "train_accuracy": "train accuracy",
    "val_loss": "val loss",
    "train_loss": "train loss",
    "images_per_s": "images/s",
}
X_AXES = {  # the Runs page's axes: runs with different batch sizes line up by images seen
    "images_seen": "images seen",
    "step": "step",
    "epoch": "epoch",
    "elapsed_s": "wall time (s)",
}
MAX_MARKERS = 60  # longer lines are drawn without markers
EXPLAIN_PAGE = "pages/explain.py"
PERCENT_COLUMNS = (
    "best_val_accuracy",
    "best_val_ci_low",
    "best_val_ci_high",
    "final_val_accuracy",
    "test_accuracy",
    "test_ci_low",
    "test_ci_high",
)
DIFF_STYLE = "background-color: rgba(255, 193, 7, 0.25)"


# ---- selection ------------------------------------------------------------------------------
def run_filters(all_runs: Sequence[dict[str, Any]]) -> dict[str, str | None]:
    """Dataset / model / status / tag / name filters for ``runs.list_runs``."""
    choices = {
        "dataset": dataset_names(),
        "model": model_names(),
        "status": STATUSES,
        "tag": sorted({t for r in all_runs for t in r["tags"]}),
    }
    cols = st.columns(5)
    filters = {
        name: optional_select(col, name.title(), options, "any", f"cmp_f_{name}")
        for col, (name, options) in zip(cols, choices.items(), strict=False)
    }
    filters["search"] = cols[4].text_input("Name or id contains", key="cmp_f_search").strip()
    return {k: v or None for k, v in filters.items()}


def select_runs(all_runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs to compare, in selection order. ``?runs=id1,id2`` sets the selection (a shared
    link); every change is written back to the URL. Unknown ids are reported, not raised."""
    by_id = {r["id"]: r for r in all_runs}
    raw = st.query_params.get("runs")
    unknown: list[str] = []
    if raw is not None and raw != st.session_state.get("cmp_url"):
        wanted = list(dict.fromkeys(p.strip() for p in raw.split(",") if p.strip()))
        st.session_state["cmp_runs"] = [i for i in wanted if i in by_id]
        unknown = [i for i in wanted if i not in by_id]
    chosen = [i for i in st.session_state.get("cmp_runs", []) if i in by_id]
    st.session_state["cmp_runs"] = chosen  # runs deleted meanwhile drop out
    matching = runs.list_runs(**run_filters(all_runs))
    options = chosen + [r["id"] for r in matching if r["id"] not in chosen]
    selected = st.multiselect(
        "Runs to compare (colours follow this order)",
        options,
        key="cmp_runs",
        format_func=lambda i: run_label(by_id[i]),
        placeholder="Pick two or more runs",
        persist_state="session",
    )
    if selected:
        st.query_params["runs"] = ",".join(selected)
    elif "runs" in st.query_params:
        del st.query_params["runs"]
    st.session_state["cmp_url"] = st.query_params.get("runs")
    if unknown:
        st.warning(
            f"Not found (deleted, or a mistyped link): {', '.join(repr(i[:64]) for i in unknown)}.",
            icon="🔎",
        )
    return [by_id[i] for i in selected]


def legend_name(index: int, run: dict[str, Any]) -> str:
    """``2. v1 on mnist``: numbered by selection position, as in the table."""
    return f"{index + 1}. {run['name'] or run['id']}"


# ---- figures --------------------------------------------------------------------------------
def curve_points(run_id: str) -> list[dict[str, Any]]:
    """A run's points on every x axis (``images_seen``, ``step``, ``epoch``, ``elapsed_s``):
    its step series with each epoch's images/s on that epoch's validation point, or, for a run
    from before step metrics, its per-epoch history (epoch and wall time only)."""
    history = compare.run_history(run_id)
    steps = runs.steps(run_id)
    if not steps:
        return history
    speed = {m["epoch"]: m.get("images_per_s") for m in history}
    start = steps[0]["wall_time"]
    points = []
    for p in steps:
        point = {**p, "epoch": p["epoch_fraction"], "elapsed_s": p["wall_time"] - start}
        if p["kind"] == "val" and float(p["epoch_fraction"]).is_integer():
            point["images_per_s"] = speed.get(int(p["epoch_fraction"]))
        points.append(point)
    return points


def overlay_curves(
    curves: Sequence[tuple[str, Sequence[dict[str, Any]]]], metric: str, x_key: str, weight: float
) -> go.Figure:
    """One line per run for ``metric`` over ``x_key``, EMA-smoothed by ``weight`` (raw values
    faint behind); points without the metric or the axis are left out, long lines thinned for
    drawing."""
    fig = go.Figure()
    for i, (name, points) in enumerate(curves):
        pts = [p for p in points if p.get(metric) is not None and p.get(x_key) is not None]
        x, raw = [p[x_key] for p in pts], [p[metric] for p in pts]
        line = {"color": run_colour(i)}
        mode = "lines+markers" if len(pts) <= MAX_MARKERS else "lines"
        if weight > 0:
            shadow = thin(list(zip(x, raw, strict=True)))
            fig.add_scatter(
                x=[a for a, _ in shadow],
                y=[b for _, b in shadow],
                mode="lines",
                opacity=0.25,
                line=line,
                showlegend=False,
            )
        drawn = thin(list(zip(x, smooth(raw, weight), strict=True)))
        fig.add_scatter(
            x=[a for a, _ in drawn], y=[b for _, b in drawn], name=name, mode=mode, line=line
        )
    fig.update_layout(title=METRICS[metric], xaxis_title=X_AXES[x_key])
    if "accuracy" in metric:
        fig.update_yaxes(tickformat=".0%")
    return frame(fig, 360)


def confusion_heatmap(
    evaluation: RunEvaluation, title: str, colour: str, normalised: bool
) -> go.Figure:
    """:func:`ui.charts.confusion_figure` (counts or row-normalised rates) titled in the run's
    colour, with an invisible marker on every cell: heatmaps cannot be selected by a click in
    Streamlit, so clicking a cell selects its marker (``on_select`` sees ``x`` = predicted,
    ``y`` = true)."""
    names = evaluation.class_names
    fig = confusion_figure(evaluation.result.confusion, names, normalised)
    text = fig.data[0].text
    fig.update_traces(hoverinfo="skip", hovertemplate=None)
    cells = [(t, p) for t in range(len(names)) for p in range(len(names))]
    fig.add_scatter(
        x=[names[p] for _, p in cells],
        y=[names[t] for t, _ in cells],
        text=[text[t][p] for t, p in cells],
        mode="markers",
        marker={"size": 14, "opacity": 0, "color": colour, "symbol": "square"},
        selected={"marker": {"opacity": 0.6}},
        showlegend=False,
        hovertemplate="true %{y}<br>predicted %{x}<br>%{text}<extra></extra>",
    )
    fig.update_layout(title={"text": title, "font": {"color": colour}})
    return frame(fig, 460, legend=False)


def per_class_bars(evaluations: Sequence[tuple[int, str, RunEvaluation]]) -> go.Figure:
    """Grouped bars of per-class accuracy, one colour per run (by selection position)."""
    fig = go.Figure()
    for i, name, e in evaluations:
        fig.add_bar(
            name=name, x=e.class_names, y=e.result.per_class_accuracy, marker_color=run_colour(i)
        )
    names = evaluations[0][2].class_names if evaluations else []
    fig.update_layout(
        barmode="group",
        showlegend=True,  # plotly hides a single run's name
        xaxis=class_axis(names),
        yaxis={"tickformat": ".0%", "range": [0, 1]},
    )
    return frame(fig, 340)


def _dimension(label: str, values: Sequence[Any]) -> dict[str, Any]:
    """A parcoords axis: numbers as they are, anything else as codes with the text as ticks."""
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return {"label": label, "values": list(values)}
    texts = sorted({str(v) for v in values})
    return {
        "label": label,
        "values": [texts.index(str(v)) for v in values],
        "tickvals": list(range(len(texts))),
        "ticktext": texts,
    }


def parallel_coordinates(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> go.Figure:
    """Hyperparameters ``columns`` vs best val accuracy, one line per run in its colour."""
    n = len(rows)
    scale = [
        stop for i in range(n) for stop in ([i / n, run_colour(i)], [(i + 1) / n, run_colour(i)])
    ]
    dims = [_dimension(c, [r[c] for r in rows]) for c in columns]
    dims.append(_dimension("best val accuracy", [r["best_val_accuracy"] or 0.0 for r in rows]))
    fig = go.Figure(
        go.Parcoords(
            line={
                "color": [(i + 0.5) / n for i in range(n)],
                "colorscale": scale,
                "cmin": 0,
                "cmax": 1,
            },
            dimensions=dims,
        )
    )
    fig.update_layout(height=360, margin={"t": 60, "b": 20, "l": 60, "r": 60})
    return fig


# ---- table ----------------------------------------------------------------------------------
def style_summary(table: pd.DataFrame, differing: Sequence[str]) -> Styler:
    """The summary table with differing config columns highlighted, names in run colours,
    settings and percentages written as everywhere else (:mod:`cnn_core.formats`)."""
    style = table.style.map(lambda _: DIFF_STYLE, subset=list(differing))
    style = style.apply(
        lambda names: [f"color: {run_colour(i)}; font-weight: bold" for i in range(len(names))],
        subset=["name"],
    )
    settings = [c for c in table.columns if c in compare.config_fields()]
    return style.format(
        {
            **dict.fromkeys(settings, value_text),
            **dict.fromkeys([c for c in PERCENT_COLUMNS if c in table], percent),
            "params": "{:,.0f}",
            "flops": lambda v: f"{v / 1e6:.1f} M",
            "train_seconds": "{:.1f}",
            "images_per_s": "{:,.0f}",
        },
        na_rep="—",
    )


# ---- gallery --------------------------------------------------------------------------------
def explain_link(container: Any, run_id: str, split: str, index: int) -> bool:
    """A link to the Explain page for one image; False while that page is not in the app."""
    if not (Path(__file__).resolve().parents[1] / EXPLAIN_PAGE).is_file():
        return False
    try:
        container.page_link(
            EXPLAIN_PAGE,
            label="Explain",
            icon=":material/psychology:",
            query_params={"run": run_id, "split": split, "index": str(index)},
        )
    except StreamlitAPIException:  # the file exists but is not registered in app.py yet
        return False
    return True


def misclassified_gallery(
    run_id: str,
    evaluation: RunEvaluation,
    data: DatasetBundle,
    indices: Sequence[int],
    columns: int = 8,
) -> None:
    """The given items of the evaluated split with true/predicted labels, confidence and a
    link to explain each one."""
    split = evaluation.result.split
    images = data.split(split)
    names = evaluation.class_names
    linked = True
    for start in range(0, len(indices), columns):
        row = list(indices[start : start + columns])
        image_grid(
            [images.images[i] for i in row],
            [
                f"#{i} {names[int(images.labels[i])]} → {names[evaluation.result.predicted[i]]} "
                f"({evaluation.result.confidence[i]:.0%})"
                for i in row
            ],
            columns=columns,
        )
        if linked:
            for col, i in zip(st.columns(columns), row, strict=False):
                linked = explain_link(col, run_id, split, i)
    if not linked:
        st.caption("Links to explain each image appear once the Explain page is part of the app.")

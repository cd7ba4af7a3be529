"""Widgets and figures for the "Your data", "Data health" and "Embedding map" pages."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from cnn_core.data.choices import load_choices, save_choices
from cnn_core.errors import UserError
from cnn_core.health.embedding import EmbeddingMap
from cnn_core.health.source import HealthData
from ui.charts import PALETTE, frame
from ui.widgets import show_user_error, to_display

HOVER = (
    "#%{customdata[0]} · label %{customdata[1]}<br>"
    "predicted %{customdata[2]} (%{customdata[3]:.0%})<extra>%{fullData.name}</extra>"
)


def _points(emap: EmbeddingMap, mask: np.ndarray, name: str, marker: dict) -> go.Scattergl:
    """The points of ``emap`` selected by ``mask`` as one WebGL trace (hover: index, label,
    prediction and confidence, the same in every trace)."""
    names = np.asarray(emap.class_names, dtype=object)
    customdata = np.stack(
        [emap.index, names[emap.labels], names[emap.predicted], emap.confidence], axis=1
    )[mask]
    return go.Scattergl(
        x=emap.xy[mask, 0],
        y=emap.xy[mask, 1],
        mode="markers",
        name=name,
        marker=marker,
        customdata=customdata,
        hovertemplate=HOVER,
    )


def embedding_figure(emap: EmbeddingMap, height: int = 640) -> go.Figure:
    """One WebGL scatter trace per class (colour = given label); misclassified points drawn
    again as black crosses and flagged ones as red rings. ``customdata[0]`` is each point's
    index in the split, so a click names the image."""
    fig = go.Figure()
    for label, name in enumerate(emap.class_names):
        mask = emap.labels == label
        if mask.any():
            colour = PALETTE[label % len(PALETTE)]
            fig.add_trace(_points(emap, mask, name, {"size": 6, "color": colour, "opacity": 0.7}))
    flagged = emap.flagged if len(emap.flagged) else np.zeros(len(emap.index), bool)
    for mask, name, marker in (
        (emap.misclassified, "misclassified", {"symbol": "x", "size": 4, "color": "black"}),
        (flagged, "flagged by data health", {"symbol": "circle-open", "size": 11, "color": "red"}),
    ):
        if mask.any():
            fig.add_trace(_points(emap, mask, name, marker))
    fig.update_layout(
        legend={"itemsizing": "constant"},
        xaxis={"showticklabels": False, "title": f"{emap.method.upper()} 1"},
        yaxis={"showticklabels": False, "title": f"{emap.method.upper()} 2"},
        dragmode="pan",
    )
    return frame(fig, height)


def selected_index(state: Any) -> int | None:
    """The split index of the first point picked in a plotly selection state (None if none)."""
    try:
        points = state["selection"]["points"]
    except (KeyError, TypeError):
        return None
    for point in points:
        data = point.get("customdata")
        if data is not None and len(data):
            return int(float(data[0]))
    return None


def skipped_table(skipped: list[dict[str, str]]) -> None:
    """Files an import (or a dataset load) skipped, each with its reason."""
    if skipped:
        st.warning(f"{len(skipped)} file(s) skipped", icon="⚠️")
        st.dataframe(skipped, hide_index=True, width="stretch")


KEEP, EXCLUDE = "keep", "exclude"


def _where(row: dict[str, Any]) -> str:
    return row.get("file") or f"{row['split']} #{row['index']}"


def label_issue_gallery(
    report: dict[str, Any], data: HealthData, editable: bool, limit: int = 48
) -> None:
    """The likely label errors, worst first: image, given → suggested, and (for image
    folders) a keep / exclude / relabel choice per image."""
    rows = report["label_issues"]
    if report.get("label_note"):  # the fold models could not judge: nothing is called wrong
        st.info(report["label_note"], icon="⚖️")
        return
    if not rows:
        st.success("No likely label errors found." if "folds" in report else "Label check skipped.")
        return
    st.caption(
        f"{len(rows)} image(s) whose given label the fold models doubt, most doubtful first "
        f"(showing {min(limit, len(rows))}). Score = the model's probability for the given label; "
        f"listed when the models are at least {report['label_threshold']:.0%} sure of the "
        "suggestion (their own accuracy)."
    )
    for start in range(0, min(limit, len(rows)), 6):
        cols = st.columns(6)
        for col, row in zip(cols, rows[start : start + 6], strict=False):
            i = row["pool_index"]
            col.image(to_display(data.images[i]), width=84)
            col.caption(
                f"{_where(row)}\n\n**{row['given']}** → {row['suggested']} ({row['score']:.2f})"
            )
            if editable:
                col.selectbox(
                    "Action",
                    [KEEP, EXCLUDE, f"relabel → {row['suggested']}"],
                    key=f"dh_lab_{i}",
                    label_visibility="collapsed",
                )


def duplicate_gallery(
    report: dict[str, Any], data: HealthData, editable: bool, limit: int = 30
) -> None:
    """Duplicate groups (leaks across splits first), each member with its split and an
    exclude choice for image folders."""
    groups = sorted(report["duplicates"], key=lambda g: len(g["splits"]) == 1)
    if not groups:
        st.success("No exact or near duplicates found.")
        return
    st.caption(
        f"{len(groups)} group(s); a group spanning splits is a leak (showing {min(limit, len(groups))})."
    )
    for group in groups[:limit]:
        leak = " · ⚠️ leak across " + " / ".join(group["splits"]) if len(group["splits"]) > 1 else ""
        conflict = (
            " · different labels: " + ", ".join(group["labels"]) if len(group["labels"]) > 1 else ""
        )
        st.markdown(f"**{group['kind']} duplicates**{leak}{conflict}")
        members = group["members"][:8]
        cols = st.columns(8)
        for col, member in zip(cols, members, strict=False):
            i = member["pool_index"]
            col.image(to_display(data.images[i]), width=72)
            col.caption(f"{_where(member)} ({member['split']})")
            if editable:
                col.selectbox(
                    "Action", [KEEP, EXCLUDE], key=f"dh_dup_{i}", label_visibility="collapsed"
                )


def pending_choices(data: HealthData) -> tuple[set[str], dict[str, str]]:
    """The files marked exclude and ``{file: class}`` marked relabel in this session."""
    exclude, relabel = set(), {}
    for key, value in st.session_state.items():
        if not isinstance(key, str) or not key.startswith(("dh_lab_", "dh_dup_")):
            continue
        i = int(key.rsplit("_", 1)[1])
        if data.files is None or i >= len(data.files) or value == KEEP:
            continue
        if value == EXCLUDE:
            exclude.add(data.files[i])
        elif value.startswith("relabel → "):
            relabel[data.files[i]] = value.removeprefix("relabel → ")
    return exclude, relabel


def save_choices_panel(data: HealthData) -> None:
    """Save the marked choices as a new version beside the image folder."""
    if data.folder is None:
        return
    current = load_choices(data.folder)
    exclude, relabel = pending_choices(data)
    st.subheader("Your choices")
    st.caption(
        f"Saved: version {current.version or '—'} ({len(current.exclude)} excluded, "
        f"{len(current.relabel)} relabelled). Marked now: {len(exclude)} to exclude, "
        f"{len(relabel)} to relabel. New runs on this folder use the latest version and record it."
    )
    c1, c2 = st.columns(2)
    if c1.button("Save choices", key="dh_save", disabled=not (exclude or relabel)):
        try:
            saved = save_choices(
                data.folder, current.exclude | exclude, {**current.relabel, **relabel}
            )
        except UserError as exc:
            show_user_error(exc)
            return
        st.success(
            f"Saved version {saved.version}: {len(saved.exclude)} excluded, "
            f"{len(saved.relabel)} relabelled. Run the check again to see the data with them."
        )
    if c2.button("Clear all choices", key="dh_clear", disabled=not current.version):
        saved = save_choices(data.folder, set(), {})
        st.success(f"Saved version {saved.version}: nothing excluded or relabelled.")

"""Runs page helpers: the run table (filters, best/final accuracy, multi-select actions), the
actions of one run, the live step curves and the evaluation snapshots with a play slider."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from cnn_core import runs
from cnn_core.data import DATASETS, dataset_names
from cnn_core.errors import UserError
from cnn_core.formats import percent
from cnn_core.runs.results import ENDED_BY, ending_text, outcome
from cnn_core.stats import interval_text
from ui import cache
from ui.charts import STEP_AXES, confusion_figure, loss_gap_note
from ui.widgets import (
    ACTIVE,
    STATUS_ICONS,
    data_uri,
    optional_select,
    run_label,
    show_user_error,
    to_display,
)

PANEL_COLUMNS = 6
PLAY_S = 0.8  # seconds per evaluation while the snapshot slider plays
SNAPSHOT_S = 2.0  # seconds between refreshes of an active run's snapshots
SMOOTHING = 0.6  # the EMA weight a session starts with
WRONG, RIGHT = (214, 39, 40), (44, 160, 44)  # outline colours of the image panel


# ---- table ------------------------------------------------------------------------------------
def table_filters(all_runs: Sequence[dict[str, Any]]) -> dict[str, str | None]:
    """Status / dataset / tag filters for ``runs.list_runs``."""
    choices = {
        "status": runs.STATUSES,
        "dataset": dataset_names(),
        "tag": sorted({t for r in all_runs for t in r["tags"]}),
    }
    cols = st.columns(len(choices))
    return {
        name: optional_select(col, name.title(), list(opts), "any", f"runs_f_{name}")
        for col, (name, opts) in zip(cols, choices.items(), strict=True)
    }


def table_rows(shown: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per run: best and final val accuracy, time to target (when any run has one),
    training time, images/s and creation time (sortable by its headers)."""
    rows = []
    for r in shown:
        row = {
            "status": f"{STATUS_ICONS.get(outcome(r), '')} {outcome(r)}",
            "name": r["name"] or r["id"],
            "model": r["model"],
            "dataset": r["dataset"],
            "progress": runs.progress_text(r),
            "best val acc": r["best_val_accuracy"],
            "best at epoch": r["best_epoch_fraction"],
            "final val acc": r["val_accuracy"],
            "time to target (s)": r.get("time_to_target_s"),
            "train time (s)": r["train_seconds"],
            "images/s": r["progress"]["images_per_s"],
            "ended by": ENDED_BY.get(r["ended_by"] or "", ""),
            "created": datetime.fromtimestamp(r["created_at"]),
            "tags": ", ".join(r["tags"]),
            "id": r["id"],
        }
        rows.append(row)
    table = pd.DataFrame(rows)
    if table["time to target (s)"].isna().all():
        table = table.drop(columns="time to target (s)")
    return table


PERCENT_COLUMNS = ("best val acc", "final val acc")  # written by formats.percent, sorted as numbers
TABLE_FORMAT = {
    "best at epoch": st.column_config.NumberColumn(format="%.2f"),
    "time to target (s)": st.column_config.NumberColumn(format="%.1f"),
    "train time (s)": st.column_config.NumberColumn(format="%.1f"),
    "images/s": st.column_config.NumberColumn(format="%.0f"),
    "created": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
}


def run_table(shown: Sequence[dict[str, Any]]) -> None:
    """The run table of ``shown`` runs (one row each: :func:`table_rows`)."""
    table = table_rows(shown)
    styled = table.style.format(percent, subset=list(PERCENT_COLUMNS))
    st.dataframe(
        styled, hide_index=True, column_config=TABLE_FORMAT, height=min(400, 38 + 35 * len(table))
    )


def act(fn: Callable[..., Any], *args: Any) -> None:
    """Call a runs action; a UserError is shown, success redraws the page."""
    try:
        fn(*args)
    except UserError as exc:
        show_user_error(exc)
    else:
        time.sleep(0.2)
        st.rerun()


def _delete_many(run_ids: Sequence[str]) -> None:
    errors = []
    for run_id in run_ids:
        try:
            runs.delete(run_id)
        except UserError as exc:
            errors.append(str(exc))
    st.session_state.pop("runs_confirm", None)
    st.session_state["runs_errors"] = errors


def _tag_many(run_ids: Sequence[str], tag: str) -> None:
    errors = []
    for run_id in run_ids:
        try:
            runs.tag(run_id, [*runs.get_run(run_id)["tags"], tag])
        except UserError as exc:
            errors.append(str(exc))
    st.session_state["runs_errors"] = errors


def bulk_actions(shown: Sequence[dict[str, Any]]) -> None:
    """Select several runs → compare, tag or delete them in one action (delete asks once)."""
    by_id = {r["id"]: r for r in shown}
    st.session_state["runs_selected"] = [
        i for i in st.session_state.get("runs_selected", []) if i in by_id
    ]
    chosen = st.multiselect(
        "Select runs for an action",
        list(by_id),
        key="runs_selected",
        format_func=lambda i: run_label(by_id[i]),
    )
    if not chosen:
        return
    c = st.columns([2, 2, 1, 2])
    c[0].page_link(
        "pages/compare.py",
        label=f"Compare {len(chosen)} runs",
        icon=":material/compare_arrows:",
        query_params={"runs": ",".join(chosen)},
    )
    tag = c[1].text_input(
        "Tag", key="runs_new_tag", label_visibility="collapsed", placeholder="tag"
    )
    c[2].button("Tag", on_click=_tag_many, args=(chosen, tag.strip()), disabled=not tag.strip())
    deletable = [i for i in chosen if "delete" in by_id[i]["actions"]]
    if c[3].button(f"🗑️ Delete {len(deletable)} runs", disabled=not deletable):
        st.session_state["runs_confirm"] = deletable
    if st.session_state.get("runs_confirm") == deletable and deletable:
        skipped = len(chosen) - len(deletable)
        st.warning(
            f"Delete {len(deletable)} runs with their metrics and checkpoint folders? "
            "This cannot be undone." + (f" ({skipped} running runs are kept.)" if skipped else "")
        )
        st.button("Delete for good", type="primary", on_click=_delete_many, args=(deletable,))
    for error in st.session_state.pop("runs_errors", []):
        st.error(error, icon="🚫")


# ---- one run ----------------------------------------------------------------------------------
def target_step(run: dict[str, Any], steps: Sequence[dict[str, Any]]) -> int | None:
    """The validation step where the run reached its target (from ``images_to_target``)."""
    images = run.get("images_to_target")
    if images is None:
        return None
    hits = [p["step"] for p in steps if p["kind"] == "val" and p["images_seen"] >= images]
    return hits[0] if hits else None


def curve_controls() -> tuple[str, float]:
    """The x axis and the EMA weight of the step curves."""
    c = st.columns([3, 2])
    x_key = c[0].radio(
        "x axis", list(STEP_AXES), format_func=STEP_AXES.get, horizontal=True, key="runs_x"
    )
    weight = c[1].slider("Smoothing (EMA weight)", 0.0, 0.99, SMOOTHING, 0.01, key="runs_smooth")
    return x_key, weight


def outlined(image: Any, wrong: bool, width: int = 2) -> np.ndarray:
    """An image as RGB with a coloured frame: red when the prediction is wrong, else green."""
    a = to_display(image)
    rgb = np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a
    framed = np.empty((rgb.shape[0] + 2 * width, rgb.shape[1] + 2 * width, 3), np.uint8)
    framed[:] = WRONG if wrong else RIGHT
    framed[width:-width, width:-width] = rgb
    return framed


@st.cache_resource(max_entries=512, show_spinner=False)
def _panel_uris(run_id: str, step: int, created_at: float, _panel: dict, _snap: dict) -> list:
    """The panel's framed images of one snapshot as PNG data URIs (a live refresh replaces them:
    no /media/ file to miss), encoded once for every session and every refresh (a snapshot is
    identified by run, step and time written)."""
    pairs = zip(_panel["images"], _panel["labels"], _snap["predicted"], strict=True)
    return [data_uri(Image.fromarray(outlined(img, t != p))) for img, t, p in pairs]


@st.cache_resource(max_entries=512, show_spinner=False)
def _confusion(run_id: str, step: int, created_at: float, _snap: dict, _names: list) -> Any:
    return confusion_figure(_snap["confusion"], _names)


def snapshot_panel(run_id: str, panel: dict[str, Any], snap: dict[str, Any]) -> None:
    """The confusion matrix and the fixed image panel of one evaluation."""
    names = panel["class_names"]
    key = (run_id, snap["step"], snap["created_at"])
    left, right = st.columns([2, 3])
    left.plotly_chart(_confusion(*key, snap, names), key="snap-confusion")
    labels, predicted = panel["labels"], snap["predicted"]
    wrong = sum(t != p for t, p in zip(labels, predicted, strict=True))
    with right:
        st.caption(
            f"{len(labels)} fixed validation images, each with the class predicted (and its "
            f"confidence); {wrong} wrong, outlined in red."
        )
        captions = [
            f"{names[p]} {c:.0%}" for p, c in zip(predicted, snap["confidence"], strict=True)
        ]
        for i, (uri, caption) in enumerate(
            zip(_panel_uris(*key, panel, snap), captions, strict=True)
        ):
            if i % PANEL_COLUMNS == 0:
                cols = st.columns(PANEL_COLUMNS)
            cols[i % PANEL_COLUMNS].image(uri, caption=caption, width=64)  # passed on as it is


def _slider_moved(key: str, follow: str, newest: int) -> None:
    """The user moved the snapshot slider: follow the newest evaluation only if put there."""
    st.session_state[follow] = st.session_state[key] == newest


def snapshot_frame(run_id: str, playing: bool) -> None:
    """One frame of the snapshot player: the slider over the run's evaluations, the confusion
    matrix and the image panel. It shows the newest evaluation (also each new one while the
    run trains) until the user moves the slider elsewhere or presses Play (one further on each
    call while ``playing``)."""
    found = runs.snapshots(run_id)
    for note in found["notes"]:
        st.caption(f"⚠️ {note}")
    snaps, panel = found["snapshots"], found["panel"]
    if not snaps or panel is None:
        st.caption("Evaluation snapshots appear after the first validation.")
        return
    key, follow = f"snap_i_{run_id}", f"snap_follow_{run_id}"
    steps = [s["step"] for s in snaps]
    if playing:
        st.session_state[follow] = False
    if st.session_state.get(follow, True) or st.session_state.get(key) not in steps:
        st.session_state[key] = steps[-1]
    elif playing:
        st.session_state[key] = steps[(steps.index(st.session_state[key]) + 1) % len(steps)]
    by_step = {s["step"]: s for s in snaps}
    if len(steps) > 1:
        st.select_slider(
            "Evaluation",
            steps,
            key=key,
            format_func=lambda s: f"epoch {by_step[s]['epoch_fraction']:.2f}",
            on_change=_slider_moved,
            args=(key, follow, steps[-1]),
        )
    snap = by_step[st.session_state[key]]
    st.caption(
        f"epoch {snap['epoch_fraction']:.2f} · {snap['images_seen']:,} images seen · "
        f"val accuracy {snap['accuracy']:.2%}"
    )
    snapshot_panel(run_id, panel, snap)


def snapshot_view(run_id: str, active: bool) -> None:
    """A slider over the run's evaluations with a play button that animates the confusion
    matrix and the image panel (refreshed every ``SNAPSHOT_S`` while the run trains)."""
    playing = st.toggle("▶️ Play", key="snap_play")

    @st.fragment(run_every=PLAY_S if playing else (SNAPSHOT_S if active else None))
    def view() -> None:
        snapshot_frame(run_id, playing)

    view()


def step_chart(
    run: dict[str, Any], version: tuple, steps: list[dict], x_key: str, weight: float
) -> bool:
    """The live step curves of a run (its series as :func:`ui.cache.run_series` returned it);
    False when it has no points (an older run)."""
    if not steps:
        return False
    st.plotly_chart(
        cache.step_figure(run["id"], version, steps, x_key, weight, target_step(run, steps)),
        key=f"steps-{run['id']}",
    )
    return True


def results(run: dict[str, Any], history: Sequence[dict[str, Any]]) -> None:
    """The run's headline numbers (its results as the store holds them, and the last finished
    epoch's loss and speed) and a caption: where the best happened, how training ended (a
    warning when it diverged)."""
    ended = ending_text(run)
    if outcome(run) == "diverged":
        st.warning(f"Training {ended}.", icon="💥")
    if run["best_val_accuracy"] is None:
        return
    c = st.columns(5)
    c[0].metric("val accuracy", percent(run["val_accuracy"]))
    c[1].metric("best val accuracy", percent(run["best_val_accuracy"]))
    if history:
        c[2].metric("val loss", f"{history[-1]['val_loss']:.4f}")
        c[3].metric("images/s", f"{history[-1]['images_per_s']:,.0f}")
    if run["time_to_target_s"] is not None:
        c[4].metric("time to target", f"{run['time_to_target_s']:.1f} s")
    shown = ended and outcome(run) != "diverged"  # a diverged run's warning says it
    st.caption(
        f"Best validation accuracy {percent(run['best_val_accuracy'])} at epoch "
        f"{run['best_epoch_fraction']:.2f}{' · ' + ended if shown else ''}"
    )
    if history and history[-1].get("val_images"):  # runs from before val_images: no interval
        last = history[-1]
        st.caption(
            "Last validation: "
            f"{interval_text(last['val_accuracy'], int(last['val_images']))} — the range "
            "the accuracy on all such images would lie in, 19 times out of 20."
        )


def live_panel(current: dict[str, Any], x_key: str, weight: float) -> None:
    """Progress, headline numbers and step curves of a run (as the Runs page's live fragment
    read it, with the run table, every ``LIVE_S`` while a run is active)."""
    run_id = current["id"]
    if current["status"] == "running":
        st.progress(current["progress"]["fraction"], text=runs.progress_text(current, speed=True))
    elif current["status"] == "queued":
        st.info("Queued — waiting for the worker.", icon="⏳")
    version, steps, history = cache.run_series(run_id)
    results(current, history)
    if not step_chart(current, version, steps, x_key, weight):
        if history:  # a run from before step metrics: its per-epoch curves
            st.plotly_chart(cache.curves(history), key=f"curves-{run_id}")
        elif current["status"] in ACTIVE:
            st.caption("Curves appear after the first few batches.")
            return
    info = DATASETS.get(current["dataset"] or "")
    classes = info.num_classes if info else None
    if note := loss_gap_note(current["config"], classes):
        st.caption(note)

"""Runs: a table of every run (filters, best/final accuracy, actions on several at once); the
selected run's live step curves, evaluation snapshots and the actions its state allows."""

from pathlib import Path

import streamlit as st

from cnn_core import runs
from cnn_core.errors import UserError
from ui.router import ensure_routed
from ui.run_widgets import (
    LIVE_S,
    TABLE_FORMAT,
    act,
    bulk_actions,
    curve_controls,
    live_panel,
    snapshot_view,
    table_filters,
    table_rows,
)
from ui.widgets import ACTIVE, run_label, show_user_error

ensure_routed()

st.title("Runs")
all_runs = runs.list_runs()
if not all_runs:
    st.info("No runs yet. Launch one on the Train page.")
    st.page_link("pages/train.py", label="Go to Train", icon="🚀")
    st.stop()

filters = table_filters(all_runs)
shown = runs.list_runs(**filters) if any(filters.values()) else all_runs
if shown:
    table = table_rows(shown)
    st.dataframe(
        table,
        hide_index=True,
        column_config=TABLE_FORMAT,
        height=min(400, 38 + 35 * len(table)),
    )
    bulk_actions(shown)
else:
    st.caption("No run matches these filters.")

ids = [r["id"] for r in all_runs]
wanted = st.query_params.get("run") or st.session_state.get("run_id")
run_id = st.selectbox(
    "Run",
    ids,
    index=ids.index(wanted) if wanted in ids else 0,
    format_func=lambda i: run_label(next(r for r in all_runs if r["id"] == i)),
)
st.query_params["run"] = run_id
st.session_state["run_id"] = run_id
run = runs.get_run(run_id)


@st.fragment(run_every=LIVE_S if run["status"] in ACTIVE else None)
def live_view(run_id: str, shown_status: str, x_key: str, weight: float) -> None:
    """Progress, headline numbers and step curves, refreshed every second while active."""
    if not live_panel(run_id, shown_status, x_key, weight):
        st.rerun()  # status changed: redraw the whole page (buttons, table)


st.subheader(run_label(run))
if run["status"] == "failed":
    st.error(f"This run failed: {run['error']}", icon="❌")
if run["status"] == "interrupted":
    st.warning(
        "The worker stopped unexpectedly (killed or machine restarted). Resume continues from the "
        "last completed epoch.",
        icon="⚠️",
    )
if run.get("dataset_note"):
    st.warning(run["dataset_note"], icon="⚠️")
x_key, weight = curve_controls()
live_view(run_id, run["status"], x_key, weight)

with st.expander("Evaluation snapshots: watch the network learn", expanded=True):
    snapshot_view(run_id, run["status"] in ACTIVE)


@st.dialog("Delete run?")
def confirm_delete(run_id: str) -> None:
    st.write(f"This removes run **{run_id}**, its metrics and checkpoint. It cannot be undone.")
    if st.button("Delete for good", type="primary"):
        act(runs.delete, run_id)


allowed = run["actions"]  # what the API allows for this run's state, nothing else
cols = st.columns(5)
if "stop" in allowed and cols[0].button("⏹️ Stop"):
    act(runs.stop, run_id, 3.0)
if "resume" in allowed and cols[0].button("▶️ Resume"):
    act(runs.resume, run_id)
if "extend" in allowed:
    more = cols[1].number_input("Extra epochs", 1, 100, 2, label_visibility="collapsed")
    if cols[2].button(f"➕ Extend by {more}"):
        act(runs.extend, run_id, int(more))
if "delete" in allowed and cols[4].button("🗑️ Delete"):
    confirm_delete(run_id)

with st.expander("Download and export"):
    if run["checkpoint"]:
        fmt = st.selectbox("Format", ["checkpoint", "onnx", "torchscript"])
        if st.button("Prepare file"):
            st.session_state.pop("runs_export", None)
            try:
                with st.spinner("Exporting…"):
                    st.session_state["runs_export"] = {"run_id": run_id, **runs.export(run_id, fmt)}
            except UserError as exc:
                show_user_error(exc)
        out = st.session_state.get("runs_export")  # offered until "Prepare file" is pressed again
        if out and out["run_id"] == run_id and Path(out["path"]).is_file():
            if out["max_abs_diff"] is not None:  # None: the checkpoint as it is
                st.caption(f"Parity with PyTorch: max abs difference {out['max_abs_diff']:.2e}")
            path = Path(out["path"])
            st.download_button(
                f"Download {path.name}",
                path.read_bytes(),
                file_name=f"{run_id}-{path.name}",
                on_click="ignore",
            )
    else:
        st.caption("No checkpoint yet: it is written after the first epoch.")

with st.expander("Configuration"):
    st.json(run["config"])

"""Runs: a table of every run (filters, best/final accuracy, actions on several at once); the
selected run's live step curves, evaluation snapshots and the actions its state allows."""

from pathlib import Path

import streamlit as st

from cnn_core import runs
from cnn_core.errors import UserError
from ui.router import ensure_routed
from ui.run_widgets import (
    act,
    bulk_actions,
    curve_controls,
    live_panel,
    run_table,
    snapshot_view,
    table_filters,
)
from ui.widgets import ACTIVE, LIVE_S, run_label, show_user_error

ensure_routed()

st.title("Runs")
all_runs = runs.list_runs()
if not all_runs:
    st.info("No runs yet. Launch one on the Train page.")
    st.page_link("pages/train.py", label="Go to Train", icon="🚀")
    st.stop()

filters = table_filters(all_runs)
shown = runs.list_runs(**filters) if any(filters.values()) else all_runs
table_slot = st.container()  # the run table, drawn (and refreshed) by the live view below
if shown:
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
run = next(r for r in all_runs if r["id"] == run_id)
statuses = {r["id"]: r["status"] for r in all_runs}


@st.fragment(run_every=LIVE_S if any(s in ACTIVE for s in statuses.values()) else None)
def live_view(run_id: str, shown: set[str], statuses: dict, x_key: str, weight: float) -> None:
    """One reading of every run feeds the run table (the ``shown`` ones) and the selected run's
    progress, numbers and step curves (with the sidebar, every ``LIVE_S`` while a run is
    active). A run that appeared, went or changed status redraws the whole page (buttons,
    filters, actions)."""
    now = runs.list_runs()
    if {r["id"]: r["status"] for r in now} != statuses:
        st.rerun()
    if shown:
        with table_slot:
            run_table([r for r in now if r["id"] in shown])
    live_panel(next(r for r in now if r["id"] == run_id), x_key, weight)


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
live_view(run_id, {r["id"] for r in shown}, statuses, x_key, weight)

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

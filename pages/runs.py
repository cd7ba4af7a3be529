"""Runs: every run with its status; live curves and progress for the selected one; actions."""

import time
from pathlib import Path

import pandas as pd
import streamlit as st

from cnn_core import runs
from cnn_core.errors import UserError
from ui import cache
from ui.router import ensure_routed
from ui.widgets import ACTIVE, STATUS_ICONS, run_label, show_user_error

ensure_routed()

st.title("Runs")
all_runs = runs.list_runs()
if not all_runs:
    st.info("No runs yet. Launch one on the Train page.")
    st.page_link("pages/train.py", label="Go to Train", icon="🚀")
    st.stop()

table = pd.DataFrame(
    [
        {
            "status": f"{STATUS_ICONS.get(r['status'], '')} {r['status']}",
            "name": r["name"] or r["id"],
            "model": r["model"],
            "dataset": r["dataset"],
            "epochs": f"{r['progress']['epoch']}/{r['epochs']}",
            "tags": ", ".join(r["tags"]),
            "executor": r["executor"],
            "id": r["id"],
        }
        for r in all_runs
    ]
)
st.dataframe(table, hide_index=True, height=min(400, 38 + 35 * len(table)))

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


def eta_text(run: dict) -> str:
    p = run["progress"]
    batch = run["config"]["batch_size"] or 1
    if run["status"] != "running" or not p["images_per_s"] or not p["num_batches"]:
        return ""
    left = (p["epochs"] - p["epoch"]) * p["num_batches"] - p["step"]
    return f" · ETA {left * batch / p['images_per_s']:.0f} s"


@st.fragment(run_every=1.0 if run["status"] in ACTIVE else None)
def live_view(run_id: str, shown_status: str) -> None:
    """Progress and curves, refreshed every second while the run is active."""
    current = runs.get_run(run_id)
    if current["status"] != shown_status:
        st.rerun()  # status changed: redraw the whole page (buttons, table)
    p = current["progress"]
    if current["status"] == "running":
        speed = f"{p['images_per_s']:,.0f} images/s" if p["images_per_s"] else "starting…"
        st.progress(
            p["fraction"],
            text=f"epoch {p['epoch'] + 1}/{p['epochs']} · batch {p['step']}/"
            f"{p['num_batches']} · {speed}{eta_text(current)}",
        )
    elif current["status"] == "queued":
        st.info("Queued — waiting for the worker.", icon="⏳")
    history = runs.metrics(run_id)
    if history:
        last = history[-1]
        c = st.columns(4)
        c[0].metric("val accuracy", f"{last['val_accuracy']:.2%}")
        c[1].metric("best val accuracy", f"{max(m['val_accuracy'] for m in history):.2%}")
        c[2].metric("val loss", f"{last['val_loss']:.4f}")
        c[3].metric("images/s", f"{last['images_per_s']:,.0f}")
        st.plotly_chart(cache.curves(history), key=f"curves-{run_id}")
    elif current["status"] in ACTIVE:
        st.caption("Curves appear after the first epoch.")


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
live_view(run_id, run["status"])


def act(fn, *args) -> None:
    try:
        fn(*args)
    except UserError as exc:
        show_user_error(exc)
    else:
        time.sleep(0.2)
        st.rerun()


@st.dialog("Delete run?")
def confirm_delete(run_id: str) -> None:
    st.write(f"This removes run **{run_id}**, its metrics and checkpoint. It cannot be undone.")
    if st.button("Delete for good", type="primary"):
        act(runs.delete, run_id)


cols = st.columns(5)
if run["status"] in ACTIVE and cols[0].button("⏹️ Stop"):
    act(runs.stop, run_id, 3.0)
if run["status"] in ("stopped", "interrupted", "failed") and cols[0].button("▶️ Resume"):
    act(runs.resume, run_id)
if run["status"] in ("completed", "stopped"):
    more = cols[1].number_input("Extra epochs", 1, 100, 2, label_visibility="collapsed")
    if cols[2].button(f"➕ Extend by {more}"):
        act(runs.extend, run_id, int(more))
if run["status"] not in ("running",) and cols[4].button("🗑️ Delete"):
    confirm_delete(run_id)

with st.expander("Download and export"):
    if run["checkpoint"]:
        fmt = st.selectbox("Format", ["checkpoint", "onnx", "torchscript"])
        if st.button("Prepare file"):
            try:
                with st.spinner("Exporting…"):
                    out = runs.export(run_id, fmt)
            except UserError as exc:
                show_user_error(exc)
            else:
                if out.get("max_abs_diff") is not None:  # None: the checkpoint as it is
                    st.caption(f"Parity with PyTorch: max abs difference {out['max_abs_diff']:.2e}")
                path = Path(out["path"])
                st.download_button(
                    f"Download {path.name}", path.read_bytes(), file_name=f"{run_id}-{path.name}"
                )
    else:
        st.caption("No checkpoint yet: it is written after the first epoch.")

with st.expander("Configuration"):
    st.json(run["config"])

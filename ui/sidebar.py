"""The sidebar shown on every page: active runs and worker state."""

from __future__ import annotations

import streamlit as st

from cnn_core import runs
from cnn_core.runs.supervisor import worker_pid
from ui.widgets import ACTIVE, LIVE_S, run_label


def active_runs() -> None:
    """Whether the background worker is alive, and the active runs with their progress (as
    ``runs.progress_text`` words it for every view)."""
    active = [r for r in runs.list_runs() if r["status"] in ACTIVE]
    pid = worker_pid()
    st.caption(
        f"Worker: {'running (pid ' + str(pid) + ')' if pid else 'idle — starts when a run is queued'}"
    )
    for run in active[:5]:
        p = run["progress"]
        st.progress(p["fraction"], text=f"{run_label(run)} — {runs.progress_text(run)}")
    if not active:
        st.caption("No active runs.")


def render_sidebar() -> None:
    """The sidebar's active runs, refreshed every ``LIVE_S`` while any run is active (with the
    Runs page's table and panel). It only reads: queued runs get a worker when they are
    queued, and at server start (app.py)."""
    live = any(r["status"] in ACTIVE for r in runs.list_runs())
    with st.sidebar:
        st.fragment(active_runs, run_every=LIVE_S if live else None)()

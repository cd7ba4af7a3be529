"""The sidebar shown on every page: active runs and worker state."""

from __future__ import annotations

import streamlit as st

from cnn_core import runs
from cnn_core.runs.supervisor import worker_pid
from ui.widgets import ACTIVE, run_label


def render_sidebar() -> None:
    """Active runs with progress, and whether the background worker is alive (it only reads:
    queued runs get a worker when they are queued, and at server start: app.py)."""
    with st.sidebar:
        active = [r for r in runs.list_runs() if r["status"] in ACTIVE]
        pid = worker_pid()
        st.caption(
            f"Worker: {'running (pid ' + str(pid) + ')' if pid else 'idle — starts when a run is queued'}"
        )
        for run in active[:5]:
            p = run["progress"]
            st.progress(
                p["fraction"],
                text=f"{run_label(run)} — epoch {p['epoch'] + (run['status'] == 'running')}/{p['epochs']}",
            )
        if not active:
            st.caption("No active runs.")

"""The sidebar shown on every page: the active background jobs of every kind and worker state."""

from __future__ import annotations

import streamlit as st

from cnn_core import jobs
from cnn_core.runs.supervisor import worker_pid
from ui.widgets import LIVE_S, STATUS_ICONS

SHOWN = 5


def job_text(job: jobs.Job) -> str:
    """``🏃 name · v1 · mnist — epoch 2/3 · batch 12/94``: a job and how far it got."""
    return f"{STATUS_ICONS.get(job.state, '')} {job.label} — {job.progress}"


def active_jobs() -> None:
    """Whether the runs' worker is alive, and the active jobs (runs, sweeps, health checks)
    with their progress (followed and stopped on the Runs, Sweep and Data health pages)."""
    active = jobs.list_jobs()
    pid = worker_pid()
    training = any(job.kind == "run" and job.state == "running" for job in active)
    if pid is None:
        st.caption("Worker: idle — starts when a run is queued")
    else:
        st.caption(f"Worker: {'training' if training else 'ready'} (pid {pid})")
    for job in active[:SHOWN]:
        if job.fraction is not None:
            st.progress(job.fraction, text=job_text(job))
        else:
            st.caption(job_text(job))
    if len(active) > SHOWN:
        st.caption(f"… and {len(active) - SHOWN} more (python -m cnn_core jobs list)")
    if not active:
        st.caption("No active jobs.")


def render_sidebar() -> None:
    """The sidebar's active jobs, refreshed every ``LIVE_S`` while any job is active (with the
    Runs page's table and panel). It only reads: queued runs get a worker when they are
    queued, and at server start (app.py)."""
    live = bool(jobs.list_jobs())
    with st.sidebar:
        st.fragment(active_jobs, run_every=LIVE_S if live else None)()

"""Is a running run still training? A run whose process is gone, or whose heartbeat is older
than :data:`STALE_AFTER_S`, is not: every read *reports* it interrupted
(:func:`stale_reason`, derived, nothing written), and :func:`recover_stale` *records* it so —
called only by writers: a supervisor or worker starting, resume / extend / stop / delete, and
``python -m cnn_core runs recover``.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from typing import Any

from ..processes import pid_alive
from .store import RunStore

STALE_AFTER_S = 30.0


def stale_reason(
    row: Mapping[str, Any] | sqlite3.Row,
    now: float | None = None,
    stale_after: float = STALE_AFTER_S,
) -> str | None:
    """Why a run recorded as running no longer trains (its process is gone, or its heartbeat
    is older than ``stale_after`` s), or None (it trains, or it is not recorded as running)."""
    if row["status"] != "running":
        return None
    now = time.time() if now is None else now
    pid, beat = row["worker_pid"], row["heartbeat_at"]
    if pid is not None and not pid_alive(pid):
        return f"worker process {pid} is gone"
    if beat is None or now - beat > stale_after:
        return f"no heartbeat for {now - (beat or 0):.0f} s"
    return None


def recover_stale(store: RunStore, stale_after: float = STALE_AFTER_S) -> list[str]:
    """Record every stale running run (see :func:`stale_reason`) as interrupted (resumable).
    Returns the ids it marked."""
    now = time.time()
    marked = []
    for row in store.query(
        "SELECT id, status, worker_pid, heartbeat_at FROM runs WHERE status = 'running'"
    ):
        reason = stale_reason(row, now, stale_after)
        if reason is None:
            continue
        with store.transaction() as conn:  # only if nobody re-claimed it meanwhile
            changed = conn.execute(
                "UPDATE runs SET status = 'interrupted', error = ?, finished_at = ?, worker_pid = NULL "
                "WHERE id = ? AND status = 'running' AND worker_pid IS ? AND heartbeat_at IS ?",
                (reason, now, row["id"], row["worker_pid"], row["heartbeat_at"]),
            ).rowcount
        if changed:
            marked.append(row["id"])
    return marked

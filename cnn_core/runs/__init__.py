"""Background runs: a SQLite run store, a worker process, and the API the app and CLI use.

``submit(config)`` queues a run and starts a detached worker (``python -m cnn_core worker``)
if none is alive; ``list_runs``, ``get_run``, ``metrics``, ``steps`` (``series_version``: have
they changed?) and ``snapshots`` only read the store (``allowed_actions``, ``eta_seconds`` and
``progress_text``: what a run allows now, how long it has left, how far it got); ``stop``, ``resume``, ``extend``, ``delete``,
``rename``, ``tag``, ``set_notes`` and ``export`` manage runs; ``recover`` records runs whose
process is gone as interrupted (reads only report them so).
"""

from .api import (
    allowed_actions,
    check_executor,
    delete,
    eta_seconds,
    export,
    extend,
    get_run,
    list_runs,
    metrics,
    progress_text,
    ray_available,
    recover,
    rename,
    resume,
    series_version,
    set_notes,
    snapshots,
    steps,
    stop,
    submit,
    tag,
)
from .liveness import recover_stale
from .store import STATUSES, RunStore
from .supervisor import ensure_worker, worker_pid
from .worker import error_text

__all__ = [
    "STATUSES",
    "RunStore",
    "allowed_actions",
    "check_executor",
    "delete",
    "ensure_worker",
    "error_text",
    "eta_seconds",
    "export",
    "extend",
    "get_run",
    "list_runs",
    "metrics",
    "progress_text",
    "ray_available",
    "recover",
    "recover_stale",
    "rename",
    "resume",
    "series_version",
    "set_notes",
    "snapshots",
    "steps",
    "stop",
    "submit",
    "tag",
    "worker_pid",
]

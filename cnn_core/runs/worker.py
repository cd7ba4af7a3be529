"""Training one run for the run store: ``train_run`` (with the reporting callbacks of
:mod:`.reporting` and :mod:`.step_writer`), the child process a supervisor starts for each
claimed run (``worker --run RUN_ID``) and the foreground ``train`` command's record. The
supervisor itself is :mod:`.supervisor`.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..callbacks import Callback, Checkpointer
from ..checkpoints import CHECKPOINT_NAME, load_resumable, new_run_id, run_dir
from ..config import TrainConfig
from ..errors import UserError
from ..processes import log_line
from .liveness import recover_stale
from .reporting import ResultWriter, StopFlag, StoreWriter
from .step_writer import StepWriter
from .store import RunStore
from .writer import RunWriter

if TYPE_CHECKING:
    from ..data import DatasetBundle
    from ..trainer import FitResult

HEARTBEAT_S = 5.0
OURS = ("running", "interrupted")  # a run a live process may still finish (not re-queued meanwhile)


def log(message: str) -> None:
    """A line of the worker's log."""
    log_line("worker", message)


def error_text(exc: BaseException) -> str:
    """What the UI shows for a failed run: a UserError verbatim, else type and message."""
    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted from the keyboard"
    return f"{type(exc).__name__}: {exc}"


@contextmanager
def recorded(store: RunWriter, run_id: str) -> Iterator[None]:
    """Beat the run's heartbeat while the body runs; if it raises, record the run as failed
    (interrupted for Ctrl-C) with the error text, then re-raise."""
    done = threading.Event()

    def beat() -> None:
        while not done.wait(HEARTBEAT_S):
            try:
                store.update(run_id, heartbeat_at=time.time())
            except Exception as exc:  # a busy database must not kill the heartbeat
                print(f"heartbeat of {run_id} failed: {exc}", file=sys.stderr)

    thread = threading.Thread(target=beat, name=f"heartbeat-{run_id}", daemon=True)
    thread.start()
    try:
        yield
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        store.finish(run_id, status, error=error_text(exc), only_if=OURS)
        raise
    finally:
        done.set()
        thread.join()


def train_run(
    store: RunWriter,
    run_id: str,
    config: TrainConfig,
    *,
    data: DatasetBundle | None = None,
    extra_callbacks: Sequence[Callback] = (),
) -> FitResult:
    """Train a run (from its checkpoint when one exists, else from scratch), report to the store
    and record completed/stopped. Call inside :func:`recorded`."""
    from ..trainer import fit

    path = run_dir(run_id) / CHECKPOINT_NAME
    resume, note = load_resumable(path.parent)
    if note:
        notes = (store.get(run_id) or {}).get("notes") or ""
        store.update(run_id, notes=f"{notes}\n{note}".strip())
        log(f"run {run_id}: {note}")
    if resume is None:
        store.clear_metrics(run_id)
    callbacks = [  # extra callbacks see each checkpoint before the store sees its epoch
        Checkpointer(path),
        *extra_callbacks,
        StoreWriter(store, run_id),
        StepWriter(store, run_id),
        ResultWriter(store, run_id),
        StopFlag(store, run_id),
    ]
    result = fit(config, callbacks, data=data, resume=resume)
    store.finish(run_id, "completed" if result.completed else "stopped", only_if=OURS)
    return result


def start_foreground_run(store: RunStore, config: TrainConfig) -> str:
    """Register a run trained by this process (``train`` command) as running; returns its id."""
    recover_stale(store)
    run_id = new_run_id()
    now = time.time()
    store.add_run(
        run_id,
        config.to_dict(),
        name=config.name,
        tags=config.tags,
        status="running",
        worker_pid=os.getpid(),
        started_at=now,
        heartbeat_at=now,
    )
    return run_id


def default_threads(max_concurrent: int = 1) -> int:
    """Torch threads per run: all cores but one (so the app stays responsive), shared out."""
    return max(1, ((os.cpu_count() or 1) - 1) // max(1, max_concurrent))


def run_child(run_id: str, threads: int) -> int:
    """Train one claimed run in this process (``worker --run``); exit code 0 unless it failed."""
    store = RunStore()
    row = store.get(run_id)
    if row is None or row["status"] != "running":
        print(
            f"run {run_id} is not claimed (status {row and row['status']}); nothing to do",
            file=sys.stderr,
        )
        return 1
    try:
        with recorded(store, run_id):
            config = TrainConfig.from_dict(row["config"], strict=False)
            if config.threads == 0:  # 0 = "auto": leave a core for the app
                config.threads = threads
            train_run(store, run_id, config)
    except UserError as exc:
        print(f"run {run_id} failed: {exc}", file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        return 1
    return 0

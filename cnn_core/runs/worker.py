"""Background training: the callbacks that report to the run store, the per-run child process
and the supervisor (``python -m cnn_core worker``) that claims queued runs FIFO.

Each claimed run trains in its own child process (``worker --run RUN_ID``), so a crash or a
``SIGKILL`` in one run cannot take the supervisor down; the supervisor marks such runs
interrupted. A lock file (``fcntl.flock``) keeps a single supervisor per runs folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..callbacks import Callback, Checkpointer
from ..checkpoints import CHECKPOINT_NAME, load_resumable, new_run_id, run_dir
from ..config import TrainConfig
from ..errors import UserError
from ..processes import log_line, start_cnn_core, try_lock
from ..settings import runs_dir
from .step_writer import StepWriter
from .store import RunStore, recover_stale

if TYPE_CHECKING:
    from ..data import DatasetBundle
    from ..trainer import FitResult, TrainState

HEARTBEAT_S = 5.0
EXECUTORS = ("local", "ray")  # where a run trains: a child process here, or a Ray task
LOG_NAME = "worker.log"
OURS = ("running", "interrupted")  # a run a live process may still finish (not re-queued meanwhile)


class StoreWriter(Callback):
    """Writes per-epoch metrics and live progress (epoch, batch i of n, images/s) to the store
    (the step series and snapshots: :class:`cnn_core.runs.step_writer.StepWriter`)."""

    def __init__(self, store: RunStore, run_id: str, interval: float = 1.0):
        self.store, self.run_id, self.interval = store, run_id, interval
        self._last = 0.0

    def _progress(self, state: TrainState, **extra: Any) -> None:
        now = time.time()
        self.store.update(
            self.run_id,
            epoch=state.epoch,
            step=state.step,
            num_batches=state.num_batches,
            progress_at=now,
            heartbeat_at=now,
            **extra,
        )
        self._last = time.monotonic()

    def on_fit_start(self, state: TrainState) -> None:
        self._progress(state, dataset_note=state.data.note)

    def on_batch_end(self, state: TrainState, loss: float) -> None:
        if time.monotonic() - self._last >= self.interval:
            self._progress(state, images_per_s=state.images_per_s())

    def on_epoch_end(self, state: TrainState, metrics: dict[str, Any]) -> None:
        self.store.write_metrics(
            self.run_id,
            metrics["epoch"],
            state.num_batches,
            {k: v for k, v in metrics.items() if k != "epoch"},
        )
        self._progress(state, images_per_s=metrics["images_per_s"])

    def on_stop(self, state: TrainState) -> None:
        self._progress(state)


TARGET_EPOCH = 0  # metric rows of "epoch 0" hold run-level results: the time to target
TARGET_KEYS = ("time_to_target_s", "images_to_target", "epoch_fraction", "val_accuracy")


class TargetWriter(Callback):
    """Records when the run reached its target accuracy, as metric rows of epoch
    :data:`TARGET_EPOCH` (read back by :func:`cnn_core.runs.api.get_run`)."""

    def __init__(self, store: RunStore, run_id: str):
        self.store, self.run_id = store, run_id

    def on_fit_end(self, state: TrainState) -> None:
        if state.target:
            values = {k: state.target[k] for k in TARGET_KEYS}
            self.store.write_metrics(self.run_id, TARGET_EPOCH, 0, values)


class StopFlag(Callback):
    """Stops training when the run's ``stop_requested`` is set (read at most every ``interval`` s)."""

    def __init__(self, store: RunStore, run_id: str, interval: float = 0.25):
        self.store, self.run_id, self.interval = store, run_id, interval
        self._checked = 0.0
        self._stop = False

    def should_stop(self, state: TrainState) -> bool:
        now = time.monotonic()
        if not self._stop and now - self._checked >= self.interval:
            self._checked = now
            self._stop = self.store.stop_requested(self.run_id)
        return self._stop


def error_text(exc: BaseException) -> str:
    """What the UI shows for a failed run: a UserError verbatim, else type and message."""
    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted from the keyboard"
    return f"{type(exc).__name__}: {exc}"


@contextmanager
def recorded(store: RunStore, run_id: str) -> Iterator[None]:
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
    store: RunStore,
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
        TargetWriter(store, run_id),
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


def lock_path(executor: str = "local") -> Path:
    """The lock file of the supervisor for ``executor`` runs (one supervisor per executor)."""
    return runs_dir() / ("worker.lock" if executor == "local" else f"worker-{executor}.lock")


def worker_pid(executor: str = "local") -> int | None:
    """The pid of the live supervisor of ``executor`` runs for this runs folder, or None."""
    fh = try_lock(lock_path(executor))
    if fh is not None:
        fh.close()
        return None
    text = lock_path(executor).read_text().strip()
    return int(text) if text.isdigit() else None


def log(message: str) -> None:
    """A line of the worker's log."""
    log_line("worker", message)


def _exit_reason(code: int) -> str:
    if code < 0:
        return f"worker process was killed by {signal.Signals(-code).name}"
    return f"worker process exited with code {code} before finishing"


class LocalRun:
    """A run training in a child process of the supervisor."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc

    def poll(self, store: RunStore) -> tuple[str, str] | None:
        """None while it trains; then the (status, reason) for a run it left unfinished."""
        code = self.proc.poll()
        return None if code is None else ("interrupted", _exit_reason(code))

    def shutdown(self) -> None:
        """Nothing to release: the stop flag in the store reaches the child."""


class Supervisor:
    """Claims queued runs of its executor FIFO and trains each, at most ``max_concurrent`` at
    once. This one trains in child processes; :class:`cnn_core.runs.ray_executor.RaySupervisor`
    sends them to a Ray cluster."""

    executor = "local"

    def __init__(
        self,
        max_concurrent: int = 1,
        threads: int | None = None,
        idle_exit: float = 60.0,
        poll: float = 0.25,
    ):
        self.max_concurrent = max(1, max_concurrent)
        self.threads = threads or default_threads(self.max_concurrent)
        self.idle_exit, self.poll = idle_exit, poll
        self.children: dict[str, Any] = {}  # run id -> LocalRun or another executor's handle
        self.stopping = False

    def run(self) -> int:
        """Supervise until idle for ``idle_exit`` s (or SIGTERM/SIGINT: stop runs gracefully)."""
        lock = try_lock(lock_path(self.executor), attempts=10)  # outlast a worker_pid() probe
        if lock is None:
            log(f"another {self.executor} worker is already running; exiting")
            return 0
        with lock:
            lock.truncate(0)
            lock.write(str(os.getpid()))
            lock.flush()
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self._request_shutdown)
            store = RunStore()
            for run_id in recover_stale(store):
                log(f"marked stale run {run_id} interrupted")
            if self.connect(store):
                log(
                    f"started {self.executor} executor (max {self.max_concurrent} concurrent, "
                    f"{self.threads} threads per run)"
                )
                self._loop(store)
            log("exiting")
        if not self.stopping:  # a run queued while we were exiting found the lock still held
            ensure_worker(self.idle_exit)
        return 0

    def connect(self, store: RunStore) -> bool:
        """Get ready to train (nothing to do for child processes); False: give up."""
        return True

    def _request_shutdown(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def _loop(self, store: RunStore) -> None:
        idle_since = time.monotonic()
        while True:
            self._reap(store)
            if self.stopping:
                for run_id in self.children:
                    store.update(run_id, only_if=("running",), stop_requested=1)
                if not self.children:
                    return
            while not self.stopping and len(self.children) < self.max_concurrent:
                row = store.claim_next(os.getpid(), self.executor)
                if row is None:
                    break
                self._spawn(store, row)
            if self.children or self.stopping:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= self.idle_exit:
                return
            time.sleep(self.poll)

    def launch(self, store: RunStore, row: dict[str, Any]) -> LocalRun:
        """Start training a claimed run; raises OSError if it cannot be started."""
        run_id = row["id"]
        proc = start_cnn_core(["worker", "--run", run_id, "--threads", str(self.threads)])
        store.update(run_id, only_if=("running",), worker_pid=proc.pid)
        log(f"claimed run {run_id} (pid {proc.pid})")
        return LocalRun(proc)

    def _spawn(self, store: RunStore, row: dict[str, Any]) -> None:
        try:
            self.children[row["id"]] = self.launch(store, row)
        except OSError as exc:
            store.finish(row["id"], "failed", error=f"could not start training: {exc}")

    def _reap(self, store: RunStore) -> None:
        for run_id, handle in list(self.children.items()):
            outcome = handle.poll(store)
            if outcome is None:
                continue
            del self.children[run_id]
            handle.shutdown()
            status, reason = outcome
            if store.finish(run_id, status, reason, only_if=("running",)):
                log(f"run {run_id}: {reason}; marked {status}")
            else:
                log(f"run {run_id} finished")


def ensure_worker(idle_exit: float | None = None, max_concurrent: int | None = None) -> int | None:
    """Start a detached supervisor for each executor with queued runs and no live supervisor
    (a local one training ``max_concurrent`` runs at once when given); returns the pid of the
    last one started, or None."""
    rows = RunStore().query("SELECT DISTINCT executor FROM runs WHERE status = 'queued'")
    started = None
    for executor in sorted(row[0] for row in rows):
        if worker_pid(executor) is not None:
            continue
        args = [] if idle_exit is None else ["--idle-exit", str(idle_exit)]
        args += ["--executor", executor] if executor != "local" else []
        if max_concurrent and executor == "local":
            args += ["--max-concurrent", str(max_concurrent)]
        started = start_cnn_core(["worker", *args], log=runs_dir() / LOG_NAME).pid
    return started

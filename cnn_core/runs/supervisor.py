"""The supervisor (``python -m cnn_core worker``): claims queued runs FIFO and trains each in
its own child process, so a crash or a ``SIGKILL`` in one run cannot take it down; it marks
such runs interrupted. On Linux the child is forked from the supervisor, which imported the
trainer once when it started (:func:`warm_up`), so a run starts training without paying the
imports again; elsewhere it is a fresh ``python -m cnn_core worker --run RUN_ID``. It is a background job
(:class:`cnn_core.processes.JobFiles` ``worker`` in the runs folder: one supervisor per
executor and runs folder); :func:`ensure_worker` starts one when runs are queued.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from typing import IO, Any, Protocol

from ..processes import JobFiles, pid_alive, start_cnn_core
from ..settings import app_server_pid, runs_dir
from .liveness import recover_stale
from .store import RunStore
from .worker import default_threads, log, run_child

EXECUTORS = ("local", "ray")  # where a run trains: a child process here, or a Ray task
FORK = sys.platform == "linux"  # fork run children from the warm supervisor (see module doc)


def supervisor_files(executor: str = "local") -> JobFiles:
    """The lock and log of the supervisor for ``executor`` runs: ``worker.lock`` /
    ``worker.log`` in the runs folder (``worker-ray.*`` for Ray)."""
    return JobFiles(runs_dir(), "worker" if executor == "local" else f"worker-{executor}")


def worker_pid(executor: str = "local") -> int | None:
    """The pid of the live supervisor of ``executor`` runs for this runs folder, or None (asking
    creates no file)."""
    return supervisor_files(executor).pid()


def _exit_reason(code: int) -> str:
    if code < 0:
        return f"worker process was killed by {signal.Signals(-code).name}"
    return f"worker process exited with code {code} before finishing"


class RunHandle(Protocol):
    """A run a supervisor started: :class:`LocalRun`, or another executor's
    (``ray_executor.RayRun``)."""

    def poll(self, store: RunStore) -> tuple[str, str] | None:
        """None while it trains; then the (status, reason) for a run it left unfinished."""

    def shutdown(self) -> None:
        """Release what it holds once it has ended."""


def warm_up() -> None:
    """Import what every run's training imports — torch, the trainer, and ``torch._dynamo``,
    which torch's first optimizer imports (seconds) — so forked children start warm. Runs no
    tensor operation: the process forks safely afterwards."""
    import torch._dynamo  # noqa: F401 - imported for its side effect

    from .. import trainer  # noqa: F401


def _forked_run(run_id: str, threads: int, lock: IO[str] | None) -> None:
    """A forked child: the signals a ``worker --run`` child has, without the supervisor's lock
    (the supervisor's own copy keeps it held), then train the run and exit with its code."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the supervisor stops us cleanly
    if lock is not None:
        lock.close()
    sys.exit(run_child(run_id, threads))


class LocalRun:
    """A run training in a child process of the supervisor (forked, or started)."""

    def __init__(self, proc: subprocess.Popen | multiprocessing.process.BaseProcess):
        self.proc = proc

    @property
    def pid(self) -> int:
        return int(self.proc.pid or 0)

    def poll(self, store: RunStore) -> tuple[str, str] | None:
        """None while it trains; then the (status, reason) for a run it left unfinished."""
        proc = self.proc
        code = proc.poll() if isinstance(proc, subprocess.Popen) else proc.exitcode
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
        stay_while: int | None = None,
    ):
        self.max_concurrent = max(1, max_concurrent)
        self.threads = threads or default_threads(self.max_concurrent)
        self.idle_exit, self.poll = idle_exit, poll
        self.stay_while = stay_while  # a pid (the app server): no idle exit while it lives
        self.children: dict[str, RunHandle] = {}
        self.stopping = False
        self.lock: IO[str] | None = None  # this supervisor's lock file while it runs

    def run(self) -> int:
        """Supervise until idle for ``idle_exit`` s after the ``stay_while`` process ended (or
        SIGTERM/SIGINT: stop runs gracefully)."""
        lock = supervisor_files(self.executor).acquire(attempts=10)  # outlast a worker_pid() probe
        if lock is None:
            log(f"another {self.executor} worker is already running; exiting")
            return 0
        with lock:
            self.lock = lock
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
        """Get ready to train (import the trainer for forked children); False: give up."""
        if FORK:
            warm_up()
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
            if self.children or self.stopping or self._kept():
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= self.idle_exit:
                return
            time.sleep(self.poll)

    def _kept(self) -> bool:
        return self.stay_while is not None and pid_alive(self.stay_while)

    def launch(self, store: RunStore, row: dict[str, Any]) -> RunHandle:
        """Start training a claimed run; raises OSError if it cannot be started."""
        run_id = row["id"]
        if FORK:
            fork = multiprocessing.get_context("fork")
            child = fork.Process(
                target=_forked_run, args=(run_id, self.threads, self.lock), name=f"run-{run_id}"
            )
            child.start()
            handle = LocalRun(child)
        else:
            args = ["worker", "--run", run_id, "--threads", str(self.threads)]
            handle = LocalRun(start_cnn_core(args))
        store.update(run_id, only_if=("running",), worker_pid=handle.pid)
        log(f"claimed run {run_id} (pid {handle.pid})")
        return handle

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


def ensure_worker(
    idle_exit: float | None = None, max_concurrent: int | None = None, ready: bool = False
) -> int | None:
    """Start a detached supervisor for each executor with queued runs and no live supervisor
    (a local one training ``max_concurrent`` runs at once when given; with ``ready``, a local
    one even when nothing is queued); returns the pid of the last one started, or None.
    Started inside the app server (:func:`cnn_core.settings.app_server_pid`), a supervisor
    stays ready for the next Launch while the server lives."""
    rows = RunStore().query("SELECT DISTINCT executor FROM runs WHERE status = 'queued'")
    executors = {row[0] for row in rows} | ({"local"} if ready else set())
    started = None
    for executor in sorted(executors):
        if worker_pid(executor) is not None:
            continue
        args = [] if idle_exit is None else ["--idle-exit", str(idle_exit)]
        server = app_server_pid()
        args += ["--stay-while", str(server)] if server and executor == "local" else []
        args += ["--executor", executor] if executor != "local" else []
        if max_concurrent and executor == "local":
            args += ["--max-concurrent", str(max_concurrent)]
        proc = supervisor_files(executor).start(["worker", *args])
        if proc is not None:  # None: another one took the lock since worker_pid() asked
            started = proc.pid
    return started

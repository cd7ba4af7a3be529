"""How every background job runs — the runs' supervisor, a sweep's driver, a health check — one
way (:class:`JobFiles`): ``python -m cnn_core …`` started detached from the project root, its
output in a log file, alive exactly while its exclusive lock file (``fcntl.flock``, its pid
inside) is held. The starter takes the lock and hands it to the process it starts (an
inherited file descriptor), so a job is alive from the moment it is started until its process
ends, and a second start of the same job starts nothing. Asking whether a job is alive
creates nothing. :mod:`cnn_core.jobs` lists and stops the jobs of every kind through one call.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .settings import PROJECT_ROOT, runs_dir

ACTIVE = ("queued", "running", "stopping")  # a job's states before it ends, as read
LOCK_ENV = "CNN_LAB_JOB_LOCK"  # "<fd>:<lock path>": the lock a started job inherits


def start_cnn_core(
    args: list[str], *, log: Path | None = None, lock: IO[str] | None = None
) -> subprocess.Popen:
    """``python -m cnn_core ARGS`` from the project root, with this process's runs folder.
    With ``log``, detached (its own session) and writing its output there; with ``lock`` (a
    held lock file), the process inherits it (see :meth:`JobFiles.acquire`)."""
    env = {k: v for k, v in os.environ.items() if k != LOCK_ENV}
    env["CNN_LAB_RUNS_DIR"] = str(runs_dir())
    cmd = [sys.executable, "-m", "cnn_core", *args]
    if log is None:
        return subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL)
    if lock is not None:
        env[LOCK_ENV] = f"{lock.fileno()}:{lock.name}"
    with open(log, "ab") as out:
        return subprocess.Popen(
            cmd,
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=() if lock is None else (lock.fileno(),),
        )


def try_lock(path: Path, attempts: int = 1) -> IO[str] | None:
    """``path`` opened and exclusively locked (tries ``attempts`` times, 0.1 s apart); None while
    another live process holds it. The lock lasts until the returned file is closed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+")  # noqa: SIM115 - held open by the caller for as long as it needs
    for attempt in range(attempts):
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fh
        except BlockingIOError:
            if attempt + 1 < attempts:
                time.sleep(0.1)
    fh.close()
    return None


def pid_alive(pid: int) -> bool:
    """True if a process with this id exists and has not exited (a zombie, exited but not yet
    reaped by its parent, is not alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # Linux: the state letter after "(command name)" in /proc/<pid>/stat; Z = zombie
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS), or it ended just now: trust signal 0
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


@dataclass(frozen=True)
class JobFiles:
    """A background job's lock and log files: ``<folder>/<name>.lock`` and ``.log``."""

    folder: Path
    name: str

    @property
    def lock(self) -> Path:
        return self.folder / f"{self.name}.lock"

    @property
    def log(self) -> Path:
        return self.folder / f"{self.name}.log"

    def acquire(self, attempts: int = 1) -> IO[str] | None:
        """Take the lock for this process and write its pid into it (``attempts`` as in
        :func:`try_lock`); None while another process holds it. A process started by
        :meth:`start` already holds it: this returns the inherited file. Held until the file
        is closed."""
        fd, _, path = os.environ.get(LOCK_ENV, "").partition(":")
        fh: IO[str] | None
        if path == str(self.lock) and fd.isdigit():
            del os.environ[LOCK_ENV]
            fh = open(int(fd), "a+")  # noqa: SIM115 - the inherited lock, held by the caller
        else:
            fh = try_lock(self.lock, attempts)
        if fh is not None:
            _write_pid(fh, os.getpid())
        return fh

    def alive(self) -> bool:
        """True while some process holds the lock (asking creates no file)."""
        if not self.lock.is_file():
            return False
        fh = try_lock(self.lock)
        if fh is None:
            return True
        fh.close()
        return False

    def pid(self) -> int | None:
        """The pid of the live process holding the lock, or None (also while a process that
        just took it has not written its pid yet)."""
        if not self.alive():
            return None
        text = self.lock.read_text().strip()
        return int(text) if text.isdigit() else None

    def start(self, args: list[str]) -> subprocess.Popen | None:
        """Start ``python -m cnn_core ARGS`` detached, its output appended to the log, holding
        the lock from now on (the process calls :meth:`acquire` to take it over); None, and
        nothing started, while the job is alive already."""
        self.folder.mkdir(parents=True, exist_ok=True)
        lock = try_lock(self.lock, attempts=10)  # outlast a brief alive() probe
        if lock is None:
            return None
        with lock:
            proc = start_cnn_core(args, log=self.log, lock=lock)
            _write_pid(lock, proc.pid)
        return proc

    def terminate(self, pid: int | None = None) -> bool:
        """Send SIGTERM to the job (the lock's holder, else ``pid`` if that process is alive)
        and the process group it leads; False if there was no process to signal."""
        target = self.pid() or (pid if pid and pid_alive(pid) else None)
        if target is None:
            return False
        try:
            os.killpg(target, signal.SIGTERM)  # detached jobs lead their own session
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(target, signal.SIGTERM)
            except ProcessLookupError:
                return False
        return True


def _write_pid(lock: IO[str], pid: int) -> None:
    lock.seek(0)
    lock.truncate(0)
    lock.write(str(pid))
    lock.flush()


def log_line(who: str, message: str) -> None:
    """One timestamped line of a background process's log (its stdout)."""
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {who} {os.getpid()}: {message}", flush=True)

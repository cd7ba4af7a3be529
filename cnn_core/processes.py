"""Background processes shared by runs and sweeps: starting ``python -m cnn_core …`` from the
project root, and the exclusive lock files (``fcntl.flock``) that keep one supervisor or one
sweep driver alive at a time."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from .settings import PROJECT_ROOT, runs_dir


def start_cnn_core(args: list[str], *, log: Path | None = None, **popen: Any) -> subprocess.Popen:
    """``python -m cnn_core ARGS`` from the project root, with this process's runs folder.
    With ``log``, detached (its own session) and writing its output there."""
    env = {**os.environ, "CNN_LAB_RUNS_DIR": str(runs_dir())}
    cmd = [sys.executable, "-m", "cnn_core", *args]
    if log is None:
        return subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, **popen)
    with open(log, "ab") as out:
        return subprocess.Popen(
            cmd,
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
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


def log_line(who: str, message: str) -> None:
    """One timestamped line of a background process's log (its stdout)."""
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {who} {os.getpid()}: {message}", flush=True)

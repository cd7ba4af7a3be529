"""Data-health checks as background jobs (kind "health" of :mod:`cnn_core.jobs`), so no page
trains: :func:`start_check` stores the request and starts ``python -m cnn_core health --job ID``
(:class:`~cnn_core.processes.JobFiles` in ``<runs dir>/health/``); :func:`check_status` reads a
check's state and report, :func:`list_checks` every check, :func:`stop_check` stops one.

A check is queued (started, not yet checking), running, or ended: completed, failed, stopped.
Reads never write: a check recorded queued or running whose process is gone reads as
interrupted, one asked to stop as stopping.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from ..checkpoints import new_run_id, validate_run_id
from ..config import TrainConfig
from ..errors import UserError
from ..processes import ACTIVE, JobFiles, pid_alive
from ..resolve import resolve
from ..settings import runs_dir

CHECKS_DIR = "health"  # in the runs folder: <id>.request/state/report.json, .lock, .log, .stop
LIVE = ("queued", "running")  # recorded states while its process should be alive


class _Stopped(BaseException):
    """Raised in a check's process by SIGTERM (a stop request); not an error of the check."""


def checks_dir() -> Path:
    """Where the checks' requests, states, reports, locks and logs live."""
    return runs_dir() / CHECKS_DIR


def _files(check_id: str) -> JobFiles:
    try:
        return JobFiles(checks_dir(), validate_run_id(check_id))
    except UserError:
        raise UserError(f"invalid health check id {check_id!r}") from None


def _path(check_id: str, part: str) -> Path:
    return checks_dir() / f"{check_id}.{part}.json"


def _stop_file(check_id: str) -> Path:
    """Present once a stop was asked for (the check's process may not have seen it yet)."""
    return checks_dir() / f"{check_id}.stop"


def _write(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, default=float))
    os.replace(tmp, path)


def _record(check_id: str, state: str, message: str, **extra: Any) -> None:
    """Write the check's state, keeping what its start recorded (label, times)."""
    path = _path(check_id, "state")
    before = json.loads(path.read_text()) if path.is_file() else {}
    ended = {"finished_at": time.time()} if state not in LIVE else {}
    _write(path, {**before, "state": state, "message": message, **ended, **extra})


def _label(config: TrainConfig) -> str:
    """``fashion-mnist`` or ``image-folder · pets``: what the check looks at."""
    folder = Path(config.data_dir).name if config.data_dir else ""
    return config.dataset + (f" · {folder}" if folder and folder != config.dataset else "")


def start_check(config: TrainConfig, folds: int = 3, labels: bool = True) -> str:
    """Start ``check_health`` for ``config`` in a background job; returns the check's id."""
    resolved = resolve(config)
    check_id = new_run_id()
    checks_dir().mkdir(parents=True, exist_ok=True)
    _write(
        _path(check_id, "request"),
        {"config": resolved.to_dict(), "folds": folds, "labels": labels},
    )
    _write(
        _path(check_id, "state"),
        {
            "state": "queued",
            "message": "starting",
            "label": _label(resolved),
            "created_at": time.time(),
        },
    )
    _files(check_id).start(["health", "--job", check_id])
    return check_id


def check_status(check_id: str) -> dict[str, Any]:
    """``{"id", "state", "message", "label", "created_at", "finished_at"?, "pid"}`` as read
    now (see the module docstring), plus, when completed, ``"report"`` and ``"config"`` (the
    resolved config it checked). UserError for an unknown id."""
    files = _files(check_id)
    path = _path(check_id, "state")
    if not path.is_file():
        raise UserError(f"no health check {check_id}")
    status = {"id": check_id, **json.loads(path.read_text()), "pid": files.pid()}
    if status["state"] in LIVE:
        if not files.alive():
            status.update(state="interrupted", message="its process is gone")
        elif _stop_file(check_id).is_file():
            status["state"] = "stopping"
    if status["state"] == "completed":
        status["report"] = json.loads(_path(check_id, "report").read_text())
        status["config"] = json.loads(_path(check_id, "request").read_text())["config"]
    return status


def list_checks(active_only: bool = False) -> list[dict[str, Any]]:
    """Every check (only those not ended yet with ``active_only``) as :func:`check_status`
    reads it, without reports, newest first."""
    folder = checks_dir()
    found = sorted(folder.glob("*.state.json"), reverse=True) if folder.is_dir() else []
    out = []
    for path in found:
        status = check_status(path.name.removesuffix(".state.json"))
        if not active_only or status["state"] in ACTIVE:
            out.append({k: v for k, v in status.items() if k not in ("report", "config")})
    return out


def stop_check(check_id: str, wait: float = 0.0) -> dict[str, Any]:
    """Stop a queued or running check (its process gets SIGTERM and records "stopped"); waits
    up to ``wait`` s for its process to end. Returns :func:`check_status`."""
    status = check_status(check_id)
    if status["state"] not in ACTIVE:
        raise UserError(f"health check {check_id} is {status['state']}: nothing to stop")
    files = _files(check_id)
    _stop_file(check_id).touch()
    files.terminate()

    def ended() -> bool:  # its lock released and its process gone (it releases the lock first)
        return not files.alive() and not (status["pid"] and pid_alive(status["pid"]))

    deadline = time.monotonic() + wait
    while not ended() and time.monotonic() < deadline:
        time.sleep(0.05)
    if ended() and check_status(check_id)["state"] == "interrupted":
        _record(check_id, "stopped", "stopped before it could record it")  # killed early
    return check_status(check_id)


def run_check(check_id: str) -> int:
    """The check's process (``health --job ID``): run the requested check under the job's
    lock, recording progress and the outcome (a SIGTERM ends it as "stopped")."""
    from .report import check_health

    lock = _files(check_id).acquire(attempts=10)
    if lock is None:
        raise UserError(f"health check {check_id} is already running")
    with lock:
        request = json.loads(_path(check_id, "request").read_text())

        def stop(signum: int, frame: Any) -> None:
            raise _Stopped

        try:
            signal.signal(signal.SIGTERM, stop)
            if _stop_file(check_id).is_file():
                raise _Stopped
            _record(check_id, "running", "loading the data", started_at=time.time())
            report = check_health(
                TrainConfig.from_dict(request["config"], strict=False),
                folds=request["folds"],
                labels=request["labels"],
                progress=lambda message: _record(check_id, "running", message),
            )
        except _Stopped:
            _record(check_id, "stopped", "stopped on request")
            return 0
        except UserError as exc:
            _record(check_id, "failed", str(exc))
            return 2
        except Exception as exc:
            _record(check_id, "failed", f"{type(exc).__name__}: {exc}")
            raise
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _write(_path(check_id, "report"), report)
        _record(check_id, "completed", f"done in {report['seconds']:.1f} s")
    return 0

"""Data-health checks in a background process, so no page trains: start one, poll its state,
read its report. Requests, states and reports are small JSON files in ``<cache>/health/``."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .. import settings
from ..config import TrainConfig
from ..errors import UserError
from ..resolve import resolve

_CHILDREN: dict[str, subprocess.Popen] = {}  # reaped by job_status (no zombies in the app)


def jobs_dir() -> Path:
    return settings.cache_dir() / "health"


def _write(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, default=float))
    os.replace(tmp, path)


def start_check(config: TrainConfig, folds: int = 3, labels: bool = True) -> str:
    """Start ``check_health`` for ``config`` in a new process; returns the job's key."""
    request = {"config": resolve(config).to_dict(), "folds": folds, "labels": labels}
    key = hashlib.sha1(json.dumps(request, sort_keys=True).encode()).hexdigest()[:16]
    folder = jobs_dir()
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / f"{key}.request.json", request)
    (folder / f"{key}.report.json").unlink(missing_ok=True)
    _write(folder / f"{key}.state.json", {"state": "running", "message": "starting"})
    with open(folder / f"{key}.log", "wb") as log:
        _CHILDREN[key] = subprocess.Popen(
            [sys.executable, "-m", "cnn_core.health.jobs", key],
            cwd=settings.PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
    return key


def job_status(key: str) -> dict[str, Any]:
    """``{"state": "running" | "done" | "failed", "message"}`` plus, when done, ``"report"``
    and ``"config"`` (the resolved config it checked)."""
    folder = jobs_dir()
    path = folder / f"{key}.state.json"
    if not key.isalnum() or not path.is_file():
        return {"state": "failed", "message": "no such health check"}
    state = json.loads(path.read_text())
    child = _CHILDREN.get(key)
    if state["state"] == "running" and child is not None and child.poll() is not None:
        state = json.loads(path.read_text())  # it may have finished just now
        if state["state"] == "running":
            log = (folder / f"{key}.log").read_text(errors="replace").strip().splitlines()
            last = f": {log[-1][:300]}" if log else ""
            state = {
                "state": "failed",
                "message": f"the check stopped (exit {child.returncode}){last}",
            }
    if state["state"] == "done":
        state["report"] = json.loads((folder / f"{key}.report.json").read_text())
        state["config"] = json.loads((folder / f"{key}.request.json").read_text())["config"]
    return state


def _run(key: str) -> int:
    """The child process: run the requested check, recording progress and the outcome."""
    from .report import check_health

    folder = jobs_dir()
    request = json.loads((folder / f"{key}.request.json").read_text())
    state = folder / f"{key}.state.json"

    def progress(message: str) -> None:
        _write(state, {"state": "running", "message": message})

    try:
        report = check_health(
            TrainConfig.from_dict(request["config"], strict=False),
            folds=request["folds"],
            labels=request["labels"],
            progress=progress,
        )
    except UserError as exc:
        _write(state, {"state": "failed", "message": str(exc)})
        return 2
    _write(folder / f"{key}.report.json", report)
    _write(state, {"state": "done", "message": f"done in {report['seconds']:.1f} s"})
    return 0


if __name__ == "__main__":
    sys.exit(_run(sys.argv[1]))

"""Every background job of every kind — a run, a sweep, a health check — as one record
(:class:`Job`), listed and stopped through one call each (:func:`list_jobs`, :func:`get_job`,
:func:`stop_job`). Each kind keeps its own logic (:mod:`cnn_core.runs`, :mod:`cnn_core.sweeps`,
:mod:`cnn_core.health.jobs`); their processes start, lock and end the same way
(:class:`cnn_core.processes.JobFiles`). Listing only reads: a job whose process is gone reads
as interrupted, and nothing is rewritten.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import runs, sweeps
from .errors import UserError
from .health import jobs as health_jobs
from .processes import ACTIVE
from .sweeps.study import live_drivers


@dataclass(frozen=True)
class Job:
    """A background job as every view shows it. ``state`` is queued, running or stopping while
    it is active, then completed, failed, stopped or interrupted (a sweep also reads created
    before its first start); ``progress`` says how far it got, ``fraction`` (0–1) when known."""

    kind: str  # "run", "sweep" or "health"
    id: str
    label: str
    state: str
    progress: str = ""
    fraction: float | None = None
    created_at: float | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "active": self.active}


def _run_job(run: dict[str, Any]) -> Job:
    label = f"{run['name'] or run['id']} · {run['model']} · {run['dataset']}"
    p = run["progress"]
    return Job("run", run["id"], label, run["status"], p["text"], p["fraction"], run["created_at"])


def _sweep_job(
    sweep_id: str, name: str, dataset: str, state: str, created_at: float, done: int,
    budget: int, best: float | None,
) -> Job:  # fmt: skip
    progress = f"{done}/{budget} trials" + (f" · best {best:.2%}" if best is not None else "")
    label = f"{name or 'sweep ' + sweep_id} · {dataset}"
    return Job("sweep", sweep_id, label, state, progress, min(1.0, done / budget), created_at)


def _sweep_status_job(status: dict[str, Any]) -> Job:
    """From :func:`cnn_core.sweeps.sweep_status`."""
    done = sum(n for state, n in status["counts"].items() if state != "waiting")
    best = status["best"]["value"] if status["best"] else None
    return _sweep_job(
        status["id"],
        status["name"],
        status["base_config"]["dataset"],
        status["status"],
        status["created_at"],
        done,
        status["budget"]["trials"],
        best,
    )


def _sweep_row_job(row: dict[str, Any]) -> Job:
    """From a row of :func:`cnn_core.sweeps.list_sweeps`."""
    return _sweep_job(
        row["id"],
        row["name"],
        row["dataset"],
        row["status"],
        row["created_at"],
        row["n_trials"],
        row["trials"],
        row["best_value"],
    )


def _health_job(check: dict[str, Any]) -> Job:
    return Job(
        "health",
        check["id"],
        f"health check · {check['label']}",
        check["state"],
        check["message"],
        None,
        check["created_at"],
    )


@dataclass(frozen=True)
class Kind:
    """How one kind of job is listed, read and stopped (each returns :class:`Job` records)."""

    list: Callable[[bool], list[Job]]  # active_only -> jobs
    get: Callable[[str], Job]
    stop: Callable[[str, float], Job]  # (id, seconds to wait for it to end) -> job


def _runs(active_only: bool) -> list[Job]:
    found = [_run_job(r) for r in runs.list_runs()]
    return [j for j in found if j.active] if active_only else found


def _sweeps(active_only: bool) -> list[Job]:
    if active_only:  # only sweeps whose driver is alive (lock files), not every study
        return [
            _sweep_status_job(sweeps.sweep_status(i, importances=False)) for i in live_drivers()
        ]
    return [_sweep_row_job(s) for s in sweeps.list_sweeps()]


def _checks(active_only: bool) -> list[Job]:
    return [_health_job(c) for c in health_jobs.list_checks(active_only)]


KINDS: dict[str, Kind] = {
    "run": Kind(
        _runs,
        lambda i: _run_job(runs.get_run(i)),
        lambda i, wait: _run_job(runs.stop(i, wait)),
    ),
    "sweep": Kind(
        _sweeps,
        lambda i: _sweep_status_job(sweeps.sweep_status(i, importances=False)),
        lambda i, wait: _sweep_status_job(sweeps.stop_sweep(i, wait)),
    ),
    "health": Kind(
        _checks,
        lambda i: _health_job(health_jobs.check_status(i)),
        lambda i, wait: _health_job(health_jobs.stop_check(i, wait)),
    ),
}


def _kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise UserError(f"unknown kind of job {kind!r}; choose one of {', '.join(KINDS)}")
    return KINDS[kind]


def list_jobs(active_only: bool = True) -> list[Job]:
    """The jobs of every kind (only the active ones unless ``active_only`` is False), newest
    first."""
    found = [job for kind in KINDS.values() for job in kind.list(active_only)]
    return sorted(found, key=lambda j: j.created_at or 0.0, reverse=True)


def get_job(kind: str, job_id: str) -> Job:
    """One job as it reads now; UserError for an unknown kind or id."""
    return _kind(kind).get(job_id)


def stop_job(kind: str, job_id: str, wait: float = 0.0) -> Job:
    """Stop a job the way its kind stops (a run saves a resumable checkpoint, a sweep stops its
    trials, a health check ends); waits up to ``wait`` s for it to end. Returns the job."""
    return _kind(kind).stop(job_id, wait)

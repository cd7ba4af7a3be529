"""``jobs list|show|stop``: the background jobs of every kind (runs, sweeps, health checks)."""

from __future__ import annotations

import argparse
import functools

from ..jobs import KINDS, Job, get_job, list_jobs, stop_job
from .common import add_subcommand, emit


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``jobs`` (list/show/stop) on ``sub``."""
    jobs = sub.add_parser(
        "jobs", help="list and stop background jobs: runs, sweeps and health checks"
    ).add_subparsers(dest="jobs_command", required=True)
    add = functools.partial(add_subcommand, jobs, id_arg=None)
    add("list", cmd_list, "active jobs of every kind, newest first").add_argument(
        "--all", action="store_true", help="every job, ended ones too"
    )
    for name, func, text in (
        ("show", cmd_show, "one job's state and progress"),
        ("stop", cmd_stop, "stop a job as its kind stops (a run resumably)"),
    ):
        p = add(name, func, text)
        p.add_argument("kind", choices=list(KINDS))
        p.add_argument("job_id")
    p.add_argument("--wait", type=float, default=5.0, help="seconds to wait for it to end")


def _line(job: Job) -> str:
    return f"{job.kind:<6}  {job.id:<22}  {job.state:<11}  {job.label}  {job.progress}".rstrip()


def cmd_list(args: argparse.Namespace) -> int:
    found = list_jobs(active_only=not args.all)
    empty = "no jobs" if args.all else "no active jobs"
    emit(args, [j.to_dict() for j in found], "\n".join(map(_line, found)) or empty)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    job = get_job(args.kind, args.job_id)
    emit(args, job.to_dict(), _line(job))
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    job = stop_job(args.kind, args.job_id, args.wait)
    emit(args, job.to_dict(), _line(job))
    return 0

"""Commands for background runs: ``submit``, ``runs ...`` and ``worker``."""

from __future__ import annotations

import argparse
import functools
import os
import signal
import time
from typing import Any

from ..runs import api
from ..runs.exporters import FORMATS
from ..runs.results import ending_text, outcome
from ..runs.store import STATUSES
from ..runs.supervisor import EXECUTORS, Supervisor
from ..runs.worker import default_threads, run_child
from .common import add_config_args, add_runs_dir, add_subcommand, config_from_args, emit


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``submit``, ``runs`` (list/show/stop/...) and ``worker`` on ``sub``."""
    p = sub.add_parser(
        "submit", help="queue a training run for the background worker and return at once"
    )
    add_config_args(p)
    add_runs_dir(p)
    p.add_argument(
        "--no-worker", action="store_true", help="only queue the run; do not start a worker"
    )
    add_executor_args(p)
    p.set_defaults(func=cmd_submit)

    runs = sub.add_parser("runs", help="list and manage background runs").add_subparsers(
        dest="runs_command", required=True
    )

    add = functools.partial(add_subcommand, runs, id_arg="run_id")
    p = add("list", cmd_list, "list runs, newest first", id_arg=None)
    p.add_argument("--status", choices=STATUSES)
    for option in ("--dataset", "--model", "--tag", "--search"):
        p.add_argument(option)
    add("show", cmd_show, "config, status, progress and metrics of one run")
    add("stop", cmd_stop, "stop a queued or running run (resumable)").add_argument(
        "--wait", type=float, default=5.0, help="seconds to wait for a running run to stop"
    )
    add("resume", cmd_resume, "continue a stopped, interrupted or failed run")
    add("extend", cmd_extend, "train a finished run for more epochs").add_argument(
        "--epochs", type=int, required=True, help="epochs to add"
    )
    add("delete", cmd_delete, "remove a run's record, metrics and files")
    add("export", cmd_export, "export a run's model and check its outputs").add_argument(
        "--format", choices=FORMATS, default="onnx"
    )
    add(
        "recover",
        cmd_recover,
        "record runs whose process is gone as interrupted (reads only report them so)",
        id_arg=None,
    )
    add("rename", cmd_rename, "rename a run").add_argument("name")
    add("tag", cmd_tag, "replace a run's tags").add_argument("tags", nargs="*")

    p = sub.add_parser("worker", help="train queued runs in the background (started automatically)")
    p.add_argument(
        "--max-concurrent",
        type=int,
        default=0,
        help="runs trained at once (default: 1 here; with Ray, as many as the cluster's CPUs allow)",
    )
    add_executor_args(p)
    p.add_argument("--cpus-per-run", type=int, default=1, help="Ray: CPUs of each run's task")
    p.add_argument("--gpus-per-run", type=int, default=0, help="Ray: GPUs of each run's task")
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads per run whose config says 0 (default: cores - 1)",
    )
    p.add_argument(
        "--idle-exit", type=float, default=60.0, help="exit after this many idle seconds"
    )
    p.add_argument(
        "--stay-while",
        type=int,
        metavar="PID",
        help="no idle exit while process PID lives (the app server keeps its worker ready)",
    )
    p.add_argument("--run", help=argparse.SUPPRESS)  # internal: train one claimed run
    p.add_argument(
        "--runs-dir", help="checkpoints folder (default: ./checkpoints or $CNN_LAB_RUNS_DIR)"
    )
    p.set_defaults(func=cmd_worker)


def add_executor_args(p: argparse.ArgumentParser) -> None:
    """``--executor`` (where runs train) and ``--ray-address``."""
    p.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="local: a worker process on this machine (default); ray: a Ray cluster",
    )
    p.add_argument(
        "--ray-address",
        help="the Ray cluster: auto (started with `ray start --head`) or ray://host:10001 "
        "(default: $CNN_LAB_RAY_ADDRESS or auto)",
    )


def apply_ray_address(args: argparse.Namespace) -> None:
    """Pass ``--ray-address`` on to this process and the supervisors it starts."""
    if args.ray_address:
        os.environ["CNN_LAB_RAY_ADDRESS"] = args.ray_address


# ---- formatting -------------------------------------------------------------------------------
def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def _status_text(run: dict[str, Any]) -> str:
    text = f"{outcome(run)} ({api.progress_text(run, speed=True)})"
    return text + (f": {run['error']}" if run["error"] else "")


def _accuracy(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def target_text(run: dict[str, Any]) -> str:
    """'reached target 0.91 in 12.3 s (45,056 images)' or 'target 0.91 not reached'."""
    if run["time_to_target_s"] is None:
        return f"target {run['target_accuracy']:g} not reached"
    return (
        f"reached target {run['target_accuracy']:g} in {run['time_to_target_s']:.1f} s "
        f"of training ({run['images_to_target']:,} images)"
    )


def results_text(run: dict[str, Any]) -> str:
    """A run's results (:mod:`cnn_core.runs.results`) in one line."""
    if run["best_val_accuracy"] is None:
        parts = ["no validation yet"]
    else:
        parts = [
            f"val accuracy {run['val_accuracy']:.4f}, best {run['best_val_accuracy']:.4f} "
            f"at epoch {run['best_epoch_fraction']:.2f}"
        ]
    if run["train_seconds"] is not None:
        parts.append(f"{run['train_seconds']:.1f} s of training")
    if run["ended_by"]:
        parts.append(ending_text(run) or f"ended by {run['ended_by']}")
    if run["target_status"]:
        parts.append(target_text(run))
    return "; ".join(parts)


LIST_HEAD = f"{'id':<22}  {'status':<11} {'val acc':>7} {'best':>7}  model dataset       name"


def _list_line(run: dict[str, Any]) -> str:
    acc, best = _accuracy(run["val_accuracy"]), _accuracy(run["best_val_accuracy"])
    return (
        f"{run['id']:<22}  {outcome(run):<11} {acc:>7} {best:>7}  {run['model']:<5} "
        f"{run['dataset']:<13} {run['name']}"
    )


def _metrics_table(rows: list[dict[str, Any]]) -> str:
    head = f"{'epoch':>5} {'train loss':>10} {'train acc':>9} {'val loss':>9} {'val acc':>8} {'seconds':>8} {'img/s':>8}"
    lines = [head] + [
        f"{int(m['epoch']):>5} {m.get('train_loss', 0):>10.4f} {m.get('train_accuracy', 0):>9.4f} "
        f"{m.get('val_loss', 0):>9.4f} {m.get('val_accuracy', 0):>8.4f} {m.get('seconds', 0):>8.1f} "
        f"{m.get('images_per_s', 0):>8,.0f}"
        for m in rows
    ]
    return "\n".join(lines)


def _show_text(run: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    config = " ".join(
        f"{k}={v}" for k, v in sorted(run["config"].items()) if v not in (None, "", [])
    )
    lines = [
        f"run {run['id']}  {run['name']}",
        f"status:     {_status_text(run)}",
        f"created:    {_when(run['created_at'])}  started: {_when(run['started_at'])}  "
        f"finished: {_when(run['finished_at'])}",
        f"tags:       {', '.join(run['tags']) or '-'}",
        f"results:    {results_text(run)}",
        f"checkpoint: {run['checkpoint'] or '-'}",
        f"config:     {config}",
    ]
    lines += [f"data note:  {run['dataset_note']}"] if run["dataset_note"] else []
    lines += [f"notes:      {run['notes']}"] if run["notes"] else []
    return "\n".join(lines + ["", _metrics_table(rows) if rows else "no finished epochs yet"])


# ---- commands ---------------------------------------------------------------------------------
def cmd_submit(args: argparse.Namespace) -> int:
    apply_ray_address(args)
    run_id = api.submit(
        config_from_args(args), start_worker=not args.no_worker, executor=args.executor
    )
    emit(args, {"run_id": run_id, "status": "queued"}, run_id)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    runs = api.list_runs(
        status=args.status, dataset=args.dataset, model=args.model, tag=args.tag, search=args.search
    )
    emit(args, runs, "\n".join([LIST_HEAD, *map(_list_line, runs)]) if runs else "no runs")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    run, rows = api.get_run(args.run_id), api.metrics(args.run_id)
    emit(args, {**run, "metrics": rows, "steps": api.steps(args.run_id)}, _show_text(run, rows))
    return 0


def _emit_status(args: argparse.Namespace, run: dict[str, Any]) -> int:
    emit(args, run, f"run {run['id']}: {_status_text(run)}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    return _emit_status(args, api.stop(args.run_id, wait=args.wait))


def cmd_resume(args: argparse.Namespace) -> int:
    return _emit_status(args, api.resume(args.run_id))


def cmd_extend(args: argparse.Namespace) -> int:
    return _emit_status(args, api.extend(args.run_id, args.epochs))


def cmd_rename(args: argparse.Namespace) -> int:
    return _emit_status(args, api.rename(args.run_id, args.name))


def cmd_tag(args: argparse.Namespace) -> int:
    return _emit_status(args, api.tag(args.run_id, args.tags))


def cmd_delete(args: argparse.Namespace) -> int:
    api.delete(args.run_id)
    emit(args, {"run_id": args.run_id, "deleted": True}, f"run {args.run_id} deleted")
    return 0


def cmd_recover(args: argparse.Namespace) -> int:
    marked = api.recover()
    text = f"marked interrupted: {' '.join(marked)}" if marked else "no stale runs"
    emit(args, {"interrupted": marked}, text)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    result = api.export(args.run_id, args.format)
    diff = result["max_abs_diff"]
    emit(
        args,
        result,
        result["path"] + ("" if diff is None else f"  (max abs diff vs PyTorch {diff:.2e})"),
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    if args.run:
        from ..checkpoints import validate_run_id

        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the supervisor stops us cleanly
        return run_child(validate_run_id(args.run), args.threads or default_threads())
    apply_ray_address(args)
    if args.executor == "ray":
        from ..runs.ray_executor import RaySupervisor

        return RaySupervisor(
            args.max_concurrent,
            idle_exit=args.idle_exit,
            cpus_per_run=args.cpus_per_run,
            gpus_per_run=args.gpus_per_run,
        ).run()
    return Supervisor(
        args.max_concurrent, args.threads or None, args.idle_exit, stay_while=args.stay_while
    ).run()

"""Commands for sweeps: ``sweep`` (create and drive one to the end) and
``sweep list|show|run|resume|stop|train-best``."""

from __future__ import annotations

import argparse
import functools
import json
from typing import Any

from ..errors import UserError
from ..formats import value_text
from ..sweeps import api
from ..sweeps.driver import params_text
from ..sweeps.space import default_space, searchable
from ..sweeps.study import PRUNERS, SAMPLERS
from .common import (
    add_config_args,
    add_runs_dir,
    add_subcommand,
    config_from_args,
    emit,
    given_config_fields,
)
from .runs import add_executor_args, apply_ray_address


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``sweep`` and its sub-commands on ``sub``."""
    p = sub.add_parser(
        "sweep",
        help="hyperparameter / architecture search with Optuna (trials are background runs)",
        description="Without a sub-command: create a sweep and drive it to the end here "
        "(progress on stderr), then print the best config. Config options given explicitly "
        "(e.g. --optimizer adam) are fixed; the other searchable settings are searched.",
    )
    add_config_args(p)
    add_runs_dir(p)
    p.add_argument("--trials", type=int, default=12, help="trial budget (default 12)")
    p.add_argument("--timeout", type=float, help="time budget in seconds (no new trial after it)")
    p.add_argument("--sampler", choices=tuple(SAMPLERS), default="tpe")
    p.add_argument("--pruner", choices=tuple(PRUNERS), default="median")
    p.add_argument(
        "--search", help=f"comma-separated settings to search ({','.join(searchable())})"
    )
    p.add_argument("--models", help="architectures to search, e.g. v1,v3")
    p.add_argument(
        "--space", help='JSON ranges, e.g. \'{"lr": {"low": 1e-4, "high": 1e-2, "log": true}}\''
    )
    p.add_argument("--parallel", type=int, default=1, help="trials trained at once (default 1)")
    add_executor_args(p)
    p.add_argument("--detach", action="store_true", help="drive it in the background instead")
    p.set_defaults(func=cmd_sweep)

    commands = p.add_subparsers(dest="sweep_command")

    add = functools.partial(add_subcommand, commands, id_arg="sweep_id")

    add("list", cmd_list, "list sweeps, newest first", id_arg=None)
    add("show", cmd_show, "trials, best config and parameter importances of a sweep")
    add("run", cmd_run, "drive a sweep here until its budget is used").add_argument(
        "--keep-stop",
        action="store_true",
        help=argparse.SUPPRESS,  # started by start_sweep
    )
    add("resume", cmd_resume, "continue a stopped or interrupted sweep in the background")
    add("stop", cmd_stop, "stop a sweep's driver and its running trial (resumable)").add_argument(
        "--wait", type=float, default=5.0, help="seconds to wait for the driver to exit"
    )
    add(
        "train-best", cmd_train_best, "queue the best config as a run with more epochs"
    ).add_argument("--epochs", type=int, required=True, help="epochs of the new run")


# ---- building a sweep from options ------------------------------------------------------------
def space_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The search space: --search (default: every searchable setting not given explicitly),
    --models as the model choices, --space JSON ranges on top."""
    defaults = default_space()
    explicit = set(given_config_fields(args))
    names = args.search.split(",") if args.search else [n for n in defaults if n not in explicit]
    unknown = [n for n in names if n not in defaults]
    if unknown:
        raise UserError(f"cannot search {unknown[0]!r}; searchable: {', '.join(searchable())}")
    space = {n: defaults[n] for n in names}
    if args.models:
        space["model"] = {"choices": [m.strip() for m in args.models.split(",") if m.strip()]}
    if args.space:
        try:
            space.update(json.loads(args.space))
        except (json.JSONDecodeError, TypeError, ValueError) as exc:
            raise UserError(f"--space must be a JSON object: {exc}") from None
    return space


def _summary(status: dict[str, Any]) -> str:
    c = status["counts"]
    lines = [
        f"sweep {status['id']} {status['name'] or ''}".rstrip()
        + f": {status['status']}"
        + (f" ({status['error']})" if status["error"] else ""),
        f"trials: {c['complete']} complete, {c['pruned']} pruned, {c['fail']} failed, "
        f"{c['running']} running of {status['budget']['trials']}",
    ]
    best = status["best"]
    if best:
        lines.append(
            f"best: #{best['number']} val accuracy {best['value']:.4f}  {params_text(best['params'])}"
        )
        lines.append(f"      run {best['run_id']}")
    if status["importances"]:
        lines.append(
            "importance: " + ", ".join(f"{k} {v:.2f}" for k, v in status["importances"].items())
        )
    return "\n".join(lines)


def _trials_table(status: dict[str, Any]) -> str:
    """Trials as aligned text columns: number, state, value, each searched setting, run."""
    names = list(status["space"])
    rows = [["#", "state", "value", *names, "run"]] + [
        [
            str(t["number"]),
            t["state"],
            f"{t['value']:.4f}" if t["value"] is not None else "-",
            *(value_text(t["params"][n]) if n in t["params"] else "-" for n in names),
            t["run_id"] or "-",
        ]
        for t in status["trials"]
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


# ---- commands ---------------------------------------------------------------------------------
def cmd_sweep(args: argparse.Namespace) -> int:
    apply_ray_address(args)
    config = config_from_args(args)
    name, config.name = config.name, ""
    sweep_id = api.create_sweep(
        config,
        space_from_args(args),
        trials=args.trials,
        timeout=args.timeout,
        sampler=args.sampler,
        pruner=args.pruner,
        name=name,
        parallel=args.parallel,
        executor=args.executor,
    )
    if args.detach:
        pid = api.start_sweep(sweep_id)
        emit(args, {"sweep_id": sweep_id, "driver_pid": pid}, f"sweep {sweep_id} started")
        return 0
    status = api.run_sweep(sweep_id)
    emit(args, _payload(status), _summary(status))
    return 0 if status["best"] else 1


def _payload(status: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "status", "counts", "best", "importances", "importance_note")
    return {"sweep_id": status["id"], **{k: status[k] for k in keys}}


def cmd_list(args: argparse.Namespace) -> int:
    sweeps = api.list_sweeps()
    lines = [
        f"{s['id']}  {s['status']:<11} "
        + (f"{s['best_value']:.4f}" if s["best_value"] is not None else f"{'-':>6}")
        + f"  {s['n_trials']:>3}/{s['trials']:<3} {s['dataset']:<13} {s['sampler']}/{s['pruner']}"
        + f"  {s['name']}"
        for s in sweeps
    ]
    emit(args, sweeps, "\n".join(lines) or "no sweeps")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    status = api.sweep_status(args.sweep_id)
    emit(args, status, _summary(status) + "\n\n" + _trials_table(status))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    status = api.run_sweep(args.sweep_id, clear_stop=not args.keep_stop)
    emit(args, _payload(status), _summary(status))
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    pid = api.start_sweep(args.sweep_id)
    emit(args, {"sweep_id": args.sweep_id, "driver_pid": pid}, f"sweep {args.sweep_id} resumed")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    status = api.stop_sweep(args.sweep_id, wait=args.wait)
    emit(args, _payload(status), _summary(status))
    return 0


def cmd_train_best(args: argparse.Namespace) -> int:
    run_id = api.train_best_longer(args.sweep_id, args.epochs)
    emit(args, {"run_id": run_id, "status": "queued"}, run_id)
    return 0

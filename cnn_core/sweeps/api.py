"""The sweep API for the app and the CLI: create a sweep, drive it (here or detached), read its
trials, best config, best-so-far curve and parameter importances, stop it, train its best
config longer."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from .. import runs
from ..checkpoints import new_run_id
from ..config import TrainConfig, check_value
from ..errors import ConfigError, UserError
from ..resolve import resolve
from . import space as spaces
from .driver import POLL_S, drive, stderr_log, stop_run
from .study import (
    LIVE,
    PRUNERS,
    SAMPLERS,
    attrs,
    driver_alive,
    driver_files,
    has_storage,
    load,
    normalise_choice,
    set_attrs,
    storage,
    sweep_tag,
)

MAX_TRIALS = 1000
MAX_PARALLEL = 8
TRIAL_STATES = ("running", "complete", "pruned", "fail", "waiting")
_META = (
    "name", "error", "created_at", "elapsed_s", "base_config", "space", "sampler", "pruner",
    "parallel", "executor",
)  # fmt: skip


def _whole(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(name, f"must be a whole number from {lo} to {hi}, got {value!r}")
    return value


def create_sweep(
    base_config: TrainConfig,
    space: dict[str, Any] | None = None,
    trials: int = 12,
    timeout: float | None = None,
    sampler: str | dict[str, Any] = "tpe",
    pruner: str | dict[str, Any] = "median",
    name: str = "",
    *,
    parallel: int = 1,
    executor: str = "local",
) -> str:
    """Validate and store a new sweep (not started: see :func:`start_sweep` / :func:`run_sweep`).

    ``space`` maps searchable fields to choices or ranges (default: :func:`default_space`);
    the other fields come from ``base_config``. Budget: ``trials`` and/or ``timeout`` seconds
    of driver time (no new trial after it; running ones finish). ``sampler`` is tpe, random or
    grid, ``pruner`` median, hyperband or none, each a name or ``{"name": ..., **options}``
    (e.g. ``{"name": "median", "n_startup_trials": 2}``). A grid sweep is capped at its size.
    Trials train on ``executor`` ("local" or "ray"), ``parallel`` at a time.
    """
    base = resolve(base_config)
    checked = spaces.validate_space(space or spaces.default_space(), base)
    _whole("trials", trials, 1, MAX_TRIALS)
    _whole("parallel", parallel, 1, MAX_PARALLEL)
    runs.check_executor(executor)
    if timeout is not None and (isinstance(timeout, bool) or not timeout > 0):
        raise ConfigError("timeout", f"must be a positive number of seconds, got {timeout!r}")
    if not isinstance(name, str) or len(name) > 100:
        raise ConfigError("name", "must be text of at most 100 characters")
    sampler_choice = normalise_choice("sampler", sampler, SAMPLERS)
    pruner_choice = normalise_choice("pruner", pruner, PRUNERS)
    if sampler_choice["name"] == "grid":
        _whole("points", sampler_choice.setdefault("points", spaces.GRID_POINTS), 2, 100)
        trials = min(trials, spaces.grid_size(checked, sampler_choice["points"]))
    elif sampler_choice["name"] == "tpe":
        sampler_choice.setdefault("n_startup_trials", max(2, min(10, trials // 3)))
    sweep_id = new_run_id()
    study = optuna.create_study(storage=storage(), study_name=sweep_id, direction="maximize")
    set_attrs(
        study,
        name=name.strip(),
        base_config=base.to_dict(),
        space=checked,
        trials=trials,
        timeout=timeout,
        sampler=sampler_choice,
        pruner=pruner_choice,
        parallel=parallel,
        executor=executor,
        created_at=time.time(),
        status="created",
        error=None,
        stop_requested=False,
        elapsed_s=0.0,
    )
    return sweep_id


def architecture_sweep(base_config: TrainConfig) -> str:
    """Create (not start) a sweep that trains every registered architecture once with all else
    from ``base_config`` (data, seed, epochs, batch size, lr, sizes, …): a grid over ``model``
    without pruning, one trial per architecture. Its trials carry the sweep's tag only."""
    models = spaces.allowed_values("model", registered=True)
    base = dataclasses.replace(base_config, name="", tags=[])
    return create_sweep(
        base,
        {"model": {"choices": models}},
        trials=len(models),
        sampler="grid",
        pruner="none",
        name=f"every architecture on {base.dataset}",
    )


def load_study(sweep_id: str) -> optuna.Study:
    """The sweep's Optuna study (e.g. to enqueue trials or plot with optuna.visualization)."""
    return load(sweep_id)


def run_sweep(
    sweep_id: str,
    log: Callable[[str], None] = stderr_log,
    poll: float = POLL_S,
    *,
    clear_stop: bool = True,
) -> dict[str, Any]:
    """Drive the sweep in this process until its budget is used (also resumes a stopped or
    crashed sweep); progress lines go to ``log``. Returns :func:`sweep_status`.
    ``clear_stop=False`` keeps a stop requested before this driver started."""
    drive(sweep_id, log, poll, clear_stop=clear_stop)
    return sweep_status(sweep_id)


def start_sweep(sweep_id: str) -> int:
    """Start (or resume) the sweep's driver as a detached process (a background job: see
    :mod:`cnn_core.jobs`), forgetting an earlier stop request; returns its pid."""
    if not driver_alive(sweep_id):
        set_attrs(load(sweep_id), stop_requested=False)
        proc = driver_files(sweep_id).start(["sweep", "run", sweep_id, "--keep-stop"])
        if proc is not None:
            return proc.pid
    raise UserError(f"sweep {sweep_id} is already running")


def stop_sweep(sweep_id: str, wait: float = 0.0) -> dict[str, Any]:
    """Ask the driver to stop and stop the running trials' runs (resumable: see
    :func:`start_sweep`); waits up to ``wait`` s for the driver to exit. Returns the status."""
    meta = attrs(sweep_id)
    if meta["status"] == "completed":
        raise UserError(f"sweep {sweep_id} is completed: nothing to stop")
    study = load(sweep_id)
    set_attrs(study, stop_requested=True)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial.user_attrs.get("run_id"):
            stop_run(trial.user_attrs["run_id"])
    deadline = time.monotonic() + wait
    while driver_alive(sweep_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    if not driver_alive(sweep_id):
        set_attrs(study, status="stopped")
    return sweep_status(sweep_id, importances=False)


def _trial_row(trial: FrozenTrial) -> dict[str, Any]:
    start, end = trial.datetime_start, trial.datetime_complete
    return {
        "number": trial.number,
        "state": trial.state.name.lower(),
        "params": trial.params,
        "value": trial.value if trial.state == TrialState.COMPLETE else None,
        "values": {int(k): v for k, v in sorted(trial.intermediate_values.items())},
        "run_id": trial.user_attrs.get("run_id"),
        "error": trial.user_attrs.get("error"),
        "stopped_by_hand": bool(trial.user_attrs.get("stopped_by_hand")),
        "seconds": (end - start).total_seconds() if start and end else None,
    }


def param_importances(study: optuna.Study) -> tuple[dict[str, float], str | None]:
    """fANOVA parameter importances over the complete trials, or ({}, why not)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}, "needs at least 2 complete trials"
    if len({t.value for t in complete}) < 2:
        return {}, "every complete trial scored the same"
    try:  # imported here: optuna.importance loads scikit-learn (seconds)
        from optuna.importance import FanovaImportanceEvaluator, get_param_importances

        found = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0))
    except Exception as exc:  # the evaluator raises various errors on degenerate studies
        return {}, f"could not be computed ({type(exc).__name__}: {exc})"
    return {k: float(v) for k, v in found.items()}, None


def _status(meta: dict[str, Any], sweep_id: str) -> tuple[str, bool]:
    """The status to show and whether a driver is alive: while one is, "running" (also before
    it records so) or "stopping" once asked to stop; a live status without a live driver is
    "interrupted"."""
    alive = driver_alive(sweep_id)
    if alive:
        return ("stopping" if meta.get("stop_requested") else "running"), alive
    if meta["status"] in LIVE:
        return "interrupted", alive
    return meta["status"], alive


def sweep_status(sweep_id: str, importances: bool = True) -> dict[str, Any]:
    """Everything about a sweep: metadata, status, trials (state incl. pruned, params, value,
    run id, per-epoch values), best trial with its full config, the best-so-far curve and
    (optionally) parameter importances."""
    meta = attrs(sweep_id)
    study = load(sweep_id)
    trials = [_trial_row(t) for t in study.get_trials(deepcopy=False)]
    complete = [t for t in trials if t["state"] == "complete"]
    best = max(complete, key=lambda t: t["value"], default=None)
    curve, top = [], float("-inf")
    for t in complete:
        top = max(top, t["value"])
        curve.append({"number": t["number"], "value": t["value"], "best": top})
    status, alive = _status(meta, sweep_id)
    out = {
        "id": sweep_id,
        "status": status,
        "driver_alive": alive,
        "tag": sweep_tag(sweep_id),
        "budget": {"trials": meta["trials"], "timeout": meta["timeout"]},
        **{k: meta.get(k) for k in _META},
        "counts": {s: sum(t["state"] == s for t in trials) for s in TRIAL_STATES},
        "trials": trials,
        "best": None,
        "best_so_far": curve,
        "importances": {},
        "importance_note": "not computed",
    }
    if best:
        out["best"] = {
            **{k: best[k] for k in ("number", "params", "value", "run_id")},
            "config": {**meta["base_config"], **best["params"]},
        }
    if importances:
        out["importances"], out["importance_note"] = param_importances(study)
    return out


def list_sweeps() -> list[dict[str, Any]]:
    """Every sweep, newest first: id, name, status, dataset, budget, trials so far, best value."""
    if not has_storage():
        return []
    out = []
    for summary in optuna.get_all_study_summaries(storage(), include_best_trial=True):
        meta = summary.user_attrs
        if "space" not in meta:
            continue  # not a CNN Lab sweep
        out.append(
            {
                "id": summary.study_name,
                "name": meta["name"],
                "status": _status(meta, summary.study_name)[0],
                "dataset": meta["base_config"]["dataset"],
                "created_at": meta["created_at"],
                "trials": meta["trials"],
                "n_trials": summary.n_trials,
                "best_value": summary.best_trial.value if summary.best_trial else None,
                "sampler": meta["sampler"]["name"],
                "pruner": meta["pruner"]["name"],
            }
        )
    return sorted(out, key=lambda s: s["created_at"], reverse=True)


def train_best_longer(sweep_id: str, epochs: int) -> str:
    """Queue the best trial's config as a normal run trained for ``epochs`` epochs; its id."""
    check_value("epochs", epochs)
    status = sweep_status(sweep_id, importances=False)
    if status["best"] is None:
        raise UserError(f"sweep {sweep_id} has no complete trial yet")
    label = status["name"] or f"sweep {sweep_id}"
    config = TrainConfig.from_dict(
        {
            **status["best"]["config"],
            "epochs": epochs,
            "name": f"{label} best (#{status['best']['number']}), {epochs} epochs",
            "tags": [*status["base_config"]["tags"], status["tag"], "sweep-best"],
        },
        strict=False,
    )
    return runs.submit(config)

"""The sweep driver: ask Optuna for a trial, queue it as an ordinary run, report each finished
epoch's validation accuracy, prune or tell the outcome — until the budget is used.

Trials are trained by the usual background worker, so they show on Runs and Compare and can be
stopped there (a trial stopped by hand counts as pruned). The driver holds the sweep's lock;
a restarted driver first reconciles the trials a crash left RUNNING: a completed or failed run
is told, a stopped or interrupted one is resumed and followed again.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import optuna
from optuna.trial import TrialState

from .. import runs
from ..config import TrainConfig
from ..errors import UserError
from ..formats import value_text
from .space import trial_config
from .study import driver_lock, load, search_distributions, set_attrs, sweep_tag

POLL_S = 0.5
PRUNED_TAG = "pruned"
MAX_RESUMES = 3  # a trial whose run keeps getting interrupted fails after this many resumes
MAX_FAILURES = 3  # this many failed trials in a row stop the sweep (e.g. missing data)
WORKER_CHECK_S = 60.0  # how often a queued trial may (re)start a missing worker
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def stderr_log(message: str) -> None:
    """The default progress sink: one time-stamped line on stderr."""
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def stop_run(run_id: str) -> None:
    """Ask a trial's run to stop; one that already finished is left alone (its outcome is
    told when the driver next looks at it)."""
    with contextlib.suppress(UserError):
        runs.stop(run_id)


def params_text(params: dict[str, Any]) -> str:
    """``lr=0.001 optimizer=adam`` for progress lines."""
    return " ".join(f"{k}={value_text(v)}" for k, v in params.items())


@dataclass
class Active:
    """A trial being trained: its Optuna trial, run and the epochs already reported."""

    trial: optuna.Trial
    run_id: str
    reported: set[int] = field(default_factory=set)
    resumes: int = 0


class Driver:
    """One session of a sweep's ask/tell loop (see the module docstring)."""

    def __init__(
        self, sweep_id: str, log: Callable[[str], None] = stderr_log, poll: float = POLL_S
    ):
        self.sweep_id, self.log, self.poll = sweep_id, log, poll
        self.study = load(sweep_id)
        self.meta = self.study.user_attrs
        self.base = TrainConfig.from_dict(self.meta["base_config"], strict=False)
        self.distributions = search_distributions(self.meta)
        self.parallel = max(1, int(self.meta.get("parallel", 1)))
        self.executor = self.meta.get("executor") or "local"
        self.active: list[Active] = []
        self._started = time.monotonic()
        self._elapsed_before = float(self.meta.get("elapsed_s") or 0.0)
        self._worker_checked = float("-inf")

    # ---- the loop -----------------------------------------------------------------------------
    def run(self) -> str:
        """Drive the sweep until its budget is used or it is stopped; returns the final status."""
        set_attrs(self.study, status="running", driver_pid=os.getpid(), error=None)
        self.log(f"sweep {self.sweep_id}: driver {os.getpid()} started")
        self._reconcile()
        while True:
            if self._stop_requested():
                return self.halt("stopped")
            for active in list(self.active):
                if self._advance(active):
                    self.active.remove(active)
                    self.save_elapsed()
            while len(self.active) < self.parallel and self._budget_left():
                self._start_trial()
            if not self.active:
                break
            time.sleep(self.poll)
        failures = self._failures_in_a_row()
        if failures >= MAX_FAILURES:
            error = f"{failures} trials failed in a row; see the trial errors"
            set_attrs(self.study, status="failed", error=error)
            self.log(f"sweep {self.sweep_id} failed: {error}")
            return "failed"
        set_attrs(self.study, status="completed")
        self.log(f"sweep {self.sweep_id} completed")
        return "completed"

    def halt(self, status: str) -> str:
        """Stop the runs of the active trials (they stay RUNNING, to be resumed) and record
        ``status``."""
        for active in self.active:
            if active.run_id:
                stop_run(active.run_id)
        set_attrs(self.study, status=status)
        self.log(f"sweep {self.sweep_id} {status}")
        return status

    def save_elapsed(self) -> None:
        """Record the driver time used so far (the time budget spans sessions)."""
        set_attrs(self.study, elapsed_s=self.elapsed())

    def elapsed(self) -> float:
        """Driver seconds spent on the sweep over all sessions."""
        return self._elapsed_before + time.monotonic() - self._started

    def _stop_requested(self) -> bool:
        return bool(self.study.user_attrs.get("stop_requested"))

    def _trials(self, *states: TrialState) -> list[optuna.trial.FrozenTrial]:
        return self.study.get_trials(deepcopy=False, states=states)

    def _failures_in_a_row(self) -> int:
        finished = sorted(
            self._trials(*FINISHED), key=lambda t: t.datetime_complete or datetime.min
        )
        count = 0
        for trial in reversed(finished):
            if trial.state != TrialState.FAIL:
                break
            count += 1
        return count

    def _budget_left(self) -> bool:
        started = len(self._trials(TrialState.RUNNING, *FINISHED))
        timeout = self.meta.get("timeout")
        return (
            started < self.meta["trials"]
            and (timeout is None or self.elapsed() < timeout)
            and self._failures_in_a_row() < MAX_FAILURES
        )

    # ---- one trial ----------------------------------------------------------------------------
    def _start_trial(self) -> None:
        trial = self.study.ask(self.distributions)
        label = self.meta.get("name") or f"sweep {self.sweep_id}"
        try:
            config = trial_config(
                self.base,
                trial.params,
                name=f"{label} #{trial.number}",
                tags=[*self.base.tags, sweep_tag(self.sweep_id)],
            )
            run_id = runs.submit(config, start_worker=False, executor=self.executor)
        except UserError as exc:
            self._finish(trial, TrialState.FAIL, error=str(exc))
            return
        trial.set_user_attr("run_id", run_id)
        self._ensure_worker()
        self.active.append(Active(trial, run_id))
        self.log(f"trial {trial.number}: {params_text(trial.params)} -> run {run_id}")

    def _ensure_worker(self) -> None:
        """Start a worker if none is alive (a local one training ``parallel`` runs at once; a
        Ray one as many as the cluster allows). At most every WORKER_CHECK_S, so a worker that
        exits at once (e.g. no Ray cluster to connect to) is not started again on every poll."""
        now = time.monotonic()
        if now - self._worker_checked < WORKER_CHECK_S:
            return
        self._worker_checked = now
        if runs.worker_pid(self.executor) is None:
            runs.ensure_worker(max_concurrent=self.parallel)

    def _advance(self, active: Active) -> bool:
        """Report new epochs, then prune, tell or resume; True once the trial is finished."""
        try:
            run = runs.get_run(active.run_id)
            history = runs.metrics(active.run_id)
        except UserError as exc:  # e.g. the run was deleted on the Runs page
            return self._finish(active.trial, TrialState.FAIL, error=str(exc))
        scores = {
            int(m["epoch"]): m["val_accuracy"] for m in history if m.get("val_accuracy") is not None
        }
        new = sorted(set(scores) - active.reported)
        for epoch in new:
            active.trial.report(scores[epoch], epoch)
            active.reported.add(epoch)
            self.log(f"trial {active.trial.number} epoch {epoch}: val accuracy {scores[epoch]:.4f}")
        status = run["status"]
        if PRUNED_TAG in run["tags"]:  # pruned by a driver that crashed before telling
            return self._finish(active.trial, TrialState.PRUNED)
        if status == "completed":
            if not scores:
                return self._finish(active.trial, TrialState.FAIL, error="no validation accuracy")
            return self._finish(active.trial, TrialState.COMPLETE, value=max(scores.values()))
        if status == "failed":
            return self._finish(
                active.trial, TrialState.FAIL, error=run["error"] or "the run failed"
            )
        if new and status in ("queued", "running") and active.trial.should_prune():
            return self._prune(active, run, new[-1], scores[new[-1]])
        if status == "interrupted":
            return self._resume(active, run)
        if status == "queued":
            self._ensure_worker()  # e.g. the worker was killed
        if status == "stopped" and not self._stop_requested():
            active.trial.set_user_attr("stopped_by_hand", True)
            return self._finish(active.trial, TrialState.PRUNED)
        return False

    def _prune(self, active: Active, run: dict[str, Any], epoch: int, value: float) -> bool:
        """Tag the run "pruned" (first, so a crash cannot lose the decision), stop it, tell."""
        runs.tag(active.run_id, [*run["tags"], PRUNED_TAG])
        runs.set_notes(
            active.run_id,
            f"Pruned by sweep {self.sweep_id} ({self.meta['pruner']['name']} pruner) after "
            f"epoch {epoch}: val accuracy {value:.4f}.",
        )
        stop_run(active.run_id)
        return self._finish(active.trial, TrialState.PRUNED)

    def _resume(self, active: Active, run: dict[str, Any]) -> bool:
        if active.resumes >= MAX_RESUMES:
            error = f"interrupted {active.resumes + 1} times ({run['error']})"
            return self._finish(active.trial, TrialState.FAIL, error=error)
        runs.resume(active.run_id)
        active.resumes += 1
        active.trial.set_user_attr("resumes", active.resumes)
        self.log(f"trial {active.trial.number}: run {active.run_id} was interrupted; resumed")
        return False

    def _finish(
        self,
        trial: optuna.Trial,
        state: TrialState,
        value: float | None = None,
        error: str | None = None,
    ) -> bool:
        if error:
            trial.set_user_attr("error", error)
        self.study.tell(trial, value, state=state)
        outcome = f"{value:.4f}" if value is not None else state.name.lower()
        self.log(f"trial {trial.number} {outcome}" + (f": {error}" if error else ""))
        return True

    def _reconcile(self) -> None:
        """Pick up the trials a previous driver left RUNNING (see the module docstring)."""
        for frozen in self._trials(TrialState.RUNNING):
            trial = optuna.Trial(self.study, frozen._trial_id)
            run_id = frozen.user_attrs.get("run_id")
            if run_id is None:
                self._finish(trial, TrialState.FAIL, error="the driver stopped before its run")
                continue
            active = Active(
                trial, run_id, set(frozen.intermediate_values), frozen.user_attrs.get("resumes", 0)
            )
            self.active.append(active)
            try:
                run = runs.get_run(active.run_id)
            except UserError:
                continue  # told FAIL by _advance
            if run["status"] == "stopped" and PRUNED_TAG not in run["tags"]:
                runs.resume(active.run_id)
                self.log(f"trial {frozen.number}: resumed run {active.run_id}")


def drive(
    sweep_id: str,
    log: Callable[[str], None] = stderr_log,
    poll: float = POLL_S,
    *,
    clear_stop: bool = False,
) -> str:
    """Run a driver session for ``sweep_id`` under its lock (UserError if another driver has
    it); failures and Ctrl-C are recorded. ``clear_stop``: forget an earlier stop request (this
    session resumes the sweep). Returns the final status."""
    with driver_lock(sweep_id, attempts=10):  # outlast a brief driver_alive() probe
        if clear_stop:
            set_attrs(load(sweep_id), stop_requested=False)
        driver = Driver(sweep_id, log, poll)
        try:
            return driver.run()
        except KeyboardInterrupt:
            driver.halt("stopped")
            raise
        except Exception as exc:
            set_attrs(driver.study, status="failed", error=runs.error_text(exc))
            raise
        finally:
            driver.save_elapsed()

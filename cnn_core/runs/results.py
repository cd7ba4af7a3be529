"""A run's results as columns of its row (schema versions 5 and 6): the latest and the best
validation accuracy (with the epoch fraction where the best happened), training seconds, the
time to target, how the run ended, where, and why when it ended early. :class:`cnn_core.runs.reporting.ResultWriter` writes
them on every evaluation and when training ends; every reader (Runs, Compare, the CLI) reads
these columns and computes none of them.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from ..state import END_REASONS
from .sql import SqlStore

# column: SQL type (all NULL until known)
RESULT_COLUMNS = {
    "val_accuracy": "REAL",  # the latest validation's accuracy
    "best_val_accuracy": "REAL",  # the highest validation accuracy of the run (any validation)
    "best_epoch_fraction": "REAL",  # where it happened (1.5 = half-way through epoch 2)
    "train_seconds": "REAL",  # training time, validation excluded
    "target_status": "TEXT",  # TARGET_REACHED, TARGET_MISSED or NULL (no target / undecided)
    "time_to_target_s": "REAL",  # training seconds until the target was first reached
    "images_to_target": "INTEGER",  # training images seen until then
    "target_epoch_fraction": "REAL",  # where it was reached
    "ended_by": "TEXT",  # a key of ENDED_BY once training ended; NULL while it may go on
    "ended_at": "REAL",  # the epoch fraction where training ended
    "end_detail": "TEXT",  # why it ended early, in words (early stopping, divergence)
}
ADDED_IN_V6 = ("ended_at", "end_detail")
ENDING_COLUMNS = ("ended_by", *ADDED_IN_V6)  # unknown again while a run trains on
# set only by ResultStore.record_evaluation
EVALUATION_COLUMNS = ("val_accuracy", "best_val_accuracy", "best_epoch_fraction")
TARGET_REACHED, TARGET_MISSED = "reached target", "target not reached"
ENDED_BY = {  # how a run's training ended: key stored, text shown
    "epochs": "all epochs",
    "target": "target reached",
    "stop": "stop request",
    "early_stop": "stopped early",
    "diverged": "diverged — the learning rate is probably too high",
}


def ended_by(stopped_by: str) -> str:
    """The :data:`ENDED_BY` key for a finished ``fit`` (its ``TrainState.stopped_by``: "" after
    every epoch, an end reason of :data:`cnn_core.state.END_REASONS`, else who asked to stop)."""
    if stopped_by in END_REASONS:
        return stopped_by
    return "epochs" if stopped_by == "" else "stop"


def ending_text(run: dict[str, Any]) -> str:
    """How a run's training ended, as a clause ("" while it may go on): "ended by all
    epochs", "ended by target reached", "ended by stop request", or for a run that ended early
    of its own accord where and why: "stopped early at epoch 3.50: 3 validations without
    beating 71.50 % (epoch 2.75)", "diverged at epoch 0.25 — the learning rate is probably too
    high: …"."""
    how = run.get("ended_by")
    if how not in ENDED_BY:
        return ""
    if how not in ("early_stop", "diverged"):  # the ends with a where and a why
        return f"ended by {ENDED_BY[how]}"
    verb, _, advice = ENDED_BY[how].partition(" — ")
    where = f" at epoch {run['ended_at']:.2f}" if run.get("ended_at") is not None else ""
    why = f": {run['end_detail']}" if run.get("end_detail") else ""
    return f"{verb}{where}{' — ' + advice if advice else ''}{why}"


def outcome(run: dict[str, Any]) -> str:
    """A run's status as every view shows it: "diverged" for a run that completed by
    diverging (its training is over, its model useless), else the stored status."""
    return "diverged" if run.get("ended_by") == "diverged" else run["status"]


def migrate_v5(conn: sqlite3.Connection) -> None:
    """Results become columns of the run row. Carried forward from the rows an older store
    holds: the time to target from its "epoch 0" metric rows (then removed), the best and latest
    accuracy from the validation points and per-epoch rows, training seconds from the epochs;
    a stored config's ``data_choices: null`` (no choices) becomes 0."""
    for name, kind in RESULT_COLUMNS.items():
        if name not in ADDED_IN_V6:
            conn.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")
    for run_id, status, config in conn.execute("SELECT id, status, config FROM runs").fetchall():
        values = _carried_forward(conn, run_id, status, json.loads(config))
        conn.execute(
            f"UPDATE runs SET {', '.join(f'{k} = ?' for k in values)} WHERE id = ?",
            (*values.values(), run_id),
        )
    conn.execute("DELETE FROM metrics WHERE epoch = 0")
    conn.execute(
        "UPDATE runs SET config = json_set(config, '$.data_choices', 0) "
        "WHERE json_type(config, '$.data_choices') = 'null'"
    )


def migrate_v6(conn: sqlite3.Connection) -> None:
    """Where a run's training ended and why it ended early (early stopping, divergence)."""
    for name in ADDED_IN_V6:
        conn.execute(f"ALTER TABLE runs ADD COLUMN {name} {RESULT_COLUMNS[name]}")


def _carried_forward(
    conn: sqlite3.Connection, run_id: str, status: str, config: dict[str, Any]
) -> dict[str, Any]:
    validations = conn.execute(  # (accuracy, epoch fraction), in training order
        "SELECT accuracy, epoch_fraction FROM steps WHERE run_id = ?1 AND kind = 'val' "
        "AND accuracy IS NOT NULL UNION ALL SELECT value, epoch FROM metrics WHERE run_id = ?1 "
        "AND name = 'val_accuracy' AND epoch > 0 AND value IS NOT NULL ORDER BY 2",
        (run_id,),
    ).fetchall()
    (seconds,) = conn.execute(
        "SELECT SUM(value) FROM metrics WHERE run_id = ? AND name = 'seconds' AND epoch > 0",
        (run_id,),
    ).fetchone()
    target = dict(
        conn.execute("SELECT name, value FROM metrics WHERE run_id = ? AND epoch = 0", (run_id,))
    )
    out: dict[str, Any] = {"train_seconds": seconds}
    if validations:
        best = min(validations, key=lambda v: (-v[0], v[1]))  # the first of the highest
        out.update(
            val_accuracy=validations[-1][0], best_val_accuracy=best[0], best_epoch_fraction=best[1]
        )
    wanted = config.get("target_accuracy") is not None
    reached = wanted and "time_to_target_s" in target
    if reached:
        images = target.get("images_to_target")
        out.update(
            target_status=TARGET_REACHED,
            time_to_target_s=target["time_to_target_s"],
            images_to_target=None if images is None else int(images),
            target_epoch_fraction=target.get("epoch_fraction"),
        )
    elif wanted and status == "completed":
        out["target_status"] = TARGET_MISSED
    if status == "completed":
        out["ended_by"] = "target" if reached else "epochs"
    elif status == "stopped":
        out["ended_by"] = "stop"
    return out


class ResultStore(SqlStore):
    """The results part of :class:`cnn_core.runs.store.RunStore` (mixed into it)."""

    def record_evaluation(
        self, run_id: str, accuracy: float, epoch_fraction: float, fields: dict[str, Any]
    ) -> None:
        """One validation's accuracy at ``epoch_fraction``: the latest, and the best unless an
        earlier validation was at least as good; ``fields`` sets other result columns."""
        unknown = set(fields) - set(RESULT_COLUMNS) | set(fields) & set(EVALUATION_COLUMNS)
        if unknown:
            raise ValueError(f"unknown result columns: {', '.join(sorted(unknown))}")
        better = "(best_val_accuracy IS NULL OR :accuracy > best_val_accuracy)"
        sets = [
            "val_accuracy = :accuracy",
            f"best_epoch_fraction = CASE WHEN {better} THEN :fraction ELSE best_epoch_fraction END",
            f"best_val_accuracy = CASE WHEN {better} THEN :accuracy ELSE best_val_accuracy END",
            *(f"{k} = :{k}" for k in fields),
        ]
        params = {**fields, "accuracy": accuracy, "fraction": epoch_fraction, "id": run_id}
        with self.transaction() as conn:
            conn.execute(f"UPDATE runs SET {', '.join(sets)} WHERE id = :id", params)

"""Step-level metrics and evaluation snapshots in the run store (schema version 4).

A *point* is one row of a run's step series: ``kind`` "train" (running training loss and
accuracy over the batches since the previous point) or "val" (a validation pass), keyed by
the global ``step`` (batches trained since the start of the run), so that rewriting a point
after a resume replaces it instead of duplicating it. A *snapshot* is what one validation
showed: the confusion matrix and the predictions for the run's fixed image *panel* (stored
once per run: indices into the validation split, labels, class names and the images).
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

import numpy as np

from .sql import SqlStore

POINT_KINDS = ("train", "val")
SNAPSHOT_KEYS = ("confusion", "predicted", "confidence")


def migrate_v4(conn: sqlite3.Connection) -> None:
    """Step points, evaluation snapshots and image panels, removed with their run."""
    conn.execute(
        """CREATE TABLE steps (
            run_id TEXT NOT NULL, kind TEXT NOT NULL, step INTEGER NOT NULL,
            epoch_fraction REAL NOT NULL, images_seen INTEGER NOT NULL, loss REAL,
            accuracy REAL, wall_time REAL NOT NULL, PRIMARY KEY (run_id, kind, step))"""
    )
    conn.execute(
        """CREATE TABLE snapshots (
            run_id TEXT NOT NULL, step INTEGER NOT NULL, epoch_fraction REAL NOT NULL,
            images_seen INTEGER NOT NULL, created_at REAL NOT NULL, result TEXT NOT NULL,
            PRIMARY KEY (run_id, step))"""
    )
    conn.execute(
        """CREATE TABLE panels (
            run_id TEXT PRIMARY KEY, indices TEXT NOT NULL, labels TEXT NOT NULL,
            class_names TEXT NOT NULL, shape TEXT NOT NULL, images BLOB NOT NULL)"""
    )
    conn.execute(
        "CREATE TRIGGER series_of_deleted_runs AFTER DELETE ON runs BEGIN "
        "DELETE FROM steps WHERE run_id = OLD.id; DELETE FROM snapshots WHERE run_id = OLD.id; "
        "DELETE FROM panels WHERE run_id = OLD.id; END"
    )


class SeriesStore(SqlStore):
    """The step-series part of :class:`cnn_core.runs.store.RunStore` (mixed into it)."""

    def write_point(self, run_id: str, kind: str, point: dict[str, Any]) -> None:
        """Upsert one point (``step``, ``epoch_fraction``, ``images_seen``, ``loss``,
        ``accuracy``) of ``kind`` "train" or "val"."""
        if kind not in POINT_KINDS:
            raise ValueError(f"unknown point kind {kind!r}")
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO steps (run_id, kind, step, epoch_fraction, images_seen, loss, "
                "accuracy, wall_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT "
                "(run_id, kind, step) DO UPDATE SET epoch_fraction = excluded.epoch_fraction, "
                "images_seen = excluded.images_seen, loss = excluded.loss, "
                "accuracy = excluded.accuracy, wall_time = excluded.wall_time",
                (
                    run_id,
                    kind,
                    int(point["step"]),
                    float(point["epoch_fraction"]),
                    int(point["images_seen"]),
                    point.get("loss"),
                    point.get("accuracy"),
                    point.get("wall_time", time.time()),
                ),
            )

    def point_rows(self, run_id: str) -> list[sqlite3.Row]:
        """All points of a run in step order (train before val at the same step)."""
        return self.query(
            "SELECT kind, step, epoch_fraction, images_seen, loss, accuracy, wall_time "
            "FROM steps WHERE run_id = ? ORDER BY step, kind",
            (run_id,),
        )

    def series_version(
        self, run_id: str
    ) -> tuple[int, int | None, float | None, int, float | None]:
        """``(points, last step, last point time, epoch metric rows, last metric time)``: one
        indexed count that changes with every written, rewritten or removed point or epoch
        metric (every write stamps the time)."""
        (row,) = self.query(
            "SELECT count(*), max(step), max(wall_time), "
            "(SELECT count(*) FROM metrics WHERE run_id = ?1), "
            "(SELECT max(wall_time) FROM metrics WHERE run_id = ?1) FROM steps WHERE run_id = ?1",
            (run_id,),
        )
        return tuple(row)

    def truncate_series(self, run_id: str, after_step: int) -> int:
        """Forget points and snapshots past ``after_step`` (a resume retrains them); returns
        how many rows went."""
        with self.transaction() as conn:
            gone = conn.execute(
                "DELETE FROM steps WHERE run_id = ? AND step > ?", (run_id, after_step)
            ).rowcount
            gone += conn.execute(
                "DELETE FROM snapshots WHERE run_id = ? AND step > ?", (run_id, after_step)
            ).rowcount
            if after_step <= 0:
                conn.execute("DELETE FROM panels WHERE run_id = ?", (run_id,))
        return gone

    def save_snapshot(self, run_id: str, point: dict[str, Any], result: dict[str, Any]) -> None:
        """Store (or replace) the snapshot of the validation at ``point["step"]``."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO snapshots (run_id, step, epoch_fraction, images_seen, created_at, "
                "result) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, step) DO UPDATE SET "
                "epoch_fraction = excluded.epoch_fraction, images_seen = excluded.images_seen, "
                "created_at = excluded.created_at, result = excluded.result",
                (
                    run_id,
                    int(point["step"]),
                    float(point["epoch_fraction"]),
                    int(point["images_seen"]),
                    time.time(),
                    json.dumps(result),
                ),
            )

    def snapshot_rows(self, run_id: str) -> list[sqlite3.Row]:
        return self.query(
            "SELECT step, epoch_fraction, images_seen, created_at, result FROM snapshots "
            "WHERE run_id = ? ORDER BY step",
            (run_id,),
        )

    def save_panel(
        self,
        run_id: str,
        indices: list[int],
        labels: list[int],
        class_names: list[str],
        images: np.ndarray,
    ) -> None:
        """Store the run's fixed image panel (uint8 images ``[K, C, H, W]``) once."""
        images = np.ascontiguousarray(images, dtype=np.uint8)
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO panels (run_id, indices, labels, class_names, shape, "
                "images) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    json.dumps(indices),
                    json.dumps(labels),
                    json.dumps(class_names),
                    json.dumps(list(images.shape)),
                    images.tobytes(),
                ),
            )

    def has_panel(self, run_id: str) -> bool:
        return bool(self.query("SELECT 1 FROM panels WHERE run_id = ?", (run_id,)))

    def load_panel(self, run_id: str) -> dict[str, Any] | None:
        """``{"indices", "labels", "class_names", "images"}`` (images uint8 [K, C, H, W])."""
        rows = self.query("SELECT * FROM panels WHERE run_id = ?", (run_id,))
        if not rows:
            return None
        row = rows[0]
        shape = json.loads(row["shape"])
        return {
            "indices": json.loads(row["indices"]),
            "labels": json.loads(row["labels"]),
            "class_names": json.loads(row["class_names"]),
            "images": np.frombuffer(row["images"], dtype=np.uint8).reshape(shape),
        }


def decode_snapshots(
    rows: list[sqlite3.Row], panel_size: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """Snapshots as dicts, and a note for every row that cannot be read (skipped)."""
    good, notes = [], []
    for row in rows:
        try:
            result = json.loads(row["result"])
            missing = [k for k in SNAPSHOT_KEYS if not isinstance(result.get(k), list)]
            if missing:
                raise ValueError(f"no {', '.join(missing)}")
            if len(result["predicted"]) != panel_size:
                raise ValueError(
                    f"{len(result['predicted'])} predictions for a panel of {panel_size}"
                )
        except (ValueError, TypeError, AttributeError) as exc:
            notes.append(
                f"the evaluation snapshot at step {row['step']} is unreadable ({exc}); skipped"
            )
            continue
        good.append(
            {
                "step": row["step"],
                "epoch_fraction": row["epoch_fraction"],
                "images_seen": row["images_seen"],
                "created_at": row["created_at"],
                **result,
            }
        )
    return good, notes

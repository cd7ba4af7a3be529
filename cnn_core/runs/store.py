"""The run store: one SQLite file (WAL mode) at ``runs_dir()/runs.db`` shared by the app,
the CLI and the background worker.

Every operation opens a short-lived connection and keeps its transaction short; writes use
``BEGIN IMMEDIATE`` so concurrent processes queue on ``busy_timeout`` instead of failing.
The schema is versioned with ``PRAGMA user_version``: ``MIGRATIONS[i]`` upgrades a file
from version ``i`` to ``i + 1``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..settings import runs_dir
from .results import RESULT_COLUMNS, ResultStore, migrate_v5, migrate_v6
from .series import SeriesStore, migrate_v4

DB_NAME = "runs.db"
BUSY_TIMEOUT_MS = 10_000
STATUSES = ("queued", "running", "completed", "stopped", "failed", "interrupted")
FINISHED = ("completed", "stopped", "failed", "interrupted")
JSON_COLUMNS = ("config", "tags")
FILTERS = {
    "status": "status = ?",
    "dataset": "json_extract(config, '$.dataset') = ?",
    "model": "json_extract(config, '$.model') = ?",
    "tag": "EXISTS (SELECT 1 FROM json_each(runs.tags) WHERE value = ?)",
}


def _v1(conn: sqlite3.Connection) -> None:
    """Runs (status, config JSON, worker, heartbeat, stop flag) and per-epoch metrics."""
    conn.execute(
        """CREATE TABLE runs (
            id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', status TEXT NOT NULL,
            config TEXT NOT NULL, dataset_note TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL, started_at REAL, finished_at REAL,
            worker_pid INTEGER, heartbeat_at REAL, error TEXT,
            tags TEXT NOT NULL DEFAULT '[]', notes TEXT NOT NULL DEFAULT '',
            stop_requested INTEGER NOT NULL DEFAULT 0)"""
    )
    conn.execute(
        """CREATE TABLE metrics (
            run_id TEXT NOT NULL, epoch INTEGER NOT NULL, step INTEGER NOT NULL,
            name TEXT NOT NULL, value REAL, wall_time REAL NOT NULL,
            UNIQUE (run_id, epoch, step, name))"""
    )


def _v2(conn: sqlite3.Connection) -> None:
    """Executors and live progress (epoch, batch i of n, images/s)."""
    columns = (
        "executor TEXT NOT NULL DEFAULT 'local', epoch INTEGER NOT NULL DEFAULT 0, "
        "step INTEGER NOT NULL DEFAULT 0, num_batches INTEGER NOT NULL DEFAULT 0, "
        "images_per_s REAL, progress_at REAL"
    )
    for column in columns.split(", "):
        conn.execute(f"ALTER TABLE runs ADD COLUMN {column}")
    conn.execute("CREATE INDEX runs_by_status ON runs (status, created_at)")


def _v3(conn: sqlite3.Connection) -> None:
    """Cached evaluations of a run's checkpoint, one per split, removed with their run."""
    conn.execute(
        """CREATE TABLE evaluations (
            run_id TEXT NOT NULL, split TEXT NOT NULL, checkpoint_mtime INTEGER NOT NULL,
            created_at REAL NOT NULL, result TEXT NOT NULL, PRIMARY KEY (run_id, split))"""
    )
    conn.execute(
        "CREATE TRIGGER evaluations_of_deleted_runs AFTER DELETE ON runs "
        "BEGIN DELETE FROM evaluations WHERE run_id = OLD.id; END"
    )


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _v1,
    _v2,
    _v3,
    migrate_v4,
    migrate_v5,
    migrate_v6,
]
SCHEMA_VERSION = len(MIGRATIONS)
_COLUMN_NAMES = (
    "id name status config dataset_note created_at started_at finished_at worker_pid heartbeat_at "
    "error tags notes stop_requested executor epoch step num_batches images_per_s progress_at"
)
COLUMNS = (*_COLUMN_NAMES.split(), *RESULT_COLUMNS)
_SELECT = ", ".join(COLUMNS)


class RunStore(SeriesStore, ResultStore):
    """Runs (their results are columns: :mod:`.results`), their metrics and step series in one
    SQLite file (created and migrated on first use)."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else runs_dir() / DB_NAME

    # ---- connections ------------------------------------------------------------------
    def connect(self) -> sqlite3.Connection:
        """A new autocommit connection with busy_timeout set and the schema up to date."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn.row_factory = sqlite3.Row
        try:
            with self._translated():
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                    self._migrate(conn)
                conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            conn.close()
            raise
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # re-read under the lock
            if version > SCHEMA_VERSION:
                raise UserError(
                    f"{self.path.name} was written by a newer CNN Lab (schema {version}); "
                    "upgrade CNN Lab or point CNN_LAB_RUNS_DIR elsewhere"
                )
            for migrate in MIGRATIONS[version:]:
                migrate(conn)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """Turn "not a database" / "malformed" SQLite errors into one clear UserError."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            text = str(exc)
            if "not a database" in text or "malformed" in text or "encrypted" in text:
                raise UserError(
                    f"{self.path.name} is not a database ({text}): move {self.path} "
                    "aside to start a new run history"
                ) from exc
            raise

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A short ``BEGIN IMMEDIATE`` write transaction (committed unless the body raises)."""
        conn = self.connect()
        try:
            with self._translated():
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        finally:
            conn.close()

    def _reader(self) -> sqlite3.Connection:
        """A connection that reads without changing any file: read-only, with the write-ahead
        log's index (-shm) mapped read-only too, so that neither the checkpoint on closing the
        last connection nor rebuilding the index after a killed writer touches runs.db, -wal or
        -shm. Without those two files (nothing written since the last clean close: a plain
        connection leaves none behind) or at another schema version: :meth:`connect`."""
        wal, shm = (self.path.with_name(self.path.name + end) for end in ("-wal", "-shm"))
        if wal.is_file() and shm.is_file():
            uri = f"{self.path.resolve().as_uri()}?mode=ro&readonly_shm=1"
            conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
            conn.row_factory = sqlite3.Row
            try:
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
                    return conn
            except sqlite3.DatabaseError:
                pass  # e.g. the files went away meanwhile; connect() says what is wrong
            conn.close()
        return self.connect()

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        """Run one read statement and return all rows (no file changes: :meth:`_reader`; in the
        rare race a read-only connection loses to a writer, read again through :meth:`connect`)."""
        params = tuple(params)
        try:
            return self._read(self._reader(), sql, params)
        except sqlite3.OperationalError:
            return self._read(self.connect(), sql, params)

    def _read(self, conn: sqlite3.Connection, sql: str, params: tuple) -> list[sqlite3.Row]:
        try:
            with self._translated():
                return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    # ---- runs -------------------------------------------------------------------------
    def add_run(
        self,
        run_id: str,
        config: dict[str, Any],
        *,
        name: str = "",
        tags: list[str] | None = None,
        status: str = "queued",
        **fields: Any,
    ) -> None:
        """Insert a run; the name defaults to "<model> on <dataset>"."""
        values = {
            "id": run_id,
            "name": name or f"{config.get('model')} on {config.get('dataset')}",
            "status": status,
            "config": config,
            "tags": list(tags or []),
            "created_at": time.time(),
            **fields,
        }
        values = _encode(values)
        with self.transaction() as conn:
            conn.execute(
                f"INSERT INTO runs ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                tuple(values.values()),
            )

    def get(self, run_id: str) -> dict[str, Any] | None:
        rows = self.query(f"SELECT {_SELECT} FROM runs WHERE id = ?", (run_id,))
        return _decode(rows[0]) if rows else None

    def find(self, search: str | None = None, **filters: str | None) -> list[dict[str, Any]]:
        """Runs matching every given filter (status, dataset, model, tag) and the search text
        (in name, id or notes), newest first."""
        where = [FILTERS[k] for k, v in filters.items() if v]
        params: list[Any] = [v for v in filters.values() if v]
        if search:
            where.append("(instr(lower(name), ?) OR instr(id, ?) OR instr(lower(notes), ?))")
            params += [search.lower()] * 3
        sql = f"SELECT {_SELECT} FROM runs {'WHERE ' + ' AND '.join(where) if where else ''}"
        return [_decode(r) for r in self.query(sql + " ORDER BY created_at DESC, id DESC", params)]

    def update(self, run_id: str, *, only_if: Iterable[str] | None = None, **fields: Any) -> bool:
        """Set ``fields`` on a run (only while its status is in ``only_if``); True if a row changed."""
        values = _encode(fields)
        sql = f"UPDATE runs SET {', '.join(f'{k} = ?' for k in values)} WHERE id = ?"
        params = [*values.values(), run_id]
        if only_if is not None:
            sql, params = _status_in(sql, params, only_if)
        with self.transaction() as conn:
            return conn.execute(sql, params).rowcount > 0

    def finish(
        self,
        run_id: str,
        status: str,
        error: str | None = None,
        *,
        only_if: Iterable[str] | None = None,
    ) -> bool:
        """Record a run's final status (and error text) and release it from its worker."""
        fields = {
            "error": error,
            "finished_at": time.time(),
            "worker_pid": None,
            "stop_requested": 0,
        }
        return self.update(run_id, only_if=only_if, status=status, **fields)

    def stop_requested(self, run_id: str) -> bool:
        rows = self.query("SELECT stop_requested FROM runs WHERE id = ?", (run_id,))
        return bool(rows and rows[0][0])

    def claim_next(self, worker_pid: int, executor: str = "local") -> dict[str, Any] | None:
        """Atomically take the oldest run queued for ``executor`` and mark it running for
        ``worker_pid``."""
        now = time.time()
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT id FROM runs WHERE status = 'queued' AND executor = ? "
                "ORDER BY created_at, id LIMIT 1",
                (executor,),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE runs SET status = 'running', worker_pid = ?, started_at = ?, heartbeat_at = ?, "
                "progress_at = NULL, error = NULL WHERE id = ?",
                (worker_pid, now, now, row[0]),
            )
        return self.get(row[0])

    def delete(self, run_id: str, *, only_if: Iterable[str]) -> bool:
        """Remove a run and its metrics if its status is in ``only_if``; True if it was removed."""
        sql, params = _status_in("DELETE FROM runs WHERE id = ?", [run_id], only_if)
        with self.transaction() as conn:
            gone = conn.execute(sql, params).rowcount > 0
            if gone:
                conn.execute("DELETE FROM metrics WHERE run_id = ?", (run_id,))
        return gone

    # ---- metrics ----------------------------------------------------------------------
    def write_metrics(self, run_id: str, epoch: int, step: int, values: dict[str, Any]) -> None:
        """Upsert numeric metrics for (epoch, step): rewriting after a resume never duplicates rows."""
        now = time.time()
        rows = [
            (run_id, epoch, step, k, float(v), now)
            for k, v in values.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        ]
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO metrics (run_id, epoch, step, name, value, wall_time) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (run_id, epoch, step, name) DO UPDATE SET value = excluded.value, "
                "wall_time = excluded.wall_time",
                rows,
            )

    def metric_rows(self, run_id: str) -> list[sqlite3.Row]:
        return self.query(
            "SELECT epoch, step, name, value, wall_time FROM metrics WHERE run_id = ? "
            "ORDER BY epoch, step, name",
            (run_id,),
        )

    def clear_metrics(self, run_id: str) -> None:
        """Forget a run's epoch metrics, results, step points and snapshots (it starts over)."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM metrics WHERE run_id = ?", (run_id,))
            conn.execute(
                f"UPDATE runs SET {', '.join(f'{k} = NULL' for k in RESULT_COLUMNS)} WHERE id = ?",
                (run_id,),
            )
        self.truncate_series(run_id, -1)

    # ---- evaluations ------------------------------------------------------------------
    def save_evaluation(
        self, run_id: str, split: str, checkpoint_mtime: int, result: dict[str, Any]
    ) -> None:
        """Store (or replace) the evaluation of ``run_id``'s checkpoint on ``split``."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO evaluations (run_id, split, checkpoint_mtime, created_at, result) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id, split) DO UPDATE SET "
                "checkpoint_mtime = excluded.checkpoint_mtime, created_at = excluded.created_at, "
                "result = excluded.result",
                (run_id, split, checkpoint_mtime, time.time(), json.dumps(result)),
            )

    def load_evaluation(self, run_id: str, split: str) -> dict[str, Any] | None:
        """``{"checkpoint_mtime", "created_at", "result"}`` stored for (run, split), or None."""
        rows = self.query(
            "SELECT checkpoint_mtime, created_at, result FROM evaluations "
            "WHERE run_id = ? AND split = ?",
            (run_id, split),
        )
        if not rows:
            return None
        return {**dict(rows[0]), "result": json.loads(rows[0]["result"])}


def _status_in(sql: str, params: list[Any], statuses: Iterable[str]) -> tuple[str, list[Any]]:
    allowed = tuple(statuses)
    return f"{sql} AND status IN ({', '.join('?' * len(allowed))})", [*params, *allowed]


def _encode(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown run columns: {', '.join(sorted(unknown))}")
    if "status" in fields and fields["status"] not in STATUSES:
        raise ValueError(f"unknown status {fields['status']!r}")
    return {k: json.dumps(v) if k in JSON_COLUMNS else v for k, v in fields.items()}


def _decode(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    for key in JSON_COLUMNS:
        out[key] = json.loads(out[key])
    out["stop_requested"] = bool(out["stop_requested"])
    return out

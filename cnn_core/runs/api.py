"""The library API for background runs: submit, list, inspect, stop, resume, extend, delete.

Every function takes run ids from outside through ``validate_run_id``. Reads never write: a
run whose process is gone is *reported* interrupted (:func:`.liveness.stale_reason`); actions
that depend on a run's status (stop, resume, extend, delete) and :func:`recover` first *record*
such runs interrupted (:func:`.liveness.recover_stale`).
"""

from __future__ import annotations

import importlib.util
import shutil
import time
from typing import Any

from ..checkpoints import CHECKPOINT_NAME, new_run_id, run_dir, validate_run_id
from ..config import TrainConfig, check_name, check_tags
from ..errors import ConfigError, UserError
from ..resolve import resolve
from .liveness import recover_stale, stale_reason
from .results import ENDING_COLUMNS, TARGET_MISSED
from .series import decode_snapshots
from .store import FINISHED, RunStore
from .supervisor import EXECUTORS, ensure_worker

RESUMABLE = ("stopped", "interrupted", "failed")
MAX_NOTES = 10_000
# what a run allows in each status; "extend" also needs a finished epoch (see allowed_actions)
ACTIONS = {
    "stop": ("queued", "running"),
    "resume": RESUMABLE,
    "extend": FINISHED,
    "delete": (*FINISHED, "queued"),
}


def allowed_actions(run: dict[str, Any]) -> list[str]:
    """The actions (stop, resume, extend, delete) a run allows now, from its status and progress
    (a row of the store or a run as :func:`get_run` returns it). The page offers exactly these;
    the actions themselves refuse anything else."""
    epoch = run["progress"]["epoch"] if "progress" in run else run["epoch"]
    return [
        action
        for action, statuses in ACTIONS.items()
        if run["status"] in statuses and (action != "extend" or epoch >= 1)
    ]


def eta_seconds(run: dict[str, Any]) -> float | None:
    """Seconds of training left for a running run at its current speed (None: not known)."""
    p = run["progress"]
    batch = run["config"].get("batch_size") or 1
    if run["status"] != "running" or not p["images_per_s"] or not p["num_batches"]:
        return None
    left = (p["epochs"] - p["epoch"]) * p["num_batches"] - p["step"]
    return max(0.0, float(left * batch / p["images_per_s"]))


def progress_text(run: dict[str, Any], speed: bool = False) -> str:
    """How far a run got, in the words every view uses (sidebar, run table, run panel, CLI):
    "epoch 2/3 · batch 12/94" while an epoch is under way (and where a run stopped inside one),
    "3/3 epochs" between epochs. With ``speed``, a running run's speed and time left follow:
    "· 1,234 images/s · ETA 40 s" ("· starting…" before its first batches)."""
    p = run["progress"]
    if p["step"] or (run["status"] == "running" and p["epoch"] < p["epochs"]):
        text = f"epoch {p['epoch'] + 1}/{p['epochs']} · batch {p['step']}/{p['num_batches']}"
    else:
        text = f"{p['epoch']}/{p['epochs']} epochs"
    if speed and run["status"] == "running":
        eta = eta_seconds(run)
        text += f" · {p['images_per_s']:,.0f} images/s" if p["images_per_s"] else " · starting…"
        text += "" if eta is None else f" · ETA {eta:.0f} s"
    return text


def _check_allowed(row: dict[str, Any], action: str, verb: str) -> None:
    if action not in allowed_actions(row):
        statuses = ACTIONS[action]
        allowed = " or ".join(statuses) if len(statuses) == 2 else ", ".join(statuses)
        extra = " with at least one finished epoch" if action == "extend" else ""
        raise UserError(
            f"run {row['id']} is {row['status']} after {row['epoch']} epochs: only {allowed} "
            f"runs can be {verb}{extra}"
        )


def _store(recover: bool = False) -> RunStore:
    """The run store; with ``recover`` (an action about to act on a status), stale runs are
    recorded interrupted first."""
    store = RunStore()
    if recover:
        recover_stale(store)
    return store


def _row(store: RunStore, run_id: str) -> dict[str, Any]:
    row = store.get(validate_run_id(run_id))
    if row is None:
        raise UserError(f"no run {run_id}")
    return row


def _public(row: dict[str, Any]) -> dict[str, Any]:
    """A run as the app and CLI see it: the row (its results included: :mod:`.results`) plus
    progress, the target accuracy it trains for and the checkpoint path."""
    reason = stale_reason(row)
    if reason:  # its process is gone: report what recover_stale would record
        row = {**row, "status": "interrupted", "error": reason}
    config = row["config"]
    epochs, nb = config.get("epochs") or 1, row["num_batches"]
    done = row["epoch"] + (row["step"] / nb if nb else 0.0)
    checkpoint = run_dir(row["id"]) / CHECKPOINT_NAME
    out = {
        k: v
        for k, v in row.items()
        if k not in ("epoch", "step", "num_batches", "images_per_s", "progress_at")
    }
    out.update(
        dataset=config.get("dataset"),
        model=config.get("model"),
        epochs=epochs,
        target_accuracy=config.get("target_accuracy"),
        progress={
            "epoch": row["epoch"],
            "epochs": epochs,
            "step": row["step"],
            "num_batches": nb,
            "images_per_s": row["images_per_s"],
            "fraction": min(1.0, done / epochs),
            "updated_at": row["progress_at"],
        },
        checkpoint=str(checkpoint) if checkpoint.is_file() else None,
    )
    out.update(actions=allowed_actions(out), eta_s=eta_seconds(out))
    out["progress"]["text"] = progress_text(out)
    return out


def submit(
    config: TrainConfig,
    name: str | None = None,
    tags: list[str] | None = None,
    start_worker: bool = True,
    executor: str = "local",
) -> str:
    """Validate ``config``, queue it as a new run for ``executor`` ("local" or "ray") and make
    sure a worker will pick it up."""
    resolved = resolve(config)
    tags = list(tags) if tags is not None else resolved.tags
    check_tags(tags)
    check_executor(executor)
    if resolved.workers > 1 and executor != "ray":
        raise ConfigError(
            "workers", "data-parallel training (workers > 1) runs on Ray: --executor ray"
        )
    run_id = new_run_id()
    store = _store()
    store.add_run(
        run_id,
        resolved.to_dict(),
        name=check_name(name or resolved.name),
        tags=tags,
        executor=executor,
    )
    if start_worker:
        ensure_worker()
    return run_id


def list_runs(
    status: str | None = None,
    dataset: str | None = None,
    model: str | None = None,
    tag: str | None = None,
    search: str | None = None,
) -> list[dict[str, Any]]:
    """Runs matching every given filter, newest first (see :func:`get_run` for the fields); the
    status filter matches the status as reported (a dead "running" run reads "interrupted")."""
    recorded = None if status == "interrupted" else status  # reported ones are recorded running
    found = _store().find(status=recorded, dataset=dataset, model=model, tag=tag, search=search)
    return [r for r in map(_public, found) if status is None or r["status"] == status]


def get_run(run_id: str) -> dict[str, Any]:
    """One run: status, config, tags, notes, error, progress, checkpoint path (or None) and its
    results (best and latest validation accuracy, time to target, how it ended: :mod:`.results`)."""
    return _public(_row(_store(), run_id))


def metrics(run_id: str) -> list[dict[str, Any]]:
    """Per-epoch metrics like the trainer's history: ``{"epoch", "train_loss", ..., "images_per_s"}``."""
    store = _store()
    _row(store, run_id)
    epochs: dict[int, dict[str, Any]] = {}
    for r in store.metric_rows(run_id):
        epochs.setdefault(r["epoch"], {"epoch": r["epoch"]})[r["name"]] = r["value"]
    return [epochs[e] for e in sorted(epochs)]


def epoch_end_times(run_id: str) -> dict[int, float]:
    """Wall-clock time at which each epoch's metrics were written (the epoch's end)."""
    ends: dict[int, float] = {}
    for r in _store().metric_rows(run_id):
        ends[r["epoch"]] = max(ends.get(r["epoch"], 0.0), r["wall_time"])
    return ends


def load_evaluation(run_id: str, split: str) -> dict[str, Any] | None:
    """The cached evaluation of the run's checkpoint on ``split`` (with the checkpoint mtime it
    was computed from), or None."""
    return _store().load_evaluation(run_id, split)


def save_evaluation(run_id: str, split: str, checkpoint_mtime: int, result: dict[str, Any]) -> None:
    """Cache an evaluation of the run's checkpoint (removed with the run)."""
    _store().save_evaluation(run_id, split, checkpoint_mtime, result)


def steps(run_id: str) -> list[dict[str, Any]]:
    """The step series: ``{"kind": "train", "step", "images_seen", "epoch_fraction",
    "train_loss", "train_accuracy", "wall_time"}`` every few batches and ``{"kind": "val", ...,
    "val_loss", "val_accuracy"}`` at every validation, in step order."""
    store = _store()
    _row(store, run_id)
    out = []
    for r in store.point_rows(run_id):
        point = {k: r[k] for k in ("kind", "step", "images_seen", "epoch_fraction", "wall_time")}
        point[f"{r['kind']}_loss"], point[f"{r['kind']}_accuracy"] = r["loss"], r["accuracy"]
        out.append(point)
    return out


def series_version(run_id: str) -> tuple[int, int | None, float | None, int, float | None]:
    """A fingerprint of the step series and epoch metrics (counts and last write times): while
    it is unchanged, so are :func:`steps` and :func:`metrics` (a watching page need not read them
    again)."""
    return _store().series_version(validate_run_id(run_id))


def snapshots(run_id: str) -> dict[str, Any]:
    """Evaluation snapshots: ``{"panel": {"indices", "labels", "class_names", "images"} or None,
    "snapshots": [{"step", "images_seen", "epoch_fraction", "accuracy", "loss", "confusion",
    "predicted", "confidence"}, ...], "notes": [...]}``; an unreadable snapshot is skipped
    with a note."""
    store = _store()
    _row(store, run_id)
    panel = store.load_panel(run_id)
    good, notes = decode_snapshots(
        store.snapshot_rows(run_id), len(panel["indices"]) if panel else 0
    )
    return {"panel": panel, "snapshots": good, "notes": notes}


def stop(run_id: str, wait: float = 0.0) -> dict[str, Any]:
    """Stop a queued run at once, or ask a running one to stop (it saves a resumable checkpoint
    within about a second); waits up to ``wait`` s for it to finish. Returns the run."""
    store = _store(recover=True)
    _check_allowed(_row(store, run_id), "stop", "stopped")
    if not store.update(
        run_id, only_if=("queued",), status="stopped", finished_at=time.time()
    ) and not store.update(run_id, only_if=("running",), stop_requested=1):
        raise UserError(f"run {run_id} changed status meanwhile: it cannot be stopped now")
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and _row(store, run_id)["status"] == "running":
        time.sleep(0.05)
    return get_run(run_id)


def _requeue(run_id: str, action: str, verb: str, **fields: Any) -> dict[str, Any]:
    store = _store(recover=True)
    row = _row(store, run_id)
    _check_allowed(row, action, verb)
    if not store.update(
        run_id,
        only_if=ACTIONS[action],
        status="queued",
        stop_requested=0,
        error=None,
        started_at=None,
        finished_at=None,
        worker_pid=None,
        # it trains on: how, where and why it ends are not known yet, nor a target missed
        **dict.fromkeys(ENDING_COLUMNS),
        target_status=None if row["target_status"] == TARGET_MISSED else row["target_status"],
        **fields,
    ):
        raise UserError(f"run {run_id} changed status meanwhile: it cannot be {verb} now")
    ensure_worker()
    return get_run(run_id)


def resume(run_id: str) -> dict[str, Any]:
    """Queue a stopped, interrupted or failed run again; it continues from its last checkpoint
    (or starts over when it has none)."""
    return _requeue(run_id, "resume", "resumed")


def extend(run_id: str, epochs: int) -> dict[str, Any]:
    """Add ``epochs`` epochs to a finished run that completed at least one epoch and queue it;
    it continues from its checkpoint."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(
            "epochs", f"extend by a whole number of epochs of at least 1, got {epochs!r}"
        )
    row = _row(_store(recover=True), run_id)
    _check_allowed(row, "extend", "extended")
    config = TrainConfig.from_dict(row["config"], strict=False)
    config.epochs += epochs
    config.validate()
    return _requeue(run_id, "extend", "extended", config=config.to_dict())


def delete(run_id: str) -> None:
    """Remove a run's record, metrics and folder (a running run must be stopped first)."""
    store = _store(recover=True)
    row = _row(store, run_id)
    if not store.delete(run_id, only_if=ACTIONS["delete"]):
        raise UserError(
            f"run {run_id} is {row['status']}: stop it first (python -m cnn_core runs stop {run_id})"
        )
    shutil.rmtree(run_dir(run_id), ignore_errors=True)


def recover() -> list[str]:
    """Record every run whose process is gone (or silent) as interrupted; returns their ids."""
    return recover_stale(RunStore())


def rename(run_id: str, name: str) -> dict[str, Any]:
    """Give a run a new display name."""
    return _set(run_id, name=check_name(name))


def tag(run_id: str, tags: list[str]) -> dict[str, Any]:
    """Replace a run's tags (duplicates dropped, order kept)."""
    tags = list(dict.fromkeys(tags))
    check_tags(tags)
    return _set(run_id, tags=tags)


def set_notes(run_id: str, notes: str) -> dict[str, Any]:
    """Replace a run's free-text notes."""
    if not isinstance(notes, str) or len(notes) > MAX_NOTES:
        raise UserError(f"notes must be text of at most {MAX_NOTES:,} characters")
    return _set(run_id, notes=notes)


def export(run_id: str, fmt: str) -> dict[str, Any]:
    """Export a run's model (onnx, torchscript or checkpoint); see :func:`.exporters.export_run`."""
    from .exporters import export_run

    _row(_store(), run_id)
    return export_run(run_id, fmt)


def _set(run_id: str, **fields: Any) -> dict[str, Any]:
    store = _store()
    _row(store, run_id)
    store.update(run_id, **fields)
    return get_run(run_id)


def ray_available() -> bool:
    """True when Ray is installed (``pip install -r requirements-ray.txt``)."""
    return importlib.util.find_spec("ray") is not None


def check_executor(executor: str) -> None:
    """A UserError unless ``executor`` is known and usable here."""
    if executor not in EXECUTORS:
        raise UserError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    if executor == "ray" and not ray_available():
        raise UserError("Ray is not installed: pip install -r requirements-ray.txt")


__all__ = [
    "allowed_actions",
    "check_executor",
    "delete",
    "eta_seconds",
    "export",
    "extend",
    "get_run",
    "list_runs",
    "metrics",
    "progress_text",
    "ray_available",
    "recover",
    "rename",
    "resume",
    "set_notes",
    "snapshots",
    "steps",
    "stop",
    "submit",
    "tag",
]

"""Self-describing checkpoints: save atomically, load with ``weights_only=True``, describe.

A checkpoint is a plain dict (:class:`Checkpoint`: config, class names, epoch, history, model
and optimizer state, dataset note) so it can be loaded safely without unpickling arbitrary
objects.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Any, NotRequired, TypedDict, cast

from .errors import CheckpointError, UserError
from .settings import resolve_within, runs_dir

FORMAT = "cnn-lab-checkpoint"
VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"
PREVIOUS_NAME = "checkpoint.prev.pt"  # the one before, kept in case the newest is damaged
REQUIRED_KEYS = ("format", "version", "config", "class_names", "epoch", "history", "model_state")
LEGACY_INPUT_KINDS = {
    "digits": "canvas",
    "faces": "face",
}  # by family, before input_kind was stored
RUN_ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{2,63}")


class Payload(TypedDict):
    """What a run saves (``TrainState.checkpoint_payload``); keys marked NotRequired are missing
    from older checkpoints (and ``optimizer_state`` from inference-only ones, e.g. the demo)."""

    config: dict[str, Any]  # TrainConfig.to_dict() of the resolved config
    class_names: list[str]
    epoch: int  # completed epochs
    history: list[dict[str, Any]]  # one metrics row per completed epoch
    model_state: dict[str, Any]  # the weights used (with ema: the average)
    training_weights: NotRequired[dict[str, Any]]  # with ema: the trained ones, to resume from
    optimizer_state: NotRequired[dict[str, Any]]
    step: NotRequired[int]  # batches done in the epoch in progress
    partial: NotRequired[dict[str, float]]  # that epoch's running statistics
    family: NotRequired[str]
    input_kind: NotRequired[str]  # how inputs are prepared (data.INPUT_KINDS)
    in_channels: NotRequired[int]
    image_size: NotRequired[int]
    dataset_note: NotRequired[str]
    schedule_state: NotRequired[dict[str, Any]]  # schedule.describe()
    scaler_state: NotRequired[dict[str, Any] | None]  # fp16's GradScaler
    eval_seconds: NotRequired[float]
    target: NotRequired[dict[str, Any] | None]  # when target_accuracy was first reached
    last_evaluation: NotRequired[dict[str, Any] | None]
    callbacks: NotRequired[dict[str, dict[str, Any]]]  # state_dict() of stateful callbacks


class Checkpoint(Payload):
    """A checkpoint file's contents: the payload, its format and version, when it was saved."""

    format: str
    version: int
    saved_at: NotRequired[float]


def new_run_id() -> str:
    """A fresh, sortable, path-safe run id like ``20261125-031500-a1b2c3``."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def validate_run_id(run_id: str) -> str:
    """Return ``run_id`` if it is a well-formed id (no slashes, dots or spaces); else UserError."""
    if not isinstance(run_id, str) or not RUN_ID_RE.fullmatch(run_id):
        raise UserError(
            f"invalid run id {run_id!r}: expected lower-case letters, digits, '-' or '_'"
        )
    return run_id


def run_dir(run_id: str, root: Path | None = None) -> Path:
    """The folder of one run inside the runs root (validated id, never escapes the root)."""
    root = (root or runs_dir()).resolve()
    return resolve_within(root / validate_run_id(run_id), [root], "run folder")


def save_checkpoint(
    path: str | os.PathLike[str], payload: Payload, *, keep_previous: bool = False
) -> Path:
    """Write ``payload`` atomically: a temp file in the same folder, fsync, then rename.

    With ``keep_previous`` the file being replaced stays as ``checkpoint.prev.pt`` beside it
    (hard-linked first, so a valid ``path`` exists at every instant)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data: Checkpoint = {"format": FORMAT, "version": VERSION, "saved_at": time.time(), **payload}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    import torch  # lazy: run ids and paths are used by light commands that never load torch

    try:
        with open(tmp, "wb") as fh:
            torch.save(data, fh)
            fh.flush()
            os.fsync(fh.fileno())
        if keep_previous and path.is_file():
            _link_previous(path)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(f"could not write checkpoint {path}: {exc.strerror or exc}") from exc
    return path


def _link_previous(path: Path) -> None:
    prev_tmp = path.with_name(f".{PREVIOUS_NAME}.{os.getpid()}.tmp")
    prev_tmp.unlink(missing_ok=True)
    try:
        os.link(path, prev_tmp)
    except OSError:  # file systems without hard links
        shutil.copy2(path, prev_tmp)
    os.replace(prev_tmp, path.with_name(PREVIOUS_NAME))


def load_resumable(folder: Path) -> tuple[Checkpoint | None, str]:
    """The newest readable checkpoint of a run folder and a note when it had to fall back.

    Returns (None, "") when the run has no checkpoint yet; raises CheckpointError when
    checkpoints exist but none can be read."""
    newest, previous = folder / CHECKPOINT_NAME, folder / PREVIOUS_NAME
    if not newest.exists() and not previous.exists():
        return None, ""
    try:
        return load_checkpoint(newest), ""
    except CheckpointError as exc:
        if not previous.is_file():
            raise
        data = load_checkpoint(previous)
        return data, f"{exc}; resumed from the previous checkpoint (epoch {data['epoch']})"


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Load and check a checkpoint (``weights_only=True``, tensors on CPU)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt/truncated/unsafe files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path.name} is not a readable CNN Lab checkpoint ({first[:160]})"
        ) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path.name} is not a CNN Lab checkpoint")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise CheckpointError(f"{path.name} is incomplete (missing {', '.join(missing)})")
    if data["version"] > VERSION:
        raise CheckpointError(
            f"{path.name} was written by a newer CNN Lab (format {data['version']})"
        )
    return cast(Checkpoint, data)  # its format, version and required keys checked above


def checkpoint_input_kind(data: Checkpoint) -> str:
    """How inputs are prepared for a loaded checkpoint's model (see ``data.INPUT_KINDS``):
    stored with it, or for older checkpoints derived from their dataset family."""
    return data.get("input_kind") or LEGACY_INPUT_KINDS.get(data.get("family", ""), "dataset")


def describe_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What a checkpoint holds, without tensors: config, classes, epoch, metrics."""
    data = load_checkpoint(path)
    history = data["history"]
    return {
        "path": str(path),
        "config": data["config"],
        "class_names": data["class_names"],
        "epoch": data["epoch"],
        "step": data.get("step", 0),
        "dataset_note": data.get("dataset_note", ""),
        "family": data.get("family", ""),
        "input_kind": checkpoint_input_kind(data),
        "history": history,
        "val_accuracy": history[-1]["val_accuracy"] if history else None,
        "saved_at": data.get("saved_at"),
    }

"""Compare runs: a summary table with the config fields that differ, histories with wall time,
cached evaluations (confusion matrices, misclassified items). Training every architecture on
one dataset is a sweep (:func:`cnn_core.sweeps.architecture_sweep`).

Evaluations are stored in the run store keyed on (run, split) together with the checkpoint's
modification time, so a checkpoint that was retrained or extended is evaluated again.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import runs
from .checkpoints import load_checkpoint
from .config import knobs
from .data import DatasetBundle, dataset_info, load_dataset
from .errors import UserError
from .evaluation import evaluate_checkpoint, run_data_spec
from .models import describe_model
from .runs import api as runs_api
from .runs.results import ending_text, outcome
from .scoring import EvalResult
from .stats import McNemar, accuracy_interval, mcnemar_exact


@dataclass
class RunEvaluation:
    """A run's checkpoint evaluated on a split, with class names; ``cached`` if read back."""

    run_id: str
    requested_split: str
    class_names: list[str]
    result: EvalResult
    cached: bool = False

    @property
    def fell_back(self) -> bool:
        """True when the dataset had no test split and the validation split was used."""
        return self.result.split != self.requested_split


# ---- summary table --------------------------------------------------------------------------
def config_fields() -> list[str]:
    """The config fields shown as table columns: the settings (name, tags and a custom model's
    spec are run metadata; the model column names the spec)."""
    return [name for name, k in knobs().items() if k.setting]


@functools.lru_cache(maxsize=64)
def _checkpoint_geometry(path: str, mtime_ns: int) -> tuple[int, int, int]:
    data = load_checkpoint(path)
    return int(data["in_channels"]), int(data["image_size"]), len(data["class_names"])


def model_geometry(run: dict[str, Any]) -> tuple[int, int, int] | None:
    """(in_channels, image_size, num_classes) of a run's model: read from its checkpoint, else
    derived from the dataset (None for image folders, whose classes are known once loaded)."""
    if run["checkpoint"]:
        path = Path(run["checkpoint"])
        try:
            return _checkpoint_geometry(str(path), path.stat().st_mtime_ns)
        except (OSError, UserError):
            pass  # replaced or unreadable right now: derive it instead
    spec = run_data_spec(run["config"])
    channels, side, classes = dataset_info(spec.dataset).input_geometry(spec.image_size)
    return (channels, side, classes) if classes else None


@functools.lru_cache(maxsize=64)
def model_size(
    model: str, in_channels: int, image_size: int, num_classes: int, spec_json: str = '""'
) -> tuple[int, int]:
    """(trainable parameters, FLOPs per image) of an architecture for one input geometry
    (``spec_json``: a custom run's own spec, as JSON)."""
    spec = json.loads(spec_json) or None
    desc = describe_model(model, in_channels, image_size, num_classes, spec=spec)
    return desc["params"], desc["flops"]


def summary_row(run: dict[str, Any]) -> dict[str, Any]:
    """One table row: accuracies, cached test accuracy, size, speed and the config fields."""
    history = runs.metrics(run["id"])
    speeds = [m["images_per_s"] for m in history if m.get("images_per_s")]
    geometry = model_geometry(run)
    spec = json.dumps(run["config"].get("model_spec") or "")
    params, flops = model_size(run["model"], *geometry, spec) if geometry else (None, None)
    evaluation = cached_evaluation(run["id"])
    val_images = int(history[-1].get("val_images") or 0) if history else 0
    row = {
        "id": run["id"],
        "name": run["name"] or run["id"],
        "status": outcome(run),
        "ended_by": ending_text(run),
        "epochs_done": len(history),
        "best_val_accuracy": run["best_val_accuracy"],  # the run's results (runs/results.py)
        "final_val_accuracy": run["val_accuracy"],
        "test_accuracy": evaluation.result.accuracy if evaluation else None,
        "evaluated_on": evaluation.result.split if evaluation else None,
        **interval_columns("best_val", run["best_val_accuracy"], val_images),
        **interval_columns(
            "test",
            evaluation.result.accuracy if evaluation else None,
            evaluation.result.n if evaluation else 0,
        ),
        "params": params,
        "flops": flops,
        "train_seconds": run["train_seconds"],
        "images_per_s": sum(speeds) / len(speeds) if speeds else None,
        "time_to_target_s": run.get("time_to_target_s"),  # training seconds; None: not reached
        "target_status": run.get("target_status"),
        "tags": ", ".join(run["tags"]),
    }
    row.update({k: run["config"].get(k) for k in config_fields()})
    return row


def interval_columns(prefix: str, accuracy: float | None, n: int) -> dict[str, Any]:
    """``{prefix}_ci_low`` / ``{prefix}_ci_high``: the 95 % Wilson interval of an accuracy on
    ``n`` images (None when either is unknown: runs recorded before ``val_images``)."""
    low, high = accuracy_interval(accuracy, n) if accuracy is not None and n else (None, None)
    return {f"{prefix}_ci_low": low, f"{prefix}_ci_high": high}


def summary_table(run_ids: Sequence[str]) -> list[dict[str, Any]]:
    """One row per run, in the given order (a UserError for an unknown id)."""
    return [summary_row(runs.get_run(run_id)) for run_id in run_ids]


def differing_columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The config columns whose values are not the same in every row (config order)."""
    return [k for k in config_fields() if len({row.get(k) for row in rows}) > 1]


# ---- histories ------------------------------------------------------------------------------
def run_history(run_id: str) -> list[dict[str, Any]]:
    """Per-epoch metrics (see ``runs.metrics``) plus ``elapsed_s``: wall-clock seconds from the
    start of training to the end of each epoch (pauses before a resume included)."""
    history = runs.metrics(run_id)
    ends = runs_api.epoch_end_times(run_id)
    if history:
        start = ends[history[0]["epoch"]] - (history[0].get("seconds") or 0.0)
        for m in history:
            m["elapsed_s"] = ends[m["epoch"]] - start
    return history


def smooth(values: Sequence[float | None], weight: float) -> list[float | None]:
    """Exponential moving average (TensorBoard-style; weight 0 = unchanged); None stays None."""
    out: list[float | None] = []
    last = None
    for v in values:
        if v is not None:
            last = v if last is None else weight * last + (1 - weight) * v
        out.append(None if v is None else last)
    return out


# ---- evaluation -----------------------------------------------------------------------------
def _checkpoint_mtime(run: dict[str, Any]) -> int:
    if not run["checkpoint"]:
        raise UserError(
            f"run {run['name'] or run['id']} has no checkpoint yet: it is written after the "
            "first epoch"
        )
    try:
        return Path(run["checkpoint"]).stat().st_mtime_ns
    except FileNotFoundError:
        raise UserError(f"the checkpoint of run {run['id']} was removed") from None


def cached_evaluation(run_id: str, split: str = "test") -> RunEvaluation | None:
    """The stored evaluation of the run's current checkpoint on ``split``, or None (none
    stored, no checkpoint, or the checkpoint changed since)."""
    run = runs.get_run(run_id)
    if not run["checkpoint"]:
        return None
    entry = runs_api.load_evaluation(run_id, split)
    if entry is None or entry["checkpoint_mtime"] != _checkpoint_mtime(run):
        return None
    stored = dict(entry["result"])
    names = stored.pop("class_names")
    return RunEvaluation(run_id, split, names, EvalResult(**stored), cached=True)


def evaluate_run(
    run_id: str, split: str = "test", *, data: DatasetBundle | None = None
) -> RunEvaluation:
    """Evaluate the run's checkpoint on ``split`` (test falls back to val when the dataset has
    none), reusing the stored result while the checkpoint is unchanged. ``data`` is the run's
    dataset if already loaded (:func:`~cnn_core.evaluation.run_data_spec` says which)."""
    if split not in ("train", "val", "test"):
        raise UserError(f"unknown split {split!r}; choose train, val or test")
    cached = cached_evaluation(run_id, split)
    if cached is not None:
        return cached
    run = runs.get_run(run_id)
    mtime = _checkpoint_mtime(run)  # before reading: a newer checkpoint is never marked as seen
    data = data or load_dataset(run_data_spec(run["config"]))
    result = evaluate_checkpoint(run["checkpoint"], split, data=data)
    names = list(data.class_names)
    stored = {**dataclasses.asdict(result), "class_names": names}
    runs_api.save_evaluation(run_id, split, mtime, stored)
    return RunEvaluation(run_id, split, names, result)


def same_images(config_a: dict[str, Any], config_b: dict[str, Any]) -> bool:
    """True when two runs' evaluations score the same images in the same order: the same data
    fields (augmentation aside, which never touches evaluation)."""
    a, b = (dataclasses.replace(run_data_spec(c), augment=False) for c in (config_a, config_b))
    return a == b


def paired_test(
    run_a: dict[str, Any], eval_a: RunEvaluation, run_b: dict[str, Any], eval_b: RunEvaluation
) -> McNemar | None:
    """McNemar's exact test of two runs evaluated on the same images (None when their
    evaluations cover different images: other data, split or size)."""
    if (
        eval_a.result.split != eval_b.result.split
        or eval_a.result.n != eval_b.result.n
        or not same_images(run_a["config"], run_b["config"])
    ):
        return None
    return mcnemar_exact(eval_a.result.correct(), eval_b.result.correct())


def confusion_cells(result: EvalResult) -> list[tuple[int, int, int]]:
    """Off-diagonal ``(true, predicted, count)`` cells with errors, most frequent first."""
    cells = [
        (t, p, n)
        for t, row in enumerate(result.confusion)
        for p, n in enumerate(row)
        if t != p and n > 0
    ]
    return sorted(cells, key=lambda c: (-c[2], c[0], c[1]))


def cell_indices(result: EvalResult, labels: Sequence[int], true: int, predicted: int) -> list[int]:
    """Indices (into the evaluated split, whose ``labels`` are given) of the misclassified
    items of class ``true`` predicted as ``predicted``."""
    return [
        i for i in result.misclassified if labels[i] == true and result.predicted[i] == predicted
    ]

"""Models to answer with: the checkpoints of finished runs and the shipped demo model, each
described by its checkpoint (input kind, geometry, classes) and labelled by what it
recognises. The Draw, Faces and Explain pages all pick from :func:`trained_models`."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import demo, runs
from .checkpoints import checkpoint_input_kind, load_checkpoint
from .data import DATASETS
from .data.idx import DIGIT_NAMES
from .errors import UserError
from .stats import interval_text

DEMO_KEY = "demo"  # the key of the shipped demo model (runs are keyed by their id)


@dataclass(frozen=True)
class TrainedModel:
    """A checkpoint the pages can answer with, as its checkpoint describes it."""

    key: str  # run id, or DEMO_KEY
    label: str  # "name · model · dataset — what it recognises"
    path: str
    config: dict[str, Any]
    input_kind: str  # how inputs are prepared for it (cnn_core.data.INPUT_KINDS)
    recognises: str
    in_channels: int
    image_size: int
    class_names: tuple[str, ...]
    note: str = ""
    val_accuracy: float | None = None
    val_images: int | None = None  # how many held-out images val_accuracy was measured on

    @property
    def model(self) -> str:
        return self.config.get("model", "?")

    @property
    def dataset(self) -> str:
        return self.config.get("dataset", "?")

    @property
    def geometry(self) -> tuple[int, int, int]:
        """(in_channels, image_size, num_classes) of its input and output."""
        return self.in_channels, self.image_size, len(self.class_names)

    @property
    def accuracy_text(self) -> str:
        """``90.1% (95% CI 88.1%–91.8%, 1,000 images) on held-out images``; "" when unknown."""
        if self.val_accuracy is None:
            return ""
        return f"{interval_text(self.val_accuracy, self.val_images)} on held-out images"

    @property
    def reads_digits(self) -> bool:
        """True for a model of drawn digits 0-9 (what the Draw page asks first)."""
        return self.input_kind == "canvas" and list(self.class_names) == DIGIT_NAMES


@functools.lru_cache(maxsize=256)
def _facts(path: str, mtime_ns: int) -> dict[str, Any]:
    """What a checkpoint says about its model (read once per checkpoint version)."""
    data = load_checkpoint(path)
    history = data["history"]
    return {
        "input_kind": checkpoint_input_kind(data),
        "in_channels": int(data["in_channels"]),
        "image_size": int(data["image_size"]),
        "class_names": tuple(data["class_names"]),
        "note": data.get("dataset_note", ""),
        "val_accuracy": history[-1]["val_accuracy"] if history else None,
        "val_images": int(history[-1].get("val_images") or 0) or None if history else None,
    }


def recognises(dataset: str, class_names: tuple[str, ...]) -> str:
    """What a model of ``dataset`` tells apart, for labels: "clothing", "a face attribute:
    Smiling" (a two-class model names its positive class)."""
    info = DATASETS.get(dataset)
    what = info.recognises if info and info.recognises else dataset
    return f"{what}: {class_names[-1]}" if len(class_names) == 2 else what


def _entry(key: str, name: str, path: str | Path, config: dict[str, Any]) -> TrainedModel | None:
    """The TrainedModel of a readable checkpoint, else None."""
    try:
        facts = _facts(str(path), Path(path).stat().st_mtime_ns)
    except (UserError, OSError):
        return None
    dataset = config.get("dataset", "?")
    what = recognises(dataset, facts["class_names"])
    label = (
        f"{name} — {what}"
        if key == DEMO_KEY
        else f"{name} · {config.get('model')} · {dataset} — {what}"
    )
    return TrainedModel(key, label, str(path), config, recognises=what, **facts)


def trained_models(input_kind: str | None = None) -> list[TrainedModel]:
    """Finished runs with a readable checkpoint (newest first), then the shipped demo model,
    keeping those whose inputs are prepared as ``input_kind`` (all when None)."""
    found = [
        _entry(r["id"], r["name"] or r["id"], r["checkpoint"], r["config"])
        for r in runs.list_runs(status="completed")
        if r["checkpoint"]
    ]
    if demo.DEMO_CHECKPOINT.is_file():
        found.append(
            _entry(DEMO_KEY, demo.DEMO_LABEL, demo.DEMO_CHECKPOINT, demo.DEMO_CONFIG.to_dict())
        )
    return [m for m in found if m and (input_kind is None or m.input_kind == input_kind)]


def digits_first(models: list[TrainedModel]) -> list[TrainedModel]:
    """``models`` for a digits pad: digit readers first (finished runs, then the demo model),
    then the others grouped by what they recognise; best held-out accuracy first in each
    group. The first is the pad's default: the best finished digits model, else the demo."""

    def order(model: TrainedModel) -> tuple:
        return (
            not model.reads_digits,
            model.key == DEMO_KEY,
            model.recognises,
            -(model.val_accuracy or 0.0),
        )

    return sorted(models, key=order)

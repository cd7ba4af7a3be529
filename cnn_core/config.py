"""TrainConfig: the full, validated description of a training run (stored with every run)."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

OPTIMIZERS = ("adam", "adamw", "sgd")
BALANCE_MODES = ("none", "undersample", "weighted")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
LR_SCHEDULES = ("constant", "onecycle", "cosine")
CHOICES = {  # fields whose value is one of a fixed set (validated here, offered by the CLI)
    "optimizer": OPTIMIZERS,
    "balance": BALANCE_MODES,
    "device": DEVICES,
    "precision": PRECISIONS,
    "lr_schedule": LR_SCHEDULES,
}

# (low, high) of every bounded numeric field: validate() checks them and the Train page's
# widgets take their bounds from here. EXCLUSIVE names the fields whose one end is open.
LIMITS: dict[str, tuple[float, float]] = {
    "epochs": (1, 1000),
    "batch_size": (1, 4096),
    "lr": (1e-7, 10.0),
    "weight_decay": (0.0, 1.0),
    "dropout": (0.0, 0.95),
    "seed": (0, 2**31 - 1),
    "train_size": (1, 10_000_000),
    "val_size": (1, 10_000_000),
    "image_size": (8, 512),
    "threads": (0, 256),
    "workers": (1, 64),
    "warmup": (0.0, 0.9),
    "label_smoothing": (0.0, 1.0),
    "evals_per_epoch": (1, 20),
    "target_accuracy": (0.0, 1.0),
}
EXCLUSIVE = {"label_smoothing": "high", "target_accuracy": "low"}


@dataclass
class TrainConfig:
    """Everything needed to reproduce a run. ``None`` fields take the dataset's default in
    :meth:`resolved` (the book's recipe: Adam 1e-3, batch 64 for digits / 32 for faces)."""

    dataset: str = "mnist"
    data_dir: str | None = None
    attribute: str = "Smiling"
    model: str = "v1"
    epochs: int = 8
    batch_size: int | None = None
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    dropout: float = 0.5
    seed: int = 1
    augment: bool | None = None
    balance: str = "none"
    train_size: int | None = None
    val_size: int | None = None
    image_size: int | None = None
    threads: int = 0
    workers: int = 1  # data-parallel processes for one run (Ray executor only)
    device: str = "auto"
    precision: str = "auto"
    lr_schedule: str = "constant"  # the book: constant; onecycle / cosine span the whole run
    warmup: float = 0.0  # fraction of the run spent raising the lr (onecycle, cosine)
    label_smoothing: float = 0.0
    evals_per_epoch: int = 1  # validations per epoch (the last one at the epoch's end)
    target_accuracy: float | None = None  # stop once validation accuracy reaches it
    name: str = ""
    tags: list[str] = field(default_factory=list)
    data_choices: int | None = None  # version of the folder's exclude/relabel choices applied
    model_spec: dict[str, Any] | None = None  # a custom model's full JSON spec (models/spec.py)

    # ---- validation -------------------------------------------------------------------
    def validate(self) -> TrainConfig:
        """Check every field; raise ConfigError naming the first bad one. Returns self."""
        from .data import dataset_names
        from .models import resolve_model_spec

        if self.dataset not in dataset_names():
            raise ConfigError(
                "dataset",
                f"unknown dataset {self.dataset!r}; choose one of {', '.join(dataset_names())}",
            )
        if self.model_spec is not None and not isinstance(self.model_spec, dict):
            raise ConfigError("model_spec", "must be a JSON object (an architecture spec)")
        resolve_model_spec(self.model, self.model_spec)  # registered, this spec or a saved one
        for name in ("epochs", "seed", "threads", "workers", "evals_per_epoch"):
            _int_range(name, getattr(self, name), *LIMITS[name])
        for name in ("batch_size", "train_size", "val_size", "image_size"):
            if getattr(self, name) is not None:
                _int_range(name, getattr(self, name), *LIMITS[name])
        for name in ("lr", "weight_decay", "dropout", "warmup", "label_smoothing"):
            _float_range(name, getattr(self, name), *LIMITS[name])
        if self.target_accuracy is not None:
            _float_range("target_accuracy", self.target_accuracy, *LIMITS["target_accuracy"])
        if self.augment is not None and not isinstance(self.augment, bool):
            raise ConfigError("augment", "must be true, false or unset")
        for name, options in CHOICES.items():
            _choice(name, getattr(self, name), options)
        check_name(self.name)
        check_tags(self.tags)
        if self.data_dir is not None and not isinstance(self.data_dir, str):
            raise ConfigError("data_dir", "must be a path string")
        if self.data_choices is not None:
            _int_range("data_choices", self.data_choices, 1, 1_000_000)
        if not isinstance(self.attribute, str) or not self.attribute:
            raise ConfigError("attribute", "must be a CelebA attribute name")
        return self

    def resolved(self) -> TrainConfig:
        """A validated copy with dataset defaults filled in (batch size, augmentation, sizes)."""
        from .data import dataset_info
        from .models import resolve_model_spec

        self.validate()
        info = dataset_info(self.dataset)
        out = dataclasses.replace(self, tags=list(self.tags))
        out.model_spec = resolve_model_spec(self.model, self.model_spec)  # the spec itself
        if out.batch_size is None:
            out.batch_size = info.default_batch_size
        if out.augment is None:
            out.augment = info.default_augment
        if out.train_size is None:
            out.train_size = info.default_train_size
        if out.val_size is None:
            out.val_size = info.default_val_size
        if out.image_size is None:
            out.image_size = info.default_image_size
        if out.data_choices is None:  # record which choices the run uses (None: there are none)
            from .data.choices import config_choices_version

            out.data_choices = config_choices_version(out.dataset, out.data_dir)
        return out

    # ---- (de)serialisation --------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (stored in checkpoints and the run store)."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, strict: bool = True) -> TrainConfig:
        """Build from a dict; unknown keys are an error when ``strict`` (user input), else ignored."""
        if not isinstance(data, dict):
            raise ConfigError("config", "must be a mapping of field names to values")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown and strict:
            raise ConfigError(
                unknown[0], f"unknown setting; valid settings are {', '.join(sorted(names))}"
            )
        cfg = cls(**{k: v for k, v in data.items() if k in names})
        if isinstance(cfg.tags, tuple):
            cfg.tags = list(cfg.tags)
        return cfg.validate()


def check_name(name: Any) -> str:
    """A run name (the one rule for configs, renames and the UI): text of at most 200
    characters; returned without surrounding spaces."""
    if not isinstance(name, str) or len(name) > 200:
        raise ConfigError("name", "must be text of at most 200 characters")
    return name.strip()


def check_tags(tags: Any) -> list[str]:
    """Run tags: a list of non-empty texts of at most 50 characters each."""
    if not isinstance(tags, list) or not all(isinstance(t, str) and 0 < len(t) <= 50 for t in tags):
        raise ConfigError("tags", "must be a list of non-empty texts of at most 50 characters")
    return tags


def _int_range(name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, f"must be a whole number, got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(name, f"must be between {lo} and {hi}, got {value}")


def _float_range(name: str, value: Any, lo: float, hi: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(name, f"must be a finite number, got {value!r}")
    open_end = EXCLUSIVE.get(name)
    below = value <= lo if open_end == "low" else value < lo
    above = value >= hi if open_end == "high" else value > hi
    if open_end and (below or above):
        left, right = "(" if open_end == "low" else "[", ")" if open_end == "high" else "]"
        raise ConfigError(name, f"must be in {left}{lo:g}, {hi:g}{right}, got {value:g}")
    if below or above:
        raise ConfigError(name, f"must be between {lo:g} and {hi:g}, got {value:g}")


def _choice(name: str, value: Any, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ConfigError(name, f"must be one of {', '.join(options)}, got {value!r}")

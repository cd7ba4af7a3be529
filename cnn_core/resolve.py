"""``resolve(config)``: a config made ready for a run, once, when the run is created.

Checks the dataset and model names against their registries (saved specs included) and the
attribute against the dataset's, fills the fields the config leaves to the dataset, pins the
saved spec into ``model_spec``, the image folder's exclude / relabel choices version into
``data_choices`` (0: none) and the current split rule into ``split_version``. The result is
what a run stores; resolving it again changes nothing.

Small data (:func:`data_size`, from the dataset's cheap image count, no decoding): the batch
size is never more than a quarter of the training images (:func:`batch_note` says when it was
cut), and a small folder's unset augmentation is on. :func:`small_data_settings` are what the
Train page fills in for a small dataset: more epochs, augmentation, the BatchNorm net.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from .config import TrainConfig, knobs
from .data import dataset_info
from .data.choices import pinned_version
from .data.splits import held_out_size, pinned_split
from .errors import ConfigError
from .models import resolve_model_spec
from .models.summary import TrainingTime


def with_defaults(config: TrainConfig) -> TrainConfig:
    """A copy with the dataset's defaults in the fields left unset (no I/O: what a page shows
    before a run is created)."""
    defaults = dataset_info(config.dataset).defaults()
    unset = {
        name: defaults[name]
        for name, k in knobs(type(config)).items()
        if k.dataset_default and getattr(config, name) is None
    }
    return dataclasses.replace(config, tags=list(config.tags), **unset)


def resolve(config: TrainConfig) -> TrainConfig:
    """The validated config a run stores (see the module's docstring); ConfigError naming the
    field for an unknown dataset, model or attribute."""
    config.validate()
    info = dataset_info(config.dataset)
    if info.attributes and config.attribute not in info.attributes:
        raise ConfigError(
            "attribute",
            f"unknown attribute {config.attribute!r} of {info.name}; "
            f"choose one of {', '.join(info.attributes)}",
        )
    out = with_defaults(config)
    out.model_spec = resolve_model_spec(config.model, config.model_spec)
    if out.data_choices is None:
        out.data_choices = pinned_version(out.data_dir) if info.data_choices else 0
    out.split_version = pinned_split(out.split_version)
    out.batch_size = planned_batch(out)
    size = data_size(out)
    counted = info.count_images is not None  # a folder of the user's own (not a subset)
    if config.augment is None and counted and size is not None and size.train < SMALL_DATA:
        out.augment = True
    return out.validate()


# ---- small data -------------------------------------------------------------------------------
SMALL_DATA = 2_000  # fewer training images: a small dataset (small_data_settings)
TARGET_STEPS = 500  # optimisation steps the epochs suggested for small data give
MAX_SMALL_EPOCHS = 300
SMALL_MODEL = "v5"  # the BatchNorm net (why: benchmarks/README.md, "Your own small data")


@dataclass(frozen=True)
class DataSize:
    """Images a run of a config would train and validate on (val None: not known yet)."""

    train: int
    val: int | None


def data_size(config: TrainConfig) -> DataSize | None:
    """The training and validation images of a run of ``config``, from the dataset's cheap
    count (:attr:`DatasetInfo.count_images`) and ``train_size``; None when unknown."""
    info = dataset_info(config.dataset)
    counts = info.count_images(config.data_dir) if info.count_images else None
    cap = config.train_size if config.train_size is not None else info.default_train_size
    if counts is None:
        return DataSize(cap, None) if cap else None
    pool = counts["all"] - counts["val"] - counts["test"]
    if pool < 2:
        return None  # the loader says what is wrong
    val = counts["val"] or held_out_size(pool, config.val_size)
    train = pool - (0 if counts["val"] else val)
    return DataSize(min(train, cap) if cap else train, val)


def batch_limit(train_images: int) -> int:
    """The largest batch for ``train_images``: a quarter of them (at least 4 steps an epoch)."""
    return max(1, train_images // 4)


def planned_batch(config: TrainConfig) -> int:
    """The batch size a run of ``config`` uses: the one asked for (or the dataset's), at most
    :func:`batch_limit` of its training images."""
    wanted = config.batch_size or dataset_info(config.dataset).default_batch_size
    size = data_size(config)
    return wanted if size is None else min(wanted, batch_limit(size.train))


def batch_note(config: TrainConfig) -> str:
    """Why a run of ``config`` uses a smaller batch than it asks for ("" when it does not)."""
    size = data_size(config)
    wanted = config.batch_size or dataset_info(config.dataset).default_batch_size
    if size is None or wanted <= batch_limit(size.train):
        return ""
    return (
        f"Batch size {wanted} is more than a quarter of the {size.train:,} training images: "
        f"the run uses {batch_limit(size.train)} (at least 4 steps an epoch)."
    )


def small_data_settings(config: TrainConfig) -> dict[str, Any]:
    """Settings for a dataset under :data:`SMALL_DATA` training images ({} otherwise): the
    BatchNorm net, augmentation, a batch within :func:`batch_limit` and epochs giving about
    :data:`TARGET_STEPS` steps (at least the default 8, at most :data:`MAX_SMALL_EPOCHS`)."""
    size = data_size(config)
    if size is None or size.train >= SMALL_DATA:
        return {}
    batch = min(dataset_info(config.dataset).default_batch_size, batch_limit(size.train))
    steps = math.ceil(size.train / batch)
    default_epochs = TrainConfig.epochs
    epochs = min(MAX_SMALL_EPOCHS, max(default_epochs, math.ceil(TARGET_STEPS / steps)))
    return {"model": SMALL_MODEL, "augment": True, "batch_size": batch, "epochs": epochs}


def training_time(config: TrainConfig, step_seconds: float) -> TrainingTime | None:
    """How long a run of ``config`` should take when one training step of its batch takes
    ``step_seconds`` (measured on this machine), validations included; None when the data's
    size is not known."""
    size = data_size(config)
    if size is None:
        return None
    return TrainingTime(
        step_seconds,
        size.train,
        planned_batch(config),
        config.epochs,
        size.val or 0,
        config.evals_per_epoch,
    )

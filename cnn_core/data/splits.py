"""Deterministic splitting, subsetting and class balancing shared by every loader.

All randomness comes from ``torch.Generator().manual_seed(...)`` of the run's seed, with a
separate stream per purpose, so the same seed always picks the same images.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..errors import ConfigError, DataError
from .base import BatchTransform, DatasetBundle, ImageSet

if TYPE_CHECKING:
    from .spec import DataSpec

# independent random streams per purpose (partition streams 0-2 are used by CelebA)
STREAM_VAL, STREAM_TRAIN_SUBSET, STREAM_BALANCE = 10, 11, 12


def permutation(n: int, seed: int, stream: int = 0) -> torch.Tensor:
    """A random permutation of ``range(n)`` fixed by ``(seed, stream)``."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed + (stream << 32)))


def subset_index(n: int, size: int | None, seed: int, stream: int = 0) -> torch.Tensor:
    """Sorted positions of a deterministic random subset of ``size`` out of ``n`` (all if None)."""
    if size is None or size >= n:
        return torch.arange(n)
    return permutation(n, seed, stream)[:size].sort().values


def clamp_size(what: str, wanted: int | None, available: int, notes: list[str]) -> int:
    """``wanted`` limited to ``available``; appends a note to ``notes`` when it had to shrink."""
    if wanted is None or wanted <= available:
        return available if wanted is None else wanted
    notes.append(f"{what} {wanted:,} is more than the {available:,} available; using {available:,}")
    return available


def default_val_size(n: int) -> int:
    """The held-out share when none is configured: 1/6 (60,000 → 10,000), at least one image."""
    return max(1, n // 6)


def split_train_val(images: ImageSet, val_size: int | None, seed: int) -> tuple[ImageSet, ImageSet]:
    """Hold out ``val_size`` images (default 1/6) chosen by ``seed``; returns (train, val)."""
    n = len(images)
    if n < 2:
        raise DataError(f"need at least 2 images to make a validation split, found {n}")
    val_size = default_val_size(n) if val_size is None else val_size
    if not 0 < val_size < n:
        raise ConfigError(
            "val_size", f"must be between 1 and {n - 1} for {n:,} images, got {val_size}"
        )
    perm = permutation(n, seed, STREAM_VAL)
    return images.subset(perm[val_size:].sort().values), images.subset(
        perm[:val_size].sort().values
    )


def class_weights(counts: list[int]) -> list[float]:
    """Loss weights ``n / (k · count_c)`` over the k classes present (1.0 for absent classes)."""
    present = [c for c in counts if c > 0]
    n, k = sum(present), len(present)
    return [n / (k * c) if c > 0 else 1.0 for c in counts]


def undersample(train: ImageSet, num_classes: int, seed: int) -> ImageSet:
    """Keep the same number of images of every present class (the rarest class's count)."""
    counts = train.class_counts(num_classes)
    keep = min(c for c in counts if c > 0)
    perm = permutation(len(train), seed, STREAM_BALANCE)
    shuffled = train.labels[perm]
    chosen = [perm[shuffled == c][:keep] for c in range(num_classes)]
    return train.subset(torch.cat(chosen).sort().values)


def apply_balance(
    train: ImageSet, num_classes: int, mode: str, seed: int
) -> tuple[ImageSet, list[float] | None]:
    """Balance classes: ``none``, ``undersample`` (equal counts) or ``weighted`` (loss weights)."""
    if mode == "none":
        return train, None
    if mode == "undersample":
        return undersample(train, num_classes, seed), None
    if mode == "weighted":
        return train, class_weights(train.class_counts(num_classes))
    raise ConfigError("balance", f"must be one of none, undersample, weighted, got {mode!r}")


def finish_bundle(
    spec: DataSpec,
    *,
    name: str,
    family: str,
    train: ImageSet,
    class_names: list[str],
    transform: BatchTransform,
    val: ImageSet | None = None,
    test: ImageSet | None = None,
    source: str = "",
    notes: list[str] | None = None,
    is_sample: bool = False,
) -> DatasetBundle:
    """Split (unless ``val`` is given), subset to ``spec.train_size``, balance, and bundle.

    ``notes`` are joined into ``bundle.note``; size clamps are added to them.
    """
    notes = list(notes or [])
    if val is None:
        val_size = spec.val_size
        if val_size is not None:
            val_size = clamp_size("val_size", val_size, max(1, len(train) - 1), notes)
        train, val = split_train_val(train, val_size, spec.seed)
    train_size = clamp_size("train_size", spec.train_size, len(train), notes)
    if train_size < len(train):
        train = train.subset(subset_index(len(train), train_size, spec.seed, STREAM_TRAIN_SUBSET))
    train, weights = apply_balance(train, len(class_names), spec.balance, spec.seed)
    return DatasetBundle(
        name=name,
        family=family,
        train=train,
        val=val,
        test=test,
        class_names=list(class_names),
        transform=transform,
        note="; ".join(notes),
        is_sample=is_sample,
        source=source,
        loss_weights=weights,
    )

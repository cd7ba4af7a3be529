"""Deterministic splitting, subsetting and class balancing shared by every loader.

All randomness comes from ``torch.Generator().manual_seed(...)`` of the run's seed, with a
separate stream per purpose, so the same seed always picks the same images.

The split rule is part of a run's data description (``DataSpec.split_version``, pinned when
the run is created): version 1 (:data:`SPLIT_VERSION`) is stratified — every class keeps its
share of a held-out split or a subset within one image, and a class of two or more images keeps
at least one validation image; version 0 is the first rule, a plain random pick, kept so runs
created before it see exactly their images again.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from ..errors import ConfigError, DataError
from .base import BatchTransform, DatasetBundle, ImageSet

if TYPE_CHECKING:
    from .spec import DataSpec

# independent random streams per purpose (partition streams 0-2 are used by CelebA)
STREAM_VAL, STREAM_TRAIN_SUBSET, STREAM_BALANCE = 10, 11, 12
SPLIT_VERSION = 1  # the rule new runs pin: stratified by class (0: the legacy random pick)
SPLIT_RULES = {0: "random", 1: "stratified by class"}


def pinned_split(version: int | None) -> int:
    """The split rule a new run of a config asking for ``version`` uses (None: the current)."""
    return SPLIT_VERSION if version is None else version


def permutation(n: int, seed: int, stream: int = 0) -> torch.Tensor:
    """A random permutation of ``range(n)`` fixed by ``(seed, stream)``."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed + (stream << 32)))


def class_quotas(counts: list[int], size: int, low: list[int], high: list[int]) -> list[int]:
    """How many of ``size`` picks each class gets: its exact share ``size·count/n`` rounded by
    largest remainder, kept within ``[low, high]`` per class (``sum(low) <= size <=
    sum(high)``)."""
    n = sum(counts)
    exact = [size * c / n for c in counts]
    quota = [min(h, max(lo, math.floor(e))) for e, lo, h in zip(exact, low, high, strict=True)]
    while sum(quota) < size:
        k = max(
            (k for k in range(len(quota)) if quota[k] < high[k]), key=lambda k: exact[k] - quota[k]
        )
        quota[k] += 1
    while sum(quota) > size:
        k = max(
            (k for k in range(len(quota)) if quota[k] > low[k]), key=lambda k: quota[k] - exact[k]
        )
        quota[k] -= 1
    return quota


def pick(
    labels: torch.Tensor, size: int, seed: int, stream: int, version: int, *, held_out: bool = False
) -> torch.Tensor:
    """Sorted positions of ``size`` of the images labelled ``labels``, fixed by ``(seed,
    stream)``: version 0 takes the first ``size`` of a random permutation; version 1 the first
    of each class in that permutation, each class its share (:func:`class_quotas`). A
    ``held_out`` pick (a validation split) leaves every class at least one image and takes at
    least one from every class of two or more while ``size`` allows."""
    n = len(labels)
    perm = permutation(n, seed, stream)
    if version == 0 or size >= n:
        return perm[:size].sort().values
    if version != 1:
        raise ConfigError("split_version", f"must be one of {', '.join(map(str, SPLIT_RULES))}")
    counts = torch.bincount(labels, minlength=1).tolist()
    low = [1 if held_out and c >= 2 else 0 for c in counts]
    if sum(low) > size:
        low = [0] * len(counts)
    high = [c - 1 if held_out else c for c in counts]
    high = [max(h, 0) for h in high]
    quota = class_quotas(counts, min(size, sum(high)), low, high)
    ordered = labels[perm]
    chosen = [perm[ordered == k][:q] for k, q in enumerate(quota) if q]
    return torch.cat(chosen).sort().values if chosen else torch.zeros(0, dtype=torch.long)


def subset_index(
    n: int,
    size: int | None,
    seed: int,
    stream: int = 0,
    labels: torch.Tensor | None = None,
    version: int = 0,
) -> torch.Tensor:
    """Sorted positions of a deterministic subset of ``size`` out of ``n`` (all if None),
    stratified by ``labels`` under split version 1 (see :func:`pick`)."""
    if size is None or size >= n:
        return torch.arange(n)
    if labels is None:
        return permutation(n, seed, stream)[:size].sort().values
    return pick(labels, size, seed, stream, version)


def clamp_size(what: str, wanted: int | None, available: int, notes: list[str]) -> int:
    """``wanted`` limited to ``available``; appends a note to ``notes`` when it had to shrink."""
    if wanted is None or wanted <= available:
        return available if wanted is None else wanted
    notes.append(f"{what} {wanted:,} is more than the {available:,} available; using {available:,}")
    return available


def default_val_size(n: int) -> int:
    """The held-out share when none is configured: 1/6 (60,000 → 10,000), at least one image."""
    return max(1, n // 6)


def held_out_size(n: int, val_size: int | None) -> int:
    """Validation images held out of ``n``: ``val_size`` (default 1/6), at most all but one."""
    wanted = default_val_size(n) if val_size is None else val_size
    return min(wanted, max(1, n - 1))


def val_index(
    labels: torch.Tensor,
    val_size: int | None,
    seed: int,
    version: int,
    class_names: list[str] | None = None,
    notes: list[str] | None = None,
) -> torch.Tensor:
    """Sorted positions of the validation images among ``labels`` (``val_size``, default
    1/6), by split rule ``version``; a class that cannot give one (a single image) is named in
    ``notes``. The one answer to "which images are held out" (loaders and data health)."""
    n = len(labels)
    if n < 2:
        raise DataError(f"need at least 2 images to make a validation split, found {n}")
    val_size = default_val_size(n) if val_size is None else val_size
    if not 0 < val_size < n:
        raise ConfigError(
            "val_size", f"must be between 1 and {n - 1} for {n:,} images, got {val_size}"
        )
    index = pick(labels, val_size, seed, STREAM_VAL, version, held_out=True)
    if version and notes is not None:
        counts = torch.bincount(labels).tolist()
        held = torch.bincount(labels[index], minlength=len(counts)).tolist()
        names = class_names or [str(k) for k in range(len(counts))]
        unseen = [
            names[k] for k, (c, h) in enumerate(zip(counts, held, strict=True)) if c and not h
        ]
        if unseen:
            notes.append(
                f"no validation image of {', '.join(unseen)} (too few images: add some so "
                "validation can judge that class)"
            )
    return index


def split_train_val(
    images: ImageSet,
    val_size: int | None,
    seed: int,
    version: int = 0,
    class_names: list[str] | None = None,
    notes: list[str] | None = None,
) -> tuple[ImageSet, ImageSet]:
    """Hold out ``val_size`` images (default 1/6) chosen by ``seed`` and split rule
    ``version`` (:func:`val_index`); returns (train, val)."""
    held = val_index(images.labels, val_size, seed, version, class_names, notes)
    mask = torch.ones(len(images), dtype=torch.bool)
    mask[held] = False
    return images.subset(mask.nonzero().flatten()), images.subset(held)


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
    """Split (unless ``val`` is given) by ``spec.split_version``, subset to
    ``spec.train_size`` (stratified under version 1), balance, and bundle.

    ``notes`` are joined into ``bundle.note``; size clamps are added to them.
    """
    notes = list(notes or [])
    if val is None:
        val_size = spec.val_size
        if val_size is not None:
            val_size = clamp_size("val_size", val_size, max(1, len(train) - 1), notes)
        train, val = split_train_val(
            train, val_size, spec.seed, spec.split_version, class_names, notes
        )
    train_size = clamp_size("train_size", spec.train_size, len(train), notes)
    if train_size < len(train):
        index = subset_index(
            len(train), train_size, spec.seed, STREAM_TRAIN_SUBSET, train.labels, spec.split_version
        )
        train = train.subset(index)
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

"""Every image of a dataset in one pool, with its split and a stable reference for reports."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .. import settings
from ..data import DataSpec, load_dataset
from ..data.base import BatchTransform
from ..data.folder import assign_splits, read_folder
from ..data.transforms import FolderTransform
from ..errors import filled


@dataclass
class HealthData:
    """Pixels, labels and per image: its split, its position in that split and (for image
    folders) its file relative to the folder."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    splits: list[str]
    positions: list[int]
    class_names: list[str]
    transform: BatchTransform
    files: list[str] | None = None
    folder: Path | None = None
    skipped: list[dict[str, str]] | None = None  # {"file", "reason"} rows
    choices_version: int = 0

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: list[int]) -> HealthData:
        """The images at ``index`` (positions in this pool), keeping their references."""
        pick = torch.tensor(index, dtype=torch.long)
        return dataclasses.replace(
            self,
            images=self.images[pick],
            labels=self.labels[pick],
            splits=[self.splits[i] for i in index],
            positions=[self.positions[i] for i in index],
            files=None if self.files is None else [self.files[i] for i in index],
        )

    def ref(self, i: int) -> dict[str, Any]:
        """How report rows name image ``i``: its split and index there (as a run with the same
        seed splits it), plus its file for image folders."""
        ref = {"split": self.splits[i], "index": self.positions[i]}
        return {"file": self.files[i], **ref} if self.files is not None else ref


def load_health_data(spec: DataSpec) -> HealthData:
    """The whole dataset ``spec`` describes as one pool (image folders: every file, with the
    train / val / test assignment the loader makes; others: the configured splits)."""
    if spec.dataset == "image-folder":
        return _folder_data(spec)
    bundle = load_dataset(spec)
    parts = [("train", bundle.train), ("val", bundle.val)]
    if bundle.test is not None:
        parts.append(("test", bundle.test))
    return HealthData(
        name=spec.dataset,
        images=torch.cat([s.images for _, s in parts]),
        labels=torch.cat([s.labels for _, s in parts]),
        splits=[name for name, s in parts for _ in range(len(s))],
        positions=[i for _, s in parts for i in range(len(s))],
        class_names=list(bundle.class_names),
        transform=bundle.transform,
    )


def _folder_data(spec: DataSpec) -> HealthData:
    root = filled(settings.resolve_data_dir(spec.data_dir), "data_dir")
    size = filled(spec.image_size, "image_size")
    found = read_folder(root, size, spec.data_choices)
    splits = assign_splits(found, spec.val_size, spec.seed, spec.split_version)
    counters = {"train": 0, "val": 0, "test": 0}
    positions = []
    for split in splits:
        positions.append(counters[split])
        counters[split] += 1
    return HealthData(
        name=root.name,
        images=found.images,
        labels=found.labels,
        splits=splits,
        positions=positions,
        class_names=found.class_names,
        transform=FolderTransform(size, False),
        files=found.files,
        folder=root,
        skipped=found.skipped,
        choices_version=found.choices.version,
    )

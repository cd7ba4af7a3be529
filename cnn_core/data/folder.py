"""Your own images: ``ROOT/<class>/*.png|jpg|jpeg|webp|bmp``, one sub-folder per class.

Classes are the sub-folders sorted by name. Every file is decoded by
:func:`cnn_core.images.decode_at` (EXIF-oriented, as ``predict`` and the thumbnails see it) at
``image_size × image_size``; images become greyscale when every one of them is, RGB otherwise.
Unreadable files are skipped and listed with their reason in the bundle's note; files excluded
or relabelled on the Data health page (:mod:`.choices`) are honoured; 1/6 of the images are
held out for validation (stratified, :mod:`.splits`) unless the folder gives its own splits:
an imported ``train/``/``val/``/``test/`` zip is stored as class folders with the given split of
each file in ``.cnnlab-splits.json`` (:func:`given_splits`), and those splits are kept.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .. import settings
from ..errors import ConfigError, DataError, ImageError, filled
from ..images import decode_at
from .base import DatasetBundle, ImageSet
from .choices import Choices, load_choices
from .splits import finish_bundle, held_out_size, val_index
from .transforms import FolderTransform

if TYPE_CHECKING:
    from .spec import DataSpec

EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
SPLITS_FILE = ".cnnlab-splits.json"  # {"files": {"class/file.png": "val" | "test"}}
GIVEN_SPLITS = ("val", "test")  # a file not listed is a training image


def list_classes(root: Path) -> dict[str, list[Path]]:
    """``{class name: sorted image files}`` for every non-hidden sub-folder of ``root``."""
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist")
    classes = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        classes[folder.name] = sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in EXTENSIONS
        )
    return classes


def given_splits(root: Path) -> dict[str, str]:
    """``{"class/file": "val" | "test"}``: the splits an imported layout gave (none: {})."""
    try:
        files = json.loads((root / SPLITS_FILE).read_text())["files"]
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{root / SPLITS_FILE} is unreadable ({exc}); delete it") from None
    return {k: v for k, v in files.items() if v in GIVEN_SPLITS}


def write_given_splits(root: Path, files: dict[str, str]) -> None:
    """Store ``{"class/file": "val" | "test"}`` beside the images, atomically (a new file, so a
    hard-linked copy of the folder keeps its own)."""
    path = root / SPLITS_FILE
    if not files:
        path.unlink(missing_ok=True)
        return
    tmp = root / f".{SPLITS_FILE}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.write_text(json.dumps({"files": dict(sorted(files.items()))}, indent=1))
    os.replace(tmp, path)


def count_images(data_dir: str | None) -> dict[str, int] | None:
    """Image files of an image folder, without decoding: ``{"all", "val", "test"}`` (the
    last two: given splits); None when the folder does not exist."""
    root = settings.resolve_data_dir(data_dir) if data_dir else None
    if root is None or not root.is_dir():
        return None
    try:
        files = {f"{p.parent.name}/{p.name}" for ps in list_classes(root).values() for p in ps}
        given = given_splits(root)
    except (OSError, DataError):
        return None
    out = {"all": len(files), "val": 0, "test": 0}
    for key, split in given.items():
        out[split] += key in files
    return out


def _refuse_split_folders(root: Path, classes: dict[str, list[Path]]) -> None:
    """A folder of ``train/<class>/…`` would read as classes named train and test: one line."""
    train = next((root / name for name in classes if name.lower() == "train"), None)
    if train is not None and any(p.is_dir() for p in train.iterdir()):
        raise DataError(
            f"{root} holds split folders (train/<class>/…): import it as a zip on Your data, "
            "which keeps its splits, or choose its train folder as the data folder"
        )


def _read_image(path: Path, size: int, name: str) -> tuple[np.ndarray, bool]:
    """(uint8 ``[size, size, 3]`` pixels, whether the file is greyscale); ImageError if unusable."""
    img = decode_at(path, (size, size), name=name)
    pixels = np.asarray(img)
    grey = img.mode == "L"
    return (np.repeat(pixels[..., None], 3, axis=2) if grey else pixels), grey


def source_status() -> dict[str, Any]:
    """Image folders are the user's own: where they may be."""
    roots = ", ".join(str(r) for r in settings.data_roots())
    return {
        "available": True,
        "source": "",
        "note": f"Your own images as <folder>/<class>/*.png|jpg: in the app inside one of {roots}; "
        "on the command line anywhere.",
    }


@dataclass
class FolderImages:
    """An image folder decoded at one size: pixels, labels, the file of each image (relative
    to the folder) and the files that could not be read (``{"file", "reason"}`` rows, as the
    dataset builder lists the files it skips)."""

    images: torch.Tensor
    labels: torch.Tensor
    files: list[str]
    class_names: list[str]
    skipped: list[dict[str, str]]
    choices: Choices
    splits: list[str] = field(default_factory=list)  # per file: train, or a given val / test


def read_folder(root: Path, size: int, choices_version: int | None = None) -> FolderImages:
    """Decode every image of ``root`` at ``size`` with the chosen version of its exclude /
    relabel choices applied (None: the latest saved)."""
    classes = list_classes(root)
    _refuse_split_folders(root, classes)
    if len(classes) < 2:
        raise DataError(
            f"{root} needs at least 2 class sub-folders (one per thing to tell apart), found "
            f"{len(classes)}"
        )
    choices = load_choices(root, choices_version)
    given = given_splits(root)
    index = {name: i for i, name in enumerate(classes)}
    pixels, greys, labels, files, skipped, splits = [], [], [], [], [], []
    for label, paths in enumerate(classes.values()):
        for path in paths:
            key = f"{path.parent.name}/{path.name}"
            if key in choices.exclude:
                continue
            try:
                array, grey = _read_image(path, size, key)
            except ImageError as exc:
                skipped.append({"file": key, "reason": exc.reason})
                continue
            pixels.append(array)
            greys.append(grey)
            labels.append(index.get(choices.relabel.get(key, ""), label))
            files.append(key)
            splits.append(given.get(key, "train"))
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(classes))
    empty = [name for name, count in zip(classes, counts, strict=True) if count == 0]
    if empty:
        raise DataError(
            f"class folder(s) without readable images in {root}: {', '.join(empty)} "
            f"(accepted: {', '.join(sorted(EXTENSIONS))})"
        )
    images = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2)
    if all(greys):
        images = images[:, :1]
    return FolderImages(
        images.contiguous(),
        torch.tensor(labels, dtype=torch.int64),
        files,
        list(classes),
        skipped,
        choices,
        splits,
    )


def assign_splits(
    found: FolderImages,
    val_size: int | None,
    seed: int,
    version: int,
    notes: list[str] | None = None,
) -> list[str]:
    """Each image's split: the folder's given ones, and without a given validation split
    ``val_size`` (default 1/6, at most all but one) of the training images held out by
    :func:`.splits.val_index`. The one answer for the loader and data health."""
    splits = list(found.splits)
    if "val" in splits:
        return splits
    train = [i for i, split in enumerate(splits) if split == "train"]
    size = held_out_size(len(train), val_size)
    if val_size is not None and size < val_size and notes is not None:
        notes.append(f"val_size {val_size:,} is more than the {size:,} available; using {size:,}")
    labels = found.labels[torch.tensor(train, dtype=torch.long)]
    held = val_index(labels, size, seed, version, found.class_names, notes)
    for j in held.tolist():
        splits[train[j]] = "val"
    return splits


def load_image_folder(spec: DataSpec) -> DatasetBundle:
    """Load ``spec.data_dir`` as an image-classification dataset, with the exclude / relabel
    choices of version ``spec.data_choices`` applied and its given splits kept (test: only
    when given)."""
    root = settings.resolve_data_dir(spec.data_dir)
    if root is None:
        raise ConfigError(
            "data_dir", "the image-folder dataset needs a folder with one sub-folder per class"
        )
    size = filled(spec.image_size, "image_size")
    found = read_folder(root, size, spec.data_choices)
    notes: list[str] = []
    if found.skipped:
        skipped = found.skipped
        shown = "; ".join(f"{row['file']}: {row['reason']}" for row in skipped[:5])
        shown += "; …" if len(skipped) > 5 else ""
        notes.append(
            f"skipped {len(skipped)} unreadable file{'s' if len(skipped) != 1 else ''}: {shown}"
        )
    if found.choices.version:
        c = found.choices
        notes.append(
            f"data choices v{c.version}: {len(c.exclude)} excluded, {len(c.relabel)} relabelled"
        )
    given = sorted(set(found.splits) - {"train"})
    if given:
        notes.append(f"the folder's own {' and '.join(given)} split kept")
    splits = assign_splits(found, spec.val_size, spec.seed, spec.split_version, notes)
    sets = {}
    for name in ("train", "val", "test"):
        index = torch.tensor([i for i, s in enumerate(splits) if s == name], dtype=torch.long)
        sets[name] = ImageSet(found.images[index], found.labels[index]) if len(index) else None
    if sets["train"] is None:
        raise DataError(f"{root} has no training images (every file is in a given val/test split)")
    return finish_bundle(
        spec,
        name="image-folder",
        family="folder",
        train=sets["train"],
        val=sets["val"],
        test=sets.get("test"),
        class_names=found.class_names,
        transform=FolderTransform(size, bool(spec.augment)),
        source=str(root),
        notes=notes,
    )

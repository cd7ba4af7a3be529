"""Your own images: ``ROOT/<class>/*.png|jpg|jpeg|webp|bmp``, one sub-folder per class.

Classes are the sub-folders sorted by name. Every file is decoded by
:func:`cnn_core.images.decode_at` (EXIF-oriented, as ``predict`` and the thumbnails see it) at
``image_size × image_size``; images become greyscale when every one of them is, RGB otherwise.
Unreadable files are skipped and listed with their reason in the bundle's note; files excluded
or relabelled on the Data health page (:mod:`.choices`) are honoured; 1/6 of the images are
held out for validation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .. import settings
from ..errors import ConfigError, DataError, ImageError, filled
from ..images import decode_at
from .base import DatasetBundle, ImageSet
from .choices import Choices, load_choices
from .splits import finish_bundle
from .transforms import FolderTransform

if TYPE_CHECKING:
    from .spec import DataSpec

EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


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


def read_folder(root: Path, size: int, choices_version: int | None = None) -> FolderImages:
    """Decode every image of ``root`` at ``size`` with the chosen version of its exclude /
    relabel choices applied (None: the latest saved)."""
    classes = list_classes(root)
    if len(classes) < 2:
        raise DataError(f"{root} needs at least 2 class sub-folders, found {len(classes)}")
    choices = load_choices(root, choices_version)
    index = {name: i for i, name in enumerate(classes)}
    pixels, greys, labels, files, skipped = [], [], [], [], []
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
    )


def load_image_folder(spec: DataSpec) -> DatasetBundle:
    """Load ``spec.data_dir`` as an image-classification dataset (test split: none), with the
    exclude / relabel choices of version ``spec.data_choices`` applied."""
    root = settings.resolve_data_dir(spec.data_dir)
    if root is None:
        raise ConfigError(
            "data_dir", "the image-folder dataset needs a folder with one sub-folder per class"
        )
    size = filled(spec.image_size, "image_size")
    found = read_folder(root, size, spec.data_choices)
    notes = []
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
    return finish_bundle(
        spec,
        name="image-folder",
        family="folder",
        train=ImageSet(found.images, found.labels),
        class_names=found.class_names,
        transform=FolderTransform(size, bool(spec.augment)),
        source=str(root),
        notes=notes,
    )

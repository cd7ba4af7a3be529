"""CelebA aligned faces as a binary task on one of the 40 attributes (default ``Smiling``).

Two layouts are accepted, in ``data_dir``, ``data_dir/celeba`` or ``R/celeba`` for each data root:

* torchvision: ``img_align_celeba/*.jpg``, ``list_attr_celeba.txt``, ``list_eval_partition.txt``
* Kaggle: ``img_align_celeba/[img_align_celeba/]*.jpg``, ``list_attr_celeba.csv``,
  ``list_eval_partition.csv``

Partitions 0/1/2 are train/val/test. ``train_size`` images come from partition 0, ``val_size``
from partition 1 and the test split is a subset of partition 2 of the same size as val, each
chosen deterministically from the seed. Only the chosen images are decoded, once, then cached.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from .. import settings
from ..errors import ConfigError, DataError
from .base import DatasetBundle, ImageSet
from .splits import clamp_size, finish_bundle, subset_index
from .transforms import FacesTransform, faces_stored_height

if TYPE_CHECKING:
    from ..config import TrainConfig

# fmt: off
ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
    "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones",
    "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin",
    "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair",
    "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace",
    "Wearing_Necktie", "Young",
)
# fmt: on
LAYOUTS = {"torchvision": "txt", "kaggle": "csv"}  # layout → list-file extension
MISSING_HELP = (
    "CelebA not found (looked in {searched}). Place it as {root}/celeba/ in either layout: torchvision's "
    "(img_align_celeba/*.jpg, list_attr_celeba.txt, list_eval_partition.txt) or Kaggle's "
    "(img_align_celeba/img_align_celeba/*.jpg, list_attr_celeba.csv, list_eval_partition.csv). "
    "torchvision.datasets.CelebA(download=True) fetches from Google Drive, which is often rate-limited, "
    "so placing the files by hand is the reliable way."
)


@dataclass(frozen=True)
class CelebaFiles:
    """Where one CelebA copy lives."""

    layout: str  # "torchvision" | "kaggle"
    root: Path
    attr_file: Path
    partition_file: Path
    image_dir: Path


def _detect(folder: Path) -> CelebaFiles | None:
    """The CelebA copy in ``folder`` (None if there is none; DataError if it is incomplete)."""
    for layout, ext in LAYOUTS.items():
        attr, part = folder / f"list_attr_celeba.{ext}", folder / f"list_eval_partition.{ext}"
        if not (attr.is_file() or part.is_file()):
            continue
        images = folder / "img_align_celeba"
        if (images / "img_align_celeba").is_dir():
            images = images / "img_align_celeba"
        missing = [p.name for p in (attr, part, images) if not p.exists()]
        if missing:
            raise DataError(f"CelebA in {folder} is incomplete: missing {', '.join(missing)}")
        return CelebaFiles(layout, folder, attr, part, images)
    return None


def find_celeba(data_dir: str | os.PathLike | None = None) -> CelebaFiles:
    """Locate CelebA in ``data_dir`` or under ``R/celeba`` for each data root ``R``."""
    folder = settings.resolve_data_dir(data_dir)
    candidates = (
        [folder, folder / "celeba"] if folder else [r / "celeba" for r in settings.data_roots()]
    )
    for candidate in candidates:
        if candidate.is_dir() and (found := _detect(candidate)):
            return found
    searched = ", ".join(str(c) for c in candidates)
    raise DataError(MISSING_HELP.format(searched=searched, root=settings.default_data_dir()))


def source_status() -> dict[str, Any]:
    """Where CelebA would be read from now: available, source folder and a note for users."""
    try:
        return {"available": True, "source": str(find_celeba(None).root), "note": ""}
    except DataError:
        return {
            "available": False,
            "source": "",
            "note": "Not found. Place img_align_celeba/ with list_attr_celeba.txt and "
            "list_eval_partition.txt (or Kaggle's csv files) in "
            f"{settings.default_data_dir() / 'celeba'}.",
        }


def _read_list(path: Path, named: bool) -> tuple[tuple[str, ...], tuple[str, ...], np.ndarray]:
    """(column names, image file names, int8 values [N, columns]) of a CelebA list file.

    ``named``: the txt file starts with a count line and a line of column names (attributes).
    """
    stat = path.stat()
    return _parse_list(str(path), stat.st_size, stat.st_mtime_ns, named)


@functools.lru_cache(maxsize=4)
def _parse_list(path: str, _size: int, _mtime: int, named: bool):
    try:
        lines = [
            line for line in Path(path).read_text(encoding="utf-8-sig").splitlines() if line.strip()
        ]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    sep = "," if path.endswith(".csv") else None
    if len(lines) < (2 if named and not sep else 1):
        raise DataError(f"{path} is empty or has no header")
    if sep:
        header, body = [h.strip() for h in lines[0].split(",")[1:]], lines[1:]
    elif named:
        header, body = lines[1].split(), lines[2:]
        if not lines[0].strip().isdigit() or int(lines[0]) != len(body):
            raise DataError(
                f"{path}: first line says {lines[0].strip()!r} images but {len(body):,} rows follow"
            )
    else:
        header, body = ["partition"], lines
    rows = [line.strip().split(sep, 1) for line in body]
    if any(len(r) != 2 for r in rows):
        raise DataError(f"{path}: a row has no values")
    values = " ".join(r[1] for r in rows)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            flat = np.fromstring(
                values.replace(",", " ") if sep else values, dtype=np.int8, sep=" "
            )
        matrix = flat.reshape(len(rows), len(header))
    except (ValueError, DeprecationWarning) as exc:
        raise DataError(f"{path}: expected {len(header)} numbers per row ({exc})") from exc
    matrix.flags.writeable = False
    return tuple(header), tuple(r[0].strip() for r in rows), matrix


def _attributes(files: CelebaFiles) -> tuple[tuple[str, ...], tuple[str, ...], np.ndarray]:
    header, names, matrix = _read_list(files.attr_file, named=True)
    if not np.isin(matrix, (-1, 0, 1)).all():
        raise DataError(f"{files.attr_file}: attribute values must be -1 or 1")
    return header, names, matrix


def _partitions(files: CelebaFiles, names: tuple[str, ...]) -> np.ndarray:
    """Partition (0/1/2) of every image in ``names``, joined by file name."""
    _, part_names, matrix = _read_list(files.partition_file, named=False)
    part = matrix[:, 0]
    if part_names != names:
        position = {n: i for i, n in enumerate(part_names)}
        missing = next((n for n in names if n not in position), None)
        if missing is not None:
            raise DataError(f"{files.partition_file} has no partition for {missing}")
        part = part[[position[n] for n in names]]
    if not np.isin(part, (0, 1, 2)).all():
        raise DataError(f"{files.partition_file}: partitions must be 0, 1 or 2")
    return part


def attribute_rates(data_dir: str | os.PathLike | None = None) -> dict[str, float]:
    """Share of positive images per attribute over the whole file (for the UI)."""
    header, names, matrix = _attributes(find_celeba(data_dir))
    if not names:
        raise DataError("the CelebA attribute file has no rows")
    return dict(zip(header, (matrix == 1).mean(axis=0).tolist(), strict=True))


def _decode_one(path: Path, width: int, height: int) -> np.ndarray:
    try:
        with Image.open(path) as img:
            img.draft("RGB", (width, height))  # JPEG DCT downscale: much faster decode
            return np.asarray(img.convert("RGB").resize((width, height), Image.Resampling.BILINEAR))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read CelebA image {path}: {exc}") from exc


def decode_images(paths: list[Path], width: int, height: int) -> np.ndarray:
    """Decode and resize ``paths`` to uint8 ``[N, 3, height, width]`` (a few threads)."""
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        arrays = list(pool.map(lambda p: _decode_one(p, width, height), paths))
    if not arrays:
        return np.zeros((0, 3, height, width), np.uint8)
    return np.ascontiguousarray(np.stack(arrays).transpose(0, 3, 1, 2))


def _cached_images(files: CelebaFiles, names: list[str], split: str, width: int) -> torch.Tensor:
    """Decoded images of ``names``, from the cache when layout, files, sizes, mtimes and width match."""
    height = faces_stored_height(width)
    paths = [files.image_dir / n for n in names]
    stats = []
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            raise DataError(
                f"CelebA image {path} is missing (listed in {files.attr_file.name})"
            ) from None
        stats.append((path.name, st.st_size, st.st_mtime_ns))
    key = json.dumps([files.layout, str(files.image_dir), width, split, stats])
    cache = (
        settings.cache_dir()
        / f"celeba-{split}-{width}px-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npy"
    )
    shape = (len(paths), 3, height, width)
    try:
        array = np.load(cache)
        if array.shape == shape and array.dtype == np.uint8:
            return torch.from_numpy(array)
    except (OSError, ValueError, EOFError):
        pass  # no cache yet (or a damaged one): decode
    array = decode_images(paths, width, height)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.save(fh, array)
        os.replace(tmp, cache)
    except OSError:
        pass  # a read-only cache only costs speed
    return torch.from_numpy(array)


def load_celeba(cfg: TrainConfig) -> DatasetBundle:
    """CelebA faces labelled by ``cfg.attribute``; images stored at width S, height 218·S/178."""
    attr = cfg.attribute
    if attr not in ATTRIBUTES:
        raise ConfigError(
            "attribute", f"unknown CelebA attribute {attr!r}; choose one of {', '.join(ATTRIBUTES)}"
        )
    files = find_celeba(cfg.data_dir)
    header, names, matrix = _attributes(files)
    if attr not in header:
        raise DataError(
            f"{files.attr_file} has no column {attr!r} (its columns: {', '.join(header)})"
        )
    labels = torch.from_numpy((matrix[:, header.index(attr)] == 1).astype(np.int64))
    partition = _partitions(files, names)
    notes: list[str] = []
    sizes = {"train": cfg.train_size, "val": cfg.val_size, "test": cfg.val_size}
    sets: dict[str, ImageSet | None] = {}
    for p, split in enumerate(("train", "val", "test")):
        rows = np.flatnonzero(partition == p)
        if not len(rows):
            if split != "test":
                raise DataError(
                    f"{files.partition_file} lists no images in partition {p} ({split})"
                )
            sets[split] = None
            continue
        size = (
            clamp_size("val_size", sizes[split], len(rows), notes)
            if split == "val"
            else sizes[split]
        )
        chosen = torch.from_numpy(rows)[subset_index(len(rows), size, cfg.seed, stream=p)]
        images = _cached_images(files, [names[i] for i in chosen], split, cfg.image_size)
        sets[split] = ImageSet(images, labels[chosen])
    return finish_bundle(
        cfg,
        name="celeba",
        family="faces",
        train=sets["train"],
        val=sets["val"],
        test=sets["test"],
        class_names=[f"not {attr}", attr],
        transform=FacesTransform(cfg.image_size, bool(cfg.augment)),
        source=str(files.root),
        notes=notes,
    )

"""CelebA aligned faces as a binary task on one of the 40 attributes (default ``Smiling``).

Found in ``data_dir``, ``data_dir/celeba`` or ``R/celeba`` for each data root, in any layout
:mod:`.celeba_layouts` knows (torchvision's, Kaggle's, the official Drive/Baidu tree, the
book's ``celeba.zip``, Hugging Face Parquet, zipped or not); zips and Parquet are made
readable once, on first use. ``python -m cnn_core datasets fetch celeba`` downloads it.

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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .. import settings
from ..errors import ConfigError, DataError, filled
from ..images import DECODER_VERSION, decode_at
from .base import DatasetBundle, ImageSet
from .celeba_layouts import (
    ATTRIBUTES,
    CelebaFiles,
    Found,
    Progress,
    locate,
    sweep_stale,
    unpack_zip,
    zip_destination,
)
from .celeba_parquet import convert_shards
from .splits import clamp_size, finish_bundle, subset_index
from .transforms import FacesTransform, faces_stored_height

if TYPE_CHECKING:
    from .spec import DataSpec

ERRATUM = (
    "A note on the book: its CelebA code labels each face with `attr[18]`, which is "
    "Heavy_Makeup, not Smiling (Smiling is attribute 31 of 40, counting from 0). CNN Lab picks "
    "the attribute by name, so the smile classifier here really learns smiles."
)
MISSING_HELP = (
    "CelebA not found (looked in {searched}). Get it with `python -m cnn_core datasets fetch "
    "celeba` (or the Get CelebA button on the Data page), or place it in {root}/celeba/ as you "
    "have it: torchvision's img_align_celeba/ with list_attr_celeba.txt and "
    "list_eval_partition.txt, Kaggle's (csv lists, nested or zipped images), the official "
    "Anno/ Eval/ Img/ tree, the book's celeba.zip, or Hugging Face Parquet shards."
)


def _candidates(data_dir: str | os.PathLike | None) -> list[tuple[Path, list[Path]]]:
    """(CelebA folder, zips beside it that unpack into it) in the order they are tried."""
    folder = settings.resolve_data_dir(data_dir)
    if folder:
        return [(folder, [])]
    return [(r / "celeba", sorted(r.glob("celeba*.zip"))) for r in settings.data_roots()]


def locate_celeba(data_dir: str | os.PathLike | None = None) -> Found:
    """The best CelebA copy found (readable first, then one to unpack or convert); only reads.
    DataError naming the folders searched when there is none."""
    found = [f for folder, beside in _candidates(data_dir) if (f := locate(folder, beside))]
    for usable in (lambda f: f.files, lambda f: f.pending, lambda f: True):
        best = next((f for f in found if usable(f)), None)
        if best is not None:
            return best
    searched = ", ".join(str(c) for c, _ in _candidates(data_dir))
    raise DataError(MISSING_HELP.format(searched=searched, root=settings.default_data_dir()))


def find_celeba(data_dir: str | os.PathLike | None = None) -> CelebaFiles:
    """The readable CelebA copy in ``data_dir`` (checked against the data roots) or under
    ``R/celeba``, unpacking or converting it first when it arrived zipped or as Parquet."""
    found = locate_celeba(data_dir)
    if found.files:
        return found.files
    if found.pending:
        beside = dict(_candidates(data_dir)).get(found.folder, [])
        return prepare(found.folder, beside)
    raise DataError(found.describe())


def source_status() -> dict[str, Any]:
    """Where CelebA would be read from now: available, source folder and a note for users
    (only reads: a zipped copy is reported, not unpacked)."""
    try:
        found = locate_celeba(None)
    except DataError:
        return {
            "available": False,
            "source": "",
            "note": "Not found: get it with the Get CelebA button on the Data page or "
            "`python -m cnn_core datasets fetch celeba`, or place your copy in "
            f"{settings.default_data_dir() / 'celeba'}.",
        }
    if found.files:
        return {"available": True, "source": str(found.files.root), "note": ""}
    return {"available": found.pending, "source": str(found.folder), "note": found.describe()}


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
    name = f"{path.parent.name}/{path.name}"
    return np.asarray(decode_at(path, (width, height), "RGB", name=name))


def decode_images(paths: list[Path], width: int, height: int) -> np.ndarray:
    """Decode and resize ``paths`` to uint8 ``[N, 3, height, width]`` (a few threads) with
    :func:`cnn_core.images.decode_at`; an unusable file raises its ImageError."""
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        arrays = list(pool.map(lambda p: _decode_one(p, width, height), paths))
    if not arrays:
        return np.zeros((0, 3, height, width), np.uint8)
    return np.ascontiguousarray(np.stack(arrays).transpose(0, 3, 1, 2))


def _cached_images(files: CelebaFiles, names: list[str], split: str, width: int) -> torch.Tensor:
    """Decoded images of ``names``, from the cache when layout, files, sizes, mtimes, width and
    the decoder's version match."""
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
    key = json.dumps([files.layout, str(files.image_dir), width, split, stats, DECODER_VERSION])
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


def load_celeba(spec: DataSpec) -> DatasetBundle:
    """CelebA faces labelled by ``spec.attribute``; images stored at width S, height 218·S/178."""
    attr = spec.attribute
    if attr not in ATTRIBUTES:
        raise ConfigError(
            "attribute", f"unknown CelebA attribute {attr!r}; choose one of {', '.join(ATTRIBUTES)}"
        )
    files = find_celeba(spec.data_dir)
    header, names, matrix = _attributes(files)
    if attr not in header:
        raise DataError(
            f"{files.attr_file} has no column {attr!r} (its columns: {', '.join(header)})"
        )
    labels = torch.from_numpy((matrix[:, header.index(attr)] == 1).astype(np.int64))
    partition = _partitions(files, names)
    notes: list[str] = []
    sizes = {"train": spec.train_size, "val": spec.val_size, "test": spec.val_size}
    sets: dict[str, ImageSet | None] = {}
    side = filled(spec.image_size, "image_size")
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
        at = torch.from_numpy(rows)
        index = subset_index(len(rows), size, spec.seed, p, labels[at], spec.split_version)
        chosen = at[index]
        images = _cached_images(files, [names[i] for i in chosen], split, side)
        sets[split] = ImageSet(images, labels[chosen])
    train = sets["train"]
    assert train is not None  # only the test partition may be empty
    return finish_bundle(
        spec,
        name="celeba",
        family="faces",
        train=train,
        val=sets["val"],
        test=sets["test"],
        class_names=[f"not {attr}", attr],
        transform=FacesTransform(side, bool(spec.augment)),
        source=str(files.root),
        notes=notes,
    )


def prepare(
    folder: Path, beside: list[Path] | None = None, progress: Progress | None = None
) -> CelebaFiles:
    """Make the CelebA copy in ``folder`` readable (unpacking and converting as needed, each
    once) and return its :class:`CelebaFiles`; DataError naming what is missing otherwise."""
    for place in (folder, folder.parent):
        sweep_stale(place)
    for _ in range(4):  # e.g. the book's zip, then the image zip inside it
        found = locate(folder, beside)
        if found is None:
            raise DataError(f"no CelebA in {folder}")
        if found.files:
            return found.files
        if found.zips:
            zip_path = found.zips[0]
            unpack_zip(zip_path, zip_destination(zip_path, folder), progress)
            beside = [z for z in beside or [] if z != zip_path]
        elif found.shards:
            convert_shards(found.shards, folder, progress)
        else:
            raise DataError(found.describe())
    raise DataError(f"CelebA in {folder}: unpacking did not produce a readable copy")

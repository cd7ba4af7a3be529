"""Builders of tiny on-disk datasets for tests: IDX files, CelebA layouts and image folders.

Plain functions (not pytest fixtures) so any test module can import them. Contents are
deterministic and self-describing: digit image ``i`` has label ``i % 10`` and first pixel
``25 * label``; CelebA image ``i`` is a flat colour derived from ``i``.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from cnn_core.data.celeba_layouts import ATTRIBUTES as CELEBA_ATTRIBUTES

IDX_DIRS = {  # (name, layout) → folder inside the root
    ("mnist", "flat"): "mnist",
    ("mnist", "torchvision"): "MNIST/raw",
    ("fashion-mnist", "flat"): "fashion-mnist",
    ("fashion-mnist", "torchvision"): "FashionMNIST/raw",
}


def idx_bytes(array: np.ndarray) -> bytes:
    """An uint8 array encoded as an IDX file."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write ``array`` as IDX to ``path`` (gzipped when the name ends in ``.gz``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data, compresslevel=1) if path.suffix == ".gz" else data)
    return path


def digit_arrays(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(images [n, 28, 28], labels [n]): label ``i % 10``, first pixel ``25 * label``."""
    images = np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    images[:, 0, 0] = labels * 25
    return images, labels


def make_idx_dataset(
    root: str | Path,
    n_train: int = 60,
    n_test: int = 20,
    gz: bool = True,
    layout: str = "flat",
    name: str = "mnist",
) -> Path:
    """The four MNIST-style IDX files under ``root`` (flat ``root/mnist`` or ``root/MNIST/raw``)."""
    folder = Path(root) / IDX_DIRS[(name, layout)]
    suffix = ".gz" if gz else ""
    for split, n, seed in (("train", n_train, 1), ("t10k", n_test, 2)):
        images, labels = digit_arrays(n, seed)
        write_idx(folder / f"{split}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte{suffix}", labels)
    return folder


def celeba_colour(i: int) -> tuple[int, int, int]:
    """The flat colour of fixture image ``i``."""
    return (i * 37) % 256, (i * 91) % 256, (i * 53) % 256


def make_celeba(
    root: str | Path,
    n: int = 60,
    layout: str = "torchvision",
    size: tuple[int, int] = (178, 218),
    seed: int = 0,
) -> Path:
    """A tiny CelebA in ``root/celeba`` (torchvision or Kaggle layout); returns that folder.

    Partitions: first 60% train, next 20% val, rest test. Attributes are random ±1.
    """
    folder = Path(root) / "celeba"
    image_dir = folder / "img_align_celeba"
    if layout == "kaggle":
        image_dir = image_dir / "img_align_celeba"
    image_dir.mkdir(parents=True, exist_ok=True)
    values = np.where(np.random.default_rng(seed).random((n, 40)) < 0.4, 1, -1)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    parts = [0 if i < 0.6 * n else 1 if i < 0.8 * n else 2 for i in range(n)]
    for i, name in enumerate(names):
        Image.new("RGB", size, celeba_colour(i)).save(image_dir / name, quality=95)
    if layout == "kaggle":
        attr = ["image_id," + ",".join(CELEBA_ATTRIBUTES)]
        attr += [
            name + "," + ",".join(map(str, row)) for name, row in zip(names, values, strict=True)
        ]
        part = ["image_id,partition"] + [
            f"{name},{p}" for name, p in zip(names, parts, strict=True)
        ]
        (folder / "list_attr_celeba.csv").write_text("\n".join(attr) + "\n")
        (folder / "list_eval_partition.csv").write_text("\n".join(part) + "\n")
    else:
        attr = [str(n), " ".join(CELEBA_ATTRIBUTES) + " "]
        attr += [
            name + " " + " ".join(f"{v:2d}" for v in row)
            for name, row in zip(names, values, strict=True)
        ]
        part = [f"{name} {p}" for name, p in zip(names, parts, strict=True)]
        (folder / "list_attr_celeba.txt").write_text("\n".join(attr) + "\n")
        (folder / "list_eval_partition.txt").write_text("\n".join(part) + "\n")
    return folder


def celeba_labels(folder: str | Path, attribute: str) -> dict[str, int]:
    """``{file name: 0/1}`` for ``attribute``, read independently of cnn_core from either layout."""
    folder = Path(folder)
    csv = folder / "list_attr_celeba.csv"
    if csv.is_file():
        lines = csv.read_text().splitlines()
        header, rows = lines[0].split(",")[1:], [line.split(",") for line in lines[1:]]
    else:
        lines = (folder / "list_attr_celeba.txt").read_text().splitlines()
        header, rows = lines[1].split(), [line.split() for line in lines[2:]]
    j = header.index(attribute)
    return {row[0]: int(row[1 + j] == "1") for row in rows}


def make_image_folder(
    root: str | Path,
    classes: tuple[str, ...] = ("a", "b"),
    n_per_class: int = 10,
    size: tuple[int, int] = (32, 32),
    mode: str = "RGB",
    ext: str = "png",
) -> Path:
    """``root/<class>/<i>.<ext>`` images; class ``k`` is brighter than class ``k-1``. Returns root."""
    root = Path(root)
    rng = np.random.default_rng(0)
    channels = {"L": 1, "RGB": 3}[mode]
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            base = 40 + 160 * k // max(1, len(classes) - 1)
            pixels = np.clip(
                base + rng.integers(-30, 30, (size[1], size[0], channels)), 0, 255
            ).astype(np.uint8)
            Image.fromarray(pixels[..., 0] if channels == 1 else pixels).save(
                root / name / f"{i}.{ext}"
            )
    return root


def shape_image(kind: str, seed: int, size: int = 64) -> Image.Image:
    """One ``size``-px RGB picture of a filled ``circle`` or ``square`` of random size, place
    and colours on a light background (the issue's circles-vs-squares set)."""
    from PIL import ImageDraw

    rng = np.random.default_rng(seed)
    background = tuple(int(v) for v in rng.integers(170, 256, 3))
    img = Image.new("RGB", (size, size), background)
    half = int(rng.integers(size // 8, size // 3))
    cx, cy = (int(v) for v in rng.integers(half + 2, size - half - 2, 2))
    fill = tuple(int(v) for v in rng.integers(0, 130, 3))
    box = (cx - half, cy - half, cx + half, cy + half)
    draw = ImageDraw.Draw(img)
    (draw.ellipse if kind == "circle" else draw.rectangle)(box, fill=fill)
    return img


def make_shapes(root: str | Path, per_class: int = 20, size: int = 64, seed: int = 0) -> Path:
    """``root/circle/*.png`` and ``root/square/*.png``: ``per_class`` clean pictures each."""
    root = Path(root)
    for k, kind in enumerate(("circle", "square")):
        (root / kind).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shape_image(kind, seed * 100_003 + 1000 * k + i, size).save(root / kind / f"{i}.png")
    return root

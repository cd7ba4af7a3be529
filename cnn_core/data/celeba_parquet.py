"""Hugging Face Parquet shards of CelebA (e.g. ``flwrlabs/celeba``) converted once into the
torchvision layout: each image's encoded bytes written as they are (no re-encoding), the
attribute and partition lists written from the columns. The split comes from the shard's
name (``train``, ``valid``/``validation``/``val``, ``test``). Staged, then renamed into place."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import DataError
from .celeba_layouts import ATTRIBUTES, IMAGE_DIR, discard, move_into, staging_dir

SPLITS = {"train": 0, "valid": 1, "validation": 1, "val": 1, "test": 2}
BATCH_ROWS = 512


def shard_partition(path: Path) -> int:
    """0/1/2 from a shard's name or its folder's (DataError when neither names a split)."""
    for name in (path.name, path.parent.name):
        match = re.match(r"(train|validation|valid|val|test)(?![a-z])", name.lower())
        if match:
            return SPLITS[match.group(1)]
    raise DataError(
        f"{path}: cannot tell its split from the name (expected train-*, valid-* or test-*)"
    )


def _suffix(data: bytes) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return ".jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    raise DataError("an image in the Parquet file is neither JPEG nor PNG")


def _image(value: Any) -> tuple[bytes | None, str | None]:
    """(encoded bytes, original file name or None) of one ``image`` cell."""
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
        return data, PurePosixPath(path).name if path else None
    return value, None


def _sign(value) -> int:
    """An attribute cell as CelebA's ±1 (bool, 0/1 or ±1)."""
    if value is None:
        raise DataError("an attribute value is missing")
    return 1 if (value is True or value == 1) else -1


def check_columns(path: Path, columns: list[str]) -> None:
    """DataError naming the file and the missing columns, if any."""
    wanted = ["image", *ATTRIBUTES]
    missing = [c for c in wanted if c not in columns]
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise DataError(
            f"{path} is missing column(s) {shown} (CelebA shards need 'image' and the 40 attributes)"
        )


def convert_shards(
    shards: list[Path], folder: Path, progress: Callable[[str, int, int], None] | None = None
) -> None:
    """Write ``folder/img_align_celeba/`` and the two list files from ``shards``."""
    try:
        import pyarrow.parquet as pq
    except ModuleNotFoundError:  # pragma: no cover - pyarrow ships with streamlit
        raise DataError("reading Parquet needs pyarrow: pip install pyarrow") from None
    attributes = ATTRIBUTES
    ordered = sorted(shards, key=lambda p: (shard_partition(p), p.name))
    files = []
    for path in ordered:
        try:
            files.append(pq.ParquetFile(path))
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise DataError(f"{path} is not a readable Parquet file ({exc})") from None
        check_columns(path, files[-1].schema_arrow.names)
    total = sum(f.metadata.num_rows for f in files)
    staged = staging_dir(folder)
    images = staged / IMAGE_DIR
    images.mkdir()
    rows: list[tuple[str, list[int], int]] = []
    seen: set[str] = set()
    try:
        for path, parquet in zip(ordered, files, strict=True):
            partition = shard_partition(path)
            for batch in parquet.iter_batches(BATCH_ROWS, columns=["image", *attributes]):
                table = batch.to_pydict()
                for k, cell in enumerate(table["image"]):
                    data, name = _image(cell)
                    if not data:
                        raise DataError(f"{path}: row {len(rows) + 1} has no image bytes")
                    if not name or name in seen:
                        name = f"{len(rows) + 1:06d}{_suffix(data)}"
                    seen.add(name)
                    (images / name).write_bytes(data)
                    rows.append((name, [_sign(table[a][k]) for a in attributes], partition))
                if progress:
                    progress("converting Parquet", len(rows), total)
        attr = [str(len(rows)), " ".join(attributes)]
        attr += [f"{n} " + " ".join(f"{v:2d}" for v in values) for n, values, _ in rows]
        (staged / "list_attr_celeba.txt").write_text("\n".join(attr) + "\n")
        part = [f"{n} {p}" for n, _, p in rows]
        (staged / "list_eval_partition.txt").write_text("\n".join(part) + "\n")
    except DataError as exc:
        discard(staged)
        raise exc if str(path) in str(exc) else DataError(f"{path}: {exc}") from None
    except OSError as exc:
        discard(staged)
        raise DataError(f"cannot convert {folder}'s Parquet shards: {exc}") from None
    except BaseException:
        discard(staged)
        raise
    move_into(staged, folder)

"""Your own datasets: safe import of uploads, zips and camera shots into an image folder.

A dataset called NAME lives in ``<first data root>/datasets/NAME/<class>/<image>``: the layout
the ``image-folder`` dataset reads (``data_dir="datasets/NAME"``). Every change is staged in a
hidden sibling folder and swapped in with renames, so a reader sees the old dataset or the new
one, never half of a change, and a refused import leaves nothing behind.

Zips are checked before anything is unpacked: paths escaping the folder (``..``), absolute
paths and symlinks refuse the whole archive, as do more than ``Limits.max_files`` files or
more than ``Limits.max_bytes`` bytes. Single files are skipped with a reason: compression
ratios of a decompression bomb, files over ``Limits.max_file_bytes``, anything the safe decoder
(:func:`cnn_core.images.open_image`) refuses, hidden or system files, files outside a class
folder. Names are sanitised; a name already taken gets ``-2``, ``-3``…; a file identical to
one already in its class is skipped.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import re
import shutil
import stat
import unicodedata
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from .. import settings
from ..errors import UserError
from ..images import DEFAULT_MAX_PIXELS, open_image
from .folder import EXTENSIONS, list_classes

DATASETS_DIR = "datasets"
KEPT_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp"}
JUNK_NAMES = {"__macosx", ".ds_store", "thumbs.db", "desktop.ini"}
_UNSAFE = re.compile(r"[^\w.\- ]+")


@dataclass(frozen=True)
class Limits:
    """What one import may unpack. ``from_env`` reads ``CNN_LAB_IMPORT_MAX_FILES`` /
    ``CNN_LAB_IMPORT_MAX_BYTES`` / ``CNN_LAB_IMPORT_MAX_FILE_BYTES``."""

    max_files: int = 10_000
    max_bytes: int = 500_000_000
    max_file_bytes: int = 25_000_000
    max_ratio: int = 100  # uncompressed / compressed size above this (for files > 1 MB): a bomb
    max_pixels: int = DEFAULT_MAX_PIXELS

    @classmethod
    def from_env(cls) -> Limits:
        values = {}
        for name in ("max_files", "max_bytes", "max_file_bytes"):
            raw = os.environ.get(f"CNN_LAB_IMPORT_{name.upper()}")
            if raw:
                if not raw.isdigit() or int(raw) < 1:
                    raise UserError(f"CNN_LAB_IMPORT_{name.upper()} must be a positive number")
                values[name] = int(raw)
        return cls(**values)


@dataclass
class ImportReport:
    """What an import or upload did: images added per class and the files skipped, with why."""

    name: str
    path: str
    data_dir: str
    added: dict[str, int] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.added.values())

    def skip(self, file: str, reason: str) -> None:
        self.skipped.append({"file": file, "reason": reason})

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "data_dir": self.data_dir,
            "added": dict(self.added),
            "total": self.total,
            "skipped": list(self.skipped),
        }


# ---- names and places ------------------------------------------------------------------------
def sanitize_name(text: str, what: str = "name") -> str:
    """``text`` as a safe file or folder name (letters, digits, ``. _ - `` and spaces; at most
    64 characters; no leading dot). Raises UserError when nothing usable is left."""
    clean = _UNSAFE.sub("_", unicodedata.normalize("NFKC", str(text))).strip(" ._-")
    clean = re.sub(r"_+", "_", clean)[:64].strip(" ._-")
    if not clean:
        raise UserError(f"{what} {text!r} has no usable characters (use letters and digits)")
    return clean


def datasets_root() -> Path:
    """Where user datasets are written: ``datasets/`` in the first data root."""
    return settings.default_data_dir() / DATASETS_DIR


def dataset_path(name: str) -> Path:
    """The folder of the user dataset ``name`` (sanitised and confined to the data roots)."""
    root = datasets_root()
    return settings.resolve_within(root / sanitize_name(name, "dataset name"), [root], "dataset")


def data_dir_of(name: str) -> str:
    """The ``data_dir`` to give the image-folder dataset (relative to the first data root)."""
    return f"{DATASETS_DIR}/{sanitize_name(name, 'dataset name')}"


def list_datasets() -> list[dict[str, Any]]:
    """Every user dataset: name, data_dir, path and ``{class: image count}``."""
    root = datasets_root()
    if not root.is_dir():
        return []
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        classes = {k: len(v) for k, v in list_classes(folder).items()}
        out.append(
            {
                "name": folder.name,
                "data_dir": f"{DATASETS_DIR}/{folder.name}",
                "path": str(folder),
                "classes": classes,
                "images": sum(classes.values()),
            }
        )
    return out


def require_dataset(name: str) -> Path:
    path = dataset_path(name)
    if not path.is_dir():
        raise UserError(f"no dataset called {name!r}; create it first")
    return path


# ---- atomic changes --------------------------------------------------------------------------
@contextmanager
def _locked() -> Iterator[None]:
    root = datasets_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def change_dataset(name: str, change: Callable[[Path], Any], *, create: bool = False) -> Any:
    """Apply ``change(stage)`` to a staged copy of dataset ``name`` and swap it in atomically.

    The stage starts as hard links of the current files (or empty when ``create``); if
    ``change`` raises, the stage is removed and the dataset is untouched.
    """
    final = dataset_path(name)
    with _locked():
        exists = final.is_dir()
        if not exists and not create:
            raise UserError(f"no dataset called {name!r}; create it first")
        stage = final.with_name(f".{final.name}.stage-{uuid.uuid4().hex[:8]}")
        try:
            if exists:
                shutil.copytree(final, stage, copy_function=_link_or_copy)
            else:
                stage.mkdir(parents=True)
            result = change(stage)
            _swap(stage, final)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    return result


def _swap(stage: Path, final: Path) -> None:
    if not final.exists():
        os.replace(stage, final)
        return
    old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(final, old)
    os.replace(stage, final)
    shutil.rmtree(old, ignore_errors=True)


# ---- writing images --------------------------------------------------------------------------
def _encoded(data: bytes, label: str, limits: Limits) -> tuple[bytes, str]:
    """(bytes to store, extension): the original bytes for PNG/JPEG/WebP/BMP, else PNG."""
    img = open_image(data, name=label, max_pixels=limits.max_pixels)  # UserError if unusable
    fmt = _format_of(data)
    if fmt in KEPT_FORMATS:
        return data, KEPT_FORMATS[fmt]
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue(), ".png"


def _format_of(data: bytes) -> str | None:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.format
    except Exception:  # noqa: BLE001 - already decoded once by open_image; format is a hint
        return None


def _free_name(folder: Path, stem: str, ext: str) -> Path:
    candidate, n = folder / f"{stem}{ext}", 1
    while candidate.exists():
        n += 1
        candidate = folder / f"{stem}-{n}{ext}"
    return candidate


def _digests(folder: Path) -> set[str]:
    return {hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


def _add_to_stage(
    stage: Path,
    items: Iterable[tuple[str, str, bytes, str]],
    report: ImportReport,
    limits: Limits,
) -> None:
    """Write ``(class, file name, bytes, label for messages)`` items into ``stage``, recording
    adds and skips."""
    seen: dict[str, set[str]] = {}
    for cls, filename, data, label in items:
        try:
            cls_name = sanitize_name(cls, "class name")
            stem = sanitize_name(PurePosixPath(filename).stem or "image", "file name")
            if len(data) > limits.max_file_bytes:
                raise UserError(f"larger than the {limits.max_file_bytes / 1e6:g} MB file limit")
            payload, ext = _encoded(data, filename, limits)
        except UserError as exc:
            report.skip(label, str(exc))
            continue
        folder = stage / cls_name
        folder.mkdir(exist_ok=True)
        digests = seen.setdefault(cls_name, _digests(folder))
        digest = hashlib.sha256(payload).hexdigest()
        if digest in digests:
            report.skip(label, f"identical to an image already in class {cls_name!r}")
            continue
        digests.add(digest)
        _free_name(folder, stem, ext).write_bytes(payload)
        report.added[cls_name] = report.added.get(cls_name, 0) + 1


def _report(name: str) -> ImportReport:
    return ImportReport(
        sanitize_name(name, "dataset name"), str(dataset_path(name)), data_dir_of(name)
    )


# ---- public operations -----------------------------------------------------------------------
def create_dataset(name: str, classes: Iterable[str] = ()) -> Path:
    """Create an empty dataset (optionally with empty class folders); error if it exists."""
    if dataset_path(name).exists():
        raise UserError(f"a dataset called {sanitize_name(name)!r} already exists")
    names = [sanitize_name(c, "class name") for c in classes]
    change_dataset(
        name, lambda stage: [(stage / c).mkdir(exist_ok=True) for c in names], create=True
    )
    return dataset_path(name)


def add_class(name: str, cls: str) -> str:
    """Add an empty class folder; returns its sanitised name."""
    clean = sanitize_name(cls, "class name")

    def change(stage: Path) -> None:
        if (stage / clean).exists():
            raise UserError(f"class {clean!r} already exists")
        (stage / clean).mkdir()

    change_dataset(name, change)
    return clean


def add_images(
    name: str, cls: str, files: Iterable[tuple[str, bytes]], limits: Limits | None = None
) -> ImportReport:
    """Add uploaded ``(file name, bytes)`` images (or camera shots) to class ``cls``."""
    limits = limits or Limits.from_env()
    report = _report(name)
    files = list(files)
    if len(files) > limits.max_files:
        raise UserError(f"{len(files)} files is more than the limit of {limits.max_files}")
    change_dataset(
        name,
        lambda stage: _add_to_stage(
            stage, ((cls, f, d, f"{cls}/{f}") for f, d in files), report, limits
        ),
    )
    return report


def rename_class(name: str, old: str, new: str) -> str:
    """Rename class ``old`` to ``new`` (sanitised); returns the new name."""
    clean = sanitize_name(new, "class name")

    def change(stage: Path) -> None:
        if not (stage / old).is_dir() or old.startswith("."):
            raise UserError(f"no class {old!r}")
        if (stage / clean).exists():
            raise UserError(f"class {clean!r} already exists")
        (stage / old).rename(stage / clean)

    change_dataset(name, change)
    return clean


def delete_class(name: str, cls: str) -> None:
    def change(stage: Path) -> None:
        if not (stage / cls).is_dir() or cls.startswith("."):
            raise UserError(f"no class {cls!r}")
        shutil.rmtree(stage / cls)

    change_dataset(name, change)


def delete_image(name: str, cls: str, filename: str) -> None:
    """Delete one image ``<cls>/<filename>`` (names as listed by :func:`list_images`)."""

    def change(stage: Path) -> None:
        target = stage / cls / filename
        if "/" in cls + filename or not target.is_file() or filename.startswith("."):
            raise UserError(f"no image {cls}/{filename}")
        target.unlink()

    change_dataset(name, change)


def delete_dataset(name: str) -> None:
    path = require_dataset(name)
    with _locked():
        old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(path, old)
        shutil.rmtree(old, ignore_errors=True)


def list_images(name: str) -> dict[str, list[Path]]:
    """``{class: image files}`` of a user dataset."""
    return list_classes(require_dataset(name))


def export_zip(name: str) -> bytes:
    """The dataset as a zip of ``NAME/<class>/<image>`` (re-importable as it is)."""
    path = require_dataset(name)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for cls, files in list_classes(path).items():
            zf.writestr(f"{path.name}/{cls}/", b"")
            for file in files:
                zf.write(file, f"{path.name}/{cls}/{file.name}")
    return buffer.getvalue()


# ---- zip import ------------------------------------------------------------------------------
def import_zip(
    name: str, archive: bytes | str | os.PathLike | BinaryIO, limits: Limits | None = None
) -> ImportReport:
    """Import a zip of ``<class>/<image>`` folders (one common top folder is allowed) into
    dataset ``name``, creating it if needed. Refuses the whole archive (UserError, nothing
    written) for unsafe entries, too many files or bytes, or no usable image at all."""
    limits = limits or Limits.from_env()
    report = _report(name)
    source = io.BytesIO(archive) if isinstance(archive, bytes | bytearray) else archive
    try:
        with zipfile.ZipFile(source) as zf:
            members = _checked_members(zf, limits)
            items = _zip_items(zf, members, report, limits)

            def change(stage: Path) -> None:
                _add_to_stage(stage, items, report, limits)
                already = any(s["reason"].startswith("identical") for s in report.skipped)
                if not report.total and not already:
                    shown = "; ".join(f"{s['file']}: {s['reason']}" for s in report.skipped[:3])
                    raise UserError(f"no usable images in the archive ({shown or 'it is empty'})")

            change_dataset(name, change, create=True)
    except zipfile.BadZipFile:
        raise UserError("the archive is not a readable zip file") from None
    except zipfile.LargeZipFile:
        raise UserError("the archive needs ZIP64, which is not accepted here") from None
    return report


def _checked_members(zf: zipfile.ZipFile, limits: Limits) -> list[zipfile.ZipInfo]:
    """The file entries of ``zf``; UserError for anything that refuses the whole archive."""
    files = []
    for info in zf.infolist():
        name = info.filename
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise UserError(f"refused: the archive contains a symlink ({name})")
        if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
            raise UserError(f"refused: the archive contains an absolute path ({name})")
        if ".." in re.split(r"[\\/]", name):
            raise UserError(f"refused: the archive contains a path escaping its folder ({name})")
        if not info.is_dir():
            files.append(info)
    if len(files) > limits.max_files:
        raise UserError(f"refused: {len(files)} files is more than the limit of {limits.max_files}")
    total = sum(i.file_size for i in files)
    if total > limits.max_bytes:
        raise UserError(
            f"refused: {total / 1e6:.1f} MB unpacked is more than the limit of "
            f"{limits.max_bytes / 1e6:g} MB"
        )
    return files


def _zip_items(
    zf: zipfile.ZipFile, members: list[zipfile.ZipInfo], report: ImportReport, limits: Limits
) -> list[tuple[str, str, bytes, str]]:
    """``(class, file name, bytes, name in the zip)`` for every acceptable member; the rest skipped with a reason."""
    parts = {i.filename: [p for p in re.split(r"[\\/]", i.filename) if p] for i in members}
    visible = [p for p in parts.values() if not _is_junk(p)]
    tops = {p[0] for p in visible}
    strip = len(tops) == 1 and all(len(p) >= 3 for p in visible)  # NAME/<class>/<image>
    items, unpacked = [], 0
    for info in members:
        path = parts[info.filename][1:] if strip else parts[info.filename]
        reason = _member_problem(info, path, limits)
        if reason:
            report.skip(info.filename, reason)
            continue
        with zf.open(info) as handle:
            data = handle.read(limits.max_file_bytes + 1)
        if len(data) > limits.max_file_bytes:
            report.skip(
                info.filename, f"larger than the {limits.max_file_bytes / 1e6:g} MB file limit"
            )
            continue
        unpacked += len(data)
        if unpacked > limits.max_bytes:
            raise UserError(f"refused: more than {limits.max_bytes / 1e6:g} MB unpacked")
        items.append((path[0], path[1], data, info.filename))
    return items


def _is_junk(parts: list[str]) -> bool:
    return any(p.lower() in JUNK_NAMES or p.startswith(".") for p in parts)


def _member_problem(info: zipfile.ZipInfo, path: list[str], limits: Limits) -> str:
    if _is_junk(path):
        return "hidden or system file"
    if len(path) < 2:
        return "not inside a class folder (expected <class>/<image>)"
    if len(path) > 2:
        return "nested too deep (expected <class>/<image>)"
    if info.flag_bits & 0x1:
        return "encrypted"
    if info.file_size > limits.max_file_bytes:
        return f"larger than the {limits.max_file_bytes / 1e6:g} MB file limit"
    ratio = info.file_size / max(1, info.compress_size)
    if info.file_size > 1_000_000 and ratio > limits.max_ratio:
        return f"compression ratio {ratio:.0f}:1 looks like a decompression bomb"
    if PurePosixPath(path[1]).suffix.lower() not in EXTENSIONS | {".gif", ".tif", ".tiff"}:
        return "not an image file (by its extension)"
    return ""

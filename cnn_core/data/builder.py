"""Your own datasets: safe import of uploads, zips and camera shots into an image folder.

A dataset called NAME lives in ``<first data root>/datasets/NAME/<class>/<image>``: the layout
the ``image-folder`` dataset reads (``data_dir="datasets/NAME"``). Every change is staged in a
hidden sibling folder and swapped in with renames, so a reader sees the old dataset or the new
one, never half of a change, and a refused import leaves nothing behind.

Zips are checked before anything is unpacked (:mod:`.archive`); every image is decoded by the
safe decoder (:func:`cnn_core.images.open_image`) and skipped with its reason if refused (the
reason the loader, data health and ``predict`` give for that file). Names are sanitised; a name
already taken gets ``-2``, ``-3``…; a file identical to one already in its class is skipped.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import re
import shutil
import unicodedata
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from .. import settings
from ..errors import ImageError, UserError
from ..images import open_image, read_header
from .archive import ImportReport, Limits, read_zip
from .folder import given_splits, list_classes, write_given_splits

DATASETS_DIR = "datasets"
KEPT_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp"}
_UNSAFE = re.compile(r"[^\w.\- ]+")


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
    img = open_image(data, name=label, max_pixels=limits.max_pixels)  # ImageError if unusable
    fmt = read_header(data, name=label, max_pixels=limits.max_pixels).format
    if fmt in KEPT_FORMATS:
        return data, KEPT_FORMATS[fmt]
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue(), ".png"


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
    items: Iterable[tuple[str, str, bytes, str, str]],
    report: ImportReport,
    limits: Limits,
) -> None:
    """Write ``(class, file name, bytes, label for messages, given split or "")`` items into
    ``stage``, recording adds, skips and the given val / test splits (:func:`.folder.given_splits`)."""
    seen: dict[str, set[str]] = {}
    given = given_splits(stage)
    for cls, filename, data, label, split in items:
        try:
            cls_name = sanitize_name(cls, "class name")
            stem = sanitize_name(PurePosixPath(filename).stem or "image", "file name")
            if len(data) > limits.max_file_bytes:
                raise UserError(f"larger than the {limits.max_file_bytes / 1e6:g} MB file limit")
            payload, ext = _encoded(data, filename, limits)
        except ImageError as exc:
            report.skip(label, exc.reason)
            continue
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
        target = _free_name(folder, stem, ext)
        target.write_bytes(payload)
        report.added[cls_name] = report.added.get(cls_name, 0) + 1
        if split:
            report.splits[split] = report.splits.get(split, 0) + 1
        if split in ("val", "test"):
            given[f"{cls_name}/{target.name}"] = split
    write_given_splits(stage, given)


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

    def make_classes(stage: Path) -> None:
        for c in names:
            (stage / c).mkdir(exist_ok=True)

    change_dataset(name, make_classes, create=True)
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
            stage, ((cls, f, d, f"{cls}/{f}", "") for f, d in files), report, limits
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
        given = given_splits(stage)
        write_given_splits(stage, {_renamed(k, old, clean): v for k, v in given.items()})

    change_dataset(name, change)
    return clean


def _renamed(key: str, old: str, new: str) -> str:
    cls, _, file = key.partition("/")
    return f"{new}/{file}" if cls == old else key


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
    """The dataset as a zip of ``NAME/<class>/<image>``, or of ``NAME/<split>/<class>/<image>``
    when it keeps given splits (re-importable as it is)."""
    path = require_dataset(name)
    given = given_splits(path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for cls, files in list_classes(path).items():
            zf.writestr(f"{path.name}/{'train/' if given else ''}{cls}/", b"")  # empty ones too
            for file in files:
                split = given.get(f"{cls}/{file.name}", "train") if given else ""
                zf.write(file, "/".join(p for p in (path.name, split, cls, file.name) if p))
    return buffer.getvalue()


# ---- zip import ------------------------------------------------------------------------------
def import_zip(
    name: str, archive: bytes | str | os.PathLike | BinaryIO, limits: Limits | None = None
) -> ImportReport:
    """Import a zip of ``<class>/<image>`` folders (one common top folder is allowed; split
    folders ``train/``, ``val/``, ``test/`` keep their splits; :func:`.archive.zip_layout`) into
    dataset ``name``, creating it if needed. Refuses the whole archive (UserError, nothing
    written) for unsafe entries, too many files or bytes, or no usable image at all."""
    limits = limits or Limits.from_env()
    report = _report(name)
    source = io.BytesIO(archive) if isinstance(archive, bytes | bytearray) else archive
    try:
        with zipfile.ZipFile(source) as zf:
            items = read_zip(zf, report, limits)

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

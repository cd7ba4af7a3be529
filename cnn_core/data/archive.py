"""Reading a user's zip safely: entries that refuse the whole archive, and per-file skips.

Refused whole (:class:`UserError`): paths escaping the folder (``..``), absolute paths,
symlinks, more than ``Limits.max_files`` files or ``Limits.max_bytes`` bytes unpacked.
Skipped with a reason: hidden or system files, files outside a ``<class>/<image>`` layout,
encrypted entries, files over ``Limits.max_file_bytes``, compression ratios of a
decompression bomb, names that are not image types. One common top folder is allowed.

Layouts recognised (:func:`zip_layout`, named in the import's report): ``<class>/<image>``,
the same under one top folder, and split folders ``[NAME/]train/<class>/<image>`` with
``test/`` and ``val/`` (``valid/``, ``validation/``) beside it, whose given splits the import
keeps. Split folders beside loose class folders refuse the archive.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from ..errors import UserError
from ..images import DEFAULT_MAX_PIXELS
from .folder import EXTENSIONS

JUNK_NAMES = {"__macosx", ".ds_store", "thumbs.db", "desktop.ini"}
SPLIT_FOLDERS = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}
LAYOUTS = {
    "classes": "<class>/<image> folders",
    "top": "one top folder of <class>/<image> folders",
    "splits": "train/test split folders, each of <class>/<image> (given splits kept)",
}


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
    layout: str = ""  # the zip layout recognised (a LAYOUTS value); "" for uploads
    splits: dict[str, int] = field(default_factory=dict)  # images added per given split

    @property
    def total(self) -> int:
        return sum(self.added.values())

    def summary(self) -> str:
        """``Added 40 image(s) to pets — recognised train/test split folders …; given splits:
        train 30, test 10.`` (the layout part only for a zip)."""
        text = f"Added {self.total} image(s) to {self.name}"
        if self.layout:
            text += f" — recognised {self.layout}"
        if self.splits:
            text += "; given splits: " + ", ".join(f"{k} {v}" for k, v in self.splits.items())
        return text + "."

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
            "layout": self.layout,
            "splits": dict(self.splits),
        }


def read_zip(
    zf: zipfile.ZipFile, report: ImportReport, limits: Limits
) -> list[tuple[str, str, bytes, str, str]]:
    """``(class, file name, bytes, name in the zip, given split or "")`` of every acceptable
    entry of ``zf``; skipped entries go to ``report``, the layout recognised to
    ``report.layout``; UserError when the archive is refused as a whole."""
    return _zip_items(zf, checked_members(zf, limits), report, limits)


def checked_members(zf: zipfile.ZipFile, limits: Limits) -> list[zipfile.ZipInfo]:
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


def zip_layout(paths: list[list[str]]) -> tuple[str, int]:
    """(layout key of :data:`LAYOUTS`, leading folders to strip) of the visible entries'
    path parts; UserError for split folders beside loose class folders."""
    tops = {p[0] for p in paths}
    strip = 1 if len(tops) == 1 and all(len(p) >= 3 for p in paths) else 0
    heads = {p[strip].lower() for p in paths if len(p) > strip + 2}  # <split>/<class>/<image>
    if "train" in heads:
        firsts = {p[strip] for p in paths if len(p) > strip + 1}
        loose = sorted(f for f in firsts if f.lower() not in SPLIT_FOLDERS)
        if loose:
            raise UserError(
                f"refused: the archive has split folders ({', '.join(sorted(heads))}/) beside "
                f"loose class folders ({', '.join(loose[:3])}/): use one layout — every class "
                "inside train/ (and test/, val/), or class folders alone"
            )
        return "splits", strip
    return ("top" if strip else "classes"), strip


def _zip_items(
    zf: zipfile.ZipFile, members: list[zipfile.ZipInfo], report: ImportReport, limits: Limits
) -> list[tuple[str, str, bytes, str, str]]:
    """``(class, file name, bytes, name in the zip, split)`` for every acceptable member; the
    rest skipped with a reason."""
    parts = {i.filename: [p for p in re.split(r"[\\/]", i.filename) if p] for i in members}
    visible = [p for p in parts.values() if not _is_junk(p)]
    layout, strip = zip_layout(visible) if visible else ("classes", 0)
    report.layout = LAYOUTS[layout]
    items, unpacked = [], 0
    for info in members:
        path = parts[info.filename][strip:]
        split = ""
        if layout == "splits" and len(path) > 1 and path[0].lower() in SPLIT_FOLDERS:
            split, path = SPLIT_FOLDERS[path[0].lower()], path[1:]
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
        items.append((path[0], path[1], data, info.filename, split))
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

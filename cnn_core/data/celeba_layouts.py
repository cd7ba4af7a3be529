"""Every layout a CelebA copy arrives in, found and made readable once.

Looking (:func:`locate`) only reads. Making a copy readable
(:func:`cnn_core.data.celeba.prepare`, with :func:`unpack_zip` here) unpacks zips
with the archive safety of ``datasets import`` and converts Hugging Face Parquet shards, each
staged in a hidden folder beside its destination and renamed into place when complete, so an
interrupted step leaves nothing half-written that a later look would take for data.

Layouts, all found in a CelebA folder (``R/celeba`` or a data dir) up to three levels deep:

* torchvision: ``img_align_celeba/*.jpg`` with ``list_attr_celeba.txt`` and
  ``list_eval_partition.txt``;
* Kaggle: ``img_align_celeba/img_align_celeba/*.jpg`` (or an inner ``img_align_celeba.zip``)
  with ``.csv`` lists;
* the official Drive/Baidu tree: ``Anno/list_attr_celeba.txt``,
  ``Eval/list_eval_partition.txt``, ``Img/img_align_celeba.zip`` (or unpacked);
* the book's ``celeba.zip`` (or any ``celeba*.zip`` / Kaggle's ``archive.zip``), in the
  CelebA folder or beside it in a data root;
* Hugging Face Parquet shards (``train-*.parquet``, ``valid-*``, ``test-*``): an ``image``
  column and the 40 attributes;
* any mix of ``.txt`` and ``.csv`` lists.
"""

from __future__ import annotations

import os
import re
import shutil
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import DataError, UserError
from .archive import Limits, checked_members

# the 40 attributes, in the order of the attribute list's columns
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
ATTR_NAMES = ("list_attr_celeba.txt", "list_attr_celeba.csv")
PARTITION_NAMES = ("list_eval_partition.txt", "list_eval_partition.csv")
IMAGE_DIR = "img_align_celeba"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
MAX_DEPTH = 3
STAGING_PREFIX = ".celeba-staging-"
# CelebA is 202,599 aligned JPEGs (~1.4 GB); the book's zip holds the image zip itself.
ZIP_LIMITS = Limits(max_files=300_000, max_bytes=6_000_000_000, max_file_bytes=3_000_000_000)
JUNK = {"__macosx", ".ds_store", "thumbs.db", "desktop.ini"}

Progress = Callable[[str, int, int], None]  # (what, done, total)


@dataclass(frozen=True)
class CelebaFiles:
    """Where one readable CelebA copy lives."""

    layout: str  # torchvision | kaggle | official | mixed
    root: Path
    attr_file: Path
    partition_file: Path
    image_dir: Path


@dataclass
class Found:
    """What a CelebA folder holds: a readable copy (``files``) and/or the steps that would make
    one (``zips`` to unpack, Parquet ``shards`` to convert), or ``missing`` pieces."""

    folder: Path
    files: CelebaFiles | None = None
    zips: list[Path] = field(default_factory=list)
    shards: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def pending(self) -> bool:
        return self.files is None and bool(self.zips or self.shards)

    def describe(self) -> str:
        """One line for users: what is here and what would happen on first use."""
        if self.files:
            return f"CelebA ({self.files.layout} layout) in {self.files.root}"
        if self.zips:
            return f"CelebA zipped as {self.zips[0]}: unpacked once on first use"
        if self.shards:
            return f"CelebA as {len(self.shards)} Parquet shard(s) in {self.folder}: converted once on first use"
        return f"CelebA in {self.folder} is incomplete: missing {', '.join(self.missing)}"


def _walk(folder: Path, depth: int = MAX_DEPTH) -> Iterator[Path]:
    """Entries under ``folder`` up to ``depth`` levels, skipping hidden ones (staging, junk);
    a folder of images is not listed (it is recognised by its name)."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(".") or entry.name.lower() in JUNK:
            continue
        path = Path(entry.path)
        yield path
        if depth > 1 and entry.is_dir() and not _holds_images(path):
            yield from _walk(path, depth - 1)


def _holds_images(folder: Path) -> bool:
    """True when ``folder`` directly holds an image file (only the first entries are looked at)."""
    try:
        with os.scandir(folder) as it:
            for k, entry in enumerate(it):
                if Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
                    return True
                if k > 20:
                    return False
    except OSError:
        return False
    return False


def _layout(folder: Path, attr: Path, part: Path, images: Path) -> str:
    if attr.suffix != part.suffix:
        return "mixed"
    if attr.parent.name == "Anno" or images.parent.name == "Img":
        return "official"
    if attr.suffix == ".csv" or images.parent.name == IMAGE_DIR:
        return "kaggle"
    return "torchvision"


def _outer_zip(path: Path) -> bool:
    name = path.name.lower()
    return (
        path.suffix.lower() == ".zip"
        and name != f"{IMAGE_DIR}.zip"
        and ("celeba" in name or name == "archive.zip")
    )


def locate(folder: Path, beside: list[Path] | None = None) -> Found | None:
    """What CelebA ``folder`` holds (None when nothing of CelebA is there). ``beside``: zips
    next to the folder (a data root's ``celeba.zip``) that unpack into it. Only reads."""
    entries = list(_walk(folder)) if folder.is_dir() else []
    by_depth = sorted(entries, key=lambda p: (len(p.relative_to(folder).parts), str(p)))
    attr = next((p for p in by_depth if p.name in ATTR_NAMES and p.is_file()), None)
    part = next((p for p in by_depth if p.name in PARTITION_NAMES and p.is_file()), None)
    image_dirs = [p for p in by_depth if p.name == IMAGE_DIR and p.is_dir() and _holds_images(p)]
    inner = [p for p in by_depth if p.name.lower() == f"{IMAGE_DIR}.zip" and p.is_file()]
    outer = [p for p in by_depth if _outer_zip(p) and p.is_file()]
    outer += [z for z in beside or [] if z.is_file()]
    shards = [p for p in by_depth if p.suffix == ".parquet" and p.is_file()]
    found = Found(folder)
    if attr and part and image_dirs:
        images = image_dirs[0]
        found.files = CelebaFiles(_layout(folder, attr, part, images), folder, attr, part, images)
        return found
    if attr and part and inner:
        found.zips = inner[:1]
    elif outer:
        found.zips = outer[:1]
    elif shards:
        found.shards = shards
    if found.pending:
        return found
    if not (attr or part or image_dirs or inner):
        return None
    found.missing = [
        what
        for what, ok in (
            ("list_attr_celeba.txt (or .csv)", attr),
            ("list_eval_partition.txt (or .csv)", part),
            (f"{IMAGE_DIR}/ (or {IMAGE_DIR}.zip)", image_dirs or inner),
        )
        if not ok
    ]
    return found


def staging_dir(parent: Path) -> Path:
    """A fresh hidden folder in ``parent`` for one step (removed by :func:`discard`)."""
    parent.mkdir(parents=True, exist_ok=True)
    path = parent / f"{STAGING_PREFIX}{os.getpid()}"
    discard(path)
    path.mkdir()
    return path


def discard(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def sweep_stale(folder: Path) -> None:
    """Remove staging folders left in ``folder`` by a process that was killed mid-step."""
    for path in folder.glob(f"{STAGING_PREFIX}*") if folder.is_dir() else []:
        pid = path.name.removeprefix(STAGING_PREFIX)
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            discard(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def move_into(staged: Path, dest: Path) -> None:
    """Rename every entry of ``staged`` into ``dest``, merging folders that exist on both
    sides (a file already there is an error: nothing is overwritten), then remove ``staged``."""
    dest.mkdir(parents=True, exist_ok=True)
    for p in sorted(staged.iterdir()):
        target = dest / p.name
        if p.is_dir() and target.is_dir():
            move_into(p, target)
        elif target.exists():
            discard(staged)
            raise DataError(f"{target} already exists: move it away and try again")
        else:
            os.replace(p, target)
    discard(staged)


def unpack_zip(path: Path, dest: Path, progress: Progress | None = None) -> None:
    """Unpack ``path`` into ``dest`` safely (refused whole: ``..``, absolute paths, symlinks,
    more than the CelebA limits; skipped: hidden/system files), staged then renamed. An image
    zip whose JPEGs sit at its top goes into ``img_align_celeba/``."""
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is not a readable zip ({exc})") from None
    with zf:
        try:
            members = checked_members(zf, ZIP_LIMITS)
        except UserError as exc:
            raise DataError(f"{path}: {exc}") from None
        named = [[p for p in re.split(r"[\\/]", m.filename) if p] for m in members]
        loose = path.name.lower() == f"{IMAGE_DIR}.zip" and any(len(p) == 1 for p in named)
        prefix = [IMAGE_DIR] if loose else []
        staged = staging_dir(dest)
        total, done = sum(m.file_size for m in members), 0
        try:
            for info, parts in zip(members, named, strict=True):
                if any(p.lower() in JUNK or p.startswith(".") for p in parts):
                    continue
                ratio = info.file_size / max(1, info.compress_size)
                if info.file_size > 1_000_000 and ratio > ZIP_LIMITS.max_ratio:
                    raise DataError(f"{path}: {info.filename} looks like a decompression bomb")
                target = staged.joinpath(*prefix, *parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                done += info.file_size
                if progress:
                    progress(f"unpacking {path.name}", done, total)
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            discard(staged)
            raise DataError(f"cannot unpack {path}: {exc}") from None
        except BaseException:
            discard(staged)
            raise
    move_into(staged, dest)


def zip_destination(path: Path, folder: Path) -> Path:
    """Where a zip unpacks: an image zip beside itself; a whole-dataset zip into the CelebA
    folder, or into its parent when every entry sits in one top folder named like it."""
    if path.name.lower() == f"{IMAGE_DIR}.zip":
        return path.parent
    try:
        with zipfile.ZipFile(path) as zf:
            tops = {
                PurePosixPath(n).parts[0]
                for n in zf.namelist()
                if n.strip("/") and PurePosixPath(n).parts[0].lower() not in JUNK
            }
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is not a readable zip ({exc})") from None
    return folder.parent if tops == {folder.name} else folder

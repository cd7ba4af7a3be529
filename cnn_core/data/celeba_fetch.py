"""``datasets fetch celeba``: CelebA downloaded when the user asks, from the first source
that delivers, resumable, then made readable and checked.

Sources, tried in this order under ``auto``:

* ``hf``: the Hugging Face Hub mirror ``flwrlabs/celeba`` (Parquet shards with the official
  splits and the 40 attributes) through ``huggingface_hub`` (``HF_ENDPOINT``, ``HF_TOKEN``
  honoured); shards checked against their published SHA-256, converted once, then removed;
* ``kaggle``: ``jessicali9530/celeba-dataset`` through ``kagglehub`` with the user's Kaggle
  token (optional package);
* ``drive``: the official Google Drive files (``CNN_LAB_DRIVE_URL`` overrides the address),
  checked against the MD5 sums torchvision publishes; a quota, virus-scan or sign-in page is
  named in plain words and never kept.

Everything is downloaded into ``<celeba folder>/.celeba-download/`` (hidden: never taken for
data) and survives an interrupted run: finished files are kept, a partial one resumes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import settings
from ..errors import DataError, UserError
from .celeba import _attributes, _partitions, prepare
from .celeba_layouts import locate, move_into
from .celeba_parquet import convert_shards
from .download import SourceFailed, download

SOURCES = ("hf", "kaggle", "drive")
HF_REPO, HF_FOLDER = "flwrlabs/celeba", "img_align+identity+attr"
KAGGLE_HANDLE = "jessicali9530/celeba-dataset"
DRIVE_URL = "https://drive.usercontent.google.com/download"
DRIVE_FILES = (  # (file, Google Drive id, MD5): torchvision's list of the official files
    ("list_attr_celeba.txt", "0B7EVK8r0v71pblRyaVFSWGxPY0U", "75e246fa4810816ffd6ee81facbd244c"),
    ("list_eval_partition.txt", "0B7EVK8r0v71pY0NSMzRuSXJEVkk", "d32c9cbf5e040fd4025c592c306e6668"),
    (
        "list_landmarks_align_celeba.txt",
        "0B7EVK8r0v71pd0FJY3Blby1HUTQ",
        "cc24ecafdb5b50baae59b03474781f8c",
    ),
    ("img_align_celeba.zip", "0B7EVK8r0v71pZjFTYXZWM3FlRnM", "00d2c5bc6d35e252742224ab0c1e8fcb"),
)
DOWNLOAD_DIR = ".celeba-download"
LICENCE = (
    "CelebA licence terms (CelebA Dataset Release Agreement, The Chinese University of Hong "
    "Kong): non-commercial research and educational use only; you may not redistribute the "
    "images, and their copyright stays with their owners. CNN Lab does not ship CelebA: it is "
    "downloaded only now that you ask, from the source below, into {folder}."
)
KAGGLE_HELP = (
    "Kaggle needs your API token: on kaggle.com open Settings → API → Create New Token, and "
    "save the kaggle.json it gives you as ~/.kaggle/kaggle.json (or set KAGGLE_USERNAME and "
    "KAGGLE_KEY)"
)

Log = Callable[[str], None]


class Meter:
    """Turns ``(what, done, total)`` byte counts into progress events with a rate and ETA, at
    most one every ``interval`` seconds per file (and always its last)."""

    def __init__(self, report: Callable[[dict[str, Any]], None] | None, interval: float = 0.25):
        self.report, self.interval = report, interval
        self.what, self.started, self.first, self.shown = "", 0.0, 0, 0.0

    def __call__(self, what: str, done: int, total: int) -> None:
        now = time.monotonic()
        if what != self.what:
            self.what, self.started, self.first, self.shown = what, now, done, 0.0
        if not self.report or (now - self.shown < self.interval and done != total):
            return
        self.shown = now
        rate = (done - self.first) / max(now - self.started, 1e-3)
        eta = (total - done) / rate if rate > 0 and total else None
        self.report({"what": what, "done": done, "total": total, "rate": rate, "eta_s": eta})


def progress_text(event: dict[str, Any]) -> str:
    """``img_align_celeba.zip: 312.0 of 1,443.5 MB · 10.2 MB/s · 1:51 left``."""
    total = f" of {event['total'] / 1e6:,.1f}" if event["total"] else ""
    eta = event["eta_s"]
    left = f" · {int(eta // 60)}:{int(eta % 60):02d} left" if eta is not None else ""
    return (
        f"{event['what']}: {event['done'] / 1e6:,.1f}{total} MB · "
        f"{event['rate'] / 1e6:.1f} MB/s{left}"
    )


def celeba_folder(data_dir: str | os.PathLike | None = None) -> Path:
    """Where CelebA is fetched to: ``data_dir`` (a write: it must lie inside a data root) or
    ``R/celeba`` of the first data root ``R``."""
    folder = settings.resolve_data_dir(data_dir) or settings.default_data_dir() / "celeba"
    return settings.resolve_within(folder, settings.data_roots(), "fetch folder")


# ---- sources ---------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def fetch_hf(folder: Path, meter: Meter, log: Log) -> None:
    """The Hub mirror's Parquet shards, checked, converted into ``folder``, then removed."""
    try:
        import huggingface_hub as hub
        from tqdm.auto import tqdm
    except ModuleNotFoundError:
        raise SourceFailed("Hugging Face needs its client: pip install huggingface_hub") from None

    class Relay(tqdm):  # huggingface_hub's progress bars, relayed to the meter
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)
            self.what = str(kwargs.get("desc") or "Parquet shard")

        def update(self, n=1):
            self.n += n or 0
            meter(self.what, int(self.n), int(self.total or 0))

    endpoint = os.environ.get("HF_ENDPOINT") or None
    staging = folder / DOWNLOAD_DIR / "hf"
    try:
        api = hub.HfApi(endpoint=endpoint)
        tree = api.list_repo_tree(HF_REPO, HF_FOLDER, recursive=True, repo_type="dataset")
        shards = sorted(
            (f for f in tree if isinstance(f, hub.RepoFile) and f.path.endswith(".parquet")),
            key=lambda f: f.path,
        )
        if not shards:
            raise SourceFailed(f"Hugging Face: {HF_REPO} lists no Parquet shards in {HF_FOLDER}")
        total = sum(f.size for f in shards)
        log(f"Hugging Face {HF_REPO}: {len(shards)} shards, {total / 1e9:.2f} GB")
        paths = []
        for f in shards:
            path = Path(
                hub.hf_hub_download(
                    HF_REPO,
                    f.path,
                    repo_type="dataset",
                    local_dir=staging,
                    endpoint=endpoint,
                    tqdm_class=Relay,
                )
            )
            sha = f.lfs.sha256 if f.lfs else None
            if sha and _sha256(path) != sha:
                path.unlink()
                raise SourceFailed(f"Hugging Face: {f.path} does not match its SHA-256; deleted")
            paths.append(path)
    except SourceFailed:
        raise
    except Exception as exc:  # the hub client's errors: HTTP status, gated repo, network
        raise SourceFailed(f"Hugging Face: {str(exc).splitlines()[0]}") from None
    convert_shards(paths, folder, meter)
    shutil.rmtree(staging, ignore_errors=True)


def _kaggle_token() -> bool:
    home = Path(os.environ.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle")
    return bool(
        (os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"))
        or os.environ.get("KAGGLE_API_TOKEN")
        or (home / "kaggle.json").is_file()
        or (home / "access_token").is_file()
    )


def fetch_kaggle(folder: Path, meter: Meter, log: Log) -> None:
    """Kaggle's copy through kagglehub (its own cache), moved into ``folder``."""
    if not _kaggle_token():
        raise SourceFailed(KAGGLE_HELP)
    try:
        import kagglehub
    except ModuleNotFoundError:
        raise SourceFailed("Kaggle needs its client: pip install kagglehub") from None
    try:
        path = Path(kagglehub.dataset_download(KAGGLE_HANDLE))
    except Exception as exc:  # kagglehub's errors: HTTP status, credentials, network
        raise SourceFailed(f"Kaggle: {str(exc).splitlines()[0]}") from None
    if locate(path) is None:
        raise SourceFailed(f"Kaggle: {path} holds no CelebA")
    staged = folder / DOWNLOAD_DIR / "kaggle"
    shutil.rmtree(staged, ignore_errors=True)
    shutil.copytree(path, staged)  # kagglehub keeps its cache; the data root gets its copy
    move_into(staged, folder)


def fetch_drive(folder: Path, meter: Meter, log: Log) -> None:
    """The official files from Google Drive, each checked against its MD5."""
    base = os.environ.get("CNN_LAB_DRIVE_URL") or DRIVE_URL
    staging = folder / DOWNLOAD_DIR / "drive"
    staging.mkdir(parents=True, exist_ok=True)
    for name, file_id, md5 in DRIVE_FILES:
        url = f"{base}?id={file_id}&export=download&confirm=t"
        try:
            download(url, staging / name, md5, meter)
        except SourceFailed as exc:
            raise SourceFailed(f"Google Drive refused the download: {exc}") from None
    for name, _, _ in DRIVE_FILES:
        (staging / name).replace(folder / name)


FETCHERS = {"hf": fetch_hf, "kaggle": fetch_kaggle, "drive": fetch_drive}


# ---- the command -----------------------------------------------------------------------------
def fetch_celeba(
    source: str = "auto",
    data_dir: str | os.PathLike | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    log: Log = lambda line: None,
) -> dict[str, Any]:
    """Download CelebA (unless a copy is already there), make it readable, check it; returns
    what happened. ``log`` gets the licence first, then one line per source tried."""
    if source != "auto" and source not in SOURCES:
        raise UserError(f"unknown source {source!r}; choose auto, {', '.join(SOURCES)}")
    folder = celeba_folder(data_dir)
    found = locate(folder)
    used = "already present"
    if found is None or not (found.files or found.pending):
        log(LICENCE.format(folder=folder))
        folder.mkdir(parents=True, exist_ok=True)
        failures = []
        for name in SOURCES if source == "auto" else (source,):
            log(f"trying {name} …")
            try:
                FETCHERS[name](folder, Meter(progress), log)
            except SourceFailed as exc:
                failures.append(str(exc))
                more = source == "auto" and name != SOURCES[-1]
                log(f"{exc}{' — trying the next source' if more else ''}")
                continue
            used = name
            break
        else:
            raise DataError("CelebA could not be fetched: " + "; ".join(failures))
        shutil.rmtree(folder / DOWNLOAD_DIR, ignore_errors=True)
    files = prepare(folder, progress=Meter(progress))
    if used == "drive":  # the zip we fetched is unpacked now: not kept twice
        (folder / "img_align_celeba.zip").unlink(missing_ok=True)
    return {"source": used, **check_layout(files)}


def check_layout(files) -> dict[str, Any]:
    """The final check: every listed image present, partitions counted (DataError naming the
    list file and the first missing image otherwise)."""
    _, names, _ = _attributes(files)
    partition = _partitions(files, names)
    missing = [n for n in names if not (files.image_dir / n).is_file()]
    if missing:
        raise DataError(
            f"{files.attr_file} lists {len(missing):,} image(s) not in {files.image_dir}, "
            f"e.g. {missing[0]}"
        )
    counts = {
        split: int((partition == p).sum()) for p, split in enumerate(("train", "val", "test"))
    }
    return {
        "folder": str(files.root),
        "layout": files.layout,
        "images": len(names),
        **counts,
    }

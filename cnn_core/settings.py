"""Where CNN Lab reads data and writes runs; every user-given path is checked against these roots.

``CNN_LAB_DATA_ROOTS`` (os.pathsep-separated), ``CNN_LAB_RUNS_DIR``, ``CNN_LAB_CACHE_DIR`` and
``CNN_LAB_RAY_ADDRESS`` override the defaults.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import UserError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEBIAN_DATASETS = Path("/usr/share/datasets")


def data_roots() -> list[Path]:
    """The folders user-chosen data directories must live in (first = where downloads go)."""
    env = os.environ.get("CNN_LAB_DATA_ROOTS")
    if env:
        roots = [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    else:
        roots = [PROJECT_ROOT / "data", PROJECT_ROOT.parent / "shared" / "data", DEBIAN_DATASETS]
    return [r.resolve() for r in roots]


def default_data_dir() -> Path:
    """Where datasets are downloaded to when no --data-dir is given."""
    return data_roots()[0]


def runs_dir() -> Path:
    """The checkpoints folder holding runs.db and one sub-folder per run."""
    env = os.environ.get("CNN_LAB_RUNS_DIR")
    return Path(env).expanduser().resolve() if env else PROJECT_ROOT / "checkpoints"


def checkpoint_roots() -> list[Path]:
    """Folders checkpoints may be loaded from: the runs dir and the shipped ``checkpoints/``."""
    roots = [runs_dir(), (PROJECT_ROOT / "checkpoints").resolve()]
    return list(dict.fromkeys(roots))


def resolve_within(path: str | os.PathLike, roots: list[Path], what: str = "path") -> Path:
    """Resolve ``path`` (symlinks included) and require it to lie inside one of ``roots``.

    Relative paths are taken relative to the first root. Raises UserError otherwise.
    """
    p = Path(path).expanduser()
    if not p.is_absolute():
        p = roots[0] / p
    resolved = p.resolve()
    for root in roots:
        if resolved == root or resolved.is_relative_to(root):
            return resolved
    allowed = ", ".join(str(r) for r in roots)
    raise UserError(
        f"{what} {str(path)!r} is outside the allowed folders ({allowed}); "
        "set CNN_LAB_DATA_ROOTS / CNN_LAB_RUNS_DIR to allow another location"
    )


def resolve_data_dir(path: str | os.PathLike | None) -> Path | None:
    """Check a user-given data directory against the data roots (None stays None)."""
    if path is None or str(path) == "":
        return None
    return resolve_within(path, data_roots(), "data dir")


def cache_dir() -> Path:
    """Where decoded-image caches live (``CNN_LAB_CACHE_DIR`` overrides; safe to delete)."""
    env = os.environ.get("CNN_LAB_CACHE_DIR")
    return Path(env).expanduser().resolve() if env else PROJECT_ROOT / ".cache"


def ray_address() -> str:
    """The Ray cluster runs with executor "ray" go to (``CNN_LAB_RAY_ADDRESS``; default "auto":
    the cluster started on this machine with ``ray start --head``)."""
    return os.environ.get("CNN_LAB_RAY_ADDRESS") or "auto"

"""Where CNN Lab reads data and writes runs, and the one path policy.

* A path typed on the command line is the user's own (:func:`cli_path`): relative to the
  current folder, absolute anywhere readable.
* A folder typed in the browser stays inside the data roots (:func:`browser_data_dir`, the one
  confining function every page calls before a typed folder reaches the library).
* The library reads the paths it is given (a relative ``data_dir`` of a stored config lies in
  the first data root: :func:`resolve_data_dir`) and writes only under the runs dir and the
  data roots (:func:`resolve_within`).

``CNN_LAB_DATA_ROOTS`` (os.pathsep-separated), ``CNN_LAB_RUNS_DIR``, ``CNN_LAB_CACHE_DIR`` and
``CNN_LAB_RAY_ADDRESS`` override the defaults.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError, UserError

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


def cli_path(path: str | os.PathLike, what: str) -> Path:
    """A path typed on the command line: ``~`` expanded, relative to the current folder,
    anywhere the user can read. UserError, with the path as given and as resolved, when
    nothing is there."""
    resolved = Path(path).expanduser().resolve()
    if not resolved.exists():
        raise UserError(f"{what} {str(path)!r} does not exist (looked for {resolved})")
    return resolved


def resolve_data_dir(path: str | os.PathLike | None) -> Path | None:
    """The folder a config's ``data_dir`` names (None stays None): absolute as it is; relative
    inside the first data root, as pages stored it before they stored absolute folders."""
    if path is None or str(path) == "":
        return None
    p = Path(path).expanduser()
    return (p if p.is_absolute() else data_roots()[0] / p).resolve()


def browser_data_dir(path: str | None) -> str | None:
    """A data folder typed in the browser, as the absolute folder a config stores (None or ""
    stays None): relative to the first data root, and refused (ConfigError on ``data_dir``)
    outside the data roots, symlinks resolved."""
    if path is None or not str(path).strip():
        return None
    try:
        return str(resolve_within(str(path).strip(), data_roots(), "data folder"))
    except UserError as exc:
        raise ConfigError("data_dir", str(exc)) from None


def cache_dir() -> Path:
    """Where decoded-image caches live (``CNN_LAB_CACHE_DIR`` overrides; safe to delete)."""
    env = os.environ.get("CNN_LAB_CACHE_DIR")
    return Path(env).expanduser().resolve() if env else PROJECT_ROOT / ".cache"


APP_PID_ENV = "CNN_LAB_APP_PID"  # set by ``python -m ui.serve`` to its own pid


def app_server_pid() -> int | None:
    """The pid of the app server (``python -m ui.serve``) this process runs in or was started
    by, or None: supervisors it starts stay ready for the next Launch while it lives."""
    text = os.environ.get(APP_PID_ENV, "")
    return int(text) if text.isdigit() else None


def ray_address() -> str:
    """The Ray cluster runs with executor "ray" go to (``CNN_LAB_RAY_ADDRESS``; default "auto":
    the cluster started on this machine with ``ray start --head``)."""
    return os.environ.get("CNN_LAB_RAY_ADDRESS") or "auto"

"""Exclude / relabel choices for an image folder, stored beside it in a small versioned file.

``<folder>/.cnnlab-choices.json`` keeps every saved version (append-only): each one lists the
files to leave out and the files to train under another class, by path relative to the
folder (``class/file.png``). Training applies the version its config names
(``TrainConfig.data_choices``, pinned to the latest when the run is created; 0 = none), so a
run records which choices it used and can be reproduced after they change.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import settings
from ..errors import DataError, UserError

CHOICES_FILE = ".cnnlab-choices.json"


@dataclass
class Choices:
    """One version of the choices: files excluded and ``{file: new class}`` relabels."""

    version: int = 0
    exclude: set[str] = field(default_factory=set)
    relabel: dict[str, str] = field(default_factory=dict)
    created: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "created": self.created,
            "exclude": sorted(self.exclude),
            "relabel": dict(sorted(self.relabel.items())),
        }


def _versions(folder: Path) -> list[dict[str, Any]]:
    path = folder / CHOICES_FILE
    if not path.is_file():
        return []
    try:
        versions = json.loads(path.read_text())["versions"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is not a readable choices file ({exc})") from None
    return versions if isinstance(versions, list) else []


def latest_version(folder: Path) -> int | None:
    """The newest saved version for ``folder`` (None when nothing was ever saved)."""
    versions = _versions(folder)
    return int(versions[-1]["version"]) if versions else None


def load_choices(folder: Path, version: int | None = None) -> Choices:
    """Version ``version`` of the choices (None: the latest; 0 or none saved: an empty
    Choices)."""
    if version == 0:
        return Choices()
    versions = _versions(folder)
    if not versions:
        if version:
            raise DataError(f"{folder.name} has no saved data choices (version {version} asked)")
        return Choices()
    chosen = (
        versions[-1]
        if version is None
        else next((v for v in versions if v.get("version") == version), None)
    )
    if chosen is None:
        raise DataError(f"{folder.name} has no data choices version {version}")
    return Choices(
        int(chosen["version"]),
        set(chosen.get("exclude", [])),
        dict(chosen.get("relabel", {})),
        float(chosen.get("created", 0.0)),
    )


def save_choices(folder: Path, exclude: set[str], relabel: dict[str, str]) -> Choices:
    """Store a new version (atomically; earlier versions are kept) and return it; the folder
    must lie in a data root (UserError otherwise: writes stay inside the data roots)."""
    folder = settings.resolve_within(folder, settings.data_roots(), "data folder")
    classes = {p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")}
    unknown = sorted(set(relabel.values()) - classes)
    if unknown:
        raise UserError(f"cannot relabel to unknown class(es): {', '.join(unknown)}")
    for key in [*exclude, *relabel]:
        if key.startswith("/") or ".." in key.split("/"):
            raise UserError(f"not a file of this dataset: {key!r}")
    versions = _versions(folder)
    choices = Choices(
        (int(versions[-1]["version"]) if versions else 0) + 1,
        set(exclude),
        {k: v for k, v in relabel.items() if k not in exclude},
        time.time(),
    )
    path = folder / CHOICES_FILE
    tmp = path.with_name(f"{CHOICES_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"versions": [*versions, choices.to_dict()]}, indent=1))
    os.replace(tmp, path)
    return choices


def pinned_version(data_dir: str | None) -> int:
    """The version a run created now applies: the latest saved for the folder ``data_dir``
    (0 when none is saved or the folder cannot be resolved)."""
    try:
        folder = settings.resolve_data_dir(data_dir)
        return (latest_version(folder) or 0) if folder and folder.is_dir() else 0
    except UserError:
        return 0

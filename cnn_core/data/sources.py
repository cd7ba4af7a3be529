"""Where each dataset would be read from right now (for the Home page and ``datasets``)."""

from __future__ import annotations

from typing import Any

from . import DATASETS


def data_sources() -> list[dict[str, Any]]:
    """One row per registered dataset: name, available, source folder and a note for users."""
    return [{"name": name, **info.source_status()} for name, info in DATASETS.items()]

"""Saved architecture specs: ``<runs dir>/specs/<name>.json``, written atomically.

Names are checked against :data:`spec.NAME_RE` (no path separators), so every file stays
inside the specs folder; the same check guards reading a spec file given on the command line.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ..errors import ConfigError, UserError
from ..settings import runs_dir
from .spec import NAME_RE, SpecError, normalize

MAX_SPEC_BYTES = 1_000_000


def specs_dir() -> Path:
    """The folder of saved specs (inside the configured runs dir)."""
    return runs_dir() / "specs"


def _path(name: str) -> Path:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ConfigError("model", f"{name!r} is not a valid spec name")
    return specs_dir() / f"{name}.json"


def saved_names() -> list[str]:
    """Names of the saved specs, sorted."""
    folder = specs_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.json") if NAME_RE.fullmatch(p.stem))


def parse_spec(text: str | bytes) -> Any:
    """JSON text → the spec object (SpecError with the line and column on bad JSON)."""
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(f"larger than {MAX_SPEC_BYTES:,} bytes")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def load_saved(name: str) -> dict[str, Any]:
    """The saved spec called ``name`` (ConfigError if there is none)."""
    path = _path(name)
    if not path.is_file():
        raise ConfigError("model", f"no saved spec {name!r}")
    return _checked(parse_spec(path.read_bytes()))


def _checked(spec: Any) -> dict[str, Any]:
    """``spec`` unchanged (the concise form users wrote) once its structure is checked."""
    normalize(spec)
    return spec


def save_spec(spec: dict[str, Any], registered: list[str]) -> Path:
    """Write ``spec`` (checked) under its name, atomically; a registered name is refused."""
    normalize(spec)
    if spec["name"] in registered:
        raise SpecError(f"name {spec['name']!r} is a built-in model; choose another name")
    path = _path(spec["name"])
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".spec-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(spec, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def delete_saved(name: str) -> None:
    """Remove a saved spec (runs that used it keep their own copy in their config)."""
    _path(name).unlink(missing_ok=True)


def read_spec_file(path: str | os.PathLike) -> dict[str, Any]:
    """A spec from a JSON file (the caller decides which paths it accepts)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"spec file {str(path)!r} is not a file")
    if path.stat().st_size > MAX_SPEC_BYTES:
        raise SpecError(f"larger than {MAX_SPEC_BYTES:,} bytes")
    return _checked(parse_spec(path.read_bytes()))

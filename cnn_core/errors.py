"""User-facing error types: anything raised as a UserError is shown as one clear line; and
:func:`filled`, for a setting that must have been given a value by now."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


class UserError(Exception):
    """A problem with the user's input or environment (not a bug): shown without a traceback."""


class ConfigError(UserError, ValueError):
    """An invalid configuration value; ``field`` names the offending setting."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class DataError(UserError):
    """Missing, corrupt or unusable data."""


class CheckpointError(UserError):
    """A missing, corrupt or incompatible checkpoint."""


class ImageError(DataError):
    """A file that is not a usable image: ``file`` names it, ``reason`` says why in one line."""

    def __init__(self, file: str, reason: str):
        super().__init__(f"{file}: {reason}")
        self.file = file
        self.reason = reason


def filled(value: T | None, name: str) -> T:
    """``value`` of setting ``name`` where it must be set by now: ``resolve()`` fills a config's
    dataset defaults, ``DataSpec.of`` a DataSpec's. None there is a programming error (a config
    used unresolved), raised as ValueError naming the setting."""
    if value is None:
        raise ValueError(f"{name} is unset: resolve() the config before using it")
    return value

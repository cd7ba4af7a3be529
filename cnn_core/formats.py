"""How numbers are written for people, the same in the CLI and on every page: a setting's value
and a share as a percentage."""

from __future__ import annotations

from typing import Any


def value_text(value: Any) -> str:
    """A setting's value (learning rate, weight decay, dropout …): floats to 3 significant
    digits (``0.008``, ``1e-05``, ``0.5``), anything else as ``str``."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def percent(fraction: float | None, digits: int = 2) -> str:
    """A share (0–1) as a percentage with ``digits`` decimals, always that many (``67.00%``,
    ``72.20%``, ``93.76%``); ``—`` when it is unknown."""
    return "—" if fraction is None else f"{fraction:.{digits}%}"


def duration(seconds: float) -> str:
    """A span of time as people say it: ``40 s``, ``3 min``, ``1 h 20 min``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"

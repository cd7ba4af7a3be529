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

"""Learning-rate schedules over a whole run, as pure functions of the step.

The learning rate of step ``s`` (0-based, counted over the run) of ``total`` steps depends
only on ``(schedule, warmup, s, total)``, so the checkpoint's position (epoch, batch) is the
scheduler's whole state and a stop/resume anywhere, mid-epoch included, repeats it exactly.
Extending a run (more epochs) stretches onecycle and cosine over the new length.

* ``constant``: the book's recipe.
* ``onecycle`` (Smith & Topin, 2018; the shape airbench and train_mnist_fast use): a linear
  rise from ``lr / 25`` to ``lr`` over the warm-up fraction, then a linear fall to 0.
* ``cosine`` (Loshchilov & Hutter, 2017): a linear rise from 0 over the warm-up fraction,
  then half a cosine down to 0.
"""

from __future__ import annotations

import math
from typing import Any

ONECYCLE_START = 1 / 25  # onecycle starts at lr / 25 (torch's OneCycleLR div_factor)


def lr_factor(schedule: str, warmup: float, step: int, total: int) -> float:
    """The multiplier of the base learning rate at ``step`` of ``total``."""
    if schedule == "constant" or total <= 0:
        return 1.0
    rise = round(warmup * total)
    if step < rise:
        ramp = (step + 1) / rise
        return ONECYCLE_START + (1 - ONECYCLE_START) * ramp if schedule == "onecycle" else ramp
    rest = (step - rise) / max(1, total - rise)
    if schedule == "onecycle":
        return 1.0 - rest
    return 0.5 * (1.0 + math.cos(math.pi * rest))


def describe(schedule: str, warmup: float, step: int, total: int, lr: float) -> dict[str, Any]:
    """The scheduler's state as stored in checkpoints (a description: the position is its state)."""
    return {
        "schedule": schedule,
        "warmup": warmup,
        "step": step,
        "total_steps": total,
        "lr": lr * lr_factor(schedule, warmup, step, total),
    }

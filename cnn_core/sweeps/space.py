"""Search spaces: which TrainConfig fields a sweep varies, and how.

A space maps a searchable field to either ``{"choices": [...]}`` or a range
``{"low": a, "high": b, "log": bool}`` (``log`` for learning rates and the like). Fields left
out keep the base config's value. Spaces are plain JSON so they are stored with the study.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from ..config import LR_SCHEDULES, OPTIMIZERS, TrainConfig
from ..errors import ConfigError

# field -> kind: ranges are allowed for "float" and "int" fields, choices for every field
SEARCHABLE = {
    "lr": "float",
    "batch_size": "int",
    "weight_decay": "float",
    "dropout": "float",
    "optimizer": "choice",
    "model": "choice",
    "augment": "bool",
    "lr_schedule": "choice",
    "warmup": "float",
    "label_smoothing": "float",
}
GRID_POINTS = 3  # values a range is cut into for the grid sampler


def default_space() -> dict[str, dict[str, Any]]:
    """Every searchable field with the ranges the Train page allows (every registered model — a
    saved architecture spec is a valid model choice too, by its name; the schedule, its warm-up
    and label smoothing from the time-to-accuracy recipes)."""
    from ..models import MODELS

    return {
        "lr": {"low": 1e-4, "high": 1e-2, "log": True},
        "batch_size": {"choices": [32, 64, 128]},
        "weight_decay": {"choices": [0.0, 1e-5, 1e-4, 1e-3]},
        "dropout": {"low": 0.0, "high": 0.6, "log": False},
        "optimizer": {"choices": list(OPTIMIZERS)},
        "model": {"choices": list(MODELS)},
        "augment": {"choices": [False, True]},
        "lr_schedule": {"choices": list(LR_SCHEDULES)},
        "warmup": {"choices": [0.0, 0.1, 0.25]},
        "label_smoothing": {"choices": [0.0, 0.05, 0.1, 0.2]},
    }


def _check_value(base: TrainConfig, name: str, value: Any) -> None:
    """Validate one value of ``name`` the way TrainConfig does (ConfigError naming the field)."""
    if SEARCHABLE[name] == "bool" and not isinstance(value, bool):
        raise ConfigError(name, f"choices must be true or false, got {value!r}")
    dataclasses.replace(base, **{name: value}).validate()


def validate_space(space: dict[str, Any], base: TrainConfig) -> dict[str, dict[str, Any]]:
    """A checked, normalised copy of ``space`` (ConfigError naming the first bad field)."""
    if not isinstance(space, dict) or not space:
        raise ConfigError("space", "choose at least one setting to search")
    out: dict[str, dict[str, Any]] = {}
    for name, spec in space.items():
        if name not in SEARCHABLE:
            raise ConfigError(
                name, f"cannot be searched; searchable settings are {', '.join(SEARCHABLE)}"
            )
        if not isinstance(spec, dict):
            raise ConfigError(name, "give {'choices': [...]} or {'low': a, 'high': b}")
        if "choices" in spec:
            choices = spec["choices"]
            if not isinstance(choices, list) or not choices:
                raise ConfigError(name, "choices must be a non-empty list")
            for value in choices:
                _check_value(base, name, value)
            out[name] = {"choices": list(dict.fromkeys(choices))}
            continue
        if SEARCHABLE[name] not in ("float", "int"):
            raise ConfigError(name, "can only be searched over a list of choices")
        low, high, log = spec.get("low"), spec.get("high"), bool(spec.get("log", False))
        for value in (low, high):
            _check_value(base, name, value)
        if not low < high:
            raise ConfigError(name, f"the range needs low < high, got {low} and {high}")
        if log and low <= 0:
            raise ConfigError(name, "a log range needs a positive low end (add 0 as a choice)")
        out[name] = {"low": low, "high": high, "log": log}
    return out


def distributions(space: dict[str, dict[str, Any]]) -> dict[str, BaseDistribution]:
    """The Optuna distribution of every searched field."""
    out: dict[str, BaseDistribution] = {}
    for name, spec in space.items():
        if "choices" in spec:
            out[name] = CategoricalDistribution(spec["choices"])
        elif SEARCHABLE[name] == "int":
            out[name] = IntDistribution(spec["low"], spec["high"], log=spec["log"])
        else:
            out[name] = FloatDistribution(spec["low"], spec["high"], log=spec["log"])
    return out


def grid(space: dict[str, dict[str, Any]], points: int = GRID_POINTS) -> dict[str, list[Any]]:
    """The grid sampler's values: choices as given, ranges cut into ``points`` values
    (evenly on a log scale for log ranges), rounded to 4 significant digits."""
    out: dict[str, list[Any]] = {}
    for name, spec in space.items():
        if "choices" in spec:
            out[name] = list(spec["choices"])
            continue
        low, high = spec["low"], spec["high"]
        if spec["log"]:
            low, high = math.log(low), math.log(high)
        values = [low + (high - low) * i / (points - 1) for i in range(points)]
        values = [math.exp(v) for v in values] if spec["log"] else values
        if SEARCHABLE[name] == "int":
            out[name] = list(dict.fromkeys(round(v) for v in values))
        else:
            out[name] = [min(max(float(f"{v:.4g}"), spec["low"]), spec["high"]) for v in values]
    return out


def grid_size(space: dict[str, dict[str, Any]], points: int = GRID_POINTS) -> int:
    """How many configurations the grid holds."""
    return math.prod(len(v) for v in grid(space, points).values())


def grid_distributions(
    space: dict[str, dict[str, Any]], points: int = GRID_POINTS
) -> dict[str, BaseDistribution]:
    """The grid as categorical distributions (what trials of a grid sweep are asked with)."""
    return {name: CategoricalDistribution(values) for name, values in grid(space, points).items()}


def trial_config(base: TrainConfig, params: dict[str, Any], **fields: Any) -> TrainConfig:
    """The validated config of one trial: ``base`` with the sampled ``params`` and ``fields``."""
    return dataclasses.replace(base, **params, **fields).validate()

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

from .. import config
from ..data import dataset_names
from ..errors import ConfigError
from ..models import MODELS, model_names
from ..resolve import resolve

GRID_POINTS = 3  # values a range is cut into for the grid sampler


def searchable() -> dict[str, str]:
    """``{field: kind}`` of the fields a sweep may search (their Knob has a ``search``): ranges
    are allowed for "float" and "int" fields, choices for every field ("choice", "bool")."""
    out = {}
    for name, knob in config.knobs().items():
        if knob.search is None:
            continue
        kind, _ = config.field_type(name)
        out[name] = {float: "float", int: "int", bool: "bool"}.get(kind, "choice")
    return out


def allowed_values(name: str, *, registered: bool = False) -> list[Any]:
    """Every value field ``name`` may take when it has a fixed set: its choices, or the names
    in its registry (models: saved specs too, unless ``registered``)."""
    knob = config.knobs()[name]
    if knob.choices:
        return list(knob.choices)
    if knob.names == "models":
        return list(MODELS) if registered else model_names()
    return dataset_names() if knob.names == "datasets" else []


def default_space() -> dict[str, dict[str, Any]]:
    """Every searchable field with its Knob's default search (``"choices": None``: every
    allowed value; for models every registered one — a saved spec is a valid choice too)."""
    out = {}
    for name in searchable():
        spec = dict(config.knobs()[name].search or {})
        if "choices" in spec and spec["choices"] is None:
            spec["choices"] = allowed_values(name, registered=True)
        out[name] = spec
    return out


def _check_value(base: config.TrainConfig, name: str, value: Any) -> None:
    """Check one value of ``name`` as a run created with it would be (ConfigError naming the
    field): the field's own rules, then the registries."""
    if searchable()[name] == "bool" and not isinstance(value, bool):
        raise ConfigError(name, f"choices must be true or false, got {value!r}")
    resolve(dataclasses.replace(base, **{name: value}))


def validate_space(space: dict[str, Any], base: config.TrainConfig) -> dict[str, dict[str, Any]]:
    """A checked, normalised copy of ``space`` (ConfigError naming the first bad field)."""
    if not isinstance(space, dict) or not space:
        raise ConfigError("space", "choose at least one setting to search")
    kinds = searchable()
    out: dict[str, dict[str, Any]] = {}
    for name, spec in space.items():
        if name not in kinds:
            raise ConfigError(
                name, f"cannot be searched; searchable settings are {', '.join(kinds)}"
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
        if kinds[name] not in ("float", "int"):
            raise ConfigError(name, "can only be searched over a list of choices")
        low, high, log = spec.get("low"), spec.get("high"), bool(spec.get("log", False))
        if low is None or high is None:
            raise ConfigError(name, "a range needs both low and high")
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
        elif searchable()[name] == "int":
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
        if searchable()[name] == "int":
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


def trial_config(
    base: config.TrainConfig, params: dict[str, Any], **fields: Any
) -> config.TrainConfig:
    """The resolved config of one trial: ``base`` with the sampled ``params`` and ``fields``."""
    return resolve(dataclasses.replace(base, **params, **fields))

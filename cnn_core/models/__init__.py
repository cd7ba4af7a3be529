"""Model registry: the book's CNN (v1), a documented progression v2–v4 and v5, the fast recipe's net.

To add an architecture, write ``vN.py`` with ``TITLE``, ``RATIONALE`` and
``build(in_channels, image_size, num_classes, dropout) -> nn.Module`` and add one line to
``MODELS``. Every model takes float images ``[B, C, S, S]`` in [0, 1] and returns logits
``[B, num_outputs(num_classes)]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..errors import ConfigError
from . import v1, v2, v3, v4, v5
from .summary import conv_layers, count_params, feature_layers, summarize
from .v1 import num_outputs

__all__ = [
    "MODELS",
    "ModelSpec",
    "conv_layers",
    "count_params",
    "create_model",
    "describe_model",
    "feature_layers",
    "model_names",
    "model_spec",
    "num_outputs",
]

MIN_IMAGE_SIZE = 8


@dataclass(frozen=True)
class ModelSpec:
    """A registered architecture: short name, display title, one-line rationale, builder."""

    name: str
    title: str
    rationale: str
    builder: Callable[[int, int, int, float], nn.Module]


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("v1", v1.TITLE, v1.RATIONALE, v1.build),
        ModelSpec("v2", v2.TITLE, v2.RATIONALE, v2.build),
        ModelSpec("v3", v3.TITLE, v3.RATIONALE, v3.build),
        ModelSpec("v4", v4.TITLE, v4.RATIONALE, v4.build),
        ModelSpec("v5", v5.TITLE, v5.RATIONALE, v5.build),
    )
}


def model_names() -> list[str]:
    """Registered model names, in registry order."""
    return list(MODELS)


def model_spec(name: str) -> ModelSpec:
    """The spec for ``name``; ConfigError naming the choices if unknown."""
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(
            "model", f"unknown model {name!r}; choose one of {', '.join(MODELS)}"
        ) from None


def create_model(
    name: str,
    in_channels: int = 1,
    image_size: int = 28,
    num_classes: int = 10,
    dropout: float = 0.5,
) -> nn.Module:
    """A freshly initialised model for ``[B, in_channels, image_size, image_size]`` inputs."""
    spec = model_spec(name)
    if in_channels < 1:
        raise ConfigError("in_channels", f"must be at least 1, got {in_channels}")
    if image_size < MIN_IMAGE_SIZE:
        raise ConfigError("image_size", f"must be at least {MIN_IMAGE_SIZE} px, got {image_size}")
    if num_classes < 2:
        raise ConfigError(
            "num_classes", f"a classifier needs at least 2 classes, got {num_classes}"
        )
    if not 0.0 <= dropout < 1.0:
        raise ConfigError("dropout", f"must be in [0, 1), got {dropout}")
    return spec.builder(in_channels, image_size, num_classes, dropout)


def describe_model(
    name: str, in_channels: int, image_size: int, num_classes: int
) -> dict[str, Any]:
    """Name, title, rationale, trainable params, FLOPs for one image and the layer table."""
    spec = model_spec(name)
    model = create_model(name, in_channels, image_size, num_classes)
    return {
        "name": spec.name,
        "title": spec.title,
        "rationale": spec.rationale,
        **summarize(model, in_channels, image_size),
    }

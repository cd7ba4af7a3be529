"""Registered models as specs: walk an ``nn.Sequential`` and write each layer as spec JSON.

Each top-level module becomes the layer type that claims its torch class (see :mod:`.layers`).
Layer names are kept, so a spec-built copy has the same parameter names and shapes as the
original (a checkpoint of one loads into the other). Only fields that differ from the spec's
defaults are written, so the JSON stays short enough to read and edit.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import ConfigError
from .layers import LAYER_TYPES, filled, type_of


def layers_of(model: nn.Module) -> list[dict[str, Any]]:
    """Each top-level layer of a sequential ``model`` as a normalised spec layer (every field)."""
    layers = []
    for name, module in model.named_children():
        kind = type_of(module)
        if kind is None:
            raise ConfigError("model", f"{type(module).__name__} has no spec equivalent")
        layers.append(filled(kind.name, name, **kind.from_module(module)))
    return layers


def spec_from_model(model: nn.Module, name: str, description: str = "") -> dict[str, Any]:
    """The spec of a sequential ``model`` (its last linear layer becomes the classifier)."""
    normal = layers_of(model)
    layers = []
    for position, full in enumerate(normal, start=1):
        fields = LAYER_TYPES[full["type"]].fields
        layer = {"type": full["type"], "name": full["name"]}
        layer |= {
            f: v for f, v in full.items() if f in fields and v not in (None, fields[f].default)
        }
        if full["type"] == "linear" and position == len(normal):
            layer.pop("out", None)  # one output per logit, whatever the dataset
        layers.append(layer)
    return {"name": name, "description": description, "layers": layers}

"""Registered models as specs: walk an ``nn.Sequential`` and write each layer as spec JSON.

Layer names are kept, so a spec-built copy has the same parameter names and shapes as the
original (a checkpoint of one loads into the other). Only fields that differ from the spec's
defaults are written, so the JSON stays short enough to read and edit.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import ConfigError
from .spec import ACTIVATIONS, LAYER_TYPES
from .v4 import BasicBlock

_ACTIVATION_TYPES = {cls: kind for kind, cls in ACTIVATIONS.items()}


def _pair(value: Any) -> int:
    """A square kernel/stride/padding as one int (conv layers store pairs)."""
    if isinstance(value, tuple):
        if len(set(value)) != 1:
            raise ConfigError("model", f"non-square {value} has no spec equivalent")
        return int(value[0])
    return int(value)


def _fields(module: nn.Module) -> tuple[str, dict[str, Any]]:
    """The spec type and every field of one module (before dropping defaults)."""
    if isinstance(module, nn.Conv2d):
        return "conv", {
            "out": module.out_channels,
            "kernel": _pair(module.kernel_size),
            "stride": _pair(module.stride),
            "padding": _pair(module.padding),
            "dilation": _pair(module.dilation),
            "groups": module.groups,
            "bias": module.bias is not None,
        }
    if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
        return "batchnorm", {}
    if type(module) in _ACTIVATION_TYPES:
        return _ACTIVATION_TYPES[type(module)], {}
    if isinstance(module, nn.LeakyReLU):
        return "leaky_relu", {"slope": module.negative_slope}
    if isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
        kind = "maxpool" if isinstance(module, nn.MaxPool2d) else "avgpool"
        kernel = _pair(module.kernel_size)
        stride = _pair(module.stride)
        return kind, {
            "kernel": kernel,
            "stride": None if stride == kernel else stride,
            "padding": _pair(module.padding),
        }
    if isinstance(module, nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d):
        kind = (
            "adaptive_avgpool" if isinstance(module, nn.AdaptiveAvgPool2d) else "adaptive_maxpool"
        )
        return kind, {"size": _pair(module.output_size)}
    if isinstance(module, nn.Dropout | nn.Dropout2d):  # p: the run's dropout setting
        return "dropout2d" if isinstance(module, nn.Dropout2d) else "dropout", {}
    if isinstance(module, nn.Flatten):
        return "flatten", {}
    if isinstance(module, nn.Linear):
        return "linear", {"out": module.out_features, "bias": module.bias is not None}
    if isinstance(module, BasicBlock):
        return "residual", {"out": module.conv1.out_channels, "stride": _pair(module.conv1.stride)}
    raise ConfigError("model", f"{type(module).__name__} has no spec equivalent")


def spec_from_model(model: nn.Module, name: str, description: str = "") -> dict[str, Any]:
    """The spec of a sequential ``model`` (its last linear layer becomes the classifier)."""
    children = list(model.named_children())
    layers = []
    for position, (layer_name, module) in enumerate(children, start=1):
        kind, fields = _fields(module)
        defaults = LAYER_TYPES[kind]
        layer: dict[str, Any] = {"type": kind, "name": layer_name}
        for field, value in fields.items():
            if value is not None and value != defaults[field][1]:
                layer[field] = value
        if kind == "linear" and position == len(children):
            layer.pop("out", None)  # one output per logit, whatever the dataset
        layers.append(layer)
    return {"name": name, "description": description, "layers": layers}

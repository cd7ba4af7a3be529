"""Model registry: the book's CNN (v1), a documented progression v2–v4, v5 (the fast recipe's
net) and v6 (the accurate recipe's) (``MODELS``: architectures trained from scratch), and
ImageNet-pretrained backbones with a new head (``PRETRAINED``, :mod:`.backbones`:
``mobilenet-head``, ``mobilenet-tune``, ``resnet18-head``, ``resnet18-tune``).

To add an architecture, write ``vN.py`` with ``TITLE``, ``RATIONALE`` and
``build(in_channels, image_size, num_classes, dropout) -> nn.Module`` and add one line to
``MODELS``. Every model takes float images ``[B, C, S, S]`` in [0, 1] and returns logits
``[B, num_outputs(num_classes)]``.

Users add architectures without code as JSON specs (:mod:`.spec`), saved by name in the runs
dir (:mod:`.saved`): saved names are model choices like v1–v4, and a run stores the spec
itself in its config (``model_spec``), so ``create_model(name, ..., spec=config.model_spec)``
rebuilds it even after the saved file changes or goes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..errors import ConfigError
from . import backbones, v1, v2, v3, v4, v5, v6
from .backbones import load_pretrained, param_groups
from .convert import spec_from_model
from .saved import load_saved, saved_names
from .spec import SpecError, build, normalize
from .summary import conv_layers, count_params, feature_layers, summarize
from .v1 import num_outputs

__all__ = [
    "MODELS",
    "PRETRAINED",
    "RegisteredModel",
    "SpecError",
    "architecture",
    "conv_layers",
    "count_params",
    "create_model",
    "describe_model",
    "load_pretrained",
    "param_groups",
    "registered_model",
    "feature_layers",
    "model_names",
    "model_title",
    "num_outputs",
    "resolve_model_spec",
]

MIN_IMAGE_SIZE = 8


@dataclass(frozen=True)
class RegisteredModel:
    """A registered architecture: short name, display title, one-line rationale, builder."""

    name: str
    title: str
    rationale: str
    builder: Callable[[int, int, int, float], nn.Module]


MODELS: dict[str, RegisteredModel] = {
    entry.name: entry
    for entry in (
        RegisteredModel("v1", v1.TITLE, v1.RATIONALE, v1.build),
        RegisteredModel("v2", v2.TITLE, v2.RATIONALE, v2.build),
        RegisteredModel("v3", v3.TITLE, v3.RATIONALE, v3.build),
        RegisteredModel("v4", v4.TITLE, v4.RATIONALE, v4.build),
        RegisteredModel("v5", v5.TITLE, v5.RATIONALE, v5.build),
        RegisteredModel("v6", v6.TITLE, v6.RATIONALE, v6.build),
    )
}


PRETRAINED: dict[str, RegisteredModel] = {
    entry.name: entry
    for entry in (
        RegisteredModel(
            f"{short}-{mode}",
            f"pretrained {arch.title} + new head ({'head only' if frozen else 'whole net'})",
            f"ImageNet-pretrained {arch.title} features, input resized to 224 px and "
            + (
                "frozen: only the new head learns — a usable model from a few dozen images "
                "per class (RGB or grey)"
                if frozen
                else f"fine-tuned whole, the backbone at {backbones.BACKBONE_LR_SCALE:g}× the "
                "head's learning rate"
            ),
            backbones.builder(arch.name, frozen),
        )
        for short, arch in (
            ("mobilenet", backbones.ARCHS["mobilenet_v3_small"]),
            ("resnet18", backbones.ARCHS["resnet18"]),
        )
        for mode, frozen in (("head", True), ("tune", False))
    )
}  # pretrained backbones + a new head (not architectures to design, fork or compare all of)
REGISTERED = {**MODELS, **PRETRAINED}


def model_names() -> list[str]:
    """Model choices: the architectures, the pretrained backbones, then the saved specs."""
    return [*REGISTERED, *(n for n in saved_names() if n not in REGISTERED)]


def model_title(name: str) -> str:
    """A display title: the registry's, or "saved spec" for a user's architecture."""
    return REGISTERED[name].title if name in REGISTERED else "custom architecture (JSON spec)"


def resolve_model_spec(name: str, spec: dict[str, Any] | None) -> dict[str, Any] | None:
    """The spec a run of model ``name`` stores: None for a registered model, ``spec`` when it
    is the one named, else the saved spec of that name (ConfigError listing the choices)."""
    if not isinstance(name, str):
        raise ConfigError("model", f"must be a model name, got {name!r}")
    if name in REGISTERED:
        return None
    if spec is not None and isinstance(spec, dict) and spec.get("name") == name:
        normalize(spec)
        return spec
    if name in saved_names():
        return load_saved(name)
    raise ConfigError("model", f"unknown model {name!r}; choose one of {', '.join(model_names())}")


def architecture(
    name: str, in_channels: int = 1, image_size: int = 28, num_classes: int = 10
) -> dict[str, Any]:
    """The JSON spec of a saved or registered model (for the latter: of the network it builds
    for this input, named ``my-<name>`` so that it can be saved and edited)."""
    if name not in REGISTERED:
        return resolve_model_spec(name, None) or {}
    model = create_model(name, in_channels, image_size, num_classes)
    return spec_from_model(model, f"my-{name}", f"Fork of {name}: {REGISTERED[name].rationale}")


def registered_model(name: str) -> RegisteredModel:
    """The registry entry of ``name``; ConfigError naming the choices if unknown."""
    try:
        return REGISTERED[name]
    except KeyError:
        raise ConfigError(
            "model", f"unknown model {name!r}; choose one of {', '.join(REGISTERED)}"
        ) from None


def create_model(
    name: str,
    in_channels: int = 1,
    image_size: int = 28,
    num_classes: int = 10,
    dropout: float = 0.5,
    spec: dict[str, Any] | None = None,
) -> nn.Module:
    """A freshly initialised model for ``[B, in_channels, image_size, image_size]`` inputs.

    ``name`` is a registered model or a saved spec; ``spec`` (a run's stored ``model_spec``)
    takes precedence over the saved file of the same name.
    """
    arch = resolve_model_spec(name, spec)
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
    if arch is not None:
        return build(arch, in_channels, image_size, num_classes, dropout)
    return registered_model(name).builder(in_channels, image_size, num_classes, dropout)


def describe_model(
    name: str,
    in_channels: int,
    image_size: int,
    num_classes: int,
    spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Name, title, rationale, trainable params, FLOPs for one image and the layer table."""
    arch = resolve_model_spec(name, spec)
    model = create_model(name, in_channels, image_size, num_classes, spec=arch)
    return {
        "name": name,
        "title": model_title(name),
        "rationale": arch.get("description", "") if arch else REGISTERED[name].rationale,
        **summarize(model, in_channels, image_size),
    }

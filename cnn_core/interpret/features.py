"""What the network computes: feature maps, the shape of each layer's output, learned filters."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..models import conv_layers, feature_layers
from ..models.summary import summarize
from .common import as_batch, eval_mode, find_layer, network


@torch.no_grad()
def feature_maps(
    model: Any, x: torch.Tensor, layers: Iterable[str] | None = None
) -> dict[str, torch.Tensor]:
    """Each chosen layer's output ``[C, H, W]`` (CPU) for one image, in forward order.

    ``layers`` are names from ``feature_layers(model)`` (conv, pooling and activation
    layers); by default all of them. Forward hooks are removed and the model's train/eval
    mode restored afterwards.
    """
    with eval_mode(model) as net:
        available = feature_layers(net)
        names = [name for name, _ in available] if layers is None else list(layers)
        wanted = {find_layer(net, name, available): name for name in names}
        maps: dict[str, torch.Tensor] = {}

        def keep(module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
            maps[wanted[module]] = output[0].detach().cpu()

        handles = [module.register_forward_hook(keep) for module in wanted]
        try:
            net(as_batch(net, x))
        finally:
            for handle in handles:
                handle.remove()
    return maps


def shape_flow(model: Any, input_shape: Sequence[int]) -> list[dict[str, Any]]:
    """``{"name", "type", "output_shape"}`` for the input and then every layer, in forward order.

    ``input_shape`` is ``(C, S, S)`` (a leading batch dimension is ignored); shapes are given
    without the batch dimension, so the shrinking maps and growing channels are visible.
    """
    channels, height, width = (int(n) for n in input_shape[-3:])
    if height != width:
        raise ConfigError("input_shape", f"models here take square images, got {height}×{width}")
    rows = summarize(network(model), channels, height)["layers"]
    flow = [{"name": "input", "type": "Input", "output_shape": [channels, height, width]}]
    flow += [{key: row[key] for key in ("name", "type", "output_shape")} for row in rows]
    return flow


def channel_order(fmap: torch.Tensor) -> list[int]:
    """Channel indices of a feature map ``[C, H, W]``, highest mean activation first."""
    return fmap.flatten(1).mean(1).argsort(descending=True, stable=True).tolist()


def pick_channels(
    fmap: torch.Tensor,
    channels: Iterable[int] | None = None,
    *,
    limit: int | None = None,
    by_activation: bool = False,
) -> tuple[list[int], torch.Tensor]:
    """A subset of a feature map's channels: ``(indices, fmap[indices])``.

    ``channels`` defaults to all; ``by_activation`` orders them by mean activation (highest
    first) and ``limit`` keeps the first ``limit`` of them.
    """
    count = fmap.shape[0]
    indices = list(range(count)) if channels is None else [int(c) for c in channels]
    bad = [c for c in indices if not 0 <= c < count]
    if bad:
        raise ConfigError("channels", f"channels {bad} out of range: this layer has {count}")
    if by_activation:
        rank = {c: i for i, c in enumerate(channel_order(fmap))}
        indices.sort(key=rank.__getitem__)
    indices = indices[:limit]
    return indices, fmap[indices]


def filters(model: Any, layer: str | None = None) -> torch.Tensor:
    """A conv layer's kernels ``[out, in, k, k]`` scaled to [0, 1] per kernel (CPU).

    ``layer`` is a name from ``conv_layers(model)``, by default the first conv layer, whose
    kernels are small images (greyscale for one input channel, RGB for three). For deeper
    layers, row ``o`` is a grid of the ``in`` slices output channel ``o`` combines. Each
    output kernel is min-max scaled over all of its slices, so slices stay comparable; a
    constant kernel becomes 0.5.
    """
    net = network(model)
    convs = conv_layers(net)
    conv = convs[0][1] if layer is None else find_layer(net, layer, convs)
    weight = conv.weight.detach().float().cpu()
    flat = weight.flatten(1)
    low = flat.min(1, keepdim=True).values
    span = flat.max(1, keepdim=True).values - low
    scaled = torch.where(span > 0, (flat - low) / span.clamp_min(1e-12), torch.full_like(flat, 0.5))
    return scaled.view_as(weight)

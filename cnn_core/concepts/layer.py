"""A trained convolution layer's forward pass by hand, checked against the layer itself.

``Z[:, :, k] = Σ_c W[:, :, c, k] * X[:, :, c] + b[k]`` then (a BatchNorm in eval mode if
the network has one) and ``A = ReLU(Z)``: each input channel's cross-correlation is
computed with :func:`conv2d`, summed, and compared with what the layer's hooks recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..models import conv_layers
from .convolution import Geometry, conv2d


@dataclass
class LayerByHand:
    """One output channel of a conv layer, by hand (numpy) and as the network computed it."""

    layer: str
    channel: int
    weight: np.ndarray  # [C_in, kh, kw]: the kernels W[:, :, c, k] of this output channel
    contributions: np.ndarray  # [C_in, H, W]: each input channel's correlation with its kernel
    bias: float
    z: np.ndarray  # Σ contributions + bias
    z_layer: np.ndarray  # the conv layer's own output for this channel
    normalised: tuple[float, float] | None  # BatchNorm as (scale, shift) when one follows
    a: np.ndarray | None  # ReLU of z (after the BatchNorm) when a ReLU follows
    a_layer: np.ndarray | None  # that ReLU's own output
    layer_input: np.ndarray  # X [C_in, H_in, W_in]

    @property
    def max_difference(self) -> float:
        """Largest |by hand − layer| over Z and (when present) A."""
        diffs = [np.abs(self.z - self.z_layer).max()]
        if self.a is not None and self.a_layer is not None:
            diffs.append(np.abs(self.a - self.a_layer).max())
        return float(max(diffs))


def _geometry(conv: nn.Conv2d) -> Geometry:
    """The layer's padding, stride and dilation (the same along both axes, zero padding)."""
    pads = conv.padding
    square = all(len(set(v)) == 1 for v in (conv.stride, conv.dilation, conv.kernel_size))
    if conv.groups != 1 or conv.padding_mode != "zeros" or not square or len(set(pads)) > 1:
        raise ConfigError("layer", "only square, ungrouped, zero-padded convolutions are shown")
    if isinstance(pads, str):
        return Geometry(pads, 0, conv.stride[0], conv.dilation[0])
    return Geometry("custom", pads[0], conv.stride[0], conv.dilation[0])


def _following(net: nn.Module, name: str) -> tuple[nn.BatchNorm2d | None, nn.ReLU | None]:
    """The BatchNorm and ReLU directly after layer ``name`` in the network's module order."""
    names = [n for n, m in net.named_modules() if not list(m.children())]
    modules = dict(net.named_modules())
    after = [modules[n] for n in names[names.index(name) + 1 : names.index(name) + 3]]
    norm = after[0] if after and isinstance(after[0], nn.BatchNorm2d) else None
    rest = after[1:] if norm is not None else after[:1]
    relu = rest[0] if rest and isinstance(rest[0], nn.ReLU) else None
    return norm, relu


@dataclass
class LayerRecord:
    """What one forward pass showed of a conv layer (all channels, numpy): its input X, its
    weights and bias, the BatchNorm after it as per-channel (scale, shift), Z and the ReLU's A."""

    layer: str
    x: np.ndarray  # [C_in, H_in, W_in]
    weight: np.ndarray  # [C_out, C_in, kh, kw]
    bias: np.ndarray | None  # [C_out]
    geometry: Geometry
    norm: tuple[np.ndarray, np.ndarray] | None  # (scale, shift), each [C_out]
    z: np.ndarray  # [C_out, H, W]: the conv layer's output
    a: np.ndarray | None  # [C_out, H, W]: the ReLU's output, when a ReLU follows


@torch.no_grad()
def record_layer(model: Any, x: torch.Tensor, layer: str) -> LayerRecord:
    """Run image ``x`` [1, C, H, W] through ``model`` (an ``nn.Module`` or a Predictor, in
    eval mode) and record conv layer ``layer``. ConfigError for a network without conv
    layers or an unknown layer."""
    net = model if isinstance(model, nn.Module) else model.model
    convs = dict(conv_layers(net))
    if not convs:
        raise ConfigError("layer", "this network has no convolution layers")
    if layer not in convs:
        raise ConfigError("layer", f"{layer!r} is not one of {', '.join(convs)}")
    conv = convs[layer]
    geometry = _geometry(conv)
    norm, relu = _following(net, layer)
    seen: dict[str, torch.Tensor] = {}
    hooks = [conv.register_forward_hook(lambda m, i, o: seen.update(x=i[0][0], z=o[0]))]
    if relu is not None:
        hooks.append(relu.register_forward_hook(lambda m, i, o: seen.update(a=o[0])))
    was_training = net.training
    net.eval()
    try:
        net(x.float().to(next(net.parameters()).device))
    finally:
        net.train(was_training)
        for hook in hooks:
            hook.remove()

    def numpy(t: torch.Tensor) -> np.ndarray:
        return t.detach().double().cpu().numpy()

    scales = None
    if norm is not None:
        mean, var = norm.running_mean, norm.running_var
        if mean is None or var is None:
            raise ConfigError("layer", "a BatchNorm without running statistics is not shown")
        scale = norm.weight / torch.sqrt(var + norm.eps)
        scales = numpy(scale), numpy(norm.bias - mean * scale)
    return LayerRecord(
        layer,
        numpy(seen["x"]),
        numpy(conv.weight),
        numpy(conv.bias) if conv.bias is not None else None,
        geometry,
        scales,
        numpy(seen["z"]),
        numpy(seen["a"]) if relu is not None else None,
    )


def channel_by_hand(record: LayerRecord, channel: int) -> LayerByHand:
    """Output ``channel`` of a recorded layer recomputed by hand: each input channel's
    cross-correlation with its kernel, summed, + bias, (BatchNorm), ReLU."""
    count = len(record.weight)
    if not 0 <= channel < count:
        raise ConfigError("channel", f"{record.layer} has channels 0–{count - 1}")
    weight = record.weight[channel]
    contributions = np.stack(
        [conv2d(xc, wc, record.geometry) for xc, wc in zip(record.x, weight, strict=True)]
    )
    bias = float(record.bias[channel]) if record.bias is not None else 0.0
    z = contributions.sum(0) + bias
    normalised, after_norm = None, z
    if record.norm is not None:
        normalised = float(record.norm[0][channel]), float(record.norm[1][channel])
        after_norm = z * normalised[0] + normalised[1]
    relu = record.a is not None
    return LayerByHand(
        record.layer,
        channel,
        weight,
        contributions,
        bias,
        z,
        record.z[channel],
        normalised,
        np.maximum(after_norm, 0) if relu else None,
        record.a[channel] if record.a is not None else None,
        record.x,
    )


def layer_by_hand(model: Any, x: torch.Tensor, layer: str, channel: int) -> LayerByHand:
    """Recompute output ``channel`` of conv layer ``layer`` for image ``x`` [1, C, H, W]:
    :func:`record_layer` then :func:`channel_by_hand`."""
    return channel_by_hand(record_layer(model, x, layer), channel)

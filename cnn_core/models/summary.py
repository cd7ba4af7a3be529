"""Model summaries: trainable parameters, FLOPs and a per-layer table; feature-layer lookup;
the blocks a network diagram draws; a measured training step.

Shapes, parameters and FLOPs come from the one calculator, :func:`.spec.walk`, on the model's
layers read back as spec layers (:func:`.convert.layers_of`): no forward pass.
"""

from __future__ import annotations

import math
import time
from typing import Any, NamedTuple

import torch
from torch import nn

from .convert import layers_of
from .layers import type_of
from .spec import LayerInfo, leaves, walk


def count_params(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules() if name and not any(m.children())]


def feature_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Leaf layers whose type shows feature maps (conv, pooling, most activations: the layer
    types marked ``feature``) before the first Flatten/Linear, in forward order.

    Names are the dotted ``named_modules`` names (e.g. ``conv1``, ``block2.relu2``); every
    model here registers its layers in the order its forward pass uses them.
    """
    layers = []
    for name, module in _leaves(model):
        if isinstance(module, nn.Flatten | nn.Linear):
            break
        kind = type_of(module)
        if kind is not None and kind.feature:
            layers.append((name, module))
    return layers


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """The Conv2d layers among ``feature_layers``, in forward order."""
    return [(name, m) for name, m in feature_layers(model) if isinstance(m, nn.Conv2d)]


def _rows(model: nn.Module, in_channels: int, image_size: int) -> list[LayerInfo]:
    return walk(layers_of(model), (in_channels, image_size, image_size), 0)


def summarize(model: nn.Module, in_channels: int, image_size: int) -> dict[str, Any]:
    """Params, FLOPs for one image and a layer table (every leaf layer, in forward order).

    Each table row is ``{"name", "type" (the spec layer type), "output_shape" (without the
    batch dim), "params", "flops"}``; a composite layer's rows are its parts (``block1.conv1``).
    """
    rows = _rows(model, in_channels, image_size)
    table = [
        {
            "name": r.name,
            "type": r.type,
            "output_shape": list(r.out_shape),
            "params": r.params,
            "flops": r.flops,
        }
        for r in leaves(rows)
    ]
    params, flops = sum(r.params for r in rows), sum(r.flops for r in rows)
    return {"params": params, "flops": flops, "layers": table}


def diagram_blocks(model: nn.Module, in_channels: int, image_size: int) -> list[dict[str, Any]]:
    """The blocks of :func:`blocks_from_layers` for a registered or spec-built model."""
    return blocks_from_layers(_rows(model, in_channels, image_size), in_channels, image_size)


def blocks_from_layers(
    layers: list[LayerInfo], in_channels: int, image_size: int
) -> list[dict[str, Any]]:
    """What a network diagram draws: the input, then one block per top-level layer.

    Each block is ``{"name", "type", "shape", "params", "flops"}`` (shape without the batch
    dim, type the spec layer type); a composite layer (a residual block) is one block.
    """
    source = {"name": "input", "type": "Input", "shape": [in_channels, image_size, image_size]}
    return [
        {**source, "params": 0, "flops": 0},
        *(
            {
                "name": r.name,
                "type": r.type,
                "shape": list(r.out_shape),
                "params": r.params,
                "flops": r.flops,
            }
            for r in layers
        ),
    ]


def time_training_step(
    model: nn.Module, in_channels: int, image_size: int, batch_size: int, steps: int = 3
) -> float:
    """Median seconds of one forward + backward + Adam step on a random batch (CPU, the
    trainer's memory format and precision), after one warm-up step; ``model`` is trained on noise,
    so pass a throwaway copy."""
    from ..speed import autocast, prepare_model

    device = torch.device("cpu")
    model = prepare_model(model, device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(batch_size, in_channels, image_size, image_size)
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with autocast("auto", device):
            out = model(x)
        out.float().square().mean().backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[len(times[1:]) // 2]


class TrainingTime(NamedTuple):
    """How long a run takes on this machine: a measured training step (:func:`time_training_step`)
    × the steps of ``epochs`` epochs over ``images`` training images, plus its validations
    (``evals_per_epoch`` passes over ``val_images``; a forward pass costs about a third of a
    training step). With ``val_images`` 0, training alone."""

    step_s: float
    images: int
    batch_size: int
    epochs: int = 1
    val_images: int = 0
    evals_per_epoch: int = 1

    @property
    def steps(self) -> int:
        """Training steps per epoch."""
        return math.ceil(self.images / self.batch_size)

    @property
    def seconds(self) -> float:
        val_steps = math.ceil(self.val_images / self.batch_size) * self.evals_per_epoch
        return self.step_s * self.epochs * (self.steps + val_steps / 3)

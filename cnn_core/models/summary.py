"""Model summaries: trainable parameters, FLOPs and a per-layer table; feature-layer lookup;
the blocks a network diagram draws; a measured training step."""

from __future__ import annotations

import math
import time
from typing import Any, NamedTuple

import torch
from torch import nn

# Layers whose outputs are spatial feature maps worth showing (and hooking for Grad-CAM).
FEATURE_TYPES = (
    nn.Conv2d,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
    nn.ReLU,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
)


def count_params(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules() if name and not any(m.children())]


def feature_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Conv, pooling and activation leaf layers before the first Flatten/Linear, in forward order.

    Names are the dotted ``named_modules`` names (e.g. ``conv1``, ``block2.relu2``); every
    model here registers its layers in the order its forward pass uses them.
    """
    layers = []
    for name, module in _leaves(model):
        if isinstance(module, nn.Flatten | nn.Linear):
            break
        if isinstance(module, FEATURE_TYPES):
            layers.append((name, module))
    return layers


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The Conv2d layers among ``feature_layers``, in forward order."""
    return [(name, m) for name, m in feature_layers(model) if isinstance(m, nn.Conv2d)]


def _flops(module: nn.Module, output: torch.Tensor) -> int:
    """Multiply-accumulates × 2 of a conv or linear layer for the (single-image) output."""
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return 2 * output.numel() * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        return 2 * output.numel() * module.in_features
    return 0


@torch.no_grad()
def summarize(model: nn.Module, in_channels: int, image_size: int) -> dict[str, Any]:
    """Params, FLOPs for one image and a layer table (every leaf module, in forward order).

    Runs one dummy image through the model in eval mode with forward hooks; each table row
    is ``{"name", "type", "output_shape" (without the batch dim), "params", "flops"}``.
    """
    names = {m: name for name, m in _leaves(model)}
    layers: list[dict[str, Any]] = []
    flops = 0

    def hook(module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        nonlocal flops
        layer_flops = _flops(module, output)
        flops += layer_flops
        layers.append(
            {
                "name": names[module],
                "type": type(module).__name__,
                "output_shape": list(output.shape[1:]),
                "params": count_params(module),
                "flops": layer_flops,
            }
        )

    handles = [m.register_forward_hook(hook) for m in names]
    was_training = model.training
    try:
        model.eval()
        device = next(model.parameters()).device
        model(torch.zeros(1, in_channels, image_size, image_size, device=device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return {"params": count_params(model), "flops": flops, "layers": layers}


def diagram_blocks(model: nn.Module, in_channels: int, image_size: int) -> list[dict[str, Any]]:
    """What a network diagram draws: the input, then one block per top-level layer.

    Each block is ``{"name", "type", "shape", "params", "flops"}`` (shape without the batch
    dim); a composite layer (a residual block) is one block with its leaves' totals and the
    shape it outputs. Works for every model here, registered or built from a spec.
    """
    summary = summarize(model, in_channels, image_size)
    children = dict(model.named_children())
    blocks: dict[str, dict[str, Any]] = {}
    for row in summary["layers"]:
        top = row["name"].split(".")[0]
        block = blocks.setdefault(
            top,
            {
                "name": top,
                "type": type(children[top]).__name__,
                "params": count_params(children[top]),
                "flops": 0,
            },
        )
        block["flops"] += row["flops"]
        block["shape"] = row["output_shape"]  # the last leaf to run gives the block's output
    source = {"name": "input", "type": "Input", "shape": [in_channels, image_size, image_size]}
    return [{**source, "params": 0, "flops": 0}, *blocks.values()]


def blocks_from_layers(
    layers: list[Any], in_channels: int, image_size: int
) -> list[dict[str, Any]]:
    """The same blocks as :func:`diagram_blocks`, straight from a spec's analysis (its
    ``LayerInfo`` rows, spec layer types): no model is built."""
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
    """How long training takes on this machine: a measured step (:func:`time_training_step`)
    × the steps of ``epochs`` epochs over ``images`` training images; evaluation not included."""

    step_s: float
    images: int
    batch_size: int
    epochs: int = 1

    @property
    def steps(self) -> int:
        """Steps per epoch."""
        return math.ceil(self.images / self.batch_size)

    @property
    def seconds(self) -> float:
        return self.step_s * self.steps * self.epochs

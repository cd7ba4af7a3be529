"""What torch itself says a model does to one image, leaf by leaf: output shapes from forward
hooks, parameters from the leaf's own tensors, FLOPs from ``torch.utils.flop_counter``.

The arithmetic calculator (``cnn_core.models.spec.walk``) is proven against this measurement;
nothing here shares code or formulas with it. A pretrained backbone is one leaf: torch
measures its whole forward pass.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnn_core.models.backbones import Backbone


def measured_leaves(model: nn.Module, in_channels: int, image_size: int) -> list[dict[str, Any]]:
    """``{"name", "output_shape", "params", "flops"}`` per computing leaf, in the order the
    forward pass runs them (an identity shortcut computes nothing and is left out)."""
    inside = {
        id(inner) for m in model.modules() if isinstance(m, Backbone) for inner in m.modules()
    } - {id(m) for m in model.modules() if isinstance(m, Backbone)}
    leaves = {
        m: name
        for name, m in model.named_modules()
        if name
        and (isinstance(m, Backbone) or not any(m.children()))
        and not isinstance(m, nn.Identity)
        and id(m) not in inside
    }
    rows: list[dict[str, Any]] = []

    def hook(module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        params = sum(p.numel() for p in module.parameters())
        rows.append(
            {"name": leaves[module], "output_shape": list(output.shape[1:]), "params": params}
        )

    handles = [m.register_forward_hook(hook) for m in leaves]
    was_training = model.training
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model.eval()(torch.zeros(1, in_channels, image_size, image_size))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    counts = counter.get_flop_counts()
    root = type(model).__name__
    for row in rows:
        row["flops"] = int(sum(counts.get(f"{root}.{row['name']}", {}).values()))
    return rows


def measured_blocks(model: nn.Module, in_channels: int, image_size: int) -> list[dict[str, Any]]:
    """One ``{"name", "shape", "params", "flops"}`` per top-level layer: its leaves' totals and
    the shape its last leaf outputs."""
    blocks: dict[str, dict[str, Any]] = {}
    for row in measured_leaves(model, in_channels, image_size):
        top = row["name"].split(".")[0]
        block = blocks.setdefault(top, {"name": top, "params": 0, "flops": 0})
        block["params"] += row["params"]
        block["flops"] += row["flops"]
        block["shape"] = row["output_shape"]
    return list(blocks.values())

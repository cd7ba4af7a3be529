"""Does an attribution map point at what the model uses? The deletion test (Petsiuk et al., 2018)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError
from .common import ClassScores, as_batch, eval_mode


@torch.no_grad()
def deletion_curve(
    model: Any, x: torch.Tensor, attribution_map: Any, target: int, steps: int = 20
) -> list[tuple[float, float]]:
    """The model's probability for ``target`` as the most-attributed pixels are removed.

    Pixels are ranked by ``attribution_map`` [H, W] (highest value first, so for signed maps
    the strongest evidence *for* the class goes first; ties keep reading order) and set to 0
    in all channels, ``1/steps`` of the image at a time. All ``steps + 1`` images run as one
    batch. Returns ``[(fraction_removed, probability), ...]`` from 0.0 to 1.0.
    """
    scores_map = torch.as_tensor(np.asarray(attribution_map, dtype=np.float32))
    with eval_mode(model) as net:
        image = as_batch(net, x)
        height, width = image.shape[-2:]
        if tuple(scores_map.shape) != (height, width):
            raise ConfigError(
                "attribution_map",
                f"shape {list(scores_map.shape)} does not match the {height}×{width} image",
            )
        pixels = height * width
        order = scores_map.flatten().argsort(descending=True, stable=True)
        rank = torch.empty(pixels, dtype=torch.long)
        rank[order] = torch.arange(pixels)
        removed = torch.tensor([round(i * pixels / steps) for i in range(steps + 1)])
        keep = (rank[None, :] >= removed[:, None]).to(image).view(-1, 1, height, width)
        probs = torch.softmax(ClassScores(net)(image * keep).float(), dim=1)[:, target]
    return [(n / pixels, p) for n, p in zip(removed.tolist(), probs.tolist(), strict=True)]


def deletion_auc(curve: Sequence[tuple[float, float]]) -> float:
    """Area under a deletion curve (trapezoid rule): lower means a more faithful map."""
    fractions, probs = zip(*curve, strict=True)
    return float(np.trapezoid(probs, fractions))

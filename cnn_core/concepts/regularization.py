"""Dropout as a mask (train) and as the identity (eval); weight distributions of networks
trained with and without L2 weight decay."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError


def dropout(
    x: np.ndarray, p: float, seed: int = 0, training: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """``(mask, output)``: in training each unit is kept with probability 1 − p and the kept
    ones are scaled by 1/(1 − p) (inverted dropout, so the expected value is unchanged); in
    eval mode the mask keeps everything and the output is ``x`` itself."""
    if not 0 <= p < 1:
        raise ConfigError("dropout", f"p must be in [0, 1), got {p}")
    x = np.asarray(x, dtype=np.float64)
    if not training:
        return np.ones(x.shape, dtype=bool), x
    mask = np.random.default_rng(seed).random(x.shape) >= p
    return mask, np.where(mask, x / (1 - p), 0.0)


def weights(model: Any) -> np.ndarray:
    """All conv and linear weights (not biases or BatchNorm) of a network, flattened."""
    net = model if isinstance(model, nn.Module) else model.model
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if not layers:
        raise ConfigError("model", "this network has no conv or linear layers")
    return torch.cat([m.weight.detach().flatten().double().cpu() for m in layers]).numpy()


def histograms(
    named: dict[str, np.ndarray], bins: int = 60
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Shared bin edges and each array's share of values per bin (so sizes compare)."""
    if not named:
        raise ConfigError("runs", "pick at least one run")
    low = min(float(a.min()) for a in named.values())
    high = max(float(a.max()) for a in named.values())
    edges = np.linspace(low, high if high > low else low + 1, bins + 1)
    return edges, {k: np.histogram(a, edges)[0] / a.size for k, a in named.items()}

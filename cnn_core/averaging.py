"""Weight averaging: an exponential moving average (EMA) of a model's weights during training.

After every step ``average ← decay·average + (1 − decay)·weights`` (BatchNorm's running
statistics too), with the decay ramped up over the first steps, ``min(decay, (1 + t) /
(10 + t))`` after step t, so early averages do not drag the untrained start along. The average
is what a run with ``ema`` validates, saves as its model and hands to Draw/Explain: it sits
nearer the bottom of the loss valley than the last step's weights, most of all mid-run while
the learning rate is still high. The decay depends only on the step, so a resumed run continues
the same average.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    """The moving average of ``model``'s weights (a frozen copy of it, in ``model``)."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    def decay_at(self, step: int) -> float:
        """The decay used after step ``step`` (1 = the first)."""
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Move the average toward ``model``'s weights after step ``step``."""
        weight = 1 - self.decay_at(step)
        for mine, theirs in zip(
            self.model.state_dict().values(), model.state_dict().values(), strict=True
        ):
            if mine.dtype.is_floating_point:
                mine.lerp_(theirs, weight)
            else:
                mine.copy_(theirs)

"""v6: v5 widened for accuracy under 100,000 parameters (the ``accurate`` recipe's network).

On ≤ 32 px images the same layout as v5 (three 3×3 BatchNorm blocks, the first two halving
the image, a linear classifier on 7×7 features) with 16, 48 and 96 channels: the first block
stays at 16 (its filters are the 8 strongest whitening filters and their negations with
``whiten``), the later ones grow, so a 28 px, 10-class model has 95,898 parameters. Larger
images get v5's own network. Its measured accuracy: ``benchmarks/README.md``.
"""

from __future__ import annotations

from torch import nn

from .v5 import build_small

TITLE = "Wider fast BatchNorm CNN"
RATIONALE = (
    "v5 with 16-48-96 channels: under 100,000 parameters, built for the best accuracy in a "
    "minute of CPU training."
)


def build(in_channels: int, image_size: int, num_classes: int, dropout: float) -> nn.Module:
    """≤ 32 px: 16-48-96 3×3 conv+BN blocks, the first two halving the image, then a linear
    layer; larger: v5's network."""
    return build_small(in_channels, image_size, num_classes, dropout, (16, 48, 96))

"""v5: a small, fast BatchNorm CNN for time-to-accuracy (the ``fast`` recipe's network).

train_mnist_fast and airbench reach their accuracy targets soonest with small BatchNorm
networks trained hard, not with big ones. v5 keeps the book's layout (conv blocks, then a
linear classifier) with 3×3 kernels throughout. On ≤ 32 px images: three blocks of 16, 32 and
64 channels, the first two halving the image (28 → 14 → 7) and the third not (a third pooling
would floor 7 to 3 and drop a row and a column), so the classifier reads 7×7×64 features:
about a seventh of v1's FLOPs and a fortieth of its parameters (which v1 spends on ``fc1``).
Its measured time to accuracy against earlier widths: ``benchmarks/README.md``.
Larger images get the smile CNN's four blocks and global average pooling (v2's network there,
without its dropout between blocks).
BatchNorm after every convolution lets a high one-cycle learning rate train stably.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .v1 import SMALL_MAX, Layers, conv_block, num_outputs
from .v3 import gap_head

TITLE = "Small fast BatchNorm CNN"
RATIONALE = (
    "Three narrow 3×3 BatchNorm conv blocks and a linear head: a seventh of v1's FLOPs, "
    "built for time to accuracy."
)


def build(in_channels: int, image_size: int, num_classes: int, dropout: float) -> nn.Module:
    """≤ 32 px: 16-32-64 3×3 conv+BN blocks, the first two halving the image, then a linear layer;
    larger: four halving blocks (32-256 channels) and global average pooling."""
    return build_small(in_channels, image_size, num_classes, dropout, (16, 32, 64))


def build_small(
    in_channels: int, image_size: int, num_classes: int, dropout: float, widths: tuple[int, ...]
) -> nn.Module:
    """v5's layout with ``widths`` (three) on ≤ 32 px images; larger images: v5's own network."""
    small = image_size <= SMALL_MAX
    widths = widths if small else (32, 64, 128, 256)
    layers: Layers = []
    in_ch = in_channels
    for index, width in enumerate(widths, start=1):
        pool = nn.MaxPool2d(2) if index < 3 or not small else None
        layers += conv_block(index, in_ch, width, 3, batch_norm=True, pool=pool)
        in_ch = width
    if small:
        side = image_size // 4
        head: Layers = [
            ("flatten", nn.Flatten()),
            ("dropout", nn.Dropout(dropout)),
            ("fc", nn.Linear(in_ch * side * side, num_outputs(num_classes))),
        ]
    else:
        head = [("gap", nn.AdaptiveAvgPool2d(1)), *gap_head(in_ch, num_classes, dropout)]
    return nn.Sequential(OrderedDict([*layers, *head]))

"""v5: a small, fast BatchNorm CNN for time-to-accuracy (the ``fast`` recipe's network).

train_mnist_fast and airbench reach their accuracy targets soonest with small BatchNorm
networks trained hard, not with big ones. v5 keeps the book's layout (conv blocks that halve
the image, then a linear classifier) but uses 3×3 kernels throughout: three blocks of 32, 64
and 128 channels on ≤ 32 px images (about half v1's FLOPs and a thirtieth of its parameters,
which v1 spends on ``fc1``). Larger images get the smile CNN's four blocks and global average
pooling (v2's network there, without its dropout between blocks).
BatchNorm after every convolution lets a high one-cycle learning rate train stably.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .v1 import SMALL_MAX, Layers, conv_block, num_outputs
from .v3 import gap_head

TITLE = "Small fast BatchNorm CNN"
RATIONALE = (
    "3×3 BatchNorm conv blocks and a small head: half v1's FLOPs, built for time to accuracy."
)


def build(in_channels: int, image_size: int, num_classes: int, dropout: float) -> nn.Module:
    """Three (≤ 32 px) or four 3×3 conv+BN blocks, each halving the image, then a linear layer."""
    widths = [32, 64, 128] if image_size <= SMALL_MAX else [32, 64, 128, 256]
    layers: Layers = []
    in_ch = in_channels
    for index, width in enumerate(widths, start=1):
        layers += conv_block(index, in_ch, width, 3, batch_norm=True, pool=nn.MaxPool2d(2))
        in_ch = width
    if image_size <= SMALL_MAX:
        side = image_size // 8
        head: Layers = [
            ("flatten", nn.Flatten()),
            ("dropout", nn.Dropout(dropout)),
            ("fc", nn.Linear(in_ch * side * side, num_outputs(num_classes))),
        ]
    else:
        head = [("gap", nn.AdaptiveAvgPool2d(1)), *gap_head(in_ch, num_classes, dropout)]
    return nn.Sequential(OrderedDict([*layers, *head]))

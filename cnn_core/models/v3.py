"""v3: v2 with a global-average-pooling head and one more conv block.

The MNIST-shaped v1/v2 spend ~98% of their parameters on ``fc1`` (flattened maps → 1024
units). v3 instead adds a 3×3 conv block (``conv3``, 128 channels) and averages each of its
maps to one number (``pool3``), so the classifier is a single small linear layer: ~25× fewer
parameters and less overfitting. Larger images (smile shape, which already averages) get a
fifth conv block after a fourth max-pool, widening the receptive field before the average.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .v1 import SMALL_MAX, Layers, conv_block, mnist_features, num_outputs, smile_features

TITLE = "BatchNorm CNN + GAP head"
RATIONALE = "v2 with a global-average-pooling head and one more conv block: far fewer parameters, less overfitting."


def gap_head(width: int, num_classes: int, dropout: float) -> Layers:
    """``flatten`` → ``dropout`` → ``fc``: the classifier after global average pooling."""
    return [
        ("flatten", nn.Flatten()),
        ("dropout", nn.Dropout(dropout)),
        ("fc", nn.Linear(width, num_outputs(num_classes))),
    ]


def build(in_channels: int, image_size: int, num_classes: int, dropout: float) -> nn.Module:
    """BatchNorm CNN whose last conv block ends in global average pooling."""
    gap = nn.AdaptiveAvgPool2d(1)
    if image_size <= SMALL_MAX:
        features = [
            *mnist_features(in_channels, batch_norm=True),
            *conv_block(3, 64, 128, 3, batch_norm=True, pool=gap),
        ]
        width = 128
    else:
        features = [
            *smile_features(in_channels, dropout, batch_norm=True, last_pool=nn.MaxPool2d(2)),
            *conv_block(5, 256, 256, 3, batch_norm=True, pool=gap),
        ]
        width = 256
    return nn.Sequential(OrderedDict([*features, *gap_head(width, num_classes, dropout)]))

"""v4: a small residual network (ResNet basic blocks with BatchNorm and a GAP head).

A 3×3 stem conv and a max-pool halve the image, then each ``block{i}`` holds two 3×3
conv+BN layers whose output is added to a shortcut (identity, or 1×1 conv+BN when the
block halves the size and doubles the channels). The shortcuts carry gradients straight
through, so the network can be deeper than v3 without vanishing gradients. Images of at
most 32 px get three blocks (32, 64, 128 channels), larger ones a fourth (256).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .v1 import SMALL_MAX, conv_block
from .v3 import gap_head

TITLE = "Small ResNet"
RATIONALE = "Residual basic blocks with BatchNorm and a GAP head: deeper than v3 without vanishing gradients."


class BasicBlock(nn.Module):
    """conv1 → bn1 → relu1 → conv2 → bn2, plus the shortcut, then relu2 (He et al., 2016)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        if stride == 1 and in_ch == out_ch:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                OrderedDict(
                    conv=nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False),
                    bn=nn.BatchNorm2d(out_ch),
                )
            )
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(out + self.shortcut(x))


def build(in_channels: int, image_size: int, num_classes: int, dropout: float) -> nn.Module:
    """Stem conv + max-pool, three or four residual blocks, global average pooling, linear."""
    widths = [32, 64, 128] if image_size <= SMALL_MAX else [32, 64, 128, 256]
    layers = conv_block(1, in_channels, widths[0], 3, batch_norm=True, pool=nn.MaxPool2d(2))
    in_ch = widths[0]
    for index, width in enumerate(widths, start=1):
        layers.append(
            (f"block{index}", BasicBlock(in_ch, width, stride=1 if width == in_ch else 2))
        )
        in_ch = width
    layers.append(("gap", nn.AdaptiveAvgPool2d(1)))
    return nn.Sequential(OrderedDict([*layers, *gap_head(in_ch, num_classes, dropout)]))

"""v1: the book's CNNs (Raschka et al., *Machine Learning with PyTorch and Scikit-Learn*, ch. 14).

Images of at most ``SMALL_MAX`` pixels get the MNIST network (two 5×5 conv blocks and a
1024-unit fully connected layer); larger images get the smile (CelebA) network (four 3×3
conv blocks and global average pooling). ``batch_norm=True`` adds BatchNorm after every
convolution, which is v2. The helpers here are the building blocks of v2–v4 too.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

TITLE = "Book CNN"
RATIONALE = "The reference: exactly the book's MNIST CNN (≤32 px) or smile CNN (larger images)."

SMALL_MAX = 32
Layers = list[tuple[str, nn.Module]]


def num_outputs(num_classes: int) -> int:
    """Logits per image: one for binary tasks (BCEWithLogitsLoss), else one per class."""
    return 1 if num_classes == 2 else num_classes


def conv_block(
    index: int,
    in_ch: int,
    out_ch: int,
    kernel: int,
    *,
    batch_norm: bool,
    pool: nn.Module | None = None,
) -> Layers:
    """``conv{i}`` [→ ``bn{i}``] → ``relu{i}`` [→ ``pool{i}``]; 'same' padding, bias only without BN."""
    layers: Layers = [
        (f"conv{index}", nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, bias=not batch_norm))
    ]
    if batch_norm:
        layers.append((f"bn{index}", nn.BatchNorm2d(out_ch)))
    layers.append((f"relu{index}", nn.ReLU()))
    if pool is not None:
        layers.append((f"pool{index}", pool))
    return layers


def mnist_features(in_channels: int, batch_norm: bool) -> Layers:
    """The MNIST CNN's two 5×5 conv blocks (32 and 64 channels), each halving the size."""
    return [
        *conv_block(1, in_channels, 32, 5, batch_norm=batch_norm, pool=nn.MaxPool2d(2)),
        *conv_block(2, 32, 64, 5, batch_norm=batch_norm, pool=nn.MaxPool2d(2)),
    ]


def smile_features(
    in_channels: int, dropout: float, batch_norm: bool, last_pool: nn.Module
) -> Layers:
    """The smile CNN's four 3×3 conv blocks (32→256 channels); ``last_pool`` follows conv4."""
    return [
        *conv_block(1, in_channels, 32, 3, batch_norm=batch_norm, pool=nn.MaxPool2d(2)),
        ("dropout1", nn.Dropout(dropout)),
        *conv_block(2, 32, 64, 3, batch_norm=batch_norm, pool=nn.MaxPool2d(2)),
        ("dropout2", nn.Dropout(dropout)),
        *conv_block(3, 64, 128, 3, batch_norm=batch_norm, pool=nn.MaxPool2d(2)),
        *conv_block(4, 128, 256, 3, batch_norm=batch_norm, pool=last_pool),
    ]


def book_cnn(
    in_channels: int, image_size: int, num_classes: int, dropout: float, batch_norm: bool
) -> nn.Module:
    """The book's MNIST or smile CNN for this input size, optionally with BatchNorm."""
    if image_size <= SMALL_MAX:
        side = image_size // 4
        layers = [
            *mnist_features(in_channels, batch_norm),
            ("flatten", nn.Flatten()),
            ("fc1", nn.Linear(64 * side * side, 1024)),
            ("relu3", nn.ReLU()),
            ("dropout", nn.Dropout(dropout)),
            ("fc2", nn.Linear(1024, num_outputs(num_classes))),
        ]
    else:
        # The book's AvgPool2d(8) sees the 8×8 maps of a 64 px input; adaptive pooling is the same there.
        last_pool = nn.AvgPool2d(kernel_size=8) if image_size == 64 else nn.AdaptiveAvgPool2d(1)
        layers = [
            *smile_features(in_channels, dropout, batch_norm, last_pool),
            ("flatten", nn.Flatten()),
            ("fc", nn.Linear(256, num_outputs(num_classes))),
        ]
    return nn.Sequential(OrderedDict(layers))


def build(in_channels: int, image_size: int, num_classes: int, dropout: float) -> nn.Module:
    """The book's CNN (no BatchNorm)."""
    return book_cnn(in_channels, image_size, num_classes, dropout, batch_norm=False)

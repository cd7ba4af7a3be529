"""Max and mean pooling by hand (overlapping when the stride is smaller than the window),
and global average pooling of a feature map to a vector."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .convolution import Geometry, _check_matrix, output_size, windows

POOLS = ("max", "mean")


def pool2d(x: np.ndarray, kernel: int, stride: int, mode: str = "max") -> np.ndarray:
    """``mode`` pooling of ``x`` [H, W] with a ``kernel``×``kernel`` window, no padding."""
    if mode not in POOLS:
        raise ConfigError("pooling", f"{mode!r} is not one of {', '.join(POOLS)}")
    x = _check_matrix("feature map", x, 2)
    if not 1 <= kernel <= min(x.shape):
        raise ConfigError(
            "window", f"{kernel}×{kernel} does not fit the {x.shape[0]}×{x.shape[1]} feature map"
        )
    patches = windows(x, (kernel, kernel), Geometry("valid", 0, stride))
    return patches.max(axis=(-2, -1)) if mode == "max" else patches.mean(axis=(-2, -1))


def pool_window(
    x: np.ndarray, kernel: int, stride: int, position: tuple[int, int]
) -> tuple[slice, slice, tuple[int, int]]:
    """The input rows and columns that output ``position`` pools, and where its maximum is."""
    geometry = Geometry("valid", 0, stride)
    sizes = [output_size(n, kernel, geometry) for n in np.shape(x)]
    if not all(0 <= p < o for p, o in zip(position, sizes, strict=True)):
        raise ConfigError("position", f"{position} is outside the {sizes[0]}×{sizes[1]} output")
    rows, cols = (slice(p * stride, p * stride + kernel) for p in position)
    r, c = np.unravel_index(np.argmax(np.asarray(x)[rows, cols]), (kernel, kernel))
    return rows, cols, (rows.start + int(r), cols.start + int(c))


def global_average_pool(fmap: np.ndarray) -> np.ndarray:
    """``[C, H, W]`` → ``[C]``: each channel's mean, what ``AdaptiveAvgPool2d(1)`` keeps."""
    fmap = np.asarray(fmap, dtype=np.float64)
    if fmap.ndim != 3:
        raise ConfigError("feature map", f"needs [C, H, W], got shape {fmap.shape}")
    return fmap.mean(axis=(1, 2))

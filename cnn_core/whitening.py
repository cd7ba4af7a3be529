"""Patch whitening: a network's first convolution set, once, from the training images.

A convolution with k×k kernels over C channels sees patches of d = C·k·k pixels. The
eigenvectors of the training patches' covariance, each divided by the square root of its
eigenvalue (plus ``EPS``), are filters whose outputs are decorrelated and of unit variance
(airbench's "patch-whitening initialisation"). :func:`whiten_first_conv` gives the first
convolution the filters of the largest eigenvalues, each with its negation (a ReLU after it
keeps both signs of every component), and freezes it: it never trains, so no gradient flows
into it (the step is cheaper) and the next layers learn from a decorrelated input from the
first step. A checkpoint keeps the filters in the model's weights.

Where it cannot apply (too few training images to estimate the covariance, no convolution
first, a pretrained one, more channels than 2·d filters) the convolution is left as it was and
:func:`whiten_first_conv` says why in a note.
"""

from __future__ import annotations

import torch
from torch import nn

from .models.backbones import Backbone

EPS = 5e-4  # added to the eigenvalues (pixels in [0, 1]): bounds the gain of flat directions
MAX_IMAGES = 5_000  # the first training images the covariance is estimated from
MIN_IMAGES = 100  # fewer: the estimate is too noisy to build filters from
CHUNK = 500  # images unfolded at a time


def first_conv(model: nn.Module) -> nn.Conv2d | None:
    """The model's first convolution in module order (None if it has none)."""
    return next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)


def patch_covariance(images: torch.Tensor, kernel: int) -> torch.Tensor:
    """The d×d covariance (float64) of every k×k patch inside ``images`` (float ``[N, C, H, W]``)."""
    d = images.shape[1] * kernel * kernel
    total, sum_, count = (
        torch.zeros(d, d, dtype=torch.float64),
        torch.zeros(d, dtype=torch.float64),
        0,
    )
    for start in range(0, len(images), CHUNK):
        x = images[start : start + CHUNK].float()
        patches = nn.functional.unfold(x, kernel).transpose(1, 2).reshape(-1, d)
        patches = patches.double()
        total += patches.T @ patches
        sum_ += patches.sum(0)
        count += len(patches)
    mean = sum_ / count
    return total / count - torch.outer(mean, mean)


def whitening_filters(images: torch.Tensor, kernel: int) -> torch.Tensor:
    """The d whitening filters ``[d, C, k, k]`` of ``images``' k×k patches, largest eigenvalue
    first."""
    eigenvalues, vectors = torch.linalg.eigh(patch_covariance(images, kernel))
    filters = (vectors / torch.sqrt(eigenvalues.clamp(min=0) + EPS)).T.flip(0)
    return filters.float().reshape(-1, images.shape[1], kernel, kernel)


def whiten_first_conv(model: nn.Module, images: torch.Tensor, fill: bool = True) -> str:
    """Set ``model``'s first convolution to the whitening filters of ``images`` (the training
    images as the model sees them, float ``[N, C, H, W]``) and freeze it; "" when done, else a
    note saying why it was left as it was. ``fill`` False only freezes it (a resumed run: its
    checkpoint holds the filters)."""
    conv = first_conv(model)
    inside_backbone = any(
        conv is m for b in model.modules() if isinstance(b, Backbone) for m in b.modules()
    )
    if conv is None or inside_backbone:
        what = "no convolution of its own first" if conv is None else "a pretrained first layer"
        return f"patch whitening skipped: the model has {what}"
    k, channels = conv.kernel_size, conv.in_channels
    d = channels * k[0] * k[1]
    if k[0] != k[1] or conv.groups != 1 or channels != images.shape[1]:
        return "patch whitening skipped: the first convolution is not a plain square one"
    if conv.out_channels > 2 * d:
        return (
            f"patch whitening skipped: the first convolution has {conv.out_channels} channels, "
            f"more than the {2 * d} filters ± of its {d}-pixel patches"
        )
    if len(images) < MIN_IMAGES:
        return (
            f"patch whitening skipped: {len(images)} training images are too few to estimate "
            f"the patch covariance (it needs {MIN_IMAGES}); the first convolution trains as usual"
        )
    if fill:
        filters = whitening_filters(images[:MAX_IMAGES], k[0])
        half = conv.out_channels // 2
        rest = filters[half : conv.out_channels - half]
        with torch.no_grad():
            conv.weight.copy_(torch.cat([filters[:half], -filters[:half], rest]))
            if conv.bias is not None:
                conv.bias.zero_()
    for p in conv.parameters():
        p.requires_grad_(False)
    return ""

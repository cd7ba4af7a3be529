"""Batched transforms on uint8 tensors ``[B, C, H, W]`` (torch ops only, no PIL per sample).

Randomness comes only from the generator passed to ``train`` so augmented runs repeat exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import BatchTransform

CELEBA_FRAME = (178, 218)  # (width, height) of CelebA's aligned-and-cropped images


def faces_stored_height(image_size: int) -> int:
    """Height at which CelebA images are stored for model side ``image_size`` (78 for 64)."""
    width, height = CELEBA_FRAME
    return round(height * image_size / width)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 → float in [0, 1] (torchvision's ToTensor, no normalisation)."""
    return images.to(torch.float32, memory_format=torch.contiguous_format).div_(255)


def crop(
    images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """Per-sample crop: sample ``b`` keeps rows ``top[b]:top[b]+height`` and the same for columns."""
    batch = torch.arange(len(images))[:, None, None]
    rows = (top[:, None] + torch.arange(height))[:, :, None]
    cols = (left[:, None] + torch.arange(width))[:, None, :]
    return images.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``max_shift`` px in x and y, filling with zeros."""
    if max_shift <= 0:
        return images
    _, _, h, w = images.shape
    padded = F.pad(images, (max_shift,) * 4)
    top, left = torch.randint(0, 2 * max_shift + 1, (2, len(images)), generator=generator)
    return crop(padded, top, left, h, w)


def random_hflip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = torch.rand(len(images), generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


class DigitsTransform(BatchTransform):
    """Digits: eval = ``x / 255``; train (augment) = random shift of up to ``max_shift`` px,
    plus an optional random horizontal flip."""

    def __init__(
        self,
        augment: bool = False,
        output_size: tuple[int, int] = (28, 28),
        *,
        max_shift: int = 2,
        flip: bool = False,
    ):
        self.augment = augment
        self.output_size = (output_size[0], output_size[1])
        self.max_shift = max_shift
        self.flip = flip

    def train(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if not self.augment:
            return self.eval(images)
        images = random_shift(images, self.max_shift, generator)
        if self.flip:
            images = random_hflip(images, generator)
        return to_float(images)

    def eval(self, images: torch.Tensor) -> torch.Tensor:
        return to_float(images)


class FolderTransform(DigitsTransform):
    """Image folders (square ``image_size``): eval = ``x / 255``; augment = flip + small shift."""

    def __init__(self, image_size: int, augment: bool = False):
        super().__init__(
            augment, (image_size, image_size), max_shift=max(1, round(image_size / 14)), flip=True
        )


class FacesTransform(BatchTransform):
    """CelebA stored at ``S × round(218·S/178)`` (the 178×218 frame scaled to width S).

    eval = centre S×S crop (the book's CenterCrop(178) + Resize(64)); train with augment =
    random vertical crop offset + random horizontal flip (RandomCrop(178) + RandomHorizontalFlip).
    """

    def __init__(self, image_size: int, augment: bool = True):
        self.image_size = image_size
        self.augment = augment
        self.output_size = (image_size, image_size)

    def train(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if not self.augment:
            return self.eval(images)
        s, h = self.image_size, images.shape[2]
        top = torch.randint(0, h - s + 1, (len(images),), generator=generator)
        left = torch.randint(0, images.shape[3] - s + 1, (len(images),), generator=generator)
        return to_float(random_hflip(crop(images, top, left, s, s), generator))

    def eval(self, images: torch.Tensor) -> torch.Tensor:
        s, (h, w) = self.image_size, images.shape[2:]
        top, left = (h - s) // 2, (w - s) // 2
        return to_float(images[:, :, top : top + s, left : left + s])

"""Turn user images into model input.

* :func:`prepare_digit` applies the MNIST recipe (LeCun et al.) to a drawing or a photo of a
  handwritten digit: one ink channel, light ink on dark, cropped, fitted into 20×20 keeping
  the aspect ratio and placed in 28×28 with its centre of mass at the centre.
* :func:`prepare_face` applies CelebA's eval transform to an arbitrary photo.
* :func:`prepare_dataset_image` handles images that already look like training data.

Every function accepts a PIL image or a numpy array (H×W, H×W×C or C×H×W with C ≤ 4, any
real dtype or value range: bool, 0-1 floats, 0-255, 16-bit and negative values are scaled
to 0-1; NaN/inf count as 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from .data.transforms import CELEBA_FRAME
from .errors import UserError
from .images import as_float_array, as_pil, image_to_tensor, normalize_mode, resize_to, to_uint8

DIGIT_SIZE = 28
DIGIT_BOX = 20
DIGIT_CENTRE = 14.0  # target centre of mass (row and column, pixel-index coordinates)
WORK_SIDE = 300  # inputs at least twice this size are area-reduced to about this first
MIN_CONTRAST = 0.08  # ink must differ from the background by this much (0-1 scale)
MIN_INK_SHARE = 0.0003  # fewer strong ink pixels than this share of the canvas = nothing drawn
MIN_INK_PIXELS = 4
REL_FLOOR = 0.1  # ink fainter than this share of the darkest stroke is paper texture


@dataclass
class DigitInput:
    """A prepared digit: ``tensor`` [1, 1, 28, 28] in [0, 1], or None when ``empty``.

    ``steps`` holds uint8 images of the stages for display: "ink" (one channel, ink bright),
    then, unless empty, "cropped", "fit_20x20" and "centred_28x28".
    """

    tensor: torch.Tensor | None
    empty: bool
    steps: dict[str, np.ndarray] = field(default_factory=dict)


def prepare_digit(image: Any) -> DigitInput:
    """MNIST-style 28×28 input from a drawing or digit photo (``empty`` if nothing is drawn)."""
    ink = _ink_channel(as_float_array(_shrink(image)))
    contrast, shown, noise = _polarity(ink)
    steps = {"ink": to_uint8(shown)}
    cleaned = _clean(contrast, noise)
    if cleaned is None:
        return DigitInput(None, True, steps)
    rows, cols = _ink_bounds(cleaned)
    cropped = cleaned[rows, cols]
    fitted, centred = _fit_and_centre(cropped)
    steps.update(
        cropped=to_uint8(cropped), fit_20x20=to_uint8(fitted), centred_28x28=to_uint8(centred)
    )
    return DigitInput(torch.from_numpy(centred)[None, None].contiguous(), False, steps)


def default_face_box(width: int, height: int) -> tuple[int, int, int, int]:
    """The largest centred box with CelebA's 178:218 (W:H) aspect, as (left, top, right, bottom)."""
    if width < 1 or height < 1:
        raise UserError(f"image has no pixels ({width}×{height})")
    frame_w, frame_h = CELEBA_FRAME
    if width * frame_h > height * frame_w:  # wider than CelebA: full height
        box_w, box_h = max(1, min(width, round(height * frame_w / frame_h))), height
    else:
        box_w, box_h = width, max(1, min(height, round(width * frame_h / frame_w)))
    left, top = (width - box_w) // 2, (height - box_h) // 2
    return left, top, left + box_w, top + box_h


def prepare_face(
    image: Any, image_size: int = 64, crop_box: tuple[float, float, float, float] | None = None
) -> torch.Tensor:
    """CelebA's eval transform on a photo: float [1, 3, S, S] in [0, 1].

    The face frame is ``crop_box`` (left, top, right, bottom in image pixels) or, by default,
    :func:`default_face_box`. As the CelebA loader does, the frame is resized (bilinear) so its
    shorter side is S (178×218 → S × round(218·S/178)) and the central S×S square is kept: the
    book's ``CenterCrop(178)`` + ``Resize(S)``.
    """
    size = _check_size(image_size)
    pil = as_pil(image).convert("RGB")
    box = default_face_box(*pil.size) if crop_box is None else _check_box(crop_box, *pil.size)
    width, height = box[2] - box[0], box[3] - box[1]
    if width <= height:
        scaled = (size, max(size, round(height * size / width)))
    else:
        scaled = (max(size, round(width * size / height)), size)
    frame = pil.resize(scaled, Image.Resampling.BILINEAR, box=box)
    left, top = (scaled[0] - size) // 2, (scaled[1] - size) // 2
    return image_to_tensor(frame.crop((left, top, left + size, top + size)))


def prepare_dataset_image(image: Any, in_channels: int, image_size: int) -> torch.Tensor:
    """An image that already looks like training data as float [1, C, S, S] in [0, 1].

    Converted to L (C=1) or RGB (C=3) and resized to S×S by :func:`cnn_core.images.resize_to`,
    as the image-folder loader does (alpha dropped; bilinear, antialiased; stretched).
    """
    if in_channels not in (1, 3):
        raise UserError(f"in_channels must be 1 or 3, not {in_channels!r}")
    size = _check_size(image_size)
    mode = "L" if in_channels == 1 else "RGB"
    return image_to_tensor(resize_to(as_pil(image), (size, size), mode))


def _check_size(image_size: Any) -> int:
    if (
        isinstance(image_size, bool)
        or not isinstance(image_size, int | np.integer)
        or not 1 <= image_size <= 4096
    ):
        raise UserError(f"image_size must be a whole number from 1 to 4096, not {image_size!r}")
    return int(image_size)


def _check_box(box: Any, width: int, height: int) -> tuple[float, float, float, float]:
    """``box`` as four floats inside the image with positive size, else UserError."""
    try:
        left, top, right, bottom = (float(v) for v in box)
    except (TypeError, ValueError):
        raise UserError(
            f"crop box must be four numbers (left, top, right, bottom), not {box!r}"
        ) from None
    if not (0 <= left < right <= width and 0 <= top < bottom <= height):  # also rejects NaN
        raise UserError(
            f"crop box {tuple(box)} must lie inside the {width}×{height} image "
            "with positive width and height"
        )
    return left, top, right, bottom


# --------------------------------------------------------------------------- digit recipe


def _shrink(image: Any) -> Any:
    """Huge inputs box-reduced (area average, by PIL: fast) to under 2·WORK_SIDE px a side."""
    if isinstance(image, np.ndarray) and image.ndim >= 2 and max(image.shape) >= 2 * WORK_SIDE:
        image = as_pil(image)
    if isinstance(image, Image.Image) and max(image.size) // WORK_SIDE >= 2:
        return normalize_mode(image).reduce(max(image.size) // WORK_SIDE)
    return image


def _ink_channel(values: np.ndarray) -> np.ndarray:
    """One channel: alpha where it varies (strokes on a transparent canvas), else luminance."""
    if values.ndim == 2:
        return values
    channels = values.shape[2]
    if channels in (2, 4):
        alpha = values[..., channels - 1]
        if float(alpha.max()) - float(alpha.min()) > 0.1:
            return alpha
    if channels >= 3:
        return values[..., 0] * 0.299 + values[..., 1] * 0.587 + values[..., 2] * 0.114
    return values[..., 0]


def _polarity(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Ink contrast (positive where ink is), the channel with ink bright, and the noise level.

    The background is a plane fitted to the border; whichever side of it deviates more
    strongly beyond the noise (squared, so faint lighting changes count less) is the ink.
    """
    plane, sigma = _background(ink)
    deviation = ink - plane
    noise = 4.0 * sigma + 0.02
    bright = float(np.square(np.maximum(deviation - noise, 0)).sum())
    dark = float(np.square(np.maximum(-deviation - noise, 0)).sum())
    if dark > bright:
        return -deviation, 1.0 - ink, noise
    return deviation, ink, noise


def _background(ink: np.ndarray) -> tuple[np.ndarray, float]:
    """A plane a + b·x + c·y fitted robustly to the border pixels, and their noise (robust σ)."""
    h, w = ink.shape
    band = max(1, min(h, w) // 16)
    step = max(1, min(h, w) // 100)  # a few thousand border points pin down a plane
    ys, xs = np.mgrid[0:h:step, 0:w:step].reshape(2, -1)
    edge = np.minimum(np.minimum(ys, h - 1 - ys), np.minimum(xs, w - 1 - xs)) < band
    ys, xs = ys[edge], xs[edge]
    values = ink[ys, xs].astype(np.float64)
    design = np.column_stack([np.ones_like(values), xs / max(w - 1, 1), ys / max(h - 1, 1)])
    spread = max(3.0 * 1.4826 * float(np.median(np.abs(values - np.median(values)))), 1e-3)
    keep = np.abs(values - np.median(values)) <= spread  # no ink lying along an edge in the fit
    for _ in range(2):  # fit, drop outliers (ink touching the border), refit
        kept = design[keep]
        coef = np.linalg.lstsq(kept.T @ kept, kept.T @ values[keep], rcond=None)[0]
        residual = values - design @ coef
        sigma = 1.4826 * float(np.median(np.abs(residual[keep])))
        keep = np.abs(residual) <= max(3.0 * sigma, 1e-3)
        if keep.sum() < 3:
            break
    x = np.arange(w) / max(w - 1, 1)
    y = np.arange(h) / max(h - 1, 1)
    plane = coef[0] + coef[1] * x[None, :] + coef[2] * y[:, None]
    return plane.astype(np.float32), sigma


def _clean(contrast: np.ndarray, noise: float) -> np.ndarray | None:
    """Ink in [0, 1] above the noise, without isolated specks, or None when there is no ink."""
    ink = np.maximum(contrast - noise, 0.0)
    ink[~_has_neighbour(ink > 0)] = 0.0
    peak = float(ink.max())
    if peak <= 0 or peak + noise < MIN_CONTRAST:
        return None
    ink = np.clip(ink / peak - REL_FLOOR, 0.0, None) / (1.0 - REL_FLOOR)
    if (ink > 0.5).sum() < max(MIN_INK_PIXELS, MIN_INK_SHARE * ink.size):
        return None
    gain = float(np.percentile(ink[ink > 0], 90))
    return np.clip(ink / gain, 0.0, 1.0).astype(np.float32)


def _has_neighbour(mask: np.ndarray) -> np.ndarray:
    """True where ``mask`` is set and at least one of the 8 neighbours is set too."""
    padded = np.pad(mask, 1).astype(np.uint8)
    h, w = mask.shape
    count = sum(padded[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3))
    return mask & (count >= 2)


def _ink_bounds(ink: np.ndarray) -> tuple[slice, slice]:
    """Bounding box of the ink, ignoring small detached specks at the edges of the ink."""
    rows = _main_span(ink.sum(axis=1))
    cols = _main_span(ink[rows].sum(axis=0))
    return _main_span(ink[:, cols].sum(axis=1)), cols


def _main_span(profile: np.ndarray, min_share: float = 0.02) -> slice:
    """The span of the non-zero runs of ``profile``, dropping outer runs under ``min_share`` of the mass."""
    nonzero = np.flatnonzero(profile > 0)
    breaks = np.flatnonzero(np.diff(nonzero) > 1)
    starts = np.concatenate([[nonzero[0]], nonzero[breaks + 1]])
    stops = np.concatenate([nonzero[breaks], [nonzero[-1]]]) + 1
    masses = np.array([profile[a:b].sum() for a, b in zip(starts, stops, strict=True)])
    first, last = 0, len(starts) - 1
    limit = min_share * masses.sum()
    while first < last and (masses[first] < limit or masses[last] < limit):
        if masses[first] <= masses[last]:
            first += 1
        else:
            last -= 1
    return slice(int(starts[first]), int(stops[last]))


def _resize(
    ink: np.ndarray, size: tuple[int, int], box: tuple[float, float, float, float]
) -> np.ndarray:
    """Lanczos resize of the ``box`` region (pixel-edge coordinates) to ``size`` (W, H), ≥ 0."""
    out = Image.fromarray(np.ascontiguousarray(ink)).resize(size, Image.Resampling.LANCZOS, box=box)
    return np.clip(np.asarray(out, dtype=np.float32), 0.0, None)


def _fit_and_centre(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``ink`` fitted into DIGIT_BOX² keeping its aspect, and that placed in a DIGIT_SIZE² canvas.

    The placement puts the centre of mass at DIGIT_CENTRE to a fraction of a pixel: the
    fractional part of the shift is applied by resampling the crop again on a shifted grid
    (no extra blur). Digits too lopsided to shift fully are kept inside the canvas.
    """
    h, w = ink.shape
    scale = DIGIT_BOX / max(h, w)
    out_w, out_h = max(1, round(w * scale)), max(1, round(h * scale))
    fitted = _resize(ink, (out_w, out_h), (0, 0, w, h))
    com_y, com_x = _centre_of_mass(fitted)
    top = min(max(DIGIT_CENTRE - com_y, 0.0), DIGIT_SIZE - out_h)
    left = min(max(DIGIT_CENTRE - com_x, 0.0), DIGIT_SIZE - out_w)
    row, col = int(top), int(left)
    frac_y, frac_x = top - row, left - col
    sx, sy = out_w / w, out_h / h
    pad = math.ceil(1 / min(sx, sy)) + 1
    x0, y0 = pad - frac_x / sx, pad - frac_y / sy
    box = (x0, y0, x0 + (out_w + 1) / sx, y0 + (out_h + 1) / sy)
    shifted = _resize(np.pad(ink, pad), (out_w + 1, out_h + 1), box)
    canvas = np.zeros((DIGIT_SIZE + 1, DIGIT_SIZE + 1), dtype=np.float32)
    canvas[row : row + out_h + 1, col : col + out_w + 1] = shifted
    canvas = canvas[:DIGIT_SIZE, :DIGIT_SIZE]
    return fitted / max(float(fitted.max()), 1e-12), canvas / max(float(canvas.max()), 1e-12)


def _centre_of_mass(values: np.ndarray) -> tuple[float, float]:
    """(row, column) centre of mass in pixel-index coordinates."""
    total = float(values.sum()) or 1.0
    rows = float(values.sum(axis=1) @ np.arange(values.shape[0])) / total
    return rows, float(values.sum(axis=0) @ np.arange(values.shape[1])) / total

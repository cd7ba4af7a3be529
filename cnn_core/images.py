"""Safe image decoding for uploads and CLI files: one clear :class:`UserError` per bad input.

:func:`open_image` decodes bytes, a path or a binary file object, refusing non-images,
truncated or corrupt files, decompression bombs and images smaller than 8×8. It always
returns a fully loaded, EXIF-oriented image in one of three modes (see :func:`normalize_mode`):

* ``"L"``    greyscale without alpha: L, 1 (bilevel), I;16*, I, F;
* ``"RGB"``  colour without alpha: RGB, CMYK, YCbCr, LAB, HSV, P (palette) without transparency;
* ``"RGBA"`` anything with transparency: RGBA, LA, PA, La, RGBa, P or L with a transparent colour.

Animated GIF / WebP / APNG files give their first frame.
"""

from __future__ import annotations

import io
import os
import re
import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import UserError

MIN_SIDE = 8
DEFAULT_MAX_PIXELS = 40_000_000

# Errors PIL raises for undecodable data (it is not consistent about which).
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    MemoryError,
)
_ALPHA_MODES = {"RGBA", "LA", "PA", "La", "RGBa"}


def open_image(
    source: bytes | str | Path | Any,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    name: str | None = None,
) -> Image.Image:
    """Decode ``source`` (bytes, a path or a binary file object) into a loaded L/RGB/RGBA image.

    ``name`` labels the input in error messages (default: the file name, else "this file").
    PIL's own decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``) still applies on top of
    ``max_pixels``; both give the same "too large" error.
    Raises :class:`UserError` with one sentence for anything that is not a usable image.
    """
    data, label = _read_source(source, name)
    if not data:
        raise UserError(f"{label} is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                _check_header(img, label, max_pixels)
                img.load()
                oriented = _exif_transpose(img)
                return normalize_mode(oriented)
    except UserError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        found = re.search(r"(\d+) pixels", str(exc))
        size = f"{int(found[1]) / 1e6:g} MP" if found else "too many pixels"
        raise UserError(f"{label} is too large: {size} (limit {max_pixels / 1e6:g} MP)") from None
    except UnidentifiedImageError:
        raise UserError(f"{label} is not an image PIL can read") from None
    except _DECODE_ERRORS as exc:
        raise UserError(
            f"{label} is truncated or corrupt and cannot be decoded ({_short(exc)})"
        ) from None


def normalize_mode(img: Image.Image) -> Image.Image:
    """``img`` converted to "L", "RGB" or "RGBA" (the module docstring lists which goes where).

    16-bit and 32-bit greyscale is scaled to 0-255 rather than clipped; the result is a new
    image when a conversion is needed, else ``img`` itself.
    """
    mode = img.mode
    if mode in ("L", "RGB", "RGBA"):
        if mode == "L" and "transparency" in img.info:
            return img.convert("RGBA")
        return img
    if mode == "P":
        has_alpha = (
            "transparency" in img.info or img.palette is not None and img.palette.mode == "RGBA"
        )
        return img.convert("RGBA" if has_alpha else "RGB")
    if mode in _ALPHA_MODES:
        return img.convert("RGBA")
    if mode == "1":
        return img.convert("L")
    if mode.startswith("I") or mode.startswith("F"):
        return Image.fromarray(_wide_to_uint8(np.asarray(img), sixteen_bit=mode.startswith("I;16")))
    return img.convert("RGB")


def image_to_array(img: Image.Image) -> np.ndarray:
    """A writable uint8 array: ``[H, W]`` for L, ``[H, W, 3]`` for RGB, ``[H, W, 4]`` for RGBA."""
    return np.array(normalize_mode(img), dtype=np.uint8)


def as_float_array(image: Any) -> np.ndarray:
    """``image`` (PIL or array-like) as float32 H×W or H×W×C (C ≤ 4) scaled to [0, 1].

    Arrays may be channels-first and of any real dtype or range: bool and 0-1 floats as they
    are, values up to 255 or 65535 scaled by that, larger ones by their maximum; arrays with
    negative values are stretched min-max; NaN/inf count as 0. Anything else raises
    UserError ("not an image").
    """
    if isinstance(image, Image.Image):
        return image_to_array(image).astype(np.float32) / 255.0
    try:
        arr = np.asarray(image)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise UserError(f"not an image: cannot read a {type(image).__name__} as pixels") from exc
    if arr.dtype.kind not in "biuf":
        raise UserError(f"not an image: pixels of type {arr.dtype} are not numbers")
    while arr.ndim > 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 3 and not 1 <= arr.shape[2] <= 4 and arr.shape[0] in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)  # channels first
    if arr.ndim not in (2, 3) or arr.size == 0 or (arr.ndim == 3 and arr.shape[2] > 4):
        raise UserError(f"not an image: expected H×W or H×W×C pixels, got shape {arr.shape}")
    with np.errstate(all="ignore"):
        values = arr.astype(np.float32)
        if arr.dtype.kind == "f":
            np.nan_to_num(values, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
            np.clip(values, -1e30, 1e30, out=values)
        low = float(values.min())
        if low < 0:
            values -= low
        high = float(values.max())
        scale = high if low < 0 else next((s for s in (1.0, 255.0, 65535.0) if high <= s), high)
        values *= np.float32(1.0 / (scale or 1.0))  # a flat negative image shifts to all 0
    return np.clip(values, 0.0, 1.0, out=values)


def as_pil(image: Any) -> Image.Image:
    """``image`` (PIL or array-like, see :func:`as_float_array`) as an L, RGB or RGBA PIL image."""
    if isinstance(image, Image.Image):
        return normalize_mode(image)
    if (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and image.size
        and image.shape[2:] in ((), (3,), (4,))
        and image.ndim in (2, 3)
    ):
        return Image.fromarray(image)  # fast path: already L, RGB or RGBA pixels
    values = to_uint8(as_float_array(image))
    if values.ndim == 3 and values.shape[2] == 1:
        values = values[..., 0]
    return normalize_mode(Image.fromarray(values))


def image_to_tensor(img: Image.Image) -> torch.Tensor:
    """An L or RGB PIL image as a float tensor [1, C, H, W] in [0, 1]."""
    arr = np.asarray(img, dtype=np.float32) / 255.0
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(arr))[None]


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Floats in [0, 1] as uint8 0-255 (rounded, clipped)."""
    return np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8)


def _read_source(source: Any, name: str | None) -> tuple[bytes, str]:
    """The raw bytes of ``source`` and a label for messages."""
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source), name or "this file"
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        label = name or path.name or str(path)
        try:
            return path.read_bytes(), label
        except FileNotFoundError:
            raise UserError(f"{label}: no such file") from None
        except IsADirectoryError:
            raise UserError(f"{label} is a folder, not an image file") from None
        except OSError as exc:
            raise UserError(f"{label} could not be read: {exc.strerror or exc}") from None
    if hasattr(source, "read"):
        label = name or Path(str(getattr(source, "name", "") or "")).name or "this file"
        if hasattr(source, "seek"):
            source.seek(0)
        data = source.read()
        if not isinstance(data, bytes | bytearray):
            raise UserError(f"{label} must be opened in binary mode")
        return bytes(data), label
    raise UserError(f"cannot read an image from a {type(source).__name__}")


def _check_header(img: Image.Image, label: str, max_pixels: int) -> None:
    """Size and frame checks that need only the header (before any pixel is decoded)."""
    width, height = img.size
    if width <= 0 or height <= 0:
        raise UserError(f"{label} has no pixels ({width}×{height})")
    if width * height > max_pixels:
        raise UserError(
            f"{label} is too large: {width}×{height} pixels (limit {max_pixels / 1e6:g} MP)"
        )
    if min(width, height) < MIN_SIDE:
        raise UserError(
            f"{label} is too small: {width}×{height} pixels (need at least {MIN_SIDE}×{MIN_SIDE})"
        )
    if getattr(img, "n_frames", 1) < 1:
        raise UserError(f"{label} contains no frames")


def _exif_transpose(img: Image.Image) -> Image.Image:
    """``img`` rotated/flipped as its EXIF orientation says; a broken EXIF block is ignored."""
    try:
        return ImageOps.exif_transpose(img)
    except (OSError, SyntaxError, ValueError, TypeError, KeyError, struct.error):
        return img.copy()


def _wide_to_uint8(values: np.ndarray, *, sixteen_bit: bool) -> np.ndarray:
    """Scale wide greyscale to uint8: 16-bit data by 255/65535; 32-bit ints and floats by range.

    Ranges: floats within 0-1 are ×255, values within 0-255 kept, within 0-65535 scaled as
    16-bit, anything else (negative or larger) stretched min-max.
    """
    arr = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(arr.min(initial=0.0)), float(arr.max(initial=0.0))
    if sixteen_bit:
        scale, lo = 255.0 / 65535.0, 0.0
    elif lo >= 0 and hi <= 1.0 and values.dtype.kind == "f":
        scale, lo = 255.0, 0.0
    elif lo >= 0 and hi <= 255:
        scale, lo = 1.0, 0.0
    elif lo >= 0 and hi <= 65535:
        scale, lo = 255.0 / 65535.0, 0.0
    else:
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
    return np.clip(np.rint((arr - lo) * scale), 0, 255).astype(np.uint8)


def _short(exc: BaseException) -> str:
    """A one-line description of a decoder exception."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:120]

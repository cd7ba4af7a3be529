"""The one image decoder: every image file any part of CNN Lab reads is decoded here.

:func:`open_image` decodes bytes, a path or a binary file object, refusing non-images,
truncated or corrupt files, decompression bombs and images smaller than 8×8 with one
:class:`~cnn_core.errors.ImageError` (the file's name, then one line saying why). It always
returns a fully loaded, EXIF-oriented image in one of three modes (see :func:`normalize_mode`):

* ``"L"``    greyscale without alpha: L, 1 (bilevel), I;16*, I, F;
* ``"RGB"``  colour without alpha: RGB, CMYK, YCbCr, LAB, HSV, P (palette) without transparency;
* ``"RGBA"`` anything with transparency: RGBA, LA, PA, La, RGBa, P or L with a transparent colour.

Animated GIF / WebP / APNG files give their first frame. Pixels at a model's size come from
:func:`decode_at` in the loaders and from :func:`open_image` + :func:`resize_to` in ``predict``
(``Predictor.open_input``): the same ``draft`` (a JPEG decoded at a reduced DCT scale that
still covers the target), conversion and resize, so a file gives a model the same pixels in
training as in prediction. :func:`read_header` reads size, mode and format without decoding.
"""

from __future__ import annotations

import io
import os
import re
import struct
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError, UserError

MIN_SIDE = 8
DEFAULT_MAX_PIXELS = 40_000_000
# Part of every decoded-image cache key: bump it whenever the pixels decoded for a file change
# (version 2: every loader applies EXIF orientation, 16-bit scaling and the shared draft).
DECODER_VERSION = 2

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
_SWAPS_AXES = {5, 6, 7, 8}  # EXIF orientations that turn the picture by 90°
_SIGNATURES = {  # formats PIL reads, by their first bytes: named when PIL cannot decode one
    b"\x89PNG": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"BM": "BMP",
    b"GIF8": "GIF",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}
# warnings.catch_warnings is process-wide: threads decoding at once take turns opening headers.
_OPEN_LOCK = threading.Lock()


@dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says: its size as displayed (after EXIF orientation), its
    own pixel mode (before :func:`normalize_mode`) and its format ("PNG", "JPEG", …)."""

    width: int
    height: int
    mode: str
    format: str | None

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


def open_image(
    source: bytes | str | Path | Any,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    name: str | None = None,
    draft: tuple[int, int] | None = None,
) -> Image.Image:
    """Decode ``source`` (bytes, a path or a binary file object) into a loaded L/RGB/RGBA image.

    ``name`` labels the input in error messages (default: the file name, else "this file").
    ``draft`` (width, height, as displayed) lets a JPEG decode at the largest DCT reduction
    (1/2, 1/4 or 1/8) that still covers that size; other formats ignore it.
    PIL's own decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``) still applies on top of
    ``max_pixels``; both give the same "too large" error.
    Raises :class:`ImageError` with one sentence for anything that is not a usable image.
    """
    data, label = _read_source(source, name)
    with _opened(data, label, max_pixels) as img:
        if draft is not None:
            wide, high = draft
            if _orientation(img) in _SWAPS_AXES:
                wide, high = high, wide
            img.draft(None, (max(1, wide), max(1, high)))
        img.load()
        return normalize_mode(_exif_transpose(img))


def read_header(
    source: bytes | str | Path | Any,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    name: str | None = None,
) -> ImageHeader:
    """The header of an image file, read without decoding its pixels; the same
    :class:`ImageError` as :func:`open_image` for a non-image, a bomb or a too-small image."""
    data, label = _read_source(source, name)
    with _opened(data, label, max_pixels) as img:
        width, height = img.size
        if _orientation(img) in _SWAPS_AXES:
            width, height = height, width
        return ImageHeader(width, height, img.mode, img.format)


def decode_at(
    source: bytes | str | Path | Any,
    size: tuple[int, int],
    mode: str | None = None,
    *,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Image.Image:
    """``source`` decoded for a model that takes ``size`` (width, height) images: opened with
    that ``draft``, then :func:`resize_to` ``size`` in ``mode`` ("L", "RGB"; None: "L" for a
    greyscale file, else "RGB")."""
    img = open_image(source, max_pixels=max_pixels, name=name, draft=size)
    return resize_to(img, size, mode)


def resize_to(img: Image.Image, size: tuple[int, int], mode: str | None = None) -> Image.Image:
    """``img`` in ``mode`` ("L" or "RGB"; None: "L" when it is greyscale, else "RGB"; alpha is
    dropped as PIL's ``convert`` does) and resized (bilinear; stretched) to ``size`` (w, h)."""
    img = normalize_mode(img)
    mode = mode or ("L" if img.mode == "L" else "RGB")
    if img.mode != mode:
        img = img.convert(mode)
    if img.size != tuple(size):
        img = img.resize((size[0], size[1]), Image.Resampling.BILINEAR)
    return img


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
            raise ImageError(label, "no such file") from None
        except IsADirectoryError:
            raise ImageError(label, "a folder, not an image file") from None
        except OSError as exc:
            raise ImageError(label, f"could not be read ({exc.strerror or exc})") from None
    if hasattr(source, "read"):
        label = name or Path(str(getattr(source, "name", "") or "")).name or "this file"
        if hasattr(source, "seek"):
            source.seek(0)
        data = source.read()
        if not isinstance(data, bytes | bytearray):
            raise ImageError(label, "must be opened in binary mode")
        return bytes(data), label
    raise UserError(f"cannot read an image from a {type(source).__name__}")


@contextmanager
def _opened(data: bytes, label: str, max_pixels: int) -> Iterator[Image.Image]:
    """The opened (not yet decoded) image of ``data`` after the header checks; anything PIL
    raises inside the block becomes one :class:`ImageError` naming ``label``."""
    if not data:
        raise ImageError(label, "empty file (0 bytes)")
    try:
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
        with img:
            _check_header(img, label, max_pixels)
            yield img
    except UserError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        found = re.search(r"(\d+) pixels", str(exc))
        size = f"{int(found[1]) / 1e6:g} MP" if found else "too many pixels"
        limit = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
        raise ImageError(label, f"too large: {size} (limit {limit / 1e6:g} MP)") from None
    except UnidentifiedImageError:
        fmt = next((f for sig, f in _SIGNATURES.items() if data.startswith(sig)), None)
        if fmt is None:
            raise ImageError(label, "not an image PIL can read") from None
        reason = f"a {fmt} file PIL cannot decode (damaged header or unsupported pixel format)"
        raise ImageError(label, reason) from None
    except _DECODE_ERRORS as exc:
        reason = f"truncated or corrupt and cannot be decoded ({_short(exc)})"
        raise ImageError(label, reason) from None


def _check_header(img: Image.Image, label: str, max_pixels: int) -> None:
    """Size and frame checks that need only the header (before any pixel is decoded)."""
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageError(label, f"has no pixels ({width}×{height})")
    if width * height > max_pixels:
        raise ImageError(
            label, f"too large: {width}×{height} pixels (limit {max_pixels / 1e6:g} MP)"
        )
    if min(width, height) < MIN_SIDE:
        raise ImageError(
            label, f"too small: {width}×{height} pixels (need at least {MIN_SIDE}×{MIN_SIDE})"
        )
    if getattr(img, "n_frames", 1) < 1:
        raise ImageError(label, "contains no frames")


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation (1-8) of an opened image; 1 when it has none or it is unreadable
    (or sits in a PNG after the pixels, where reading it would decode the whole image)."""
    if img.format == "PNG" and "exif" not in img.info:
        return 1
    try:
        return int(img.getexif().get(0x0112, 1))
    except (OSError, SyntaxError, ValueError, TypeError, KeyError, struct.error):
        return 1


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

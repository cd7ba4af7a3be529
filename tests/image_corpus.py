"""A generated corpus of odd and hostile image files (shared by the image, CLI and page tests)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def encode(img: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def noise_rgb(width: int = 48, height: int = 32, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def png_with_size(width: int, height: int) -> bytes:
    """A tiny real PNG whose IHDR is patched to claim ``width``×``height`` (valid CRC)."""
    data = bytearray(encode(Image.new("L", (16, 16)), "PNG"))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def animated(fmt: str, **options) -> bytes:
    frames = [Image.new("RGB", (24, 24), (value, value, value)) for value in (10, 200, 90)]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], **options)


def palette_with_transparency() -> bytes:
    img = Image.new("P", (16, 16), 0)
    img.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    img.paste(1, (8, 0, 16, 16))
    return encode(img, "PNG", transparency=0)


def cmyk_jpeg() -> bytes:
    return encode(Image.new("RGB", (32, 32), (255, 0, 0)).convert("CMYK"), "JPEG", quality=95)


def sixteen_bit_png() -> bytes:
    values = np.full((16, 16), 65535, dtype=np.uint16)
    values[:, :8] = 32768
    img = Image.fromarray(values)
    assert img.mode == "I;16"
    return encode(img, "PNG")


def float_tiff() -> bytes:
    return encode(Image.fromarray(np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16)), "TIFF")


def exif_rotated_jpeg() -> bytes:
    """40 wide × 20 tall, left half black, tagged orientation 6 (display rotated 90° clockwise)."""
    img = Image.new("L", (40, 20), 255)
    img.paste(0, (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(img, "JPEG", exif=exif.tobytes(), quality=95)


def gif_without_frames() -> bytes:
    screen = struct.pack("<HHBBB", 16, 16, 0, 0, 0)
    return b"GIF89a" + screen + b";"


PNG = encode(noise_rgb(), "PNG")
JPEG = encode(noise_rgb(), "JPEG", quality=90)
WEBP = encode(noise_rgb(), "WEBP", quality=90)

BAD = {
    "random bytes": (np.random.default_rng(1).bytes(2048), "not an image"),
    "empty file": (b"", "empty"),
    "text file": (b"hello, this is not a picture\n" * 20, "not an image"),
    "svg text": (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
        "not an image",
    ),
    "truncated png": (PNG[: len(PNG) // 2], "truncated"),
    "truncated jpeg": (JPEG[: len(JPEG) // 2], "truncated"),
    "png cut in header": (PNG[:30], ""),
    "bomb 30000x30000 header": (png_with_size(30000, 30000), "too large"),
    "bomb over max_pixels": (png_with_size(8000, 6000), "8000×6000 pixels (limit 40 MP)"),
    "real 1-bit 7000x7000": (encode(Image.new("1", (7000, 7000)), "PNG"), "too large"),
    "zero width": (png_with_size(0, 16), ""),
    "1x1": (encode(Image.new("RGB", (1, 1)), "PNG"), "too small: 1×1"),
    "4x4": (encode(Image.new("L", (4, 4)), "PNG"), "too small: 4×4"),
    "7x100": (encode(Image.new("L", (7, 100)), "BMP"), "too small"),
    "gif without frames": (gif_without_frames(), ""),
    "zip archive": (b"PK\x03\x04" + bytes(200), "not an image"),
    "pdf document": (b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n", "not an image"),
    "html page": (b"<!doctype html><html><body><img src=x></body></html>", "not an image"),
    "jpeg header only": (JPEG[:20], ""),
    "zero height": (png_with_size(16, 0), ""),
    "truncated webp": (WEBP[: len(WEBP) // 2], ""),
}


def unsupported_png() -> bytes:
    """A well-formed PNG whose header asks for 4-bit RGB, a pixel format PNG does not have."""
    data = bytearray(encode(Image.new("RGB", (16, 16)), "PNG"))
    data[24:26] = bytes([4, 2])  # bit depth 4, colour type 2 (RGB)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)

"""open_image on a generated corpus of good, odd and hostile files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cnn_core.errors import UserError
from cnn_core.images import (
    as_float_array,
    as_pil,
    decode_at,
    image_to_array,
    normalize_mode,
    open_image,
    read_header,
)
from tests.image_corpus import (
    BAD,
    PNG,
    animated,
    cmyk_jpeg,
    encode,
    exif_rotated_jpeg,
    float_tiff,
    noise_rgb,
    palette_with_transparency,
    sixteen_bit_png,
    unsupported_png,
)


@pytest.mark.parametrize("name", list(BAD))
def test_bad_inputs_raise_one_clear_user_error(name):
    data, expected = BAD[name]
    with pytest.raises(UserError) as info:
        open_image(data)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message and len(message) < 200


# name -> (bytes, expected mode, expected (width, height), check on the uint8 array or None)
GOOD = {
    "png rgb": (PNG, "RGB", (48, 32), lambda a: np.array_equal(a, np.asarray(noise_rgb()))),
    "8x8 minimum": (
        encode(Image.new("L", (8, 8), 7), "PNG"),
        "L",
        (8, 8),
        lambda a: (a == 7).all(),
    ),
    "animated gif": (animated("GIF"), None, (24, 24), lambda a: abs(int(a.flat[0]) - 10) <= 2),
    "animated webp": (animated("WEBP", lossless=True), "RGB", (24, 24), lambda a: (a == 10).all()),
    "apng": (animated("PNG"), "RGB", (24, 24), lambda a: (a == 10).all()),
    "cmyk jpeg": (
        cmyk_jpeg(),
        "RGB",
        (32, 32),
        lambda a: a[..., 0].min() > 230 and a[..., 1:].max() < 25,
    ),
    "16-bit png": (
        sixteen_bit_png(),
        "L",
        (16, 16),
        lambda a: (a[:, 8:] == 255).all() and (a[:, :8] == 128).all(),
    ),
    "palette + transparency": (
        palette_with_transparency(),
        "RGBA",
        (16, 16),
        lambda a: (a[:, :8, 3] == 0).all() and (a[:, 8:] == [0, 255, 0, 255]).all(),
    ),
    "palette opaque": (encode(Image.new("P", (16, 16), 3), "PNG"), "RGB", (16, 16), None),
    "LA": (
        encode(Image.new("LA", (16, 16), (100, 50)), "PNG"),
        "RGBA",
        (16, 16),
        lambda a: (a == [100, 100, 100, 50]).all(),
    ),
    "RGBA": (
        encode(Image.new("RGBA", (16, 16), (1, 2, 3, 4)), "PNG"),
        "RGBA",
        (16, 16),
        lambda a: (a == [1, 2, 3, 4]).all(),
    ),
    "1-bit": (
        encode(Image.new("1", (16, 16), 1), "PNG"),
        "L",
        (16, 16),
        lambda a: (a == 255).all(),
    ),
    "exif rotated jpeg": (
        exif_rotated_jpeg(),
        "L",
        (20, 40),
        lambda a: a[:18].mean() < 30 and a[22:].mean() > 225,  # left half → top after rotation
    ),
    "webp lossy": (encode(noise_rgb(), "WEBP", quality=80), "RGB", (48, 32), None),
    "bmp": (
        encode(noise_rgb(), "BMP"),
        "RGB",
        (48, 32),
        lambda a: np.array_equal(a, np.asarray(noise_rgb())),
    ),
    "tiff": (
        encode(noise_rgb(), "TIFF"),
        "RGB",
        (48, 32),
        lambda a: np.array_equal(a, np.asarray(noise_rgb())),
    ),
    "float tiff": (float_tiff(), "L", (16, 16), lambda a: a.min() == 0 and a.max() == 255),
    "grey jpeg": (
        encode(Image.new("L", (20, 20), 200), "JPEG"),
        "L",
        (20, 20),
        lambda a: abs(a.mean() - 200) < 2,
    ),
}


@pytest.mark.parametrize("name", list(GOOD))
def test_valid_inputs_decode_to_l_rgb_or_rgba(name):
    data, mode, size, check = GOOD[name]
    img = open_image(data)
    assert img.mode in ("L", "RGB", "RGBA")
    if mode is not None:
        assert img.mode == mode
    assert img.size == size
    if check is not None:
        assert check(image_to_array(img))


def test_paths_and_file_objects(tmp_path):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"not really a jpeg")
    with pytest.raises(UserError, match=r"^photo\.jpg: not an image PIL can read$"):
        open_image(photo)
    with pytest.raises(UserError, match="no such file"):
        open_image(tmp_path / "missing.png")
    with pytest.raises(UserError, match="folder"):
        open_image(str(tmp_path))
    good = tmp_path / "good.png"
    good.write_bytes(PNG)
    assert open_image(str(good)).size == (48, 32)
    with open(good, "rb") as fh:
        assert open_image(fh).mode == "RGB"
    with pytest.raises(UserError, match="^upload.png: truncated"):
        open_image(PNG[:-40], name="upload.png")
    with pytest.raises(UserError, match="cannot read an image"):
        open_image(12345)


def test_max_pixels_is_configurable():
    data = encode(Image.new("L", (100, 100)), "PNG")
    with pytest.raises(UserError, match=r"100×100 pixels \(limit 0.005 MP\)"):
        open_image(data, max_pixels=5000)
    assert open_image(data, max_pixels=10_000).size == (100, 100)


def test_array_helpers():
    assert normalize_mode(Image.new("I", (9, 9), 70000)).mode == "L"
    assert as_pil(np.zeros((9, 9, 1), dtype=bool)).mode == "L"
    assert as_pil(np.ones((3, 9, 9), dtype=np.float64)).mode == "RGB"
    values = as_float_array(np.array([[-1, 1], [0, 3]], dtype=np.int16))
    assert values.dtype == np.float32 and values.tolist() == [[0, 0.5], [0.25, 1]]  # min-max
    assert as_float_array(np.array([[np.nan, np.inf], [0.5, 1.0]])).tolist() == [[0, 0], [0.5, 1.0]]
    assert as_float_array(np.full((2, 2), -1.0, np.float32)).tolist() == [[0, 0], [0, 0]]  # flat
    for bad in (
        np.zeros(5),
        np.zeros((0, 4)),
        np.array(3),
        np.array([["a"]]),
        np.zeros((2, 2, 2, 2)),
    ):
        with pytest.raises(UserError, match="not an image"):
            as_float_array(bad)


def test_draft_decodes_a_big_jpeg_small_but_never_below_the_target_even_when_rotated():
    img = Image.new("RGB", (400, 200), (250, 10, 10))
    img.paste((10, 10, 250), (0, 0, 200, 200))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed 200 wide × 400 tall, blue on top
    data = encode(img, "JPEG", quality=95, exif=exif.tobytes())
    assert open_image(data).size == (200, 400)
    assert open_image(data, draft=(50, 100)).size == (50, 100)  # 1/4 scale covers 50×100
    assert open_image(data, draft=(60, 100)).size == (100, 200)  # 1/4 would not: 1/2
    small = np.asarray(decode_at(data, (10, 20)), dtype=int)
    assert (
        small.shape == (20, 10, 3) and small[:8, :, 2].min() > 200 and small[12:, :, 0].min() > 200
    )
    assert open_image(PNG, draft=(8, 8)).size == (48, 32)  # formats without draft: decoded whole


def test_read_header_gives_the_displayed_size_the_own_mode_and_the_format():
    header = read_header(exif_rotated_jpeg())
    assert (header.size, header.mode, header.format) == ((20, 40), "L", "JPEG")
    assert read_header(sixteen_bit_png()).mode == "I;16"
    with pytest.raises(UserError, match="too large"):
        read_header(BAD["bomb 30000x30000 header"][0])


def test_decode_at_picks_grey_or_colour_and_an_unknown_pixel_format_is_named():
    assert decode_at(sixteen_bit_png(), (8, 8)).mode == "L"
    assert decode_at(palette_with_transparency(), (8, 8)).mode == "RGB"
    assert decode_at(PNG, (8, 8), "L").size == (8, 8)
    with pytest.raises(UserError, match=r"^odd\.png: a PNG file PIL cannot decode \(damaged"):
        open_image(unsupported_png(), name="odd.png")

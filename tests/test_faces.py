"""Face detection and CelebA-style alignment on a real photograph (skimage's astronaut)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata  # scikit-image ships the test photographs

from cnn_core import faces
from cnn_core.errors import DataError

EYE_TOLERANCE = 6.0  # px in the 178×218 crop
BOX_ONLY_TOLERANCE = 10.0


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    """Eileen Collins, 512×512 RGB: one frontal face, eyes near (201, 101) and (247, 103)."""
    return Image.fromarray(skdata.astronaut())


@pytest.fixture(scope="module")
def upright(astronaut):
    """The upright photo's only face and its aligned crop."""
    (face,) = faces.detect_faces(astronaut)
    return face, faces.align_celeba(astronaut, face)


def crop_eyes(crop: Image.Image, targets=(faces.LEFT_EYE, faces.RIGHT_EYE)):
    """Eye centres re-detected by the eye cascade in an aligned crop (face box from the targets)."""
    (lx, ly), (rx, _) = targets
    side = (rx - lx) / (1 - 2 * faces.BOX_EYE_X)
    box = (
        round(lx - faces.BOX_EYE_X * side),
        round(ly - faces.BOX_EYE_Y * side),
        round(side),
        round(side),
    )
    eyes = faces.find_eyes(np.asarray(crop.convert("L")), box)
    assert eyes is not None, "no eyes found in the aligned crop"
    return eyes


def eye_errors(crop: Image.Image, targets=(faces.LEFT_EYE, faces.RIGHT_EYE)) -> list[float]:
    """Distances (px) of the re-detected eyes from the targets."""
    found = crop_eyes(crop, targets)
    return [math.dist(f, t) for f, t in zip(found, targets, strict=True)]


def test_one_face_found_at_the_right_place(upright):
    face, _ = upright
    x, y, w, h = face.box
    assert all(isinstance(v, int) for v in face.box)
    assert 160 <= x <= 195 and 50 <= y <= 85 and 80 <= w <= 115 and w == h
    assert math.dist(face.centre, (224, 113)) < 12
    assert face.angle == 0 and face.neighbours >= 5


def test_eyes_found(upright):
    face, _ = upright
    assert face.has_eyes
    assert math.dist(face.left_eye, (201, 101)) < 6
    assert math.dist(face.right_eye, (247, 103)) < 6
    assert face.eye_points() == (face.left_eye, face.right_eye)


def test_aligned_crop_puts_the_eyes_on_the_celeba_targets(upright):
    _, crop = upright
    assert crop.mode == "RGB" and crop.size == (178, 218)
    assert faces.is_celeba_aligned(crop)
    assert max(eye_errors(crop)) <= EYE_TOLERANCE


def rotated(image: Image.Image, angle: float) -> Image.Image:
    return image.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=(128, 128, 128))


def scaled(image: Image.Image, factor: float) -> Image.Image:
    return image.resize((round(image.width * factor), round(image.height * factor)), Image.LANCZOS)


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(lambda im: rotated(im, 15), id="rotated+15"),
        pytest.param(lambda im: rotated(im, -15), id="rotated-15"),
        pytest.param(lambda im: rotated(im, 25), id="rotated+25-found-in-rotated-view"),
        pytest.param(lambda im: scaled(im, 0.6), id="scaled0.6"),
        pytest.param(lambda im: scaled(im, 1.5), id="scaled1.5"),
        pytest.param(lambda im: scaled(im, 2.0), id="scaled2.0-downscaled-for-detection"),
    ],
)
def test_rotated_and_scaled_copies_align_to_the_same_crop(astronaut, upright, variant):
    image = variant(astronaut)
    (face,) = faces.detect_faces(image)
    assert face.has_eyes
    crop = faces.align_celeba(image, face)
    assert max(eye_errors(crop)) <= EYE_TOLERANCE
    diff = np.abs(np.asarray(crop, float) - np.asarray(upright[1], float)).mean()
    assert diff < 25, f"mean abs difference {diff:.1f}/255"


def test_a_strongly_tilted_face_is_found_in_a_rotated_view(astronaut):
    (face,) = faces.detect_faces(rotated(astronaut, -25))
    assert face.angle == pytest.approx(15)
    assert face.has_eyes and face.left_eye[1] < face.right_eye[1]  # head tilted clockwise


def test_box_only_fallback_gives_a_sensible_crop(upright, astronaut):
    face = dataclasses.replace(upright[0], left_eye=None, right_eye=None)
    assert not face.has_eyes
    crop = faces.align_celeba(astronaut, face)
    assert crop.size == (178, 218)
    assert max(eye_errors(crop)) <= BOX_ONLY_TOLERANCE


@pytest.mark.parametrize(
    "image",
    [
        pytest.param(lambda: skdata.coffee(), id="coffee"),
        pytest.param(
            lambda: np.random.default_rng(0).integers(0, 256, (300, 400, 3), np.uint8), id="noise"
        ),
        pytest.param(
            lambda: np.tile(np.linspace(0, 255, 400, dtype=np.uint8), (300, 1)), id="gradient"
        ),
        pytest.param(lambda: np.zeros((10, 12), np.uint8), id="tiny"),
    ],
)
def test_no_face_gives_an_empty_list(image):
    assert faces.detect_faces(image()) == []


def test_two_faces_are_listed_left_to_right(astronaut):
    collage = np.hstack([np.asarray(astronaut), np.asarray(astronaut)])
    left, right = faces.detect_faces(collage)
    assert abs(left.box[0] - 177) < 10 and abs(right.box[0] - (512 + 177)) < 10
    assert abs(left.box[1] - right.box[1]) < 5


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "float-array", "grey-array"])
def test_every_input_mode_works(astronaut, upright, mode):
    if mode == "float-array":
        image = np.asarray(astronaut, np.float32) / 255
    elif mode == "grey-array":
        image = np.asarray(astronaut.convert("L"))
    else:
        image = astronaut.convert(mode)
    (face,) = faces.detect_faces(image)
    assert math.dist(face.centre, upright[0].centre) < 8
    assert faces.align_celeba(image, face).mode == "RGB"


def test_transparent_pixels_become_white():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[0, 0] = (10, 20, 30, 255)
    rgb = faces.to_rgb_array(rgba)
    assert rgb.shape == (4, 4, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 0]) == (10, 20, 30) and (rgb[1:] == 255).all()


def test_located_faces_are_aligned_and_drawn(astronaut):
    located = faces.locate_faces(astronaut)
    ((face, crop),) = [(f.face, f.image) for f in located.inputs]
    assert located.mode == "aligned" and crop.size == (178, 218)
    drawn = faces.draw_faces(astronaut.convert("L"), [face])
    assert drawn.mode == "RGB" and drawn.size == astronaut.size
    x, y, w, h = face.box
    assert drawn.getpixel((x + w // 2, y)) == (0, 255, 0)
    assert drawn.getpixel((x + w // 2, y + h // 2)) != (0, 255, 0)


def test_other_output_sizes_scale_the_targets(astronaut, upright):
    crop = faces.align_celeba(astronaut, upright[0], output_size=(89, 109))
    assert crop.size == (89, 109)
    half = upright[1].resize((89, 109), Image.BILINEAR)
    assert np.abs(np.asarray(crop, float) - np.asarray(half, float)).mean() < 12


def test_is_celeba_aligned():
    assert faces.is_celeba_aligned(Image.new("RGB", (178, 218)))
    assert faces.is_celeba_aligned(np.zeros((218, 178, 3), np.uint8))
    assert not faces.is_celeba_aligned(Image.new("RGB", (218, 178)))
    assert not faces.is_celeba_aligned(np.zeros((512, 512), np.uint8))


LANDMARKS = """3
lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y
000001.jpg 69 109 106 113 77 142 73 152 108 154
000002.jpg 69 110 107 112 81 135 70 151 108 153
000003.jpg 72 115 111 117 91 133 75 152 110 156
"""


def test_eye_targets_come_from_the_landmarks_file(tmp_path):
    assert faces.celeba_eye_targets() == (faces.LEFT_EYE, faces.RIGHT_EYE)
    assert faces.celeba_eye_targets(tmp_path) == (faces.LEFT_EYE, faces.RIGHT_EYE)  # no file there
    (tmp_path / "celeba").mkdir()
    (tmp_path / "celeba" / faces.LANDMARKS_FILE).write_text(LANDMARKS)
    left, right = faces.celeba_eye_targets(tmp_path)
    assert left == pytest.approx((70, 334 / 3)) and right == pytest.approx((108, 114))


def test_a_broken_landmarks_file_is_a_data_error(tmp_path):
    (tmp_path / faces.LANDMARKS_FILE).write_text(LANDMARKS.replace("3\n", "5\n", 1))
    with pytest.raises(DataError, match="landmarks"):
        faces.celeba_eye_targets(tmp_path)


def test_aligning_with_explicit_targets(astronaut, upright):
    targets = ((60.0, 100.0), (118.0, 100.0))
    crop = faces.align_celeba(astronaut, upright[0], targets=targets)
    assert crop.size == (178, 218)
    assert max(eye_errors(crop, targets)) <= EYE_TOLERANCE

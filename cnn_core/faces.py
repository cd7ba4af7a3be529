"""Find faces in a photo and align them the way CelebA's ``img_align_celeba`` images were made.

Detection uses the Haar cascades shipped in the OpenCV wheel: ``frontalface_default`` for faces,
then ``eye`` (``eye_tree_eyeglasses`` as a second try) in the upper part of each face box. When
nothing is found upright the image is searched again rotated by ±15°, and eyes not found upright
are searched in the face patch rotated by ±15°.

Alignment is a similarity transform (rotation, uniform scale, shift) that puts the two eye
centres where CelebA's aligned 178×218 images have them on average. Without detected eyes,
the eye positions are estimated from the face box (``BOX_EYE_X``/``BOX_EYE_Y``). Parts of the
crop that fall outside the photo repeat its edge pixels (``cv2.BORDER_REPLICATE``) rather than
showing a flat grey block, so the crop has no artificial edge.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import cv2.data
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .data.transforms import CELEBA_FRAME
from .errors import DataError
from .images import as_pil
from .preprocess import default_face_box

# Mean eye centres of img_align_celeba (list_landmarks_align_celeba.txt, rounded), in pixels.
LEFT_EYE = (69.0, 111.0)
RIGHT_EYE = (108.0, 111.0)
# Eye centres as fractions of a Haar face box (left eye at BOX_EYE_X, right at 1 - BOX_EYE_X),
# calibrated on skimage's astronaut photo so that box-only alignment lands near eye alignment.
BOX_EYE_X = 0.26
BOX_EYE_Y = 0.375
LANDMARKS_FILE = "list_landmarks_align_celeba.txt"
MAX_SIDE = 800  # detection runs on a copy whose longer side is at most this
RETRY_ANGLES = (15.0, -15.0)
_PATCH = 160  # face boxes are resized to this many pixels for the eye search
_LOCK = threading.Lock()  # a CascadeClassifier must not run in two threads at once

Point = tuple[float, float]
ImageLike = Image.Image | np.ndarray


@dataclass(frozen=True)
class Face:
    """One detected face in input-image pixels.

    ``box`` is (x, y, w, h) (for a face found in a rotated view: the box of that view, centred
    on the face). ``left_eye`` is the eye on the image's left; both eyes are ``None`` unless both
    were found. ``angle``: counter-clockwise rotation (degrees) of the view the face was found
    in; ``neighbours``: merged cascade detections (higher = more certain).
    """

    box: tuple[int, int, int, int]
    left_eye: Point | None = None
    right_eye: Point | None = None
    neighbours: int = 0
    angle: float = 0.0

    @property
    def centre(self) -> Point:
        """The centre of the box."""
        return self.box[0] + self.box[2] / 2, self.box[1] + self.box[3] / 2

    @property
    def has_eyes(self) -> bool:
        """True when both eyes were detected (not estimated from the box)."""
        return self.left_eye is not None and self.right_eye is not None

    def eye_points(self) -> tuple[Point, Point]:
        """The detected eyes, or eye positions estimated from the box (and its view angle)."""
        if self.left_eye is not None and self.right_eye is not None:
            return self.left_eye, self.right_eye
        x, y, w, h = self.box
        back = _h(cv2.getRotationMatrix2D((x + w / 2, y + h / 2), -self.angle, 1.0))
        ey = y + BOX_EYE_Y * h
        return _pair(_apply(back, [(x + BOX_EYE_X * w, ey), (x + (1 - BOX_EYE_X) * w, ey)]))


@functools.cache
def _cascade(name: str) -> cv2.CascadeClassifier:
    """A Haar cascade from the OpenCV wheel, loaded once per process."""
    cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / name))
    if cascade.empty():
        raise RuntimeError(f"OpenCV cascade {name} could not be loaded")
    return cascade


def _detect(
    name: str, grey: np.ndarray, step: float, neighbours: int, **sizes
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (N×4) and neighbour counts from the named cascade, one thread at a time."""
    with _LOCK:
        boxes, counts = _cascade(name).detectMultiScale2(grey, step, neighbours, **sizes)
    return np.asarray(boxes).reshape(-1, 4), np.asarray(counts).reshape(-1)


def to_rgb_array(image: ImageLike) -> np.ndarray:
    """Any PIL image or array (see :func:`cnn_core.images.as_pil`) as H×W×3 uint8 RGB.

    Transparent pixels are composited over white.
    """
    pil = as_pil(image)
    if pil.mode == "RGBA":
        pil = Image.alpha_composite(Image.new("RGBA", pil.size, "white"), pil)
    return np.asarray(pil.convert("RGB"))


def _h(m: np.ndarray) -> np.ndarray:
    """A 2×3 affine matrix as 3×3 (so that transforms compose with ``@``)."""
    return np.vstack([m, [0.0, 0.0, 1.0]])


def _apply(m: np.ndarray, points: Iterable[Point]) -> list[Point]:
    """Points mapped through the 3×3 affine matrix ``m``."""
    return [(float(u), float(v)) for u, v, _ in np.array([(x, y, 1.0) for x, y in points]) @ m.T]


def _pair(points: list[Point]) -> tuple[Point, Point]:
    first, second = points
    return first, second


def _rotated(grey: np.ndarray, angle: float, expand: bool) -> tuple[np.ndarray, np.ndarray]:
    """``grey`` rotated counter-clockwise by ``angle`` (canvas grown to fit when ``expand``)."""
    h, w = grey.shape
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    if expand:
        cos, sin = abs(rot[0, 0]), abs(rot[0, 1])
        w, h = (math.ceil(w * cos + h * sin), math.ceil(w * sin + h * cos))
        rot[:, 2] += (w - grey.shape[1]) / 2, (h - grey.shape[0]) / 2
    return cv2.warpAffine(grey, rot, (w, h), borderMode=cv2.BORDER_REPLICATE), _h(rot)


def _pick_eyes(boxes: np.ndarray) -> list[Point] | None:
    """The most plausible (left, right) pair of eye boxes in a face patch."""
    centres = [(x + w / 2, y + h / 2) for x, y, w, h in boxes]
    ex, ey = BOX_EYE_X * _PATCH, BOX_EYE_Y * _PATCH
    expected = [(ex, ey), (_PATCH - ex, ey)]
    pairs = [
        [a, b]
        for a in centres
        for b in centres
        if 0.25 * _PATCH <= b[0] - a[0] <= 0.7 * _PATCH and abs(b[1] - a[1]) <= 0.3 * (b[0] - a[0])
    ]
    return min(pairs, key=lambda p: sum(map(math.dist, p, expected)), default=None)


def find_eyes(grey: np.ndarray, box: tuple[int, int, int, int]) -> tuple[Point, Point] | None:
    """Both eye centres (left, right) inside face ``box`` of a greyscale array, or None.

    The box is resized to a fixed patch; the eye cascades search its upper part, upright and
    then with the patch rotated by ±15°, and the first plausible pair is mapped back.
    """
    x0, y0, w, h = (int(v) for v in box)
    crop = grey[max(y0, 0) : y0 + h, max(x0, 0) : x0 + w]
    fx, fy = _PATCH / crop.shape[1], _PATCH / crop.shape[0]
    interpolation = cv2.INTER_AREA if fx < 1 else cv2.INTER_LINEAR
    patch = cv2.resize(crop, (_PATCH, _PATCH), interpolation=interpolation)
    to_patch = np.array([[fx, 0, -max(x0, 0) * fx], [0, fy, -max(y0, 0) * fy], [0, 0, 1]])
    top, bottom = int(0.1 * _PATCH), int(0.6 * _PATCH)  # the band of rows that holds the eyes
    for angle in (0.0, *RETRY_ANGLES):
        view, rot = _rotated(patch, angle, expand=False)
        for name in ("haarcascade_eye.xml", "haarcascade_eye_tree_eyeglasses.xml"):
            found, _ = _detect(name, view[top:bottom], 1.05, 3, minSize=(16, 16), maxSize=(53, 53))
            pair = _pick_eyes(found + [0, top, 0, 0])
            if pair is not None:
                return _pair(_apply(np.linalg.inv(rot @ to_patch), pair))
    return None


def _search(small: np.ndarray, angle: float, min_side: int, to_small: np.ndarray) -> list[Face]:
    """Faces (with eyes where found) in ``small`` rotated by ``angle``, in input coordinates."""
    view, to_view = _rotated(small, angle, expand=True)
    face_cascade = "haarcascade_frontalface_default.xml"
    boxes, counts = _detect(face_cascade, view, 1.1, 5, minSize=(min_side, min_side))
    back = np.linalg.inv(to_view @ to_small)
    faces = []
    for (x, y, w, h), count in zip(boxes, counts, strict=True):
        found = find_eyes(view, (x, y, w, h))
        left, right = _pair(_apply(back, found)) if found else (None, None)
        (cx, cy), *_ = _apply(back, [(x + w / 2, y + h / 2)])
        side = w * math.hypot(back[0, 0], back[0, 1])
        box = (round(cx - side / 2), round(cy - side / 2), round(side), round(side))
        faces.append(Face(box, left, right, neighbours=int(count), angle=angle))
    return faces


def detect_faces(image: ImageLike, *, min_face: float = 0.08) -> list[Face]:
    """Frontal faces in ``image`` (any PIL mode or array), sorted left to right.

    ``min_face`` is the smallest face side as a fraction of the image's shorter side (at least
    30 px on the detection copy). Large images are searched on a copy with longer side
    ``MAX_SIDE`` and the coordinates mapped back. When nothing is found upright, the image is
    searched again rotated by ±15° and overlapping finds keep the most certain one.
    """
    grey = cv2.cvtColor(to_rgb_array(image), cv2.COLOR_RGB2GRAY)
    scale = min(1.0, MAX_SIDE / max(grey.shape))
    small = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    to_small = np.diag([scale, scale, 1.0])  # exact: OpenCV scales by fx/fy, not the rounded size
    min_side = max(30, int(min_face * min(small.shape)))
    found = _search(small, 0.0, min_side, to_small)
    found = found or [f for a in RETRY_ANGLES for f in _search(small, a, min_side, to_small)]
    kept: list[Face] = []
    for face in sorted(found, key=lambda f: -f.neighbours):
        if all(math.dist(face.centre, k.centre) > 0.5 * max(face.box[2], k.box[2]) for k in kept):
            kept.append(face)
    return sorted(kept, key=lambda f: f.box[0])


@functools.cache
def _parse_landmarks(path: Path, mtime: float) -> tuple[Point, Point]:
    """Mean (left eye, right eye) of a CelebA aligned landmarks file (cached per file version)."""
    try:
        lines = path.read_text().splitlines()
        header = lines[1].split()
        cols = [header.index(n) + 1 for n in ("lefteye_x", "lefteye_y", "righteye_x", "righteye_y")]
        rows = np.array([[float(p[c]) for c in cols] for p in map(str.split, lines[2:]) if p])
        if len(rows) != int(lines[0]):
            raise ValueError(f"{len(rows)} rows but the first line says {lines[0].strip()}")
    except (IndexError, ValueError) as exc:
        raise DataError(f"{path} is not a CelebA landmarks file: {exc}") from exc
    lx, ly, rx, ry = rows.mean(axis=0)
    return (float(lx), float(ly)), (float(rx), float(ry))


def celeba_eye_targets(data_dir: str | Path | None = None) -> tuple[Point, Point]:
    """Mean (left, right) eye centres of CelebA's aligned 178×218 images.

    With ``data_dir`` holding ``list_landmarks_align_celeba.txt`` (directly, or in ``celeba/``
    or ``Anno/``) the means come from that file; otherwise ``LEFT_EYE`` and ``RIGHT_EYE``.
    """
    if data_dir is not None:
        for sub in ("", "celeba", "Anno", "celeba/Anno"):
            path = Path(data_dir) / sub / LANDMARKS_FILE
            if path.is_file():
                return _parse_landmarks(path.resolve(), path.stat().st_mtime)
    return LEFT_EYE, RIGHT_EYE


def align_celeba(
    image: ImageLike,
    face: Face,
    output_size: tuple[int, int] = CELEBA_FRAME,
    *,
    targets: tuple[Point, Point] | None = None,
) -> Image.Image:
    """An RGB crop of ``face`` with its eyes moved to the CelebA targets (default 178×218).

    ``targets`` defaults to ``celeba_eye_targets()``; for another ``output_size`` they are
    scaled with it. Eyes come from the detection or, failing that, from the box geometry.
    """
    rgb = to_rgb_array(image)
    tl, tr = targets or celeba_eye_targets()
    sx, sy = output_size[0] / CELEBA_FRAME[0], output_size[1] / CELEBA_FRAME[1]
    d0, d1 = complex(tl[0] * sx, tl[1] * sy), complex(tr[0] * sx, tr[1] * sy)
    s0, s1 = (complex(*p) for p in face.eye_points())
    z = (d1 - d0) / (s1 - s0)  # rotation and scale as one complex factor: dst = z·src + t
    t = d0 - z * s0
    matrix = np.array([[z.real, -z.imag, t.real], [z.imag, z.real, t.imag]])
    if abs(z) < 0.5:  # shrink with area averaging first so that the warp does not alias
        rgb = cv2.resize(rgb, None, fx=abs(z), fy=abs(z), interpolation=cv2.INTER_AREA)
        matrix[:, :2] /= abs(z)  # exact: OpenCV scales by fx/fy, not the rounded size
    out = cv2.warpAffine(
        rgb, matrix, tuple(output_size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return Image.fromarray(out, "RGB")


def is_celeba_aligned(image: ImageLike) -> bool:
    """True for a 178×218 image (already aligned like CelebA: pass it through unchanged)."""
    size = image.size if isinstance(image, Image.Image) else np.asarray(image).shape[1::-1]
    return tuple(size) == CELEBA_FRAME


@dataclass(frozen=True)
class FaceInput:
    """What a face model is given for one face: ``image`` framed by ``box`` (left, top, right,
    bottom; ``None`` = its CelebA-shaped centre), the input of ``prepare_face``."""

    title: str
    image: Image.Image
    box: tuple[int, int, int, int] | None = None
    face: Face | None = None  # the detection it came from (aligned faces only)

    def crop(self) -> Image.Image:
        """The framed part of ``image``."""
        return self.image.crop(self.box or default_face_box(*self.image.size))


@dataclass(frozen=True)
class LocatedFaces:
    """The faces of one photo and how they were chosen. ``mode``: "aligned" (detected and
    aligned like CelebA), "no-face" (nothing detected), "centre" (alignment off: the plain
    centre crop), "manual" (a given box) or "as-is" (178×218: already aligned like CelebA).
    ``shown`` is the photo with the numbered boxes."""

    mode: str
    shown: Image.Image
    inputs: list[FaceInput]


def _boxed(image: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    left, top, right, bottom = box
    return draw_faces(image, [Face((left, top, right - left, bottom - top))])


def locate_faces(
    image: ImageLike, *, align: bool = True, crop_box: tuple[int, int, int, int] | None = None
) -> LocatedFaces:
    """The model inputs of a photo: ``crop_box`` if given; else a 178×218 image as it is; else
    every detected face aligned like CelebA (``align``) or the plain centre crop (not ``align``)."""
    rgb = Image.fromarray(to_rgb_array(image))
    if crop_box is not None:
        left, top, right, bottom = (int(v) for v in crop_box)
        box = (left, top, right, bottom)
        return LocatedFaces("manual", _boxed(rgb, box), [FaceInput("your crop", rgb, box)])
    if is_celeba_aligned(rgb):
        return LocatedFaces("as-is", rgb, [FaceInput("as uploaded", rgb)])
    if not align:
        shown = _boxed(rgb, default_face_box(*rgb.size))
        return LocatedFaces("centre", shown, [FaceInput("centre crop", rgb)])
    faces = detect_faces(rgb)
    inputs = [
        FaceInput(f"face {i}", align_celeba(rgb, face), face=face)
        for i, face in enumerate(faces, start=1)
    ]
    return LocatedFaces("aligned" if faces else "no-face", draw_faces(rgb, faces), inputs)


@dataclass(frozen=True)
class ClassifiedFace:
    """One face of a photo through a face model: what it was given (``face``), the model input
    ``x`` [1, 3, S, S], the answer, and its Grad-CAM map at S×S (when asked for)."""

    face: FaceInput
    x: Any
    prediction: Any  # cnn_core.predict.Prediction
    heat: np.ndarray | None = None


def classify_faces(
    predictor: Any,
    image: ImageLike,
    *,
    align: bool = True,
    crop_box: tuple[int, int, int, int] | None = None,
    explain: bool = False,
) -> tuple[LocatedFaces, list[ClassifiedFace]]:
    """Detect → align → predict (→ Grad-CAM with ``explain``) every face of a photo with a
    :class:`~cnn_core.predict.Predictor`: the one pipeline of the Faces page and the CLI.
    See :func:`locate_faces` for ``align`` and ``crop_box``."""
    from .interpret import attribute
    from .predict import Prediction

    located = locate_faces(image, align=align, crop_box=crop_box)
    answers = []
    for face in located.inputs:
        start = time.perf_counter()
        x, _ = predictor.prepare(face.image, "face", crop_box=face.box)
        probs = predictor.predict_tensor(x)[0].tolist()
        best = int(np.argmax(probs))
        seconds = time.perf_counter() - start
        prediction = Prediction(best, predictor.class_names[best], probs, seconds=seconds)
        heat = attribute(predictor, x, "gradcam").map if explain else None
        answers.append(ClassifiedFace(face, x, prediction, heat))
    return located, answers


def draw_faces(image: ImageLike, faces: list[Face]) -> Image.Image:
    """An RGB copy of ``image`` with each face's box numbered 1, 2, … and its eyes marked."""
    out = Image.fromarray(to_rgb_array(image))
    draw = ImageDraw.Draw(out)
    width = max(2, round(max(out.size) / 250))
    font = ImageFont.load_default(size=max(12, 8 * width))
    for number, face in enumerate(faces, start=1):
        x, y, w, h = face.box
        draw.rectangle((x, y, x + w, y + h), outline=(0, 255, 0), width=width)
        draw.text((x + 2 * width, y + width), str(number), fill=(0, 255, 0), font=font, anchor="lt")
        for eye in face.eye_points() if face.has_eyes else ():
            r = 1.5 * width
            draw.ellipse((eye[0] - r, eye[1] - r, eye[0] + r, eye[1] + r), fill=(255, 0, 0))
    return out

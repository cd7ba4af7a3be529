"""Shared parts of the Draw and Faces pages: model picker, cached answers, face analysis, heatmaps.

Answers are cached on (checkpoint version, SHA-1 of the input bytes, options), so a rerun
with the same drawing or photo costs a dictionary look-up, not a forward pass.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

from cnn_core.errors import UserError
from cnn_core.faces import classify_faces, locate_faces
from cnn_core.images import open_image
from cnn_core.predict import Prediction, Predictor
from cnn_core.preprocess import default_face_box
from cnn_core.trained import TrainedModel
from ui import cache
from ui.cache import predictor
from ui.charts import probability_bars
from ui.widgets import show_user_error, to_display

PHOTO_TYPES = ["png", "jpg", "jpeg", "webp"]  # what the uploaders accept
SHOWN_SIDE = 900  # photos are shown (and cached) at most this many pixels a side
HEAT_SIDE = 192  # side at which the model input and its Grad-CAM overlay are shown


def digest(data: bytes) -> str:
    """The cache key of an input: SHA-1 of its bytes."""
    return hashlib.sha1(data).hexdigest()


def pick_model(choices: list[TrainedModel], key: str) -> TrainedModel:
    """A "Model" selectbox over ``choices`` (not empty) keeping its choice across reruns."""
    by_label = {c.label: c for c in choices}
    return by_label[st.selectbox("Model", list(by_label), key=key)]


def load_predictor(choice: TrainedModel) -> Predictor | None:
    """The cached Predictor of ``choice``, or None after showing why it cannot be loaded."""
    try:
        return predictor(choice.path)
    except (UserError, OSError) as exc:
        show_user_error(exc if isinstance(exc, UserError) else UserError(f"{choice.label}: {exc}"))
        return None


def describe_choice(choice: TrainedModel) -> str:
    """``**label** is answering: v3, trained on … · 98.2% (95% CI …) on held-out images``."""
    note = choice.note.split(" — ")[0]  # without the fallback's where-to-put-the-files advice
    trained = note if note.startswith("trained on") else f"trained on {choice.dataset}"
    if note and note != trained:
        trained += f" ({note})"
    accuracy = f" · {choice.accuracy_text}" if choice.accuracy_text else ""
    return f"**{choice.label}** is answering: {choice.model}, {trained}{accuracy}."


@st.cache_data(max_entries=256, show_spinner=False)
def _answer(path: str, mtime_ns: int, key: str, name: str, kind: str, _data: bytes) -> Prediction:
    """Decode and predict; ``key`` (the digest of ``_data``) stands for the bytes in the cache key."""
    return predictor(path).predict(_data, kind, name=name)


def answer(
    choice: TrainedModel, data: bytes, kind: str, name: str = "the drawing"
) -> Prediction | None:
    """``choice``'s cached answer for image file ``data``; None after showing a UserError."""
    try:
        return _answer(
            choice.path, Path(choice.path).stat().st_mtime_ns, digest(data), name, kind, data
        )
    except UserError as exc:
        show_user_error(exc)
    except OSError as exc:
        show_user_error(UserError(f"{choice.label}: checkpoint unavailable ({exc.strerror})"))
    return None


def probability_chart(
    class_names: Sequence[str], probs: Sequence[float], key: str, title: str = ""
) -> None:
    """:func:`ui.charts.probability_bars` with class names kept as categories ("0"-"9" too)."""
    fig = probability_bars(class_names, probs, title=title).update_yaxes(type="category")
    st.plotly_chart(fig, key=key, config={"displayModeBar": False})


@dataclass
class FaceAnswer:
    """One face (or crop) of a photo: what was cut out, what the model saw, what it said."""

    title: str
    crop: Image.Image
    model_input: np.ndarray | None = None  # S×S×3 uint8
    prediction: Prediction | None = None
    heat: np.ndarray | None = None  # Grad-CAM map at the model input size


@dataclass
class PhotoAnalysis:
    """A photo with its numbered boxes and one answer per face; ``mode`` says how faces were
    chosen (see :class:`cnn_core.faces.LocatedFaces`; "no-face": offer the manual crop)."""

    mode: str
    shown: Image.Image
    size: tuple[int, int]  # of the photo (``shown`` may be smaller)
    answers: list[FaceAnswer] = field(default_factory=list)


def analyse_photo(
    image: Image.Image,
    model: Predictor | None,
    *,
    align: bool = True,
    crop_box: tuple[int, int, int, int] | None = None,
) -> PhotoAnalysis:
    """Find, crop and classify the faces of a decoded photo (the Faces page, per file) with
    :func:`cnn_core.faces.classify_faces`; see :func:`cnn_core.faces.locate_faces` for
    ``align`` and ``crop_box``. Without a model: the faces found, unanswered."""
    if model is None:
        located = locate_faces(image, align=align, crop_box=crop_box)
        answers = [FaceAnswer(face.title, face.crop()) for face in located.inputs]
    else:
        with cache.model_lock():  # Grad-CAM hooks the shared cached model
            located, found = classify_faces(
                model, image, align=align, crop_box=crop_box, explain=True
            )
        answers = [
            FaceAnswer(a.face.title, a.face.crop(), to_display(a.x[0]), a.prediction, a.heat)
            for a in found
        ]
    result = PhotoAnalysis(located.mode, located.shown, image.size, answers)
    result.shown.thumbnail((SHOWN_SIDE, SHOWN_SIDE))
    return result


@st.cache_data(max_entries=32, show_spinner="Looking for faces…")
def _analysis(
    key: str,
    name: str,
    path: str | None,
    mtime_ns: int,
    align: bool,
    crop_box: tuple[int, int, int, int] | None,
    _data: bytes,
) -> PhotoAnalysis:
    """Decode and analyse; ``key`` (the digest of ``_data``) stands for the bytes in the cache key."""
    image = open_image(_data, name=name)
    return analyse_photo(image, predictor(path) if path else None, align=align, crop_box=crop_box)


def photo_analysis(
    data: bytes,
    name: str,
    choice: TrainedModel | None,
    *,
    align: bool = True,
    crop_box: tuple[int, int, int, int] | None = None,
) -> PhotoAnalysis:
    """:func:`analyse_photo` of image file ``data`` (decoded safely, UserError if it is not a
    usable image), cached on (its digest, the checkpoint version, the options)."""
    try:
        mtime_ns = Path(choice.path).stat().st_mtime_ns if choice else 0
    except OSError as exc:
        raise UserError(f"{choice.label}: checkpoint unavailable ({exc.strerror})") from None
    path = choice.path if choice else None
    return _analysis(digest(data), name, path, mtime_ns, align, crop_box, data)


def crop_sliders(size: tuple[int, int], key: str) -> tuple[int, int, int, int]:
    """Two range sliders for a manual crop box, starting at the default CelebA-shaped box."""
    width, height = size
    left, top, right, bottom = default_face_box(width, height)
    cols = st.columns(2)
    x0, x1 = cols[0].slider("Crop: left – right", 0, width, (left, right), key=f"{key}-x")
    y0, y1 = cols[1].slider("Crop: top – bottom", 0, height, (top, bottom), key=f"{key}-y")
    x0, y0 = min(x0, width - 1), min(y0, height - 1)  # at least one pixel either way
    return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)

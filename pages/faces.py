"""Faces: photos (uploads or the camera) → every face found, aligned like CelebA and
classified by a face model, with a Grad-CAM overlay of where the model looked."""

from collections.abc import Sequence

import numpy as np
import streamlit as st
from PIL import Image

from cnn_core import runs
from cnn_core.config import TrainConfig
from cnn_core.data import DATASETS
from cnn_core.errors import UserError
from cnn_core.recipes import smile_classifier
from cnn_core.trained import TrainedModel, trained_models
from ui.fetch_widgets import get_dataset_panel
from ui.predict_widgets import (
    HEAT_SIDE,
    PHOTO_TYPES,
    FaceAnswer,
    crop_sliders,
    describe_choice,
    digest,
    load_predictor,
    photo_analysis,
    pick_model,
    probability_chart,
)
from ui.router import ensure_routed
from ui.widgets import heat_overlay, show_user_error

ensure_routed()

CAPTIONS = {
    "aligned": "Numbered boxes: the faces found. Each is aligned like CelebA (eyes moved to where "
    "CelebA's faces have them) before the model sees it.",
    "centre": "Alignment off: the model sees the plain centre crop (the box), however the face sits.",
    "manual": "Your crop (the box).",
    "as-is": "178×218: already aligned like CelebA, used as it is.",
    "no-face": "No face found.",
}


def face_card(face: FaceAnswer, class_names: Sequence[str], opacity: float, key: str) -> None:
    """The crop, the model input under its Grad-CAM heatmap, and the answer."""
    cols = st.columns(3, vertical_alignment="center")
    cols[0].image(face.crop, caption=face.title, width="stretch")
    if face.prediction is None:
        return
    big = Image.fromarray(face.model_input).resize((HEAT_SIDE, HEAT_SIDE), Image.BICUBIC)
    overlay = heat_overlay(np.asarray(big), face.heat, opacity, cmap="jet")
    cols[1].image(overlay, caption="Grad-CAM: where it looked", width="stretch")
    probs = face.prediction.probabilities
    with cols[2]:
        if len(probs) == 2:  # a CelebA attribute: the probability that it is present
            st.metric(class_names[1], f"{probs[1]:.0%}")
            st.progress(probs[1], text=f"→ {face.prediction.class_name}")
        else:
            probability_chart(class_names, probs, key=f"faces_probs_{key}")


def show_photo(name: str, data: bytes, choice: TrainedModel | None, index: int) -> None:
    """One input file: its faces, or a clear error if it is not a usable image."""
    s = st.session_state
    st.markdown(f"**{name}**")
    try:
        result = photo_analysis(data, name, choice, align=s.faces_align)
        if result.mode == "no-face":
            st.warning("No face found. Frame it by hand with the sliders:", icon="🔍")
            box = crop_sliders(result.size, f"faces_crop_{index}_{digest(data)[:8]}")
            result = photo_analysis(data, name, choice, crop_box=box)
    except UserError as exc:
        show_user_error(exc)
        return
    left, right = st.columns(2, gap="large")
    left.image(result.shown, caption=CAPTIONS[result.mode])
    with right:
        for number, face in enumerate(result.answers):
            face_card(
                face,
                choice.class_names if choice else (),
                s.get("faces_opacity", 0.5),
                f"{index}_{number}",
            )


def train_smile_classifier(recipe: str) -> None:
    """Queue the chapter's smile classifier and open its run."""
    try:
        run_id = runs.submit(TrainConfig.from_dict(smile_classifier(recipe)))
    except UserError as exc:
        show_user_error(exc)
    else:
        st.session_state["run_id"] = run_id
        st.switch_page("pages/runs.py", query_params={"run": run_id})


def no_face_model() -> None:
    """No face model yet: train the smile classifier, or first get the faces to train on."""
    st.info(
        "No face model yet. Until there is one this page finds and aligns faces without "
        "classifying them."
    )
    for info in (i for i in DATASETS.values() if i.input_kind == "face"):
        if info.source_status()["available"]:
            cols = st.columns(2)
            if cols[0].button("Train the smile classifier (the book's v1)", type="primary"):
                train_smile_classifier("book")
            if cols[1].button("Train the smile classifier (fast-faces recipe)"):
                train_smile_classifier("fast-faces")
        else:
            get_dataset_panel(info, "faces_get")
    st.page_link("pages/train.py", label="Train a face model your way", icon="🚀")


st.title("Faces")
face_models = trained_models("face")
chosen = pick_model(face_models, "faces_model") if face_models else None
if chosen is None:
    no_face_model()
else:
    st.markdown(describe_choice(chosen))
    chosen = chosen if load_predictor(chosen) is not None else None

cols = st.columns(3)
cols[0].toggle(
    "Align faces like CelebA",
    value=True,
    key="faces_align",
    help="Off: the model sees the plain centre crop of each photo — compare the answers.",
)
if chosen is not None:  # without a model there is no Grad-CAM to blend
    cols[1].slider("Grad-CAM opacity", 0.0, 1.0, 0.5, 0.05, key="faces_opacity")
camera = cols[2].toggle("Use the camera", key="faces_camera")
uploads = st.file_uploader(
    "Photos with faces (group photos work too)",
    type=PHOTO_TYPES,
    accept_multiple_files=True,
    key="faces_upload",
)
shot = st.camera_input("Take a photo", key="faces_shot") if camera else None
inputs = [(u.name, u.getvalue()) for u in uploads or []] + (
    [("camera photo", shot.getvalue())] if shot else []
)
if not inputs:
    st.info("Upload one or more photos, or turn on the camera.", icon="📷")
for i, (file_name, content) in enumerate(inputs):
    with st.container(border=True):
        show_photo(file_name, content, chosen, i)

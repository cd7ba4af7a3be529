"""Draw: a digit on a pad (or a photo of one) → the model's answer as you draw, with the
MNIST preprocessing it went through, and the same input put to several models side by side."""

import numpy as np
import streamlit as st
from streamlit_drawable_canvas import st_canvas

from cnn_core.images import open_image
from cnn_core.trained import TrainedModel, digits_first, trained_models
from ui.explain_widgets import send_to_explain
from ui.predict_widgets import (
    PHOTO_TYPES,
    answer,
    describe_choice,
    load_predictor,
    pick_model,
    probability_chart,
)
from ui.router import ensure_routed
from ui.widgets import image_grid

ensure_routed()

PAD_SIDE = 320  # the toolbar covers a strip of its top right corner: the larger, the less
STEPS = {"ink": "ink", "cropped": "cropped", "fit_20x20": "20×20", "centred_28x28": "28×28"}


def clear_pad() -> None:
    """A new key gives a fresh, empty pad."""
    st.session_state["draw_pad"] = st.session_state.get("draw_pad", 0) + 1


def drawing() -> tuple[bytes, str] | None:
    """The pad with its stroke width and Clear button; the drawing as PNG bytes, or None."""
    cols = st.columns([2, 1], vertical_alignment="bottom")
    width = cols[0].slider("Stroke width", 6, 40, 20, key="draw_stroke")
    cols[1].button("Clear", icon=":material/ink_eraser:", on_click=clear_pad)
    pad = st_canvas(
        stroke_width=width,
        stroke_color="#000000",
        background_color="#ffffff",
        width=PAD_SIDE,
        height=PAD_SIDE,
        return_image_data=True,
        key=f"draw_pad_{st.session_state.get('draw_pad', 0)}",
    )
    st.caption(
        "Start each stroke on the pad, below its top edge: the pad's toolbar (undo, redo, "
        "reset) sits over the top right corner, and a stroke begun under it draws nothing."
    )
    if not (pad.json_data or {}).get("objects") or not pad.image_bytes:
        return None
    return pad.image_bytes, "the drawing"


def photo() -> tuple[bytes, str] | None:
    """An uploaded photo of a handwritten digit as (bytes, file name), or None."""
    upload = st.file_uploader(
        "Photo of a handwritten digit (dark ink on light paper)", type=PHOTO_TYPES, key="draw_photo"
    )
    return (upload.getvalue(), upload.name) if upload else None


def square(image: np.ndarray) -> np.ndarray:
    """``image`` padded with black to a centred square, so that thin crops show at a sane size."""
    h, w = image.shape
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    return np.pad(image, ((top, side - h - top), (left, side - w - left)))


def show_answer(choice: TrainedModel, data: bytes, name: str) -> bool:
    """The answer, all class probabilities and the preprocessing steps; False if no answer."""
    pred = answer(choice, data, "canvas", name)
    if pred is None:
        return False
    if pred.empty:
        st.info("No ink found yet: draw a digit with a darker, thicker stroke.", icon="✏️")
        return False
    cols = st.columns(2)
    cols[0].metric("The model says", pred.class_name)
    cols[1].metric("Confidence", f"{max(pred.probabilities):.1%}")
    probability_chart(choice.class_names, pred.probabilities, key="draw_probs")
    st.caption(
        "What the model sees: the ink is cropped, fitted into 20×20 and centred by its mass in "
        f"28×28, as MNIST was made. Preprocessing + forward pass: {pred.seconds * 1000:.0f} ms."
    )
    image_grid([square(pred.steps[k]) for k in STEPS], list(STEPS.values()), columns=4, width=72)
    if st.button("Explain this answer", icon=":material/search:", key="draw_explain"):
        x, _ = load_predictor(choice).prepare(open_image(data, name=name), "canvas")
        send_to_explain(choice.path, x, f"{name} (what the model saw)")
    return True


def compare(choices: list[TrainedModel], data: bytes, name: str) -> None:
    """One probability chart per chosen model for the same input."""
    st.subheader("Ask several models")
    if len(choices) < 2:
        st.caption("Once a digits or Fashion-MNIST run has finished, compare its answers here.")
        return
    labels = [c.label for c in choices]
    picked = st.multiselect(
        "Models", labels, key="draw_compare", placeholder="Choose models to answer side by side"
    )
    by_label = {c.label: c for c in choices}
    for start in range(0, len(picked), 3):
        for col, label in zip(st.columns(3), picked[start : start + 3], strict=False):
            with col:
                pred = answer(by_label[label], data, "canvas", name)
                if pred is not None and not pred.empty:
                    names = by_label[label].class_names
                    probability_chart(names, pred.probabilities, f"draw_compare_{label}", label)


@st.fragment
def pad_and_answer(choice: TrainedModel, choices: list[TrainedModel]) -> None:
    """Input and answer; a new stroke reruns only this fragment, not the whole page."""
    source = st.segmented_control(
        "Input", ["Draw", "Photo"], default="Draw", required=True, key="draw_source"
    )
    left, right = st.columns(2, gap="large")
    with left:
        given = drawing() if source == "Draw" else photo()
    with right:
        if given is None:
            hint = "Draw a digit on the pad" if source == "Draw" else "Upload a photo of a digit"
            st.info(f"{hint}: the answer appears here as soon as there is one.", icon="👈")
            return
        answered = show_answer(choice, *given)
    if answered:
        compare(choices, *given)


st.title("Draw a digit")
digit_models = digits_first(trained_models("canvas"))
if not digit_models:
    st.info(
        "No digits model yet: no MNIST or Fashion-MNIST run has finished and the shipped demo "
        "model is missing (`python -m cnn_core demo-model` rebuilds it)."
    )
    st.page_link("pages/train.py", label="Train one", icon="🚀")
    st.stop()
chosen = pick_model(digit_models, "draw_model")
st.markdown(describe_choice(chosen))
if not chosen.reads_digits:
    st.caption(f"This model recognises {chosen.recognises}, not digits: draw one of its classes.")
if load_predictor(chosen) is not None:
    pad_and_answer(chosen, digit_models)

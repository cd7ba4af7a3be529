"""Explain page helpers: model options, cached attributions, heatmap overlays, tile grids.

Attributions and their deletion curves are cached on (checkpoint path + mtime, SHA-1 of the
input, method, target, parameters). Work on a shared model runs under
``ui.cache.model_lock``: Captum and the feature-map code attach hooks that must not fire in
another session's pass.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image, ImageDraw, ImageFont

from cnn_core import interpret
from cnn_core.models import feature_layers
from cnn_core.predict import Predictor
from cnn_core.trained import TrainedModel, trained_models
from ui import cache
from ui.charts import frame, probability_bars, run_colour
from ui.widgets import heat_overlay, to_display

DATASET, DRAWN, UPLOAD = "Dataset sample", "Drawn digit", "Upload an image"  # input sources
CHEAP = ("saliency", "guided_backprop", "gradcam")  # milliseconds: computed without asking
METHOD_NAMES = {"smoothgrad": "SmoothGrad", "gradcam": "Grad-CAM"}  # others: title case
LABEL_HEIGHT = 14
GAP = 4


class Explanation(NamedTuple):
    """One cached attribution and its deletion curve."""

    attribution: interpret.Attribution
    curve: list[tuple[float, float]]


def model_options() -> dict[str, TrainedModel]:
    """Every model to explain (:func:`cnn_core.trained.trained_models`), by key."""
    return {m.key: m for m in trained_models()}


def send_to_explain(path: str, x: torch.Tensor, label: str) -> None:
    """Open the Explain page on input ``x`` [1, C, S, S] with the model of checkpoint ``path``."""
    state = st.session_state
    state.update(explain_input=x.numpy(), explain_input_label=label, ex_source=DRAWN)
    key = next((k for k, o in model_options().items() if o.path == path), None)
    if key is not None:
        state["ex_model"] = key
    st.switch_page("pages/explain.py")


EXPLAINED = "image from Explain"  # the Convolution page's input source for Explain's image


def keep_explained(x: torch.Tensor, caption: str) -> None:
    """Remember the image Explain shows ([1, C, S, S]) for the Convolution page's filter link."""
    st.session_state["explained_image"] = (x.numpy(), caption)


def explained() -> tuple[np.ndarray, str] | None:
    """The image Explain showed last in this session, [1, C, S, S], and its caption."""
    return st.session_state.get("explained_image")


def method_name(method: str) -> str:
    """``integrated_gradients`` → ``Integrated Gradients``, ``gradcam`` → ``Grad-CAM``."""
    return METHOD_NAMES.get(method) or method.replace("_", " ").title()


def input_key(x: torch.Tensor) -> str:
    """SHA-1 of an input tensor's shape and float32 values: its cache key."""
    values = x.detach().float().cpu().contiguous().numpy()
    return hashlib.sha1(str(values.shape).encode() + values.tobytes()).hexdigest()


@st.cache_data(max_entries=256, show_spinner="Computing the attribution…")
def _explain(
    path: str,
    mtime_ns: int,
    key: str,
    method: str,
    target: int | None,
    params: str,
    _x: torch.Tensor,
) -> Explanation:
    model = cache.predictor(path)
    with cache.model_lock():
        attribution = interpret.attribute(model, _x, method, target, **json.loads(params))
        curve = interpret.deletion_curve(model, _x, attribution.map, attribution.target)
    return Explanation(attribution, curve)


def explain(
    path: str, x: torch.Tensor, method: str, target: int | None, params: dict[str, Any]
) -> Explanation:
    """The cached :func:`interpret.attribute` of one image plus its deletion curve."""
    mtime_ns = Path(path).stat().st_mtime_ns
    return _explain(path, mtime_ns, input_key(x), method, target, json.dumps(params), x)


def explanations(
    requests: Sequence[tuple[str, str, int | None, dict[str, Any]]],
    x: torch.Tensor,
    label: str,
    key: str,
) -> list[Explanation] | None:
    """:func:`explain` for each ``(path, method, target, params)``. Methods outside ``CHEAP``
    run only once the ``label`` button was clicked for these requests (remembered for the
    session); until then the button is shown and None returned."""
    heavy = {(p, input_key(x), m, t, json.dumps(o)) for p, m, t, o in requests if m not in CHEAP}
    done = st.session_state.setdefault("ex_requested", set())
    if not heavy <= done:  # the click is recorded before the rerun, which then computes
        icon = ":material/play_arrow:"
        st.button(label, key=key, type="primary", icon=icon, on_click=done.update, args=(heavy,))
        return None
    return [explain(path, x, method, target, params) for path, method, target, params in requests]


def method_params(method: str, predictor: Predictor) -> dict[str, Any]:
    """Widgets for the settings worth changing: Grad-CAM's layer, Occlusion's window and stride
    (other methods keep the defaults of ``interpret.METHODS``)."""
    cols = st.columns(2)
    if method == "gradcam":
        layers = [name for name, _ in feature_layers(predictor.model)]
        default = layers.index(interpret.gradcam_layer(predictor))
        return {"layer": cols[0].selectbox("Layer", layers, default, key="ex_cam_layer")}
    if method == "occlusion":
        size = predictor.image_size
        largest = max(2, size // 2)
        stride = cols[1].slider("Stride (px)", 1, largest, max(1, size // 14), key="ex_occ_stride")
        window = cols[0].slider("Window (px)", 1, largest, 2 * stride, key="ex_occ_window")
        return {"window": window, "stride": stride}
    return {}


def feature_map(predictor: Predictor, x: torch.Tensor, layer: str) -> torch.Tensor:
    """One layer's output ``[C, H, W]`` for ``x`` (under the model lock)."""
    with cache.model_lock():
        return interpret.feature_maps(predictor, x, [layer])[layer]


# ---- images ---------------------------------------------------------------------------------
def rgb(x: torch.Tensor) -> np.ndarray:
    """A model input [1, C, S, S] as an S×S×3 uint8 image."""
    image = to_display(x[0])
    return np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image


def upscale(image: np.ndarray, side: int = 196) -> np.ndarray:
    """``image`` enlarged by a whole factor to about ``side`` px (nearest: pixels stay crisp)."""
    factor = max(1, side // max(image.shape[:2]))
    return image.repeat(factor, axis=0).repeat(factor, axis=1)


def overlay(image: np.ndarray, attribution: interpret.Attribution, opacity: float) -> np.ndarray:
    """``image`` (S×S×3 uint8) with the coloured attribution map blended on top, each pixel
    weighted by ``opacity`` × its normalised strength."""
    return heat_overlay(image, attribution.map, opacity, signed=attribution.signed)


def tile_grid(
    tiles: np.ndarray | torch.Tensor, labels: Sequence[str], side: int = 64, columns: int = 8
) -> np.ndarray:
    """Tiles ``[N, H, W]`` (grey) or ``[N, 3, H, W]`` (colour) in [0, 1] as one uint8 mosaic:
    each enlarged (nearest) to about ``side`` px, labelled above, in rows of ``columns``."""
    big = [upscale(to_display(np.asarray(tile, dtype=np.float32)), side) for tile in tiles]
    height, width = big[0].shape[:2]
    columns = min(columns, len(big))
    rows = -(-len(big) // columns)
    canvas = Image.new(
        "RGB",
        (columns * (width + GAP) - GAP, rows * (height + LABEL_HEIGHT + GAP) - GAP),
        "white",
    )
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default()
    for i, (tile, label) in enumerate(zip(big, labels, strict=True)):
        row, col = divmod(i, columns)
        left, top = col * (width + GAP), row * (height + LABEL_HEIGHT + GAP)
        draw.text((left, top + 1), label, fill=(60, 60, 60), font=font)
        canvas.paste(Image.fromarray(tile), (left, top + LABEL_HEIGHT))
    return np.asarray(canvas)


# ---- panels ---------------------------------------------------------------------------------
def prediction_panel(
    x: torch.Tensor, caption: str, class_names: list[str], probs: list[float]
) -> None:
    """The input (enlarged) next to the predicted class, its confidence and every probability."""
    best = int(np.argmax(probs))
    left, right = st.columns([1, 2], vertical_alignment="center")
    left.image(upscale(rgb(x)), caption=caption)
    cols = right.columns(2)
    cols[0].metric("Predicted class", class_names[best])
    cols[1].metric("Confidence", f"{probs[best]:.1%}")
    fig = probability_bars(class_names, probs).update_yaxes(type="category")
    right.plotly_chart(fig, key="ex_probs", config={"displayModeBar": False})


def across_row(
    label: str,
    x: torch.Tensor,
    attribution: interpret.Attribution,
    class_names: list[str],
    probs: list[float],
    opacity: float,
) -> None:
    """One model of the across-runs view: name, input, heatmap, answer and time taken."""
    target = attribution.target
    with st.container(border=True):
        cols = st.columns([3, 1, 1, 2], vertical_alignment="center")
        cols[0].markdown(f"**{label}**")
        cols[1].image(upscale(rgb(x), 112), caption="input")
        cols[2].image(upscale(overlay(rgb(x), attribution, opacity), 112), caption="heatmap")
        cols[3].markdown(
            f"predicts **{class_names[target]}** · {probs[target]:.1%}  \n"
            f"{method_name(attribution.method)} in {attribution.seconds * 1000:.0f} ms"
        )


# ---- figures and text -----------------------------------------------------------------------
def heatmap_figure(attribution: interpret.Attribution) -> go.Figure:
    """The raw attribution map with a colour bar (values on hover), coloured like the overlay."""
    amap = attribution.map
    if attribution.signed:
        limit = float(np.abs(amap).max()) or 1.0
        trace = go.Heatmap(z=amap, colorscale="RdBu_r", zmid=0, zmin=-limit, zmax=limit)
    else:
        trace = go.Heatmap(z=amap, colorscale="Inferno")
    fig = go.Figure(trace)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    fig.update_layout(height=240, margin={"t": 5, "b": 5, "l": 5, "r": 5})
    return fig


def deletion_figure(curves: dict[str, Sequence[tuple[float, float]]], class_name: str) -> go.Figure:
    """Probability of ``class_name`` as the most-attributed pixels are removed: one line per
    method, AUC in the legend; a curve named "random order" is drawn as a grey dashed baseline."""
    fig = go.Figure()
    for i, (name, curve) in enumerate(curves.items()):
        line = (
            {"color": "#999999", "dash": "dash"}
            if name == "random order"
            else {"color": run_colour(i)}
        )
        fig.add_scatter(
            x=[f for f, _ in curve],
            y=[p for _, p in curve],
            name=f"{name} · AUC {interpret.deletion_auc(curve):.3f}",
            mode="lines+markers",
            line=line,
        )
    fig.update_layout(
        xaxis={"title": "share of pixels removed (most attributed first)", "tickformat": ".0%"},
        yaxis={"title": f"probability of {class_name}", "range": [0, 1.02], "tickformat": ".0%"},
    )
    return frame(fig, 380)


def shape_text(shape: Sequence[int]) -> str:
    return "×".join(str(n) for n in shape)


def flow_chain(flow: Sequence[dict[str, Any]], highlight: str) -> str:
    """The network as ``input 1×28×28 → conv1 32×28×28 → …`` (markdown), ``highlight`` marked."""
    parts = []
    for row in flow:
        part = f"**{row['name']}** {shape_text(row['output_shape'])}"
        parts.append(f":orange-background[{part}]" if row["name"] == highlight else part)
    return " → ".join(parts)

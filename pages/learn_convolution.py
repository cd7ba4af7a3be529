"""Learn · Convolution: slide a kernel over a small matrix, a dataset image or a drawn digit,
with padding, stride and dilation, one output position at a time, in 2-D and in 1-D.
Every control lives in the query string (``?kernel=learned&run=ID&filter=3`` is how Explain
links a learned filter here)."""

import numpy as np
import pandas as pd
import streamlit as st
import torch

from cnn_core.concepts.convolution import (
    KERNELS,
    MAX_SIDE,
    PADDINGS,
    Geometry,
    conv1d,
    conv2d,
    output_size,
    pad_amounts,
    parse_matrix,
    receptive_field,
)
from cnn_core.config import TrainConfig
from cnn_core.data import DataSpec
from cnn_core.errors import ConfigError
from cnn_core.models import conv_layers
from ui import explain_widgets as xw
from ui import learn_charts as lc
from ui import learn_widgets as lw
from ui.learn_widgets import Control
from ui.router import ensure_routed

ensure_routed()

SOURCES = ("small matrix", "dataset image", "drawn digit", xw.EXPLAINED)
LEARNED, CUSTOM = "learned filter", "custom"
RING = "0 0 0 0 0 0\n0 1 1 1 1 0\n0 1 0 0 1 0\n0 1 0 0 1 0\n0 1 1 1 1 0\n0 0 0 0 0 0"
OPERATIONS = ("cross-correlation", "true convolution")
VIEWS = ("2-D playground", "1-D: y[i] = Σ x[i−k] w[k]")
LINK = lw.Linked(
    "cv_",
    {
        "view": Control(VIEWS[0], VIEWS),
        "source": Control("small matrix", SOURCES),
        "matrix": Control(RING),
        "dataset": Control("fashion-mnist", lw.LEARN_DATASETS),
        "index": Control(0, low=0, high=99_999),
        "kernel": Control("Sobel x", (*KERNELS, CUSTOM, LEARNED)),
        "weights": Control("1 0 -1\n1 0 -1\n1 0 -1"),
        "run": Control(lw.DEMO_KEY),
        "filter": Control(0, low=0, high=4095),
        "op": Control(OPERATIONS[0], OPERATIONS),
        "padding": Control("valid", PADDINGS),
        "p": Control(1, low=0, high=MAX_SIDE),
        "stride": Control(1, low=0, high=8),
        "dilation": Control(1, low=1, high=4),
        "step": Control(0, low=0, high=MAX_SIDE**2),
        "x1": Control("0 1 2 3 4 5 6"),
        "w1": Control("1 0 -1"),
        "pad1": Control("full", PADDINGS),
        "i1": Control(0, low=0, high=999),
    },
)
key = LINK.key


def choose_input() -> np.ndarray:
    """The input matrix from the chosen source (ConfigError when it is unusable)."""
    source = st.radio("Input", SOURCES, horizontal=True, key=key("source"))
    if source == "small matrix":
        text = st.text_area("Input matrix (one row per line)", key=key("matrix"), height=140)
        return parse_matrix(text, "input matrix")
    if source == "dataset image":
        cols = st.columns(2)
        name = cols[0].selectbox("Dataset", lw.LEARN_DATASETS, key=key("dataset"))
        cols[1].number_input("Validation image #", 0, 99_999, key=key("index"))
        x, caption = lw.dataset_image(DataSpec.of(TrainConfig(dataset=name)), LINK.value("index"))
        st.caption(caption)
        return x[0, 0].numpy()
    if source == xw.EXPLAINED:
        if (shown := xw.explained()) is None:
            raise ConfigError("input", "no image explained in this session: open one in Explain")
        st.caption(f"{shown[1]} (channel 0)" if shown[0].shape[1] > 1 else shown[1])
        return shown[0][0, 0].astype(np.float64)
    if "explain_input" not in st.session_state:
        raise ConfigError(
            "input",
            "no drawn digit in this session: draw one on the Draw page, press Explain there",
        )
    st.caption(st.session_state.get("explain_input_label") or "drawn digit")
    return torch.as_tensor(st.session_state["explain_input"])[0, 0].float().numpy()


def choose_kernel() -> tuple[np.ndarray, str]:
    """The kernel (as written) and its name."""
    name = st.selectbox("Kernel", list(LINK.controls["kernel"].choices), key=key("kernel"))
    if name == CUSTOM:
        return parse_matrix(st.text_area("Kernel weights", key=key("weights")), "kernel"), name
    if name != LEARNED:
        return np.array(KERNELS[name], dtype=np.float64), name
    model, predictor = lw.pick_model(LINK)
    convs = conv_layers(predictor.model)
    if not convs:
        raise ConfigError("run", f"{model.label} has no convolution layers")
    layer, conv = convs[0]
    LINK.clamp("filter", 0, conv.out_channels - 1)
    index = st.number_input(f"{layer} filter #", 0, conv.out_channels - 1, key=key("filter"))
    explain = {"run": LINK.value("run")}
    st.page_link("pages/explain.py", label="All its filters in Explain", query_params=explain)
    if conv.in_channels > 1:
        st.caption(f"{layer} takes {conv.in_channels} input channels: its slice for channel 0.")
    return conv.weight[index, 0].detach().double().cpu().numpy(), f"{layer} #{index}"


def choose_geometry() -> Geometry:
    padding = st.radio("Padding", PADDINGS, horizontal=True, key=key("padding"))
    cols = st.columns(3)
    cols[0].number_input("p (each side)", 0, MAX_SIDE, key=key("p"), disabled=padding != "custom")
    cols[1].number_input("Stride s", 0, 8, key=key("stride"))
    cols[2].number_input("Dilation d", 1, 4, key=key("dilation"))
    st.radio("Operation", OPERATIONS, horizontal=True, key=key("op"))
    return Geometry(padding, LINK.value("p"), LINK.value("stride"), LINK.value("dilation"))


def playground() -> None:
    cols = st.columns(3, gap="medium")
    with cols[0]:
        x = lw.guarded(st.container(), choose_input)
    with cols[1]:
        kernel = lw.guarded(st.container(), choose_kernel)
    with cols[2]:
        geometry = choose_geometry()
        geometry_slot = st.container()
    if x is None or kernel is None:
        return
    w, kernel_name = kernel
    flip = LINK.value("op") == OPERATIONS[1]
    sizes = lw.guarded(
        geometry_slot,
        lambda: [output_size(n, k, geometry) for n, k in zip(x.shape, w.shape, strict=True)],
    )
    if sizes is None:
        return
    st.markdown(
        "Output size ⌊(n + 2p − d(k−1) − 1)/s⌋ + 1 · "
        + " · ".join(
            lc.formula(n, k, geometry, axis)
            for n, k, axis in zip(x.shape, w.shape, "HW", strict=True)
        )
    )
    count = sizes[0] * sizes[1]
    LINK.clamp("step", 0, count - 1)
    if count > 1:
        st.slider("Output position (step through)", 0, count - 1, key=key("step"))
    i, j = divmod(LINK.value("step"), sizes[1])
    out = conv2d(x, w, geometry, flip=flip)
    other = conv2d(x, w, geometry, flip=not flip)
    terms = receptive_field(x, w, (i, j), geometry, flip=flip)
    (top, bottom), (left, right) = (
        pad_amounts(w.shape[0], geometry),
        pad_amounts(w.shape[1], geometry),
    )
    padded = np.pad(x, ((top, bottom), (left, right)))
    cells = [(t.cell[0] + top, t.cell[1] + left) for t in terms]
    applied = w[::-1, ::-1] if flip else w
    figs = st.columns([3, 2, 3])
    with figs[0]:
        lc.chart(
            lc.heatmap(
                padded,
                f"input {x.shape[0]}×{x.shape[1]}, padded",
                cells=cells,
                frame=(top, left, bottom, right),
            ),
            "cv_fig_input",
        )
    with figs[1]:
        lc.chart(
            lc.heatmap(
                applied,
                f"{kernel_name} as applied{' (flipped)' if flip else ''}",
                numbers=True,
                colorscale="RdBu",
            ),
            "cv_fig_kernel",
        )
    with figs[2]:
        lc.chart(
            lc.heatmap(out, f"{LINK.value('op')} {sizes[0]}×{sizes[1]}", cells=[(i, j)]),
            "cv_fig_output",
        )
    st.markdown(lc.equation(terms, float(out[i, j]), f"y[{i},{j}]"))
    with st.expander(f"The {len(terms)} multiply-adds of y[{i},{j}]"):
        st.dataframe(lc.terms_table(terms), hide_index=True)
    differ = float(np.abs(out - other).max())
    st.caption(
        f"True convolution flips the kernel by 180° before sliding it (the chapter's "
        f"y = Σ x[i−k]·w[k]); cross-correlation slides it as written — what torch.nn.Conv2d "
        f"computes. Here they differ by up to {differ:.3g}: "
        + (
            "equal, because this kernel is symmetric under a 180° turn."
            if differ < 1e-12
            else "a learned kernel just comes out flipped, so a network does not care which one it uses."
        )
    )


def one_dimensional() -> None:
    cols = st.columns([3, 2, 2])
    slot = cols[0].container()
    x_text = cols[0].text_input("x", key=key("x1"))
    w_text = cols[1].text_input("w", key=key("w1"))
    padding = cols[2].selectbox("Padding", PADDINGS[:3], key=key("pad1"))
    geometry = Geometry(padding)

    def compute() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x, w = parse_matrix(x_text, "x", ndim=1), parse_matrix(w_text, "w", ndim=1)
        return x, w, conv1d(x, w, geometry)

    done = lw.guarded(slot, compute)
    if done is None:
        return
    x, w, y = done
    LINK.clamp("i1", 0, len(y) - 1)
    st.slider("i", 0, max(len(y) - 1, 1), key=key("i1"), disabled=len(y) == 1)
    i = LINK.value("i1")
    terms = receptive_field(x, w, (i,), geometry, flip=True)
    shift = pad_amounts(len(w), Geometry("full"))[0] - pad_amounts(len(w), geometry)[0]
    st.markdown(
        f"y[{i}] = Σₖ x[{i + shift}−k]·w[k] = "
        + " + ".join(f"x[{t.cell[0]}]·w[{t.kernel_cell[0]}]" for t in reversed(terms))
        + " = "
        + " + ".join(f"({t.x:.3g})·({t.w:.3g})" for t in reversed(terms))
        + f" = **{y[i]:.4g}**"
    )
    st.dataframe(pd.DataFrame([y], index=["y"]).round(4))
    st.caption(
        f"{padding}: {len(y)} outputs from {len(x)} inputs and {len(w)} weights "
        "(x outside its range counts as 0). 'full' is numpy.convolve's default."
    )


st.title("Convolution, step by step")
LINK.restore()
view = lw.pick_view(LINK)
with lw.timed("This view"):
    if view == VIEWS[0]:
        playground()
    else:
        one_dimensional()
LINK.publish()

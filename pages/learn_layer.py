"""Learn · A real layer: one output channel of a trained conv layer recomputed by hand
(Σ over input channels of each channel's convolution, + bias, [BatchNorm], → ReLU) and
compared with the layer's own output; max/mean pooling and global average pooling of the
real feature map; a dropout mask on it in train vs eval mode. Controls live in the URL."""

import pandas as pd
import streamlit as st
from torch import nn

from cnn_core.concepts.pooling import POOLS, global_average_pool, pool2d, pool_window
from cnn_core.concepts.regularization import dropout
from cnn_core.errors import ConfigError
from cnn_core.models import conv_layers, feature_layers
from ui import learn_charts as lc
from ui import learn_widgets as lw
from ui.learn_widgets import Control
from ui.router import ensure_routed

ensure_routed()

VIEWS = ("Forward pass", "Pooling", "Global average pooling", "Dropout")
LINK = lw.Linked(
    "ly_",
    {
        "view": Control(VIEWS[0], VIEWS),
        "run": Control(lw.DEMO_KEY),
        "index": Control(0, low=0, high=99_999),
        "layer": Control("conv1"),
        "channel": Control(0, low=0, high=4095),
        "input": Control(0, low=0, high=4095),
        "pool": Control("max", POOLS),
        "size": Control(2, low=1, high=8),
        "stride": Control(2, low=1, high=8),
        "step": Control(0, low=0, high=99_999),
        "p": Control(0.5, low=0.0, high=0.95),
        "seed": Control(0, low=0, high=9999),
        "train": Control(True),
    },
)
key = LINK.key


def choose():
    """Model, image, conv layer and output channel; the by-hand result (ConfigError if unusable)."""
    cols = st.columns([4, 2, 2, 2], vertical_alignment="bottom")
    with cols[0]:
        model, predictor = lw.pick_model(LINK)
    convs = dict(conv_layers(predictor.model))
    if not convs:
        raise ConfigError("model", f"{model.label} has no convolution layers to compute by hand")
    if LINK.value("layer") not in convs:
        st.session_state[key("layer")] = next(iter(convs))
    cols[1].number_input("Validation image #", 0, 99_999, key=key("index"))
    layer = cols[2].selectbox("Conv layer", list(convs), key=key("layer"))
    count = convs[layer].out_channels
    LINK.clamp("channel", 0, count - 1)
    cols[3].number_input(f"Output channel k (0–{count - 1})", 0, count - 1, key=key("channel"))
    _, caption = lw.run_image(predictor, LINK.value("index"))
    st.caption(f"Input: {caption}")
    return (
        model,
        predictor,
        lw.by_hand(model.path, LINK.value("index"), layer, LINK.value("channel")),
    )


def forward_pass(result) -> None:
    c_in = result.contributions.shape[0]
    k = result.channel
    bias = f"{result.bias:+.4f}" if result.bias else "0 (no bias: BatchNorm's shift replaces it)"
    st.markdown(
        f"**Z[:, :, {k}] = Σ_c W[:, :, c, {k}] ⋆ X[:, :, c] + b[{k}]** over the {c_in} input "
        f"channels of {result.layer}, b[{k}] = {bias}"
        + (
            f" · BatchNorm (eval): Z·{result.normalised[0]:.4f} {result.normalised[1]:+.4f}"
            if result.normalised
            else ""
        )
        + " · **A = ReLU(·)**"
    )
    LINK.clamp("input", 0, c_in - 1)
    c = st.slider("Input channel c", 0, c_in - 1, key=key("input")) if c_in > 1 else 0
    cols = st.columns(3)
    weight = result.contributions[c]
    with cols[0]:
        lc.chart(lc.heatmap(result.layer_input[c], f"X[:, :, {c}]"), "ly_fig_x")
    with cols[1]:
        lc.chart(lc.heatmap(result.weight[c], f"W[:, :, {c}, {k}]", colorscale="RdBu"), "ly_fig_w")
    with cols[2]:
        lc.chart(lc.heatmap(weight, f"X_{c} ⋆ W_{c},{k}", colorscale="RdBu"), "ly_fig_xw")
    cols = st.columns(3)
    with cols[0]:
        lc.chart(lc.heatmap(result.z, f"Z: Σ of {c_in} + bias", colorscale="RdBu"), "ly_fig_z")
    if result.a is not None:
        with cols[1]:
            lc.chart(lc.heatmap(result.a, "A = ReLU, by hand"), "ly_fig_a")
        with cols[2]:
            lc.chart(lc.heatmap(result.a_layer, "the layer's own output"), "ly_fig_own")
    st.metric("Max |by hand − layer|", f"{result.max_difference:.2e}")
    explain = {"run": LINK.value("run")}
    st.page_link(
        "pages/explain.py", label="Every feature map of this model in Explain", query_params=explain
    )
    st.caption(
        "The sum runs in float64 here and float32 in the network: the difference is rounding."
    )


def pooling(result) -> None:
    fmap = result.a if result.a is not None else result.z
    cols = st.columns(3)
    mode = cols[0].radio("Pooling", POOLS, horizontal=True, key=key("pool"))
    cols[1].number_input("Window", 1, 8, key=key("size"))
    cols[2].number_input("Stride", 1, 8, key=key("stride"))
    size, stride = LINK.value("size"), LINK.value("stride")
    slot = st.container()
    pooled = lw.guarded(slot, pool2d, fmap, size, stride, mode)
    if pooled is None:
        return
    overlap = "overlapping windows" if stride < size else "non-overlapping windows"
    count = pooled.size
    LINK.clamp("step", 0, count - 1)
    if count > 1:
        st.slider("Output position", 0, count - 1, key=key("step"))
    i, j = divmod(LINK.value("step"), pooled.shape[1])
    rows, cols_, top = pool_window(fmap, size, stride, (i, j))
    window = [(r, c) for r in range(rows.start, rows.stop) for c in range(cols_.start, cols_.stop)]
    figs = st.columns(2)
    with figs[0]:
        title = f"A {fmap.shape[0]}×{fmap.shape[1]} ({overlap})"
        lc.chart(lc.heatmap(fmap, title, cells=window), "ly_fig_pool_in")
    with figs[1]:
        title = f"{mode} pool {size}×{size}/{stride}: {pooled.shape[0]}×{pooled.shape[1]}"
        lc.chart(lc.heatmap(pooled, title, cells=[(i, j)]), "ly_fig_pool_out")
    picked = f"the maximum sits at {top}" if mode == "max" else f"the mean of {size * size} cells"
    st.markdown(f"out[{i},{j}] = **{pooled[i, j]:.4g}**: {picked}.")


def global_average(model: lw.LearnedModel, predictor, layer: str) -> None:
    layers = feature_layers(predictor.model)
    names = [name for name, _ in layers]
    later = layers[names.index(layer) :]
    relu = next((name for name, module in later if isinstance(module, nn.ReLU)), layer)
    maps = lw.maps(model.path, LINK.value("index"), relu)
    vector = global_average_pool(maps)
    st.markdown(
        f"Global average pooling turns the {maps.shape[0]} maps of {relu}, "
        f"{maps.shape[1]}×{maps.shape[2]} into one vector of {len(vector)} numbers (each "
        "channel's mean) — what the smile network and v3/v4 feed to their classifier."
    )
    st.bar_chart(pd.DataFrame({"channel mean": vector}), height=220)


def dropout_view(result) -> None:
    fmap = result.a if result.a is not None else result.z
    cols = st.columns(3)
    cols[0].slider("Dropout p", 0.0, 0.95, step=0.05, key=key("p"))
    cols[1].number_input("Mask seed", 0, 9999, key=key("seed"))
    training = cols[2].toggle("Training mode (off = eval)", key=key("train"))
    mask, out = dropout(fmap, LINK.value("p"), LINK.value("seed"), training)
    figs = st.columns(3)
    with figs[0]:
        lc.chart(lc.heatmap(fmap, "A"), "ly_fig_drop_in")
    with figs[1]:
        lc.chart(lc.heatmap(mask.astype(float), f"mask: {mask.mean():.0%} kept"), "ly_fig_mask")
    with figs[2]:
        lc.chart(lc.heatmap(out, "output"), "ly_fig_drop_out")
    scale = 1 / (1 - LINK.value("p"))
    st.caption(
        f"Training: each unit is zeroed with probability p and the survivors are multiplied by "
        f"1/(1−p) = {scale:.2f}, so the expected sum stays {fmap.sum():.2f} (this mask: "
        f"{out.sum():.2f}). Eval: nothing is dropped or scaled — model.eval() switches it off."
        if training
        else "Eval mode: the mask keeps everything and the output is A itself (model.eval())."
    )


st.title("A conv layer, by hand")
LINK.restore()
with lw.timed("This view"):
    chosen = lw.guarded(st.container(), choose)
    if chosen is not None:
        model, predictor, result = chosen
        view = lw.pick_view(LINK)
        if view == VIEWS[0]:
            forward_pass(result)
        elif view == VIEWS[1]:
            pooling(result)
        elif view == VIEWS[2]:
            global_average(model, predictor, result.layer)
        else:
            dropout_view(result)
LINK.publish()

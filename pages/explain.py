"""Explain: feature maps, filters, Captum attributions and their faithfulness for one input,
and the same input across several runs. ``?run=ID&split=val&index=7`` (Compare's links) opens
that image of the run's data; the Draw page may leave a float tensor [1, C, S, S] in
``st.session_state["explain_input"]`` with a caption in ``"explain_input_label"``."""

import json
import random
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import streamlit as st
import torch

from cnn_core import interpret
from cnn_core.errors import UserError
from cnn_core.evaluation import run_data_spec
from cnn_core.models import conv_layers, feature_layers
from cnn_core.predict import Predictor
from cnn_core.trained import TrainedModel
from ui import cache
from ui import explain_widgets as xw
from ui.diagram import model_blocks, show_diagram
from ui.router import ensure_routed
from ui.widgets import NOTHING, optional_select, show_user_error

ensure_routed()

DATASET, DRAWN, UPLOAD = xw.DATASET, xw.DRAWN, xw.UPLOAD


class Input(NamedTuple):
    """The image being explained: ``x`` [1, C, S, S] in [0, 1] and how to describe it."""

    x: torch.Tensor
    caption: str
    split: str | None = None
    index: int | None = None


def open_link(options: dict[str, TrainedModel]) -> None:
    """Apply ``?run=&split=&index=`` once per link: preselect that model and dataset image."""
    link = tuple(st.query_params.get(k) for k in ("run", "split", "index"))
    state = st.session_state
    if link == state.get("ex_link"):
        return
    state["ex_link"] = link
    run, split, index = link
    if run in options:
        state["ex_model"] = run
    elif run:
        st.warning(f"Run {run} is not a finished run with a checkpoint: pick a model below.")
    if split or index:
        state["ex_source"] = DATASET
        state["ex_split"] = split
        state["ex_index"] = int(index) if (index or "").isdigit() else 0


def move(labels: list[int], how: str) -> None:
    """Callback: jump to a random / the next / the first image of the chosen class."""
    state = st.session_state
    wanted = state.get("ex_class", NOTHING)
    pool = [i for i, y in enumerate(labels) if wanted == NOTHING or y == wanted]
    current = state.get("ex_index", 0)
    if pool and how == "random":
        state["ex_index"] = random.choice(pool)
    elif pool and how == "next":
        state["ex_index"] = next((i for i in pool if i > current), pool[0])
    elif pool and current not in pool:
        state["ex_index"] = pool[0]


def dataset_input(option: TrainedModel) -> Input | None:
    """An image of the model's own dataset: test split if there is one, else val."""
    try:
        data = cache.dataset(run_data_spec(option.config))
    except UserError as exc:
        show_user_error(exc)
        st.info("This model's dataset is not available here: upload an image instead.")
        return None
    splits = ["test", "val"] if data.test is not None else ["val"]
    cols = st.columns([3, 4, 3, 2, 2], vertical_alignment="bottom")
    split = cols[0].selectbox("Split", splits, key="ex_split")
    images = data.split(split)
    labels, names = images.labels.tolist(), data.class_names
    if st.session_state.get("ex_index", 0) >= len(labels):
        st.warning(f"The {split} split has {len(labels)} images: showing #0.")
        st.session_state["ex_index"] = 0
    optional_select(
        cols[1],
        "Class",
        range(len(names)),
        "any class",
        "ex_class",
        names.__getitem__,
        on_change=move,
        args=(labels, "first"),
    )
    index = cols[2].number_input("Index", 0, len(labels) - 1, key="ex_index")
    cols[3].button("Random", icon=":material/casino:", on_click=move, args=(labels, "random"))
    cols[4].button("Next", icon=":material/skip_next:", on_click=move, args=(labels, "next"))
    x = data.transform.eval(images.images[index : index + 1])
    return Input(x, f"{split} #{index} · true class: {names[labels[index]]}", split, index)


def upload_input(predictor: Predictor) -> Input | None:
    """An uploaded photo, prepared as the model's input kind says: a digit photo the MNIST way,
    a face with CelebA's crop, anything else resized as it is."""
    kind = predictor.input_kind
    upload = st.file_uploader(
        f"Image (prepared as: {kind})", type=["png", "jpg", "jpeg", "webp", "bmp"], key="ex_upload"
    )
    if upload is None:
        st.info("Upload a photo of a digit or a face.", icon="📷")
        return None
    try:
        x, _ = predictor.prepare(
            predictor.open_input(upload.getvalue(), kind, name=upload.name), kind
        )
    except UserError as exc:
        show_user_error(exc)
        return None
    if x is None:
        st.info("No ink found in this image: try a darker, thicker digit.", icon="✏️")
        return None
    return Input(x, f"{upload.name} (prepared as: {kind})")


def choose_input(option: TrainedModel, predictor: Predictor) -> Input | None:
    """The input source picker and the chosen source's controls."""
    sources = [DATASET, *([DRAWN] if "explain_input" in st.session_state else []), UPLOAD]
    st.session_state.setdefault("ex_source", DRAWN if DRAWN in sources else DATASET)
    source = st.radio("Input", sources, horizontal=True, key="ex_source")
    if source == DATASET:
        given = dataset_input(option)
    elif source == DRAWN:
        label = st.session_state.get("explain_input_label") or "drawn digit"
        given = Input(torch.as_tensor(st.session_state["explain_input"]).float(), label)
    else:
        given = upload_input(predictor)
    if given is None:
        return None
    expected = (predictor.in_channels, predictor.image_size, predictor.image_size)
    if tuple(given.x.shape[1:]) != expected:
        st.warning(
            f"This input is {xw.shape_text(given.x.shape[1:])} but {option.label} expects "
            f"{xw.shape_text(expected)} images: pick a model trained on images like it."
        )
        return None
    return given


def guarded(tab: Callable[..., Any], *args: Any) -> Any:
    """Run one tab; a UserError (or an unreadable checkpoint) becomes a message in that tab."""
    try:
        return tab(*args)
    except (UserError, OSError) as exc:
        show_user_error(exc if isinstance(exc, UserError) else UserError(str(exc)))
        return None


def feature_maps_tab(predictor: Predictor, x: torch.Tensor) -> None:
    """A layer's output channels as a grid, under the shape flow of the whole network."""
    flow = interpret.shape_flow(predictor, x.shape[1:])
    shapes = {row["name"]: xw.shape_text(row["output_shape"]) for row in flow}
    layers = [name for name, _ in feature_layers(predictor.model)]
    cols = st.columns([3, 3, 2], vertical_alignment="bottom")
    layer = cols[0].selectbox(
        "Layer", layers, format_func=lambda n: f"{n} · {shapes[n]}", key="ex_layer"
    )
    st.markdown(xw.flow_chain(flow, layer))
    fmap = xw.feature_map(predictor, x, layer)
    count = fmap.shape[0]
    shown = cols[1].slider("Channels shown", 1, count, min(count, 32), key=f"ex_shown_{count}")
    by_activation = cols[2].toggle("Sort by mean activation", key="ex_sort")
    indices, maps = interpret.pick_channels(fmap, limit=shown, by_activation=by_activation)
    means = fmap.flatten(1).mean(1)
    tiles = (maps - maps.min()) / max(float(maps.max() - maps.min()), 1e-12)
    st.image(xw.tile_grid(tiles, [f"#{c}  {means[c]:+.2f}" for c in indices], side=84, columns=10))
    st.caption(f"{layer}: {count} channels of {shapes[layer]} on one scale (#channel, mean).")


def filters_tab(predictor: Predictor, run: str, given: Input) -> None:
    """First-layer kernels as images; a deeper kernel as the grid of its input slices; a link
    to apply a kernel to the image shown (or recompute a channel) step by step on the Learn
    pages."""
    convs = {name: xw.shape_text(conv.weight.shape) for name, conv in conv_layers(predictor.model)}
    cols = st.columns(2, vertical_alignment="bottom")
    layer = cols[0].selectbox(
        "Conv layer", list(convs), format_func=lambda n: f"{n} · {convs[n]}", key="ex_conv"
    )
    kernels = interpret.filters(predictor, layer)
    out, inputs = kernels.shape[:2]
    if inputs in (1, 3):  # first layer: each kernel is a small grey or colour image
        tiles, labels = (kernels[:, 0] if inputs == 1 else kernels), [f"#{o}" for o in range(out)]
        text = f"The {out} kernels of {layer}: the pattern each output channel responds to."
        pick = cols[1].number_input("Filter #", 0, out - 1, 0, key="ex_apply_filter")
        learn = ("pages/learn_convolution.py", f"Apply filter #{pick} step by step")
        query = {"kernel": "learned filter", "run": run, "filter": str(pick)}
        query["source"] = xw.EXPLAINED  # to this very image
        xw.keep_explained(given.x, given.caption)
    else:
        channel = cols[1].slider("Output channel", 0, out - 1, 0, key=f"ex_out_{layer}")
        tiles, labels = kernels[channel], [f"in {i}" for i in range(inputs)]
        text = (
            f"Output channel {channel} of {layer} adds up its {inputs} input channels, each "
            "filtered by one of these kernels (black = most negative, white = most positive)."
        )
        learn = ("pages/learn_layer.py", f"Recompute channel {channel} of {layer} by hand")
        query = {"run": run, "layer": layer, "channel": str(channel)}
    st.image(xw.tile_grid(tiles, labels, side=48, columns=16))
    st.caption(text)
    st.page_link(learn[0], label=learn[1], icon=":material/school:", query_params=query)


def attributions_tab(
    option: TrainedModel, predictor: Predictor, x: torch.Tensor, best: int
) -> int | None:
    """Method, target class and settings; input, overlay and raw map with the time taken.
    Returns the chosen target (None = the predicted class)."""
    names = predictor.class_names
    cols = st.columns(3)
    method = cols[0].selectbox(
        "Method", list(interpret.METHODS), format_func=xw.method_name, key="ex_method"
    )
    target = optional_select(
        cols[1],
        "Explain class",
        range(len(names)),
        f"predicted: {names[best]}",
        "ex_target",
        names.__getitem__,
    )
    opacity = cols[2].slider("Heatmap opacity", 0.0, 1.0, 0.6, 0.05, key="ex_opacity")
    title = xw.method_name(method)
    request = (option.path, method, target, xw.method_params(method, predictor))
    done = xw.explanations([request], x, f"Compute {title}", "ex_compute")
    if done is None:
        st.caption(f"{title} takes longer than the gradient methods: it runs on request.")
        return target
    a = done[0].attribution
    cols = st.columns(3, vertical_alignment="center")
    cols[0].image(xw.upscale(xw.rgb(x)), caption="input")
    cols[1].image(xw.upscale(xw.overlay(xw.rgb(x), a, opacity)), caption=f"{title} overlay")
    heatmap = xw.heatmap_figure(a)  # theme=None: the colours of the overlay, unthemed
    cols[2].plotly_chart(heatmap, theme=None, key="ex_heatmap", config={"displayModeBar": False})
    colours = "red = evidence for, blue = against" if a.signed else "brighter = more important"
    st.caption(
        f"{title} for class {names[a.target]} · {colours} · computed in {a.seconds * 1000:.0f} ms"
    )
    return target


def faithfulness_tab(
    option: TrainedModel, predictor: Predictor, x: torch.Tensor, target: int | None
) -> None:
    """Deletion curves of several methods overlaid, AUC in the legend, random order as baseline."""
    methods = st.multiselect(
        "Methods",
        list(interpret.METHODS),
        list(xw.CHEAP),
        format_func=xw.method_name,
        key="ex_faith",
    )
    requests = [(option.path, m, target, {}) for m in methods]
    done = xw.explanations(requests, x, "Compute the slower methods", "ex_faith_compute")
    if not done:
        return
    resolved = done[0].attribution.target
    named = {xw.method_name(m): d for m, d in zip(methods, done, strict=True)}
    timings = ", ".join(f"{n} {d.attribution.seconds * 1000:.0f} ms" for n, d in named.items())
    curves = {name: d.curve for name, d in named.items()}
    noise = np.random.default_rng(0).random(tuple(x.shape[-2:]))
    curves["random order"] = interpret.deletion_curve(predictor, x, noise, resolved)
    st.plotly_chart(xw.deletion_figure(curves, predictor.class_names[resolved]), key="ex_deletion")
    st.caption(
        "Pixels are set to 0 in order of attribution, 5 % at a time: the faster the probability "
        f"falls, the more faithful the map (lower AUC). Default settings. Time: {timings}."
    )


def across_tab(
    options: dict[str, TrainedModel], option: TrainedModel, x: torch.Tensor, opacity: float
) -> None:
    """The same input and method for several runs (those taking this image size), one row each."""
    geometry = (x.shape[1], x.shape[-1])
    fitting = {k: o for k, o in options.items() if o.geometry and o.geometry[:2] == geometry}
    if skipped := len(options) - len(fitting):
        st.caption(f"{skipped} model(s) take other image sizes or channels: not offered here.")
    state = st.session_state
    lead = state.get("ex_across_lead")
    if lead != option.key or "ex_across" not in state:  # the page's model leads the rows
        kept = [
            k for k in state.get("ex_across", []) if k in fitting and k not in (lead, option.key)
        ]
        state["ex_across"] = [option.key, *kept]
        state["ex_across_lead"] = option.key
    cols = st.columns([3, 1])
    picked = cols[0].multiselect(
        "Models", list(fitting), format_func=lambda k: fitting[k].label, key="ex_across"
    )
    methods = list(interpret.METHODS)
    method = cols[1].selectbox(
        "Method", methods, methods.index("gradcam"), xw.method_name, key="ex_across_method"
    )
    st.caption("Each model explains its own predicted class with the method's default settings.")
    requests = [(fitting[k].path, method, None, {}) for k in picked]
    done = xw.explanations(requests, x, f"Compute for {len(picked)} model(s)", "ex_across_compute")
    for key, explained in zip(picked, done or [], strict=False):
        predictor = cache.predictor(fitting[key].path)
        probs = predictor.predict_tensor(x)[0].tolist()
        xw.across_row(
            fitting[key].label, x, explained.attribution, predictor.class_names, probs, opacity
        )


st.title("Explain")
options = xw.model_options()
if not options:
    st.info("No finished run yet, and the shipped demo model is missing: train a model first.")
    st.page_link("pages/train.py", label="Go to Train", icon="🚀")
    st.stop()
open_link(options)
option = options[
    st.selectbox("Model", list(options), format_func=lambda k: options[k].label, key="ex_model")
]
try:
    predictor = cache.predictor(option.path)
except (UserError, OSError) as exc:
    show_user_error(exc if isinstance(exc, UserError) else UserError(f"{option.label}: {exc}"))
    st.stop()
if option.accuracy_text:
    st.caption(f"{option.label}: {option.accuracy_text}.")
with st.expander("Network diagram", icon=":material/account_tree:"):
    spec = predictor.config.model_spec
    show_diagram(
        model_blocks(
            predictor.config.model,
            json.dumps(spec or ""),
            predictor.in_channels,
            predictor.image_size,
            len(predictor.class_names),
        ),
        key="ex_diagram",
    )
given = choose_input(option, predictor)
link = {"run": option.key} | (
    {"split": given.split, "index": str(given.index)} if given and given.split else {}
)
st.query_params.from_dict(link)
st.session_state["ex_link"] = tuple(link.get(k) for k in ("run", "split", "index"))
if given is None:
    st.stop()
probs = predictor.predict_tensor(given.x)[0].tolist()
xw.prediction_panel(given.x, given.caption, predictor.class_names, probs)
tabs = st.tabs(["Feature maps", "Filters", "Attributions", "Faithfulness", "Across runs"])
with tabs[0]:
    guarded(feature_maps_tab, predictor, given.x)
with tabs[1]:
    guarded(filters_tab, predictor, option.key, given)
with tabs[2]:
    target = guarded(attributions_tab, option, predictor, given.x, int(np.argmax(probs)))
with tabs[3]:
    guarded(faithfulness_tab, option, predictor, given.x, target)
with tabs[4]:
    guarded(across_tab, options, option, given.x, st.session_state.get("ex_opacity", 0.6))

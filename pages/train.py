"""Train: build a TrainConfig from widgets, show the architecture, queue the run."""

import json

import pandas as pd
import streamlit as st

from cnn_core import runs
from cnn_core.config import TrainConfig, config_class, field_error, knobs
from cnn_core.data import DATASETS, input_geometry
from cnn_core.errors import ConfigError, UserError
from cnn_core.formats import duration
from cnn_core.models import describe_model, resolve_model_spec
from cnn_core.recipes import check_fits, recipe_fields, recipe_names
from cnn_core.resolve import batch_note, planned_batch, small_data_settings, training_time
from cnn_core.settings import browser_data_dir, ray_address, resolve_data_dir
from ui import cache
from ui.config_form import field_widget, group_fields, shown, state_values, to_widget
from ui.diagram import model_blocks, show_diagram
from ui.router import ensure_routed

ensure_routed()
PREFIX = "t_"


def launch_error(field: str, value: object = None) -> None:
    """Show the launch error next to the widget it belongs to while the widget still holds
    the value it was about (and does not already say why that value is not allowed)."""
    err = st.session_state.get("train_error")
    widget_says = field in knobs() and field_error(field, value)
    if err and err[0] == field and err[2] == value and not widget_says:
        st.error(err[1], icon="🚫")


def fill(values: dict) -> None:
    """Put config ``values`` into their widgets (before the widgets are drawn)."""
    s = st.session_state
    for field, value in values.items():
        s[PREFIX + field] = to_widget(field, value, DATASETS[s.t_dataset])


def data_config() -> TrainConfig:
    """The data fields the widgets hold now (what sizes depend on), as a config."""
    values = state_values(["dataset", "data_dir", "train_size", "val_size"], PREFIX)
    try:
        return config_class()(**values).validate()
    except ConfigError:
        return config_class()(dataset=values.get("dataset", "mnist"))


def apply_recipe() -> None:
    """Recipe callback: fill the widgets with the preset's fields (the run stores the fields),
    unless the preset cannot work on this data (then say why by the recipe box)."""
    s = st.session_state
    try:
        check_fits(s.t_recipe, data_config())
    except ConfigError as exc:
        s["recipe_error"] = str(exc)
        return
    fill(recipe_fields(s.t_recipe))


def follow_the_data() -> None:
    """When the dataset or its folder changes (a new choice, or "Train on it"), fill the
    settings small data needs (:func:`small_data_settings`; nothing for large data)."""
    s = st.session_state
    key = (s.get("t_dataset"), s.get("t_data_dir"))
    if key[0] in DATASETS and s.get("t_data_key") != key:
        s["t_data_key"] = key
        fill(small_data_settings(data_config()))


def build_config() -> TrainConfig:
    """The config the widgets hold now (fields not shown keep the config's defaults); a
    ConfigError names the first field whose value is not allowed."""
    s = st.session_state
    values = state_values(s.get("t_shown", []), PREFIX)
    if s.get("t_executor") != "ray":
        values.pop("workers", None)
    if "data_dir" in values:  # typed in the browser: confined to the data roots
        values["data_dir"] = browser_data_dir(values["data_dir"])
    config = config_class()(**values).validate()
    if DATASETS[config.dataset].needs_data_dir:
        folder = resolve_data_dir(config.data_dir)
        if folder is None or not folder.is_dir():
            raise ConfigError("data_dir", f"folder {config.data_dir or '(empty)'} does not exist")
    return config


def launch() -> None:
    """Button callback: validate, queue, remember the run (errors go next to their widget)."""
    s = st.session_state
    s.pop("train_error", None)
    try:
        run_id = runs.submit(build_config(), executor=s.get("t_executor", "local"))
    except UserError as exc:
        field = exc.field if isinstance(exc, ConfigError) else None
        field = field or ("data_dir" if "data dir" in str(exc) else "launch")
        field = field if field in s.get("t_shown", []) else "launch"  # no widget: by the button
        s["train_error"] = (field, str(exc), state_values([field], PREFIX).get(field))
    else:
        st.session_state["launched"] = run_id


def form_group(group: str, info, values: dict) -> None:
    """The group's fields shown for this dataset, three to a row, each with its error."""
    names = [n for n in group_fields(group) if n != "dataset" and shown(n, info)]
    for start in range(0, len(names), 3):
        for col, name in zip(st.columns(3), names[start : start + 3], strict=False):
            with col:
                values[name] = field_widget(name, PREFIX + name, info)
                launch_error(name, values[name])


st.title("Train")
follow_the_data()
values: dict = {}
left, right = st.columns([3, 2])
with left:
    st.subheader("Data")
    dataset = values["dataset"] = field_widget("dataset", "t_dataset", DATASETS["mnist"])
    info = DATASETS[dataset]
    launch_error("dataset", dataset)
    form_group("Data", info, values)
    if info.train_note:
        st.caption(info.train_note)
    st.subheader("Hyperparameters")
    st.selectbox(
        "Recipe",
        recipe_names(),
        key="t_recipe",
        on_change=apply_recipe,
        help="book: the book's recipe. fast: the recipe `bench` measured reaching 91 % "
        "Fashion-MNIST test accuracy soonest (BatchNorm net, batch 256, one-cycle, label "
        "smoothing). fast-faces: a short v5 recipe for CelebA attributes, checked only on test "
        "fixtures. Picking one fills the fields below; the run stores the fields.",
    )
    if message := st.session_state.pop("recipe_error", None):
        st.error(message, icon="🚫")
    form_group("Hyperparameters", info, values)
    form_group("Run", info, values)

with right:
    st.subheader("Architecture")
    model = values["model"] = field_widget("model", "t_model", info)
    launch_error("model", model)
    st.page_link("pages/architect.py", label="Design your own in the Builder", icon="🧱")
    size = values.get("image_size")
    size = None if field_error("image_size", size) else size
    channels, size, classes = input_geometry(dataset, size)
    try:
        desc = describe_model(model, channels, size, classes)
    except ConfigError as exc:  # a saved spec that does not fit this dataset's input
        st.error(str(exc), icon="🚫")
        st.stop()
    st.caption(desc["rationale"])
    m1, m2 = st.columns(2)
    m1.metric("Parameters", f"{desc['params']:,}")
    m2.metric("FLOPs per image", f"{desc['flops'] / 1e6:.1f} M")
    table = pd.DataFrame(desc["layers"])
    table["output_shape"] = table["output_shape"].map(lambda s: "×".join(map(str, s)))
    st.dataframe(table, hide_index=True, height=360)
    st.caption(f"Shapes for a {channels}×{size}×{size} input with {classes} classes.")
    with st.expander("Network diagram", icon=":material/account_tree:"):
        spec = json.dumps(resolve_model_spec(model, None) or "")  # a saved spec may change
        show_diagram(model_blocks(model, spec, channels, size, classes), key="t_diagram")

if runs.ray_available():  # Ray installed: offer the cluster too
    st.radio(
        "Train on",
        ["local", "ray"],
        format_func={"local": "this machine", "ray": f"the Ray cluster ({ray_address()})"}.get,
        horizontal=True,
        key="t_executor",
        help="Set CNN_LAB_RAY_ADDRESS to choose the cluster; see the README's Ray section.",
    )
    if st.session_state.t_executor == "ray":
        values["workers"] = field_widget("workers", "t_workers", info)
        launch_error("workers", values["workers"])
st.session_state["t_shown"] = list(values)
invalid = config_class()(**values).errors()
if not invalid:
    planned = config_class()(**values)
    if note := batch_note(planned):
        st.info(note, icon="✂️")
    batch = planned_batch(planned)
    step = cache.step_seconds(model, spec, channels, size, classes, batch)
    if (took := training_time(planned, step)) is not None:
        st.caption(
            f"Estimated time here: about {duration(took.seconds)} "
            f"({step * 1000:.0f} ms a training step of {batch} images, measured now; "
            "validations included)."
        )
st.button(
    "Launch training",
    type="primary",
    icon=":material/rocket_launch:",
    on_click=launch,
    disabled=bool(invalid),
    help=f"Fix first: {', '.join(invalid)}" if invalid else None,
)
launch_error("launch")
if run_id := st.session_state.pop("launched", None):
    st.success(f"Run {run_id} queued — the background worker picks it up in a moment.")
    st.page_link(
        "pages/runs.py",
        label="Watch it learn on the Runs page",
        icon="📈",
        query_params={"run": run_id},
    )

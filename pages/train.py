"""Train: build a TrainConfig from widgets, show the architecture, queue the run."""

import json

import pandas as pd
import streamlit as st

from cnn_core import runs
from cnn_core.config import BALANCE_MODES, LIMITS, LR_SCHEDULES, OPTIMIZERS, TrainConfig
from cnn_core.data import DATASETS, dataset_names, input_geometry
from cnn_core.data.celeba import ATTRIBUTES
from cnn_core.errors import ConfigError, UserError
from cnn_core.models import describe_model, model_names, model_title, resolve_model_spec
from cnn_core.recipes import recipe_fields, recipe_names
from cnn_core.settings import browser_data_dir, ray_address, resolve_data_dir
from ui.diagram import model_blocks, show_diagram
from ui.router import ensure_routed

ensure_routed()


def field_error(field: str) -> None:
    """Show the launch error next to the widget it belongs to."""
    err = st.session_state.get("train_error")
    if err and err[0] == field:
        st.error(err[1], icon="🚫")


def bounds(name: str, step: float = 0) -> tuple:
    """(min, max) of a widget from TrainConfig's LIMITS; ``step`` keeps an open end inside."""
    lo, hi = LIMITS[name]
    return lo, hi - step


RECIPE_WIDGETS = {  # TrainConfig field -> widget key, for the fields a recipe sets
    "model": "t_model",
    "epochs": "t_epochs",
    "batch_size": "t_batch_size",
    "lr": "t_lr",
    "optimizer": "t_optimizer",
    "lr_schedule": "t_lr_schedule",
    "warmup": "t_warmup",
    "label_smoothing": "t_label_smoothing",
    "evals_per_epoch": "t_evals_per_epoch",
    "dropout": "t_dropout",
}


def apply_recipe() -> None:
    """Recipe callback: fill the widgets with the preset's fields (the run stores the fields)."""
    s = st.session_state
    for field, value in recipe_fields(s.t_recipe).items():
        if field == "batch_size" and value is None:
            value = DATASETS[s.t_dataset].default_batch_size
        s[RECIPE_WIDGETS[field]] = value


def build_config() -> TrainConfig:
    s = st.session_state
    info = DATASETS[s.t_dataset]
    tags = [t.strip() for t in s.t_tags.split(",") if t.strip()]
    config = TrainConfig(
        dataset=s.t_dataset,
        data_dir=browser_data_dir(s.get("t_data_dir")),
        attribute=s.get("t_attribute", "Smiling"),
        model=s.t_model,
        epochs=int(s.t_epochs),
        batch_size=int(s.t_batch_size),
        lr=float(s.t_lr),
        optimizer=s.t_optimizer,
        weight_decay=float(s.t_weight_decay),
        dropout=float(s.t_dropout),
        seed=int(s.t_seed),
        augment=bool(s.t_augment),
        balance=s.t_balance,
        train_size=int(s.t_train_size) or None,
        val_size=int(s.t_val_size) or None,
        image_size=int(s.get("t_image_size") or info.default_image_size or 0) or None,
        name=s.t_name.strip(),
        tags=tags,
        workers=int(s.get("t_workers") or 1) if s.get("t_executor") == "ray" else 1,
        lr_schedule=s.t_lr_schedule,
        warmup=float(s.t_warmup),
        label_smoothing=float(s.t_label_smoothing),
        evals_per_epoch=int(s.t_evals_per_epoch),
        target_accuracy=float(s.t_target_accuracy) or None,
    )
    config.validate()
    if info.needs_data_dir:
        folder = resolve_data_dir(config.data_dir)
        if folder is None or not folder.is_dir():
            raise ConfigError("data_dir", f"folder {config.data_dir or '(empty)'} does not exist")
    return config


def launch() -> None:
    """Button callback: validate, queue, remember the run (errors go next to their widget)."""
    st.session_state.pop("train_error", None)
    try:
        run_id = runs.submit(build_config(), executor=st.session_state.get("t_executor", "local"))
    except ConfigError as exc:
        st.session_state["train_error"] = (exc.field, exc.message)
    except UserError as exc:
        st.session_state["train_error"] = (
            "data_dir" if "data dir" in str(exc) else "launch",
            str(exc),
        )
    else:
        st.session_state["launched"] = run_id


st.title("Train")
left, right = st.columns([3, 2])
with left:
    st.subheader("Data")
    dataset = st.selectbox(
        "Dataset",
        dataset_names(),
        key="t_dataset",
        format_func=lambda n: f"{n} — {DATASETS[n].description}",
    )
    info = DATASETS[dataset]
    field_error("dataset")
    if info.needs_data_dir:
        st.text_input(
            "Data folder (inside the allowed data roots)",
            key="t_data_dir",
            value=info.default_data_dir,
        )
        field_error("data_dir")
    if dataset == "celeba":
        st.selectbox("Attribute", ATTRIBUTES, index=ATTRIBUTES.index("Smiling"), key="t_attribute")
        field_error("attribute")
    if info.user_image_size:
        st.number_input(
            "Image size (pixels)",
            *bounds("image_size"),
            info.default_image_size or 28,
            key="t_image_size",
        )
    c1, c2 = st.columns(2)
    c1.number_input(
        "Training images (0 = dataset default)",
        0,
        LIMITS["train_size"][1],
        0,
        step=1000,
        key="t_train_size",
    )
    c2.number_input(
        "Validation images (0 = default: 1/6 held out)",
        0,
        LIMITS["val_size"][1],
        0,
        step=500,
        key="t_val_size",
    )
    field_error("train_size")
    c1, c2 = st.columns(2)
    c1.checkbox(
        "Augmentation (random shifts / crops + flips)", value=info.default_augment, key="t_augment"
    )
    c2.selectbox("Class balancing", BALANCE_MODES, key="t_balance")

    st.subheader("Hyperparameters")
    st.selectbox(
        "Recipe",
        recipe_names(),
        key="t_recipe",
        on_change=apply_recipe,
        help="book: the book's recipe. fast: the recipe `bench` measured reaching 91 % "
        "Fashion-MNIST test accuracy soonest (BatchNorm net, batch 256, one-cycle, label "
        "smoothing). Picking one fills the fields below; the run stores the fields.",
    )
    c1, c2, c3 = st.columns(3)
    c1.number_input("Epochs", *bounds("epochs"), 8, key="t_epochs")
    c2.number_input(
        "Batch size", *bounds("batch_size"), info.default_batch_size, key="t_batch_size"
    )
    c3.number_input("Learning rate", *bounds("lr"), 1e-3, format="%.5f", step=1e-4, key="t_lr")
    field_error("lr")
    c1, c2, c3 = st.columns(3)
    c1.selectbox("Optimizer", OPTIMIZERS, key="t_optimizer")
    c2.number_input(
        "Weight decay", *bounds("weight_decay"), 0.0, format="%.5f", step=1e-4, key="t_weight_decay"
    )
    c3.slider("Dropout", *bounds("dropout"), 0.5, 0.05, key="t_dropout")
    c1, c2, c3 = st.columns(3)
    c1.selectbox("LR schedule", LR_SCHEDULES, key="t_lr_schedule")
    c2.number_input(
        "Warm-up (fraction of the run)", *bounds("warmup"), 0.0, step=0.05, key="t_warmup"
    )
    c3.number_input(
        "Label smoothing",
        *bounds("label_smoothing", step=0.01),
        0.0,
        step=0.05,
        key="t_label_smoothing",
    )
    for name in ("lr_schedule", "warmup", "label_smoothing"):
        field_error(name)
    c1, c2 = st.columns(2)
    c1.number_input("Validations per epoch", *bounds("evals_per_epoch"), 1, key="t_evals_per_epoch")
    c2.number_input(
        "Target accuracy (0 = none: run every epoch)",
        0.0,
        LIMITS["target_accuracy"][1],
        0.0,
        step=0.01,
        format="%.3f",
        key="t_target_accuracy",
        help="Stop as soon as validation accuracy reaches it; the run records the training "
        "time and images it took.",
    )
    for name in ("evals_per_epoch", "target_accuracy"):
        field_error(name)
    c1, c2, c3 = st.columns(3)
    c1.number_input("Seed", *bounds("seed"), 1, key="t_seed")
    c2.text_input("Run name", key="t_name", placeholder="optional")
    c3.text_input("Tags (comma-separated)", key="t_tags")
    field_error("tags")
    field_error("name")

with right:
    st.subheader("Architecture")
    model = st.selectbox(
        "Model", model_names(), key="t_model", format_func=lambda m: f"{m} — {model_title(m)}"
    )
    st.page_link("pages/architect.py", label="Design your own in the Builder", icon="🧱")
    channels, size, classes = input_geometry(dataset, st.session_state.get("t_image_size"))
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
        st.number_input(
            "Data-parallel workers",
            *bounds("workers"),
            1,
            key="t_workers",
            help="Ray Train: this many processes share every batch (DDP); 1 = a single task.",
        )
st.button("Launch training", type="primary", icon=":material/rocket_launch:", on_click=launch)
field_error("launch")
if run_id := st.session_state.pop("launched", None):
    st.success(f"Run {run_id} queued — the background worker picks it up in a moment.")
    st.page_link(
        "pages/runs.py",
        label="Watch it learn on the Runs page",
        icon="📈",
        query_params={"run": run_id},
    )

"""Train: build a TrainConfig from widgets, show the architecture, queue the run."""

import pandas as pd
import streamlit as st

from cnn_core import runs
from cnn_core.config import BALANCE_MODES, OPTIMIZERS, TrainConfig
from cnn_core.data import DATASETS, dataset_names
from cnn_core.data.celeba import ATTRIBUTES
from cnn_core.errors import ConfigError, UserError
from cnn_core.models import MODELS, describe_model, model_names
from cnn_core.settings import ray_address, resolve_data_dir
from ui.router import ensure_routed

ensure_routed()


def field_error(field: str) -> None:
    """Show the launch error next to the widget it belongs to."""
    err = st.session_state.get("train_error")
    if err and err[0] == field:
        st.error(err[1], icon="🚫")


def build_config() -> TrainConfig:
    s = st.session_state
    info = DATASETS[s.t_dataset]
    tags = [t.strip() for t in s.t_tags.split(",") if t.strip()]
    config = TrainConfig(
        dataset=s.t_dataset,
        data_dir=s.get("t_data_dir") or None,
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
            "Image size (pixels)", 8, 512, info.default_image_size or 28, key="t_image_size"
        )
    c1, c2 = st.columns(2)
    c1.number_input(
        "Training images (0 = dataset default)", 0, 10_000_000, 0, step=1000, key="t_train_size"
    )
    c2.number_input(
        "Validation images (0 = default: 1/6 held out)", 0, 1_000_000, 0, step=500, key="t_val_size"
    )
    field_error("train_size")
    c1, c2 = st.columns(2)
    c1.checkbox(
        "Augmentation (random shifts / crops + flips)", value=info.default_augment, key="t_augment"
    )
    c2.selectbox("Class balancing", BALANCE_MODES, key="t_balance")

    st.subheader("Hyperparameters (the book's defaults)")
    c1, c2, c3 = st.columns(3)
    c1.number_input("Epochs", 1, 1000, 8, key="t_epochs")
    c2.number_input("Batch size", 1, 4096, info.default_batch_size, key="t_batch_size")
    c3.number_input("Learning rate", 1e-6, 1.0, 1e-3, format="%.5f", step=1e-4, key="t_lr")
    field_error("lr")
    c1, c2, c3 = st.columns(3)
    c1.selectbox("Optimizer", OPTIMIZERS, key="t_optimizer")
    c2.number_input("Weight decay", 0.0, 1.0, 0.0, format="%.5f", step=1e-4, key="t_weight_decay")
    c3.slider("Dropout", 0.0, 0.9, 0.5, 0.05, key="t_dropout")
    c1, c2, c3 = st.columns(3)
    c1.number_input("Seed", 0, 2**31 - 1, 1, key="t_seed")
    c2.text_input("Run name", key="t_name", placeholder="optional")
    c3.text_input("Tags (comma-separated)", key="t_tags")
    field_error("tags")
    field_error("name")

with right:
    st.subheader("Architecture")
    model = st.selectbox(
        "Model", model_names(), key="t_model", format_func=lambda m: f"{m} — {MODELS[m].title}"
    )
    channels, size, classes = info.input_geometry(st.session_state.get("t_image_size"))
    classes = classes or 2  # known once loaded (a folder's sub-folders): preview two
    desc = describe_model(model, channels, size, classes)
    st.caption(desc["rationale"])
    m1, m2 = st.columns(2)
    m1.metric("Parameters", f"{desc['params']:,}")
    m2.metric("FLOPs per image", f"{desc['flops'] / 1e6:.1f} M")
    table = pd.DataFrame(desc["layers"])
    table["output_shape"] = table["output_shape"].map(lambda s: "×".join(map(str, s)))
    st.dataframe(table, hide_index=True, height=360)
    st.caption(f"Shapes for a {channels}×{size}×{size} input with {classes} classes.")

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
            1,
            64,
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

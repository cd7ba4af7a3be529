"""Data: samples with labels, class balance, split sizes and an augmentation preview."""

import copy

import plotly.graph_objects as go
import streamlit as st
import torch

from cnn_core.config import TrainConfig
from cnn_core.data import DATASETS, DataSpec, dataset_names
from cnn_core.data.celeba import attribute_rates
from cnn_core.errors import UserError
from cnn_core.resolve import resolve
from cnn_core.settings import browser_data_dir
from ui import cache
from ui.charts import class_balance
from ui.fetch_widgets import get_dataset_panel
from ui.router import ensure_routed
from ui.widgets import image_grid, show_user_error

ensure_routed()

st.title("Data")
name = st.selectbox(
    "Dataset", dataset_names(), format_func=lambda n: f"{n} — {DATASETS[n].description}"
)
config = TrainConfig(dataset=name)
folder = None
if DATASETS[name].needs_data_dir:
    folder = st.text_input(
        "Data folder (inside the allowed data roots)",
        value=DATASETS[name].default_data_dir,
        help="A folder name relative to the first data root, or an absolute path inside a data root.",
    )
if attributes := DATASETS[name].attributes:
    config.attribute = st.selectbox(
        "Attribute", attributes, index=attributes.index(config.attribute)
    )

try:
    config.data_dir = browser_data_dir(folder)
    data = cache.dataset(DataSpec.of(resolve(config)))  # as a run created now sees it
except UserError as exc:
    show_user_error(exc)
    get_dataset_panel(DATASETS[name], "data_get")
    st.stop()

if data.note:
    st.warning(data.note, icon="⚠️")
cols = st.columns(4)
cols[0].metric("Training images", f"{len(data.train):,}")
cols[1].metric("Validation images", f"{len(data.val):,}")
cols[2].metric("Test images", f"{len(data.test):,}" if data.test is not None else "—")
cols[3].metric("Classes", data.num_classes)
st.caption(
    f"Source: {data.source or 'built in'} · input {data.in_channels}×{data.image_size}×{data.image_size}"
)

st.subheader("Samples")
seed = st.session_state.setdefault("data_seed", 0)
if st.button("🔀 Other samples"):
    st.session_state["data_seed"] = seed = seed + 1
idx = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(seed))[:24]
sample = data.train.images[idx]
image_grid(data.transform.eval(sample), [data.class_names[int(i)] for i in data.train.labels[idx]])

st.subheader("Class balance")
counts = {
    "train": data.train.class_counts(data.num_classes),
    "val": data.val.class_counts(data.num_classes),
}
if data.test is not None:
    counts["test"] = data.test.class_counts(data.num_classes)
st.plotly_chart(class_balance(data.class_names, counts))

st.subheader("Augmentation preview")
st.caption(
    "The same training image through the real training transform eight times "
    f"(augmentation is {'on' if DATASETS[name].default_augment else 'off'} by default for this dataset)."
)
preview = copy.copy(data.transform)
preview.augment = True
augmented = torch.cat(
    [preview.train(sample[:1], torch.Generator().manual_seed(i)) for i in range(8)]
)
image_grid(augmented, [f"draw {i + 1}" for i in range(8)])

if DATASETS[name].attributes:
    st.subheader("Attribute positive rates")
    rates = attribute_rates(config.data_dir)
    fig = go.Figure(go.Bar(x=list(rates.values()), y=list(rates), orientation="h"))
    fig.update_layout(height=900, xaxis={"tickformat": ".0%", "range": [0, 1]}, margin={"t": 10})
    st.plotly_chart(fig)

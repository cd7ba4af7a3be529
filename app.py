"""CNN Lab — Streamlit router: page config, navigation, shared sidebar."""

import streamlit as st

from cnn_core import runs
from cnn_core.settings import runs_dir
from ui.router import mark_routed
from ui.sidebar import render_sidebar

st.set_page_config(page_title="CNN Lab", page_icon="🧠", layout="wide")

PAGES = {
    "Learn": [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/data.py", title="Data", icon=":material/dataset:"),
        st.Page("pages/learn_convolution.py", title="Convolution", icon=":material/grid_on:"),
        st.Page("pages/learn_layer.py", title="A layer by hand", icon=":material/layers:"),
        st.Page(
            "pages/learn_training.py", title="Losses & optimizers", icon=":material/trending_down:"
        ),
        st.Page("pages/dataset_builder.py", title="Your data", icon=":material/add_a_photo:"),
        st.Page("pages/health.py", title="Data health", icon=":material/health_and_safety:"),
    ],
    "Experiment": [
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("pages/architect.py", title="Builder", icon=":material/account_tree:"),
        st.Page("pages/runs.py", title="Runs", icon=":material/monitoring:"),
        st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page("pages/sweep.py", title="Sweep", icon=":material/tune:"),
    ],
    "Use": [
        st.Page("pages/draw.py", title="Draw", icon=":material/draw:"),
        st.Page("pages/faces.py", title="Faces", icon=":material/face:"),
        st.Page("pages/explain.py", title="Explain", icon=":material/visibility:"),
        st.Page("pages/embedding_map.py", title="Embedding map", icon=":material/scatter_plot:"),
    ],
}


@st.cache_resource(show_spinner=False)
def start_queued_runs(folder: str) -> None:
    """Once per app server and runs folder: runs still queued (e.g. after a reboot) get a
    worker. Pages and the sidebar never start one."""
    runs.ensure_worker()


page = st.navigation(PAGES, expanded=True)  # all 16 pages, no "View more" fold
start_queued_runs(str(runs_dir()))
render_sidebar()
mark_routed()
page.run()

"""Home: what CNN Lab is, quick starts, recent runs, where the data comes from."""

import streamlit as st

from cnn_core import runs, sweeps
from cnn_core.config import TrainConfig
from cnn_core.data import DATASETS, DataSpec
from cnn_core.data.sources import data_sources
from cnn_core.errors import UserError
from cnn_core.formats import duration, percent
from cnn_core.models.summary import TrainingTime
from cnn_core.recipes import smile_classifier
from cnn_core.resolve import resolve
from cnn_core.trainer import estimate_training
from ui import cache
from ui.router import ensure_routed
from ui.widgets import run_label, show_user_error

ensure_routed()

QUICK_STARTS = {
    "Train the book's MNIST CNN": TrainConfig(
        dataset="mnist", model="v1", epochs=8, name="Book MNIST CNN (v1)"
    ),
    "Train v2 (batch norm) on Fashion-MNIST": TrainConfig(
        dataset="fashion-mnist", model="v2", epochs=2, name="Fashion-MNIST v2"
    ),
}

if any(i.input_kind == "face" and i.source_status()["available"] for i in DATASETS.values()):
    QUICK_STARTS["Train the smile classifier (the book's v1)"] = TrainConfig.from_dict(
        smile_classifier("book")
    )

st.title("🧠 CNN Lab")
st.markdown(
    "CNN Lab lets you train convolutional networks on images and watch them learn, live. "
    "Start from the network in chapter 14 of Raschka's *Machine Learning with PyTorch and Scikit-Learn* "
    "(**v1**) and compare it with documented improvements (**v2–v5**) or a network you build, on "
    "digits, clothes, faces or your own pictures. Then draw a digit or upload a photo to see what a "
    "trained network answers — and why."
)


@st.cache_resource(ttl=600, show_spinner="Timing a few training steps on this machine…")
def estimate(label: str) -> TrainingTime:
    """How long a quick start trains here (timed again after 10 minutes: the machine's load changes)."""
    config = resolve(QUICK_STARTS[label])
    return estimate_training(config, cache.dataset(DataSpec.of(config)))


def launch(config: TrainConfig) -> None:
    try:
        run_id = runs.submit(config)
    except UserError as exc:
        show_user_error(exc)
    else:
        st.session_state["run_id"] = run_id
        st.switch_page("pages/runs.py", query_params={"run": run_id})


st.subheader("Quick start")
cols = st.columns(len(QUICK_STARTS))
for col, label in zip(cols, QUICK_STARTS, strict=True):
    if col.button(label, use_container_width=True):
        st.session_state["qs_pick"] = label
if (picked := st.session_state.get("qs_pick")) in QUICK_STARTS:
    try:
        took = estimate(picked)
    except UserError as exc:
        show_user_error(exc)
    else:
        st.info(
            f"**{picked}** trains for about **{duration(took.seconds)}** on this machine: "
            f"{took.epochs} epochs × {took.steps:,} steps of {took.batch_size} images, "
            f"{took.step_s * 1000:.0f} ms each (timed here; validations included).",
            icon=":material/timer:",
        )
        c1, c2 = st.columns([1, 5])
        if c1.button("Launch it", type="primary", key="qs_launch"):
            st.session_state.pop("qs_pick")
            launch(QUICK_STARTS[picked])
        c2.button("Cancel", key="qs_cancel", on_click=st.session_state.pop, args=("qs_pick",))

RECENT = 5  # lines: single runs, and each sweep's trial runs as one


def recent_runs(all_runs: list[dict]) -> None:
    """The newest runs, newest first; a sweep's trial runs as one line linked to the Sweep page."""
    lines: dict[tuple[str, str], list[dict]] = {}  # (sweep id, "") or ("", run id): its runs
    for run in all_runs:
        sweep = sweeps.sweep_of(run["tags"])
        lines.setdefault((sweep, "") if sweep else ("", run["id"]), []).append(run)
    for (sweep, run_id), group in list(lines.items())[:RECENT]:
        if run_id:
            st.page_link("pages/runs.py", label=run_label(group[0]), query_params={"run": run_id})
            continue
        scores = [r["best_val_accuracy"] for r in group if r.get("best_val_accuracy") is not None]
        best = f" · best {percent(max(scores))}" if scores else ""
        st.page_link(
            "pages/sweep.py",
            label=f"🔍 Sweep {sweep} · {len(group)} trial runs{best}",
            query_params={"sweep": sweep},
        )


st.subheader("Recent runs")
if all_runs := runs.list_runs():
    recent_runs(all_runs)
else:
    st.caption("No runs yet — use a quick start above or the Train page.")

st.subheader("Data")
for source in data_sources():
    if source.get("sample"):
        st.warning(f"**{source['name']}:** {source['note']}", icon="⚠️")
    elif source["available"] and source["source"]:
        st.success(f"**{source['name']}** — read from `{source['source']}`", icon="✅")
    else:
        st.info(f"**{source['name']}** — {source['note']}")

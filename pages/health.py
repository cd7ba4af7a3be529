"""Data health: likely label errors, duplicates and leaks, odd files and class balance of a
dataset; for your own image folders, mark images to exclude or relabel for training."""

import streamlit as st

from cnn_core.config import TrainConfig
from cnn_core.data import DATASETS, dataset_names
from cnn_core.data.builder import list_datasets
from cnn_core.errors import UserError
from cnn_core.health.jobs import check_status, list_checks, start_check, stop_check
from cnn_core.health.report import health_data
from cnn_core.jobs import ACTIVE
from cnn_core.models import model_names
from cnn_core.settings import browser_data_dir
from ui import owndata_widgets as ow
from ui.charts import class_balance
from ui.router import ensure_routed
from ui.widgets import show_user_error

ensure_routed()

st.title("Data health")
st.caption(
    "Real datasets have wrong labels, duplicates and images shared between training and test. "
    "Label errors are found by confident learning (cleanlab) on out-of-sample probabilities: "
    "k small models, each scoring the images it did not train on. Duplicates are found by a "
    "perceptual hash confirmed on pixels; duplicates across train / val / test are leaks."
)

c1, c2, c3 = st.columns(3)
dataset = c1.selectbox("Dataset", dataset_names(), key="dh_dataset")
info = DATASETS[dataset]
editable = info.data_choices  # exclude / relabel choices can be saved for its folder
config = TrainConfig(dataset=dataset)
if info.user_folder:
    own = [d["data_dir"] for d in list_datasets()]
    typed = c2.text_input("Data folder", key="dh_data_dir")
    c3.caption("Your datasets: " + (", ".join(f"`{d}`" for d in own) or "none yet (see Your data)"))
    try:
        config.data_dir = browser_data_dir(typed)
    except UserError as exc:
        show_user_error(exc)
        st.stop()
else:
    config.train_size = c2.number_input("Training images", 100, 60_000, 2_000, 500, key="dh_size")
    config.val_size = max(1, config.train_size // 5)
    config.data_dir = info.default_data_dir or None
c1, c2, c3, c4 = st.columns(4)
folds = c1.number_input("Folds (k)", 2, 10, 3, key="dh_folds")
config.epochs = c2.number_input("Epochs per fold", 1, 20, 2, key="dh_epochs")
config.model = c3.selectbox("Model", model_names(), key="dh_model")
check_labels = c4.checkbox("Check labels (trains k models)", True, key="dh_labels")

if st.button("Run health check", type="primary", key="dh_run"):
    try:
        st.session_state["dh_job"] = (start_check(config, folds, check_labels), config.to_json())
    except UserError as exc:
        show_user_error(exc)


def stop(check_id: str) -> None:
    """Button callback: stop the check (its process ends; the page then shows it stopped)."""
    try:
        stop_check(check_id, wait=5.0)
    except UserError as exc:
        st.session_state["dh_ended"] = ("failed", str(exc))


@st.fragment(run_every=1.0)
def watch(check_id: str, config_json: str | None) -> None:
    """Progress of the background check and a button to stop it; the whole page reruns once it
    has ended."""
    status = check_status(check_id)
    if status["state"] in ACTIVE:
        st.info(f"Checking in the background ({status['label']})… {status['message']}", icon="⏳")
        st.button(
            "Stop the check",
            key="dh_stop",
            icon=":material/stop:",
            on_click=stop,
            args=(check_id,),
            disabled=status["state"] == "stopping",
        )
        return
    del st.session_state["dh_job"]
    if status["state"] == "completed":
        data = health_data(TrainConfig.from_dict(status["config"]))  # as the check resolved it
        st.session_state["dh_result"] = (config_json, status["report"], data)
    else:
        st.session_state["dh_ended"] = (status["state"], status["message"])
    st.rerun()


if "dh_job" not in st.session_state and (running := list_checks(active_only=True)):
    st.session_state["dh_job"] = (running[0]["id"], None)  # started earlier, here or elsewhere
if job := st.session_state.get("dh_job"):
    watch(*job)
    st.stop()
if ended := st.session_state.pop("dh_ended", None):
    state, message = ended
    show = st.error if state == "failed" else st.warning
    show(f"The check {state}: {message}", icon="🚫" if state == "failed" else "⏹️")
result = st.session_state.get("dh_result")
if result is None:
    st.info("Choose a dataset and run the check.", icon="🩺")
    st.stop()
config_json, report, data = result
if config_json != config.to_json():
    st.caption(
        "These findings are for the settings of the last check; run it again for the current ones."
    )

cols = st.columns(5)
cols[0].metric("Images", f"{report['images']:,}")
cols[1].metric(
    "Likely label errors",
    "can't judge" if report.get("label_note") else len(report["label_issues"]),
)
cols[2].metric("Duplicate groups", len(report["duplicates"]))
cols[3].metric("Leaks across splits", len(report["leaks"]))
cols[4].metric("Unreadable / odd files", len(report["unreadable"]) + len(report["odd"]))
if "oos_accuracy" in report:
    st.caption(
        f"Out-of-sample accuracy of the {report['folds']} fold models: {report['oos_accuracy']:.1%}"
        + (
            f" · data choices v{report['choices_version']} applied"
            if report["choices_version"]
            else ""
        )
    )

labels_tab, dups_tab, files_tab, balance_tab = st.tabs(
    ["Label issues", "Duplicates & leaks", "Files", "Class balance"]
)
with labels_tab:
    ow.label_issue_gallery(report, data, editable=editable)
with dups_tab:
    ow.duplicate_gallery(report, data, editable=editable)
with files_tab:
    ow.skipped_table(report["unreadable"])  # training skips them too
    if report["odd"]:
        st.dataframe(report["odd"], hide_index=True, width="stretch")
    if not report["unreadable"] and not report["odd"]:
        st.success("Every file reads as an image of the usual size and mode.")
with balance_tab:
    counts = {s: list(c.values()) for s, c in report["class_counts"].items() if s != "all"}
    st.plotly_chart(class_balance(data.class_names, counts))

if editable:
    ow.save_choices_panel(data)
else:
    st.caption(
        "Exclude / relabel choices are stored for your own image folders; for built-in "
        "datasets the findings are for reading (rows name the split and index)."
    )

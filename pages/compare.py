"""Compare: runs side by side — overlay curves, a summary table with the config diff,
hyperparameters vs accuracy, test-split confusion matrices, per-class accuracy and the
misclassified images of any confusion cell. ``?runs=id1,id2`` makes a comparison shareable."""

import functools
from typing import Any

import pandas as pd
import streamlit as st

from cnn_core import compare, runs, sweeps
from cnn_core.config import TrainConfig
from cnn_core.data import dataset_names
from cnn_core.errors import UserError
from cnn_core.evaluation import run_data_spec
from cnn_core.formats import percent, value_text
from cnn_core.models import MODELS
from cnn_core.resolve import with_defaults
from cnn_core.stats import interval_text, mcnemar_text
from ui.cache import dataset
from ui.charts import loss_gap_note, run_colour
from ui.compare_widgets import (
    METRICS,
    X_AXES,
    confusion_heatmap,
    curve_points,
    legend_name,
    misclassified_gallery,
    overlay_curves,
    parallel_coordinates,
    per_class_bars,
    select_runs,
    style_summary,
)
from ui.router import ensure_routed
from ui.widgets import ACTIVE, optional_select, run_label, show_user_error

ensure_routed()

MAX_GALLERY = 40
LEAD_COLUMNS = [  # after "#", "name" and the settings that differ
    "model",
    "status",
    "best_val_accuracy",
    "best_val_ci_low",
    "best_val_ci_high",
    "final_val_accuracy",
    "test_accuracy",
    "test_ci_low",
    "test_ci_high",
    "evaluated_on",
    "params",
    "flops",
    "train_seconds",
    "images_per_s",
    "ended_by",  # long for a run that ended early: after the numbers
]


def start_sweep(base_id: str | None, dataset_name: str) -> None:
    """Button callback: create and start the sweep training every registered architecture like
    the base run (or with defaults)."""
    try:
        base = (
            TrainConfig.from_dict(runs.get_run(base_id)["config"], strict=False)
            if base_id
            else TrainConfig(dataset=dataset_name)
        )
        sweep_id = sweeps.architecture_sweep(base)
        sweeps.start_sweep(sweep_id)
    except UserError as exc:
        st.session_state["cmp_sweep_error"] = exc
    else:
        st.session_state["cmp_swept"] = sweep_id


def sweep_panel(selected: list[dict[str, Any]]) -> None:
    """Train every registered architecture with the same data, seed and budget as a chosen run:
    a sweep (a grid over the model), followed on the Sweep page."""
    with st.expander(f"Train {'/'.join(MODELS)} on one dataset", icon=":material/add_task:"):
        by_id = {r["id"]: r for r in selected}
        base_id = optional_select(
            st,
            "Copy data, seed and budget from",
            list(by_id),
            "defaults",
            "cmp_sweep_base",
            lambda i: run_label(by_id[i]),
        )
        name = st.selectbox(
            "Dataset (for defaults)",
            dataset_names(),
            key="cmp_sweep_dataset",
            disabled=bool(base_id),
        )
        base = TrainConfig.from_dict(by_id[base_id]["config"], strict=False) if base_id else None
        config = with_defaults(base or TrainConfig(dataset=name))
        st.caption(
            f"{config.dataset}: {config.epochs} epochs, batch {config.batch_size}, lr {value_text(config.lr)}, "
            f"{config.train_size or 'all'} training / {config.val_size or 'default'} validation "
            f"images, seed {config.seed} — a sweep with one trial per architecture."
        )
        st.button("Start the sweep", on_click=start_sweep, args=(base_id, name))
    if error := st.session_state.pop("cmp_sweep_error", None):
        show_user_error(error)
    if sweep_id := st.session_state.pop("cmp_swept", None):
        st.success(f"Sweep {sweep_id} started: one trial per architecture, trained in turn.")
        st.page_link(
            "pages/sweep.py", label="Follow it on the Sweep page", query_params={"sweep": sweep_id}
        )


def curves_tab(selected: list[dict[str, Any]]) -> None:
    """Overlay of the chosen metrics, refreshed every 2 s while a selected run is active (and
    the whole page once one of them changes status, so the table catches up)."""
    c = st.columns([3, 2, 2])
    metrics = c[0].multiselect(
        "Metrics", list(METRICS), ["val_accuracy", "val_loss"], format_func=METRICS.get
    )
    x_key = c[1].radio("x-axis", list(X_AXES), format_func=X_AXES.get, horizontal=True)
    weight = c[2].slider("Smoothing (EMA weight)", 0.0, 0.95, 0.0, 0.05)
    active = any(r["status"] in ACTIVE for r in selected)

    @st.fragment(run_every=2.0 if active else None)
    def charts() -> None:
        now = {r["id"]: r["status"] for r in runs.list_runs()}
        if any(now.get(r["id"]) != r["status"] for r in selected):
            st.rerun()
        curves = [(legend_name(i, r), curve_points(r["id"])) for i, r in enumerate(selected)]
        if empty := [name for name, points in curves if not points]:
            st.caption(f"No finished epoch yet: {', '.join(empty)}.")
        if off := [name for name, points in curves if points and x_key not in points[0]]:
            st.caption(f"Recorded before step metrics, so not on this axis: {', '.join(off)}.")
        if "train_loss" in metrics:
            for i, r in enumerate(selected):
                geometry = compare.model_geometry(r)
                if note := loss_gap_note(r["config"], geometry and geometry[2]):
                    st.caption(f"{legend_name(i, r)} — {note}")
        cols = st.columns(2)
        for k, metric in enumerate(metrics):
            cols[k % 2].plotly_chart(
                overlay_curves(curves, metric, x_key, weight), key=f"cmp-curve-{metric}"
            )

    charts()


def summary_tab(rows: list[dict[str, Any]], differing: list[str]) -> None:
    """The table (sortable by its headers), the differing settings named, a CSV download."""
    table = pd.DataFrame(rows)
    table.insert(0, "#", range(1, len(table) + 1))
    order = ["#", "name", *differing, *(c for c in LEAD_COLUMNS if c not in differing)]
    table = table[order + [c for c in table.columns if c not in order]]
    if len(rows) > 1:
        st.caption(
            f"Highlighted — settings that differ: {', '.join(differing)}."
            if differing
            else "All selected runs share the same settings."
        )
    st.dataframe(style_summary(table, differing), hide_index=True)
    st.download_button(
        "Download CSV",
        table.to_csv(index=False),
        file_name="cnn-lab-comparison.csv",
        mime="text/csv",
        icon=":material/download:",
    )


def evaluate_missing(todo: list[dict[str, Any]]) -> None:
    """Evaluate runs on the test split with a progress bar, then redraw (errors kept)."""
    bar = st.progress(0.0)
    for k, run in enumerate(todo):
        bar.progress(k / len(todo), text=f"Evaluating {run['name']} ({k + 1}/{len(todo)})…")
        try:
            compare.evaluate_run(run["id"], data=dataset(run_data_spec(run["config"])))
        except UserError as exc:
            st.session_state.setdefault("cmp_eval_errors", []).append(exc)
    st.rerun()


def gallery(done: list[tuple[int, dict[str, Any], compare.RunEvaluation]]) -> None:
    """Pick a run and a confusion cell: its misclassified images, each linked to Explain."""
    st.subheader("Misclassified images")
    by_id = {r["id"]: (i, r, e) for i, r, e in done}
    c1, c2 = st.columns(2)
    run_id = c1.selectbox(
        "Run", list(by_id), format_func=lambda i: legend_name(*by_id[i][:2]), key="cmp_gallery_run"
    )
    _, run, evaluation = by_id[run_id]
    cells = {(t, p): n for t, p, n in compare.confusion_cells(evaluation.result)}
    if not cells:
        st.success("This run classified every image correctly.")
        return
    names = evaluation.class_names
    if st.session_state.get("cmp_cell") not in cells:
        st.session_state.pop("cmp_cell", None)
    cell = c2.selectbox(
        "Confusion cell (true → predicted)",
        list(cells),
        format_func=lambda c: f"{names[c[0]]} → {names[c[1]]} ({cells[c]} images)",
        key="cmp_cell",
    )
    data = dataset(run_data_spec(run["config"]))
    labels = data.split(evaluation.result.split).labels.tolist()
    indices = compare.cell_indices(evaluation.result, labels, *cell)
    if len(indices) > MAX_GALLERY:
        st.caption(f"Showing the first {MAX_GALLERY} of {len(indices)} images.")
    misclassified_gallery(run_id, evaluation, data, indices[:MAX_GALLERY])


def pick_cell(run_id: str, names: list[str]) -> None:
    """Heatmap click callback: show the clicked cell's images in the gallery below."""
    points = st.session_state[f"cmp-cm-{run_id}"].selection.points
    if points and {"x", "y"} <= points[0].keys():
        st.session_state["cmp_gallery_run"] = run_id
        st.session_state["cmp_cell"] = (names.index(points[0]["y"]), names.index(points[0]["x"]))


def difference_panel(done: list[tuple[int, dict[str, Any], compare.RunEvaluation]]) -> None:
    """McNemar's exact test for every pair of runs evaluated on the same images, in words."""
    if len(done) < 2:
        return
    st.subheader("Is the difference real?")
    st.caption(
        "McNemar's exact test: only the images one run gets right and the other wrong count. "
        "If the runs were equally good, each such image would be a coin flip; p is the chance "
        "of a split at least this uneven by luck alone."
    )
    for k, (i, run_a, eval_a) in enumerate(done):
        for j, run_b, eval_b in done[k + 1 :]:
            names = legend_name(i, run_a), legend_name(j, run_b)
            test = compare.paired_test(run_a, eval_a, run_b, eval_b)
            if test is None:
                st.markdown(f"- {names[0]} and {names[1]} were evaluated on different images.")
            else:
                st.markdown(f"- {mcnemar_text(*names, test)}")


def evaluation_tab(selected: list[dict[str, Any]]) -> None:
    """Cached test evaluations, a button for the missing ones, matrices, bars and gallery."""
    if lacking := [r["name"] for r in selected if not r["checkpoint"]]:
        st.warning(
            f"No checkpoint yet (it is written after the first epoch): {', '.join(lacking)}.",
            icon="⏳",
        )
    found = [(i, r, compare.cached_evaluation(r["id"])) for i, r in enumerate(selected)]
    todo = [r for _, r, e in found if e is None and r["checkpoint"]]
    if todo and st.button(
        f"Evaluate {len(todo)} run{'s' * (len(todo) > 1)} on the test split", type="primary"
    ):
        evaluate_missing(todo)
    for error in st.session_state.pop("cmp_eval_errors", []):
        show_user_error(error)
    done = [(i, r, e) for i, r, e in found if e is not None]
    if not done:
        st.caption("Nothing evaluated yet.")
        return
    for _, r, e in done:
        if e.fell_back:
            st.info(f"{r['dataset']} has no test split: {r['name']} was evaluated on val.")
    normalised = st.toggle("Normalise rows (share of each true class)", key="cmp_normalised")
    st.caption("Click a cell to see its images below.")
    for start in range(0, len(done), 2):
        for col, (i, r, e) in zip(st.columns(2), done[start : start + 2], strict=False):
            title = f"{legend_name(i, r)} · {percent(e.result.accuracy)} {e.result.split} accuracy"
            col.caption(f"{legend_name(i, r)}: {interval_text(e.result.accuracy, e.result.n)}")
            col.plotly_chart(
                confusion_heatmap(e, title, run_colour(i), normalised),
                key=f"cmp-cm-{r['id']}",
                on_select=functools.partial(pick_cell, r["id"], e.class_names),
                selection_mode="points",
            )
    difference_panel(done)
    st.subheader("Per-class accuracy")
    groups: dict[tuple[str, ...], list] = {}  # runs on other classes never share an axis
    for i, r, e in done:
        groups.setdefault(tuple(e.class_names), []).append((i, r, e))
    for k, group in enumerate(groups.values()):
        if len(groups) > 1:
            st.caption(", ".join(sorted({r["dataset"] for _, r, _ in group})))
        named = [(i, legend_name(i, r), e) for i, r, e in group]
        st.plotly_chart(per_class_bars(named), key=f"cmp-per-class-{k}")
    gallery(done)


st.title("Compare")
all_runs = runs.list_runs()
if not all_runs:
    st.info(
        "No runs yet: queue every built-in architecture below, or launch one on the Train page."
    )
    st.page_link("pages/train.py", label="Go to Train", icon="🚀")
    sweep_panel([])
    st.stop()

selected = select_runs(all_runs)
sweep_panel(selected)
if not selected:
    st.info("Pick runs above (filters narrow the list), or open a link like ?runs=ID1,ID2.")
    st.stop()

if len(datasets := sorted({r["dataset"] for r in selected})) > 1:
    st.info(
        f"These runs learn different datasets ({', '.join(datasets)}): their accuracies and losses "
        "measure different tasks, and each dataset gets its own per-class chart.",
        icon=":material/info:",
    )
rows = compare.summary_table([r["id"] for r in selected])
differing = compare.differing_columns(rows)
tabs = st.tabs(["Curves", "Summary", "Hyperparameters", "Test evaluation"])
with tabs[0]:
    curves_tab(selected)
with tabs[1]:
    summary_tab(rows, differing)
with tabs[2]:
    if len(rows) < 2 or not differing:
        st.info("Select two or more runs whose settings differ to see them against accuracy.")
    else:
        st.plotly_chart(parallel_coordinates(rows, differing), key="cmp-parcoords")
with tabs[3]:
    evaluation_tab(selected)

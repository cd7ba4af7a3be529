"""Sweep: search hyperparameters and architectures with Optuna. Build the space (each setting
fixed or searched), set the budget, launch a background sweep; then follow its best-so-far
curve and trials, compare them in parallel coordinates and importances, train the best longer.
``?sweep=<id>`` selects a sweep."""

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from optuna.visualization import plot_parallel_coordinate

from cnn_core import config, sweeps
from cnn_core.data import DATASETS, DatasetInfo, dataset_names
from cnn_core.errors import UserError
from cnn_core.formats import duration
from cnn_core.models import model_title
from cnn_core.settings import browser_data_dir
from ui.charts import frame
from ui.config_form import bounds, field_widget
from ui.router import ensure_routed
from ui.widgets import show_user_error

ensure_routed()

STATE_ICONS = {"complete": "✅", "pruned": "✂️", "fail": "❌", "running": "🏃", "waiting": "⏳"}
LIVE = ("created", "running", "stopping")
STEADY = 10  # complete trials from which parameter importances are more than a hint


# ---- the search space: one row per searchable setting, fixed or searched ----------------------
def searched_widget(name: str, key: str) -> dict[str, Any]:
    """The search spec of one setting: choices from its allowed (or offered) values, or a
    range within the field's bounds; the sweep space's default is preselected."""
    k, kind, spec = config.knobs()[name], sweeps.searchable()[name], sweeps.default_space()[name]
    if kind == "bool":
        st.caption("tries it off and on")
        return {"choices": spec["choices"]}
    if "choices" in spec:
        options = list(k.search_options) or sweeps.allowed_values(name) or spec["choices"]
        fmt = (lambda m: f"{m} — {model_title(m)}") if k.names == "models" else sweeps.value_text
        return {"choices": st.multiselect("choices", options, spec["choices"], fmt, key=key)}
    low, high = bounds(name)
    if k.widget == "slider":
        picked = st.slider("range", low, high, (spec["low"], spec["high"]), k.step, key=key)
        return {"low": picked[0], "high": picked[1], "log": spec["log"]}
    c1, c2 = st.columns(2)
    to = "to (log scale)" if spec["log"] else "to"
    start = c1.number_input("from", low, high, spec["low"], format=k.format, key=f"{key}_low")
    end = c2.number_input(to, low, high, spec["high"], format=k.format, key=key)
    return {"low": start, "high": end, "log": spec["log"]}


def space_form(info: DatasetInfo) -> tuple[dict[str, Any], dict[str, Any]]:
    """(search space, fixed values) from one row per searchable setting."""
    space, fixed = {}, {}
    for name in sweeps.searchable():
        c1, c2 = st.columns([1, 3], vertical_alignment="center")
        label = config.knobs()[name].label or name
        searched = c1.toggle(label, True, key=f"sw_on_{name}", help="on: search it; off: fix it")
        with c2:
            if searched:
                space[name] = searched_widget(name, f"sw_space_{name}")
            else:
                fixed[name] = field_widget(name, f"sw_fixed_{name}", info)
    return space, fixed


def launch(base: dict[str, Any], space: dict, budget: dict[str, Any]) -> None:
    """Create the sweep and start its detached driver (which starts the worker)."""
    try:
        base = {**base, "data_dir": browser_data_dir(base.get("data_dir"))}
        base_config = config.config_class().from_dict(base)
        sweep_id = sweeps.create_sweep(base_config, space, **budget)
        sweeps.start_sweep(sweep_id)
    except UserError as exc:
        show_user_error(exc)
        return
    st.session_state["sw_selected"] = sweep_id
    st.success(f"Sweep {sweep_id} started — follow it below.")


def new_sweep_form() -> None:
    with st.expander("New sweep", icon=":material/tune:", expanded=not sweeps.list_sweeps()):
        c = st.columns(4)
        dataset = c[0].selectbox("Dataset", dataset_names(), key="sw_dataset")
        size = bounds("train_size")[1]
        base = {
            "dataset": dataset,
            "epochs": c[1].number_input("Epochs per trial", *bounds("epochs"), 2, key="sw_epochs"),
            "train_size": c[2].number_input("Training images (0 = all)", 0, size, 10_000) or None,
            "val_size": c[3].number_input("Validation images (0 = default)", 0, size, 2000) or None,
        }
        if DATASETS[dataset].needs_data_dir:
            folder = st.text_input("Data folder", DATASETS[dataset].default_data_dir)
            base["data_dir"] = folder or None
        st.caption("Search space — toggle a setting off to fix it.")
        space, fixed = space_form(DATASETS[dataset])
        c = st.columns(5)
        budget = {
            "trials": int(c[0].number_input("Trials", 1, 1000, 12, key="sw_trials")),
            "timeout": c[1].number_input("Minutes (0 = no limit)", 0, 10_000, 0) * 60 or None,
            "sampler": c[2].selectbox("Sampler", list(sweeps.SAMPLERS), key="sw_sampler"),
            "pruner": c[3].selectbox("Pruner", list(sweeps.PRUNERS), key="sw_pruner"),
            "parallel": int(c[4].number_input("Trials at once", 1, 4, 1, key="sw_parallel")),
            "name": st.text_input("Sweep name", placeholder="optional", key="sw_name"),
        }
        if st.button("Launch sweep", type="primary", icon=":material/rocket_launch:"):
            launch({**base, **fixed}, space, budget)


# ---- a sweep's results ------------------------------------------------------------------------
def best_so_far_chart(curve: list[dict[str, Any]]) -> go.Figure:
    """Each complete trial's val accuracy and the best so far, by trial number."""
    x = [p["number"] for p in curve]
    fig = go.Figure(
        [
            go.Scatter(x=x, y=[p["value"] for p in curve], mode="markers", name="trial"),
            go.Scatter(x=x, y=[p["best"] for p in curve], line_shape="hv", name="best so far"),
        ]
    )
    fig.update_layout(xaxis_title="trial", yaxis_title="val accuracy")
    fig.update_xaxes(dtick=max(1, round(max(x, default=0) / 10)))
    fig.update_yaxes(tickformat=".0%")
    return frame(fig, 320)


def trials_table(trials: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per trial: state (pruned ones marked), accuracy, epochs, params, run."""
    return pd.DataFrame(
        {
            "#": t["number"],
            "state": f"{STATE_ICONS.get(t['state'], '')} {t['state']}"
            + (" (by hand)" if t["stopped_by_hand"] else ""),
            "val accuracy": t["value"],
            "last epoch": list(t["values"].values())[-1] if t["values"] else None,
            "epochs": len(t["values"]),
            **{k: sweeps.value_text(v) for k, v in t["params"].items()},
            "run": t["run_id"],
            "error": t["error"] or "",
        }
        for t in trials
    )


@st.cache_data(max_entries=32, show_spinner="Computing parameter importances…")
def importances(sweep_id: str, n_complete: int) -> tuple[dict[str, float], str | None]:
    """fANOVA importances, recomputed only when another trial completes."""
    return sweeps.param_importances(sweeps.load_study(sweep_id))


def analysis(status: dict[str, Any]) -> None:
    """Parallel coordinates and importances (from 2 complete trials on)."""
    if status["counts"]["complete"] < 2:
        st.caption("Parallel coordinates and importances appear after 2 complete trials.")
        return
    left, right = st.columns([3, 2])
    fig = plot_parallel_coordinate(sweeps.load_study(status["id"]), target_name="val accuracy")
    fig.update_layout(height=360, margin={"t": 60, "b": 20, "l": 60, "r": 60}, title=None)
    left.plotly_chart(fig, key=f"sw-parcoords-{status['id']}")
    complete = status["counts"]["complete"]
    if complete < STEADY:
        right.caption(
            f"Importances from only {complete} complete trials: a hint, not a finding — they "
            f"steady with about {STEADY} or more."
        )
    found, note = importances(status["id"], complete)
    if not found:
        right.caption(f"Parameter importance {note}.")
        return
    bars = go.Figure(go.Bar(x=list(found.values()), y=list(found), orientation="h"))
    bars.update_layout(title="parameter importance (fANOVA)", yaxis_autorange="reversed")
    frame(bars, 360, legend=False)
    right.plotly_chart(bars, key=f"sw-importance-{status['id']}")


def live(sweep_id: str, shown_status: str) -> None:
    """Best-so-far curve and trials (a fragment refreshed every 2 s while the sweep runs)."""
    status = sweeps.sweep_status(sweep_id, importances=False)
    if status["status"] != shown_status:
        st.rerun()  # redraw buttons and analysis
    c, best = status["counts"], status["best"]
    m = st.columns(4)
    m[0].metric("best val accuracy", f"{best['value']:.2%}" if best else "—")
    m[1].metric("trials", f"{sum(c.values()) - c['waiting']}/{status['budget']['trials']}")
    m[2].metric("pruned", c["pruned"])
    m[3].metric("failed", c["fail"])
    if status["best_so_far"]:
        st.plotly_chart(best_so_far_chart(status["best_so_far"]), key=f"sw-best-{sweep_id}")
    if status["trials"]:
        st.dataframe(trials_table(status["trials"]), hide_index=True)


def act(fn, *args) -> Any:
    """Call a sweep action; a UserError is shown instead of raised."""
    try:
        return fn(*args)
    except UserError as exc:
        show_user_error(exc)


def stop_or_resume(status: dict[str, Any]) -> None:
    if status["status"] in ("running", "created") and st.button("⏹️ Stop sweep"):
        act(sweeps.stop_sweep, status["id"], 5.0)
        st.rerun()
    if status["status"] in ("stopped", "interrupted", "failed") and st.button("▶️ Resume sweep"):
        act(sweeps.start_sweep, status["id"])
        st.rerun()


def best_panel(status: dict[str, Any]) -> None:
    """The best trial, its parameters, and a button to train its config for longer."""
    best = status["best"]
    st.success(f"Best: trial {best['number']} with {best['value']:.2%} val accuracy.", icon="🏆")
    c = st.columns([3, 1, 2], vertical_alignment="bottom")
    c[0].markdown(" · ".join(f"**{k}** {sweeps.value_text(v)}" for k, v in best["params"].items()))
    epochs = c[1].number_input("Epochs", 1, 1000, 10)
    if c[2].button(f"Train it for {epochs} epochs", icon=":material/rocket_launch:") and (
        run_id := act(sweeps.train_best_longer, status["id"], int(epochs))
    ):
        st.page_link("pages/runs.py", label=f"Run {run_id} queued", query_params={"run": run_id})


def links(status: dict[str, Any]) -> None:
    """Every trial's run on the Runs page, and all of them on Compare."""
    trials = [t for t in status["trials"] if t["run_id"]]
    with st.expander(f"Trial runs ({len(trials)})", icon=":material/monitoring:"):
        if trials:
            st.page_link(
                "pages/compare.py",
                label="Compare them all",
                query_params={"runs": ",".join(t["run_id"] for t in trials)},
            )
        for t in trials:
            value = f" · {t['value']:.2%}" if t["value"] is not None else ""
            st.page_link(
                "pages/runs.py",
                label=f"{STATE_ICONS.get(t['state'], '')} trial {t['number']}{value} · run {t['run_id']}",
                query_params={"run": t["run_id"]},
            )


def label(sweep: dict[str, Any]) -> str:
    """``name · dataset · status · best 91.2%`` — a sweep in the picker."""
    best = f" · best {sweep['best_value']:.2%}" if sweep["best_value"] is not None else ""
    return f"{sweep['name'] or sweep['id']} · {sweep['dataset']} · {sweep['status']}{best}"


st.title("Sweep")
st.caption(
    "Which architecture and hyperparameters work best? Optuna proposes configurations (TPE by "
    "default), each trained as an ordinary background run; weak trials are pruned early."
)
new_sweep_form()
all_sweeps = sweeps.list_sweeps()
if not all_sweeps:
    st.info("No sweeps yet: set up one above.")
    st.stop()

ids = [s["id"] for s in all_sweeps]
wanted = st.session_state.pop("sw_selected", None) or st.query_params.get("sweep")
by_id = {s["id"]: s for s in all_sweeps}
sweep_id = st.selectbox(
    "Sweep",
    ids,
    index=ids.index(wanted) if wanted in ids else 0,
    format_func=lambda i: label(by_id[i]),
)
st.query_params["sweep"] = sweep_id
status = sweeps.sweep_status(sweep_id, importances=False)
st.subheader(f"{status['name'] or 'Sweep ' + sweep_id} — {status['status']}")
epochs = status["base_config"]["epochs"]
st.caption(
    f"{status['base_config']['dataset']} · {epochs} epoch{'s' * (epochs != 1)} per trial · "
    f"{status['sampler']['name']} sampler · {status['pruner']['name']} pruner · searching "
    f"{', '.join(status['space'])} · tag {status['tag']} · {duration(status['elapsed_s'] or 0)} "
    + ("so far" if status["status"] in LIVE else "in all")
)
if status["error"]:
    st.error(status["error"], icon="❌")
stop_or_resume(status)
st.fragment(live, run_every=2.0 if status["status"] in LIVE else None)(sweep_id, status["status"])
if status["best"]:
    best_panel(status)
analysis(status)
links(status)

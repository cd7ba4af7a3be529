"""Embedding map: a finished run's penultimate-layer features of a split, projected to 2-D."""

import json

import streamlit as st

from cnn_core.data.splits import pinned_split
from cnn_core.errors import UserError
from cnn_core.evaluation import run_data_spec
from cnn_core.health.embedding import embedding_map, projections
from ui import owndata_widgets as ow
from ui.explain_widgets import model_options
from ui.router import ensure_routed
from ui.widgets import show_user_error, to_display

ensure_routed()

st.title("Embedding map")
st.caption(
    "What the network's last hidden layer makes of each image, flattened to 2-D: images the "
    "model finds alike land close together. Colour = given label; × = misclassified; red "
    "ring = flagged by the last Data health check of this dataset. Click a point to open it."
)

options = model_options()
if not options:
    st.info("No finished run yet: train one first.", icon="ℹ️")
    st.page_link("pages/train.py", label="Go to Train", icon="🚀")
    st.stop()
c1, c2, c3, c4 = st.columns([3, 1, 1, 1])
key = c1.selectbox("Run", list(options), format_func=lambda k: options[k].label, key="em_run")
split = c2.selectbox("Split", ["val", "test", "train"], key="em_split")
method = c3.selectbox("Projection", projections(), key="em_method", format_func=str.upper)
limit = c4.number_input("Points (at most)", 100, 20_000, 2_000, 500, key="em_limit")
option = options[key]


@st.cache_resource(max_entries=4, show_spinner="Projecting features…")
def cached_map(path: str, split: str, method: str, limit: int, flagged: tuple[int, ...]):
    return embedding_map(path, split, method, limit, flagged=set(flagged))


def health_flags(split: str) -> tuple[int, ...]:
    """Positions in ``split`` of the last health check's label issues, when that check split
    the same data the same way as this run (else none)."""
    health = st.session_state.get("dh_result")
    if not health:
        return ()
    checked, run = json.loads(health[0]), option.config
    same = ("dataset", "data_dir", "data_choices") + (
        ("seed", "val_size") if split != "test" else ()
    )
    rules = (pinned_split(checked.get("split_version")), run.get("split_version") or 0)
    if any(checked.get(k) != run.get(k) for k in same) or rules[0] != rules[1]:
        return ()  # (the check pins the current split rule; a stored run without one: 0)
    return tuple(sorted({r["index"] for r in health[1]["label_issues"] if r["split"] == split}))


flagged = health_flags(split)
try:
    emap = cached_map(option.path, split, method, int(limit), flagged)
except UserError as exc:
    show_user_error(exc)
    st.stop()

state = st.plotly_chart(
    ow.embedding_figure(emap), key="em_chart", on_select="rerun", selection_mode="points"
)
st.caption(
    f"{len(emap.index):,} {split} images · {int(emap.misclassified.sum()):,} misclassified · "
    f"{int(emap.flagged.sum()):,} flagged"
)
picked = ow.selected_index(state)
if picked is not None:
    from ui import cache

    data = cache.dataset(run_data_spec(cache.predictor(option.path).config))
    i = list(emap.index).index(picked)
    c1, c2 = st.columns([1, 3])
    c1.image(to_display(data.split(split).images[picked]), width=140)
    c2.markdown(
        f"**{split} #{picked}** · label **{emap.class_names[emap.labels[i]]}** · predicted "
        f"**{emap.class_names[emap.predicted[i]]}** ({emap.confidence[i]:.0%})"
    )
    c2.page_link(
        "pages/explain.py",
        label="Explain this prediction",
        icon="🔍",
        query_params={"run": key, "split": split, "index": str(picked)},
    )

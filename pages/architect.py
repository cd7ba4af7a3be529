"""Builder: design a network as a JSON spec (table or JSON), checked at every edit, saved by name."""

import json
import time

import pandas as pd
import streamlit as st

from cnn_core.data import DATASETS, dataset_info, dataset_names, input_geometry
from cnn_core.errors import UserError
from cnn_core.formats import duration
from cnn_core.models import MODELS, architecture, model_names
from cnn_core.models.layers import LAYER_TYPES
from cnn_core.models.saved import delete_saved, save_spec, saved_names
from cnn_core.models.spec import SpecError, analyze, build, shape_text
from cnn_core.models.summary import TrainingTime, blocks_from_layers, time_training_step
from ui import spec_editor as ed
from ui.diagram import show_diagram
from ui.router import ensure_routed

ensure_routed()

BLANK = "blank (one conv block)"
STARTER = [
    {"type": "conv", "out": 16, "kernel": 3, "padding": "same"},
    {"type": "relu"},
    {"type": "maxpool"},
    {"type": "flatten"},
    {"type": "linear"},
]
s = st.session_state


def set_spec(spec: dict, source: str | None = None) -> None:
    """Replace the spec being edited (new table and JSON widgets); ``source``: the "Start from"
    entry it came from (kept when None)."""
    s.arch_spec = spec
    s.arch_source = source or s.get("arch_source", BLANK)
    s.a_start = s.arch_source
    s.arch_table = spec["layers"]  # the table's data until the next replacement; edits are deltas
    s.arch_version = s.get("arch_version", 0) + 1
    s.a_name = spec.get("name", "")
    s.pop("arch_json_error", None)


def start_from() -> None:
    """Choice or button: fork a built-in model (for the chosen dataset), open a saved spec, or
    a blank one."""
    choice = s.a_start
    if choice == BLANK:
        set_spec({"name": "my-net", "description": "", "layers": STARTER}, BLANK)
        return
    channels, size, classes = input_geometry(s.a_dataset)
    set_spec(architecture(choice, channels, size, classes), choice)


def apply_json(key: str) -> None:
    """Text area / button: take the JSON if it parses into layers the table can show."""
    try:
        spec = json.loads(s[key])
    except json.JSONDecodeError as exc:
        s.arch_json_error = f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        return
    layers = spec.get("layers") if isinstance(spec, dict) else None
    if not isinstance(layers, list) or not all(isinstance(x, dict) for x in layers):
        s.arch_json_error = 'give an object with "name" and "layers": a list of layer objects'
        return
    set_spec(spec)


def edit_rows(action: str) -> None:
    """Buttons: move, duplicate, remove or add a layer at the selected row."""
    index = int(s.get("a_row") or 0)
    layers, selected = ed.moved(s.arch_spec["layers"], index, action, s.get("a_new_type", "relu"))
    set_spec({**s.arch_spec, "layers": layers})
    s.a_row = selected


def save() -> None:
    try:
        path = save_spec(s.arch_spec, list(MODELS))
    except UserError as exc:
        s.arch_saved = ("error", str(exc))
    else:
        s.arch_saved = ("ok", f"Saved {path.stem}: now a model choice on Train, Sweep and Compare.")
        s.arch_source = s.a_start = path.stem


def delete() -> None:
    name = s.arch_spec["name"]
    delete_saved(name)
    s.arch_source = s.a_start = BLANK  # the deleted spec leaves the choices
    s.arch_saved = ("deleted", f"Deleted the saved spec {name}; runs trained with it keep a copy.")


if "arch_spec" not in s:
    s.arch_dataset = "fashion-mnist"
    set_spec({"name": "my-net", "description": "", "layers": STARTER}, BLANK)
# Widgets forget their values while another page is shown: they get them back from the spec.
s.setdefault("a_dataset", s.arch_dataset)
s.setdefault("a_start", s.arch_source)
s.setdefault("a_name", s.arch_spec.get("name", ""))

st.title("Builder")
st.caption(
    "Design a network layer by layer. Every edit is checked at once for the chosen dataset's "
    "input: shapes after each layer, parameters and FLOPs; save it and train it like the built-in models."
)
c1, c2, c3 = st.columns([2, 2, 1], vertical_alignment="bottom")
dataset = c1.selectbox(
    "Input shape of",
    dataset_names(),
    key="a_dataset",
    format_func=lambda n: f"{n} — {DATASETS[n].description}",
    on_change=lambda: s.update(arch_dataset=s.a_dataset),
)
c2.selectbox(
    "Start from",
    [*MODELS, *saved_names(), BLANK],
    key="a_start",
    format_func=lambda n: f"fork {n}" if n in MODELS else n,
    on_change=start_from,
)
c3.button(
    "Reload",
    key="a_load",
    on_click=start_from,
    icon=":material/file_open:",
    help="Start again from the chosen entry (your edits are dropped)",
)
channels, size, classes = input_geometry(dataset)

c1, c2 = st.columns([1, 3])
c1.text_input("Name", key="a_name", help="letters, digits, - and _; saved under this name")
description = c2.text_input(
    "Description", value=s.arch_spec.get("description", ""), key=f"a_desc_{s.arch_version}"
)

table_tab, json_tab = st.tabs(["Layers", "JSON"])
with table_tab:
    base = ed.layers_to_frame(s.arch_table)
    base.index += 1  # layer 1 is the first, as in the checks' messages and the shape table
    edited = st.data_editor(
        base,
        key=f"a_table_{s.arch_version}",
        column_config=ed.table_column_config(),
        hide_index=False,
        num_rows="fixed",
        width="stretch",
        placeholder="",  # an empty cell means the default (see the column's help)
    )
    layers = ed.frame_to_layers(edited) if len(edited) == len(base) else s.arch_spec["layers"]
    s.arch_spec = {
        **s.arch_spec,
        "name": s.a_name.strip(),
        "description": description,
        "layers": layers,
    }
    count = len(layers)
    c1, c2, c3, c4, c5, c6, c7 = st.columns([2, 1, 1, 1, 1, 2, 1], vertical_alignment="bottom")
    c1.selectbox(
        "Row",
        range(count),
        key="a_row",
        disabled=not count,
        format_func=lambda i: f"{i + 1} · {layers[i].get('name') or layers[i].get('type')}",
    )
    for col, (action, label) in zip(
        (c2, c3, c4, c5),
        (("up", "Up"), ("down", "Down"), ("duplicate", "Duplicate"), ("remove", "Remove")),
        strict=True,
    ):
        col.button(label, key=f"a_{action}", on_click=edit_rows, args=(action,), disabled=not count)
    c6.selectbox("New layer", list(LAYER_TYPES), key="a_new_type")
    c7.button("Add", key="a_add", on_click=edit_rows, args=("add",))

with json_tab:
    text = json.dumps(s.arch_spec, indent=2)
    key = f"a_json_{s.arch_version}_{hash(text)}"
    st.text_area("Spec (JSON)", text, key=key, height=360, on_change=apply_json, args=(key,))
    st.button("Apply JSON", on_click=apply_json, args=(key,))
    if err := s.get("arch_json_error"):
        st.error(err, icon="🚫")

started = time.perf_counter()
try:
    norm, rows = analyze(s.arch_spec, channels, size, classes)
except SpecError as exc:
    norm, rows = None, []
    st.error(str(exc), icon="🚫")
checked_ms = (time.perf_counter() - started) * 1000

if norm is not None:
    params, flops = sum(r.params for r in rows), sum(r.flops for r in rows)
    m1, m2, m3 = st.columns(3)
    m1.metric("Parameters", f"{params:,}")
    m2.metric("FLOPs per image", f"{flops / 1e6:.2f} M")
    m3.metric("Output", shape_text(rows[-1].out_shape))
    st.caption(
        f"Checked in {checked_ms:.1f} ms for a {channels}×{size}×{size} input with {classes} classes."
    )
    flow = pd.DataFrame(
        [
            {
                "#": r.index,
                "name": r.name,
                "type": r.type,
                "input": shape_text(r.in_shape),
                "output": shape_text(r.out_shape),
                "params": r.params,
                "FLOPs": r.flops,
            }
            for r in rows
        ]
    )
    st.dataframe(flow, hide_index=True, width="stretch")
    show_diagram(blocks_from_layers(rows, channels, size), key="a_diagram")

    st.subheader("Time per epoch on this machine")
    info = dataset_info(dataset)
    c1, c2, c3 = st.columns(3, vertical_alignment="bottom")
    batch = c1.number_input("Batch size", 1, 4096, info.default_batch_size, key="a_batch")
    images = c2.number_input(
        "Training images per epoch",
        1,
        10_000_000,
        info.default_train_size or 50_000,
        step=1000,
        key="a_images",
    )
    measured_for = json.dumps([norm, channels, size, batch])
    if c3.button("Measure", key="a_measure", icon=":material/timer:"):
        with st.spinner("Timing a few training steps…"):
            step = time_training_step(
                build(norm, channels, size, classes), channels, size, int(batch)
            )
        s.arch_timing = (measured_for, step)
    timing = s.get("arch_timing")
    if timing and timing[0] == measured_for:  # a measurement of this very network and batch
        took = TrainingTime(timing[1], int(images), int(batch))
        st.metric(
            "Estimated time per epoch",
            duration(took.seconds),
            help=f"{took.step_s * 1000:.0f} ms per step (median of 3) × {took.steps:,} steps; "
            "evaluation not included",
        )

    st.subheader("Save")
    if norm["name"] in MODELS:
        st.info(f"{norm['name']} is a built-in model: give yours another name to save it.")
    exists = norm["name"] in model_names()
    c1, c2 = st.columns(2)
    c1.button(
        f"{'Overwrite' if exists else 'Save'} {norm['name']}",
        type="primary",
        icon=":material/save:",
        key="a_save",
        on_click=save,
        disabled=norm["name"] in MODELS,
    )
    if norm["name"] in saved_names():
        with c2.popover(f"Delete {norm['name']}", icon=":material/delete:"):
            st.caption("It leaves the model choices; runs trained with it keep their own copy.")
            st.button("Delete for good", key="a_delete", on_click=delete)
    if result := s.pop("arch_saved", None):
        (st.error if result[0] == "error" else st.success)(result[1])
        if result[0] == "ok":
            st.page_link("pages/train.py", label="Train it", icon="🚀")

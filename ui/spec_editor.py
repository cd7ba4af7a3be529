"""The Builder page's layer table: a spec's layers as DataFrame rows and back, and row moves.

Empty cells mean "the default" (shown in the column help); cells of fields a layer type does
not have are ignored, so changing a row's type keeps the rest of the row harmless.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import pandas as pd
import streamlit as st

from cnn_core.models.spec import LAYER_TYPES

INT_FIELDS = ("out", "kernel", "stride", "dilation", "groups", "size")
FLOAT_FIELDS = ("p", "slope")
COLUMNS = ("type", "name", *INT_FIELDS[:3], "padding", *INT_FIELDS[3:], "bias", *FLOAT_FIELDS)
HELP = {
    "out": "output channels (conv, residual) or units (linear; empty = one per class)",
    "kernel": "window side (conv 3, pools 2)",
    "stride": "step (conv 1, pools = kernel)",
    "padding": 'pixels added on each side, or "same"',
    "dilation": "gap between kernel taps (1)",
    "groups": "grouped convolution (1)",
    "size": "adaptive pool output side (1 = global)",
    "bias": "learned bias (true)",
    "p": "dropout probability (empty = the run's dropout)",
    "slope": "leaky ReLU negative slope (0.01)",
}


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _shown(field: str, value: Any) -> Any:
    """A cell as the table shows it: padding and bias as text (``"same"``, ``"false"``)."""
    if _empty(value) or field not in ("padding", "bias"):
        return value
    return str(value).lower()


def layers_to_frame(layers: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per layer, one column per field (empty where not given)."""
    records = [{c: _shown(c, layer.get(c)) for c in COLUMNS} for layer in layers]
    frame = pd.DataFrame(records, columns=list(COLUMNS), dtype=object)
    for column in INT_FIELDS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    for column in FLOAT_FIELDS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Float64")
    return frame


def _cell(field: str, value: Any) -> Any:
    if field in INT_FIELDS:
        return int(value)
    if field in FLOAT_FIELDS:
        return float(value)
    text = str(value).strip()
    if field == "padding":
        return int(text) if text.isdigit() else text
    if field == "bias":
        return {"true": True, "false": False}.get(text.lower(), text)
    return text


def frame_to_layers(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The layers a (possibly edited) table describes; validation happens in the analysis."""
    layers = []
    for row in frame.to_dict("records"):
        kind = row.get("type")
        layer: dict[str, Any] = {"type": None if _empty(kind) else kind}
        if not _empty(row.get("name")) and str(row["name"]).strip():
            layer["name"] = str(row["name"]).strip()
        for field in LAYER_TYPES.get(layer["type"], {}):
            if not _empty(row.get(field)) and str(row.get(field)).strip():
                layer[field] = _cell(field, row[field])
        layers.append(layer)
    return layers


def moved(layers: list[dict], index: int, action: str, new_type: str = "relu") -> tuple[list, int]:
    """``layers`` after ``action`` (up, down, duplicate, remove, add) on row ``index``, and the
    row to select next."""
    out = copy.deepcopy(layers)
    if action == "add":
        out.insert(index + 1 if out else 0, {"type": new_type})
        return out, min(index + 1, len(out) - 1)
    if not out:
        return out, 0
    if action == "up" and index > 0:
        out[index - 1], out[index] = out[index], out[index - 1]
        return out, index - 1
    if action == "down" and index < len(out) - 1:
        out[index + 1], out[index] = out[index], out[index + 1]
        return out, index + 1
    if action == "duplicate":
        twin = {k: v for k, v in out[index].items() if k != "name"}  # names stay unique
        out.insert(index + 1, twin)
        return out, index + 1
    if action == "remove":
        del out[index]
        return out, max(0, min(index, len(out) - 1))
    return out, index


def table_column_config() -> dict[str, Any]:
    """Column widgets of the layer table."""
    config: dict[str, Any] = {
        "type": st.column_config.SelectboxColumn("type", options=list(LAYER_TYPES), required=True),
        "name": st.column_config.TextColumn("name", help="layer name (empty = automatic)"),
        "padding": st.column_config.TextColumn("padding", help=HELP["padding"]),
        "bias": st.column_config.SelectboxColumn(
            "bias", options=["true", "false"], help=HELP["bias"]
        ),
    }
    for field in INT_FIELDS:
        config[field] = st.column_config.NumberColumn(field, help=HELP[field], step=1, min_value=0)
    for field in FLOAT_FIELDS:
        config[field] = st.column_config.NumberColumn(field, help=HELP[field], format="%.3f")
    return config

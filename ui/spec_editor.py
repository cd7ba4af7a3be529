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

from cnn_core.models.layers import LAYER_TYPES, spec_fields


def column_help(field: str) -> str:
    """What a field sets in each layer type that has it, and what an empty cell means."""
    texts: dict[str, list[str]] = {}
    for kind in LAYER_TYPES.values():
        if field in kind.fields:
            spec_field = kind.fields[field]
            empty = spec_field.default_text()
            text = f"{spec_field.help} ({empty if spec_field.required else 'empty = ' + empty})"
            texts.setdefault(text, []).append(kind.name)
    return "; ".join(f"{', '.join(kinds)}: {text}" for text, kinds in texts.items())


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _shown(kind: str, value: Any) -> Any:
    """A cell as the table shows it: padding and true/false fields as text (``"same"``)."""
    if _empty(value) or kind not in ("padding", "bool"):
        return value
    return str(value).lower()


def layers_to_frame(layers: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per layer, one column per field (empty where not given)."""
    kinds = {"type": "text", "name": "text", **spec_fields()}
    records = [{c: _shown(kinds[c], layer.get(c)) for c in kinds} for layer in layers]
    frame = pd.DataFrame(records, columns=list(kinds), dtype=object)
    for column, kind in kinds.items():
        if kind in ("int", "float"):
            numbers = pd.to_numeric(frame[column], errors="coerce")
            frame[column] = numbers.astype("Int64" if kind == "int" else "Float64")
    return frame


def _cell(kind: str, value: Any) -> Any:
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    text = str(value).strip()
    if kind == "padding":
        return int(text) if text.isdigit() else text
    if kind == "bool":
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
        kind = LAYER_TYPES.get(layer["type"])
        for field, spec_field in (kind.fields if kind else {}).items():
            if not _empty(row.get(field)) and str(row.get(field)).strip():
                layer[field] = _cell(spec_field.kind, row[field])
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
    }
    for field, kind in spec_fields().items():
        help_text = column_help(field)
        if kind == "int":
            config[field] = st.column_config.NumberColumn(
                field, help=help_text, step=1, min_value=0
            )
        elif kind == "float":
            config[field] = st.column_config.NumberColumn(field, help=help_text, format="%.3f")
        elif kind == "bool":
            config[field] = st.column_config.SelectboxColumn(
                field, options=["true", "false"], help=help_text
            )
        else:
            config[field] = st.column_config.TextColumn(field, help=help_text)
    return config

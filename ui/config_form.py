"""Widgets generated from the config's field Knobs (Train's form, Sweep's fixed settings).

A widget shows its field's raw value with no Streamlit bounds (which would silently keep the
last valid value); the config's own rules judge it and the error shows beneath the widget,
naming the field. The config class is looked up at call time (:func:`config.config_class`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import streamlit as st

from cnn_core import config
from cnn_core.data import DatasetInfo, dataset_info, dataset_names
from cnn_core.models import model_names, model_title


def _field(name: str) -> dataclasses.Field:
    return next(f for f in dataclasses.fields(config.config_class()) if f.name == name)


def shown(name: str, info: DatasetInfo) -> bool:
    """Whether a form for ``info``'s dataset asks for field ``name`` (its Knob's ``show_if``
    names the registry entry's attribute that must be true)."""
    k = config.knobs()[name]
    return not k.show_if or bool(getattr(info, k.show_if))


def group_fields(group: str) -> list[str]:
    """The fields of a Train-page group, in field order."""
    return [name for name, k in config.knobs().items() if k.group == group]


def bounds(name: str) -> tuple[Any, Any]:
    """(min, max) of a bounded widget of field ``name``: the Knob's, an open end moved inside
    by one step."""
    k = config.knobs()[name]
    kind, _ = config.field_type(name)
    step = k.step or (1 if kind is int else 0.01)
    low = k.low + step if k.open_end == "low" else k.low
    high = k.high - step if k.open_end == "high" else k.high
    return kind(low), kind(high)


def to_widget(name: str, value: Any, info: DatasetInfo) -> Any:
    """A config value as field ``name``'s widget shows it (unset: the dataset's suggestion,
    else 0 where 0 means unset)."""
    k = config.knobs()[name]
    kind, _ = config.field_type(name)
    if value is None:
        value = None if k.zero_unsets else getattr(info, f"default_{name}", None)
    if value is None:
        return "" if kind is str else kind(0) if kind in (int, float) else value
    return ", ".join(value) if kind is list else value


def initial(name: str, info: DatasetInfo) -> Any:
    """What field ``name``'s widget starts with for ``info``'s dataset."""
    f = _field(name)
    default = f.default_factory() if f.default is dataclasses.MISSING else f.default
    return to_widget(name, default, info)


def from_widget(name: str, raw: Any) -> Any:
    """A widget's value as the config value of field ``name``."""
    k = config.knobs()[name]
    kind, optional = config.field_type(name)
    if kind is list:
        return [t.strip() for t in str(raw or "").split(",") if t.strip()]
    if kind is str and isinstance(raw, str):
        raw = raw.strip()
        return None if optional and not raw else raw
    if k.zero_unsets and raw == 0:
        return None
    return raw


def field_widget(name: str, key: str, info: DatasetInfo, where: Any = st) -> Any:
    """Draw field ``name``'s widget in ``where`` and return its config value; beneath it, the
    reason the value is not allowed, naming the field."""
    k = config.knobs()[name]
    kind, _ = config.field_type(name)
    label, start = k.label or name, initial(name, info)
    if k.names == "datasets":
        raw = where.selectbox(
            label,
            dataset_names(),
            key=key,
            format_func=lambda n: f"{n} — {dataset_info(n).description}",
        )
    elif k.names == "models":
        names = model_names()
        raw = where.selectbox(
            label, names, key=key, format_func=lambda m: f"{m} — {model_title(m)}"
        )
    elif k.show_if == "attributes":
        options = list(info.attributes)
        raw = where.selectbox(label, options, index=options.index(start), key=key)
    elif k.choices:
        raw = where.selectbox(label, k.choices, index=k.choices.index(start), key=key)
    elif kind is bool:
        raw = where.checkbox(label, value=bool(start), key=key)
    elif kind in (str, list):
        raw = where.text_input(label, value=start, key=key)
    elif k.widget == "slider":
        raw = where.slider(label, *bounds(name), start, k.step, key=key, help=k.help)
    else:
        step = int(k.step or 1) if kind is int else float(k.step or 0.01)
        raw = where.number_input(
            label, value=kind(start), step=step, format=k.format, key=key, help=k.help
        )
    value = from_widget(name, raw)
    message = config.field_error(name, value)
    if message:
        where.error(f"{name}: {message}", icon="🚫")
    return value


def state_values(names: list[str], prefix: str) -> dict[str, Any]:
    """The config values of fields ``names`` as their widgets (keys ``prefix + name``) hold
    them in the session now (what a button's callback sees)."""
    s = st.session_state
    return {n: from_widget(n, s[prefix + n]) for n in names if prefix + n in s}

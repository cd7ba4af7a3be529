"""Learn page helpers: controls kept in the URL query string, the learned models to borrow
filters and feature maps from, dataset images, cached computations, messages and timing.

A page declares its controls once (``Linked(prefix, {name: Control(default, ...)})``),
calls ``restore()`` before its widgets (widgets then take their values from
``st.session_state[prefix + name]``, never a ``value=`` argument) and ``publish()`` after
them, so ``?name=value`` reopens the same set-up.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import streamlit as st
import torch

from cnn_core import runs
from cnn_core.concepts import optimizers
from cnn_core.concepts.layer import LayerByHand, LayerRecord, channel_by_hand, record_layer
from cnn_core.data import DATASETS, DataSpec
from cnn_core.demo import DEMO_CHECKPOINT, DEMO_LABEL
from cnn_core.errors import ConfigError, UserError
from cnn_core.evaluation import run_data_spec
from cnn_core.predict import Predictor
from ui import cache
from ui.explain_widgets import feature_map
from ui.widgets import run_label, show_user_error

# the datasets a Learn page takes images from: those that need no data folder
LEARN_DATASETS = tuple(name for name, info in DATASETS.items() if not info.needs_data_dir)
DEMO_KEY = "demo"
LINKS_KEPT = 64  # links a session remembers having written (see Linked.restore)


@dataclass(frozen=True)
class Control:
    """A control's default and what a link may set it to: ``choices`` for a pick, ``low`` /
    ``high`` for a number (values outside become the nearest bound)."""

    default: Any
    choices: Sequence[Any] | None = None
    low: float | None = None
    high: float | None = None

    def parse(self, raw: str) -> Any:
        """The typed value of a query-string text; ValueError when it does not fit, OutOfRange
        (holding the nearest bound) for a number outside ``low``–``high``."""
        kind = type(self.default)
        if kind is bool:
            value: Any = raw.lower() in ("1", "true", "yes", "on")
        elif kind is list:
            return [item for item in raw.split(",") if item]
        elif kind in (int, float):
            number = float(raw)
            if not np.isfinite(number):
                raise ValueError(raw)
            value = kind(number)
            bounded = value if self.low is None else max(value, kind(self.low))
            bounded = bounded if self.high is None else min(bounded, kind(self.high))
            if bounded != value:
                low, high = ("" if b is None else f"{b:g}" for b in (self.low, self.high))
                raise OutOfRange(bounded, f"out of range ({low}–{high})")
        else:
            value = raw
        if self.choices is not None and value not in self.choices:
            raise ValueError(raw)
        return value


class OutOfRange(ValueError):
    """A link's number outside its control's range: ``nearest`` is the bound used instead."""

    def __init__(self, nearest: Any, reason: str):
        super().__init__(reason)
        self.nearest, self.reason = nearest, reason


def text(value: Any) -> str:
    """A control's value as written in the query string (a list as ``a,b``)."""
    if isinstance(value, list):
        return ",".join(map(str, value))
    return ("1" if value else "0") if isinstance(value, bool) else str(value)


class Linked:
    """The controls of one page, mirrored to and from ``st.query_params``."""

    def __init__(self, prefix: str, controls: dict[str, Control]):
        self.prefix, self.controls = prefix, controls
        self.marker = f"_{prefix}link"

    def key(self, name: str) -> str:
        """The session-state key of control ``name``."""
        return self.prefix + name

    def restore(self) -> None:
        """Apply a new link's query string; give every control its default when it has no
        value yet. A value a link cannot set is named in one warning.

        A link is new unless this session wrote or applied it: a rerun can carry the browser's
        previous URL (the page had not applied the last one yet), which must not undo the
        change that triggered the rerun."""
        state, params = st.session_state, st.query_params
        link = tuple(params.get(name) for name in self.controls)
        fresh = link not in state.get(self.marker, [])
        self._remember(link)
        for name in self.controls:  # keep the values of widgets a view does not draw this run
            if self.key(name) in state:
                state[self.key(name)] = state[self.key(name)]
        ignored, bounded = [], []
        for name, control in self.controls.items():
            raw = params.get(name)
            if fresh and raw is not None:
                try:
                    state[self.key(name)] = control.parse(raw)
                    continue
                except OutOfRange as exc:
                    state[self.key(name)] = exc.nearest
                    bounded.append(f"{name}={raw} is {exc.reason}: {exc.nearest} used")
                    continue
                except ValueError:
                    ignored.append(f"{name}={raw}")
            state.setdefault(self.key(name), control.default)
        if ignored:
            st.warning(f"The link's {', '.join(ignored)} is not a valid setting: default used.")
        if bounded:
            st.warning(f"The link's {'; '.join(bounded)}.")

    def value(self, name: str) -> Any:
        return st.session_state[self.key(name)]

    def clamp(self, name: str, low: int, high: int) -> None:
        """Keep an integer control within a range that depends on other controls."""
        state = st.session_state
        state[self.key(name)] = min(max(int(state[self.key(name)]), low), max(low, high))

    def publish(self) -> None:
        """Write every control's value to the query string."""
        values = {name: text(self.value(name)) for name in self.controls}
        st.query_params.from_dict(values)
        self._remember(tuple(values.values()))

    def _remember(self, link: tuple[str | None, ...]) -> None:
        seen = st.session_state.setdefault(self.marker, [])
        if link not in seen:
            seen[:] = [*seen[-(LINKS_KEPT - 1) :], link]


def pick_view(link: Linked, name: str = "view") -> str:
    """The page's views as one row of choices (kept in the URL, unlike tabs): only the chosen
    view runs, so an interaction recomputes and redraws one view, not all of them."""
    views = link.controls[name].choices
    return st.radio(
        "View", views, horizontal=True, key=link.key(name), label_visibility="collapsed"
    )


@contextmanager
def timed(label: str) -> Iterator[None]:
    """Caption the server-side time of the block (how long this interaction took to compute)."""
    start = time.perf_counter()
    yield
    st.caption(f"{label}: computed in {(time.perf_counter() - start) * 1000:.0f} ms server-side.")


def guarded(message_slot: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args)``; a UserError becomes one message in ``message_slot`` and None."""
    try:
        return fn(*args, **kwargs)
    except UserError as exc:
        with message_slot:
            show_user_error(exc)
        return None


class LearnedModel(NamedTuple):
    """A finished run's checkpoint (or the shipped demo's) to borrow filters and maps from."""

    label: str
    path: str


def learned_models() -> dict[str, LearnedModel]:
    """Finished runs with a checkpoint (newest first) and the shipped demo, by run id/"demo"."""
    found = {
        r["id"]: LearnedModel(run_label(r), r["checkpoint"])
        for r in runs.list_runs("completed")
        if r.get("checkpoint")
    }
    if DEMO_CHECKPOINT.is_file():
        found[DEMO_KEY] = LearnedModel(DEMO_LABEL, str(DEMO_CHECKPOINT))
    return found


def pick_model(link: Linked, name: str = "run") -> tuple[LearnedModel, Predictor]:
    """A model select box (a link's unknown run falls back to the first); its Predictor."""
    models = learned_models()
    if not models:
        raise ConfigError(name, "no finished run and no demo model yet: train a model first")
    if link.value(name) not in models:
        st.session_state[link.key(name)] = next(iter(models))
    key = st.selectbox(
        "Model", list(models), format_func=lambda k: models[k].label, key=link.key(name)
    )
    return models[key], cache.predictor(models[key].path)


def dataset_image(spec: DataSpec, index: int) -> tuple[torch.Tensor, str]:
    """Validation image ``index`` (clamped) of the images ``spec`` describes as a model sees
    them: [1, C, S, S] in [0, 1] and a caption."""
    data = cache.dataset(spec)
    images = data.split("val")
    index = min(max(index, 0), len(images.labels) - 1)
    x = data.transform.eval(images.images[index : index + 1])
    return x, f"{spec.dataset} val #{index} · {data.class_names[int(images.labels[index])]}"


def run_image(predictor: Predictor, index: int) -> tuple[torch.Tensor, str]:
    """Validation image ``index`` of the dataset the model was trained on."""
    return dataset_image(run_data_spec(predictor.config), index)


@st.cache_data(max_entries=32, show_spinner=False)
def _record(path: str, mtime_ns: int, index: int, layer: str) -> LayerRecord:
    predictor = cache.predictor(path)
    x, _ = run_image(predictor, index)
    with cache.model_lock():
        return record_layer(predictor, x, layer)


def by_hand(path: str, index: int, layer: str, channel: int) -> LayerByHand:
    """:func:`channel_by_hand` on validation image ``index`` of the model's dataset. The
    forward pass is recorded once per checkpoint version, image and layer (under the shared
    model lock: its hooks must fire only here); a channel change only redoes the sums."""
    return channel_by_hand(_record(path, Path(path).stat().st_mtime_ns, index, layer), channel)


@st.cache_data(max_entries=64, show_spinner=False)
def _maps(path: str, mtime_ns: int, index: int, layer: str) -> np.ndarray:
    predictor = cache.predictor(path)
    x, _ = run_image(predictor, index)
    return feature_map(predictor, x, layer).numpy()


def maps(path: str, index: int, layer: str) -> np.ndarray:
    """Layer ``layer``'s output [C, H, W] for validation image ``index``, cached."""
    return _maps(path, Path(path).stat().st_mtime_ns, index, layer)


trajectory = st.cache_data(max_entries=256, show_spinner=False)(optimizers.trajectory)

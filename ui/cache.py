"""Cached resources keyed so that a retrained checkpoint or changed data is never served stale."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from cnn_core import runs
from cnn_core.data import DatasetBundle, DataSpec, load_dataset
from cnn_core.predict import Predictor
from ui.charts import CURVE_KEYS, learning_curves, step_curves

MODEL_LOCK = threading.Lock()


@contextmanager
def model_lock() -> Iterator[None]:
    """The one policy for sharing a cached model between sessions: work that hooks into it
    (Captum attributions, feature maps, Grad-CAM) runs under this lock, so no hook fires in
    another session's pass; plain forward passes need no lock."""
    with MODEL_LOCK:
        yield


@st.cache_resource(max_entries=8, show_spinner=False)
def _predictor(path: str, mtime_ns: int, size: int) -> Predictor:
    return Predictor.from_checkpoint(path)


def predictor(path: str | Path) -> Predictor:
    """The Predictor of a checkpoint, reloaded whenever the file changes (mtime/size key)."""
    stat = Path(path).stat()
    return _predictor(str(path), stat.st_mtime_ns, stat.st_size)


@st.cache_resource(max_entries=3, show_spinner="Loading dataset…")
def _dataset(spec_json: str) -> DatasetBundle:
    return load_dataset(DataSpec.from_json(spec_json))


def dataset(spec: DataSpec) -> DatasetBundle:
    """The images ``spec`` describes, loaded once and shared across sessions (read-only use)."""
    return _dataset(spec.to_json())


@st.cache_resource(max_entries=64, show_spinner=False)
def _curves(points: tuple[tuple[float | None, ...], ...]) -> go.Figure:
    return learning_curves([dict(zip(CURVE_KEYS, p, strict=True)) for p in points])


def curves(history: list[dict]) -> go.Figure:
    """:func:`ui.charts.learning_curves`, built once per history and shared by every session
    watching the run (building a subplot figure costs ~10 ms; a live page asks every second)."""
    return _curves(tuple(tuple(m.get(k) for k in CURVE_KEYS) for m in history))


@st.cache_resource(max_entries=16, show_spinner=False)
def _series(run_id: str, version: tuple) -> tuple[list[dict], list[dict]]:
    return runs.steps(run_id), runs.metrics(run_id)


def run_series(run_id: str) -> tuple[tuple, list[dict], list[dict]]:
    """The version, step series and epoch metrics of a run (read-only), read from the store
    only when :func:`cnn_core.runs.series_version` changed and shared by every session watching
    the run: while nothing changed a refresh costs one count."""
    version = tuple(runs.series_version(run_id))
    return (version, *_series(run_id, version))


@st.cache_resource(max_entries=64, show_spinner=False)
def _step_figure(
    run_id: str, version: tuple, x_key: str, weight: float, target: int | None, _steps: list
) -> go.Figure:
    return step_curves(_steps, x_key, weight, target)


def step_figure(
    run_id: str,
    version: tuple,
    steps: list[dict],
    x_key: str,
    weight: float,
    target_step: int | None = None,
) -> go.Figure:
    """:func:`ui.charts.step_curves` of the series :func:`run_series` returned, built once per
    (series version, axis, smoothing, target) and shared by every session watching the run."""
    return _step_figure(run_id, version, x_key, weight, target_step, steps)


def clear_figures() -> None:
    """Forget every cached series and figure (the render benchmark starts each variant cold)."""
    _curves.clear()
    _series.clear()
    _step_figure.clear()


@st.cache_data(max_entries=32, show_spinner="Timing a training step…")
def step_seconds(model: str, spec_json: str, channels: int, size: int, classes: int, batch: int):
    """Median seconds of one training step of ``model`` on a ``batch`` here (measured once per
    model, input and batch; ``spec_json``: a saved spec's current JSON, so an edit re-times)."""
    from cnn_core.models import create_model
    from cnn_core.models.summary import time_training_step

    built = create_model(model, channels, size, classes)
    return time_training_step(built, channels, size, batch, steps=2)

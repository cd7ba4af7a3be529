"""Cached resources keyed so that a retrained checkpoint or changed data is never served stale."""

from __future__ import annotations

import hashlib
import json
import pickle
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from cnn_core.config import TrainConfig
from cnn_core.data import DatasetBundle, load_dataset
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
def _dataset(config_json: str) -> DatasetBundle:
    return load_dataset(TrainConfig.from_dict(json.loads(config_json), strict=False))


def dataset(config: TrainConfig) -> DatasetBundle:
    """A loaded dataset bundle, shared across sessions (read-only use only)."""
    return _dataset(config.resolved().to_json())


@st.cache_resource(max_entries=64, show_spinner=False)
def _curves(points: tuple[tuple[float | None, ...], ...]) -> go.Figure:
    return learning_curves([dict(zip(CURVE_KEYS, p, strict=True)) for p in points])


def curves(history: list[dict]) -> go.Figure:
    """:func:`ui.charts.learning_curves`, built once per history and shared by every session
    watching the run (building a subplot figure costs ~10 ms; a live page asks every second)."""
    return _curves(tuple(tuple(m.get(k) for k in CURVE_KEYS) for m in history))


STEP_KEYS = ("kind", "step", "images_seen", "epoch_fraction", "wall_time")
STEP_VALUES = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")


@st.cache_resource(max_entries=64, show_spinner=False)
def _step_figure(
    digest: str, x_key: str, weight: float, target: int | None, _steps: list[dict]
) -> go.Figure:
    return step_curves(_steps, x_key, weight, target)


def step_figure(
    steps: list[dict], x_key: str, weight: float, target_step: int | None = None
) -> go.Figure:
    """:func:`ui.charts.step_curves`, built once per (series, axis, smoothing) and shared by
    every session watching the run. The series is keyed by a digest of its values: Streamlit's
    own hashing of a long series costs more than drawing it."""
    points = [tuple(p.get(k) for k in STEP_KEYS + STEP_VALUES) for p in steps]
    digest = hashlib.blake2b(pickle.dumps(points), digest_size=16).hexdigest()
    return _step_figure(digest, x_key, weight, target_step, steps)


def clear_figures() -> None:
    """Forget every cached figure (the render benchmark starts each variant cold)."""
    _curves.clear()
    _step_figure.clear()

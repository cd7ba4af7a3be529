"""Shared fixtures: every test gets its own runs/cache folders; torch uses 2 threads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)

PROJECT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT.parent / "shared" / "data"
FASHION_DIR = SHARED_DATA / "fashion-mnist"


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Point runs, cache and data roots at temp folders (plus the shared real data)."""
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("CNN_LAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("CNN_LAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(
        "CNN_LAB_DATA_ROOTS", os.pathsep.join([str(tmp_path / "data"), str(SHARED_DATA)])
    )
    return tmp_path


def small_fashion_config(**overrides):
    """A config on a small slice of the real Fashion-MNIST that trains in about a second."""
    from cnn_core.config import TrainConfig

    values = dict(
        dataset="fashion-mnist", model="v1", epochs=1, train_size=1000, val_size=400, threads=2
    )
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="session")
def fashion_small():
    """The dataset bundle of ``small_fashion_config()`` loaded once per session."""
    if not FASHION_DIR.is_dir():
        pytest.skip(f"real Fashion-MNIST not found at {FASHION_DIR}")
    from cnn_core.data import DataSpec, load_dataset

    os.environ.setdefault("CNN_LAB_DATA_ROOTS", str(SHARED_DATA))
    return load_dataset(DataSpec.of(small_fashion_config()))

"""Evaluate a saved checkpoint on a split of its own dataset; which images a run saw."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from .config import TrainConfig
from .data import DatasetBundle, DataSpec, load_dataset
from .predict import Predictor
from .scoring import EvalResult, evaluate


def run_data_spec(config: TrainConfig | Mapping[str, Any], data_dir: str | None = None) -> DataSpec:
    """The images a run saw: the DataSpec of its stored config (a TrainConfig or the stored
    mapping), optionally read from another ``data_dir``. Compare, Explain, Learn, the
    evaluation cache and ``evaluate --checkpoint`` all ask this."""
    if not isinstance(config, TrainConfig):
        config = TrainConfig.from_dict(dict(config), strict=False)
    spec = DataSpec.of(config)
    return dataclasses.replace(spec, data_dir=data_dir) if data_dir else spec


def checkpoint_data(predictor: Predictor, data_dir: str | None = None) -> DatasetBundle:
    """The dataset a checkpoint was trained on (optionally read from another data dir)."""
    return load_dataset(run_data_spec(predictor.config, data_dir))


def evaluate_checkpoint(
    path: str | os.PathLike,
    split: str = "test",
    data_dir: str | None = None,
    *,
    data: DatasetBundle | None = None,
) -> EvalResult:
    """Evaluate a checkpoint on ``split``; a dataset without a test split falls back to val
    (``result.split`` says which was used)."""
    predictor = Predictor.from_checkpoint(path)
    data = data or checkpoint_data(predictor, data_dir)
    if split == "test" and data.test is None:
        split = "val"
    result = evaluate(predictor.model, data.split(split), data.transform, data.num_classes)
    result.split = split
    return result

"""Evaluate a saved checkpoint on a split of its own dataset."""

from __future__ import annotations

import dataclasses
import os

from .config import TrainConfig
from .data import DatasetBundle, load_dataset
from .predict import Predictor
from .scoring import EvalResult, evaluate


def checkpoint_data(predictor: Predictor, data_dir: str | None = None) -> DatasetBundle:
    """The dataset a checkpoint was trained on (optionally read from another data dir)."""
    config: TrainConfig = predictor.config
    if data_dir:
        config = dataclasses.replace(config, data_dir=data_dir)
    return load_dataset(config)


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

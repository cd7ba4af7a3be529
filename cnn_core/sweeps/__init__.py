"""Hyperparameter and architecture search with Optuna.

A sweep is an Optuna study (RDB storage ``runs_dir()/optuna.db``, so it survives restarts)
whose trials are ordinary background runs tagged ``sweep:<id>``. A driver process asks Optuna
for parameters, queues the run, reports each epoch's validation accuracy (pruning bad trials)
and tells the outcome: ``create_sweep`` then ``start_sweep`` (detached) or ``run_sweep``
(here); ``sweep_status``, ``list_sweeps``, ``stop_sweep`` and ``train_best_longer`` manage it.
``architecture_sweep`` creates the sweep that trains every registered architecture once.
"""

from ..formats import value_text
from .api import (
    architecture_sweep,
    create_sweep,
    list_sweeps,
    load_study,
    param_importances,
    run_sweep,
    start_sweep,
    stop_sweep,
    sweep_status,
    train_best_longer,
)
from .space import allowed_values, default_space, searchable
from .study import PRUNERS, SAMPLERS, sweep_of, sweep_tag

__all__ = [
    "architecture_sweep",
    "PRUNERS",
    "SAMPLERS",
    "allowed_values",
    "create_sweep",
    "default_space",
    "list_sweeps",
    "load_study",
    "param_importances",
    "run_sweep",
    "searchable",
    "start_sweep",
    "stop_sweep",
    "sweep_of",
    "sweep_status",
    "sweep_tag",
    "train_best_longer",
    "value_text",
]

"""Helpers that put real, finished runs into the (test-isolated) run store."""

from __future__ import annotations

import os

import torch

from cnn_core.runs import api
from cnn_core.runs.store import RunStore
from cnn_core.runs.worker import run_child
from tests.conftest import small_fashion_config


def run_here(run_id: str) -> int:
    """Claim ``run_id`` and train it in this process, as a worker child would."""
    assert RunStore().claim_next(os.getpid())["id"] == run_id
    threads = torch.get_num_threads()
    try:
        return run_child(run_id, 1)
    finally:
        torch.set_num_threads(threads)


def finished_run(name: str = "", tags: list[str] | None = None, **overrides) -> str:
    """Submit a tiny Fashion-MNIST run and train it here to completion; returns its id."""
    values = dict(train_size=400, val_size=200, threads=1)
    values.update(overrides)
    run_id = api.submit(
        small_fashion_config(**values), name=name, tags=tags or [], start_worker=False
    )
    assert run_here(run_id) == 0
    return run_id

"""Data-parallel training without Ray: two gloo processes on this machine train one run. With
no dropout, no batch norm, no augmentation and fp32, averaging the two half-batch gradients is
the full-batch gradient, so the run must give the single-process numbers."""

from __future__ import annotations

import dataclasses
import os

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from cnn_core.errors import ConfigError
from cnn_core.trainer import fit
from tests.conftest import small_fashion_config
from tests.e2e.conftest import free_port

KEYS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")


def exact_config(**overrides):
    values = dict(
        train_size=400, val_size=200, epochs=2, dropout=0.0, augment=False, precision="fp32"
    )
    return small_fashion_config(**{**values, **overrides})


def rank_main(rank: int, port: int, config, out) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        result = fit(config)
        out[rank] = [{k: m[k] for k in KEYS} for m in result.history]
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_give_the_single_process_numbers():
    config = exact_config()
    alone = [{k: m[k] for k in KEYS} for m in fit(config).history]
    with mp.Manager() as manager:
        out = manager.dict()
        parallel = dataclasses.replace(config, workers=2, threads=1)
        mp.spawn(rank_main, args=(free_port(), parallel, out), nprocs=2, join=True)
        ranks = [out[0], out[1]]
    assert ranks[0] == ranks[1]  # every rank reports the summed statistics
    for got, want in zip(ranks[0], alone, strict=True):
        for key in KEYS:
            assert got[key] == pytest.approx(want[key], rel=1e-4, abs=1e-5), key


def test_more_workers_than_processes_is_a_config_error():
    with pytest.raises(ConfigError, match="data-parallel workers need as many processes"):
        fit(exact_config(workers=2))

